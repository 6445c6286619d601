"""Generic Receive Offload: merge the segments of a flow before the stack sees them.

Linux: net/core/gro.c, include/net/gro.h (NAPI_GRO_CB, skb_gro_*),
net/ipv4/af_inet.c (inet_gro_receive) and the per-protocol callbacks in
ethernet/eth.py, ipv4/ip_offload.py, ipv4/tcp_offload.py, ipv4/udp_offload.py.

A NAPI poll hands each received skb to napi_gro_receive. dev_gro_receive
picks the bucket by the low bits of the flow hash (skb.hash, from the NIC),
marks which held packets may be the same flow (gro_list_prepare: hash,
device, Ethernet header) and asks the registered gro_receive callbacks, layer
by layer (ETH_P_IP -> inet_gro_receive -> tcp4_gro_receive | udp4_gro_receive),
whether the packet joins a held one. A joined packet's payload becomes a page
frag of the held skb (skb_gro_receive), so a merged skb carries exactly the
bytes of its segments, in order. Packets GRO cannot merge go to rx_list
(GRO_NORMAL) and up in batches of gro_normal_batch (gro_normal_list ->
netif_receive_skb_list_internal). napi_gro_flush completes the held ones
(napi_gro_complete -> the gro_complete callbacks fix lengths and checksums
and set gso_size/gso_segs/gso_type) when the NAPI completes, when a poll used
its whole weight (those older than a jiffy), or when a callback says so.

Emulation note: NAPI_GRO_CB is a NapiGroCb object in skb.cb while the skb is
in GRO (Linux overlays skb->cb); the NAPI keeps one spare so that only held
packets cost an allocation. skb_gro_receive has no frag_list: a held packet
whose frags are full (MAX_SKB_FRAGS) is flushed instead of chained.
"""
from .netdevice import NETIF_F_GRO, SKB_GSO_DODGY, SKB_GSO_TCPV4, SKB_GSO_TCPV6
from .skbuff import (
    MAX_SKB_FRAGS, SKB_TRUESIZE_OVERHEAD, SkbFrag, consume_skb, kfree_skb,
)

# enum gro_result
GRO_MERGED = 0
GRO_MERGED_FREE = 1
GRO_HELD = 2
GRO_NORMAL = 3
GRO_RESULT_NAMES = {GRO_MERGED: "merged", GRO_MERGED_FREE: "merged_free", GRO_HELD: "held", GRO_NORMAL: "normal"}
GRO_CONSUMED = 4

NAPI_GRO_FREE = 1
NAPI_GRO_FREE_STOLEN_HEAD = 2

MAX_GRO_SKBS = 8                 # held packets per bucket
GRO_HASH_BUCKETS = 8
E2BIG = 7


class NapiGroCb:
    """struct napi_gro_cb: a packet's GRO state (skb.cb while in GRO)."""

    __slots__ = ("data_offset", "flush", "count", "same_flow", "age", "last",
                 "proto", "free", "is_atomic", "ip_fixedid", "network_offset",
                 "is_flist")

    def __init__(self):
        self.data_offset = 0     # how far the callbacks have parsed, from skb.data
        self.flush = 0           # do not hold or merge this packet
        self.count = 1           # segments in this (merged) packet
        self.same_flow = 0       # (on held packets) may be the flow of the packet at hand
        self.age = 0             # jiffies when held
        self.last = None         # the skb whose frags take the next segment
        self.proto = 0           # the L4 protocol inet_gro_receive found
        self.free = 0            # NAPI_GRO_FREE*: what to free after a merge
        self.is_atomic = 1
        self.ip_fixedid = 0
        self.network_offset = 0
        self.is_flist = 0


class PacketOffload:
    """struct packet_offload: GRO/GSO callbacks of one EtherType."""

    __slots__ = ("type", "priority", "gro_receive", "gro_complete", "gso_segment")

    def __init__(self, type, gro_receive=None, gro_complete=None, gso_segment=None,
                 priority=0):
        self.type = type
        self.priority = priority
        self.gro_receive = gro_receive       # (head, skb) -> skb to flush or None
        self.gro_complete = gro_complete     # (skb, nhoff) -> 0 or -errno
        self.gso_segment = gso_segment       # (skb, features) -> [skbs] | None | -errno


class NetOffload:
    """struct net_offload: GRO/GSO callbacks of one IP protocol."""

    __slots__ = ("gro_receive", "gro_complete", "gso_segment")

    def __init__(self, gro_receive=None, gro_complete=None, gso_segment=None):
        self.gro_receive = gro_receive
        self.gro_complete = gro_complete
        self.gso_segment = gso_segment


def dev_add_offload(net, po):
    """Register the offload callbacks of an EtherType (the offload_base list)."""
    net.proto.setdefault("offload_base", {})[po.type] = po


