"""IPv4 receive: header checks, routing decision, local delivery.

Linux: net/ipv4/ip_input.c; RFC 791, RFC 1122 3.2.1.
"""
import errno

from ..core.snmp import IP_ECN_FIELDS
from ..core.skbuff import (
    PACKET_HOST, PACKET_OTHERHOST, SKB_DROP_REASON_IP_CSUM, SKB_DROP_REASON_IP_INADDRERRORS,
    SKB_DROP_REASON_IP_INHDR, SKB_DROP_REASON_IP_INNOROUTES, SKB_DROP_REASON_IP_NOPROTO,
    SKB_DROP_REASON_NOT_SPECIFIED, SKB_DROP_REASON_OTHERHOST, SKB_DROP_REASON_PKT_TOO_SMALL,
    consume_skb, kfree_skb, skb_trim,
)
from ..netfilter.core import NF_INET_LOCAL_IN, NF_INET_PRE_ROUTING, nf_hook_slow
from .icmp import (
    ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, ICMP_NET_UNREACH, ICMP_PROT_UNREACH, icmp_send,
)
from .ip_fragment import ip_defrag
from .ip_options import ip_rcv_options
from .devinet import inet_lookup_ifaddr
from .raw import raw_local_deliver
from .route import RTN_BROADCAST, ip_route_input_noref


def ip_rcv(skb, dev, pt, orig_dev):
    """The ETH_P_IP handler: validate the header (RFC 1122 3.2.1), then PRE_ROUTING.

    Counted as ip_rcv_core: a header too short, of another version or IHL, or
    whose total length is below its IHL -> InHdrErrors (IP_INHDR); a bad
    checksum -> InCsumErrors and InHdrErrors (IP_CSUM); a total length past the
    end of the frame -> InTruncatedPkts only (PKT_TOO_SMALL).
    """
    if skb.trace is not None:
        skb.trace.hit("ip_rcv")
    net = dev.net
    ip = net.mib["Ip"]
    if skb.pkt_type == PACKET_OTHERHOST:
        kfree_skb(skb, SKB_DROP_REASON_OTHERHOST)
        return 1
    ip["InReceives"] += 1
    net.mib["IpExt"]["InOctets"] += skb.len
    buf = skb.buf
    off = skb.data
    if skb.len < 20:                # pskb_may_pull(iphdr) fails: inhdr_error
        return _hdr_error(skb, ip, SKB_DROP_REASON_IP_INHDR)
    ver_ihl = buf[off]
    ihl = (ver_ihl & 15) * 4
    if ver_ihl >> 4 != 4 or ihl < 20:
        return _hdr_error(skb, ip, SKB_DROP_REASON_IP_INHDR)
    # ECN codepoints are counted once the version and IHL are sane, per segment.
    net.mib["IpExt"][IP_ECN_FIELDS[buf[off + 1] & 3]] += skb.shinfo.gso_segs or 1
    if skb.len < ihl:
        return _hdr_error(skb, ip, SKB_DROP_REASON_IP_INHDR)
    # ip_fast_csum: the header as one integer mod 0xffff is 0 iff its ones'
    # complement sum is 0xffff (a header is never all zeros: version 4).
    if int.from_bytes(buf[off:off + ihl], "big") % 0xFFFF:
        net.mib["IpExt"]["InCsumErrors"] += 1
        return _hdr_error(skb, ip, SKB_DROP_REASON_IP_CSUM)
    tot_len = (buf[off + 2] << 8) | buf[off + 3]
    if skb.len < tot_len:
        net.mib["IpExt"]["InTruncatedPkts"] += 1   # only this one, as ip_rcv_core
        kfree_skb(skb, SKB_DROP_REASON_PKT_TOO_SMALL)
        return 1
    if tot_len < ihl:
        return _hdr_error(skb, ip, SKB_DROP_REASON_IP_INHDR)
    if skb.len > tot_len:
        skb_trim(skb, tot_len)      # drop Ethernet padding
    skb.network_header = off
    skb.transport_header = off + ihl
    # NF_HOOK(PRE_ROUTING, ..., ip_rcv_finish), the hooks run only when there are some.
    if skb.trace is not None:
        skb.trace.hit("NF_INET_PRE_ROUTING")
    if net.proto["nf_hooks"][NF_INET_PRE_ROUTING] and \
            not nf_hook_slow(NF_INET_PRE_ROUTING, net, skb, dev, None):
        return -1
    return ip_rcv_finish(skb)


