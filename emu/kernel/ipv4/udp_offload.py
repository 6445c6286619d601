"""UDP over IPv4: GRO (only when asked for) and GSO (UDP_SEGMENT and UFO).

Linux: net/ipv4/udp_offload.c (udp4_gro_receive, udp_gro_receive,
udp_gro_receive_segment, udp4_gro_complete, udp_gro_complete,
udp4_ufo_fragment, __udp_gso_segment)

UDP GRO, as in Linux, merges datagrams only when someone asked for it: a
socket with UDP_GRO enabled (found through the net.proto["udp4_gro_lookup"]
hook; the socket layer installs it -- with no hook, no socket asked), or a
device with rx-udp-gro-forwarding (NETIF_F_GRO_UDP_FWD) for forwarded
traffic. Otherwise every datagram is flushed as it comes (GRO_NORMAL).
When merging, datagrams of one flow (same addresses and ports) join while
they have the first one's length; a shorter one ends the packet, a longer
one starts a new one; at most UDP_GRO_CNT_MAX join. No tunnel
(encapsulation) offloads and no fraglist GRO are modelled.

GSO: SKB_GSO_UDP_L4 (UDP_SEGMENT) cuts one large datagram into gso_size
datagrams, each with its UDP header, length and checksum; SKB_GSO_UDP (UFO)
cuts it into IP fragments after completing the checksum of the whole.
"""
from ..core.gro import NetOffload, skb_gro_receive
from ..core.netdevice import (
    NETIF_F_CSUM_MASK, NETIF_F_GRO_FRAGLIST, NETIF_F_GRO_UDP_FWD, NETIF_F_GSO_ROBUST,
    NETIF_F_HW_CSUM, SKB_GSO_UDP, SKB_GSO_UDP_L4, net_gso_ok,
)
from ..core.skbuff import (
    CHECKSUM_NONE, CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, pskb_may_pull, skb_copy_bits,
)
from ..hdr.checksum import csum_partial, csum_tcpudp_nofold
from ..hdr.ip import IPPROTO_UDP
from .ip_offload import inet_add_offload, inet_gro_flush

EINVAL = 22
UDP_GRO_CNT_MAX = 64
UDP_HLEN = 8


def _addrs(buf, nh):
    return (int.from_bytes(buf[nh + 12:nh + 16], "big"),
            int.from_bytes(buf[nh + 16:nh + 20], "big"))


def udp4_gro_receive(head, skb):
    cb = skb.cb
    buf = skb.buf
    t = skb.data + cb.data_offset
    if skb.tail - t < UDP_HLEN:                         # udp_gro_udphdr
        cb.flush = 1
        return None
    check = (buf[t + 6] << 8) | buf[t + 7]
    nh = skb.data + cb.network_offset
    if not cb.flush and check and skb.ip_summed != CHECKSUM_UNNECESSARY and \
            skb.ip_summed != CHECKSUM_PARTIAL:
        # skb_gro_checksum_validate_zero_check: a zero checksum is not checked.
        end = skb.data + skb.len
        saddr, daddr = _addrs(buf, nh)
        if csum_partial(buf, t, end, csum_tcpudp_nofold(saddr, daddr, end - t,
                                                        IPPROTO_UDP)) != 0xFFFF:
            cb.flush = 1
            return None
        skb.ip_summed = CHECKSUM_UNNECESSARY
    sk = None
    lookup = skb.dev.net.proto.get("udp4_gro_lookup")
    if lookup is not None:
        saddr, daddr = _addrs(buf, nh)
        sk = lookup(skb, saddr, (buf[t] << 8) | buf[t + 1], daddr, (buf[t + 2] << 8) | buf[t + 3])
    return udp_gro_receive(head, skb, t, sk)


def udp_gro_receive(head, skb, t, sk):
    """Aggregate only for a UDP_GRO socket or a rx-udp-gro-forwarding device."""
    cb = skb.cb
    cb.is_flist = 0
    features = skb.dev.features
    gro_enabled = sk is not None and getattr(sk, "udp_gro_enabled", False)
    if features & NETIF_F_GRO_FRAGLIST:
        cb.is_flist = 0 if gro_enabled else 1
    if (sk is None and features & NETIF_F_GRO_UDP_FWD) or gro_enabled or cb.is_flist:
        return udp_gro_receive_segment(head, skb, t)
    cb.flush = 1                 # no GRO: be sure to flush this packet
    return None


def udp_gro_receive_segment(head, skb, t):
    cb = skb.cb
    buf = skb.buf
    if not ((buf[t + 6] << 8) | buf[t + 7]):
        cb.flush = 1             # a zero checksum: not symmetric with GSO
        return None
    ulen = (buf[t + 4] << 8) | buf[t + 5]
    if ulen <= UDP_HLEN or ulen != skb.len - cb.data_offset:
        cb.flush = 1             # padded or lying about its length
        return None
    cb.data_offset += UDP_HLEN
    ports = buf[t:t + 4]
    for p in reversed(head):
        pcb = p.cb
        if not pcb.same_flow:
            continue
        t2 = p.transport_header
        pbuf = p.buf
        if pbuf[t2:t2 + 4] != ports:
            pcb.same_flow = 0
            continue
        if cb.is_flist != pcb.is_flist:
            cb.flush = 1
            return p
        flush = inet_gro_flush(buf, skb.data + cb.network_offset,
                               pbuf, p.data + pcb.network_offset, pcb)
        ulen2 = (pbuf[t2 + 4] << 8) | pbuf[t2 + 5]
        pp = None
        ret = 0
        # A longer datagram ends the held packet (and starts its own); a
        # shorter one joins as the last.
        if ulen > ulen2 or flush:
            pp = p
        else:
            ret = skb_gro_receive(p, skb)
        if ret or ulen != ulen2 or pcb.count >= UDP_GRO_CNT_MAX:
            pp = p
        return pp
    return None


