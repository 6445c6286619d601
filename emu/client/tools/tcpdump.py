"""tcpdump: capture on a node through an AF_PACKET socket; print, write or read pcap.

As libpcap on Linux: a SOCK_RAW packet socket with a TPACKET_V2 receive
ring, so each packet carries the kernel's timestamp from the tap and a ring
that fills up drops (counted by PACKET_STATISTICS, printed at exit as
"N packets dropped by kernel"). `-i any` captures every device and writes
LINUX_SLL2 (Linux cooked v2) records.

Filters: host/src/dst ADDR, net PREFIX, port/src port/dst port N,
tcp|udp|icmp|arp|ip, joined with and/or/not and parentheses.

Emulation note: the filter runs in tcpdump, not in the kernel (no BPF), so
"packets received by filter" counts the packets that matched plus those the
kernel dropped, which is what a kernel filter would have let through when
nothing was dropped.
"""
import argparse
import struct
import sys
import time

from ..socket import socket

MSG_DONTWAIT = 0x40

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
            raise ValueError("syntax error")
        pos[0] += 1
        return tokens[pos[0] - 1]

    def primary():
        t = take()
        if t == "(":
            e = expr()
            if take() != ")":
                raise ValueError("syntax error")
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
        if t == "net":
            net = take()
            addr, _, plen = net.partition("/")
            try:
                base = struct.unpack("!I", bytes(int(x) for x in addr.split(".")))[0]
                plen = int(plen or 32)
            except (ValueError, struct.error):
                raise ValueError("syntax error") from None
            mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF

            def inside(a):
                if a is None:
                    return False
                v = struct.unpack("!I", bytes(int(x) for x in a.split(".")))[0]
                return v & mask == base & mask
            if direction == "src":
                return lambda p: inside(p.src)
            if direction == "dst":
                return lambda p: inside(p.dst)
            return lambda p: inside(p.src) or inside(p.dst)
        if t == "port":
            try:
                n = int(take())
            except ValueError:
                raise ValueError("syntax error") from None
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
            raise ValueError("syntax error")
        if peek() in ("src", "dst", "host", "port", "net"):
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
        raise ValueError("syntax error")
    return e


# ------------------------------------------------------------------ printing

PKTTYPE_SLL = {0: "In", 1: "B", 2: "M", 3: "P", 4: "Out"}
ETHERTYPE_NAMES = {0x0800: "IPv4", 0x0806: "ARP", 0x86DD: "IPv6", 0x8100: "802.1Q"}
PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 2: "IGMP", 47: "GRE"}


def _mac(b):
    return ":".join("%02x" % x for x in b)


