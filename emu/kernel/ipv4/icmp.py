"""ICMP: echo, and the error messages the stack sends and receives.

Linux: net/ipv4/icmp.c; RFC 792, RFC 1122 3.2.2.
"""
from ..core.dev import KernelError
from ..core.skbuff import (
    CHECKSUM_UNNECESSARY, LL_MAX_HEADER, PACKET_HOST, SKB_DROP_REASON_ICMP_CSUM,
    SKB_DROP_REASON_PKT_TOO_SMALL, SkBuff, alloc_skb, consume_skb, kfree_skb, skb_put,
    skb_reserve,
)
from ..core.snmp import ICMP_TYPE_FIELDS, icmp_out_count
from ..hdr.checksum import csum_partial
from ..hdr.icmp import (
    ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_ECHOREPLY, ICMP_FRAG_NEEDED, ICMP_HOST_UNREACH, ICMP_NET_UNREACH,
    ICMP_PARAMETERPROB, ICMP_PORT_UNREACH, ICMP_PROT_UNREACH, ICMP_REDIRECT,
    ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED, NR_ICMP_TYPES,
)
from ..hdr.ip import IP_OFFSET, IPPROTO_ICMP, ipv4_is_lbcast, ipv4_is_multicast
from .ip_options import ip_options_build, ip_options_echo
from .ip_output import ip_build_header, ip_local_out
from .route import RTN_BROADCAST, RTN_LOCAL, inet_addr_type, ip_route_output_key, ip_rt_update_pmtu

__all__ = ["ICMP_DEST_UNREACH", "ICMP_PROT_UNREACH", "ICMP_PORT_UNREACH", "ICMP_NET_UNREACH",
           "ICMP_HOST_UNREACH", "ICMP_FRAG_NEEDED", "icmp_send", "icmp_rcv", "icmp_err"]

ICMP_ERRORS = frozenset((ICMP_DEST_UNREACH, ICMP_SOURCE_QUENCH, ICMP_REDIRECT,
                         ICMP_TIME_EXCEEDED, ICMP_PARAMETERPROB))
IPTOS_TOS_MASK = 0x1E                 # include/uapi/linux/ip.h
IPTOS_PREC_INTERNETCONTROL = 0xC0


def RT_TOS(tos):
    """include/uapi/linux/in_route.h: the TOS bits of a TOS byte."""
    return tos & IPTOS_TOS_MASK


# RFC 1812 4.3.2.3: an error quotes the IP header and at least 8 bytes;
# Linux quotes as much as fits in 576 bytes.
ICMP_ERR_MAX = 576 - 20 - 8


def icmp_push_reply(net, saddr, daddr, icmp_type, code, rest, data, tos=0, trace=None,
                    opt=None):
    """Build and send one ICMP message (icmp_push_reply / ip_push_pending_frames).

    opt: IP options echoed back (ip_options_echo); a reversed source route sends
    the message to its first hop (faddr), the final destination in the option.
    """
    first_hop = opt.faddr if opt is not None and opt.srr else daddr
    try:
        rt = ip_route_output_key(net, first_hop, saddr)
    except KernelError:
        net.mib["Icmp"]["OutErrors"] += 1
        return
    n = 8 + len(data)
    # alloc_skb, skb_reserve (room for the IP header and options) and skb_put, written out.
    off = LL_MAX_HEADER + 60
    skb = SkBuff(bytearray(off + n))
    skb.data = off
    skb.tail = off + n
    skb.len = n
    buf = skb.buf
    buf[off] = icmp_type
    buf[off + 1] = code
    buf[off + 4:off + 8] = rest
    buf[off + 8:off + n] = data
    # csum_fold(csum_partial(...)) in one read: the message as one integer mod
    # 0xffff is its ones' complement sum (a non-zero message summing to 0 is 0xffff).
    x = int.from_bytes(buf[off:off + n], "big")
    if n & 1:
        x <<= 8
    c = ~(x % 0xFFFF or (0xFFFF if x else 0)) & 0xFFFF
    buf[off + 2] = c >> 8
    buf[off + 3] = c & 0xFF
    skb.transport_header = off
    skb.dst = rt
    skb.trace = trace
    if not saddr:
        from .devinet import inet_select_addr
        saddr = rt.prefsrc or inet_select_addr(rt.dev, daddr)
    if opt is not None and opt.optlen:
        from ..core.skbuff import skb_push
        skb_push(skb, opt.optlen)
        nh = ip_build_header(skb, saddr, first_hop, IPPROTO_ICMP,
                             net.sysctl["net.ipv4.ip_default_ttl"], tos)
        buf[nh] = 0x40 | ((20 + opt.optlen) >> 2)
        ip_options_build(net, buf, nh, opt, daddr, saddr)
    else:
        ip_build_header(skb, saddr, daddr, IPPROTO_ICMP, net.sysctl["net.ipv4.ip_default_ttl"], tos)
    icmp_out_count(net, icmp_type)
    if trace is not None:
        trace.hit("icmp_push_reply")
    ip_local_out(net, None, skb)


