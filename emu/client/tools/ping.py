"""ping: ICMP echo over a raw socket, printed the way iputils ping prints it.

Like iputils: a SOCK_RAW/IPPROTO_ICMP socket, an ICMP_FILTER that keeps only
echo replies and errors, a struct timeval at the start of the payload for
the round-trip time, and matching on our identifier.
"""
import errno
import math
import os
import re
import struct
import time

from ...kernel.hdr.checksum import ip_compute_csum
from ..socket import AF_INET, IPPROTO_ICMP, SOCK_DGRAM, SOCK_RAW, socket
from . import ToolParser, ToolUsage

ICMP_ECHO, ICMP_ECHOREPLY = 8, 0
ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED = 3, 11
SOL_RAW, ICMP_FILTER = 255, 1
UNREACH_TEXT = {0: "Destination Net Unreachable", 1: "Destination Host Unreachable",
                2: "Destination Protocol Unreachable", 3: "Destination Port Unreachable",
                4: "Frag needed"}


class PingResult:
    """What one run of ping saw."""

    def __init__(self, target, address):
        self.target = target
        self.address = address
        self.transmitted = 0
        self.received = 0
        self.errors = 0
        self.rtts = []          # milliseconds
        self.replies = []       # (seq, ttl, rtt_ms, bytes)
        self.lines = []
        self.elapsed_ms = 0
        self.pipe = 0           # most probes outstanding when an answer came (iputils' pipesize)
        self.duplicates = 0     # replies to a probe already answered (iputils' nrepeats)
        self.answered = {}      # seq -> send time, of the probes answered (to time a duplicate)

    @property
    def loss(self):
        return 0.0 if not self.transmitted else 100.0 * (self.transmitted - self.received) / self.transmitted

    def rtt_stats(self):
        """(min, avg, max, mdev) in ms, as iputils computes them."""
        if not self.rtts:
            return None
        n = len(self.rtts)
        avg = sum(self.rtts) / n
        mdev = math.sqrt(max(0.0, sum(r * r for r in self.rtts) / n - avg * avg))
        return min(self.rtts), avg, max(self.rtts), mdev

    def summary_lines(self):
        out = ["", "--- %s ping statistics ---" % self.target]
        line = "%d packets transmitted, %d received" % (self.transmitted, self.received)
        if self.duplicates:
            line += ", +%d duplicates" % self.duplicates
        if self.errors:
            line += ", +%d errors" % self.errors
        line += ", %g%% packet loss, time %dms" % (round(self.loss), self.elapsed_ms)
        out.append(line)
        st = self.rtt_stats()
        tail = []
        if st:
            tail.append("rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms" % st)
        if self.pipe > 1:
            tail.append("pipe %d" % self.pipe)
        out.append(", ".join(tail))             # iputils ends with a newline even if empty
        return out


_ECHO_HDR = struct.Struct("!BBHHH")
_TIMEVAL = struct.Struct("=qq")
_PATTERNS: dict = {}


def _pattern(size):
    """What follows the timeval: iputils' byte pattern, built once per size
    (iputils fills its packet buffer once, before the first probe)."""
    p = _PATTERNS.get(size)
    if p is None:
        head = _TIMEVAL.size if size >= _TIMEVAL.size else 0
        p = _PATTERNS[size] = bytes((i + head) & 0xFF for i in range(size - head))
    return p


def _echo(ident, seq, size):
    """An echo request: a struct timeval (if it fits), then iputils' byte pattern."""
    return _echo_stamped(ident, seq, size)[0]


def _echo_stamped(ident, seq, size):
    """An echo request and the monotonic time of its stamp. As in iputils'
    ping4_send_probe, the time is read once the rest of the packet is
    ready, just before its checksum and the send: the round trip does not
    count building the probe."""
    body = _pattern(size)
    hdr = _ECHO_HDR.pack(ICMP_ECHO, 0, 0, ident, seq)
    if size >= _TIMEVAL.size:
        now = time.time()
        stamp = time.monotonic()
        sec = int(now)
        pkt = bytearray(hdr + _TIMEVAL.pack(sec, int((now - sec) * 1e6)) + body)
    else:
        stamp = time.monotonic()
        pkt = bytearray(hdr + body)
    c = ip_compute_csum(pkt)
    pkt[2], pkt[3] = c >> 8, c & 0xFF
    return bytes(pkt), stamp


