"""IPv4 GRO and GSO callbacks, and their registration at boot.

Linux: net/ipv4/af_inet.c (inet_gro_receive, inet_gro_complete,
inet_gso_segment, ipv4_offload_init), net/ipv4/protocol.c (inet_add_offload),
include/net/gro.h (inet_gro_flush), net/ethernet/eth.c (eth_offload_init).

inet_gro_receive checks that a packet can be merged at all (a plain
20-byte header, not a fragment, valid header checksum, no padding after it),
marks held packets with other addresses or protocol as other flows, and
passes the packet to the protocol's gro_receive (tcp4_gro_receive,
udp4_gro_receive). inet_gro_complete rewrites the merged packet's total
length and header checksum. inet_gso_segment runs the protocol's segmenter
and gives every segment its IPv4 header: total length, ID (incrementing
unless the flow keeps a fixed one), fragment offset for UFO, checksum.
"""
import struct

from ..core.gro import NetOffload, PacketOffload, dev_add_offload
from ..core.skbuff import pskb_may_pull
from ..ethernet.eth import ETH_P_TEB, eth_gro_complete, eth_gro_receive
from ..hdr.checksum import csum_fold, csum_partial, csum_replace2
from ..hdr.if_ether import ETH_P_IP
from ..hdr.ip import IP_DF, IP_MF, IP_OFFSET, IPPROTO_TCP, IPPROTO_UDP

EINVAL = 22
EPROTONOSUPPORT = 93
SKB_GSO_TCP_FIXEDID = 1 << 3
SKB_GSO_UDP = 1 << 16
SKB_GSO_PARTIAL = 1 << 12

# ver_ihl tos tot_len id frag_off ttl protocol check saddr daddr (addresses as ints)
_iph = struct.Struct("!BBHHHBBHII")
_iph_flow = struct.Struct("!B2x8s")        # protocol, saddr+daddr (from offset 9)
_iph_flush = struct.Struct("!xBxxHHB")     # tos, id, frag_off, ttl


def inet_add_offload(net, prot, protocol):
    """Register an IP protocol's GRO/GSO callbacks (inet_offloads[protocol])."""
    offs = net.proto.setdefault("inet_offloads", [None] * 256)
    if offs[protocol] is not None:
        return -17                                   # -EEXIST
    offs[protocol] = prot
    return 0


def inet_del_offload(net, prot, protocol):
    offs = net.proto.get("inet_offloads")
    if offs is not None and offs[protocol] is prot:
        offs[protocol] = None


def inet_gro_receive(head, skb):
    """ETH_P_IP gro_receive: returns the held skb to flush now, or None."""
    cb = skb.cb
    off = cb.data_offset
    buf = skb.buf
    nh = skb.data + off
    pp = None
    flush = 1
    if skb.tail - nh >= 20:
        vihl, _, tot_len, _, frag_off, _, proto, _, _, _ = _iph.unpack_from(buf, nh)
        ops = skb.dev.net.proto["inet_offloads"][proto]
        # A plain header only, never a fragment, and a valid header checksum
        # (ip_fast_csum: the 20 bytes as one number are 0 modulo 0xffff).
        if ops is not None and ops.gro_receive is not None and vihl == 0x45 and \
                not frag_off & (IP_MF | IP_OFFSET) and \
                not int.from_bytes(buf[nh:nh + 20], "big") % 0xFFFF:
            cb.proto = proto
            # tot_len must be all the packet (no padding) and only DF may be set.
            flush = ((tot_len ^ (skb.len - off)) | (frag_off & ~IP_DF)) & 0xFFFF
            if head:
                flow = buf[nh + 9:nh + 20]                   # protocol, (check), addresses
                flow = flow[0:1] + flow[3:]
                for p in head:
                    pcb = p.cb
                    if not pcb.same_flow:
                        continue
                    q = p.data + off
                    pb = p.buf
                    if pb[q + 9:q + 10] + pb[q + 12:q + 20] != flow:
                        pcb.same_flow = 0
            cb.flush |= flush
            cb.network_offset = off
            cb.data_offset = off + 20                    # skb_gro_pull
            skb.transport_header = skb.data + off + 20
            pp = ops.gro_receive(head, skb)
    cb.flush |= flush                                    # skb_gro_flush_final
    return pp


def inet_gro_flush(buf, nh, buf2, nh2, pcb):
    """gro_receive_network_flush for IPv4: non-zero if skb may not join p's packet.

    TTL, TOS and DF must match; the IP ID must follow p's by the number of
    segments p already holds, or stay fixed for an atomic (DF) flow.
    """
    tos, ident, frag_off, ttl = _iph_flush.unpack_from(buf, nh)
    tos2, ident2, frag_off2, ttl2 = _iph_flush.unpack_from(buf2, nh2)
    df = frag_off & IP_DF
    if (ttl ^ ttl2) | (tos ^ tos2) | (df ^ (frag_off2 & IP_DF)):
        return 1
    ipid_offset = (ident - ident2) & 0xFFFF
    count = pcb.count & 0xFFFF
    if count == 1 and df and not ipid_offset:
        pcb.ip_fixedid |= 1
    return ipid_offset ^ (count * (0 if pcb.ip_fixedid & 1 else 1))