def icmp_reply(skb, icmp_type, rest, data):
    """Answer the sender of skb (echo reply): source is the address it was sent to."""
    if skb.trace is not None:
        skb.trace.hit("icmp_reply")
    net = skb.dev.net
    nh = skb.network_header
    saddr = int.from_bytes(skb.buf[nh + 12:nh + 16], "big")
    daddr = int.from_bytes(skb.buf[nh + 16:nh + 20], "big")
    opt = None
    if skb.buf[nh] != 0x45:
        opt = ip_options_echo(net, skb)
        if opt is None:
            return          # options we cannot answer: no reply (icmp_reply)
    if inet_addr_type(net, daddr) != RTN_LOCAL:
        daddr = 0       # a broadcast echo: answer from our own address
    icmp_push_reply(net, daddr, saddr, icmp_type, 0, rest, data, skb.buf[nh + 1], skb.trace,
                    opt)


def icmp_echo(skb):
    """RFC 1122 3.2.2.6: reply with the same identifier, sequence and data."""
    if skb.trace is not None:
        skb.trace.hit("icmp_echo")
    net = skb.dev.net
    if net.sysctl["net.ipv4.icmp_echo_ignore_all"]:
        return consume_skb(skb)
    buf = skb.buf
    t = skb.transport_header
    icmp_reply(skb, ICMP_ECHOREPLY, bytes(buf[t + 4:t + 8]), bytes(buf[t + 8:skb.tail]))
    consume_skb(skb)
    return 0


def icmp_unreach(skb):
    """An error about a datagram we sent: tell the protocol that sent it."""
    net = skb.dev.net
    t = skb.transport_header
    if skb.tail - t < 8 + 20:
        consume_skb(skb)
        return 0
    inner = t + 8
    ihl = (skb.buf[inner] & 15) * 4
    proto = skb.buf[inner + 9]
    handler = net.proto["icmp_err_handlers"].get(proto)
    if handler is not None and skb.tail - inner >= ihl + 8:
        handler(skb, skb.buf[t], skb.buf[t + 1], inner, inner + ihl)
    consume_skb(skb)
    return 0


def icmp_err(skb, icmp_type, code, inner, inner_l4):
    """An error about an ICMP message we sent (a ping): learn the path MTU it reports."""
    if icmp_type == ICMP_DEST_UNREACH and code == ICMP_FRAG_NEEDED:
        buf = skb.buf
        t = skb.transport_header
        ip_rt_update_pmtu(skb.dev.net, int.from_bytes(buf[inner + 16:inner + 20], "big"),
                          (buf[t + 6] << 8) | buf[t + 7])


