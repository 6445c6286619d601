"""`emu pingall` and `emu iperf`: Mininet's lab-level connectivity and load checks.

    emu pingall [--lab NAME] [-W SECONDS] [--format json]
    emu iperf h1 h2 [-t SECONDS] [--format json]

pingall: every host pings every other host once (`ping -c 1 -W 1`, through
emu's own ping tool on the source node), printed as Mininet prints it:

    *** Ping: testing ping reachability
    h1 -> h2 h3
    h2 -> h1 X
    *** Results: 16% dropped (5/6 received)

Exit status 1 if any ping failed. Hosts are the lab's nodes of kind host and
router that have an address (Mininet pings between hosts; emu's routers are
hosts that forward). Each source pings its destinations in turn; sources run
at the same time.

iperf: `iperf3 -s -1` on the second node and `iperf3 -c` on the first, both
emu's node tool (emu/client/tools/iperf3.py), run in this process.
"""
from __future__ import annotations

import json
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from .cluster_relay import node_sys
from .orchestrator import LabError, find_lab
from .supervisor import dead_node_message


def _err(msg):
    print("emu: %s" % msg, file=sys.stderr)
    return 1


def add_parsers(sub) -> None:
    p = sub.add_parser("pingall", help="every host pings every other host (Mininet's pingall)")
    p.add_argument("--lab")
    p.add_argument("-W", dest="wait", type=float, default=1.0, metavar="SECONDS",
                   help="time to wait for each reply (default 1)")
    p.add_argument("--nodes", metavar="PATTERN", help="only these hosts (glob patterns, comma-separated)")
    _add_format(p)
    p.set_defaults(func=cmd_pingall)
    i = sub.add_parser("iperf", help="TCP throughput from one node to another: emu iperf h1 h2")
    i.add_argument("--lab")
    i.add_argument("client", metavar="CLIENT")
    i.add_argument("server", metavar="SERVER")
    i.add_argument("-t", dest="time", type=float, default=5.0, metavar="SECONDS",
                   help="how long to send (default 5)")
    i.add_argument("-p", dest="port", type=int, default=5201)
    _add_format(i)
    i.set_defaults(func=cmd_iperf)


def _add_format(p) -> None:
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-j", "--json", dest="format", action="store_const", const="json",
                   help="the same as --format json")


def _hosts(st, patterns=None) -> dict[str, str]:
    from .status import match_nodes
    hosts = st.get("hosts") or {}
    nodes = st.get("nodes") or {}
    names = [n for n in nodes if n in hosts and nodes[n].get("kind") != "bridge"]
    return {n: hosts[n] for n in match_nodes(names, patterns)}


def ping_once(st, src: str, dst_ip: str, wait: float) -> tuple[bool, float | None]:
    """One echo request from src to dst_ip through emu's ping tool: (received, rtt ms)."""
    from .client.exec import resolver
    from .client.tools import ping as ping_tool
    lines: list[str] = []
    try:
        rc = ping_tool.main(["-c", "1", "-W", str(wait), dst_ip], node_sys(st["nodes"][src]),
                            resolver(st), lines.append)
    except (OSError, SystemExit):
        return False, None
    rtt = None
    for line in lines:
        m = re.search(r"time=([\d.]+) ms", line)
        if m:
            rtt = float(m.group(1))
    return rc == 0, rtt


def pingall(st, wait: float = 1.0, patterns=None) -> dict:
    """The emu.pingall/1 document: every ordered pair of hosts, one ping each."""
    hosts = _hosts(st, patterns)
    names = list(hosts)
    dead = {n: dead_node_message(st, n) for n in names}
    results: dict[str, dict[str, dict]] = {n: {} for n in names}
    lock = threading.Lock()

    def from_src(src):
        for dst in names:
            if dst == src:
                continue
            if dead[src] or dead[dst]:
                ok, rtt = False, None
            else:
                ok, rtt = ping_once(st, src, hosts[dst], wait)
            with lock:
                results[src][dst] = {"ok": ok, "rtt_ms": rtt}

    if len(names) > 1:
        with ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
            list(pool.map(from_src, names))
    sent = sum(len(v) for v in results.values())
    received = sum(1 for v in results.values() for r in v.values() if r["ok"])
    dropped = 0.0 if not sent else 100.0 * (sent - received) / sent
    return {"schema": "emu.pingall/1", "lab": st["name"], "hosts": hosts,
            "results": [{"src": s, "dst": d, "ok": r["ok"], "rtt_ms": r["rtt_ms"]}
                        for s in names for d, r in results[s].items()],
            "sent": sent, "received": received, "dropped_percent": round(dropped, 1),
            "not_running": {n: m for n, m in dead.items() if m}}


