"""IPv4 send: build the header, LOCAL_OUT, POST_ROUTING, neighbour output.

Linux: net/ipv4/ip_output.c; RFC 791.
"""
import functools

from ..core.gso import skb_gso_validate_network_len
from ..core.dev import dev_queue_xmit
from ..core.neighbour import NUD_CONNECTED, NUD_NAMES, neigh_create, neigh_output
from ..core.skbuff import (
    LL_MAX_HEADER, SKB_DROP_REASON_NEIGH_FAILED, SkBuff, alloc_skb, consume_skb, kfree_skb, skb_push,
    skb_put, skb_reserve,
)
from ..core.sock import skb_add_data_nocache
from ..hdr.if_ether import ETH_P_IP
from ..hdr.ip import IP_DF, IPPROTO_TCP, iphdr
from ..netfilter.core import NF_HOOK, NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING, nf_hook_slow
from .route import IP_PMTUDISC_PROBE, __ip_select_ident, ip_skb_dst_mtu


def ip_select_ident_segs(net, sk, saddr, daddr, protocol, df, segs=1):
    """The IP ID of a new datagram (include/net/ip.h ip_select_ident_segs).

    A connected socket numbers its own datagrams (inet_id), segs IDs per GSO
    skb; a DF datagram of anyone else gets 0 (it is never fragmented, so the
    ID identifies nothing, RFC 6864 4.1); the rest take IDs from the hashed
    per-destination counters (__ip_select_ident).
    """
    if sk is not None and sk.inet_daddr:
        if sk.sk_protocol == IPPROTO_TCP:
            val = sk.inet_id                     # read, then add (TCP holds the lock)
            sk.inet_id = (val + segs) & 0xFFFFFFFF
        else:
            val = sk.inet_id = (sk.inet_id + segs) & 0xFFFFFFFF     # atomic_add_return
        return val & 0xFFFF
    if df:
        return 0
    return __ip_select_ident(net, saddr, daddr, protocol, segs)


def ip_select_ident(net, sk, saddr, daddr, protocol, df):
    return ip_select_ident_segs(net, sk, saddr, daddr, protocol, df, 1)


def ip_send_check(buf, off):
    """Compute the header checksum in place (ip_send_check, ip_fast_csum).

    The header read as one integer, modulo 0xffff, is its ones' complement sum
    (hdr/checksum.py); a header is never all zeros (version 4), so a remainder
    of 0 is the sum 0xffff, whose checksum is 0.
    """
    ihl = (buf[off] & 15) * 4
    buf[off + 10] = buf[off + 11] = 0
    c = ~(int.from_bytes(buf[off:off + ihl], "big") % 0xFFFF or 0xFFFF) & 0xFFFF
    buf[off + 10] = c >> 8
    buf[off + 11] = c & 0xFF


# Header templates: the 20 bytes of an IPv4 header that do not change between
# datagrams of one flow (version, TOS, DF, TTL, protocol, addresses), built
# once; a send copies one and patches length and ID (the checksum follows in
# __ip_local_out). Emulation note: Linux fills the fields one by one in
# __ip_make_skb / __ip_queue_xmit, which costs C nothing; here a struct pack
# per packet is the cost, so flows share prebuilt headers. A pure function of
# its arguments, memoised (bounded, no state a node could see).
@functools.lru_cache(maxsize=4096)
def ip_hdr_template(saddr, daddr, protocol, ttl, tos, df):
    """The prebuilt header of a flow (len, ID and checksum zero)."""
    return iphdr.pack(0x45, tos, 0, 0, IP_DF if df else 0, ttl, protocol, 0,
                      saddr.to_bytes(4, "big"), daddr.to_bytes(4, "big"))


