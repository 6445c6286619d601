"""ping: ICMP echo over a raw socket, printed the way iputils ping prints it.

Like iputils: a SOCK_RAW/IPPROTO_ICMP socket, an ICMP_FILTER that keeps only
echo replies and errors, a struct timeval at the start of the payload for
the round-trip time, and matching on our identifier.
"""
import argparse
import errno
import math
import os
import struct
import time

from ...kernel.hdr.checksum import ip_compute_csum
from ..socket import AF_INET, IPPROTO_ICMP, SOCK_DGRAM, SOCK_RAW, socket

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
        if self.errors:
            line += ", +%d errors" % self.errors
        line += ", %g%% packet loss, time %dms" % (round(self.loss), self.elapsed_ms)
        out.append(line)
        st = self.rtt_stats()
        if st:
            out.append("rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms" % st)
        return out


def _echo(ident, seq, size):
    """An echo request: a struct timeval (if it fits), then iputils' byte pattern."""
    payload = b""
    if size >= 16:
        now = time.time()
        sec = int(now)
        payload = struct.pack("=qq", sec, int((now - sec) * 1e6))
    payload += bytes((i + len(payload)) & 0xFF for i in range(size - len(payload)))
    pkt = bytearray(struct.pack("!BBHHH", ICMP_ECHO, 0, 0, ident, seq) + payload)
    c = ip_compute_csum(pkt)
    pkt[2], pkt[3] = c >> 8, c & 0xFF
    return bytes(pkt)


PMTUDISC = {"dont": 0, "want": 1, "do": 2, "probe": 3}     # -M: IP_MTU_DISCOVER values


def ping(endpoint, target, address, count=4, interval=1.0, size=56, timeout=None,
         deadline=None, ttl=None, quiet=False, out=None, pmtudisc=None):
    """Run ping from the node at endpoint; returns a PingResult. out(line) prints."""
    res = PingResult(target, address)
    emit = out or (lambda line: None)
    s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP, node=endpoint)
    try:
        # Keep echo replies and the errors about our echoes (iputils' filter).
        mask = 0xFFFFFFFF & ~((1 << ICMP_ECHOREPLY) | (1 << ICMP_DEST_UNREACH) | (1 << ICMP_TIME_EXCEEDED))
        s.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("=I", mask))
        if ttl is not None:
            s.setsockopt(0, 2, ttl)
        if pmtudisc is not None:
            s.setsockopt(0, 10, PMTUDISC[pmtudisc])             # IP_MTU_DISCOVER
        ident = os.getpid() & 0xFFFF
        header = "PING %s (%s) %d(%d) bytes of data." % (target, address, size, size + 28)
        res.lines.append(header)
        emit(header)
        start = time.monotonic()
        wait_last = timeout if timeout is not None else max(2.0 * interval, 1.0)
        seq = 0
        pending = {}           # seq -> send time, until answered
        sent_at = {}
        next_send = start
        try:
            while True:
                now = time.monotonic()
                if deadline is not None and now - start >= deadline:
                    break
                if (count is None or seq < count) and now >= next_send:
                    seq += 1
                    pending[seq] = sent_at[seq] = time.monotonic()
                    try:
                        s.sendto(_echo(ident, seq, size), (address, 0))
                        res.transmitted += 1
                    except OSError as e:
                        res.errors += 1
                        line = "ping: sendmsg: %s" % e.strerror
                        res.lines.append(line)
                        emit(line)
                        res.transmitted += 1
                    next_send += interval
                if count is not None and seq >= count:
                    if not pending or now >= sent_at[seq] + wait_last:
                        break
                    wake = sent_at[seq] + wait_last
                else:
                    wake = next_send
                if deadline is not None:
                    wake = min(wake, start + deadline)
                s.settimeout(max(0.0005, wake - time.monotonic()))
                try:
                    data, _ = s.recvfrom(65536)
                except TimeoutError:
                    continue
                _handle(data, ident, pending, res, emit, quiet, address)
        except KeyboardInterrupt:
            pass       # Ctrl-C: like iputils, stop and print the statistics
        res.elapsed_ms = int((time.monotonic() - start) * 1000)
    finally:
        s.close()
    for line in res.summary_lines():
        res.lines.append(line)
        emit(line)
    return res