def dev_remove_offload(net, po):
    base = net.proto.get("offload_base", {})
    if base.get(po.type) is po:
        del base[po.type]


def skb_gro_offset(skb):
    return skb.cb.data_offset


def skb_gro_len(skb):
    return skb.len - skb.cb.data_offset


def skb_gro_pull(skb, length):
    skb.cb.data_offset += length


def skb_gro_header(skb, hlen, offset):
    """(buf, off) of hlen bytes at offset from data, or None if not linear there."""
    if skb.data + hlen > skb.tail:
        return None
    return skb.buf, skb.data + offset


# ---------------------------------------------------------------- receive

def gro_list_prepare(head, skb):
    """Mark the held packets that may be skb's flow: same hash, device, MAC header."""
    h = skb.hash
    dev = skb.dev
    m = skb.mac_header
    mac = skb.buf[m:m + 14]
    for p in head:
        pcb = p.cb
        pcb.flush = 0
        if p.hash != h or p.dev is not dev:
            pcb.same_flow = 0
            continue
        pm = p.mac_header
        # compare_ether_header (inlined: this runs for every held packet)
        pcb.same_flow = p.buf[pm:pm + 14] == mac


def dev_gro_receive(napi, skb):
    """Hold, merge or pass skb; returns a GRO_* result."""
    if skb.trace is not None:
        skb.trace.hit("dev_gro_receive", "bucket %d" % (skb.hash & (GRO_HASH_BUCKETS - 1)))
    h = skb.hash
    bucket = h & (GRO_HASH_BUCKETS - 1)
    head = napi.gro_hash[bucket]
    dev = skb.dev
    if not dev.features & NETIF_F_GRO:        # netif_elide_gro
        return GRO_NORMAL
    ptype = dev.net.proto["offload_base"].get(skb.protocol)
    if ptype is None or ptype.gro_receive is None:
        return GRO_NORMAL
    if head:
        gro_list_prepare(head, skb)
    skb.network_header = skb.data
    skb.mac_len = skb.data - skb.mac_header
    cb = napi.scratch_cb
    if cb is None:
        cb = napi.scratch_cb = NapiGroCb()
    else:
        cb.data_offset = 0
        cb.flush = 0
        cb.count = 1
        cb.same_flow = 0
        cb.free = 0
        cb.is_atomic = 1
        cb.ip_fixedid = 0
        cb.is_flist = 0
        cb.proto = 0
    skb.cb = cb
    sh = skb.shinfo
    if sh.gso_size:
        cb.count = sh.gso_segs
        # Only TCP, and not from an untrusted source.
        if not sh.gso_type & (SKB_GSO_TCPV4 | SKB_GSO_TCPV6) or sh.gso_type & SKB_GSO_DODGY:
            cb.flush = 1
    pp = ptype.gro_receive(head, skb)
    if pp is not None:
        head.remove(pp)
        napi_gro_complete(napi, pp)
        napi.gro_count[bucket] -= 1
    if cb.same_flow:
        ret = GRO_MERGED_FREE if cb.free else GRO_MERGED
    elif cb.flush:
        ret = GRO_NORMAL
    else:
        if napi.gro_count[bucket] >= MAX_GRO_SKBS:
            gro_flush_oldest(napi, head)
        else:
            napi.gro_count[bucket] += 1
        cb.age = int(dev.net.clock() * 1000)          # jiffies (HZ=1000)
        cb.last = skb
        if not sh.gso_size:
            sh.gso_size = skb.len - cb.data_offset
        head.append(skb)                               # youngest last
        napi.scratch_cb = None                         # the held skb keeps its cb
        ret = GRO_HELD
    if napi.gro_count[bucket]:
        napi.gro_bitmask |= 1 << bucket
    else:
        napi.gro_bitmask &= ~(1 << bucket)
    return ret


def napi_gro_receive(napi, skb):
    """A driver's NAPI poll hands a received skb (protocol set by eth_type_trans)."""
    if skb.trace is not None:
        skb.trace.hit("napi_gro_receive")
    return napi_skb_finish(napi, skb, dev_gro_receive(napi, skb))


def napi_skb_finish(napi, skb, ret):
    """Act on dev_gro_receive's verdict: a packet GRO did not take goes up
    (gro_normal_one); one merged into a held skb is freed (its head, if that
    was stolen as a frag); a held one stays with GRO."""
    if skb.trace is not None:
        skb.trace.hit("napi_skb_finish", GRO_RESULT_NAMES.get(ret, ret))
    if ret == GRO_NORMAL:
        skb.cb = None
        gro_normal_one(napi, skb, 1)
    elif ret == GRO_MERGED_FREE:
        if skb.cb.free == NAPI_GRO_FREE_STOLEN_HEAD:
            napi_skb_free_stolen_head(skb)
        else:
            skb.cb = None
            consume_skb(skb)
    return ret