def ip_build_header(skb, saddr, daddr, protocol, ttl, tos=0, df=False, ident=None, sk=None,
                    segs=1):
    """Push a 20-byte IPv4 header in front of skb.data (the header of ip_make_skb);
    sk is the socket whose datagram it is (None for the kernel's own: RSTs,
    SYN-ACKs, ICMP), segs the segments of a GSO skb (each gets its own ID)."""
    off = skb.data - 20                       # skb_push, written out
    if off < skb.head:
        skb_push(skb, 20)                     # skb_under_panic
    skb.data = skb.network_header = off
    skb.len += 20
    if ident is None:
        if skb.dst is None:
            ident = 0
        elif df and (sk is None or not sk.inet_daddr):
            ident = 0                         # ip_select_ident_segs: DF, not a connected socket
        else:
            ident = ip_select_ident_segs(skb.dst.dev.net, sk, saddr, daddr, protocol, df, segs)
    tpl = ip_hdr_template(saddr, daddr, protocol, ttl, tos, df)
    buf = skb.buf
    buf[off:off + 20] = tpl
    n = skb.len
    buf[off + 2] = n >> 8
    buf[off + 3] = n & 0xFF
    buf[off + 4] = ident >> 8
    buf[off + 5] = ident & 0xFF
    skb.protocol = ETH_P_IP
    return off


def ip_make_skb(sk, rt, data, saddr, daddr, protocol, transhdrlen, df):
    """Build a whole datagram for an uncorked send (UDP): __ip_append_data puts
    the data in an skb behind transhdrlen bytes for the transport header, then
    __ip_make_skb puts the IP header in front. The caller fills the transport
    header (udp_send_skb)."""
    net = sk.net
    tracer = net.tracer
    if tracer is not None:
        tracer.send_hit("ip_make_skb")
        skb = __ip_append_data(sk, rt, data, transhdrlen)
        return __ip_make_skb(sk, skb, saddr, daddr, protocol, df)
    # __ip_append_data and __ip_make_skb written out (no trace to record):
    # the same skb, built with one allocation and one copy of the data.
    hdr = LL_MAX_HEADER
    t = hdr + 20
    d = t + transhdrlen
    end = d + len(data)
    buf = bytearray(end)
    buf[d:end] = data
    skb = SkBuff(buf)
    skb.data = skb.network_header = hdr
    skb.transport_header = t
    skb.tail = end
    skb.len = end - hdr
    skb.dst = rt
    skb.priority = sk.sk_priority
    skb.mark = sk.sk_mark
    ttl = sk.uc_ttl if sk.uc_ttl >= 0 else net.sysctl["net.ipv4.ip_default_ttl"]
    if sk.inet_daddr and sk.sk_protocol != IPPROTO_TCP:
        ident = sk.inet_id = (sk.inet_id + 1) & 0xFFFFFFFF   # ip_select_ident_segs
    elif df and not sk.inet_daddr:
        ident = 0
    else:
        ident = ip_select_ident_segs(rt.dev.net, sk, saddr, daddr, protocol, df, 1)
    buf[hdr:t] = ip_hdr_template(saddr, daddr, protocol, ttl, sk.tos, df)
    n = end - hdr
    buf[hdr + 2] = n >> 8
    buf[hdr + 3] = n & 0xFF
    buf[hdr + 4] = (ident >> 8) & 0xFF
    buf[hdr + 5] = ident & 0xFF
    skb.protocol = ETH_P_IP
    if sk.pmtudisc >= IP_PMTUDISC_PROBE:
        skb.sk = sk               # ip_skb_dst_mtu: the device's MTU, not a learned one
    return skb


def __ip_append_data(sk, rt, data, transhdrlen):
    """Allocate the skb (headroom for the IP and link headers), reserve the
    transport header and copy the user data in (getfrag: skb_add_data_nocache).

    Emulation note: Linux appends to a queue of MTU-sized skbs (corking,
    MSG_MORE, fragments built here); emu builds one linear skb per datagram and
    fragments it later, in ip_finish_output, if it does not fit the path.
    """
    tracer = sk.net.tracer
    if tracer is not None:
        tracer.send_hit("__ip_append_data")
    skb = alloc_skb(LL_MAX_HEADER + 20 + transhdrlen + len(data))
    skb_reserve(skb, LL_MAX_HEADER + 20)
    skb.transport_header = skb_put(skb, transhdrlen)
    skb_add_data_nocache(sk, skb, data)
    skb.dst = rt
    return skb


