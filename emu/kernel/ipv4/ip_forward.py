"""IPv4 forwarding and output fragmentation.

Linux: net/ipv4/ip_forward.c, net/ipv4/ip_output.c (ip_do_fragment);
RFC 1812 5.3.1 (TTL), RFC 1624 (incremental checksum), RFC 1191 (DF).
"""
from ..core.skbuff import (
    CHECKSUM_PARTIAL, LL_MAX_HEADER, SKB_DROP_REASON_NOT_SPECIFIED, SKB_DROP_REASON_TTL,
    alloc_skb, consume_skb, kfree_skb, skb_checksum_help, skb_cow, skb_linearize, skb_put,
    skb_reserve,
)
from ..core.gso import skb_gso_validate_network_len
from ..hdr.checksum import csum_replace2
from ..hdr.icmp import (
    ICMP_DEST_UNREACH, ICMP_EXC_TTL, ICMP_FRAG_NEEDED, ICMP_SR_FAILED, ICMP_TIME_EXCEEDED,
)
from ..hdr.ip import IP_DF, IP_MF, IP_OFFSET
from ..netfilter.core import NF_HOOK, NF_INET_FORWARD
from .icmp import icmp_send
from .ip_options import IPCB_opt, ip_forward_options, ip_options_fragment
from .ip_output import dst_output, ip_finish_output2, ip_send_check
from .route import ip_skb_dst_mtu


def ip_forward(skb):
    """dst.input of a packet for another host: check TTL, decrement, FORWARD."""
    if skb.trace is not None:
        skb.trace.hit("ip_forward")
    net = skb.dev.net
    nh = skb.network_header
    buf = skb.buf
    if skb.pkt_type != 0:       # only unicast to our MAC is forwarded
        kfree_skb(skb, "OTHERHOST")
        return 0
    if buf[nh + 8] <= 1:
        icmp_send(skb, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, 0)
        net.mib["Ip"]["InHdrErrors"] += 1
        kfree_skb(skb, SKB_DROP_REASON_TTL)
        return 0
    rt = skb.dst
    if buf[nh] != 0x45:
        opt = IPCB_opt(skb)
        if opt is not None and opt.is_strictroute and rt.rt_gw4:
            # Strict source routing permits no gateway (RFC 1812 5.2.4.1).
            icmp_send(skb, ICMP_DEST_UNREACH, ICMP_SR_FAILED, 0)
            kfree_skb(skb, SKB_DROP_REASON_NOT_SPECIFIED)
            return 0
    mtu = ip_skb_dst_mtu(skb)
    if buf[nh + 6] & (IP_DF >> 8) and ip_exceeds_mtu(skb, mtu):
        net.mib["Ip"]["FragFails"] += 1
        icmp_send(skb, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu)
        kfree_skb(skb, "PKT_TOO_BIG")
        return 0
    skb_cow(skb, LL_MAX_HEADER)
    buf = skb.buf
    nh = skb.network_header
    # ip_decrease_ttl: TTL is the high byte of the TTL/protocol word.
    old = (buf[nh + 8] << 8) | buf[nh + 9]
    buf[nh + 8] -= 1
    new = old - 0x100
    check = csum_replace2((buf[nh + 10] << 8) | buf[nh + 11], old, new)
    buf[nh + 10] = check >> 8
    buf[nh + 11] = check & 0xFF
    return NF_HOOK(NF_INET_FORWARD, net, skb, skb.dev, rt.dev, ip_forward_finish)


def ip_exceeds_mtu(skb, mtu):
    """Too big for mtu? A GSO skb is judged by its segments (Linux ip_exceeds_mtu)."""
    length = skb.len + (skb.data - skb.network_header)
    if length <= mtu:
        return False
    return not (skb.shinfo.gso_size and skb_gso_validate_network_len(skb, mtu))


def ip_forward_finish(skb):
    if skb.trace is not None:
        skb.trace.hit("ip_forward_finish")
    skb.dev.net.mib["Ip"]["ForwDatagrams"] += 1
    if skb.buf[skb.network_header] != 0x45 and IPCB_opt(skb) is not None:
        ip_forward_options(skb)
    # Back to the IP header, keeping any paged data (a GRO skb) in len.
    skb.len += skb.data - skb.network_header
    skb.data = skb.network_header
    return dst_output(skb)


def ip_fragment_or_fail(skb, mtu):
    """ip_fragment: DF set -> fail (the sender learns EMSGSIZE); else ip_do_fragment."""
    net = skb.dev.net
    nh = skb.network_header
    if skb.buf[nh + 6] & (IP_DF >> 8):
        net.mib["Ip"]["FragFails"] += 1
        icmp_send(skb, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu)
        kfree_skb(skb, "PKT_TOO_BIG")
        return -1
    return ip_do_fragment(net, skb, mtu)


def ip_do_fragment(net, skb, mtu):
    """Split skb into fragments of at most mtu bytes (8-byte aligned payloads)."""
    # Fragments carry no checksum offload: finish the L4 checksum, flatten the pages.
    if skb.ip_summed == CHECKSUM_PARTIAL or skb.data_len:
        if skb_checksum_help(skb) or skb_linearize(skb):
            net.mib["Ip"]["FragFails"] += 1
            kfree_skb(skb, SKB_DROP_REASON_NOT_SPECIFIED)
            return -1
    buf = skb.buf
    nh = skb.network_header
    ihl = (buf[nh] & 15) * 4
    hdr = bytes(buf[nh:nh + ihl])
    payload_off = nh + ihl
    end = skb.tail
    frag_field = (buf[nh + 6] << 8) | buf[nh + 7]
    base_offset = (frag_field & IP_OFFSET) * 8
    more = frag_field & IP_MF
    chunk = (mtu - ihl) & ~7
    pos = payload_off
    while pos < end:
        n = min(chunk, end - pos)
        last = pos + n >= end
        f = alloc_skb(LL_MAX_HEADER + ihl + n)
        skb_reserve(f, LL_MAX_HEADER)
        off = skb_put(f, ihl + n)
        f.buf[off:off + ihl] = hdr
        f.buf[off + ihl:off + ihl + n] = buf[pos:pos + n]
        field = ((base_offset + pos - payload_off) // 8) | (0 if last and not more else IP_MF)
        f.buf[off + 6] = field >> 8
        f.buf[off + 7] = field & 0xFF
        tot = ihl + n
        f.buf[off + 2] = tot >> 8
        f.buf[off + 3] = tot & 0xFF
        ip_send_check(f.buf, off)
        f.network_header = off
        f.dev = skb.dev
        f.dst = skb.dst
        f.protocol = skb.protocol
        f.trace = skb.trace
        if pos == payload_off and ihl > 20:
            # Later fragments carry only the options marked 'copied'.
            hdr = bytearray(hdr)
            ip_options_fragment(hdr)
        net.mib["Ip"]["FragCreates"] += 1
        ip_finish_output2(f)
        pos += n
    net.mib["Ip"]["FragOKs"] += 1
    consume_skb(skb)
    return 0
