"""traceroute: UDP probes to ports 33434+ (or -I ICMP echo) with rising IP_TTL.

The answers (time exceeded, port unreachable, echo reply) are read from a raw
ICMP socket, which on Linux gets a copy of every ICMP message (raw_v4_input).
"""
import argparse
import os
import struct
import time

from ..socket import AF_INET, IPPROTO_ICMP, SOCK_DGRAM, SOCK_RAW, socket
from .ping import _echo


def main(argv, endpoint, resolve, out=print):
    p = argparse.ArgumentParser(prog="traceroute", add_help=False)
    p.add_argument("-I", dest="icmp", action="store_true")
    p.add_argument("-n", dest="numeric", action="store_true")
    p.add_argument("-q", dest="nqueries", type=int, default=3)
    p.add_argument("-w", dest="wait", type=float, default=5.0)
    p.add_argument("-m", dest="max_ttl", type=int, default=30)
    p.add_argument("-f", dest="first_ttl", type=int, default=1)
    p.add_argument("-p", dest="port", type=int, default=33434)
    p.add_argument("host")
    try:
        a = p.parse_args(argv)
    except SystemExit:
        out("Usage: traceroute [ -In ] [ -f first_ttl ] [ -m max_ttl ] [ -q nqueries ] "
            "[ -w waittime ] host")
        return 2
    dst = resolve(a.host)
    if dst is None:
        out("%s: Name or service not known" % a.host)
        out("Cannot handle \"host\" cmdline arg `%s' on position 1 (argc %d)" % (a.host, len(argv)))
        return 2
    out("traceroute to %s (%s), %d hops max, 60 byte packets" % (a.host, dst, a.max_ttl))
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
                src, typ = got
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
                return addr[0], typ
            continue
        if typ not in (3, 11) or len(data) < ihl + 8 + 28:
            continue
        inner = data[ihl + 8:]
        iihl = (inner[0] & 15) * 4
        if a.icmp:
            if inner[9] == 1 and struct.unpack_from("!HH", inner, iihl + 4) == (ident, seq):
                return addr[0], typ
        elif inner[9] == 17 and struct.unpack_from("!H", inner, iihl + 2)[0] == a.port + seq - 1:
            return addr[0], typ
