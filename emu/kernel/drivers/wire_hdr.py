"""An skb's offload state <-> the per-frame wire header (virtio_net_hdr style).

Linux: include/linux/virtio_net.h (virtio_net_hdr_from_skb, virtio_net_hdr_to_skb)

Both wire drivers (veth, wirenic) carry with each frame what virtio_net_hdr
carries: the GSO type and size of a large frame, and the checksum state
(NEEDS_CSUM: CHECKSUM_PARTIAL, the L4 checksum is not computed; DATA_VALID:
CHECKSUM_UNNECESSARY, it was verified). The receiver turns them back into
skb state; the frame is untrusted, so anything inconsistent is refused
(the caller counts the drop).

Emulation note: emu_wire_hdr has no csum_start/csum_offset fields; the
receiver derives them from the IPv4 header (the L4 header is the checksum
start; TCP's check is at 16, UDP's at 6).
"""
from ..core.netdevice import (
    SKB_GSO_DODGY, SKB_GSO_TCP_ECN, SKB_GSO_TCPV4, SKB_GSO_UDP, SKB_GSO_UDP_L4,
)
from ..core.skbuff import CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY
from ..hdr.if_ether import ETH_HLEN, ETH_P_IP
from ..hdr.virtio_net import (
    VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_ECN,
    VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_UDP, VIRTIO_NET_HDR_GSO_UDP_L4,
)

_IPPROTO_TCP = 6
_IPPROTO_UDP = 17


def virtio_net_hdr_from_skb(skb):
    """(flags, gso_type, gso_size) for the wire header of skb."""
    sh = skb.shinfo
    gso_type = 0
    gso_size = sh.gso_size
    if gso_size:
        t = sh.gso_type
        if t & SKB_GSO_TCPV4:
            gso_type = VIRTIO_NET_HDR_GSO_TCPV4
        elif t & SKB_GSO_UDP_L4:
            gso_type = VIRTIO_NET_HDR_GSO_UDP_L4
        elif t & SKB_GSO_UDP:
            gso_type = VIRTIO_NET_HDR_GSO_UDP
        else:
            return None            # a GSO type the wire cannot carry
        if t & SKB_GSO_TCP_ECN:
            gso_type |= VIRTIO_NET_HDR_GSO_ECN
    s = skb.ip_summed
    if s == CHECKSUM_PARTIAL:
        flags = VIRTIO_NET_HDR_F_NEEDS_CSUM
    elif s == CHECKSUM_UNNECESSARY:
        flags = VIRTIO_NET_HDR_F_DATA_VALID
    else:
        flags = 0
    return flags, gso_type, gso_size


def virtio_net_hdr_to_skb(skb, flags, gso_type, gso_size):
    """Apply a received wire header to skb (data at the MAC header); False if invalid."""
    if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM or gso_type:
        # Both need the IPv4/L4 layout: find it (the frame is untrusted).
        buf = skb.buf
        m = skb.data
        if skb.len < ETH_HLEN + 20 or ((buf[m + 12] << 8) | buf[m + 13]) != ETH_P_IP:
            return False
        nh = m + ETH_HLEN
        vihl = buf[nh]
        ihl = (vihl & 15) * 4
        if vihl >> 4 != 4 or ihl < 20 or skb.len < ETH_HLEN + ihl + 8:
            return False
        proto = buf[nh + 9]
        th = nh + ihl
        if proto == _IPPROTO_TCP:
            csum_offset = 16
            if skb.len < ETH_HLEN + ihl + 20:
                return False
            l4len = (buf[th + 12] >> 4) * 4
            if l4len < 20:
                return False
        elif proto == _IPPROTO_UDP:
            csum_offset = 6
            l4len = 8
        else:
            return False
        if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM:
            skb.ip_summed = CHECKSUM_PARTIAL
            skb.csum_start = th
            skb.csum_offset = csum_offset
        if gso_type:
            base = gso_type & ~VIRTIO_NET_HDR_GSO_ECN
            if base == VIRTIO_NET_HDR_GSO_TCPV4 and proto == _IPPROTO_TCP:
                t = SKB_GSO_TCPV4
            elif base == VIRTIO_NET_HDR_GSO_UDP_L4 and proto == _IPPROTO_UDP:
                t = SKB_GSO_UDP_L4
            elif base == VIRTIO_NET_HDR_GSO_UDP and proto == _IPPROTO_UDP:
                t = SKB_GSO_UDP
            else:
                return False
            if not gso_size:
                return False
            if gso_type & VIRTIO_NET_HDR_GSO_ECN:
                t |= SKB_GSO_TCP_ECN
            sh = skb.shinfo
            sh.gso_type = t | SKB_GSO_DODGY      # from an untrusted source
            sh.gso_size = gso_size
            payload = skb.len - ETH_HLEN - ihl - l4len
            sh.gso_segs = max(1, -(-payload // gso_size))
    if flags & VIRTIO_NET_HDR_F_DATA_VALID and not flags & VIRTIO_NET_HDR_F_NEEDS_CSUM:
        skb.ip_summed = CHECKSUM_UNNECESSARY
    return True
