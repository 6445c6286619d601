"""`emu trace` / the shell's `trace`: the path of each matching packet through
the kernel functions of every node it crosses, stitched by the trace id the
wire header carries."""
import argparse
import threading
import time

from .rpc import ControlClient


def parse_filter(tokens, resolve):
    """icmp|tcp|udp|arp, host NAME|ADDR, port N -> trace_start arguments."""
    f = {}
    it = iter(tokens)
    for t in it:
        if t in ("icmp", "tcp", "udp", "arp"):
            f["proto"] = t
        elif t == "host":
            h = next(it)
            f["host"] = resolve(h) or h
        elif t == "port":
            f["port"] = int(next(it))
        elif t == "and":
            continue
        else:
            raise ValueError("trace filter: unknown word %r (use icmp|tcp|udp|arp, host X, port N)" % t)
    return f


def format_paths(rows, out, limit=None):
    """Group rows by trace id; print each packet's path in time order."""
    by_id = {}
    for r in rows:
        by_id.setdefault(r[0], []).append(r)
    packets = sorted(by_id.values(), key=lambda rs: min(r[3] for r in rs))
    if limit is not None:
        packets = packets[:limit]
    for n, rs in enumerate(packets, 1):
        rs.sort(key=lambda r: r[3])
        t0 = rs[0][3]
        out("packet %d  trace id %#x  (%d steps, %d nodes)" % (
            n, rs[0][0], len(rs), len({r[1] for r in rs})))
        last_node = None
        for _tid, node, cpu, t, func, info in rs:
            marker = "|" if node == last_node else ">"
            out("  %s %-6s cpu%-2s %+9.3f ms  %s%s" % (
                marker, node, cpu, (t - t0) * 1000.0, func, (" " + info) if info else ""))
            last_node = node
    return len(packets)


def trace_main(st, argv, out=print, nodes=None, stop=None, rows=None):
    """Trace on every node of the lab; print paths when done (-c packets or -t seconds).

    With rows (a list), the raw rows are appended to it and nothing is printed
    but errors (`emu trace --format json`)."""
    into = rows
    from .exec import resolver
    p = argparse.ArgumentParser(prog="trace")
    p.add_argument("-c", dest="count", type=int, help="stop after this many packets")
    p.add_argument("-t", dest="seconds", type=float, default=None, help="stop after this long")
    p.add_argument("filter", nargs="*")
    a = p.parse_args(argv)
    try:
        filt = parse_filter(a.filter, resolver(st))
    except (ValueError, StopIteration) as e:
        out(str(e) or "trace: incomplete filter")
        return 1
    ctls = {name: ControlClient(info["ctl"], curve=info.get("curve")) for name, info in st["nodes"].items()}
    rows = []
    try:
        for c in ctls.values():
            c.call("trace_start", **filt)
        out("tracing %s on %s; %s" % (
            " ".join("%s=%s" % kv for kv in filt.items()) or "everything", ", ".join(ctls),
            "Ctrl-C to stop" if a.seconds is None and a.count is None else "waiting"))
        deadline = time.monotonic() + a.seconds if a.seconds is not None else None
        stop = stop or threading.Event()
        try:
            while not stop.is_set():
                time.sleep(0.1)
                for c in ctls.values():
                    rows.extend(c.call("trace_dump", clear=True))
                if a.count is not None and len({r[0] for r in rows}) >= a.count:
                    time.sleep(0.2)          # let the packet finish its path
                    for c in ctls.values():
                        rows.extend(c.call("trace_dump", clear=True))
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except KeyboardInterrupt:
            pass
        for c in ctls.values():
            rows.extend(c.call("trace_dump", clear=True))
    finally:
        for c in ctls.values():
            try:
                c.call("trace_stop")
            except OSError:
                pass
            c.close()
    # A cluster lab's nodes stamp with their machine's monotonic clock: each
    # machine's measured offset to the orchestrator's puts them on one line.
    offsets = {n: i.get("clock_offset") or 0.0 for n, i in st["nodes"].items()}
    if any(offsets.values()):
        rows = [[r[0], r[1], r[2], r[3] + offsets.get(r[1], 0.0)] + list(r[4:]) for r in rows]
    if into is not None:
        start = {}                       # trace id -> its first row's time
        for r in rows:
            start[r[0]] = min(start.get(r[0], r[3]), r[3])
        keep = set(sorted(start, key=start.get)[:a.count] if a.count is not None else start)
        into.extend(r for r in rows if r[0] in keep)
        return 0
    n = format_paths(rows, out, a.count)
    if not n:
        out("no packet matched")
    return 0
