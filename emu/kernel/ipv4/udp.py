"""UDP: datagram sockets over IPv4.

Linux: net/ipv4/udp.c, net/ipv4/datagram.c (ip4_datagram_connect),
net/ipv4/inet_connection_sock.c (port ranges); RFC 768, RFC 1122 4.1.

The send path is the one of the seed notes: udp_sendmsg ->
ip_route_output_flow -> ip_make_skb (ip_output.py) -> udp_send_skb -> ip_send_skb ->
ip_local_out. The receive path: udp_rcv -> __udp4_lib_lookup ->
udp_queue_rcv_skb -> sock_queue_rcv_skb; udp_recvmsg dequeues.
"""
import errno

from ..core.dev import KernelError
from ..core.dst import __sk_dst_check, sk_dst_reset, sk_dst_set
from ..core.skbuff import (
    CHECKSUM_UNNECESSARY, PACKET_BROADCAST, PACKET_HOST,
    PACKET_MULTICAST, SKB_DROP_REASON_NO_SOCKET, SKB_DROP_REASON_PKT_TOO_SMALL,
    SKB_DROP_REASON_SOCKET_RCVBUFF, consume_skb, kfree_skb, skb_clone, skb_trim,
)
from ..core.sock import (
    EPOLLIN, EPOLLRDNORM, MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC, RCV_SHUTDOWN, Proto, __skb_try_recv_datagram,
    __skb_wait_for_more_packets, sk_data_ready, sk_error_report, skb_copy_datagram_iter, sock_rmem_free,
)
from ..hdr.checksum import csum_fold, csum_partial, csum_tcpudp_nofold
from ..hdr.icmp import ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_PORT_UNREACH, ICMP_TIME_EXCEEDED
from ..hdr.ip import INADDR_BROADCAST, IPPROTO_UDP, NTOA_CACHE, inet_ntoa, ipv4_is_multicast
from .devinet import inet_select_addr
from .icmp import icmp_inner_tuple, icmp_send
from .inet_connection_sock import inet_ephemeral_port
from .ip_sockglue import ip_cmsg_recv
from .ip_output import ip_local_out, ip_make_skb
from .route import (
    IP_PMTUDISC_DO, IP_PMTUDISC_DONT, IP_PMTUDISC_PROBE, IP_PMTUDISC_WANT, RTN_BROADCAST, RTN_LOCAL,
    inet_addr_type,
    ip_dst_mtu, ip_route_output_flow, ip_route_output_key, ip_rt_update_pmtu,
)

UDP_HLEN = 8
UDP_MAX_PAYLOAD = 0xFFFF - 20 - UDP_HLEN      # 65507


TCP_ESTABLISHED = 1
TCP_CLOSE = 7

# icmp_err_convert[] (net/ipv4/icmp.c): (errno, is it a hard error)
ICMP_UNREACH_ERR = {0: (errno.ENETUNREACH, True), 1: (errno.EHOSTUNREACH, True),
                    2: (errno.ENOPROTOOPT, True), 3: (errno.ECONNREFUSED, True),
                    4: (errno.EMSGSIZE, False), 5: (errno.EOPNOTSUPP, False),
                    6: (errno.ENETUNREACH, True), 7: (errno.EHOSTDOWN, True),
                    9: (errno.ENETUNREACH, True), 10: (errno.EHOSTUNREACH, True),
                    11: (errno.ENETUNREACH, True), 12: (errno.EHOSTUNREACH, True),
                    13: (errno.EHOSTUNREACH, True)}


# ------------------------------------------------------------------ ports

def udp_table(net):
    return net.proto["udp_table"]


def _conflict(sk, other, addr):
    if other is sk:
        return False
    if other.sk_bound_dev_if and sk.sk_bound_dev_if and other.sk_bound_dev_if != sk.sk_bound_dev_if:
        return False
    if other.inet_rcv_saddr and addr and other.inet_rcv_saddr != addr:
        return False
    if sk.sk_reuse and other.sk_reuse:
        return False
    if sk.sk_reuseport and other.sk_reuseport:
        return False
    return True