def _csum(data):
    """RFC 1071 over data (the tool's own, as tcpdump's in_cksum)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _l4_cksum(p):
    """(checksum in the header, sum over pseudo-header + segment: 0xffff if correct)."""
    f = p.frame
    seg = bytes(f[p.l4:14 + p.ip_len])
    pseudo = bytes(f[26:34]) + struct.pack("!BBH", 0, p.proto, len(seg))
    field = 16 if p.proto == 6 else 6
    if len(seg) < field + 2:
        return None, None
    have = struct.unpack_from("!H", seg, field)[0]
    return have, _csum(pseudo + seg)


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


def net_line(p, vflag=0):
    """The network-layer text of one packet ("IP a > b: ..." or "ARP, ...")."""
    f = p.frame
    if p.ethertype == 0x0806 and len(f) >= 42:
        op = struct.unpack_from("!H", f, 20)[0]
        if op == 1:
            return "ARP, Request who-has %s tell %s, length 28" % (p.dst, p.src)
        return "ARP, Reply %s is-at %s, length 28" % (p.src, _mac(f[22:28]))
    if p.ethertype != 0x0800 or p.proto is None:
        return "ethertype 0x%04x, length %d" % (p.ethertype, len(f))
    l4 = p.l4
    payload_len = p.ip_len - p.ihl
    if p.proto == 6 and p.sport is not None and len(f) >= l4 + 20:
        seq, ack = struct.unpack_from("!II", f, l4 + 4)
        doff = (f[l4 + 12] >> 4) * 4
        flags = f[l4 + 13]
        win = struct.unpack_from("!H", f, l4 + 14)[0]
        fl = "".join(c for bit, c in TCP_FLAGS if flags & bit) or "none"
        datalen = payload_len - doff
        s = "IP %s.%d > %s.%d: Flags [%s]" % (p.src, p.sport, p.dst, p.dport, fl)
        if vflag and len(f) >= 14 + p.ip_len:
            have, total = _l4_cksum(p)
            if have is not None:
                s += ", cksum 0x%04x (%s)" % (have, "correct" if total == 0xFFFF else
                                             "incorrect -> 0x%04x" % _fix(have, total))
        s += ", seq %d" % seq
        if datalen > 0:
            s += ":%d" % ((seq + datalen) & 0xFFFFFFFF)
        if flags & 0x10:
            s += ", ack %d" % ack
        s += ", win %d" % win
        opts = _tcp_opts(f[l4 + 20:l4 + doff])
        if opts:
            s += ", options [%s]" % opts
        return s + ", length %d" % max(datalen, 0)
    if p.proto == 17 and p.sport is not None:
        s = "IP %s.%d > %s.%d: " % (p.src, p.sport, p.dst, p.dport)
        if vflag > 1 and len(f) >= 14 + p.ip_len:
            have, total = _l4_cksum(p)
            if have == 0:
                s += "[no cksum] "
            elif have is not None:
                s += "[udp sum ok] " if total == 0xFFFF else \
                    "[bad udp cksum 0x%04x -> 0x%04x!] " % (have, _fix(have, total))
        return s + "UDP, length %d" % max(payload_len - 8, 0)
    if p.proto == 1 and len(f) >= l4 + 8:
        typ = f[l4]
        name = ICMP_NAMES.get(typ, "type %d" % typ)
        s = "IP %s > %s: ICMP %s" % (p.src, p.dst, name)
        if typ in (0, 8):
            ident, seq = struct.unpack_from("!HH", f, l4 + 4)
            s += ", id %d, seq %d" % (ident, seq)
        return s + ", length %d" % payload_len
    return "IP %s > %s: ip-proto-%d %d" % (p.src, p.dst, p.proto, payload_len)


def _fix(have, total):
    """The checksum the header should carry, given the sum with the wrong one in it."""
    w = total + (~have & 0xFFFF)               # ones' complement: take `have` back out
    while w >> 16:
        w = (w & 0xFFFF) + (w >> 16)
    return ~w & 0xFFFF


def _ip_header(p):
    """ip_print's -v header: (tos, ttl, id, offset, flags, proto, length)."""
    f = p.frame
    tos, ttl = f[15], f[22]
    ident, off = struct.unpack_from("!HH", f, 18)
    flags = [n for bit, n in ((0x4000, "DF"), (0x2000, "+")) if off & bit]
    name = PROTO_NAMES.get(p.proto, "unknown")
    return "(tos 0x%x, ttl %d, id %d, offset %d, flags [%s], proto %s (%d), length %d)" % (
        tos, ttl, ident, (off & 0x1FFF) * 8, "".join(flags) or "none", name, p.proto, p.ip_len)


def describe(p, ts, ifname, pkttype, show_if, vflag=0, eflag=False, wire_len=None):
    """One packet as tcpdump -n prints it (-v, -e, -i any's interface column)."""
    t = time.strftime("%H:%M:%S", time.localtime(ts)) + ".%06d" % int(round((ts % 1) * 1e6) % 1000000)
    prefix = t + " "
    if show_if:
        prefix += "%-5s %-3s " % (ifname, PKTTYPE_SLL.get(pkttype, "?"))
    body = net_line(p, vflag)
    ip = p.ethertype == 0x0800 and body.startswith("IP ")
    if vflag and ip:
        body = "IP %s\n    %s" % (_ip_header(p), body[3:])
    if eflag and len(p.frame) >= 14:
        f = p.frame
        et = ETHERTYPE_NAMES.get(p.ethertype, "Unknown")
        link = "%s > %s, ethertype %s (0x%04x), length %d: " % (
            _mac(f[6:12]), _mac(f[0:6]), et, p.ethertype, wire_len or len(f))
        if body.startswith("IP "):
            body = body[3:]
        elif body.startswith("ARP, "):
            body = body[5:]
        return prefix + link + body
    return prefix + body


def hex_and_ascii(data, indent="\t"):
    """tcpdump -X: offset, 8 groups of 2 bytes, then the bytes as ASCII."""
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off:off + 16]
        hexs = "".join(" %02x%02x" % (chunk[i], chunk[i + 1]) if i + 1 < len(chunk)
                       else " %02x" % chunk[i] for i in range(0, len(chunk), 2))
        asc = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append("%s0x%04x: %-40s  %s" % (indent, off, hexs, asc))
    return "\n".join(lines)