def render_pingall(doc: dict, out=print) -> None:
    out("*** Ping: testing ping reachability")
    by: dict[str, dict[str, bool]] = {}
    for r in doc["results"]:
        by.setdefault(r["src"], {})[r["dst"]] = r["ok"]
    for src in doc["hosts"]:
        row = by.get(src, {})
        out("%s -> %s" % (src, " ".join(d if ok else "X" for d, ok in row.items())))
    for why in doc["not_running"].values():
        out("*** %s" % why.split(";")[0])
    # Mininet prints the integer part ("0% dropped"), then the counts.
    out("*** Results: %d%% dropped (%d/%d received)" % (int(doc["dropped_percent"]),
                                                        doc["received"], doc["sent"]))


def cmd_pingall(a) -> int:
    try:
        st = find_lab(a.lab)
    except LabError as e:
        return _err(str(e))
    if a.wait <= 0:
        return _err("pingall: -W must be a positive number of seconds")
    doc = pingall(st, a.wait, a.nodes)
    if len(doc["hosts"]) < 2:
        return _err("pingall: lab %s has fewer than two hosts with an address%s"
                    % (st["name"], " matching %r" % a.nodes if a.nodes else ""))
    if a.format == "json":
        print(json.dumps(doc, indent=1))
    else:
        render_pingall(doc)
    return 0 if doc["received"] == doc["sent"] else 1


# Every unit iperf3's unit_snprintf prints (a fast lab moves Gbits/sec).
_RATE = re.compile(r"([\d.]+) ((?:|K|M|G|T)Bytes)\s+([\d.]+) ((?:|K|M|G|T)bits)/sec.*\b(sender|receiver)")
_SCALE = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}


def _rate_bps(value: str, unit: str) -> float:
    return float(value) * 1000.0 ** _SCALE[unit[:-4]]


def _bytes(value: str, unit: str) -> int:
    return int(float(value) * 1024 ** _SCALE[unit[:-5]])


def iperf(st, client: str, server: str, seconds: float, port: int, out=None) -> dict:
    """Run emu's iperf3 tool: server on `server` (one test), client on `client`."""
    import time

    from .client.exec import resolver
    from .client.tools import iperf3 as iperf3_tool
    resolve = resolver(st)
    srv_lines: list[str] = []
    ready = threading.Event()

    def srv_out(line):
        srv_lines.append(line)
        if line.startswith("Server listening"):
            ready.set()

    def serve():
        try:
            iperf3_tool.main(["-s", "-1", "-p", str(port)], node_sys(st["nodes"][server]), resolve,
                             srv_out)
        except OSError as e:
            srv_lines.append("iperf3: error - %s" % (e.strerror or e))
        finally:
            ready.set()

    threading.Thread(target=serve, daemon=True).start()
    ready.wait(10)
    time.sleep(0.1)
    lines: list[str] = []

    def cli_out(line):
        lines.append(line)
        if out is not None:
            out(line)

    target = (st.get("hosts") or {}).get(server, server)
    rc = iperf3_tool.main(["-c", target, "-t", str(seconds), "-p", str(port)],
                          node_sys(st["nodes"][client]), resolve, cli_out)
    doc = {"schema": "emu.iperf/1", "lab": st["name"], "client": client, "server": server,
           "server_address": target, "seconds": seconds, "ok": rc == 0,
           "sender": None, "receiver": None,
           "error": None if rc == 0 else next((l for l in lines + srv_lines if "error" in l),
                                               "iperf3 exited %s" % rc)}
    for line in lines:
        m = _RATE.search(line)
        if m:
            doc[m.group(5)] = {"bytes": _bytes(m.group(1), m.group(2)),
                               "bits_per_second": _rate_bps(m.group(3), m.group(4))}
    return doc


def cmd_iperf(a) -> int:
    try:
        st = find_lab(a.lab)
    except LabError as e:
        return _err(str(e))
    for n in (a.client, a.server):
        if n not in st["nodes"]:
            return _err("lab %s has no node %r (nodes: %s)" % (st["name"], n, ", ".join(st["nodes"])))
        dead = dead_node_message(st, n)
        if dead:
            return _err(dead)
    if a.client == a.server:
        return _err("iperf: client and server are the same node %r" % a.client)
    if not 0 < a.time <= 3600:
        return _err("iperf: -t must be between 0 and 3600 seconds")
    if not 0 < a.port < 65536:
        return _err("iperf: -p must be a port 1..65535")
    try:
        doc = iperf(st, a.client, a.server, a.time, a.port,
                    out=None if a.format == "json" else print)
    except OSError as e:
        return _err("iperf: %s" % (e.strerror or e))
    if a.format == "json":
        print(json.dumps(doc, indent=1))
    elif not doc["ok"]:
        return _err("iperf: %s" % doc["error"])
    return 0 if doc["ok"] else 1