def udp_lib_get_port(sk, port, addr):
    """Bind sk to port (0: pick an ephemeral one); EADDRINUSE on a conflict."""
    table = udp_table(sk.net)
    if port == 0:
        port = inet_ephemeral_port(
            sk.net, lambda p: not any(_conflict(sk, o, addr) for o in table.get(p, ())))
        if port is None:
            raise KernelError(errno.EAGAIN)
    elif any(_conflict(sk, o, addr) for o in table.get(port, ())):
        raise KernelError(errno.EADDRINUSE)
    sk.inet_num = port
    sk.inet_sport = port
    table.setdefault(port, []).append(sk)
    return port


def udp_lib_unhash(sk):
    lst = udp_table(sk.net).get(sk.inet_num)
    if lst and sk in lst:
        lst.remove(sk)
        if not lst:
            del udp_table(sk.net)[sk.inet_num]


def udp_bind(sk, addr, port):
    """inet_bind for UDP: the address must be ours (or any/broadcast)."""
    net = sk.net
    if addr and addr != INADDR_BROADCAST and not ipv4_is_multicast(addr) and \
            inet_addr_type(net, addr) not in (RTN_LOCAL, RTN_BROADCAST):
        raise KernelError(errno.EADDRNOTAVAIL)
    if sk.inet_num:
        raise KernelError(errno.EINVAL)
    udp_lib_get_port(sk, port, addr)
    sk.inet_rcv_saddr = addr
    sk.inet_saddr = 0 if addr == INADDR_BROADCAST or ipv4_is_multicast(addr) else addr
    return 0


# ------------------------------------------------------------------ connect

def _route(sk, daddr):
    """A connected socket's route: sk_dst_check, ip_route_output_flow only on a miss."""
    rt = __sk_dst_check(sk)
    if rt is None:
        rt = ip_route_output_flow(sk.net, daddr, sk.inet_saddr, sk.sk_bound_dev_if)
        sk_dst_set(sk, rt)
    return rt


def ip4_datagram_connect(sk, addr):
    """connect() on a datagram socket: fix the peer, pick source address and port."""
    daddr, dport = addr
    net = sk.net
    if daddr == 0:
        daddr = 0x7F000001              # Linux: connecting to INADDR_ANY means loopback
    rt = ip_route_output_key(net, daddr, sk.inet_saddr, sk.sk_bound_dev_if)
    if rt.rt_type == RTN_BROADCAST and not sk.sk_broadcast:
        raise KernelError(errno.EACCES)
    if not sk.inet_saddr:
        sk.inet_saddr = _source_for(rt, daddr)
    if not sk.inet_rcv_saddr:
        sk.inet_rcv_saddr = sk.inet_saddr
    if not sk.inet_num:
        udp_lib_get_port(sk, 0, sk.inet_rcv_saddr)
    sk.inet_daddr = daddr
    sk.inet_dport = dport
    sk.inet_id = net.rng.get_random_u32() & 0xFFFF          # get_random_u16()
    sk.sk_state = TCP_ESTABLISHED
    sk_dst_set(sk, rt)
    return 0


def _source_for(rt, daddr):
    if rt.rt_type == RTN_LOCAL:
        return daddr if daddr >> 24 != 127 else 0x7F000001
    return rt.prefsrc or inet_select_addr(rt.dev, daddr)


def udp_disconnect(sk):
    sk.inet_daddr = 0
    sk.inet_dport = 0
    sk.sk_state = TCP_CLOSE
    sk_dst_reset(sk)
    if sk.proto_data is not None:
        sk.proto_data.sk_rx_dst = None


# ------------------------------------------------------------------ send

