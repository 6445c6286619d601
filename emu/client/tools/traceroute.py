"""traceroute: UDP probes to ports 33434+ (or -I ICMP echo) with rising IP_TTL.

The answers (time exceeded, port unreachable, echo reply) are read from a raw
ICMP socket, which on Linux gets a copy of every ICMP message (raw_v4_input).
"""
import os
import struct
import time

from ..socket import AF_INET, IPPROTO_ICMP, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM, socket
from . import ToolParser, ToolUsage
from .ping import _echo


def main(argv, endpoint, resolve, out=print):
    p = ToolParser(prog="traceroute", add_help=False)
    p.add_argument("-I", dest="icmp", action="store_true")
    p.add_argument("-T", dest="tcp", action="store_true")
    p.add_argument("-n", dest="numeric", action="store_true")
    p.add_argument("-q", dest="nqueries", type=int, default=3)
    p.add_argument("-w", dest="wait", type=float, default=5.0)
    p.add_argument("-m", dest="max_ttl", type=int, default=30)
    p.add_argument("-f", dest="first_ttl", type=int, default=1)
    p.add_argument("-p", dest="port", type=int)
    p.add_argument("host")
    try:
        a = p.parse_args(argv)
    except ToolUsage:
        out("Usage: traceroute [ -In ] [ -f first_ttl ] [ -m max_ttl ] [ -q nqueries ] "
            "[ -w waittime ] host")
        return 2
    dst = resolve(a.host)
    if dst is None:
        out("%s: Name or service not known" % a.host)
        out("Cannot handle \"host\" cmdline arg `%s' on position 1 (argc %d)" % (a.host, len(argv)))
        return 2
    out("traceroute to %s (%s), %d hops max, 60 byte packets" % (a.host, dst, a.max_ttl))
    if a.tcp:
        a.port = a.port or 80
        return _tcp_trace(a, dst, endpoint, out)
    a.port = a.port or 33434
    icmp = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP, node=endpoint)
    probe = icmp if a.icmp else socket(AF_INET, SOCK_DGRAM, 0, node=endpoint)
    ident = os.getpid() & 0xFFFF
    seq = 0
    try:
        for ttl in range(a.first_ttl, a.max_ttl + 1):
            probe.setsockopt(0, 2, ttl)                      # IP_TTL
            parts, last, done = [], None, False
            for _ in range(a.nqueries):
                seq += 1
                t0 = time.monotonic()
                try:
                    if a.icmp:
                        probe.sendto(_echo(ident, seq, 32), (dst, 0))
                    else:
                        probe.sendto(b"\0" * 32, (dst, a.port + seq - 1))
                except OSError as e:
                    out("send: %s" % e.strerror)
                    return 1
                got = _wait(icmp, a, ident, seq, t0)
                if got is None:
                    parts.append("*")
                    continue
                src, typ = got[0], got[1]
                if src != last:
                    parts.append(src)
                    last = src
                parts.append("%.3f ms" % ((time.monotonic() - t0) * 1000))
                if typ in (0, 3):
                    done = True
            out("%2d  %s" % (ttl, "  ".join(parts)))
            if done:
                break
    finally:
        icmp.close()
        if probe is not icmp:
            probe.close()
    return 0


SYN_RTO = 1.0        # TCP_TIMEOUT_INIT: when the kernel would send a probe's SYN again


def _tcp_trace(a, dst, endpoint, out):
    """-T: TCP SYNs to -p (80) with rising TTL; a SYN-ACK or a RST means reached.

    Emulation note: traceroute's tcp method sends its SYNs from a raw socket;
    emu's makes each probe a non-blocking connect() with IP_TTL (what
    traceroute's "tcpconn" method does), so the answer is the connect's
    outcome or an ICMP error quoting the SYN's source port. A probe is one
    SYN, as traceroute's: the socket is closed before the kernel would send
    it again (the SYN's first RTO, 1 s), so an answer to a retransmission is
    never timed as the probe's (a router's rate-limited ICMP would show about
    1,000 ms instead of `*`); ICMP answers are still awaited for -w seconds.
    A destination more than 1 s away answers after the close and shows `*`.
    """
    icmp = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP, node=endpoint)
    try:
        for ttl in range(a.first_ttl, a.max_ttl + 1):
            parts, last, done = [], None, False
            for _ in range(a.nqueries):
                got, ms = _tcp_probe(a, dst, endpoint, icmp, ttl)
                if got is None:
                    parts.append("*")
                    continue
                src, reached = got
                if src != last:
                    parts.append(src)
                    last = src
                parts.append("%.3f ms" % ms)
                done = done or reached
            out("%2d  %s" % (ttl, "  ".join(parts)))
            if done:
                break
    finally:
        icmp.close()
    return 0


