"""Script packets: parsing `<`/`>` lines, building what is injected,
checking what the kernel sent.

packetdrill: tcp_packet.c, udp_packet.c, packet_to_string.c, and the checks
of run_packet.c (verify_outbound_live_packet and what it calls), whose
messages these are: `live packet field tcp_window: expected: 65535 (0xffff)
vs actual: 64240 (0xfaf0)`, `bad outbound TCP options`, ...
"""
import re
import struct

from ..kernel.hdr.checksum import csum_fold, csum_partial, csum_tcpudp_nofold, ip_compute_csum

IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP = 1, 6, 17
TCPOPT_EOL, TCPOPT_NOP, TCPOPT_MSS, TCPOPT_WINDOW = 0, 1, 2, 3
TCPOPT_SACK_PERMITTED, TCPOPT_SACK, TCPOPT_TIMESTAMP = 4, 5, 8

FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, ".": 0x10, "U": 0x20,
             "E": 0x40, "W": 0x80}
FLAG_ORDER = "FSRP.UEW"


class ScriptPacket:
    """One packet line: direction, protocol and the fields the script gave."""

    __slots__ = ("direction", "proto", "flags", "seq", "end_seq", "payload_len", "ack",
                 "win", "urg", "options", "options_nocheck", "udp_len", "icmp")

    def __init__(self, direction, proto):
        self.direction = direction      # "<" inbound, ">" outbound
        self.proto = proto
        self.flags = 0
        self.seq = self.end_seq = self.payload_len = 0
        self.ack = None
        self.win = None
        self.urg = 0
        self.options = []               # [(kind, value)] in script order
        self.options_nocheck = False
        self.udp_len = 0
        self.icmp = None

    def has(self, flag):
        return bool(self.flags & FLAG_BITS[flag])


def parse_packet(text):
    """A `<` or `>` line (without its time) -> ScriptPacket; ValueError if malformed."""
    direction = text[0]
    rest = text[1:].strip()
    words = rest.split(None, 1)
    if not words:
        raise ValueError("syntax error: empty packet")
    if words[0] == "udp":
        p = ScriptPacket(direction, IPPROTO_UDP)
        m = re.match(r"^\(\s*(\d+)\s*\)\s*$", words[1] if len(words) > 1 else "")
        if not m:
            raise ValueError("syntax error: expected udp (LENGTH)")
        p.udp_len = int(m.group(1))
        if p.udp_len > 65507:
            raise ValueError("UDP length %d out of range (max 65507)" % p.udp_len)
        p.payload_len = p.udp_len
        return p
    if words[0] == "icmp":
        return parse_icmp(direction, words[1] if len(words) > 1 else "")
    p = ScriptPacket(direction, IPPROTO_TCP)
    m = re.match(r"^([FSRP.UEW]+)\s+(\d+):(\d+)\((\d+)\)\s*(.*)$", rest)
    if not m:
        raise ValueError("syntax error in TCP packet: %r" % rest[:60])
    for c in m.group(1):
        p.flags |= FLAG_BITS[c]
    p.seq, p.end_seq, p.payload_len = int(m.group(2)), int(m.group(3)), int(m.group(4))
    if (p.end_seq - p.seq) & 0xFFFFFFFF != p.payload_len:
        raise ValueError("inconsistent TCP sequence numbers and payload length")
    tail = m.group(5).strip()
    while tail:
        mm = re.match(r"^(ack|win|urg)\s+(\d+)\s*", tail)
        if mm:
            setattr(p, mm.group(1), int(mm.group(2)))
            tail = tail[mm.end():]
            continue
        if tail.startswith("<"):
            close = tail.find(">")
            if close < 0:
                raise ValueError("syntax error: TCP option list without '>'")
            body = tail[1:close].strip()
            tail = tail[close + 1:].strip()
            if body == "...":
                p.options_nocheck = True
            else:
                p.options = parse_tcp_options(body)
            continue
        raise ValueError("syntax error in TCP packet near %r" % tail[:30])
    for name, v, top in (("sequence number", p.seq, 0xFFFFFFFF), ("ack", p.ack or 0, 0xFFFFFFFF),
                         ("window", p.win or 0, 0xFFFF), ("urgent pointer", p.urg, 0xFFFF),
                         ("payload length", p.payload_len, 65495)):
        if v > top:
            raise ValueError("TCP %s %d out of range (max %d)" % (name, v, top))
    if p.flags & FLAG_BITS["."] and p.ack is None:
        raise ValueError("ACK flag set but no ack number given")
    if direction == "<" and p.win is None:
        raise ValueError("window must be specified for inbound packets")
    return p