def udp_sendmsg(sk, data, flags, addr):
    net = sk.net
    if net.tracer is not None:
        net.tracer.send_hit("udp_sendmsg")
    n = len(data)
    if n > UDP_MAX_PAYLOAD:
        raise KernelError(errno.EMSGSIZE)
    if addr is not None:
        daddr, dport = addr
        if dport == 0:
            raise KernelError(errno.EINVAL)
        if daddr == 0:
            daddr = 0x7F000001
        connected = False
    else:
        if sk.sk_state != TCP_ESTABLISHED:
            raise KernelError(errno.EDESTADDRREQ)
        daddr, dport = sk.inet_daddr, sk.inet_dport
        connected = True
    # A connected socket's pending error (ICMP port unreachable) surfaces here.
    if sk.sk_err and connected:
        err = sk.sk_err
        sk.sk_err = 0
        raise KernelError(err)
    if connected:
        rt = _route(sk, daddr)
    else:
        if net.tracer is not None:          # ip_route_output_flow, written out
            net.tracer.send_hit("ip_route_output_flow")
        rt = ip_route_output_key(net, daddr, sk.inet_saddr, sk.sk_bound_dev_if)
    if rt.rt_type == RTN_BROADCAST and not sk.sk_broadcast:
        raise KernelError(errno.EACCES)
    if not sk.inet_num:
        udp_lib_get_port(sk, 0, sk.inet_rcv_saddr)
    saddr = sk.inet_saddr
    if not saddr:
        saddr = rt.prefsrc if rt.prefsrc and rt.rt_type != RTN_LOCAL else _source_for(rt, daddr)
    # ip_dst_mtu (no learned PMTU: the route's) and ip_sk_dont_fragment, written out.
    pmtudisc = sk.pmtudisc
    if pmtudisc >= IP_PMTUDISC_PROBE:
        mtu = rt.dev.mtu          # ip_sk_use_pmtu: PROBE ignores what PMTU discovery learned
    else:
        mtu = (rt.pmtu or rt.dev.mtu) if not net.proto["fnhe"] else ip_dst_mtu(net, rt, daddr)
    total = 20 + UDP_HLEN + n
    if pmtudisc >= IP_PMTUDISC_DO:
        if total > mtu:
            raise KernelError(errno.EMSGSIZE)
        df = True
    else:
        df = pmtudisc == IP_PMTUDISC_WANT and total <= mtu
    skb = ip_make_skb(sk, rt, data, saddr, daddr, IPPROTO_UDP, UDP_HLEN, df)
    udp_send_skb(skb, net, sk.inet_sport, dport)
    return n


def udp_send_skb(skb, net, sport, dport):
    """Fill in the UDP header and checksum (RFC 768: 0 is sent as 0xffff) and send."""
    buf = skb.buf
    t = skb.transport_header
    nh = skb.network_header
    ulen = skb.tail - t
    buf[t:t + 6] = bytes((sport >> 8, sport & 0xFF, dport >> 8, dport & 0xFF, ulen >> 8, ulen & 0xFF))
    tracer = net.tracer
    if tracer is not None:
        # The first point where the packet is whole (ports included) and
        # the trace filter can match it: the send hits so far go with it.
        tracer.attach(skb)
        if skb.trace is not None:
            skb.trace.hit("udp_send_skb")
    if t == nh + 20:
        # csum_tcpudp_nofold + csum_partial + csum_fold in one sum: the
        # addresses sit right before the UDP header, so they and the datagram
        # are read as one integer (mod 0xffff: the ones' complement sum; the
        # pseudo-header is never zero, so neither is the sum).
        x = int.from_bytes(buf[nh + 12:skb.tail], "big")
        if ulen & 1:
            x <<= 8
        c = (~((x + IPPROTO_UDP + ulen) % 0xFFFF or 0xFFFF) & 0xFFFF) or 0xFFFF
    else:
        s = csum_tcpudp_nofold(int.from_bytes(buf[nh + 12:nh + 16], "big"),
                               int.from_bytes(buf[nh + 16:nh + 20], "big"), ulen, IPPROTO_UDP)
        c = csum_fold(csum_partial(buf, t, skb.tail, s)) or 0xFFFF
    buf[t + 6] = c >> 8
    buf[t + 7] = c & 0xFF
    net.mib["Udp"]["OutDatagrams"] += 1
    if skb.trace is not None:               # ip_send_skb, written out
        skb.trace.hit("ip_send_skb")
    return ip_local_out(net, None, skb)


