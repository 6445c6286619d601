"""Generic Segmentation Offload: cut a large TCP/UDP skb into wire-sized ones.

Linux: net/core/gso.c (skb_gso_segment, __skb_gso_segment, skb_mac_gso_segment),
net/core/gro.c (skb_mac_gso_segment), net/core/skbuff.c (skb_segment).

A stack may hand a device one skb carrying up to 64 KiB of a flow with
shinfo.gso_size (the MSS) and gso_type set. A device that advertises the
matching feature (NETIF_F_TSO, NETIF_F_GSO_UDP_L4: veth) takes it as is; for
any other, validate_xmit_skb calls skb_gso_segment just before the driver:
skb_mac_gso_segment finds the EtherType's gso_segment (inet_gso_segment in
ipv4/ip_offload.py), which calls the protocol's (tcp4_gso_segment,
udp4_ufo_fragment) and fixes every segment's IPv4 header (total length,
incrementing ID, checksum). The protocol callbacks use skb_segment to copy
the headers in front of each gso_size piece of payload.

Returns follow Linux: a list of segments, None when the skb can go as it is
(a DODGY skb whose gso_segs was only recounted), or a negative errno.
"""
from .netdevice import SKB_GSO_UDP_L4
from .skbuff import (
    CHECKSUM_PARTIAL, NET_SKB_PAD, SkBuff, _copy_header, skb_cow_head, skb_copy_bits,
)

EINVAL = 22
EPROTONOSUPPORT = 93


def skb_gso_network_seglen(skb):
    """The IP length of each segment: IP + L4 header + gso_size (skb_gso_network_seglen)."""
    th = skb.transport_header
    thlen = 8 if skb.shinfo.gso_type & SKB_GSO_UDP_L4 else (skb.buf[th + 12] >> 4) * 4
    return th - skb.network_header + thlen + skb.shinfo.gso_size


def skb_gso_validate_network_len(skb, mtu):
    """Every segment of this GSO skb fits mtu at the IP layer."""
    return skb_gso_network_seglen(skb) <= mtu


def skb_gso_segment(skb, features):
    """Segment skb for a device with these features (transmit path)."""
    return __skb_gso_segment(skb, features, True)


def __skb_gso_segment(skb, features, tx_path):
    if tx_path and skb.ip_summed != CHECKSUM_PARTIAL:
        # The callbacks will initialize the TCP/UDP check field: own the head.
        if skb_cow_head(skb, 0) < 0:
            return -12
    skb.mac_header = skb.data
    skb.mac_len = skb.network_header - skb.data if skb.network_header >= 0 else 14
    return skb_mac_gso_segment(skb, features)


def skb_mac_gso_segment(skb, features):
    """Pull the link header, run the EtherType's gso_segment, push it back."""
    ptype = skb.dev.net.proto.get("offload_base", {}).get(skb.protocol)
    if ptype is None or ptype.gso_segment is None:
        return -EPROTONOSUPPORT
    mac_len = skb.mac_len
    skb.data += mac_len
    skb.len -= mac_len
    try:
        segs = ptype.gso_segment(skb, features)
    finally:
        d = skb.data - skb.mac_header
        skb.data -= d
        skb.len += d
    return segs


def skb_segment(skb, features):
    """Cut skb's payload (from data on) into gso_size pieces, each behind a
    copy of the headers from the MAC header to data.

    Each segment is a new linear skb whose data is at its MAC header, with
    the same header offsets, priority, hash, queue and checksum state;
    gso_size and gso_segs are 0. The callers fix the L3/L4 fields.
    """
    mss = skb.shinfo.gso_size
    if mss <= 0:
        return -EINVAL
    mac = skb.mac_header
    doffset = skb.data - mac
    total = skb.len
    payload = skb_copy_bits(skb, 0, total)
    if isinstance(payload, int):
        return payload
    header = skb.buf[mac:skb.data]
    headroom = max(NET_SKB_PAD, mac - skb.head)
    nh_off = skb.network_header - mac
    th_off = skb.transport_header - mac
    segs = []
    off = 0
    while off < total:
        n = min(mss, total - off)
        buf = bytearray(headroom + doffset + n)
        buf[headroom:headroom + doffset] = header
        buf[headroom + doffset:] = payload[off:off + n]
        seg = SkBuff(buf)
        seg.data = headroom
        seg.tail = seg.end
        seg.len = doffset + n
        _copy_header(seg, skb)
        seg.mac_header = headroom
        seg.network_header = headroom + nh_off
        seg.transport_header = headroom + th_off
        seg.csum_start = seg.transport_header
        segs.append(seg)
        off += n
    return segs
