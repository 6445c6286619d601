"""Raw IPv4 sockets: what ping uses (SOCK_RAW, IPPROTO_ICMP).

Linux: net/ipv4/raw.c
"""
import errno
import struct

from ..core.dev import KernelError
from ..core.skbuff import LL_MAX_HEADER, SkBuff, alloc_skb, consume_skb, skb_clone, skb_put, skb_reserve
from ..core.sock import MSG_PEEK, MSG_TRUNC, Proto, skb_copy_datagram_iter, skb_recv_datagram, sock_queue_rcv_skb
from ..core.snmp import icmp_out_count
from ..hdr.ip import IPPROTO_ICMP, IPPROTO_RAW, NTOA_CACHE, inet_ntoa
from .ip_output import ip_build_header, ip_local_out, ip_select_ident, ip_send_check
from .ip_sockglue import ip_cmsg_recv
from .route import (
    IP_PMTUDISC_PROBE, RTN_BROADCAST, ip_dst_mtu, ip_route_output_key, ip_sk_dont_fragment,
)

SOL_RAW = 255
ICMP_FILTER = 1


def raw_hash_sk(sk):
    sk.net.proto["raw_hash"].setdefault(sk.inet_num, []).append(sk)


def raw_unhash_sk(sk):
    lst = sk.net.proto["raw_hash"].get(sk.inet_num, [])
    if sk in lst:
        lst.remove(sk)


def raw_v4_match(sk, num, saddr, daddr, dif):
    return sk.inet_num == num and (not sk.inet_daddr or sk.inet_daddr == saddr) and \
        (not sk.inet_rcv_saddr or sk.inet_rcv_saddr == daddr) and \
        (not sk.sk_bound_dev_if or sk.sk_bound_dev_if == dif)


def icmp_filter(sk, skb):
    """ICMP_FILTER: a bit per ICMP type the socket does not want."""
    mask = sk.proto_data or 0
    if not mask:
        return False
    t = skb.transport_header
    if skb.tail - t < 1:
        return True
    icmp_type = skb.buf[t]
    return icmp_type < 32 and bool(mask & (1 << icmp_type))


def raw_local_deliver(skb, protocol):
    """Offer skb to the raw sockets of its protocol; True if one matched."""
    if skb.trace is not None:
        skb.trace.hit("raw_local_deliver")
    return raw_v4_input(skb.dev.net, skb, protocol)


def raw_v4_input(net, skb, protocol):
    """Give each matching raw socket a clone (the original continues up)."""
    if skb.trace is not None:
        skb.trace.hit("raw_v4_input")
    socks = net.proto["raw_hash"].get(protocol)
    if not socks:
        return False
    nh = skb.network_header
    buf = skb.buf
    saddr = int.from_bytes(buf[nh + 12:nh + 16], "big")
    daddr = int.from_bytes(buf[nh + 16:nh + 20], "big")
    delivered = False
    for sk in socks:
        if not raw_v4_match(sk, protocol, saddr, daddr, skb.skb_iif):
            continue
        delivered = True
        if protocol == IPPROTO_ICMP and icmp_filter(sk, skb):
            continue
        clone = skb_clone(skb)
        raw_rcv(sk, clone)
    return delivered


def raw_rcv(sk, skb):
    """Raw sockets read from the IP header on (skb_push back to it)."""
    if skb.trace is not None:
        skb.trace.hit("raw_rcv")
    skb.len += skb.data - skb.network_header
    skb.data = skb.network_header
    # raw_rcv_skb, written out.
    if skb.trace is not None:
        skb.trace.hit("raw_rcv_skb")
    if sock_queue_rcv_skb(sk, skb) < 0:
        sk.net.mib["Ip"]["InDiscards"] += 1
        return -1
    return 0


def raw_rcv_skb(sk, skb):
    """Queue the datagram on the socket (a full receive buffer drops it)."""
    if skb.trace is not None:
        skb.trace.hit("raw_rcv_skb")
    if sock_queue_rcv_skb(sk, skb) < 0:
        sk.net.mib["Ip"]["InDiscards"] += 1
        return -1
    return 0