def __ip_make_skb(sk, skb, saddr, daddr, protocol, df):
    """Put the IP header in front of the datagram __ip_append_data built
    (TTL from the socket or the sysctl, TOS, DF, ID) and set the skb's
    priority and mark from the socket."""
    tracer = sk.net.tracer
    if tracer is not None:
        tracer.send_hit("__ip_make_skb")
    # Not charged to the socket; with PROBE it is still the skb's (ip_skb_dst_mtu).
    skb.sk = sk if sk.pmtudisc >= IP_PMTUDISC_PROBE else None
    skb.priority = sk.sk_priority
    skb.mark = sk.sk_mark
    ttl = sk.uc_ttl if sk.uc_ttl >= 0 else sk.net.sysctl["net.ipv4.ip_default_ttl"]
    ip_build_header(skb, saddr, daddr, protocol, ttl, sk.tos, df, sk=sk)
    return skb


def __ip_local_out(net, skb):
    """Finish the header (total length, checksum) and run LOCAL_OUT."""
    if skb.trace is not None:
        skb.trace.hit("__ip_local_out")
    off = skb.network_header
    buf = skb.buf
    tot = skb.tail - off
    buf[off + 2] = tot >> 8
    buf[off + 3] = tot & 0xFF
    ip_send_check(buf, off)
    net.mib["Ip"]["OutRequests"] += 1
    return NF_HOOK(NF_INET_LOCAL_OUT, net, skb, None, skb.dst.dev, dst_output)


def ip_local_out(net, sk, skb):
    """Send a locally generated datagram whose header is complete but for len/csum.

    __ip_local_out (with ip_send_check), LOCAL_OUT and dst_output are
    written out here (their trace hits in order); the hooks run as NF_HOOK
    runs them when the point has any.
    """
    tr = skb.trace
    if tr is not None:
        tr.hit("ip_local_out")
        tr.hit("__ip_local_out")
    off = skb.network_header
    buf = skb.buf
    tot = skb.tail - off
    buf[off + 2] = tot >> 8
    buf[off + 3] = tot & 0xFF
    # ip_send_check: the header read as one integer, modulo 0xffff, is its
    # ones' complement sum (see ip_send_check).
    ihl = (buf[off] & 15) * 4
    buf[off + 10] = buf[off + 11] = 0
    c = ~(int.from_bytes(buf[off:off + ihl], "big") % 0xFFFF or 0xFFFF) & 0xFFFF
    buf[off + 10] = c >> 8
    buf[off + 11] = c & 0xFF
    net.mib["Ip"]["OutRequests"] += 1
    if tr is not None:
        tr.hit("NF_INET_LOCAL_OUT")
    if net.proto["nf_hooks"][NF_INET_LOCAL_OUT] and \
            not nf_hook_slow(NF_INET_LOCAL_OUT, net, skb, None, skb.dst.dev):
        return -1
    if skb.trace is not None:
        skb.trace.hit("dst_output")
    return skb.dst.output(skb)


def dst_output(skb):
    if skb.trace is not None:
        skb.trace.hit("dst_output")
    return skb.dst.output(skb)


def ip_output(skb):
    """dst.output for unicast: set the device and run POST_ROUTING (then
    ip_finish_output, called directly when the point has no hooks)."""
    tr = skb.trace
    if tr is not None:
        tr.hit("ip_output")
    dev = skb.dst.dev
    skb.dev = dev
    skb.protocol = ETH_P_IP
    net = dev.net
    net.mib["IpExt"]["OutOctets"] += skb.len
    if tr is not None:
        tr.hit("NF_INET_POST_ROUTING")
    if net.proto["nf_hooks"][NF_INET_POST_ROUTING] and \
            not nf_hook_slow(NF_INET_POST_ROUTING, net, skb, None, dev):
        return -1
    return ip_finish_output(skb)


