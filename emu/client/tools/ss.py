"""ss: sockets of a node, printed as iproute2's ss prints them."""
from . import ToolParser, ToolUsage


def _addr(a, numeric=True):
    ip, port = a
    return "%s:%s" % ("*" if ip == "0.0.0.0" and port == 0 else ip, port if port else "*")


def _info_line(i):
    """The -i line: cc, wscale, rto, rtt, mss, cwnd, ssthresh, bytes and segments."""
    parts = []
    opts = i.get("options", [])
    if "ts" in opts:
        parts.append("ts")
    if "sack" in opts:
        parts.append("sack")
    if i.get("congestion"):
        parts.append(i["congestion"])
    if "wscale" in opts:
        parts.append("wscale:%d,%d" % (i["snd_wscale"], i["rcv_wscale"]))
    parts.append("rto:%g" % (i["rto"] / 1000.0))
    parts.append("rtt:%.3f/%.3f" % (i["rtt"] / 1000.0, i["rttvar"] / 1000.0))
    parts.append("ato:%g" % (i["ato"] / 1000.0))
    parts.append("mss:%d" % i["snd_mss"])
    parts.append("rcvmss:%d" % i["rcv_mss"])
    parts.append("advmss:%d" % i["advmss"])
    parts.append("cwnd:%d" % i["snd_cwnd"])
    if i["snd_ssthresh"] < 0x7FFFFFFF:
        parts.append("ssthresh:%d" % i["snd_ssthresh"])
    for k in ("bytes_sent", "bytes_retrans", "bytes_acked", "bytes_received", "segs_out",
              "segs_in", "data_segs_out", "data_segs_in"):
        if i.get(k):
            parts.append("%s:%d" % (k, i[k]))
    if i.get("retrans") or i.get("total_retrans"):
        parts.append("retrans:%d/%d" % (i["retrans"], i["total_retrans"]))
    if i.get("unacked"):
        parts.append("unacked:%d" % i["unacked"])
    parts.append("rcv_space:%d" % i["rcv_space"])
    parts.append("snd_wnd:%d" % i["snd_wnd"])
    return "\t " + " ".join(parts)


STATES = ("ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "UNCONN",
          "CLOSE-WAIT", "LAST-ACK", "LISTEN", "CLOSING")
# ss's state names and groups (ss.c sstate_namel, SS_CONN ...), in its filter language.
STATE_WORDS = {
    "established": {"ESTAB"}, "syn-sent": {"SYN-SENT"}, "syn-recv": {"SYN-RECV"},
    "fin-wait-1": {"FIN-WAIT-1"}, "fin-wait-2": {"FIN-WAIT-2"}, "time-wait": {"TIME-WAIT"},
    "closed": {"UNCONN"}, "close-wait": {"CLOSE-WAIT"}, "last-ack": {"LAST-ACK"},
    "listening": {"LISTEN"}, "closing": {"CLOSING"}, "all": set(STATES),
    "connected": set(STATES) - {"LISTEN", "UNCONN"},
    "synchronized": set(STATES) - {"LISTEN", "UNCONN", "SYN-SENT"},
    "bucket": {"SYN-RECV", "TIME-WAIT"}, "big": set(STATES) - {"SYN-RECV", "TIME-WAIT"},
}
TIMERS = {1: "on", 2: "keepalive", 3: "timewait", 4: "persist"}
OPS = {"=": "eq", "==": "eq", "eq": "eq", "!=": "ne", "ne": "ne", "neq": "ne", ">": "gt",
       "gt": "gt", "<": "lt", "lt": "lt", ">=": "ge", "ge": "ge", "<=": "le", "le": "le"}


class FilterError(Exception):
    pass


def ms_timer(ms):
    """ss's print_ms_timer: 119min, 59sec, 1.234ms-style times."""
    secs, msecs = ms // 1000, ms % 1000
    minutes, secs = secs // 60, secs % 60
    buf = ""
    if minutes:
        msecs = 0
        buf = "%dmin" % minutes
        if minutes > 9:
            secs = 0
    if secs:
        if secs > 9:
            msecs = 0
        buf += "%d%s" % (secs, "." if msecs else "sec")
    if msecs:
        buf += "%03dms" % msecs
    return buf


def _port_of(word):
    w = word[1:] if word.startswith(":") else word.rsplit(":", 1)[-1]
    try:
        return int(w)
    except ValueError:
        raise FilterError('Error: "%s" does not look like a port.' % word) from None