def _handle(data, ident, pending, res, emit, quiet, address):
    if len(data) < 28:
        return
    ihl = (data[0] & 15) * 4
    ttl = data[8]
    src = ".".join(str(b) for b in data[12:16])
    icmp = data[ihl:]
    if len(icmp) < 8:
        return
    typ, code = icmp[0], icmp[1]
    if typ == ICMP_ECHOREPLY:
        rid, rseq = struct.unpack_from("!HH", icmp, 4)
        if rid != ident or rseq not in pending or src != address:
            return
        rtt = (time.monotonic() - pending.pop(rseq)) * 1000.0
        res.received += 1
        res.rtts.append(rtt)
        res.replies.append((rseq, ttl, rtt, len(icmp)))
        line = "%d bytes from %s: icmp_seq=%d ttl=%d time=%s ms" % (
            len(icmp), src, rseq, ttl, ("%.3f" % rtt) if rtt < 100 else ("%.1f" % rtt))
    elif typ in (ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED) and len(icmp) >= 8 + 28:
        inner = icmp[8:]
        iihl = (inner[0] & 15) * 4
        iid, iseq = struct.unpack_from("!HH", inner, iihl + 4)
        if iid != ident:
            return
        res.errors += 1
        text = UNREACH_TEXT.get(code, "Dest Unreachable, Bad Code: %d" % code) \
            if typ == ICMP_DEST_UNREACH else "Time to live exceeded"
        if typ == ICMP_DEST_UNREACH and code == 4:
            text = "Frag needed and DF set (mtu = %d)" % struct.unpack_from("!H", icmp, 6)[0]
        line = "From %s icmp_seq=%d %s" % (src, iseq, text)
    else:
        return
    res.lines.append(line)
    if not quiet:
        emit(line)


def main(argv, endpoint, resolve, out=print):
    """`ping [-c N] [-i S] [-s N] [-W S] [-w S] [-t TTL] [-q] HOST` inside a node."""
    p = argparse.ArgumentParser(prog="ping", add_help=True)
    p.add_argument("-c", dest="count", type=int)
    p.add_argument("-i", dest="interval", type=float, default=1.0)
    p.add_argument("-s", dest="size", type=int, default=56)
    p.add_argument("-W", dest="timeout", type=float)
    p.add_argument("-w", dest="deadline", type=float)
    p.add_argument("-t", dest="ttl", type=int)
    p.add_argument("-M", dest="pmtudisc", choices=sorted(PMTUDISC))
    p.add_argument("-q", dest="quiet", action="store_true")
    p.add_argument("host")
    a = p.parse_args(argv)
    if a.interval < 0.002:
        out("ping: bad timing interval: %s" % a.interval)
        return 2
    if a.count is not None and a.count < 1:
        out("ping: invalid argument: '%d': out of range: 1 <= value <= 9223372036854775807" % a.count)
        return 1
    if not 0 <= a.size <= 65507:
        out("ping: invalid argument: '%d': out of range: 0 <= value <= 65507" % a.size)
        return 1
    address = resolve(a.host)
    if address is None:
        out("ping: %s: Name or service not known" % a.host)
        return 2
    # iputils' probe: connect a UDP socket to the target first; no route fails here, at once.
    try:
        probe = socket(AF_INET, SOCK_DGRAM, 0, node=endpoint)
        try:
            probe.connect((address, 1025))
        finally:
            probe.close()
    except OSError as e:
        if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            out("ping: connect: %s" % e.strerror)
            return 2
    res = ping(endpoint, a.host, address, count=a.count, interval=a.interval, size=a.size,
               timeout=a.timeout, deadline=a.deadline, ttl=a.ttl, quiet=a.quiet, out=out,
               pmtudisc=a.pmtudisc)
    return 0 if res.received else 1