def inet_gro_complete(skb, nhoff):
    """Fix the merged packet's total length (and header checksum), then the L4's."""
    buf = skb.buf
    nh = skb.data + nhoff
    old = (buf[nh + 2] << 8) | buf[nh + 3]
    new = skb.len - nhoff
    buf[nh + 2] = new >> 8
    buf[nh + 3] = new & 0xFF
    check = csum_replace2((buf[nh + 10] << 8) | buf[nh + 11], old, new)
    buf[nh + 10] = check >> 8
    buf[nh + 11] = check & 0xFF
    ops = skb.dev.net.proto["inet_offloads"][buf[nh + 9]]
    if ops is None or ops.gro_complete is None:
        return -2                                    # -ENOSYS
    return ops.gro_complete(skb, nhoff + 20)


def ip_send_check(buf, off):
    ihl = (buf[off] & 15) * 4
    buf[off + 10] = buf[off + 11] = 0
    c = csum_fold(csum_partial(buf, off, off + ihl))
    buf[off + 10] = c >> 8
    buf[off + 11] = c & 0xFF


def inet_gso_segment(skb, features):
    """ETH_P_IP gso_segment: the protocol cuts, this fixes each segment's IPv4 header."""
    nh = skb.data
    skb.network_header = nh
    nhoff = nh - skb.mac_header
    if not pskb_may_pull(skb, 20):
        return -EINVAL
    buf = skb.buf
    nh = skb.data                                    # (may have moved)
    ihl = (buf[nh] & 15) * 4
    if ihl < 20 or not pskb_may_pull(skb, ihl):
        return -EINVAL
    buf = skb.buf
    nh = skb.data
    ident = (buf[nh + 4] << 8) | buf[nh + 5]
    proto = buf[nh + 9]
    skb.data += ihl
    skb.len -= ihl
    skb.transport_header = skb.data
    sh = skb.shinfo
    fixedid = sh.gso_type & SKB_GSO_TCP_FIXEDID
    udpfrag = sh.gso_type & SKB_GSO_UDP
    ops = skb.dev.net.proto["inet_offloads"][proto]
    if ops is None or ops.gso_segment is None:
        return -EPROTONOSUPPORT
    segs = ops.gso_segment(skb, features)
    if segs is None:
        skb.network_header = skb.mac_header + nhoff
        return None
    if isinstance(segs, int):
        return segs
    offset = 0
    last = len(segs) - 1
    for i, seg in enumerate(segs):
        sbuf = seg.buf
        iph = seg.mac_header + nhoff
        tot_len = seg.len - nhoff
        if udpfrag:
            fo = offset >> 3
            if i < last:
                fo |= IP_MF
            sbuf[iph + 6] = fo >> 8
            sbuf[iph + 7] = fo & 0xFF
            offset += tot_len - ihl
        elif not fixedid:
            sbuf[iph + 4] = (ident >> 8) & 0xFF
            sbuf[iph + 5] = ident & 0xFF
            ident = (ident + 1) & 0xFFFF
        sbuf[iph + 2] = tot_len >> 8
        sbuf[iph + 3] = tot_len & 0xFF
        ip_send_check(sbuf, iph)
        seg.network_header = iph
        seg.mac_len = nhoff
    return segs


def ipv4_offload_init(net):
    """Boot: the IPv4, TCP and UDP offloads (fs_initcall(ipv4_offload_init))."""
    from .tcp_offload import tcpv4_offload_init
    from .udp_offload import udpv4_offload_init
    net.proto.setdefault("inet_offloads", [None] * 256)
    tcpv4_offload_init(net)
    udpv4_offload_init(net)
    dev_add_offload(net, PacketOffload(ETH_P_IP, gro_receive=inet_gro_receive,
                                       gro_complete=inet_gro_complete,
                                       gso_segment=inet_gso_segment))
    # eth_offload_init: inner Ethernet (ETH_P_TEB) for tunnels.
    dev_add_offload(net, PacketOffload(ETH_P_TEB, gro_receive=eth_gro_receive,
                                       gro_complete=eth_gro_complete))


__all__ = ["NetOffload", "inet_add_offload", "inet_gro_receive", "inet_gro_complete",
           "inet_gso_segment", "inet_gro_flush", "ipv4_offload_init", "IPPROTO_TCP",
           "IPPROTO_UDP"]
