"""`emu status`: what every lab's nodes are doing, fast enough for 1000 nodes.

The figures are taken in one pass: every node process's CPU time is read,
the command sleeps one shared interval, and each is read again (psutil's
cpu_percent(None) against its previous call), so the cost is one interval
plus a few /proc reads per node, not an interval per node. The oops counts
come from an `info` control call to every node, sent to all of them (in
batches, one ZeroMQ socket each) before any answer is awaited.
"""
from __future__ import annotations

import fnmatch
import json
import os
import time
from typing import Any

import psutil

from .supervisor import DEAD_STATES, node_state_text

CPU_INTERVAL = 0.2          # seconds between the two CPU readings of the pass
OOPS_TIMEOUT = 1.0          # seconds to wait for the info answers
OOPS_BATCH_MIN = 50         # sockets open at once when descriptors are short


def match_nodes(names, patterns: str | None) -> list[str]:
    """The names matching any of the comma-separated glob patterns (all if None)."""
    if not patterns:
        return list(names)
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in pats)]


def _processes(nodes: dict) -> dict[Any, psutil.Process]:
    """The live process of each node recorded as running (its PID and start time checked)."""
    procs = {}
    for name, info in nodes.items():
        if info.get("state", "running") in DEAD_STATES or not isinstance(info.get("pid"), int):
            continue
        try:
            p = psutil.Process(info["pid"])
            if info.get("create_time") and abs(p.create_time() - info["create_time"]) > 0.01:
                continue             # the PID now belongs to someone else
            p.cpu_percent(None)      # the first reading; the second comes after the interval
            procs[name] = p
        except psutil.Error:
            pass
    return procs


def _measure(procs: dict[Any, psutil.Process]) -> dict[Any, dict]:
    out = {}
    for name, p in procs.items():
        try:
            with p.oneshot():
                out[name] = {"status": p.status(), "cpu": round(p.cpu_percent(None), 1),
                             "rss": p.memory_info().rss, "threads": p.num_threads()}
        except psutil.Error:
            pass
    return out


def _socket_budget(wanted: int) -> int:
    """How many sockets may be open at once: each takes about two descriptors,
    so raise the soft RLIMIT_NOFILE toward the hard one if that is what it takes."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 3 * wanted + 256
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(OOPS_BATCH_MIN, min(wanted, (soft - 256) // 3))


def oops_counts(endpoints: dict[str, str], timeout: float = OOPS_TIMEOUT,
                batch: int | None = None, curves: dict | None = None) -> dict[str, int | None]:
    """Each node's kernel oops count (None when it did not answer), asked concurrently:
    every request is sent before any answer is awaited (in batches only when the
    descriptor limit is too low for one socket per node). curves: the CURVE keys
    of the nodes whose endpoint is tcp:// (a cluster lab's)."""
    import msgpack
    import zmq
    req = msgpack.packb({"op": "info", "args": {}}, use_bin_type=True)
    result: dict[str, int | None] = dict.fromkeys(endpoints)
    names = list(endpoints)
    batch = batch or _socket_budget(len(names))
    ctx = zmq.Context()
    ctx.setsockopt(zmq.MAX_SOCKETS, batch + 16)
    try:
        for i in range(0, len(names), batch):
            _ask(ctx, req, {n: endpoints[n] for n in names[i:i + batch]}, timeout, result,
                 curves or {})
    finally:
        ctx.term()
    return result


def _ask(ctx, req: bytes, endpoints: dict[str, str], timeout: float, result: dict,
         curves: dict) -> None:
    import msgpack
    import zmq
    socks = {}
    poller = zmq.Poller()
    try:
        for name, endpoint in endpoints.items():
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            socks[s] = name
            if curves.get(name):
                from .wire.curve import curve_client
                curve_client(s, curves[name])
            try:
                s.connect(endpoint)
                s.send(req, zmq.NOBLOCK)
            except zmq.ZMQError:
                continue
            poller.register(s, zmq.POLLIN)
        deadline = time.monotonic() + timeout
        waiting = len(poller.sockets)
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for s, _ in poller.poll(int(left * 1000) + 1):
                poller.unregister(s)
                waiting -= 1
                try:
                    reply = msgpack.unpackb(s.recv(zmq.NOBLOCK), raw=False)
                    if reply.get("ok"):
                        result[socks[s]] = int(reply["result"].get("oops", 0))
                except (zmq.ZMQError, ValueError, TypeError, AttributeError,
                        msgpack.UnpackException):
                    pass                 # a malformed answer counts as none
    finally:
        for s in socks:
            s.close(0)


