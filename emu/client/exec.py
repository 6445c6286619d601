"""`emu exec NODE -- CMD`: run a tool in user space, attached to NODE's kernel."""
import sys

from .rpc import ControlClient
from .tools import ip as ip_tool
from .tools import ping as ping_tool


def resolver(st):
    hosts = st.get("hosts", {})

    def resolve(host):
        if host in hosts:
            return hosts[host]
        parts = host.split(".")
        if len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts):
            return host
        return None
    return resolve


def run_command(st, node, argv, out=None):
    """Run one command line on node of the lab whose state is st; returns its exit status."""
    out = out or (lambda line: print(line, flush=True))
    info = st["nodes"][node]
    tool = argv[0]
    if tool == "ping":
        return ping_tool.main(argv[1:], info["sys"], resolver(st), out)
    if tool in ("ip", "bridge"):
        ctl = ControlClient(info["ctl"])
        try:
            return (ip_tool.main if tool == "ip" else ip_tool.bridge_main)(argv[1:], ctl, out)
        finally:
            ctl.close()
    print("emu exec: %s: command not found (available: ping, ip, bridge)" % tool, file=sys.stderr)
    return 127
