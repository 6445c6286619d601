"""tcpdump: capture on a node through an AF_PACKET socket; print or write pcap.

Filters: host/src/dst ADDR, port/src port/dst port N, tcp|udp|icmp|arp|ip,
joined with and/or/not (and parentheses).
"""
import argparse
import struct
import sys
import time

from ..socket import socket

AF_PACKET, SOCK_RAW, ETH_P_ALL_N = 17, 3, 0x0300
PKTTYPE_NAMES = {0: "In", 1: "B", 2: "M", 3: "P", 4: "Out"}
TCP_FLAGS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "."), (0x20, "U"))
ICMP_NAMES = {0: "echo reply", 8: "echo request", 3: "unreachable", 11: "time exceeded"}


class Pkt:
    """The fields a filter and a line need, parsed from one frame."""

    __slots__ = ("frame", "ethertype", "src", "dst", "proto", "sport", "dport", "l4", "ip_len",
                 "ihl", "frag")

    def __init__(self, frame):
        self.frame = frame
        self.ethertype = struct.unpack_from("!H", frame, 12)[0] if len(frame) >= 14 else 0
        self.src = self.dst = None
        self.proto = self.sport = self.dport = None
        self.l4 = None
        self.ip_len = 0
        self.ihl = 0
        self.frag = 0
        if self.ethertype == 0x0800 and len(frame) >= 34:
            ihl = (frame[14] & 15) * 4
            self.ihl = ihl
            self.ip_len = struct.unpack_from("!H", frame, 16)[0]
            self.frag = struct.unpack_from("!H", frame, 20)[0] & 0x1FFF
            self.proto = frame[23]
            self.src = ".".join(map(str, frame[26:30]))
            self.dst = ".".join(map(str, frame[30:34]))
            self.l4 = 14 + ihl
            if self.proto in (6, 17) and len(frame) >= self.l4 + 4 and not self.frag:
                self.sport, self.dport = struct.unpack_from("!HH", frame, self.l4)
        elif self.ethertype == 0x0806 and len(frame) >= 42:
            self.src = ".".join(map(str, frame[28:32]))
            self.dst = ".".join(map(str, frame[38:42]))


# ------------------------------------------------------------------ filters

def compile_filter(tokens, resolve=lambda h: h):
    """tcpdump's simplest expressions -> a predicate on Pkt."""
    pos = [0]

    def peek():
        return tokens[pos[0]] if pos[0] < len(tokens) else None

    def take():
        if pos[0] >= len(tokens):
            raise ValueError("syntax error in filter expression: unexpected end")
        pos[0] += 1
        return tokens[pos[0] - 1]

    def primary():
        t = take()
        if t == "(":
            e = expr()
            if take() != ")":
                raise ValueError("missing )")
            return e
        if t in ("not", "!"):
            e = primary()
            return lambda p: not e(p)
        direction = None
        if t in ("src", "dst"):
            direction = t
            t = take()
        if t == "host":
            h = resolve(take())
            if direction == "src":
                return lambda p: p.src == h
            if direction == "dst":
                return lambda p: p.dst == h
            return lambda p: h in (p.src, p.dst)
        if t == "port":
            n = int(take())
            if direction == "src":
                return lambda p: p.sport == n
            if direction == "dst":
                return lambda p: p.dport == n
            return lambda p: n in (p.sport, p.dport)
        if direction is not None:               # "src 10.0.0.1" means src host
            h = resolve(t)
            return (lambda p: p.src == h) if direction == "src" else (lambda p: p.dst == h)
        protos = {"tcp": 6, "udp": 17, "icmp": 1}
        if t in protos:
            n = protos[t]
            proto = lambda p: p.proto == n       # noqa: E731
        elif t == "arp":
            proto = lambda p: p.ethertype == 0x0806       # noqa: E731
        elif t == "ip":
            proto = lambda p: p.ethertype == 0x0800       # noqa: E731
        else:
            raise ValueError("syntax error in filter expression: %r" % t)
        if peek() in ("src", "dst", "host", "port"):
            # pcap's protocol qualifier: `tcp port 80`, `udp src port 53`, `ip host X`
            q = primary()
            return lambda p: proto(p) and q(p)
        return proto

    def conj():
        e = primary()
        while peek() in ("and", "&&"):
            take()
            r = primary()
            e = (lambda a, b: lambda p: a(p) and b(p))(e, r)
        return e

    def expr():
        e = conj()
        while peek() in ("or", "||"):
            take()
            r = conj()
            e = (lambda a, b: lambda p: a(p) or b(p))(e, r)
        return e

    if not tokens:
        return lambda p: True
    toks = []
    for t in tokens:
        toks.extend(t.replace("(", " ( ").replace(")", " ) ").split())
    tokens[:] = toks
    e = expr()
    if pos[0] != len(tokens):
        raise ValueError("syntax error in filter expression")
    return e


