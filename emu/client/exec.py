"""`emu exec NODE -- CMD` and the shell's commands: tools run in user space,
attached to one node's kernel (its syscall socket and control endpoint)."""
import json
import os
import signal
import subprocess
import sys
import threading

from ..cluster_relay import node_sys
from .rpc import ControlClient
from .tools import ip as ip_tool
from .tools import nc as nc_tool
from .tools import ping as ping_tool
from .tools import proc as proc_tool
from .tools import ss as ss_tool
from .tools import sysctl as sysctl_tool
from .tools import tc as tc_tool
from .tools import tcpdump as tcpdump_tool
from .tools import iperf3 as iperf3_tool
from .tools import traceroute as traceroute_tool

TOOLS = ("ping", "ip", "bridge", "ss", "nc", "tcpdump", "sysctl", "cat", "tc", "ethtool",
         "python", "python3", "trace", "traceroute", "tracepath", "iperf3", "nstat")


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


# Tools that keep time (intervals, timeouts, RTTs): in a virtual-time lab they
# run as a program of the node (emu.client.vtool), on the lab's time.
VT_TOOLS = ("ping", "iperf3", "traceroute", "tracepath", "nc")


def _run_vt_tool(st, node, argv, out, err, inherit=False):
    """A time-keeping tool as a program of the node: its output through out/err,
    or with inherit (the command line's own, `emu exec`) straight to this
    process's stdout and stderr, byte for byte (nc carries binary data)."""
    if inherit:
        return run_python(st, node, ["-m", "emu.client.vtool", node] + list(argv))

    def capture(proc):
        def pump(f, fn):
            for line in iter(f.readline, b""):
                fn(line.decode(errors="replace").rstrip("\n"))
        t = threading.Thread(target=pump, args=(proc.stderr, err), daemon=True)
        t.start()
        pump(proc.stdout, out)
        t.join()
    return run_python(st, node, ["-m", "emu.client.vtool", node] + list(argv),
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, capture=capture)


def _dev_mtu(info, dst):
    """The MTU of the device the node routes dst through (ip route get; ip link)."""
    ctl = ControlClient(info["ctl"], curve=info.get("curve"))
    try:
        dev = ctl.call("route_get", dst=dst)["dev"]
        return next((r["mtu"] for r in ctl.call("link_show", stats=False) if r["name"] == dev), None)
    finally:
        ctl.close()


def _ctl_tool(fn, argv, info, out, err=None):
    ctl = ControlClient(info["ctl"], curve=info.get("curve"))
    try:
        return fn(argv, ctl, out, err) if err is not None else fn(argv, ctl, out)
    except OSError as e:
        (err or out)("%s" % (e.strerror or e))
        return 1
    finally:
        ctl.close()


def run_python(st, node, argv, stdout=None, stderr=None, capture=None):
    """python ARGS: the interpreter itself, with its own command line (-c CODE,
    -, -m MOD, a script, the REPL), whose socket module is the node's
    (emu.client.shim, installed at startup by emu/client/pyboot/sitecustomize.py)."""
    skipped = _skips_startup_hook(argv)
    if skipped:
        print("emu exec: python %s skips the startup hook that binds the program to %s "
              "(its sockets would be the host's)" % (skipped, node), file=sys.stderr)
        return 2
    hold = None
    if st.get("clock") == "virtual":
        # The lab's time stands from here until the program's first call
        # reaches the node; the hold ends when the program does.
        hold, vt = vt_hold(st, node)
        cmd, env = python_command(st, node, argv, vt=vt)
    else:
        cmd, env = python_command(st, node, argv)
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr)
    except BaseException:
        if hold is not None:
            hold.close()
        raise
    if capture is not None:
        capture(proc)
    # Ctrl-C belongs to the program, as a shell leaves it to the job it runs:
    # the REPL clears its line, a server shuts down its own way.
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return proc.wait()
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
        if hold is not None:
            hold.close()


def vt_hold(st, node):
    """Register a program about to start on node of a virtual-time lab:
    (the hold's socket, its EMU_VT spec)."""
    from ..nodes import vclock
    from .vtime import hash_seed
    sock, pid, slot, _ = vclock.hold(st["run_dir"], node)
    seed = int(st.get("seed") or 0)
    return sock, {"page": vclock.page_path(st["run_dir"]), "id": pid, "slot": slot,
                  "seed": seed, "node": node, "hashseed": hash_seed(seed, node, slot)}


def _skips_startup_hook(argv):
    """The first of -I, -E, -S among python's own options (before the program), or None."""
    args = iter(argv)
    for arg in args:
        if arg == "-" or not arg.startswith("-") or arg.startswith("--"):
            return None
        for i, ch in enumerate(arg[1:], 1):
            if ch in "IES":
                return "-" + ch
            if ch in "cm":
                return None              # the program starts here
            if ch in "WX":               # its value: the rest of this argument, or the next
                if i == len(arg) - 1:
                    next(args, None)
                break
    return None