def icmp_inner_tuple(buf, inner, inner_l4):
    """(saddr, daddr, sport, dport) of the datagram an ICMP error quotes."""
    return (int.from_bytes(buf[inner + 12:inner + 16], "big"),
            int.from_bytes(buf[inner + 16:inner + 20], "big"),
            (buf[inner_l4] << 8) | buf[inner_l4 + 1], (buf[inner_l4 + 2] << 8) | buf[inner_l4 + 3])


def icmp_discard(skb):
    consume_skb(skb)
    return 0


# icmp_pointers[]: the handler for each type we receive
ICMP_HANDLERS = {ICMP_ECHO: icmp_echo, ICMP_DEST_UNREACH: icmp_unreach,
                 ICMP_TIME_EXCEEDED: icmp_unreach, ICMP_PARAMETERPROB: icmp_unreach,
                 ICMP_SOURCE_QUENCH: icmp_discard, ICMP_REDIRECT: icmp_discard,
                 ICMP_ECHOREPLY: icmp_discard}


def icmp_rcv(skb):
    """The IPPROTO_ICMP handler: checksum, count, dispatch by type."""
    if skb.trace is not None:
        skb.trace.hit("icmp_rcv")
    net = skb.dev.net
    m = net.mib["Icmp"]
    m["InMsgs"] += 1
    if skb.len < 8:
        m["InErrors"] += 1
        kfree_skb(skb, SKB_DROP_REASON_PKT_TOO_SMALL)
        return 0
    buf = skb.buf
    t = skb.data
    if skb.ip_summed != CHECKSUM_UNNECESSARY and csum_partial(buf, t, skb.tail) != 0xFFFF:
        m["InCsumErrors"] += 1
        m["InErrors"] += 1
        kfree_skb(skb, SKB_DROP_REASON_ICMP_CSUM)
        return 0
    icmp_type = buf[t]
    f = ICMP_TYPE_FIELDS.get(icmp_type)
    if f:
        m[f[0]] += 1
    key = "InType%d" % icmp_type              # icmpmsg_inc, written out
    mm = net.mib["IcmpMsg"]
    mm[key] = mm.get(key, 0) + 1
    if icmp_type > NR_ICMP_TYPES:
        m["InErrors"] += 1
        kfree_skb(skb, "ICMP_TYPE")
        return 0
    # RFC 1122 3.2.2.6: echo to a broadcast address may be ignored (Linux default).
    # Linux decides on the route (RTCF_BROADCAST), whatever the link-layer address.
    rt = skb.dst
    bcast = skb.pkt_type != PACKET_HOST or (rt is not None and rt.rt_type == RTN_BROADCAST)
    if bcast and icmp_type == ICMP_ECHO and \
            net.sysctl["net.ipv4.icmp_echo_ignore_broadcasts"]:
        consume_skb(skb)
        return 0
    handler = ICMP_HANDLERS.get(icmp_type, icmp_discard)
    return handler(skb)