# ------------------------------------------------------------------ printing

def describe(p, ts, ifname, pkttype, show_if):
    """One line in tcpdump -n's format."""
    t = time.strftime("%H:%M:%S", time.localtime(ts)) + ".%06d" % int((ts % 1) * 1e6)
    prefix = "%s %s %s " % (t, ifname, PKTTYPE_NAMES.get(pkttype, "?")) if show_if else t + " "
    f = p.frame
    if p.ethertype == 0x0806 and len(f) >= 42:
        op = struct.unpack_from("!H", f, 20)[0]
        if op == 1:
            return prefix + "ARP, Request who-has %s tell %s, length 28" % (p.dst, p.src)
        mac = ":".join("%02x" % b for b in f[22:28])
        return prefix + "ARP, Reply %s is-at %s, length 28" % (p.src, mac)
    if p.ethertype != 0x0800 or p.proto is None:
        return prefix + "ethertype 0x%04x, length %d" % (p.ethertype, len(f))
    l4 = p.l4
    payload_len = p.ip_len - p.ihl
    if p.proto == 6 and p.sport is not None and len(f) >= l4 + 20:
        seq, ack = struct.unpack_from("!II", f, l4 + 4)
        doff = (f[l4 + 12] >> 4) * 4
        flags = f[l4 + 13]
        win = struct.unpack_from("!H", f, l4 + 14)[0]
        fl = "".join(c for bit, c in TCP_FLAGS if flags & bit) or "none"
        datalen = payload_len - doff
        s = "IP %s.%d > %s.%d: Flags [%s], seq %d" % (p.src, p.sport, p.dst, p.dport, fl, seq)
        if datalen > 0:
            s += ":%d" % ((seq + datalen) & 0xFFFFFFFF)
        if flags & 0x10:
            s += ", ack %d" % ack
        s += ", win %d" % win
        opts = _tcp_opts(f[l4 + 20:l4 + doff])
        if opts:
            s += ", options [%s]" % opts
        return prefix + s + ", length %d" % max(datalen, 0)
    if p.proto == 17 and p.sport is not None:
        return prefix + "IP %s.%d > %s.%d: UDP, length %d" % (p.src, p.sport, p.dst, p.dport,
                                                              max(payload_len - 8, 0))
    if p.proto == 1 and len(f) >= l4 + 8:
        typ = f[l4]
        name = ICMP_NAMES.get(typ, "type %d" % typ)
        s = "IP %s > %s: ICMP %s" % (p.src, p.dst, name)
        if typ in (0, 8):
            ident, seq = struct.unpack_from("!HH", f, l4 + 4)
            s += ", id %d, seq %d" % (ident, seq)
        return prefix + s + ", length %d" % payload_len
    return prefix + "IP %s > %s: ip-proto-%d %d" % (p.src, p.dst, p.proto, payload_len)


PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 2: "IGMP", 47: "GRE"}


def _verbose(p, line):
    """tcpdump -v: ip_print's header in parentheses, the payload on an indented line."""
    f = p.frame
    if p.ethertype != 0x0800 or len(f) < 34 or " IP " not in " " + line:
        return line
    tos, ttl = f[15], f[22]
    ident, off = struct.unpack_from("!HH", f, 18)
    flags = [n for bit, n in ((0x4000, "DF"), (0x2000, "+")) if off & bit]
    name = PROTO_NAMES.get(p.proto, "unknown")
    hdr = "(tos 0x%x, ttl %d, id %d, offset %d, flags [%s], proto %s (%d), length %d)" % (
        tos, ttl, ident, (off & 0x1FFF) * 8, "".join(flags) or "none", name, p.proto, p.ip_len)
    head, _, rest = line.partition("IP ")
    return "%sIP %s\n    %s" % (head, hdr, rest)