def ascii_only(data):
    """tcpdump -A: printable bytes, tab, space and newline as themselves, others as '.'."""
    return "".join(chr(b) if 0x21 <= b < 0x7F or b in (9, 10, 32) else "." for b in data)


# ------------------------------------------------------------------ pcap

LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2 = 1, 276
LINKTYPE_NAMES = {LINKTYPE_ETHERNET: ("EN10MB", "Ethernet"),
                  LINKTYPE_LINUX_SLL2: ("LINUX_SLL2", "Linux cooked v2")}
SLL2 = struct.Struct("!HHIHBB8s")


class PcapWriter:
    """The classic pcap format (what Wireshark, tshark, dpkt and scapy read)."""

    def __init__(self, path, snaplen=262144, linktype=LINKTYPE_ETHERNET):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))
        self.snaplen = snaplen
        self.linktype = linktype

    def write(self, ts, frame, wire_len=None, sll=None):
        """sll: (ifindex, pkttype) to write a LINUX_SLL2 record from an Ethernet frame."""
        if self.linktype == LINKTYPE_LINUX_SLL2 and sll is not None:
            hdr = SLL2.pack(struct.unpack_from("!H", frame, 12)[0], 0, sll[0], 1, sll[1], 6,
                            bytes(frame[6:12]) + b"\0\0")
            frame = hdr + bytes(frame[14:])
            wire_len = (wire_len or len(frame) + 14 - SLL2.size) - 14 + SLL2.size
        data = frame[:self.snaplen]
        sec = int(ts)
        self.f.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(data),
                                 wire_len or len(frame)))
        self.f.write(data)
        self.f.flush()

    def close(self):
        self.f.close()