ICMP_TYPES = {"echo_reply": 0, "unreachable": 3, "source_quench": 4, "redirect": 5,
              "echo_request": 8, "time_exceeded": 11, "parameter_problem": 12}
ICMP_CODES = {"net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2,
              "port_unreachable": 3, "frag_needed": 4, "source_route_failed": 5,
              "net_unknown": 6, "host_unknown": 7, "host_isolated": 8, "net_prohibited": 9,
              "host_prohibited": 10, "net_tos": 11, "host_tos": 12, "packet_filtered": 13,
              "ttl_exceeded": 0, "fragment_reassembly_time_exceeded": 1}


class IcmpSpec:
    """`icmp TYPE [CODE] [mtu N] [[seq:end(len)] | [udp (LEN)]]`: what it quotes."""

    __slots__ = ("type", "code", "mtu", "echo_proto", "echo_seq", "echo_len")

    def __init__(self):
        self.type = self.code = self.mtu = 0
        self.echo_proto = None
        self.echo_seq = self.echo_len = 0


def parse_icmp(direction, text):
    p = ScriptPacket(direction, IPPROTO_ICMP)
    spec = IcmpSpec()
    m = re.match(r"^(\w+)(?:\s+(\w+))?(?:\s+mtu\s+(\d+))?\s*(?:\[(.*)\])?\s*$", text.strip())
    if not m or m.group(1) not in ICMP_TYPES:
        raise ValueError("syntax error in ICMP packet: %r" % text[:60])
    spec.type = ICMP_TYPES[m.group(1)]
    if m.group(2) is not None:
        if m.group(2) not in ICMP_CODES:
            raise ValueError("unknown ICMP code %r" % m.group(2))
        spec.code = ICMP_CODES[m.group(2)]
    spec.mtu = int(m.group(3) or 0)
    echo = (m.group(4) or "").strip()
    if echo:
        mt = re.match(r"^(\d+):(\d+)\((\d+)\)$", echo)
        mu = re.match(r"^udp\s*\(\s*(\d+)\s*\)$", echo)
        if mt:
            spec.echo_proto, spec.echo_seq, spec.echo_len = IPPROTO_TCP, int(mt.group(1)), \
                int(mt.group(3))
        elif mu:
            spec.echo_proto, spec.echo_len = IPPROTO_UDP, int(mu.group(1))
        else:
            raise ValueError("syntax error in the packet an ICMP message quotes: %r" % echo)
    p.icmp = spec
    return p


def parse_tcp_options(body):
    opts = []
    for part in body.split(","):
        w = part.split()
        if not w:
            raise ValueError("syntax error: empty TCP option")
        name = w[0]
        try:
            if name == "nop" and len(w) == 1:
                opts.append((TCPOPT_NOP, None))
            elif name == "eol" and len(w) == 1:
                opts.append((TCPOPT_EOL, None))
            elif name == "mss" and len(w) == 2:
                opts.append((TCPOPT_MSS, int(w[1])))
            elif name == "wscale" and len(w) == 2:
                opts.append((TCPOPT_WINDOW, int(w[1])))
            elif name == "sackOK" and len(w) == 1:
                opts.append((TCPOPT_SACK_PERMITTED, None))
            elif name == "TS" and len(w) == 5 and w[1] == "val" and w[3] == "ecr":
                opts.append((TCPOPT_TIMESTAMP, (int(w[2]), int(w[4]))))
            elif name == "sack":
                blocks = []
                for b in w[1:]:
                    left, right = b.split(":")
                    blocks.append((int(left), int(right)))
                opts.append((TCPOPT_SACK, blocks))
            else:
                raise ValueError
            kind, v = opts[-1]
            limit = {TCPOPT_MSS: 0xFFFF, TCPOPT_WINDOW: 0xFF}.get(kind)
            values = list(v) if kind == TCPOPT_TIMESTAMP else \
                [x for b in v for x in b] if kind == TCPOPT_SACK else [v]
            if kind == TCPOPT_SACK and len(v) > 4:
                raise ValueError
            for x in values:
                if x is not None and not 0 <= x <= (limit or 0xFFFFFFFF):
                    raise ValueError
        except ValueError:
            raise ValueError("syntax error in TCP option %r" % part.strip()) from None
    return opts


