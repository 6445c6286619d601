"""What a failing test leaves behind: each node's counters and log, compactly.

Only what is non-zero is printed (a lab's counters are mostly zeros), one
line per group, so the report stays readable:

    h1 (host, pid 4242)
      Ip: InReceives=4 InDelivers=4 OutRequests=5
      Udp: InDatagrams=2 OutDatagrams=3 NoPorts=1
      dev eth0: rx_packets=4 rx_bytes=296 tx_packets=5 tx_bytes=338 tx_dropped=1
      softnet cpu0: processed=4
      drops: NO_SOCKET=1
      udp UNCONN 0.0.0.0:7000 -> 0.0.0.0:0 recv_q=0 send_q=0
      log: ...last lines...
"""


# Settings that live in the MIBs (RFC 1213, RFC 2012) and the cpu index of
# softnet_stat rows: not counters.
_NOT_COUNTERS = frozenset(("Forwarding", "DefaultTTL", "RtoAlgorithm", "RtoMin", "RtoMax",
                           "MaxConn", "cpu"))


def _nonzero(d):
    return " ".join("%s=%s" % (k, v) for k, v in d.items()
                    if isinstance(v, (int, float)) and v and k not in _NOT_COUNTERS)


def node_evidence(node, log_lines=10, timeout=2.0):
    """Lines describing one node: counters that are not zero, then its log tail."""
    lines = ["%s (%s, pid %s)" % (node.name, node.info.get("kind", "?"), node.info.get("pid"))]
    try:
        c = node.call("counters", timeout=timeout)
    except OSError as e:
        lines.append("  counters: unavailable (%s)" % (e.strerror or e))
        c = None
    if c is not None:
        for mib, values in c.get("snmp", {}).items():
            text = _nonzero(values)
            if text:
                lines.append("  %s: %s" % (mib, text))
        for dev, stats in c.get("dev", {}).items():
            text = _nonzero(stats)
            if text:
                lines.append("  dev %s: %s" % (dev, text))
        for cpu, sd in enumerate(c.get("softnet_stat", [])):
            text = _nonzero(sd) if isinstance(sd, dict) else ""
            if text:
                lines.append("  softnet cpu%d: %s" % (cpu, text))
        for br, stats in c.get("bridge", {}).items():
            text = _nonzero(stats)
            if text:
                lines.append("  bridge %s: %s" % (br, text))
        text = _nonzero(c.get("drop_reasons", {}))
        lines.append("  drops: %s" % (text or "none"))
    try:
        socks = node.call("sock_diag", timeout=timeout)
    except OSError:
        socks = []                   # a node without the op: nothing to add
    for s in socks:
        lines.append("  %s %s %s:%s -> %s:%s recv_q=%s send_q=%s" % (
            s["proto"], s["state"], s["local"][0], s["local"][1], s["peer"][0], s["peer"][1],
            s["recv_q"], s["send_q"]))
    log = node.lab.log_lines(node.name, log_lines)
    if log:
        lines.append("  log (last %d lines):" % len(log))
        lines.extend("    " + line for line in log)
    return lines


def process_evidence(proc, lines=10):
    """A NodeProcess's state and the last lines of its output."""
    state = "running" if proc.is_alive() else "exit status %s" % proc.returncode
    out = ["%s on %s (pid %d, %s)" % (proc.name, proc.node, proc.pid, state)]
    for label, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
        tail = text.splitlines()[-lines:]
        if tail:
            out.append("  %s (last %d lines):" % (label, len(tail)))
            out.extend("    " + line for line in tail)
    return out


def lab_evidence(lab, log_lines=10, timeout=2.0):
    """The evidence of every node, then of every process started on the nodes."""
    lines = ["lab %s, run dir %s" % (lab.name, lab.run_dir)]
    for node in lab.nodes():
        lines.extend(node_evidence(node, log_lines, timeout))
    for proc in lab.processes():
        lines.extend(process_evidence(proc, log_lines))
    return "\n".join(lines)
