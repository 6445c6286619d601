"""TCP over IPv4: GRO (merging segments) and GSO (cutting them again).

Linux: net/ipv4/tcp_offload.c (tcp4_gro_receive, tcp_gro_receive,
tcp_gro_lookup, tcp4_gro_complete, tcp_gro_complete, tcp4_gso_segment,
tcp_gso_segment), include/net/gro.h (skb_gro_checksum_validate).

GRO merges a segment into the held packet of its flow (same addresses and
ports, found by tcp_gro_lookup) only when nothing but the payload moves on:
same flag word except CWR/FIN/PSH (and CWR itself flushes), same ack, same
options, same TTL/TOS/DF and an IP ID that follows (inet_gro_flush), no more
payload than the first segment's (the MSS, held in gso_size), and a sequence
number exactly where the held payload ends. URG, PSH, RST, SYN or FIN, or a
short segment, end the packet (it is flushed with that segment merged if it
could be). The checksum of each segment is verified first unless the NIC
(or the wire header) already did.

GSO: each segment gets a copy of the headers and mss bytes of payload; the
sequence number advances by mss, FIN and PSH stay only on the last segment,
CWR only on the first; the checksum is left to the device (CHECKSUM_PARTIAL)
when it offloads checksums, else computed here.
"""
import struct

from ..core.gro import NetOffload, skb_gro_receive
from ..core.netdevice import (
    NETIF_F_CSUM_MASK, NETIF_F_GSO_ROBUST, SKB_GSO_TCP_ECN, SKB_GSO_TCP_FIXEDID,
    SKB_GSO_TCPV4, net_gso_ok,
)
from ..core.skbuff import CHECKSUM_NONE, CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, pskb_may_pull
from ..hdr.checksum import csum_partial, csum_tcpudp_nofold
from ..hdr.ip import IPPROTO_TCP
from .ip_offload import inet_add_offload, inet_gro_flush

EINVAL = 22

# tcp_flag_word (the big-endian 32-bit word at offset 12 of the TCP header)
TCP_FLAG_CWR = 0x00800000
TCP_FLAG_ECE = 0x00400000
TCP_FLAG_URG = 0x00200000
TCP_FLAG_ACK = 0x00100000
TCP_FLAG_PSH = 0x00080000
TCP_FLAG_RST = 0x00040000
TCP_FLAG_SYN = 0x00020000
TCP_FLAG_FIN = 0x00010000

_u32 = struct.Struct("!I")
# source+dest (as one u32), seq, ack_seq, flag word
_th = struct.Struct("!IIII")


def tcp4_gro_receive(head, skb):
    cb = skb.cb
    buf = skb.buf
    if not cb.flush and skb.ip_summed != CHECKSUM_UNNECESSARY and \
            skb.ip_summed != CHECKSUM_PARTIAL:
        # skb_gro_checksum_validate with inet_gro_compute_pseudo.
        t = skb.data + cb.data_offset
        end = skb.data + skb.len
        nh = skb.data + cb.network_offset
        pseudo = csum_tcpudp_nofold(int.from_bytes(buf[nh + 12:nh + 16], "big"),
                                    int.from_bytes(buf[nh + 16:nh + 20], "big"),
                                    end - t, IPPROTO_TCP)
        if csum_partial(buf, t, end, pseudo) != 0xFFFF:
            cb.flush = 1
            return None
        skb.ip_summed = CHECKSUM_UNNECESSARY        # skb_gro_incr_csum_unnecessary
    # tcp_gro_pull_header
    off = cb.data_offset
    t = skb.data + off
    if skb.tail - t < 20:
        cb.flush = 1
        return None
    thlen = (buf[t + 12] >> 4) * 4
    if thlen < 20 or skb.tail - t < thlen:
        cb.flush = 1
        return None
    cb.data_offset = off + thlen
    return tcp_gro_receive(head, skb, t, thlen)


def tcp_gro_lookup(head, ports):
    """The held packet with these ports (among those still same_flow)."""
    for p in reversed(head):                       # youngest first, as Linux's list
        pcb = p.cb
        if not pcb.same_flow:
            continue
        if _u32.unpack_from(p.buf, p.transport_header)[0] != ports:
            pcb.same_flow = 0
            continue
        return p
    return None


def tcp_gro_receive(head, skb, t, thlen):
    cb = skb.cb
    buf = skb.buf
    length = skb.len - cb.data_offset                   # payload length
    ports, seq, ack, flags = _th.unpack_from(buf, t)
    mss = 1
    flush = 1
    pp = None
    p = tcp_gro_lookup(head, ports)
    if p is not None:
        pbuf = p.buf
        t2 = p.transport_header
        _, seq2, ack2, flags2 = _th.unpack_from(pbuf, t2)
        flush = flags & TCP_FLAG_CWR
        flush |= (flags ^ flags2) & ~(TCP_FLAG_CWR | TCP_FLAG_FIN | TCP_FLAG_PSH)
        flush |= ack ^ ack2
        if thlen > 20 and buf[t + 20:t + thlen] != pbuf[t2 + 20:t2 + thlen]:
            flush |= 1                                  # options differ
        pcb = p.cb
        flush |= inet_gro_flush(buf, skb.data + cb.network_offset,
                                pbuf, p.data + pcb.network_offset, pcb)
        psh = p.shinfo
        mss = psh.gso_size
        sh = skb.shinfo
        if sh.gso_size:
            flush |= mss != sh.gso_size
        else:
            flush |= (length - 1) >= mss or length == 0
        flush |= ((seq2 + (p.len - pcb.data_offset)) ^ seq) & 0xFFFFFFFF
        if flush or skb_gro_receive(p, skb):
            mss = 1
        else:
            # The merged packet carries FIN/PSH if this segment did.
            w = flags2 | (flags & (TCP_FLAG_FIN | TCP_FLAG_PSH))
            if w != flags2:
                _u32.pack_into(pbuf, t2 + 12, w)
    # out_check_final: a segment shorter than mss, or one with these flags,
    # ends the packet.
    sh = skb.shinfo
    if sh.gso_size:
        flush = length != cb.count * sh.gso_size
    else:
        flush = length < mss
    flush |= bool(flags & (TCP_FLAG_URG | TCP_FLAG_PSH | TCP_FLAG_RST |
                           TCP_FLAG_SYN | TCP_FLAG_FIN))
    if p is not None and (not cb.same_flow or flush):
        pp = p
    cb.flush |= flush
    return pp