def ip_finish_output(skb):
    if skb.trace is not None:
        skb.trace.hit("ip_finish_output")
    rt = skb.dst
    # ip_skb_dst_mtu, written out for the common case (no learned PMTU).
    mtu = (rt.pmtu or rt.dev.mtu) if not rt.dev.net.proto["fnhe"] else ip_skb_dst_mtu(skb)
    if skb.shinfo.gso_size:
        return ip_finish_output_gso(skb, mtu)
    if skb.len > mtu:
        from .ip_forward import ip_fragment_or_fail
        return ip_fragment_or_fail(skb, mtu)
    return ip_finish_output2(skb)


def ip_finish_output_gso(skb, mtu):
    """A GSO skb whose segments would not fit mtu (a forwarded GRO skb, a smaller
    path MTU) is segmented here and each segment fragmented or refused, so no
    frame larger than the link's MTU leaves (Linux ip_finish_output_gso)."""
    if skb_gso_validate_network_len(skb, mtu):
        return ip_finish_output2(skb)          # the common case: no import on it
    from ..core.dev import netif_skb_features
    from ..core.gso import skb_gso_segment
    from ..core.netdevice import NETIF_F_GSO_MASK
    from .ip_forward import ip_fragment_or_fail
    segs = skb_gso_segment(skb, netif_skb_features(skb, skb.dev) & ~NETIF_F_GSO_MASK)
    if type(segs) is int or segs is None:
        kfree_skb(skb, "SKB_GSO_SEG")
        return -1
    consume_skb(skb)
    ret = 0
    for seg in segs:
        err = ip_fragment_or_fail(seg, mtu) if seg.len > mtu else ip_finish_output2(seg)
        ret = ret or err
    return ret


def ip_finish_output2(skb):
    """Find the neighbour for the next hop and hand the packet to it."""
    tr = skb.trace
    if tr is not None:
        tr.hit("ip_finish_output2")
    rt = skb.dst
    dev = skb.dev
    net = dev.net
    if dev.name == "lo":
        net.mib["Ip"]["OutTransmits"] += 1
        dev.header_ops.create(skb, dev, ETH_P_IP, dev.dev_addr, dev.dev_addr, skb.len)
        return dev_queue_xmit(skb)
    nexthop = rt.rt_gw4                       # rt_nexthop
    if not nexthop:
        nh = skb.network_header
        nexthop = int.from_bytes(skb.buf[nh + 16:nh + 20], "big")
    # __neigh_lookup (neigh_lookup, with its counters), written out.
    tbl = net.proto["arp_tbl"]
    stats = tbl.stats
    stats["lookups"] += 1
    neigh = tbl.hash.get((nexthop, dev.ifindex))
    if neigh is not None:
        stats["hits"] += 1
    else:
        neigh = neigh_create(tbl, nexthop, dev)
        if neigh is None:
            kfree_skb(skb, SKB_DROP_REASON_NEIGH_FAILED)
            return -1
    net.mib["Ip"]["OutTransmits"] += 1
    hh = neigh.hh
    hh_len = hh.hh_len
    if not (neigh.nud_state & NUD_CONNECTED and hh_len):
        return neigh_output(neigh, skb)
    # neigh_output -> neigh_hh_output, written out: the cached header in front.
    if tr is not None:
        tr.hit("neigh_output", NUD_NAMES.get(neigh.nud_state, neigh.nud_state))
        tr.hit("neigh_hh_output")
    data = skb.data - hh_len
    if data < skb.head:
        skb_push(skb, hh_len)                 # skb_under_panic
    skb.data = data
    skb.len += hh_len
    skb.buf[data:data + hh_len] = hh.hh_data
    return dev_queue_xmit(skb)