def udp4_gro_complete(skb, nhoff):
    cb = skb.cb
    buf = skb.buf
    nh = skb.data + cb.network_offset
    uh = skb.data + nhoff
    if (buf[uh + 6] << 8) | buf[uh + 7]:
        saddr, daddr = _addrs(buf, nh)
        pseudo = csum_tcpudp_nofold(saddr, daddr, skb.len - nhoff, IPPROTO_UDP)
        buf[uh + 6] = pseudo >> 8
        buf[uh + 7] = pseudo & 0xFF
    return udp_gro_complete(skb, nhoff)


def udp_gro_complete(skb, nhoff):
    buf = skb.buf
    uh = skb.data + nhoff
    newlen = skb.len - nhoff
    buf[uh + 4] = newlen >> 8
    buf[uh + 5] = newlen & 0xFF
    udp_gro_complete_segment(skb, uh)
    return 0


def udp_gro_complete_segment(skb, uh):
    skb.transport_header = uh
    skb.csum_start = uh
    skb.csum_offset = 6
    skb.ip_summed = CHECKSUM_PARTIAL
    sh = skb.shinfo
    sh.gso_segs = skb.cb.count
    sh.gso_type |= SKB_GSO_UDP_L4


# ---------------------------------------------------------------- GSO

def udp4_ufo_fragment(skb, features):
    sh = skb.shinfo
    if not sh.gso_type & (SKB_GSO_UDP | SKB_GSO_UDP_L4):
        return -EINVAL
    if not pskb_may_pull(skb, UDP_HLEN):
        return -EINVAL
    if sh.gso_type & SKB_GSO_UDP_L4:
        return __udp_gso_segment(skb, features)
    mss = sh.gso_size
    if skb.len <= mss:
        return -EINVAL
    # Software UFO: complete the checksum of the whole datagram, then cut it
    # into IP fragments (inet_gso_segment writes their offsets).
    buf = skb.buf
    nh = skb.network_header
    uh = skb.transport_header
    saddr, daddr = _addrs(buf, nh)
    buf[uh + 6] = buf[uh + 7] = 0
    data = skb_copy_bits(skb, 0, skb.len)
    c = ~csum_partial(data, 0, len(data), csum_tcpudp_nofold(saddr, daddr, skb.len,
                                                            IPPROTO_UDP)) & 0xFFFF
    c = c or 0xFFFF
    buf[uh + 6] = c >> 8
    buf[uh + 7] = c & 0xFF
    skb.ip_summed = CHECKSUM_UNNECESSARY
    segs = gso.skb_segment(skb, features | NETIF_F_HW_CSUM)
    if not isinstance(segs, int):
        for seg in segs:
            seg.ip_summed = CHECKSUM_UNNECESSARY
    return segs


def __udp_gso_segment(skb, features):
    """One datagram per gso_size of payload, each with its UDP header and checksum."""
    sh = skb.shinfo
    mss = sh.gso_size
    if skb.len <= UDP_HLEN + mss:
        return -EINVAL
    if skb.csum_start != skb.transport_header or skb.ip_summed != CHECKSUM_PARTIAL:
        return -EINVAL
    if net_gso_ok(features | NETIF_F_GSO_ROBUST, sh.gso_type):
        sh.gso_segs = -(-(skb.len - UDP_HLEN) // mss)
        return None
    skb.data += UDP_HLEN
    skb.len -= UDP_HLEN
    segs = gso.skb_segment(skb, features)
    if isinstance(segs, int):
        return segs
    buf = skb.buf
    saddr, daddr = _addrs(buf, skb.network_header)
    offload = features & NETIF_F_CSUM_MASK
    for seg in segs:
        sbuf = seg.buf
        uh = seg.transport_header
        ulen = seg.data + seg.len - uh
        sbuf[uh + 4] = ulen >> 8
        sbuf[uh + 5] = ulen & 0xFF
        pseudo = csum_tcpudp_nofold(saddr, daddr, ulen, IPPROTO_UDP)
        if offload:
            sbuf[uh + 6] = pseudo >> 8
            sbuf[uh + 7] = pseudo & 0xFF
            seg.ip_summed = CHECKSUM_PARTIAL
            seg.csum_start = uh
            seg.csum_offset = 6
        else:
            sbuf[uh + 6] = sbuf[uh + 7] = 0
            c = ~csum_partial(sbuf, uh, uh + ulen, pseudo) & 0xFFFF
            c = c or 0xFFFF                           # CSUM_MANGLED_0
            sbuf[uh + 6] = c >> 8
            sbuf[uh + 7] = c & 0xFF
            seg.ip_summed = CHECKSUM_NONE
    return segs


def udpv4_offload_init(net):
    return inet_add_offload(net, NetOffload(gro_receive=udp4_gro_receive,
                                            gro_complete=udp4_gro_complete,
                                            gso_segment=udp4_ufo_fragment), IPPROTO_UDP)


from ..core import gso  # noqa: E402