def raw_sendmsg(sk, data, flags, addr):
    """Send one datagram: build the IP header unless IP_HDRINCL."""
    net = sk.net
    if net.tracer is not None:
        net.tracer.send_hit("raw_sendmsg")
    n = len(data)
    if n > 0xFFFF - (0 if sk.hdrincl else 20):
        raise KernelError(errno.EMSGSIZE)
    if addr is not None:
        daddr = addr[0]
    elif sk.inet_daddr:
        daddr = sk.inet_daddr
    else:
        raise KernelError(errno.EDESTADDRREQ)
    saddr = sk.inet_rcv_saddr
    if net.tracer is not None:              # ip_route_output_flow, written out
        net.tracer.send_hit("ip_route_output_flow")
    rt = ip_route_output_key(net, daddr, saddr, sk.sk_bound_dev_if)
    if rt.rt_type == RTN_BROADCAST and not sk.sk_broadcast:
        raise KernelError(errno.EACCES)
    if sk.hdrincl:
        if n < 20:
            raise KernelError(errno.EINVAL)
        if n > rt.dev.mtu:
            # raw_send_hdrinc: the user built the datagram; the kernel never fragments it.
            raise KernelError(errno.EMSGSIZE)
        skb = alloc_skb(LL_MAX_HEADER + n)
        skb_reserve(skb, LL_MAX_HEADER)
        off = skb_put(skb, n)
        skb.buf[off:off + n] = data
        skb.network_header = off
        skb.dst = rt
        if skb.buf[off + 12:off + 16] == b"\x00\x00\x00\x00":
            src = rt.prefsrc or _src_for(rt, daddr)
            skb.buf[off + 12:off + 16] = src.to_bytes(4, "big")
        if skb.buf[off + 4:off + 6] == b"\x00\x00":
            # raw_send_hdrinc: ip_select_ident(net, skb, NULL): 0 with DF, else hashed.
            struct.pack_into("!H", skb.buf, off + 4, ip_select_ident(
                net, None, int.from_bytes(skb.buf[off + 12:off + 16], "big"),
                int.from_bytes(skb.buf[off + 16:off + 20], "big"), skb.buf[off + 9],
                bool(skb.buf[off + 6] & 0x40)))
        ip_send_check(skb.buf, off)
    else:
        # alloc_skb, skb_reserve (room for the IP header) and skb_put, written out.
        off = LL_MAX_HEADER + 20
        skb = SkBuff(bytearray(off + n))
        skb.buf[off:off + n] = data
        skb.data = skb.transport_header = off
        skb.tail = off + n
        skb.len = n
        skb.dst = rt
        src = saddr or rt.prefsrc or _src_for(rt, daddr)
        ttl = sk.uc_ttl if sk.uc_ttl >= 0 else net.sysctl["net.ipv4.ip_default_ttl"]
        # __ip_make_skb: DF when the socket asks (DO/PROBE), or WANT and it fits the
        # path (ip_dst_mtu: the route's MTU unless a smaller one was learned;
        # PROBE and above use the device's, ip_sk_use_pmtu).
        if sk.pmtudisc >= IP_PMTUDISC_PROBE:
            mtu = rt.dev.mtu
            skb.sk = sk           # ip_skb_dst_mtu: the device's MTU on the way out too
        else:
            mtu = (rt.pmtu or rt.dev.mtu) if not net.proto["fnhe"] else ip_dst_mtu(net, rt, daddr)
        df = ip_sk_dont_fragment(sk, 20 + n, mtu)
        ip_build_header(skb, src, daddr, sk.inet_num, ttl, sk.tos, df=df, sk=sk)
    tracer = net.tracer
    if tracer is not None:
        tracer.attach(skb)
    skb.priority = sk.sk_priority
    skb.mark = sk.sk_mark
    if sk.inet_num == IPPROTO_ICMP and 0 <= skb.transport_header < skb.tail and not sk.hdrincl:
        icmp_out_count(net, skb.buf[skb.transport_header])
    ip_local_out(net, sk, skb)
    return n


def _src_for(rt, daddr):
    from .devinet import inet_select_addr
    return inet_select_addr(rt.dev, daddr)


def raw_recvmsg(sk, size, flags, msg=None):
    q = sk.sk_receive_queue.q
    if q and not sk.sk_err:
        # skb_recv_datagram -> __skb_try_recv_datagram with a datagram there
        # and no pending error, written out.
        skb = q[0] if flags & MSG_PEEK else q.popleft()
    else:
        skb = skb_recv_datagram(sk, flags)
        if skb is None:
            return b"", None, 0
    n = min(size, skb.len)
    if skb.data_len or skb.trace is not None:
        data = skb_copy_datagram_iter(skb, 0, n)
    else:
        data = bytes(memoryview(skb.buf)[skb.data:skb.data + n])   # the linear part
    msg_flags = MSG_TRUNC if skb.len > size else 0
    nh = skb.network_header
    saddr = int.from_bytes(skb.buf[nh + 12:nh + 16], "big")
    addr = (NTOA_CACHE.get(saddr) or inet_ntoa(saddr), 0)
    if msg is not None and sk.cmsg_flags:
        ip_cmsg_recv(msg, sk, skb)
    if not flags & MSG_PEEK:
        consume_skb(skb)
    return data, addr, msg_flags


def raw_setsockopt(sk, level, optname, value):
    if level == SOL_RAW and optname == ICMP_FILTER:
        if sk.inet_num != IPPROTO_ICMP:
            raise KernelError(errno.EOPNOTSUPP)
        if isinstance(value, int):
            value = (value & 0xFFFFFFFF).to_bytes(4, "little")   # an int optval, as Python sends it
        if len(value) < 4:
            raise KernelError(errno.EINVAL)
        sk.proto_data = struct.unpack_from("=I", value)[0]
        return
    raise KernelError(errno.ENOPROTOOPT)


def raw_getsockopt(sk, level, optname, buflen):
    if level == SOL_RAW and optname == ICMP_FILTER:
        if sk.inet_num != IPPROTO_ICMP:
            raise KernelError(errno.EOPNOTSUPP)
        return struct.pack("=I", sk.proto_data or 0)
    raise KernelError(errno.ENOPROTOOPT)


def raw_init(sk):
    if sk.inet_num == IPPROTO_RAW:
        sk.hdrincl = 1
    raw_hash_sk(sk)


def raw_close(sk):
    raw_unhash_sk(sk)


raw_prot = Proto("RAW", init=raw_init, close=raw_close, sendmsg=raw_sendmsg,
                 recvmsg=raw_recvmsg, setsockopt=raw_setsockopt,
                 getsockopt=raw_getsockopt)


def raw_init_net(net):
    net.proto["raw_hash"] = {}