def parse_filter(words):
    """ss's FILTER: [state S]... then an expression of dport/sport OP :P, dst/src ADDR,
    joined by and/or/not and parentheses. Returns (states or None, predicate)."""
    states = None
    words = list(words)
    while words and words[0] in ("state", "exclude"):
        kw = words.pop(0)
        if not words:
            raise FilterError('Error: "%s" requires an argument.' % kw)
        name = words.pop(0)
        if name not in STATE_WORDS:
            raise FilterError('Error: wrong state name "%s".' % name)
        if kw == "state":
            states = (states or set()) | STATE_WORDS[name]
        else:
            states = (states if states is not None else set(STATES)) - STATE_WORDS[name]
    toks = []
    for w in words:
        toks.extend(w.replace("(", " ( ").replace(")", " ) ").split())
    pos = [0]

    def peek():
        return toks[pos[0]] if pos[0] < len(toks) else None

    def take():
        if pos[0] >= len(toks):
            raise FilterError("Error: an incomplete filter expression.")
        pos[0] += 1
        return toks[pos[0] - 1]

    def cmp(op, a, b):
        return {"eq": a == b, "ne": a != b, "gt": a > b, "lt": a < b, "ge": a >= b,
                "le": a <= b}[op]

    def primary():
        t = take()
        if t == "(":
            e = expr()
            if take() != ")":
                raise FilterError("Error: unbalanced parentheses.")
            return e
        if t in ("not", "!"):
            e = primary()
            return lambda r: not e(r)
        if t in ("dport", "sport"):
            op = "eq"
            if peek() in OPS:
                op = OPS[take()]
            port = _port_of(take())
            i = 1
            key = "peer" if t == "dport" else "local"
            return lambda r: cmp(op, int(r[key][i] or 0), port)
        if t in ("dst", "src"):
            if peek() in OPS:
                take()
            spec = take()
            key = "peer" if t == "dst" else "local"
            host, _, port = spec.rpartition(":") if spec.count(":") == 1 else (spec, "", "")
            host = host or spec
            plen = 32
            if "/" in host:
                host, p = host.split("/", 1)
                plen = int(p)

            def match(r, host=host, plen=plen, port=port, key=key):
                ok = True
                if host not in ("*", "0.0.0.0", ""):
                    ok = _in_prefix(r[key][0], host, plen)
                if ok and port and port != "*":
                    ok = int(r[key][1] or 0) == int(port)
                return ok
            return match
        raise FilterError('Error: "%s" is not a recognized filter word.' % t)

    def conj():
        e = primary()
        while peek() not in (None, "or", "|", "||", ")"):
            if peek() in ("and", "&", "&&"):
                take()
            r = primary()
            e = (lambda a, b: lambda x: a(x) and b(x))(e, r)
        return e

    def expr():
        e = conj()
        while peek() in ("or", "|", "||"):
            take()
            r = conj()
            e = (lambda a, b: lambda x: a(x) or b(x))(e, r)
        return e

    if not toks:
        return states, lambda r: True
    e = expr()
    if pos[0] != len(toks):
        raise FilterError("Error: an incomplete filter expression.")
    return states, e


def _in_prefix(addr, net, plen):
    import socket
    import struct
    try:
        a = struct.unpack("!I", socket.inet_aton(addr))[0]
        n = struct.unpack("!I", socket.inet_aton(net))[0]
    except OSError:
        return False
    mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
    return a & mask == n & mask


def comm_of(pid):
    """/proc/PID/comm: the program's name, as ss -p reads it."""
    try:
        with open("/proc/%d/comm" % int(pid)) as f:
            return f.read().strip()
    except (OSError, ValueError, TypeError):
        return "?"


def _split_addr(a):
    ip, port = a
    return ("*" if ip == "0.0.0.0" and not port else ip), (str(port) if port else "*")