def _tcp_probe(a, dst, endpoint, icmp, ttl):
    """One SYN with this TTL: ((answering address, reached?), ms) or (None, None)."""
    s = socket(AF_INET, SOCK_STREAM, 0, node=endpoint)
    try:
        s.setsockopt(0, 2, ttl)                                  # IP_TTL
        s.setblocking(False)
        t0 = time.monotonic()
        rc = s.connect_ex((dst, a.port))
        sport = s.getsockname()[1]
        while time.monotonic() - t0 < a.wait:
            if rc in (0, 106, 111):               # connected, EISCONN, ECONNREFUSED (RST)
                return (dst, True), (time.monotonic() - t0) * 1000
            if s is not None and time.monotonic() - t0 >= SYN_RTO - 0.05:
                s.close()                         # before the SYN's retransmission
                s = None
            icmp.settimeout(0.02)
            try:
                data, addr = icmp.recvfrom(65536)
            except (TimeoutError, OSError):
                data = None
            if data is not None and len(data) >= 48:
                ihl = (data[0] & 15) * 4
                inner = data[ihl + 8:]
                iihl = (inner[0] & 15) * 4
                if data[ihl] in (3, 11) and inner[9] == 6 and len(inner) >= iihl + 4 and \
                        struct.unpack_from("!H", inner, iihl)[0] == sport:
                    return (addr[0], data[ihl] == 3), (time.monotonic() - t0) * 1000
            if s is not None:
                rc = s.connect_ex((dst, a.port))
        return None, None
    finally:
        if s is not None:
            s.close()


def _wait(icmp, a, ident, seq, t0):
    """The (source, ICMP type) answering probe seq, or None after -w seconds."""
    while True:
        left = a.wait - (time.monotonic() - t0)
        if left <= 0:
            return None
        icmp.settimeout(left)
        try:
            data, addr = icmp.recvfrom(65536)
        except (TimeoutError, OSError):
            return None
        if len(data) < 28:
            continue
        ihl = (data[0] & 15) * 4
        typ = data[ihl]
        if typ == 0 and a.icmp:
            if struct.unpack_from("!HH", data, ihl + 4) == (ident, seq):
                return addr[0], typ, data[8]
            continue
        if typ not in (3, 11) or len(data) < ihl + 8 + 28:
            continue
        inner = data[ihl + 8:]
        iihl = (inner[0] & 15) * 4
        # (source, type, the answer's TTL, code, the next hop's MTU of a Frag Needed)
        nh_mtu = struct.unpack_from("!H", data, ihl + 6)[0]
        if a.icmp:
            if inner[9] == 1 and struct.unpack_from("!HH", inner, iihl + 4) == (ident, seq):
                return addr[0], typ, data[8], data[ihl + 1], nh_mtu
        elif inner[9] == 17 and struct.unpack_from("!H", inner, iihl + 2)[0] == a.port + seq - 1:
            return addr[0], typ, data[8], data[ihl + 1], nh_mtu


def _hops_back(ttl):
    """iputils tracepath: the hops an answer took, from its TTL and the usual initial TTLs."""
    for init in (64, 128, 255):
        if ttl <= init:
            return init + 1 - ttl
    return 0


