"""--trace: each packet of the script with the kernel functions it went through.

The kernel under test runs with a tracer (emu's tracepoints, as `emu trace`
uses); the tun device hands each packet's trace id to the runner, which
prints, per script packet, the packet (in the script's terms) and the path
recorded under that id.
"""


def print_trace(runner):
    out = runner.config.out
    rows = runner.net.tracer.dump(clear=True) if runner.net.tracer is not None else []
    by_id = {}
    for tid, _node, _cpu, _t, func, info in rows:
        by_id.setdefault(tid, []).append(func if info is None else "%s(%s)" % (func, info))
    for tid, event, direction, text in runner.trace_lines:
        out("%s:%d: %s %s" % (runner.name, event.line, direction, text))
        path = by_id.get(tid) if tid else None
        out("    " + (" -> ".join(path) if path else "(no trace recorded)"))
    runner.trace_lines = []