def encode_tcp_options(opts):
    out = bytearray()
    for kind, v in opts:
        if kind in (TCPOPT_NOP, TCPOPT_EOL):
            out.append(kind)
        elif kind == TCPOPT_MSS:
            out += struct.pack("!BBH", kind, 4, v)
        elif kind == TCPOPT_WINDOW:
            out += struct.pack("!BBB", kind, 3, v)
        elif kind == TCPOPT_SACK_PERMITTED:
            out += bytes((kind, 2))
        elif kind == TCPOPT_TIMESTAMP:
            out += struct.pack("!BBII", kind, 10, v[0] & 0xFFFFFFFF, v[1] & 0xFFFFFFFF)
        elif kind == TCPOPT_SACK:
            out += bytes((kind, 2 + 8 * len(v)))
            for left, right in v:
                out += struct.pack("!II", left & 0xFFFFFFFF, right & 0xFFFFFFFF)
    return bytes(out)


def decode_tcp_options(buf):
    """[(kind, value)] of a live option block; raises ValueError when malformed."""
    opts = []
    i = 0
    while i < len(buf):
        kind = buf[i]
        if kind in (TCPOPT_NOP, TCPOPT_EOL):
            opts.append((kind, None))
            i += 1
            continue
        if i + 1 >= len(buf) or buf[i + 1] < 2 or i + buf[i + 1] > len(buf):
            raise ValueError("bad TCP option length")
        length = buf[i + 1]
        data = bytes(buf[i + 2:i + length])
        if kind == TCPOPT_MSS and length == 4:
            v = struct.unpack("!H", data)[0]
        elif kind == TCPOPT_WINDOW and length == 3:
            v = data[0]
        elif kind == TCPOPT_SACK_PERMITTED:
            v = None
        elif kind == TCPOPT_TIMESTAMP and length == 10:
            v = struct.unpack("!II", data)
        elif kind == TCPOPT_SACK and (length - 2) % 8 == 0:
            v = [struct.unpack_from("!II", data, j) for j in range(0, length - 2, 8)]
        else:
            v = data
        opts.append((kind, v))
        i += length
    return opts


def options_to_string(opts):
    parts = []
    for kind, v in opts:
        if kind == TCPOPT_NOP:
            parts.append("nop")
        elif kind == TCPOPT_EOL:
            parts.append("eol")
        elif kind == TCPOPT_MSS:
            parts.append("mss %d" % v)
        elif kind == TCPOPT_WINDOW:
            parts.append("wscale %d" % v)
        elif kind == TCPOPT_SACK_PERMITTED:
            parts.append("sackOK")
        elif kind == TCPOPT_TIMESTAMP:
            parts.append("TS val %d ecr %d" % v)
        elif kind == TCPOPT_SACK:
            parts.append("sack " + " ".join("%d:%d" % b for b in v))
        else:
            parts.append("option %d" % kind)
    return ",".join(parts)


def flags_to_string(flags):
    return "".join(c for c in FLAG_ORDER if flags & FLAG_BITS[c])


# ---------------------------------------------------------------- live packets