def napi_skb_free_stolen_head(skb):
    """Free the sk_buff whose head became a frag of another skb (the data lives on)."""
    skb.cb = None
    skb.freed = True
    skb.buf = None


def skb_gro_receive(p, skb):
    """Append skb's payload (after the headers GRO parsed) to p as page frags.

    Returns 0, or -E2BIG when p would pass gro_max_size, skb must be
    flushed, or p has no room for more frags.
    """
    cb = skb.cb
    pcb = p.cb
    offset = cb.data_offset
    headlen = skb.len - skb.data_len
    length = skb.len - offset
    if p.len + length >= p.dev.gro_max_size or cb.flush:
        return -E2BIG
    pfrags = p.shinfo.frags
    sfrags = skb.shinfo.frags
    if headlen <= offset:
        # All of skb's payload is in page frags: move them over.
        if len(pfrags) + len(sfrags) > MAX_SKB_FRAGS:
            return -E2BIG
        offset -= headlen
        first = sfrags[0]
        pfrags.append(SkbFrag(first.page, first.offset + offset, first.size - offset))
        pfrags.extend(sfrags[1:])
        skb.shinfo.frags = []
        new_truesize = (skb.end - skb.head) + SKB_TRUESIZE_OVERHEAD
        delta_truesize = skb.truesize - new_truesize
        skb.truesize = new_truesize
        skb.len -= skb.data_len
        skb.data_len = 0
        cb.free = NAPI_GRO_FREE
    else:
        # The linear head holds payload (every emu driver builds skbs so):
        # the head itself becomes a frag of p (head_frag) and is "stolen".
        if len(pfrags) + 1 + len(sfrags) > MAX_SKB_FRAGS:
            return -E2BIG
        pfrags.append(SkbFrag(skb.buf, skb.data + offset, headlen - offset))
        if sfrags:
            pfrags.extend(sfrags)
        delta_truesize = skb.truesize - SKB_TRUESIZE_OVERHEAD
        skb.truesize = SKB_TRUESIZE_OVERHEAD
        cb.free = NAPI_GRO_FREE_STOLEN_HEAD
    pcb.count += cb.count
    p.data_len += length
    p.truesize += delta_truesize
    p.len += length
    cb.same_flow = 1
    return 0


def gro_flush_oldest(napi, head):
    oldest = head.pop(0)
    napi_gro_complete(napi, oldest)


def napi_gro_complete(napi, skb):
    """A held packet is done: the gro_complete callbacks finish it, then up it goes."""
    cb = skb.cb
    count = cb.count
    if skb.trace is not None:
        skb.trace.hit("napi_gro_complete", "%d segments" % count)
    if count == 1:
        skb.shinfo.gso_size = 0
    else:
        ptype = skb.dev.net.proto["offload_base"].get(skb.protocol)
        err = ptype.gro_complete(skb, 0) if ptype is not None and ptype.gro_complete else -2
        if err:
            skb.cb = None
            kfree_skb(skb)
            return
    skb.cb = None
    gro_normal_one(napi, skb, count)


def __napi_gro_flush_chain(napi, index, flush_old):
    head = napi.gro_hash[index]
    if flush_old:
        now = int(napi.dev.net.clock() * 1000)
        while head:
            if head[0].cb.age == now:
                return
            skb = head.pop(0)
            napi.gro_count[index] -= 1
            napi_gro_complete(napi, skb)
    else:
        while head:
            skb = head.pop(0)
            napi.gro_count[index] -= 1
            napi_gro_complete(napi, skb)
    if not napi.gro_count[index]:
        napi.gro_bitmask &= ~(1 << index)


def napi_gro_flush(napi, flush_old):
    """Complete the held packets (only those older than this jiffy if flush_old)."""
    bitmask = napi.gro_bitmask
    i = 0
    while bitmask:
        if bitmask & 1:
            __napi_gro_flush_chain(napi, i, flush_old)
        bitmask >>= 1
        i += 1


def gro_normal_one(napi, skb, segs):
    """Queue a packet for netif_receive_skb_list; pass the batch up when it is big enough."""
    napi.rx_list.append(skb)
    napi.rx_count += segs
    if napi.rx_count >= napi.dev.net.sysctl["net.core.gro_normal_batch"]:
        gro_normal_list(napi)


def gro_normal_list(napi):
    """Pass rx_list up the stack in one go."""
    if not napi.rx_count:
        return
    lst = napi.rx_list
    napi.rx_list = []
    napi.rx_count = 0
    dev.netif_receive_skb_list_internal(lst)


from . import dev  # noqa: E402  (dev.c is one file in Linux; bound late to break the cycle)