def python_command(st, node, argv, env=None, vt=None):
    """The command line and environment of `python ARGV` on node (see run_python);
    vt: the program's EMU_VT spec in a virtual-time lab (vt_hold)."""
    info = st["nodes"][node]
    env = dict(os.environ if env is None else env)
    here = os.path.dirname(os.path.abspath(__file__))
    parent = os.path.dirname(os.path.dirname(here))
    paths = [os.path.join(here, "pyboot"), parent]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["EMU_SHIM"] = json.dumps({"sys": node_sys(info), "hosts": st.get("hosts", {}), "node": node})
    env["EMU_NODE"] = node
    if vt is not None:
        env["EMU_VT"] = json.dumps(vt)
        env["PYTHONHASHSEED"] = str(vt["hashseed"])
    return [sys.executable] + list(argv), env


def set_comm(name):
    """prctl(PR_SET_NAME): the calling thread's name, what /proc/PID/comm shows (and
    so ss -p on a node: the tool's name, "nc", not "emu"). Returns the old name."""
    try:
        import ctypes
        with open("/proc/self/task/%d/comm" % threading.get_native_id()) as f:
            old = f.read().strip()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
        return old
    except (OSError, AttributeError):
        return None


def run_command(st, node, argv, out=None, err=None):
    """Run one command line on node of the lab whose state is st; returns its exit status."""
    old = set_comm(os.path.basename(argv[0])) if argv else None
    try:
        return _run_command(st, node, argv, out, err)
    finally:
        if old is not None:
            set_comm(old)


def _run_command(st, node, argv, out=None, err=None):
    """Run one command line on node of the lab whose state is st; returns its exit status.

    out(line) prints to stdout, err(line) to stderr (by default: stderr, or out
    when only out is given)."""
    inherit = out is None and err is None      # the command line: stdout is ours to share
    if err is None:
        err = out if out is not None else (lambda line: print(line, file=sys.stderr, flush=True))
    out = out or (lambda line: print(line, flush=True))
    info = st["nodes"][node]
    tool = argv[0]
    args = argv[1:]
    if st.get("clock") == "virtual" and tool in VT_TOOLS:
        return _run_vt_tool(st, node, argv, out, err, inherit=inherit)
    resolve = resolver(st)
    if tool in ("ping", "iperf3", "traceroute", "tracepath", "nc", "tcpdump"):
        # The node's syscall socket, or this process's relay to its machine.
        info = dict(info, sys=node_sys(info))
    if tool == "ping":
        return ping_tool.main(args, info["sys"], resolve, out, err)
    if tool == "iperf3":
        return iperf3_tool.main(args, info["sys"], resolve, out, err)
    if tool == "traceroute":
        return traceroute_tool.main(args, info["sys"], resolve, out)
    if tool == "tracepath":
        return traceroute_tool.tracepath_main(args, info["sys"], resolve, out, err,
                                              dev_mtu=lambda dst: _dev_mtu(info, dst))
    if tool == "ip":
        return _ctl_tool(ip_tool.main, args, info, out, err)
    if tool == "bridge":
        return _ctl_tool(ip_tool.bridge_main, args, info, out, err)
    if tool == "ss":
        return _ctl_tool(ss_tool.main, args, info, out, err)
    if tool == "nstat":
        from .tools import nstat as nstat_tool
        return _ctl_tool(lambda a, c, o, e: nstat_tool.main(a, c, o, e, node=node), args, info,
                         out, err)
    if tool == "sysctl":
        return _ctl_tool(sysctl_tool.main, args, info, out)
    if tool == "cat":
        return _ctl_tool(proc_tool.cat, args, info, out, err)
    if tool == "tc":
        return _ctl_tool(tc_tool.main, args, info, out)
    if tool == "ethtool":
        return _ctl_tool(tc_tool.ethtool_main, args, info, out)
    if tool == "nc":
        return nc_tool.main(args, info["sys"], resolve)
    if tool == "tcpdump":
        ctl = ControlClient(info["ctl"], curve=info.get("curve"))
        epoch = None
        if st.get("clock") == "virtual":
            # A watcher: its waits neither hold the lab's time nor move it.
            from .rpc import TASK_KEY_PREFIX
            TASK_KEY_PREFIX[0] = "pv-"
            epoch = st.get("start_time") or 0
        try:
            return tcpdump_tool.main(args, info["sys"], resolve, out, err, ctl=ctl, epoch=epoch)
        finally:
            ctl.close()
    if tool in ("python", "python3"):
        return run_python(st, node, args)
    if tool == "trace":
        from .trace import trace_main
        return trace_main(st, args, out, nodes=[node])
    print("emu exec: %s: command not found (available: %s)" % (tool, ", ".join(TOOLS)),
          file=sys.stderr)
    return 127