class LivePacket:
    """An IPv4 packet the kernel sent (or one we built), parsed."""

    __slots__ = ("raw", "ihl", "tos", "tot_len", "ttl", "proto", "saddr", "daddr",
                 "ip_csum_ok", "sport", "dport", "seq", "ack", "doff", "flags", "res1", "win",
                 "urg", "options", "payload", "udp_len", "icmp_type", "icmp_code", "ip_id",
                 "frag")

    def __init__(self, raw):
        self.raw = bytes(raw)
        b = self.raw
        if len(b) < 20 or b[0] >> 4 != 4:
            raise ValueError("not an IPv4 packet")
        self.ihl = b[0] & 15
        self.tos = b[1]
        self.tot_len, self.ip_id, self.frag = struct.unpack_from("!HHH", b, 2)
        self.ttl, self.proto = b[8], b[9]
        self.saddr, self.daddr = struct.unpack_from("!II", b, 12)
        self.ip_csum_ok = csum_fold(csum_partial(b, 0, self.ihl * 4)) == 0
        l4 = self.ihl * 4
        self.options = []
        self.sport = self.dport = 0
        self.payload = b""
        if self.proto == IPPROTO_TCP:
            (self.sport, self.dport, self.seq, self.ack, off_flags, self.win, _csum,
             self.urg) = struct.unpack_from("!HHIIHHHH", b, l4)
            self.doff = off_flags >> 12
            self.res1 = (off_flags >> 8) & 0xF
            self.flags = off_flags & 0xFF
            self.options = decode_tcp_options(b[l4 + 20:l4 + self.doff * 4])
            self.payload = b[l4 + self.doff * 4:self.tot_len]
        elif self.proto == IPPROTO_UDP:
            self.sport, self.dport, self.udp_len = struct.unpack_from("!HHH", b, l4)
            self.payload = b[l4 + 8:self.tot_len]
        elif self.proto == IPPROTO_ICMP:
            self.icmp_type, self.icmp_code = b[l4], b[l4 + 1]
            self.payload = b[l4 + 8:self.tot_len]


def build_tcp(saddr, daddr, sport, dport, seq, ack, flags, win, urg, opts_bytes, payload,
              ttl=64, tos=0):
    opts_bytes += b"\0" * (-len(opts_bytes) % 4)
    doff = (20 + len(opts_bytes)) // 4
    tcp = bytearray(struct.pack("!HHIIHHHH", sport, dport, seq & 0xFFFFFFFF,
                                ack & 0xFFFFFFFF, (doff << 12) | flags, win & 0xFFFF, 0,
                                urg) + opts_bytes + payload)
    s = csum_partial(tcp, 0, len(tcp), csum_tcpudp_nofold(saddr, daddr, len(tcp), IPPROTO_TCP))
    struct.pack_into("!H", tcp, 16, csum_fold(s))
    return _ip(saddr, daddr, IPPROTO_TCP, bytes(tcp), ttl, tos)


def build_udp(saddr, daddr, sport, dport, payload, ttl=64, tos=0):
    udp = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)
    s = csum_partial(udp, 0, len(udp), csum_tcpudp_nofold(saddr, daddr, len(udp), IPPROTO_UDP))
    struct.pack_into("!H", udp, 6, csum_fold(s) or 0xFFFF)
    return _ip(saddr, daddr, IPPROTO_UDP, bytes(udp), ttl, tos)


def build_icmp(saddr, daddr, icmp_type, code, rest_of_header, quoted, ttl=64, tos=0):
    icmp = bytearray(struct.pack("!BBH", icmp_type, code, 0) + rest_of_header + quoted)
    struct.pack_into("!H", icmp, 2, ip_compute_csum(icmp))
    return _ip(saddr, daddr, IPPROTO_ICMP, bytes(icmp), ttl, tos)


def _ip(saddr, daddr, proto, l4, ttl, tos):
    hdr = bytearray(struct.pack("!BBHHHBBHII", 0x45, tos, 20 + len(l4), 0, 0x4000, ttl, proto,
                                0, saddr, daddr))
    struct.pack_into("!H", hdr, 10, ip_compute_csum(hdr))
    return bytes(hdr) + l4


def packet_to_string(proto, flags, seq, end_seq, plen, ack, win, opts, nocheck=False,
                     udp_len=0):
    """packet_to_string (DUMP_SHORT): `S. 0:0(0) ack 1 win 65535 <mss 1460,...>`."""
    if proto == IPPROTO_UDP:
        return "udp (%d)" % udp_len
    if proto == IPPROTO_ICMP:
        return "icmp"
    s = "%s %u:%u(%u)" % (flags_to_string(flags), seq & 0xFFFFFFFF, end_seq & 0xFFFFFFFF, plen)
    if flags & FLAG_BITS["."]:
        s += " ack %u" % (ack & 0xFFFFFFFF)
    if win is not None:
        s += " win %u" % win
    if nocheck:
        s += " <...>"
    elif opts:
        s += " <%s>" % options_to_string(opts)
    return s