def render(rows, show_netid, show_state, out, noheader=False):
    """ss's column layout: widths from the widest cell; the address right-aligned
    before ':', the port left-aligned after it; Process right after Peer's port."""
    cols = []
    for r in rows:
        la, lp = _split_addr(r["local"])
        pa, pp = _split_addr(r["peer"]) if r["peer"][1] else ("0.0.0.0", "*")
        cols.append((r["proto"], r["state"], str(r["recv_q"]), str(r["send_q"]), la, lp, pa, pp,
                     r.get("_proc", "")))
    w_net = max([5] + [len(c[0]) for c in cols])
    w_st = max([5] + [len(c[1]) for c in cols])
    w_la = max([0] + [len(c[4]) for c in cols])
    w_lp = max([4] + [len(c[5]) for c in cols])
    w_pa = max([0] + [len(c[6]) for c in cols])
    w_pp = max([4] + [len(c[7]) for c in cols])
    # "Local Address:Port" spans address, ':' and port; widen the address to fit it.
    w_la = max(w_la, len("Local Address:Port") - 1 - w_lp)
    w_pa = max(w_pa, len("Peer Address:Port") - 1 - w_pp)
    if not noheader:
        head = ""
        if show_netid:
            head += "%-*s " % (w_net, "Netid")
        if show_state:
            head += "%-*s " % (w_st, "State")
        head += "Recv-Q Send-Q %*s %*sProcess" % (w_la + 1 + w_lp, "Local Address:Port",
                                                  w_pa + 1 + w_pp, "Peer Address:Port")
        out(head)
    lines = []
    for c in cols:
        line = ""
        if show_netid:
            line += "%-*s " % (w_net, c[0])
        if show_state:
            line += "%-*s " % (w_st, c[1])
        line += "%-6s %-6s %*s:%-*s %*s:%-*s %s" % (c[2], c[3], w_la, c[4], w_lp, c[5],
                                                    w_pa, c[6], w_pp, c[7], c[8])
        lines.append(line)
    return lines


def main(argv, ctl, out=print, err=None):
    err = err or out
    p = ToolParser(prog="ss", add_help=True)
    for flag, dest in (("-t", "tcp"), ("-u", "udp"), ("-w", "raw"), ("-a", "all"), ("-l", "listening"),
                       ("-n", "numeric"), ("-p", "processes"), ("-i", "info"), ("-H", "noheader"),
                       ("-e", "extended"), ("-m", "memory"), ("-o", "options"), ("-4", "ipv4")):
        p.add_argument(flag, dest=dest, action="store_true")
    p.add_argument("filter", nargs="*")
    # ss accepts combined flags such as -tanp: split them into single ones
    flat = []
    for a in argv:
        if a.startswith("-") and not a.startswith("--") and len(a) > 2:
            flat.extend("-" + c for c in a[1:])
        else:
            flat.append(a)
    try:
        a = p.parse_args(flat)
    except ToolUsage as e:
        # getopt_long's words, then iproute2's usage line (ss exits -1).
        bad = str(e).split(": ", 1)[-1].split()[0] if "unrecognized" in str(e) else str(e)
        err("ss: unrecognized option '%s'" % bad if bad.startswith("--")
            else "ss: invalid option -- '%s'" % bad.lstrip("-"))
        err("Usage: ss [ OPTIONS ]")
        return 255
    except SystemExit as e:                   # --help
        return 0 if not e.code else 255
    try:
        states, pred = parse_filter(a.filter)
    except FilterError as e:
        err(str(e))
        return 1
    protos = {n for n, on in (("tcp", a.tcp), ("udp", a.udp), ("raw", a.raw)) if on} or {"tcp", "udp", "raw"}
    ext = a.extended or a.memory or a.options
    rows = ctl.call("sock_diag", info=a.info, ext=ext) if ext else ctl.call("sock_diag", info=a.info)
    owners = ctl.call("sock_owners") if a.processes else {}
    shown = []
    for r in rows:
        if r["proto"] not in protos:
            continue
        if states is not None:
            if r["state"] not in states:
                continue
        else:
            listening = r["state"] in ("LISTEN", "UNCONN")
            if a.listening and not listening:
                continue
            if not a.listening and not a.all and listening:
                continue
        if not pred(r):
            continue
        proc = ""
        own = owners.get(str(r["id"]))
        if own:
            proc = 'users:(("%s",pid=%s,fd=%d))' % (comm_of(own[0]), own[0], own[1])
        extra = []
        if a.options and r.get("timer"):
            kind, ms, retrans = r["timer"]
            extra.append("timer:(%s,%s,%d)" % (TIMERS.get(kind, "unknown"), ms_timer(ms), retrans))
        if a.extended:
            extra.append("ino:%d sk:%x" % (r["id"] % 10000000, r["id"]))
            if r["proto"] == "tcp":
                sd = r.get("shutdown", 0)
                extra.append("%s-%s" % ("-" if sd & 1 else "<", "-" if sd & 2 else ">"))
        r["_proc"] = " ".join(x for x in [proc] + extra if x)
        shown.append(r)
    show_netid = len(protos) > 1
    lines = render(shown, show_netid, states is None or len(states) > 1, out, a.noheader)
    for r, line in zip(shown, lines, strict=False):
        out(line.rstrip() if not a.memory else line)
        if a.memory and r.get("skmem"):
            m = r["skmem"]
            out("\t skmem:(r%d,rb%d,t%d,tb%d,f%d,w%d,o%d,bl%d,d%d)" % tuple(m))
        if a.info and r.get("info"):
            out(_info_line(r["info"]))
    return 0