def collect(labs: list[dict], patterns: str | None = None, details: bool = True,
            interval: float = CPU_INTERVAL) -> list[dict]:
    """Every lab's state with each node's figures; details=False leaves out the
    per-node entries and the oops calls (the summary alone).

    A node of a cluster lab on another host (cluster_relay.on_this_host) has
    no process here: its state is the one the lab's supervisor records, and
    its CPU and memory figures are not shown."""
    from .cluster_relay import on_this_host
    procs = {}
    remote = set()
    for li, st in enumerate(labs):
        nodes = st.get("nodes") or {}
        remote |= {(li, n) for n, info in nodes.items() if not on_this_host(info)}
        local = {n: info for n, info in nodes.items() if (li, n) not in remote}
        for name, p in _processes(local).items():
            procs[(li, name)] = p
    if procs:
        time.sleep(interval)
    figures = _measure(procs)              # keyed by (lab index, node)
    out = []
    for li, st in enumerate(labs):
        nodes = st.get("nodes") or {}
        shown = match_nodes(nodes, patterns) if details else []
        asked = [n for n in shown if ((li, n) in figures or (li, n) in remote)
                 and nodes[n].get("ctl") and nodes[n].get("state", "running") not in DEAD_STATES]
        oops = oops_counts({n: nodes[n]["ctl"] for n in asked},
                           curves={n: nodes[n].get("curve") for n in asked}) if asked else {}
        states: dict[str, int] = {}
        rss, cpu = 0, 0.0
        entries = {}
        for name, info in nodes.items():
            fig = figures.get((li, name))
            state = info.get("state", "running")
            if state not in DEAD_STATES and (li, name) in remote:
                state = "running"        # as the supervisor records it
            elif state not in DEAD_STATES:
                if fig is None or fig["status"] == psutil.STATUS_ZOMBIE:
                    state = "gone"       # recorded as running, but its process is not
                elif fig["status"] in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
                    state = "sigstopped"  # kill -STOP: alive, but runs nothing
                else:
                    state = "running"
            states[state] = states.get(state, 0) + 1
            if fig is not None:
                rss += fig["rss"]
                cpu += fig["cpu"]
            if name not in shown and details:
                continue
            ex = info.get("exit") or {}
            entry = {"kind": info.get("kind"), "pid": info.get("pid"), "state": state,
                     "state_text": node_state_text(info) if state in DEAD_STATES else state,
                     "cpu": fig and fig["cpu"], "rss": fig and fig["rss"],
                     "threads": fig and fig["threads"], "oops": oops.get(name),
                     "process_status": fig and fig["status"],
                     # a cluster lab's machine: "INDEX/ADDRESS" (emu/cluster.py)
                     "machine": None if info.get("machine") is None
                     else "%s/%s" % (info["machine"], info.get("machine_ip")),
                     "last_log": ex["log"][-1] if ex.get("log") and not ex.get("by_user")
                     and state in DEAD_STATES else None}
            if details:
                entries[name] = entry
            elif state not in ("running",):
                entries[name] = entry          # the summary still names what is down
        summary = {"nodes": len(nodes), "states": states, "rss": rss, "cpu": round(cpu, 1)}
        lab = {k: st.get(k) for k in ("name", "run_dir", "topology", "orchestrator_pid", "status")}
        lab["alive"] = st.get("alive", True)
        lab["seed"] = st.get("seed")
        lab["clock"] = clock_of(st)
        lab.update(partition=st.get("partition"), links=st.get("links") or [],
                   fault_log=st.get("fault_log") or [], summary=summary,
                   shown=len(shown) if details else 0, nodes=entries)
        out.append(lab)
    return out


def clock_of(st: dict) -> dict:
    """{"mode": "real"} or a virtual-time lab's {"mode", "now", "ratio", "rounds", "jumps"}."""
    if st.get("clock") != "virtual" or not st.get("run_dir"):
        return {"mode": "real"}
    from .nodes.vclock import read_page
    page = read_page(st["run_dir"]) or {}
    return {"mode": "virtual", "now": page.get("now"), "ratio": page.get("ratio"),
            "rounds": page.get("rounds"), "jumps": page.get("jumps")}