def ip_send_skb(net, skb):
    if skb.trace is not None:
        skb.trace.hit("ip_send_skb")
    return ip_local_out(net, None, skb)


# ------------------------------------------------------------------ receive

def __udp4_lib_lookup(net, saddr, sport, daddr, dport, dif):
    """The best socket for a unicast datagram (highest compute_score)."""
    best, best_score = None, -1
    for sk in udp_table(net).get(dport, ()):
        score = 0
        if sk.inet_rcv_saddr:
            if sk.inet_rcv_saddr != daddr:
                continue
            score += 4
        if sk.inet_daddr:
            if sk.inet_daddr != saddr:
                continue
            score += 4
        if sk.inet_dport:
            if sk.inet_dport != sport:
                continue
            score += 4
        if sk.sk_bound_dev_if:
            if sk.sk_bound_dev_if != dif:
                continue
            score += 4
        if score > best_score:
            best, best_score = sk, score
    return best


def udp_rcv(skb):
    """The IPPROTO_UDP handler: validate, find the socket(s), queue."""
    if skb.trace is not None:
        skb.trace.hit("udp_rcv")
    dev = skb.dev
    net = dev.net
    mib = net.mib["Udp"]
    buf = skb.buf
    t = skb.data
    if skb.len < UDP_HLEN:
        mib["InErrors"] += 1
        kfree_skb(skb, SKB_DROP_REASON_PKT_TOO_SMALL)
        return 0
    ulen = (buf[t + 4] << 8) | buf[t + 5]
    if ulen > skb.len or ulen < UDP_HLEN:
        mib["InErrors"] += 1
        kfree_skb(skb, SKB_DROP_REASON_PKT_TOO_SMALL)
        return 0
    if skb.len > ulen:
        skb_trim(skb, ulen)
    nh = skb.network_header
    addrs = int.from_bytes(buf[nh + 12:nh + 20], "big")
    saddr = addrs >> 32
    daddr = addrs & 0xFFFFFFFF
    check = (buf[t + 6] << 8) | buf[t + 7]
    if check and skb.ip_summed != CHECKSUM_UNNECESSARY and skb.ip_summed != 3:   # 3: CHECKSUM_PARTIAL is valid
        if t == nh + 20 and not skb.data_len:
            # The sum over pseudo-header and datagram in one read (see
            # udp_send_skb): valid when it is 0xffff, i.e. 0 mod 0xffff.
            x = int.from_bytes(buf[nh + 12:t + ulen], "big")
            if ulen & 1:
                x <<= 8
            bad = (x + IPPROTO_UDP + ulen) % 0xFFFF != 0
        else:
            s = csum_tcpudp_nofold(saddr, daddr, ulen, IPPROTO_UDP)
            bad = csum_partial(buf, t, t + ulen, s) != 0xFFFF
        if bad:
            mib["InCsumErrors"] += 1
            mib["InErrors"] += 1
            kfree_skb(skb, "UDP_CSUM")
            return 0
        skb.ip_summed = CHECKSUM_UNNECESSARY
    sport = (buf[t] << 8) | buf[t + 1]
    dport = (buf[t + 2] << 8) | buf[t + 3]
    # A broadcast by its route (rt_flags & RTCF_BROADCAST), not a second FIB lookup.
    rt = skb.dst
    if skb.pkt_type in (PACKET_BROADCAST, PACKET_MULTICAST) or \
            (rt.rt_type if rt is not None else inet_addr_type(net, daddr)) == RTN_BROADCAST:
        return __udp4_lib_mcast_deliver(net, skb, saddr, sport, daddr, dport)
    sk = __udp4_lib_lookup(net, saddr, sport, daddr, dport, skb.skb_iif)
    if sk is None:
        mib["NoPorts"] += 1
        if skb.pkt_type == PACKET_HOST:
            icmp_send(skb, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0)
        kfree_skb(skb, SKB_DROP_REASON_NO_SOCKET)
        return 0
    if sk.inet_dport and rt is not None:
        # A connected socket (the one early demux finds): keep its input
        # route current (__udp4_lib_rcv: udp_sk_rx_dst_set when it changed).
        us = sk.proto_data
        if us is None or us.sk_rx_dst is not rt or us.sk_rx_dst_ifindex != skb.skb_iif:
            udp_sk_rx_dst_set(sk, skb)
    return udp_queue_rcv_skb(sk, skb)


