"""Tracepoints on the packet path, recorded per packet into a ring per node.

Linux: kernel/trace (ftrace function tracing), include/trace/events/skb.h

Every function on the packet paths of DESIGN.md section 3 starts with
``if skb.trace is not None: skb.trace.hit("name")``. With tracing off that is
one attribute load and one comparison. A packet is traced when it matches the
node's filter where it enters the kernel (from a wire or from a socket), or
when the wire header carries a trace id from a node that traced it before:
the id stitches one packet's path across nodes.
"""
from collections import deque

from ..hdr.if_ether import ETH_HLEN, ETH_P_ARP, ETH_P_IP, ethhdr
from ..hdr.ip import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, iphdr

PROTO_NAMES = {"icmp": IPPROTO_ICMP, "tcp": IPPROTO_TCP, "udp": IPPROTO_UDP}


class TraceFilter:
    """A packet filter in the spirit of tcpdump's simplest expressions.

    proto: 'icmp' | 'tcp' | 'udp' | 'arp' | None; host: an IPv4 int or None;
    port: an int or None. All given fields must match.
    """

    __slots__ = ("proto", "host", "port")

    def __init__(self, proto=None, host=None, port=None):
        self.proto = proto
        self.host = host
        self.port = port

    def match_l3(self, ethertype, buf, off, end):
        """Match an IPv4/ARP packet whose network header is at buf[off:end]."""
        if ethertype == ETH_P_ARP:
            return self.proto in (None, "arp") and self.port is None and self.host is None
        if ethertype != ETH_P_IP or end - off < 20:
            return False
        ver_ihl, _, _, _, _, _, proto, _, saddr, daddr = iphdr.unpack_from(buf, off)
        if self.proto is not None:
            if PROTO_NAMES.get(self.proto) != proto:
                return False
        if self.host is not None:
            h = self.host.to_bytes(4, "big")
            if h != saddr and h != daddr:
                return False
        if self.port is not None:
            l4 = off + (ver_ihl & 15) * 4
            if proto not in (IPPROTO_TCP, IPPROTO_UDP) or end - l4 < 4:
                return False
            sport = int.from_bytes(buf[l4:l4 + 2], "big")
            dport = int.from_bytes(buf[l4 + 2:l4 + 4], "big")
            if self.port not in (sport, dport):
                return False
        return True

    def match_frame(self, buf, off, end):
        if end - off < ETH_HLEN:
            return False
        ethertype = ethhdr.unpack_from(buf, off)[2]
        return self.match_l3(ethertype, buf, off + ETH_HLEN, end)


class TraceCtx:
    """The trace state one packet carries: its id and where to record."""

    __slots__ = ("tracer", "id")

    def __init__(self, tracer, trace_id):
        self.tracer = tracer
        self.id = trace_id

    def hit(self, func, info=None):
        self.tracer.record(self.id, func, info)


class Tracer:
    """The per-node trace ring (bounded) and filter."""

    def __init__(self, net, filt, ring_size=4096, id_base=0):
        self.net = net
        self.filter = filt
        self.ring: deque[tuple] = deque(maxlen=ring_size)
        self.next_id = 1
        self.id_base = id_base   # high bits unique per node, so ids never collide
        self.pending = None

    def new_ctx(self):
        tid = self.id_base | self.next_id
        self.next_id += 1
        return TraceCtx(self, tid)

    def ctx_for(self, trace_id):
        return TraceCtx(self, trace_id)

    def record(self, trace_id, func, info=None):
        net = self.net
        self.ring.append((trace_id, net.name, net.cur_cpu, net.clock(), func,
                          None if info is None else str(info)))

    # The send path runs functions before the packet exists (sock_sendmsg,
    # inet_sendmsg, udp_sendmsg...). Their hits wait in `pending` until the
    # skb is built; attach() keeps them if the packet matches the filter.
    def begin_send(self, func):
        self.pending = [(func, self.net.cur_cpu, self.net.clock())]

    def send_hit(self, func):
        if self.pending is not None:
            self.pending.append((func, self.net.cur_cpu, self.net.clock()))

    def attach(self, skb):
        """The send path built skb: trace it (with the hits so far) if it matches."""
        pending, self.pending = self.pending, None
        if not self.filter.match_l3(0x0800, skb.buf, skb.network_header, skb.tail):
            return
        ctx = skb.trace = self.new_ctx()
        name = self.net.name
        for func, cpu, t in pending or ():
            self.ring.append((ctx.id, name, cpu, t, func, None))

    def end_send(self):
        self.pending = None

    def dump(self, clear=False):
        rows = list(self.ring)
        if clear:
            self.ring.clear()
        return rows