def tcp4_gro_complete(skb, thoff):
    """The merged packet: pseudo-header checksum for its length, GSO state set."""
    cb = skb.cb
    buf = skb.buf
    nh = skb.data + cb.network_offset
    th = skb.data + thoff
    pseudo = csum_tcpudp_nofold(int.from_bytes(buf[nh + 12:nh + 16], "big"),
                                int.from_bytes(buf[nh + 16:nh + 20], "big"),
                                skb.len - thoff, IPPROTO_TCP)
    buf[th + 16] = pseudo >> 8                        # th->check = ~tcp_v4_check(...)
    buf[th + 17] = pseudo & 0xFF
    sh = skb.shinfo
    sh.gso_type |= SKB_GSO_TCPV4 | (SKB_GSO_TCP_FIXEDID if cb.ip_fixedid else 0)
    tcp_gro_complete(skb, th)
    return 0


def tcp_gro_complete(skb, th):
    skb.transport_header = th
    skb.csum_start = th
    skb.csum_offset = 16
    skb.ip_summed = CHECKSUM_PARTIAL
    sh = skb.shinfo
    sh.gso_segs = skb.cb.count
    if skb.buf[th + 13] & 0x80:                       # CWR
        sh.gso_type |= SKB_GSO_TCP_ECN


# ---------------------------------------------------------------- GSO

def tcp4_gso_segment(skb, features):
    if not skb.shinfo.gso_type & SKB_GSO_TCPV4:
        return -EINVAL
    if not pskb_may_pull(skb, 20):
        return -EINVAL
    if skb.ip_summed != CHECKSUM_PARTIAL:
        # Set up the pseudo-header checksum (__tcp_v4_send_check).
        buf = skb.buf
        nh = skb.network_header
        t = skb.transport_header
        pseudo = csum_tcpudp_nofold(int.from_bytes(buf[nh + 12:nh + 16], "big"),
                                    int.from_bytes(buf[nh + 16:nh + 20], "big"),
                                    skb.len, IPPROTO_TCP)
        buf[t + 16] = pseudo >> 8
        buf[t + 17] = pseudo & 0xFF
        skb.ip_summed = CHECKSUM_PARTIAL
        skb.csum_start = t
        skb.csum_offset = 16
    return tcp_gso_segment(skb, features)


def tcp_gso_segment(skb, features):
    buf = skb.buf
    t = skb.transport_header
    thlen = (buf[t + 12] >> 4) * 4
    if thlen < 20:
        return -EINVAL
    if skb.csum_start != skb.transport_header:
        return -EINVAL
    if not pskb_may_pull(skb, thlen):
        return -EINVAL
    skb.data += thlen
    skb.len -= thlen
    sh = skb.shinfo
    mss = sh.gso_size
    if skb.len <= mss:
        return -EINVAL
    if net_gso_ok(features | NETIF_F_GSO_ROBUST, sh.gso_type):
        # From an untrusted source but the device can take it: recount only.
        sh.gso_segs = -(-skb.len // mss)
        return None
    segs = gso.skb_segment(skb, features)
    if isinstance(segs, int):
        return segs
    buf = skb.buf
    nh = skb.network_header
    saddr = int.from_bytes(buf[nh + 12:nh + 16], "big")
    daddr = int.from_bytes(buf[nh + 16:nh + 20], "big")
    seq = int.from_bytes(buf[t + 4:t + 8], "big")
    offload = features & NETIF_F_CSUM_MASK
    last = len(segs) - 1
    for i, seg in enumerate(segs):
        sbuf = seg.buf
        th = seg.transport_header
        sbuf[th + 4:th + 8] = seq.to_bytes(4, "big")
        seq = (seq + mss) & 0xFFFFFFFF
        if i < last:
            sbuf[th + 13] &= ~0x09 & 0xFF              # fin = psh = 0
        if i:
            sbuf[th + 13] &= ~0x80 & 0xFF              # cwr only on the first
        l4len = seg.data + seg.len - th
        pseudo = csum_tcpudp_nofold(saddr, daddr, l4len, IPPROTO_TCP)
        if offload:
            # gso_reset_checksum: the device finishes it.
            sbuf[th + 16] = pseudo >> 8
            sbuf[th + 17] = pseudo & 0xFF
            seg.ip_summed = CHECKSUM_PARTIAL
            seg.csum_start = th
            seg.csum_offset = 16
        else:
            # gso_make_checksum: the whole checksum, here.
            sbuf[th + 16] = sbuf[th + 17] = 0
            c = ~csum_partial(sbuf, th, th + l4len, pseudo) & 0xFFFF
            sbuf[th + 16] = c >> 8
            sbuf[th + 17] = c & 0xFF
            seg.ip_summed = CHECKSUM_NONE
    return segs


def tcpv4_offload_init(net):
    return inet_add_offload(net, NetOffload(gro_receive=tcp4_gro_receive,
                                            gro_complete=tcp4_gro_complete,
                                            gso_segment=tcp4_gso_segment), IPPROTO_TCP)


from ..core import gso  # noqa: E402