def __udp4_lib_mcast_deliver(net, skb, saddr, sport, daddr, dport):
    """A broadcast reaches every socket bound to the port (and to any/that address)."""
    targets = [sk for sk in udp_table(net).get(dport, ())
               if (not sk.inet_rcv_saddr or sk.inet_rcv_saddr == daddr)
               and (not sk.inet_daddr or sk.inet_daddr == saddr)
               and (not sk.inet_dport or sk.inet_dport == sport)
               and (not sk.sk_bound_dev_if or sk.sk_bound_dev_if == skb.skb_iif)]
    if not targets:
        # Linux counts IgnoredMulti, not NoPorts, and sends no ICMP (RFC 1122 3.2.2).
        net.mib["Udp"]["IgnoredMulti"] += 1
        consume_skb(skb)
        return 0
    for sk in targets[:-1]:
        udp_queue_rcv_skb(sk, skb_clone(skb))
    return udp_queue_rcv_skb(targets[-1], skb)


def udp_queue_rcv_skb(sk, skb):
    tr = skb.trace
    if tr is not None:
        tr.hit("udp_queue_rcv_skb")
        tr.hit("__udp_enqueue_schedule_skb")
    # __udp_enqueue_schedule_skb and sk_data_ready (sock_def_readable),
    # written out: UDP's rule for a full buffer is explained there.
    rmem, rcvbuf = sk.sk_rmem_alloc, sk.sk_rcvbuf
    truesize = skb.truesize
    if rmem + truesize > rcvbuf and (rcvbuf > (1 << 30) or rmem > rcvbuf):
        sk.sk_drops += 1
        kfree_skb(skb, SKB_DROP_REASON_SOCKET_RCVBUFF)
        m = sk.net.mib["Udp"]
        m["RcvbufErrors"] += 1
        m["InErrors"] += 1
        return -1
    skb.sk = sk
    skb.destructor = sock_rmem_free
    sk.sk_rmem_alloc = rmem + truesize
    skb.dev = None       # the socket owns it now; drops no longer count per device
    sk.sk_receive_queue.q.append(skb)
    if tr is not None:
        tr.hit("sock_def_readable")
    if sk.sk_wq.entries:
        sk.sk_wq.wake_up(EPOLLIN | EPOLLRDNORM)
    return 0


def __udp_enqueue_schedule_skb(sk, skb):
    """Charge skb to sk's receive memory, queue it and wake the reader
    (sk_data_ready, i.e. sock_def_readable); -ENOMEM when the buffer is full.

    UDP's own rule, not sock_queue_rcv_skb's: a datagram is refused only when
    it is refused when rmem + truesize > rcvbuf and the buffer is already
    full (rmem > rcvbuf), so a small buffer always takes one datagram.
    """
    if skb.trace is not None:
        skb.trace.hit("__udp_enqueue_schedule_skb")
    rmem, rcvbuf = sk.sk_rmem_alloc, sk.sk_rcvbuf
    if rmem + skb.truesize > rcvbuf and (rcvbuf > (1 << 30) or rmem > rcvbuf):
        sk.sk_drops += 1
        kfree_skb(skb, SKB_DROP_REASON_SOCKET_RCVBUFF)
        return -errno.ENOMEM
    skb.sk = sk
    skb.destructor = sock_rmem_free
    sk.sk_rmem_alloc = rmem + skb.truesize
    skb.dev = None       # the socket owns it now; drops no longer count per device
    sk.sk_receive_queue.q.append(skb)
    sk_data_ready(sk, skb)
    return 0