def _hdr_error(skb, ip, reason):
    ip["InHdrErrors"] += 1
    kfree_skb(skb, reason)
    return 1


def ip_rcv_finish(skb):
    """Route the packet (dst.input) unless it already has a dst, and follow it."""
    if skb.trace is not None:
        skb.trace.hit("ip_rcv_finish")
    if skb.dst is None:
        buf = skb.buf
        nh = skb.network_header
        net = skb.dev.net
        # ip_rcv_finish_core: a connected socket's cached input route spares
        # the FIB lookup (early demux; never for a fragment).
        if net.sysctl["net.ipv4.ip_early_demux"] and not (buf[nh + 6] & 0x3F or buf[nh + 7]):
            edemux = net.proto["inet_early_demux"].get(buf[nh + 9])
            if edemux is not None:
                edemux(skb)
    if skb.dst is None:
        buf = skb.buf
        nh = skb.network_header
        daddr = int.from_bytes(buf[nh + 16:nh + 20], "big")
        saddr = int.from_bytes(buf[nh + 12:nh + 16], "big")
        err = ip_route_input_noref(skb, daddr, saddr, buf[nh + 1], skb.dev)
        if err:
            return ip_error(skb, -err)
    # Options are looked at once routed (ip_rcv_finish_core -> ip_rcv_options).
    if skb.buf[skb.network_header] != 0x45 and ip_rcv_options(skb, skb.dev):
        kfree_skb(skb, SKB_DROP_REASON_NOT_SPECIFIED)
        return 1
    dst = skb.dst
    if dst.rt_type == RTN_BROADCAST:
        ext = skb.dev.net.mib["IpExt"]
        ext["InBcastPkts"] += 1
        ext["InBcastOctets"] += skb.len
    return dst.input(skb)                   # dst_input


def ip_error(skb, err):
    """dst.input of an unroutable packet: count it; a router answers with ICMP.

    As ip_route_input_slow + ip_error: a host (no forwarding) turns every
    failed lookup into EHOSTUNREACH, so it counts InAddrErrors, never
    InNoRoutes; a router counts InNoRoutes for a missing route only.
    """
    net = skb.dev.net
    if err == errno.EINVAL:
        return ip_drop_martian(skb)
    if not net.sysctl["net.ipv4.ip_forward"]:
        net.mib["Ip"]["InAddrErrors"] += 1
        kfree_skb(skb, SKB_DROP_REASON_IP_INADDRERRORS)
        return 1
    code = {errno.EHOSTUNREACH: ICMP_HOST_UNREACH, errno.ENETUNREACH: ICMP_NET_UNREACH}.get(err)
    if code is None:
        return ip_drop_martian(skb)
    reason = SKB_DROP_REASON_NOT_SPECIFIED
    if err == errno.ENETUNREACH:
        net.mib["IpExt"]["InNoRoutes"] += 1
        reason = SKB_DROP_REASON_IP_INNOROUTES
    icmp_send(skb, ICMP_DEST_UNREACH, code, 0)
    kfree_skb(skb, reason)
    return 1