def icmp_send(skb_in, icmp_type, code, info):
    """Send an ICMP error about skb_in to its source (RFC 1122 3.2.2 rules)."""
    net = (skb_in.dev or skb_in.dst.dev).net
    buf = skb_in.buf
    nh = skb_in.network_header
    if nh < 0 or skb_in.tail - nh < 20:
        return
    ihl = (buf[nh] & 15) * 4
    saddr = int.from_bytes(buf[nh + 12:nh + 16], "big")
    daddr = int.from_bytes(buf[nh + 16:nh + 20], "big")
    # Never about: broadcasts/multicasts, non-first fragments, ICMP errors.
    if skb_in.pkt_type != PACKET_HOST:
        return
    if ipv4_is_multicast(daddr) or ipv4_is_lbcast(daddr) or ipv4_is_multicast(saddr) \
            or saddr == 0 or inet_addr_type(net, daddr) == RTN_BROADCAST:
        return
    if ((buf[nh + 6] << 8) | buf[nh + 7]) & IP_OFFSET:
        return
    if buf[nh + 9] == IPPROTO_ICMP and skb_in.tail - nh >= ihl + 1 and \
            buf[nh + ihl] in ICMP_ERRORS:
        return
    if (1 << icmp_type) & net.sysctl["net.ipv4.icmp_ratemask"] and \
            (skb_in.dev is None or skb_in.dev.name != "lo"):
        if not _icmp_global_allow(net):
            net.mib["Icmp"]["OutRateLimitGlobal"] += 1
            return
        if not _icmp_peer_allow(net, saddr):
            net.mib["Icmp"]["OutRateLimitHost"] += 1
            return
    opt = None
    if ihl > 20:
        opt = ip_options_echo(net, skb_in)
        if opt is None:
            return
    src = daddr if inet_addr_type(net, daddr) == RTN_LOCAL else 0
    # info is un.gateway in host order: the MTU for frag-needed, pointer << 24
    # for a parameter problem (icmp_send's info, ntohl'd).
    rest = (info & 0xFFFFFFFF).to_bytes(4, "big")
    quoted = bytes(buf[nh:min(skb_in.tail, nh + ICMP_ERR_MAX - (opt.optlen if opt else 0))])
    # __icmp_send: an error keeps the original's TOS bits (RT_TOS) but goes
    # out at the Internet Control precedence (RFC 1812 4.3.2.5), ECN cleared.
    tos = RT_TOS(buf[nh + 1]) | IPTOS_PREC_INTERNETCONTROL if icmp_type in ICMP_ERRORS \
        else buf[nh + 1]
    icmp_push_reply(net, src, saddr, icmp_type, code, rest, quoted, tos, None, opt)


def _icmp_global_allow(net):
    """icmp_global_allow: a token bucket shared by all errors (icmp_msgs_per_sec)."""
    burst = net.sysctl["net.ipv4.icmp_msgs_burst"]
    st = net.proto.setdefault("icmp_global", {"credit": float(burst), "stamp": net.clock()})
    now = net.clock()
    st["credit"] = min(burst, st["credit"] + (now - st["stamp"]) * net.sysctl["net.ipv4.icmp_msgs_per_sec"])
    st["stamp"] = now
    if st["credit"] < 1.0:
        return False
    st["credit"] -= 1.0
    return True


XRLIM_BURST_FACTOR = 6


def _icmp_peer_allow(net, daddr):
    """inet_peer_xrlim_allow: per destination, a burst of 6 then one per icmp_ratelimit."""
    timeout = net.sysctl["net.ipv4.icmp_ratelimit"] / 1000.0
    peers = net.proto.setdefault("icmp_peers", {})
    now = net.clock()
    tokens, last = peers.get(daddr, (XRLIM_BURST_FACTOR * timeout, now))
    tokens = min(tokens + now - last, XRLIM_BURST_FACTOR * timeout)
    allow = tokens >= timeout
    if allow:
        tokens -= timeout
    peers[daddr] = (tokens, now)
    if len(peers) > 4096:          # inetpeer's cache is bounded too
        peers.pop(next(iter(peers)))
    return allow


def icmp_send_about(net, quoted, dev, icmp_type, code, info=0):
    """icmp_send for a datagram we no longer hold: quoted is its header and data."""
    skb = alloc_skb(LL_MAX_HEADER + len(quoted))
    skb_reserve(skb, LL_MAX_HEADER)
    off = skb_put(skb, len(quoted))
    skb.buf[off:off + len(quoted)] = quoted
    skb.network_header = off
    skb.dev = dev
    icmp_send(skb, icmp_type, code, info)
    consume_skb(skb)


def icmp_send_host_unreach(skb):
    """ARP gave up on the next hop: tell the sender (arp_error_report)."""
    icmp_send(skb, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0)


def icmp_init(net):
    net.proto.setdefault("icmp_err_handlers", {})