def __skb_recv_udp(sk, flags):
    """The next datagram on sk's receive queue; the reader sleeps in
    __skb_wait_for_more_packets until one comes (net/ipv4/udp.c).

    Emulation note: Linux also splices a second, reader-private queue
    (reader_queue) to take the queue lock less often; one queue here.
    """
    skb = __skb_try_recv_datagram(sk, flags)
    if skb is not None or sk.sk_shutdown & RCV_SHUTDOWN:
        return skb
    if flags & MSG_DONTWAIT or sk.sk_socket.nonblock:
        raise KernelError(errno.EAGAIN)
    __skb_wait_for_more_packets(sk, sk.sk_rcvtimeo)


def udp_recvmsg(sk, size, flags, msg=None):
    """Dequeue one datagram: (data, (addr, port), msg_flags); msg (a MsgHdr, from
    recvmsg) gets the control messages the socket asked for."""
    q = sk.sk_receive_queue.q
    if q and not sk.sk_err:
        # __skb_recv_udp -> __skb_try_recv_datagram with a datagram there and
        # no pending error, written out.
        skb = q[0] if flags & MSG_PEEK else q.popleft()
    else:
        skb = __skb_recv_udp(sk, flags)
        if skb is None:
            return b"", None, 0
    tr = skb.trace
    if tr is not None:
        tr.hit("udp_recvmsg")
        tr.hit("__skb_recv_udp")
    t = skb.transport_header
    start = t + UDP_HLEN
    ulen = skb.tail - start
    n = min(size, ulen)
    buf = skb.buf
    if skb.data_len or tr is not None:
        data = skb_copy_datagram_iter(skb, start - skb.data, n)
    else:
        data = bytes(memoryview(buf)[start:start + n])   # skb_copy_datagram_iter: the linear part
    msg_flags = MSG_TRUNC if ulen > size else 0
    nh = skb.network_header
    saddr = int.from_bytes(buf[nh + 12:nh + 16], "big")
    addr = (NTOA_CACHE.get(saddr) or inet_ntoa(saddr), (buf[t] << 8) | buf[t + 1])
    if msg is not None and sk.cmsg_flags:
        ip_cmsg_recv(msg, sk, skb)
    if not flags & MSG_PEEK:
        sk.net.mib["Udp"]["InDatagrams"] += 1
        consume_skb(skb)
    return data, addr, msg_flags


def udp_err(skb, icmp_type, code, inner, inner_l4):
    """ICMP about a datagram we sent: report it to the sending socket (__udp4_lib_err)."""
    net = skb.dev.net if skb.dev is not None else None
    if net is None:
        return
    buf = skb.buf
    saddr, daddr, sport, dport = icmp_inner_tuple(buf, inner, inner_l4)
    # The socket that sent it: local is the inner source, remote the inner destination.
    sk = __udp4_lib_lookup(net, daddr, dport, saddr, sport, 0)
    if sk is None:
        return
    harderr = False
    if icmp_type == ICMP_DEST_UNREACH:
        if code == ICMP_FRAG_NEEDED:
            mtu = int.from_bytes(buf[skb.transport_header + 6:skb.transport_header + 8], "big")
            ip_rt_update_pmtu(net, daddr, mtu)
            if sk.pmtudisc != IP_PMTUDISC_DONT:
                err, harderr = errno.EMSGSIZE, True
            else:
                return
        else:
            err, harderr = ICMP_UNREACH_ERR.get(code, (errno.EHOSTUNREACH, False))
    elif icmp_type == ICMP_TIME_EXCEEDED:
        err = errno.EHOSTUNREACH
    else:
        err = errno.EPROTO
    # RFC 1122 4.1.3.3: report to connected sockets (or with IP_RECVERR).
    if not sk.recverr and (not harderr or sk.sk_state != TCP_ESTABLISHED):
        return
    sk.sk_err = err
    sk_error_report(sk)