def clock_line(lab: dict) -> str | None:
    """'clock virtual: 66.000 s (x14.8 wall time), seed 42, 73 rounds' or None (real time)."""
    c = lab.get("clock") or {}
    if c.get("mode") != "virtual" or c.get("now") is None:
        return None
    return "clock virtual: %.3f s (x%.1f wall time), seed %s, %d rounds, %d jumps" % (
        c["now"], c["ratio"], lab.get("seed"), c["rounds"], c["jumps"])


def to_json(labs: list[dict]) -> str:
    return json.dumps({"schema": "emu.status/1", "labs": labs}, indent=1)


def _size(n: float) -> str:
    """1536 -> '1.5K', 15 * 2**30 -> '15.0G'."""
    for unit in ("B", "K", "M"):
        if n < 1024:
            return "%d%s" % (n, unit) if unit == "B" else "%.1f%s" % (n, unit)
        n /= 1024
    return "%.1fG" % n


def summary_line(s: dict) -> str:
    """'1051 nodes: 1049 running, 1 crashed, 1 stopped; RSS 14.7G; CPU 3.5%'."""
    order = ["running", "crashed", "killed", "exited", "stopped", "gone"]
    states = sorted(s["states"].items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order
                                                           else len(order), kv[0]))
    return "%d nodes: %s; RSS %s; CPU %.1f%%" % (
        s["nodes"], ", ".join("%d %s" % (n, st) for st, n in states) or "none",
        _size(s["rss"]), s["cpu"])


def render(labs: list[dict], details: bool = True, patterns: str | None = None,
           out=print) -> None:
    """The text view: per lab its line, summary, faults, and (details) the node table."""
    for lab in labs:
        out("lab %s  run dir %s  orchestrator pid %s  %s" % (
            lab["name"], lab["run_dir"], lab["orchestrator_pid"],
            lab["status"] if lab["alive"] else "stale (orchestrator gone)"))
        out("  " + summary_line(lab["summary"]))
        cl = clock_line(lab)
        if cl:
            out("  " + cl)
        if lab.get("partition"):
            p = lab["partition"]
            out("  partition: %s%s" % (" | ".join(",".join(g) for g in p["groups"]),
                                       " (one way)" if p.get("one_way") else ""))
        down = [l for l in lab["links"] if l["state"] != "up"]
        for l in down if details else down[:10]:
            out("  link %s <-> %s: %s" % (l["a"], l["b"], l["state"]))
        if len(down) > 10 and not details:
            out("  ... and %d more links not up (emu link lists them all)" % (len(down) - 10))
        nodes = lab["nodes"]
        if details:
            if patterns:
                out("  %d of %d nodes match %r" % (lab["shown"], lab["summary"]["nodes"], patterns))
            w = max([8] + [len(n) for n in nodes])
            mw = max([0] + [len(n.get("machine") or "") for n in nodes.values()])
            def mach(n, mw=mw):
                return " %-*s" % (mw, n.get("machine") or "-") if mw else ""
            if nodes:
                out("  %-*s %-7s%s %7s %-9s %6s %9s %5s %5s" % (
                    w, "NODE", "KIND", mach({"machine": "MACHINE"}), "PID", "STATE",
                    "CPU%", "RSS", "THR", "OOPS"))
            for name, n in nodes.items():
                if n["state"] in DEAD_STATES:
                    out("  %-*s %-7s%s %7s %s" % (w, name, n["kind"], mach(n), "-",
                                                  n["state_text"]))
                    if n["last_log"]:
                        out("  %*s last log: %s" % (w, "", n["last_log"][:100]))
                    continue
                dash = lambda v, f: "-" if v is None else f % v   # noqa: E731
                out("  %-*s %-7s%s %7s %-9s %6s %9s %5s %5s" % (
                    w, name, n["kind"], mach(n), n["pid"], n["state"], dash(n["cpu"], "%.1f"),
                    "-" if n["rss"] is None else _size(n["rss"]), dash(n["threads"], "%d"),
                    dash(n["oops"], "%d")))
        else:
            for name, n in list(nodes.items())[:10]:       # the summary lists only those not running
                out("  %s: %s%s" % (name, n["state_text"],
                                    " (last log: %s)" % n["last_log"][:100] if n["last_log"] else ""))
            if len(nodes) > 10:
                out("  ... and %d more not running (emu status shows them all)" % (len(nodes) - 10))
        if lab["fault_log"]:
            out("  recent faults (all in %s):" % os.path.join(lab["run_dir"], "faults.log"))
            for line in lab["fault_log"][-3:]:
                out("    " + line)
