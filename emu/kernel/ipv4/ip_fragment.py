"""IPv4 fragment reassembly.

Linux: net/ipv4/ip_fragment.c, net/ipv4/inet_fragment.c; RFC 791, RFC 815.

Fragments queue per (saddr, daddr, id, protocol). Overlapping fragments
discard the whole datagram (Linux since 4.19, counted in ReasmOverlaps); an
exact duplicate is dropped alone. A datagram not complete within
ipfrag_time (30 s) is dropped (ReasmTimeout) with an ICMP time exceeded
(fragment reassembly) if its first fragment came; memory past
ipfrag_high_thresh refuses new fragments.
"""
from bisect import bisect_left

from ..core.skbuff import (
    LL_MAX_HEADER, alloc_skb, consume_skb, kfree_skb, skb_put, skb_reserve,
)
from ..core.timer import TimerList
from ..hdr.icmp import ICMP_EXC_FRAGTIME, ICMP_TIME_EXCEEDED
from ..hdr.ip import IP_MF, IP_OFFSET
from .icmp import icmp_send_about
from .ip_output import ip_send_check

IP_MAX_DATAGRAM = 65535


class Ipq:
    """struct ipq: one datagram being reassembled."""

    __slots__ = ("key", "frags", "len", "meat", "last_in", "mem", "timer", "first",
                 "first_cb", "dev", "iif", "dead")

    def __init__(self, key):
        self.key = key
        self.frags = []          # (offset, end, payload bytes), sorted by offset
        self.len = 0             # total length, known once the last fragment came
        self.meat = 0            # payload bytes received
        self.last_in = False
        self.mem = 0
        self.timer = None
        self.first = None        # the offset-0 fragment's skb (its header is kept)
        self.first_cb = None     # and its IPCB: the options compiled on receive
        self.dev = None
        self.iif = 0
        self.dead = False


def ipfrag_init(net):
    net.proto["ipq"] = {}
    net.proto["ipfrag_mem"] = 0
    net.sysctl.setdefault("net.ipv4.ipfrag_time", 30)
    net.sysctl.setdefault("net.ipv4.ipfrag_high_thresh", 4 * 1024 * 1024)


def ip_defrag(net, skb):
    """Queue a fragment; returns the reassembled skb when it completes, else None."""
    if skb.trace is not None:
        skb.trace.hit("ip_defrag")
    ip = net.mib["Ip"]
    ip["ReasmReqds"] += 1
    buf = skb.buf
    nh = skb.network_header
    ihl = (buf[nh] & 15) * 4
    frag = (buf[nh + 6] << 8) | buf[nh + 7]
    offset = (frag & IP_OFFSET) * 8
    more = bool(frag & IP_MF)
    start = nh + ihl
    payload = bytes(buf[start:skb.tail])
    end = offset + len(payload)
    key = (bytes(buf[nh + 12:nh + 16]), bytes(buf[nh + 16:nh + 20]),
           bytes(buf[nh + 4:nh + 6]), buf[nh + 9])
    # The reassembled datagram (header included) must fit the 16-bit total length.
    if end + ihl > IP_MAX_DATAGRAM or (more and len(payload) & 7) or (more and not payload):
        ip["ReasmFails"] += 1
        kfree_skb(skb, "IP_FRAG_INVALID")
        return None
    # Linux (inet_frag_find) refuses every fragment, not only new queues, over high_thresh.
    if net.proto["ipfrag_mem"] + skb.truesize > net.sysctl["net.ipv4.ipfrag_high_thresh"]:
        ip["ReasmFails"] += 1
        kfree_skb(skb, "FRAG_REASM_MEM")
        return None
    table = net.proto["ipq"]
    q = table.get(key)
    if q is None:
        q = table[key] = Ipq(key)
        q.timer = TimerList(ip_expire, (net, q))
        net.mod_timer(q.timer, net.clock() + net.sysctl["net.ipv4.ipfrag_time"])
    # RFC 791: the last fragment fixes the total length; later data past it is bad.
    if not more:
        if (q.last_in and end != q.len) or (q.frags and end < q.frags[-1][1]):
            return _discard(net, q, skb, "ReasmFails")
        q.last_in = True
        q.len = end
    elif q.last_in and end > q.len:
        return _discard(net, q, skb, "ReasmFails")
    # q.frags is sorted and disjoint, so only the two neighbours can overlap: O(log n).
    i = bisect_left(q.frags, (offset, end))
    for o, e, _ in q.frags[max(i - 1, 0):i + 1]:
        if o == offset and e == end:
            kfree_skb(skb, "IP_FRAG_DUP")     # an exact duplicate: drop just this one
            return None
        if offset < e and o < end:
            net.mib["IpExt"]["ReasmOverlaps"] += 1
            return _discard(net, q, skb, "ReasmFails")
    q.frags.insert(i, (offset, end, payload))
    q.meat += len(payload)
    q.mem += skb.truesize
    net.proto["ipfrag_mem"] += skb.truesize
    if offset == 0:
        q.first = bytes(buf[nh:nh + ihl])
        q.first_cb = skb.cb if ihl > 20 else None
        q.dev = skb.dev
        q.iif = skb.skb_iif
    dev, dst = skb.dev, skb.dst
    consume_skb(skb)
    if q.last_in and q.first is not None and q.meat == q.len:
        return ip_frag_reasm(net, q, dev, dst)
    return None


def _discard(net, q, skb, counter):
    net.mib["Ip"][counter] += 1
    kfree_skb(skb, "IP_FRAG_OVERLAP")
    _kill(net, q)
    return None


def _kill(net, q):
    if q.dead:
        return
    q.dead = True
    net.del_timer(q.timer)
    net.proto["ipq"].pop(q.key, None)
    net.proto["ipfrag_mem"] -= q.mem


def ip_frag_reasm(net, q, dev, dst):
    """Glue the fragments behind the first one's header: one skb, one datagram."""
    _kill(net, q)
    hdr = q.first
    ihl = len(hdr)
    total = ihl + q.len
    if total > IP_MAX_DATAGRAM:     # fragment 0 carried options the others did not count
        net.mib["Ip"]["ReasmFails"] += 1
        return None
    skb = alloc_skb(LL_MAX_HEADER + total)
    skb_reserve(skb, LL_MAX_HEADER)
    off = skb_put(skb, total)
    buf = skb.buf
    buf[off:off + ihl] = hdr
    for o, e, data in q.frags:
        buf[off + ihl + o:off + ihl + e] = data
    buf[off + 2] = total >> 8
    buf[off + 3] = total & 0xFF
    buf[off + 6] = 0
    buf[off + 7] = 0
    ip_send_check(buf, off)
    skb.network_header = off
    skb.transport_header = off + ihl
    skb.dev = dev
    skb.skb_iif = q.iif
    skb.protocol = 0x0800
    skb.dst = dst
    skb.cb = q.first_cb          # the head fragment's IPCB goes with it (skb_morph)
    net.mib["Ip"]["ReasmOKs"] += 1
    return skb


def ip_expire(data):
    """The datagram did not complete in time (RFC 791 reassembly timer)."""
    net, q = data
    if q.dead:
        return
    _kill(net, q)
    ip = net.mib["Ip"]
    ip["ReasmTimeout"] += 1
    ip["ReasmFails"] += 1
    if q.first is not None and q.dev is not None:
        # RFC 792: time exceeded, code 1, only if fragment zero arrived.
        o, e, data0 = q.frags[0]
        icmp_send_about(net, q.first + data0[:8], q.dev, ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME)