def udp_close(sk):
    udp_lib_unhash(sk)


def udp_connect(sk, addr):
    return ip4_datagram_connect(sk, addr)


udp_prot = Proto("UDP", close=udp_close, connect=udp_connect, sendmsg=udp_sendmsg,
                 recvmsg=udp_recvmsg, bind=udp_bind)


def udp_init_net(net):
    net.proto["udp_table"] = {}
    net.sysctl.setdefault("net.ipv4.ip_local_port_range", (32768, 60999))
    net.sysctl.setdefault("net.ipv4.udp_early_demux", 1)
    net.proto["inet_early_demux"][IPPROTO_UDP] = udp_v4_early_demux


# ------------------------------------------------------------------ early demux

class UdpSock:
    """The part of struct udp_sock emu needs: the cached input route.

    Emulation note: kept in sk.proto_data (Linux keeps sk_rx_dst in struct sock).
    """

    __slots__ = ("sk_rx_dst", "sk_rx_dst_ifindex")

    def __init__(self):
        self.sk_rx_dst = None
        self.sk_rx_dst_ifindex = 0


def __udp4_lib_demux_lookup(net, dport, daddr, sport, saddr, dif):
    """The connected socket for exactly this 4-tuple (INET_MATCH), or None."""
    for sk in udp_table(net).get(dport, ()):
        if sk.inet_daddr == saddr and sk.inet_dport == sport and \
                sk.inet_rcv_saddr == daddr and \
                (not sk.sk_bound_dev_if or sk.sk_bound_dev_if == dif):
            return sk
    return None


def udp_v4_early_demux(skb):
    """Before routing: a connected socket's cached input route becomes the
    datagram's dst (udp.c udp_v4_early_demux, unicast only).

    Emulation note: the route is used only if learned on the same device
    (as TCP checks sk_rx_dst_ifindex), so a frame on another device is
    routed, and its martian and source checks run, as without early demux.
    """
    if skb.pkt_type != PACKET_HOST:
        return 0
    net = skb.dev.net
    if not net.sysctl["net.ipv4.udp_early_demux"]:
        return 0
    buf = skb.buf
    nh = skb.network_header
    t = skb.transport_header
    if skb.tail - t < UDP_HLEN:
        return 0
    if skb.trace is not None:
        skb.trace.hit("udp_v4_early_demux")
    dport = (buf[t + 2] << 8) | buf[t + 3]
    socks = net.proto["udp_table"].get(dport)
    if not socks:
        return 0                 # nobody on the port (a router's forwarded traffic)
    sport = (buf[t] << 8) | buf[t + 1]
    for sk in socks:
        if sk.inet_dport == sport:
            break
    else:
        return 0                 # no socket there is connected to that port
    sk = __udp4_lib_demux_lookup(net, dport, int.from_bytes(buf[nh + 16:nh + 20], "big"),
                                 sport, int.from_bytes(buf[nh + 12:nh + 16], "big"),
                                 skb.skb_iif)
    if sk is None:
        return 0
    us = sk.proto_data
    if us is None:
        return 0
    dst = us.sk_rx_dst
    if dst is not None and dst.rt_genid == net.rt_genid and \
            us.sk_rx_dst_ifindex == skb.skb_iif:                      # dst_check
        skb.dst = dst
    return 0


def udp_sk_rx_dst_set(sk, skb):
    """A connected socket remembers the input route of its datagrams."""
    us = sk.proto_data
    if us is None:
        us = sk.proto_data = UdpSock()
    us.sk_rx_dst = skb.dst
    us.sk_rx_dst_ifindex = skb.skb_iif