def _tcp_opts(b):
    out = []
    i = 0
    while i < len(b):
        k = b[i]
        if k == 0:
            break
        if k == 1:
            out.append("nop")
            i += 1
            continue
        if i + 1 >= len(b) or b[i + 1] < 2:
            break
        n = b[i + 1]
        v = b[i + 2:i + n]
        if k == 2 and n == 4:
            out.append("mss %d" % struct.unpack("!H", v)[0])
        elif k == 3 and n == 3:
            out.append("wscale %d" % v[0])
        elif k == 4:
            out.append("sackOK")
        elif k == 8 and n == 10:
            out.append("TS val %d ecr %d" % struct.unpack("!II", v))
        elif k == 5:
            blocks = [struct.unpack_from("!II", v, j) for j in range(0, len(v) - 7, 8)]
            out.append("sack %d %s" % (len(blocks), " ".join("{%d:%d}" % bl for bl in blocks)))
        else:
            out.append("unknown-%d" % k)
        i += n
    return ",".join(out)


# ------------------------------------------------------------------ pcap

class PcapWriter:
    """The classic pcap format (what Wireshark, tshark, dpkt and scapy read)."""

    def __init__(self, path, snaplen=262144):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))   # LINKTYPE_ETHERNET
        self.snaplen = snaplen

    def write(self, ts, frame):
        data = frame[:self.snaplen]
        sec = int(ts)
        self.f.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(data), len(frame)))
        self.f.write(data)
        self.f.flush()

    def close(self):
        self.f.close()


def main(argv, endpoint, resolve, out=print, err=None, stop=None):
    err = err or (lambda line: print(line, file=sys.stderr, flush=True))
    p = argparse.ArgumentParser(prog="tcpdump")
    p.add_argument("-i", dest="iface", default="any")
    p.add_argument("-n", dest="numeric", action="count", default=0)
    p.add_argument("-c", dest="count", type=int)
    p.add_argument("-w", dest="write")
    p.add_argument("-s", dest="snaplen", type=int, default=262144)
    p.add_argument("-q", dest="quiet", action="store_true")
    p.add_argument("-v", dest="verbose", action="count", default=0)
    p.add_argument("-l", dest="linebuf", action="store_true")
    p.add_argument("--timeout", type=float, help="stop after this many seconds (emu)")
    p.add_argument("expr", nargs="*")
    a = p.parse_args(argv)
    try:
        pred = compile_filter(list(a.expr), lambda h: resolve(h) or h)
    except (ValueError, IndexError) as e:
        err("tcpdump: %s" % e)
        return 1
    s = socket(AF_PACKET, SOCK_RAW, ETH_P_ALL_N, node=endpoint)
    try:
        if a.iface != "any":
            s.bind((a.iface, 0))
    except OSError as e:
        err("tcpdump: %s: %s" % (a.iface, e.strerror or "No such device exists"))
        s.close()
        return 1
    writer = PcapWriter(a.write, a.snaplen) if a.write else None
    if not a.verbose:
        err("tcpdump: verbose output suppressed, use -v[v]... for full protocol decode")
    err("listening on %s, link-type EN10MB (Ethernet), snapshot length %d bytes" % (a.iface, a.snaplen))
    n = 0
    deadline = time.monotonic() + a.timeout if a.timeout else None
    try:
        while a.count is None or n < a.count:
            if stop is not None and stop.is_set():
                break
            wait = 0.25
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    break
                wait = min(wait, 0.25)
            s.settimeout(wait)
            try:
                frame, addr = s.recvfrom(65536 + 64)
            except TimeoutError:
                continue
            ts = time.time()
            pkt = Pkt(frame)
            if not pred(pkt):
                continue
            n += 1
            if writer is not None:
                writer.write(ts, frame)
            else:
                line = describe(pkt, ts, addr[0], addr[2], a.iface == "any")
                out(_verbose(pkt, line) if a.verbose else line)
    except KeyboardInterrupt:
        pass
    finally:
        s.close()
        if writer is not None:
            writer.close()
    err("%d packets captured" % n)
    return 0