PMTUDISC = {"dont": 0, "want": 1, "do": 2, "probe": 3}     # -M: IP_MTU_DISCOVER values
SO_BINDTODEVICE = 25
MAXWAIT = 10.0            # iputils' default linger (-W) when nothing was answered


class _Opts:
    """The display options of iputils: -D, -O, -A, -f."""

    def __init__(self, timestamps=False, outstanding=False, adaptive=False, flood=False):
        self.timestamps = timestamps
        self.outstanding = outstanding
        self.adaptive = adaptive
        self.flood = flood


def ping(endpoint, target, address, count=4, interval=1.0, size=56, timeout=None,
         deadline=None, ttl=None, quiet=False, out=None, pmtudisc=None, linger=None,
         device=None, source=None, opts=None):
    """Run ping from the node at endpoint; returns a PingResult. out(line) prints.

    linger: how long to wait after the last probe when nothing was answered
    (iputils: -W, else 10 s); None keeps the library's short wait.
    """
    res = PingResult(target, address)
    emit = out or (lambda line: None)
    o = opts or _Opts()
    s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP, node=endpoint)
    flood_marks = []
    try:
        # Keep echo replies and the errors about our echoes (iputils' filter).
        mask = 0xFFFFFFFF & ~((1 << ICMP_ECHOREPLY) | (1 << ICMP_DEST_UNREACH) | (1 << ICMP_TIME_EXCEEDED))
        s.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("=I", mask))
        if device is not None:
            s.setsockopt(1, SO_BINDTODEVICE, device.encode())
        if source is not None:
            s.bind((source, 0))
        if ttl is not None:
            s.setsockopt(0, 2, ttl)
        if pmtudisc is not None:
            s.setsockopt(0, 10, PMTUDISC[pmtudisc])             # IP_MTU_DISCOVER
        ident = os.getpid() & 0xFFFF
        frm = ""
        if device is not None:
            frm = " from %s %s:" % (source or _src_for(endpoint, address, device), device)
        elif source is not None:
            frm = " from %s :" % source
        header = "PING %s (%s)%s %d(%d) bytes of data." % (target, address, frm, size, size + 28)
        res.lines.append(header)
        emit(header)
        start = time.monotonic()
        if timeout is not None:
            wait_last = timeout
        elif linger is not None:
            wait_last = linger
        else:
            wait_last = max(2.0 * interval, 1.0)
        seq = 0
        pending = {}           # seq -> send time, until answered
        sent_at = {}
        next_send = start
        ewma = [0.0]           # iputils' rtt*8 ewma (microseconds)
        while True:
            now = time.monotonic()
            if deadline is not None and now - start >= deadline:
                break
            if count is not None and res.received + res.errors >= count:
                break
            if (count is None or seq < count) and now >= next_send:
                if o.outstanding and seq and seq in pending:
                    _show(res, emit, quiet, "no answer yet for icmp_seq=%d" % seq, o)
                seq += 1
                pkt, pending[seq] = _echo_stamped(ident, seq, size)
                sent_at[seq] = pending[seq]
                try:
                    s.sendto(pkt, (address, 0))
                    res.transmitted += 1
                    if o.flood:
                        flood_marks.append(".")
                except OSError as e:
                    res.errors += 1
                    line = "ping: sendmsg: %s" % e.strerror
                    res.lines.append(line)
                    emit(line)
                    res.transmitted += 1
                if o.adaptive and res.rtts:
                    # -A: the interval follows the round trip (iputils: ewma of rtt, >= 2 ms
                    # for a user, here down to the flood floor).
                    next_send = time.monotonic() + max(ewma[0] / 8e6, 0.002)
                elif o.flood:
                    next_send = time.monotonic() + 0.01
                else:
                    next_send += interval
            if count is not None and seq >= count:
                if res.received and linger is not None and timeout is None:
                    # iputils: after the last probe, 2 * the longest rtt (at least -i).
                    wait_last = max(2.0 * max(res.rtts) / 1000.0, interval)
                if now >= sent_at[seq] + wait_last:
                    break
                wake = sent_at[seq] + wait_last
            else:
                wake = next_send
            if deadline is not None:
                wake = min(wake, start + deadline)
            s.settimeout(max(0.0005, wake - time.monotonic()))
            try:
                data, _ = s.recvfrom(65536)
                # iputils reads the time as the reply arrives (recvmsg), before
                # it parses the reply: the round trip ends here.
                arrived = time.monotonic()
            except TimeoutError:
                continue
            got = _handle(data, ident, pending, res, emit, quiet, address, o, arrived)
            if got and (o.flood or o.adaptive):
                rtt_us = res.rtts[-1] * 1000.0
                ewma[0] = rtt_us * 8 if not ewma[0] else ewma[0] + rtt_us - ewma[0] / 8
                if o.flood:
                    flood_marks.append("\b \b")
                    if count is None or seq < count:
                        next_send = time.monotonic()
                else:
                    next_send = min(next_send, time.monotonic() + max(ewma[0] / 8e6, 0.002))
    except KeyboardInterrupt:
        pass       # Ctrl-C: like iputils, stop and print the statistics
    finally:
        s.close()
    res.elapsed_ms = int((time.monotonic() - start) * 1000)
    summary = res.summary_lines()
    if o.flood:
        emit("".join(flood_marks))
        summary = summary[1:]               # the dots' line ends where the blank line would
    if (o.flood or o.adaptive) and res.transmitted > 1 and res.received:
        ipg = int(res.elapsed_ms * 1000 / (res.transmitted - 1))
        e = int(ewma[0])
        summary[-1] += ", ipg/ewma %d.%03d/%d.%03d ms" % (ipg // 1000, ipg % 1000, e // 8000,
                                                          (e // 8) % 1000)
    for line in summary:
        res.lines.append(line)
        emit(line)
    return res


def _src_for(endpoint, address, device):
    """The source address the kernel would pick (what iputils prints after "from")."""
    probe = socket(AF_INET, SOCK_DGRAM, 0, node=endpoint)
    try:
        if device is not None:
            probe.setsockopt(1, SO_BINDTODEVICE, device.encode())
        probe.connect((address, 1025))
        return probe.getsockname()[0]
    except OSError:
        return "0.0.0.0"
    finally:
        probe.close()


def _show(res, emit, quiet, line, o):
    if o.timestamps:
        line = "[%.6f] %s" % (time.time(), line)
    res.lines.append(line)
    if not quiet and not o.flood:
        emit(line)


def _handle(data, ident, pending, res, emit, quiet, address, o=None, arrived=None):
    """One ICMP message: True for an echo reply of ours. arrived: when
    recvfrom returned it (monotonic; now if not given)."""
    o = o or _Opts()
    if len(data) < 28:
        return False
    ihl = (data[0] & 15) * 4
    ttl = data[8]
    src = ".".join(str(b) for b in data[12:16])
    icmp = data[ihl:]
    if len(icmp) < 8:
        return False
    typ, code = icmp[0], icmp[1]
    if typ == ICMP_ECHOREPLY:
        rid, rseq = struct.unpack_from("!HH", icmp, 4)
        if rid != ident or src != address:
            return False
        dup = rseq not in pending
        if dup and rseq not in res.answered:
            return False
        # iputils' pipesize: probes sent from this one on, when its answer came
        # (ntransmitted - seq + 1); a lost probe does not count.
        res.pipe = max(res.pipe, res.transmitted - rseq + 1)
        sent = res.answered[rseq] if dup else pending.pop(rseq)
        rtt = ((time.monotonic() if arrived is None else arrived) - sent) * 1000.0
        res.rtts.append(rtt)          # a duplicate's time counts too, as in iputils
        if dup:
            res.duplicates += 1
        else:
            res.answered[rseq] = sent
            res.received += 1
            res.replies.append((rseq, ttl, rtt, len(icmp)))
        line = "%d bytes from %s: icmp_seq=%d ttl=%d time=%s ms%s" % (
            len(icmp), src, rseq, ttl, ("%.3f" % rtt) if rtt < 100 else ("%.1f" % rtt),
            " (DUP!)" if dup else "")
        _show(res, emit, quiet, line, o)
        return not dup
    if typ in (ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED) and len(icmp) >= 8 + 28:
        inner = icmp[8:]
        iihl = (inner[0] & 15) * 4
        iid, iseq = struct.unpack_from("!HH", inner, iihl + 4)
        if iid != ident:
            return False
        res.errors += 1
        res.pipe = max(res.pipe, res.transmitted - iseq + 1)
        pending.pop(iseq, None)
        text = UNREACH_TEXT.get(code, "Dest Unreachable, Bad Code: %d" % code) \
            if typ == ICMP_DEST_UNREACH else "Time to live exceeded"
        if typ == ICMP_DEST_UNREACH and code == 4:
            text = "Frag needed and DF set (mtu = %d)" % struct.unpack_from("!H", icmp, 6)[0]
        if o.flood:
            res.lines.append("E")
            return False
        _show(res, emit, quiet, "From %s icmp_seq=%d %s" % (src, iseq, text), o)
    return False


class _BadArg(Exception):
    """A bad option value: iputils' message and exit status."""

    def __init__(self, msg, status):
        super().__init__(msg)
        self.status = status


_LONG_MAX = 2 ** 63 - 1
_INT_MAX = 2 ** 31 - 1
_ERANGE = "Numerical result out of range"


def _strtol_or_err(text, lo, hi):
    """iputils' strtol_or_err(str, "invalid argument", lo, hi): a whole base-10 integer
    (strtol: leading blanks and a sign, nothing after), else exit 1."""
    if not re.fullmatch(r"[ \t\n\v\f\r]*[+-]?[0-9]+", text):
        raise _BadArg("invalid argument: '%s'" % text, 1)
    n = int(text)
    if not -_LONG_MAX - 1 <= n <= _LONG_MAX:
        raise _BadArg("invalid argument: '%s': %s" % (text, _ERANGE), 1)
    if not lo <= n <= hi:
        raise _BadArg("invalid argument: '%s': out of range: %d <= value <= %d" % (text, lo, hi), 1)
    return n


def _ping_strtod(text, what):
    """iputils' ping_strtod(str, what): a whole finite number (strtod), else exit 2."""
    if not re.fullmatch(r"[ \t\n\v\f\r]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", text):
        if re.fullmatch(r"[ \t\n\v\f\r]*[+-]?(?:inf|infinity|nan)", text, re.I):
            raise _BadArg("%s: %s: %s" % (what, text, _ERANGE), 2)    # not FP_NORMAL/FP_ZERO
        raise _BadArg("%s: %s" % (what, text), 2)
    v = float(text)
    if math.isinf(v):
        raise _BadArg("%s: %s: %s" % (what, text, _ERANGE), 2)
    return v


def _option_values(a):
    """Convert the option values as iputils' getopt loop does (ping/ping.c), in its checks'
    words and exit statuses: strtol_or_err exits 1, ping_strtod and its bounds exit 2."""
    if a.count is not None:
        a.count = _strtol_or_err(a.count, 1, _LONG_MAX)
    if a.interval is not None:
        text = a.interval
        a.interval = _ping_strtod(text, "bad timing interval")
        if a.interval > _INT_MAX // 1000:
            raise _BadArg("bad timing interval: %s" % text, 2)
    if a.size is not None:
        a.size = _strtol_or_err(a.size, 0, 65507)
    if a.timeout is not None:
        text = a.timeout
        a.timeout = _ping_strtod(text, "bad linger time")
        if a.timeout < 0.001 or a.timeout > _INT_MAX // 1000:
            raise _BadArg("bad linger time: %s" % text, 2)
    if a.deadline is not None:
        # iputils takes -w as an integer (strtol_or_err); emu also takes a fraction of a second.
        try:
            a.deadline = float(a.deadline)
        except ValueError:
            raise _BadArg("invalid argument: '%s'" % a.deadline, 1) from None
        if not 0 <= a.deadline <= _INT_MAX:
            raise _BadArg("invalid argument: '%s': out of range: 0 <= value <= %d"
                          % (a.deadline, _INT_MAX), 1)
    if a.ttl is not None:
        a.ttl = _strtol_or_err(a.ttl, 0, 255)


def main(argv, endpoint, resolve, out=print, err=None):
    """iputils ping inside a node: -c -i -s -W -w -t -M -q -D -O -A -f -I."""
    err = err or out
    p = ToolParser(prog="ping", add_help=True)
    p.add_argument("-c", dest="count")
    p.add_argument("-i", dest="interval")
    p.add_argument("-s", dest="size", default="56")
    p.add_argument("-W", dest="timeout")
    p.add_argument("-w", dest="deadline")
    p.add_argument("-t", dest="ttl")
    p.add_argument("-M", dest="pmtudisc", choices=sorted(PMTUDISC))
    p.add_argument("-q", dest="quiet", action="store_true")
    p.add_argument("-D", dest="timestamps", action="store_true")
    p.add_argument("-O", dest="outstanding", action="store_true")
    p.add_argument("-A", dest="adaptive", action="store_true")
    p.add_argument("-f", dest="flood", action="store_true")
    p.add_argument("-I", dest="iface")
    p.add_argument("host")
    try:
        a = p.parse_args(argv)
    except ToolUsage as e:                    # iputils: usage errors exit 2
        err("ping: usage error: Destination address required" if "host" in str(e)
            else "ping: %s" % e)
        return 2
    except SystemExit as e:                   # -h
        return 2 if e.code else 0
    try:
        _option_values(a)
    except _BadArg as e:
        err("ping: %s" % e)
        return e.status
    interval = a.interval if a.interval is not None else (0.0 if a.flood else 1.0)
    if a.interval is not None and a.interval < 0.002:
        err("ping: bad timing interval: %s" % a.interval)
        return 2
    address = resolve(a.host)
    if address is None:
        err("ping: %s: Name or service not known" % a.host)
        return 2
    device = source = None
    if a.iface:
        if resolve(a.iface) == a.iface:       # -I ADDRESS: the source address
            source = a.iface
        else:
            device = a.iface
    # iputils' probe: connect a UDP socket to the target first; no route fails here, at once.
    try:
        probe = socket(AF_INET, SOCK_DGRAM, 0, node=endpoint)
        try:
            if device is not None:
                try:
                    probe.setsockopt(1, SO_BINDTODEVICE, device.encode())
                except OSError as e:
                    err("ping: SO_BINDTODEVICE %s: %s" % (device, e.strerror))
                    return 2
            if source is not None:
                try:
                    probe.bind((source, 0))
                except OSError as e:
                    err("ping: bind: %s" % e.strerror)
                    return 2
            probe.connect((address, 1025))
        finally:
            probe.close()
    except OSError as e:
        if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            err("ping: connect: %s" % e.strerror)
            return 2
    res = ping(endpoint, a.host, address, count=a.count, interval=interval, size=a.size,
               timeout=a.timeout, deadline=a.deadline, ttl=a.ttl, quiet=a.quiet, out=out,
               pmtudisc=a.pmtudisc, linger=MAXWAIT, device=device, source=source,
               opts=_Opts(a.timestamps, a.outstanding, a.adaptive, a.flood))
    # iputils: 0 if answered (all of -c within -w), 1 if not, 2 on other errors.
    if not res.received:
        return 1
    if a.deadline is not None and a.count is not None and res.received < a.count:
        return 1
    return 0