def tracepath_main(argv, endpoint, resolve, out=print, err=None, dev_mtu=None):
    """tracepath [-n] [-m MAX] [-p PORT] HOST: UDP probes with rising TTL and the path MTU.

    As iputils: the probes are as large as the MTU known so far, sent with
    IP_PMTUDISC_PROBE (DF, sized for the device, whatever PMTU the kernel has
    learned); a router that cannot forward one answers Frag Needed with its
    next hop's MTU, shown as `pmtu N` on its line, and the same TTL is probed
    again at that size. The first line is the outgoing device's MTU
    (dev_mtu(dst), from the node's routes and links).

    Emulation note: iputils reads the answers from the socket's error queue
    (IP_RECVERR); emu's tracepath reads them from a raw ICMP socket, as its
    traceroute does.
    """
    err = err or out
    p = ToolParser(prog="tracepath", add_help=False)
    p.add_argument("-n", dest="numeric", action="store_true")
    p.add_argument("-m", dest="max_ttl", type=int, default=30)
    p.add_argument("-p", dest="port", type=int, default=44444)
    p.add_argument("host")
    try:
        a = p.parse_args(argv)
    except ToolUsage:
        err("Usage: tracepath [-n] [-m max_hops] [-p port] <destination>")
        return 255
    dst = resolve(a.host)
    if dst is None:
        err("tracepath: %s: Name or service not known" % a.host)
        return 255
    mtu = _first_mtu(dst, a.port, endpoint, dev_mtu)
    icmp = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP, node=endpoint)
    probe = socket(AF_INET, SOCK_DGRAM, 0, node=endpoint)
    try:
        probe.setsockopt(0, 10, 3)                    # IP_MTU_DISCOVER = IP_PMTUDISC_PROBE
        out(" 1?: %-32s pmtu %d" % ("[LOCALHOST]", mtu))
        seq, ttl, changes = 0, 1, 0
        while ttl <= a.max_ttl:
            probe.setsockopt(0, 2, ttl)                          # IP_TTL
            got = None
            for _ in range(3):                                   # iputils retries a silent hop
                seq += 1
                t0 = time.monotonic()
                try:
                    probe.sendto(b"\0" * (mtu - 28), (dst, a.port + seq - 1))
                except OSError as e:
                    out("%2d:  send failed" % ttl)
                    err("tracepath: %s" % (e.strerror or e))
                    return 1
                got = _wait(icmp, _Probe(a.port), 0, seq, t0)
                if got is not None:
                    break
            if got is None:
                out("%2d:  no reply" % ttl)
                ttl += 1
                continue
            src, typ, rttl, code = got[0], got[1], got[2], got[3]
            us = int((time.monotonic() - t0) * 1e6)
            line = "%2d:  %-52s%3d.%03dms " % (ttl, src, us // 1000, us % 1000)
            if typ == 3 and code == 4 and 68 <= got[4] < mtu and changes < 16:
                out(line + "pmtu %d" % got[4])       # Frag Needed: probe this hop again, smaller
                mtu = got[4]
                changes += 1
                continue
            if typ == 3:
                mark = {3: "reached", 0: "!N", 1: "!H", 2: "!P"}.get(code, "!A" if code in (9, 10, 13) else "!H")
                out(line + mark)
                out("     Resume: pmtu %d " % mtu + ("hops %d back %d " % (ttl, _hops_back(rttl))
                                                    if code == 3 else ""))
                return 0
            out(line)
            ttl += 1
        out("     Too many hops: pmtu %d" % mtu)
        out("     Resume: pmtu %d " % mtu)
        return 0
    finally:
        icmp.close()
        probe.close()


def _first_mtu(dst, port, endpoint, dev_mtu):
    """The outgoing device's MTU toward dst (iputils learns it from the local
    EMSGSIZE of a 65,535-byte first probe); else the path MTU a connected
    socket reports (IP_MTU), else 1500."""
    if dev_mtu is not None:
        try:
            v = dev_mtu(dst)
            if v:
                return v
        except OSError:
            pass
    s = socket(AF_INET, SOCK_DGRAM, 0, node=endpoint)
    try:
        s.connect((dst, port))
        v = s.getsockopt(0, 14)                                  # IP_MTU
        return v if isinstance(v, int) and v > 0 else 1500
    except OSError:
        return 1500
    finally:
        s.close()


class _Probe:
    """The options _wait reads, for tracepath's UDP probes."""

    def __init__(self, port):
        self.icmp = False
        self.port = port
        self.wait = 2.0