def read_pcap(path):
    """(linktype, snaplen, records) of a classic pcap file; records: (ts, data, wire_len)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 24:
        raise ValueError("truncated dump file; tried to read 4 file header bytes, only got %d"
                         % len(raw))
    magic = raw[:4]
    endian, nano = {b"\xd4\xc3\xb2\xa1": ("<", False), b"\xa1\xb2\xc3\xd4": (">", False),
                    b"\x4d\x3c\xb2\xa1": ("<", True), b"\xa1\xb2\x3c\x4d": (">", True)}.get(
        magic, (None, None))
    if endian is None:
        if magic == b"\x0a\x0d\x0d\x0a":
            raise ValueError("pcapng files are not supported by emu's tcpdump")
        raise ValueError("bad dump file format")
    _, _, _, _, snaplen, linktype = struct.unpack_from(endian + "HHiIII", raw, 4)
    recs, off = [], 24
    rec = struct.Struct(endian + "IIII")
    while off + 16 <= len(raw):
        sec, frac, incl, orig = rec.unpack_from(raw, off)
        off += 16
        data = raw[off:off + incl]
        off += incl
        recs.append((sec + frac / (1e9 if nano else 1e6), data, orig))
    return linktype & 0xFFFF, snaplen, recs


def _from_sll2(data):
    """A LINUX_SLL2 record as (pseudo-Ethernet frame, ifindex, pkttype)."""
    proto, _, ifindex, _, pkttype, halen, addr = SLL2.unpack_from(data)
    frame = b"\0" * 6 + addr[:6].ljust(6, b"\0") + struct.pack("!H", proto) + data[SLL2.size:]
    return frame, ifindex, pkttype


# ------------------------------------------------------------------ capture

SOL_PACKET, PACKET_RX_RING, PACKET_STATISTICS, PACKET_VERSION, TPACKET_V2 = 263, 5, 6, 10, 1
TPACKET2_HDR = struct.Struct("=IIIHHIIHH4x")
SOCKADDR_LL = struct.Struct("=HHiHBB8s")


def _ring_req(snaplen, buffer_kib):
    """libpcap's ring: a frame holds a 64 KiB (GSO) packet at most, the buffer -B KiB."""
    macoff = 66
    frame = (macoff + min(snaplen, 65535 + 14) + 15) & ~15
    nr = max(1, buffer_kib * 1024 // frame)
    return struct.pack("=IIII", frame * nr, 1, frame, nr)


class Stats:
    def __init__(self):
        self.captured = self.matched = self.kernel = self.dropped = 0


def _usage(err):
    err("Usage: tcpdump [-AeDnqvX] [ -B size ] [ -c count ] [ -i interface ] [ -r file ]\n"
        "\t\t[ -s snaplen ] [ -w file ] [ expression ]")


def main(argv, endpoint, resolve, out=print, err=None, stop=None, ctl=None, epoch=None):
    err = err or (lambda line: print(line, file=sys.stderr, flush=True))
    p = argparse.ArgumentParser(prog="tcpdump", add_help=False)
    p.add_argument("-i", dest="iface")
    p.add_argument("-n", dest="numeric", action="count", default=0)
    p.add_argument("-c", dest="count", type=int)
    p.add_argument("-w", dest="write")
    p.add_argument("-r", dest="read")
    p.add_argument("-s", dest="snaplen", type=int, default=262144)
    p.add_argument("-B", dest="buffer", type=int, default=2048)
    p.add_argument("-q", dest="quiet", action="store_true")
    p.add_argument("-v", dest="verbose", action="count", default=0)
    p.add_argument("-e", dest="eflag", action="store_true")
    p.add_argument("-X", dest="xflag", action="count", default=0)
    p.add_argument("-A", dest="aflag", action="store_true")
    p.add_argument("-D", dest="list", action="store_true")
    p.add_argument("-l", dest="linebuf", action="store_true")
    p.add_argument("-h", "--help", dest="help", action="store_true")
    p.add_argument("--timeout", type=float, help="stop after this many seconds (emu)")
    p.add_argument("expr", nargs="*")
    try:
        a = p.parse_args(argv)
    except SystemExit:
        _usage(err)
        return 1
    if a.help:
        _usage(err)
        return 0
    if a.snaplen == 0 or a.snaplen > 262144:
        a.snaplen = 262144                     # -s 0: the whole packet, as tcpdump
    if a.list:
        return _list_ifaces(ctl, out)
    try:
        pred = compile_filter(list(a.expr), lambda h: resolve(h) or h)
    except (ValueError, IndexError):
        err("tcpdump: can't parse filter expression: syntax error")
        return 1
    show = _printer(a, out)
    if a.read:
        return _read(a, pred, show, err)
    iface = a.iface or _first_iface(ctl)
    s = socket(AF_PACKET, SOCK_RAW, ETH_P_ALL_N, node=endpoint)
    try:
        if iface != "any":
            s.bind((iface, 0))
        s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        s.setsockopt(SOL_PACKET, PACKET_RX_RING, _ring_req(a.snaplen, a.buffer))
    except OSError:
        err("tcpdump: %s: No such device exists\n(No such device exists)" % iface)
        s.close()
        return 1
    linktype = LINKTYPE_LINUX_SLL2 if iface == "any" else LINKTYPE_ETHERNET
    try:
        writer = PcapWriter(a.write, a.snaplen, linktype) if a.write else None
    except OSError as e:                     # as pcap_dump_open's error
        err("tcpdump: %s: %s" % (a.write, e.strerror or e))
        s.close()
        return 1
    name, desc = LINKTYPE_NAMES[linktype]
    if iface == "any":
        err("tcpdump: data link type LINUX_SLL2")
    listening = "listening on %s, link-type %s (%s), snapshot length %d bytes" % (
        iface, name, desc, a.snaplen)
    if a.verbose or writer is not None:
        err("tcpdump: " + listening)
    else:
        err("tcpdump: verbose output suppressed, use -v[v]... for full protocol decode")
        err(listening)
    st = Stats()
    # The ring's stamps are the node's monotonic clock; the host's offset makes
    # them wall time (a virtual-time lab's: its start time, `epoch`).
    offset = time.time() - time.monotonic() if epoch is None else epoch
    deadline = time.monotonic() + a.timeout if a.timeout else None
    interrupted = False
    draining = False
    try:
        while a.count is None or st.captured < a.count:
            if stop is not None and stop.is_set() and not draining:
                draining = True      # what the socket already holds is still written
            wait = 0.25
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    break
                wait = min(wait, 0.25)
            try:
                if draining:
                    raw, addr = s.recvfrom(1 << 18, MSG_DONTWAIT)
                elif epoch is None:
                    s.settimeout(wait)
                    raw, addr = s.recvfrom(1 << 18)
                else:
                    # A virtual-time lab: a timeout there is on the lab's time,
                    # which may stand still; a watcher looks on the host's.
                    raw, addr = s.recvfrom(1 << 18, MSG_DONTWAIT)
            except BlockingIOError:
                if draining:
                    break
                time.sleep(0.01)
                continue
            except TimeoutError:
                continue
            _, length, snaplen, mac, _, sec, nsec, _, _ = TPACKET2_HDR.unpack_from(raw)
            ifindex = SOCKADDR_LL.unpack_from(raw, TPACKET2_HDR.size)[2]
            frame = raw[mac:mac + snaplen]
            ts = sec + nsec / 1e9 + offset
            st.kernel += 1
            pkt = Pkt(frame)
            if not pred(pkt):
                continue
            st.matched += 1
            st.captured += 1
            if writer is not None:
                writer.write(ts, frame[:a.snaplen], length, sll=(ifindex, addr[2]))
            else:
                show(pkt, ts, addr[0], addr[2], iface == "any", length)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        try:
            _, st.dropped = s.getsockopt(SOL_PACKET, PACKET_STATISTICS)
        except (OSError, ValueError, TypeError):
            pass
        s.close()
        if writer is not None:
            writer.close()
    if interrupted and writer is None:
        out("")                 # tcpdump ends the packet lines before the counts
    err("%d packet%s captured" % (st.captured, "" if st.captured == 1 else "s"))
    recv = st.matched + st.dropped
    err("%d packet%s received by filter" % (recv, "" if recv == 1 else "s"))
    err("%d packet%s dropped by kernel" % (st.dropped, "" if st.dropped == 1 else "s"))
    return 0


def _printer(a, out):
    def show(pkt, ts, ifname, pkttype, show_if, wire_len):
        line = describe(pkt, ts, ifname, pkttype, show_if, a.verbose, a.eflag, wire_len)
        data = pkt.frame if a.xflag > 1 else pkt.frame[14:]
        if a.xflag:
            line += "\n" + hex_and_ascii(bytes(data))
        elif a.aflag:
            line += "\n" + ascii_only(bytes(data))
        out(line)
    return show


def _read(a, pred, show, err):
    try:
        linktype, snaplen, recs = read_pcap(a.read)
    except OSError as e:
        err("tcpdump: %s: %s" % (a.read, e.strerror))
        return 1
    except ValueError as e:
        err("tcpdump: %s" % e)
        return 1
    if linktype not in LINKTYPE_NAMES:
        err("tcpdump: %s: link-type %d is not supported by emu's tcpdump" % (a.read, linktype))
        return 1
    name, desc = LINKTYPE_NAMES[linktype]
    err("reading from file %s, link-type %s (%s), snapshot length %d" % (a.read, name, desc, snaplen))
    n = 0
    for ts, rec, wire_len in recs:
        data, ifname, pkttype = rec, "", 0
        if linktype == LINKTYPE_LINUX_SLL2:
            if len(data) < SLL2.size:
                continue
            data, ifindex, pkttype = _from_sll2(data)
            ifname = "if%d" % ifindex
        pkt = Pkt(data)
        if not pred(pkt):
            continue
        show(pkt, ts, ifname, pkttype, linktype == LINKTYPE_LINUX_SLL2, wire_len)
        n += 1
        if a.count is not None and n >= a.count:
            break
    return 0


def _first_iface(ctl):
    """pcap_lookupdev: the first device that is up and not loopback."""
    try:
        rows = ctl.call("link_show", stats=False) if ctl is not None else []
    except OSError:
        rows = []
    for r in rows:
        if r["name"] != "lo" and "UP" in r["flags"]:
            return r["name"]
    return "eth0"


def _list_ifaces(ctl, out):
    """tcpdump -D: the node's devices, then "any", as libpcap lists them."""
    rows = ctl.call("link_show", stats=False) if ctl is not None else []
    n = 0
    lo = []
    for r in rows:
        flags = ["Up"] if "UP" in r["flags"] else []
        if r.get("running", "UP" in r["flags"]) and "UP" in r["flags"]:
            flags.append("Running")
        if r["name"] == "lo":
            lo.append("%s [%s]" % (r["name"], ", ".join(flags + ["Loopback"])))
            continue
        n += 1
        flags.append("Connected" if r.get("carrier", True) else "Disconnected")
        out("%d.%s [%s]" % (n, r["name"], ", ".join(flags)))
    n += 1
    out("%d.any (Pseudo-device that captures on all interfaces) [Up, Running]" % n)
    for line in lo:
        n += 1
        out("%d.%s" % (n, line))
    return 0