def ip_drop_martian(skb):
    """A martian source or destination: Linux drops it without an SNMP counter
    (only the route cache's in_martian_* statistics). The reason is the one
    ip_route_input_slow / fib_validate_source gives, tested in their order."""
    nh = skb.network_header
    buf = skb.buf
    saddr = int.from_bytes(buf[nh + 12:nh + 16], "big")
    daddr = int.from_bytes(buf[nh + 16:nh + 20], "big")
    if saddr == 0xFFFFFFFF or (saddr & 0xF0000000) == 0xE0000000:
        reason = "IP_INVALID_SOURCE"
    elif daddr != 0xFFFFFFFF and (saddr & 0xFF000000) == 0:
        reason = "IP_INVALID_SOURCE"
    elif daddr != 0xFFFFFFFF and (daddr & 0xFF000000) == 0:
        reason = "IP_INVALID_DEST"
    elif daddr != 0xFFFFFFFF and 0x7F000000 in (daddr & 0xFF000000, saddr & 0xFF000000):
        reason = "IP_LOCALNET"      # route_localnet=0
    elif inet_lookup_ifaddr(skb.dev.net, saddr):
        reason = "IP_LOCAL_SOURCE"  # fib_validate_source, accept_local=0
    else:
        reason = "IP_INVALID_DEST"
    kfree_skb(skb, reason)
    return 1


def dst_input(skb):
    return skb.dst.input(skb)


def ip_local_deliver(skb):
    """Deliver to this host: reassemble fragments, then LOCAL_IN."""
    if skb.trace is not None:
        skb.trace.hit("ip_local_deliver")
    nh = skb.network_header
    buf = skb.buf
    net = skb.dev.net
    if buf[nh + 6] & 0x3F or buf[nh + 7]:     # IP_MF | IP_OFFSET
        skb = ip_defrag(net, skb)
        if skb is None:
            return 0
        nh = skb.network_header
        buf = skb.buf
    # NF_HOOK(LOCAL_IN, ..., ip_local_deliver_finish), the hooks run only when
    # there are some; ip_local_deliver_finish and the common case of
    # ip_protocol_deliver_rcu (no raw socket on the protocol) written out.
    tr = skb.trace
    if tr is not None:
        tr.hit("NF_INET_LOCAL_IN")
    if net.proto["nf_hooks"][NF_INET_LOCAL_IN] and \
            not nf_hook_slow(NF_INET_LOCAL_IN, net, skb, skb.dev, None):
        return -1
    if skb.trace is not None:
        skb.trace.hit("ip_local_deliver_finish")
    nh = skb.network_header
    buf = skb.buf
    t = nh + (buf[nh] & 15) * 4
    skb.len -= t - skb.data
    skb.data = skb.transport_header = t
    protocol = buf[nh + 9]
    raw = net.proto.get("raw_hash")
    ipprot = net.proto["inet_protos"].get(protocol)
    if ipprot is None or (raw and raw.get(protocol)):
        return ip_protocol_deliver_rcu(skb, protocol)
    net.mib["Ip"]["InDelivers"] += 1
    return ipprot(skb)


def ip_local_deliver_finish(skb):
    if skb.trace is not None:
        skb.trace.hit("ip_local_deliver_finish")
    nh = skb.network_header
    ihl = (skb.buf[nh] & 15) * 4
    skb.len -= nh + ihl - skb.data
    skb.data = nh + ihl
    skb.transport_header = skb.data
    return ip_protocol_deliver_rcu(skb, skb.buf[nh + 9])


def ip_protocol_deliver_rcu(skb, protocol):
    """Raw sockets get a clone; then the registered protocol handler runs."""
    net = skb.dev.net
    raw = net.proto.get("raw_hash")
    delivered = raw_local_deliver(skb, protocol) if raw and raw.get(protocol) else False
    ipprot = net.proto["inet_protos"].get(protocol)
    if ipprot is not None:
        net.mib["Ip"]["InDelivers"] += 1
        return ipprot(skb)
    if delivered:
        net.mib["Ip"]["InDelivers"] += 1
        consume_skb(skb)
        return 0
    net.mib["Ip"]["InUnknownProtos"] += 1
    if skb.pkt_type == PACKET_HOST:
        icmp_send(skb, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH, 0)
    kfree_skb(skb, SKB_DROP_REASON_IP_NOPROTO)
    return 0

