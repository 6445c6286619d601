"""TCP over IPv4: receive entry, socket lookup, connect, RST, ICMP errors.

Linux: net/ipv4/tcp_ipv4.c
"""
import errno

from ..core.dev import KernelError
from ..core.dst import sk_dst_reset
from ..core.skbuff import CHECKSUM_UNNECESSARY, PACKET_HOST, alloc_skb, kfree_skb, skb_linearize, skb_reserve
from ..hdr.checksum import csum_partial, csum_tcpudp_nofold
from ..hdr.icmp import ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_TIME_EXCEEDED
from ..hdr.ip import IPPROTO_TCP
from .icmp import icmp_inner_tuple
from .inet_connection_sock import inet_hash_connect, inet_lookup_listener
from .ip_output import ip_build_header, ip_local_out
from .route import RTN_BROADCAST, ip_route_output_flow, ip_route_output_key
from .tcp import (
    before,
    MAX_TCP_HEADER, TCP_CLOSE, TCP_ESTABLISHED, TCP_LISTEN, TCP_NEW_SYN_RECV, TCP_SYN_SENT,
    TCP_TIME_WAIT, TCPHDR_ACK, TCPHDR_FIN, TCPHDR_RST, TCPHDR_SYN, TcpSkbCb, seq_add,
    tcp_set_state, tcphdr,
)
from .tcp_input import tcp_parse_options, tcp_rcv_established, tcp_rcv_state_process
from .tcp_output import tcp_connect, tcp_v4_send_check


def secure_tcp_seq(net, saddr, daddr, sport, dport):
    """An initial sequence number (RFC 6528), drawn from the node's seeded RNG.

    Emulation note: Linux hashes the 4-tuple with a secret and adds a clock;
    a draw from net.rng is as unguessable to the lab and replays by seed.
    """
    return net.rng.get_random_u32()


def tcp_v4_connect(sk, addr):
    """Choose route, source address and port, then send the SYN."""
    from .udp import _source_for
    daddr, dport = addr
    net = sk.net
    if dport == 0:
        raise KernelError(errno.ECONNREFUSED)      # Linux sends the SYN; port 0 is refused
    rt = ip_route_output_flow(net, daddr, sk.inet_saddr, sk.sk_bound_dev_if)
    if rt.rt_type == RTN_BROADCAST:
        raise KernelError(errno.ENETUNREACH)
    if not sk.inet_saddr:
        sk.inet_saddr = _source_for(rt, daddr)
        sk.inet_rcv_saddr = sk.inet_saddr
    sk.inet_daddr = daddr
    sk.inet_dport = dport
    sk_dst_reset(sk)
    tcp_set_state(sk, TCP_SYN_SENT)
    try:
        inet_hash_connect(sk)
    except KernelError:
        sk.sk_state = TCP_CLOSE
        sk.inet_daddr = sk.inet_dport = 0
        raise
    tp = sk.proto_data
    tp.isn = secure_tcp_seq(sk.net, sk.inet_saddr, daddr, sk.inet_sport, dport)
    tp.ts_offset = sk.net.rng.get_random_u32()
    sk.inet_id = sk.net.rng.get_random_u32() & 0xFFFF       # get_random_u16()
    tcp_connect(sk)
    return 0


def __inet_lookup_established(net, saddr, sport, daddr, dport):
    return net.proto["tcp_ehash"].get((daddr, dport, saddr, sport))


def tcp_v4_early_demux(skb):
    """Before routing: an established socket's cached input route (sk_rx_dst),
    still valid and learned on this device, becomes the packet's dst, so
    ip_rcv_finish needs no FIB lookup (tcp_ipv4.c tcp_v4_early_demux).

    Emulation note: the socket itself is not attached to the skb
    (skb->sk, skb_steal_sock); tcp_v4_rcv looks it up again.
    """
    if skb.pkt_type != PACKET_HOST:
        return 0
    net = skb.dev.net
    if not net.sysctl["net.ipv4.tcp_early_demux"]:
        return 0
    buf = skb.buf
    nh = skb.network_header
    t = skb.transport_header
    if skb.tail - t < 20 or buf[t + 12] < 0x50:        # no room for a header; doff < 5
        return 0
    if skb.trace is not None:
        skb.trace.hit("tcp_v4_early_demux")
    sk = net.proto["tcp_ehash"].get((int.from_bytes(buf[nh + 16:nh + 20], "big"),
                                     (buf[t + 2] << 8) | buf[t + 3],
                                     int.from_bytes(buf[nh + 12:nh + 16], "big"),
                                     (buf[t] << 8) | buf[t + 1]))
    if sk is None or sk.sk_state in (TCP_TIME_WAIT, TCP_NEW_SYN_RECV):   # sk_fullsock
        return 0
    tp = sk.proto_data
    dst = tp.sk_rx_dst
    if dst is not None and dst.rt_genid == net.rt_genid and \
            tp.sk_rx_dst_ifindex == skb.skb_iif:                     # dst_check
        skb.dst = dst
    return 0


def inet_sk_rx_dst_set(sk, skb):
    """Remember the input route of this connection's segments (sk_rx_dst_set)."""
    tp = sk.proto_data
    tp.sk_rx_dst = skb.dst
    tp.sk_rx_dst_ifindex = skb.skb_iif


def tcp_v4_rcv(skb):
    """The IPPROTO_TCP handler: validate, find the socket, hand the segment over."""
    if skb.trace is not None:
        skb.trace.hit("tcp_v4_rcv")
    net = skb.dev.net
    mib = net.mib["Tcp"]
    # Not addressed to us at the link layer (a broadcast or multicast frame):
    # dropped before anything is counted.
    if skb.pkt_type != PACKET_HOST:
        kfree_skb(skb, "NOT_SPECIFIED")
        return 0
    mib["InSegs"] += 1          # counted even if it is bad, as tcp_v4_rcv
    if skb.data_len:
        # Emulation note: a GRO packet's payload is in page frags; this TCP
        # reads linear data, so it is flattened here (Linux reads the frags).
        skb_linearize(skb)
    buf = skb.buf
    t = skb.data
    if skb.len < 20:                # pskb_may_pull fails: discard_it, not an error
        kfree_skb(skb, "NOT_SPECIFIED")
        return 0
    doff = (buf[t + 12] >> 4) * 4
    if doff < 20:                   # bad_packet
        mib["InErrs"] += 1
        kfree_skb(skb, "PKT_TOO_SMALL")
        return 0
    if doff > skb.len:              # pskb_may_pull(doff) fails: discard_it
        kfree_skb(skb, "NOT_SPECIFIED")
        return 0
    nh = skb.network_header
    saddr = int.from_bytes(buf[nh + 12:nh + 16], "big")
    daddr = int.from_bytes(buf[nh + 16:nh + 20], "big")
    if skb.ip_summed != CHECKSUM_UNNECESSARY and skb.ip_summed != 3:   # 3: CHECKSUM_PARTIAL is valid (skb_csum_unnecessary)
        s = csum_tcpudp_nofold(saddr, daddr, skb.len, IPPROTO_TCP)
        if csum_partial(buf, t, t + skb.len, s) != 0xFFFF:
            mib["InCsumErrors"] += 1
            mib["InErrs"] += 1
            kfree_skb(skb, "TCP_CSUM")
            return 0
        skb.ip_summed = CHECKSUM_UNNECESSARY
    sport, dport, seq, ack_seq, _, flags, window, _, _ = tcphdr.unpack_from(buf, t)
    datalen = skb.len - doff
    opt = tcp_parse_options(buf, t + 20, t + doff, bool(flags & TCPHDR_SYN))
    cb = TcpSkbCb(seq, seq_add(seq, datalen + (1 if flags & TCPHDR_SYN else 0)
                               + (1 if flags & TCPHDR_FIN else 0)), flags)
    cb.ack_seq = ack_seq
    cb.window = window
    skb.cb = cb
    skb.transport_header = t
    skb.data = t + doff
    skb.len = datalen
    sk = __inet_lookup_established(net, saddr, sport, daddr, dport)
    if sk is not None:
        state = sk.sk_state
        if state == TCP_NEW_SYN_RECV:
            from .tcp_minisocks import tcp_check_req
            return tcp_check_req(sk, skb, flags, opt)
        if state == TCP_TIME_WAIT:
            from .tcp_minisocks import tcp_timewait_state_process
            return tcp_timewait_state_process(sk, skb, flags, opt)
        return tcp_v4_do_rcv(sk, skb, flags, opt)
    lsk = inet_lookup_listener(net, daddr, dport)
    if lsk is not None:
        from .tcp_minisocks import tcp_listen_rcv
        return tcp_listen_rcv(lsk, skb, flags, opt, saddr, sport, daddr, dport)
    # Nobody here: RST (RFC 9293 3.10.7.1), never in answer to a RST.
    if not flags & TCPHDR_RST:
        tcp_v4_send_reset_for(net, skb)
    kfree_skb(skb, "NO_SOCKET")
    return 0


def tcp_v4_do_rcv(sk, skb, flags, opt):
    if skb.trace is not None:
        skb.trace.hit("tcp_v4_do_rcv")
    tp = sk.proto_data
    tp.segs_in += 1
    if sk.sk_state == TCP_ESTABLISHED:
        dst = tp.sk_rx_dst
        if dst is not None and (tp.sk_rx_dst_ifindex != skb.skb_iif or
                                dst.rt_genid != sk.net.rt_genid):
            tp.sk_rx_dst = dst = None            # learned elsewhere, or routes changed
        if dst is None and skb.dst is not None:
            # Emulation note: tcp_rcv_established does this first thing in Linux.
            inet_sk_rx_dst_set(sk, skb)
        tcp_rcv_established(sk, skb, flags, opt)
    else:
        tcp_rcv_state_process(sk, skb, flags, opt)
    return 0


def tcp_v4_send_reset_for(net, skb):
    """Answer a segment with a RST built from its own fields (tcp_v4_send_reset)."""
    cb = skb.cb
    buf = skb.buf
    nh = skb.network_header
    t = skb.transport_header
    saddr = int.from_bytes(buf[nh + 12:nh + 16], "big")
    daddr = int.from_bytes(buf[nh + 16:nh + 20], "big")
    sport = (buf[t] << 8) | buf[t + 1]
    dport = (buf[t + 2] << 8) | buf[t + 3]
    if cb.tcp_flags & TCPHDR_ACK:
        seq, ack, flags = cb.ack_seq, 0, TCPHDR_RST
    else:
        seq, ack, flags = 0, cb.end_seq, TCPHDR_RST | TCPHDR_ACK
    tcp_v4_send_raw(net, daddr, saddr, dport, sport, seq, ack, flags, 0)


def tcp_v4_send_raw(net, saddr, daddr, sport, dport, seq, ack, flags, window, opts=b""):
    """A segment not tied to a full socket (RST, TIME-WAIT ACK, SYN-ACK)."""
    try:
        rt = ip_route_output_key(net, daddr, saddr)
    except KernelError:
        return
    skb = alloc_skb(MAX_TCP_HEADER)
    skb_reserve(skb, MAX_TCP_HEADER)
    from ..core.skbuff import skb_push
    hlen = 20 + len(opts)
    off = skb_push(skb, hlen)
    tcphdr.pack_into(skb.buf, off, sport, dport, seq, ack, (hlen // 4) << 4, flags, window, 0, 0)
    skb.buf[off + 20:off + hlen] = opts
    skb.transport_header = off
    tcp_v4_send_check(skb, saddr, daddr)
    skb.dst = rt
    ip_build_header(skb, saddr, daddr, IPPROTO_TCP, net.sysctl["net.ipv4.ip_default_ttl"], 0, df=True)
    net.mib["Tcp"]["OutSegs"] += 1
    if flags & TCPHDR_RST:
        net.mib["Tcp"]["OutRsts"] += 1
    tracer = net.tracer
    if tracer is not None:
        tracer.attach(skb)
    ip_local_out(net, None, skb)


def tcp_v4_err(skb, icmp_type, code, inner, inner_l4):
    """ICMP about a segment we sent (tcp_v4_err): PMTU, or a soft/hard error."""
    from .tcp_output import tcp_sync_mss
    from .route import ip_rt_update_pmtu
    from .udp import ICMP_UNREACH_ERR
    net = skb.dev.net if skb.dev is not None else None
    if net is None:
        return
    buf = skb.buf
    saddr, daddr, sport, dport = icmp_inner_tuple(buf, inner, inner_l4)
    sk = net.proto["tcp_ehash"].get((saddr, sport, daddr, dport))
    if sk is None or sk.sk_state in (TCP_TIME_WAIT, TCP_NEW_SYN_RECV, TCP_LISTEN):
        return
    tp = sk.proto_data
    if skb.tail - inner_l4 >= 8:
        seq = int.from_bytes(buf[inner_l4 + 4:inner_l4 + 8], "big")
        # RFC 5927 / tcp_v4_err: only an error about data we have in flight counts.
        if sk.sk_state != TCP_SYN_SENT and (before(seq, tp.snd_una) or not before(seq, tp.snd_nxt)):
            net.mib["TcpExt"]["OutOfWindowIcmps"] += 1
            return
    if icmp_type == ICMP_DEST_UNREACH and code == ICMP_FRAG_NEEDED:
        mtu = int.from_bytes(buf[skb.transport_header + 6:skb.transport_header + 8], "big")
        ip_rt_update_pmtu(net, daddr, mtu)
        old = tp.mss_cache
        from .route import ip_dst_mtu
        rt = sk.sk_dst_cache
        if rt is None:
            return
        tcp_sync_mss(sk, ip_dst_mtu(net, rt, daddr))     # the clamped path MTU
        if tp.mss_cache < old:
            tcp_simple_retransmit(sk)
        return
    if icmp_type == ICMP_DEST_UNREACH:
        err, hard = ICMP_UNREACH_ERR.get(code, (errno.EHOSTUNREACH, False))
    elif icmp_type == ICMP_TIME_EXCEEDED:
        err, hard = errno.EHOSTUNREACH, False
    else:
        return
    if sk.sk_state == TCP_SYN_SENT and hard:
        # RFC 1122 4.2.3.9: a hard error while connecting ends the attempt.
        from .tcp import tcp_done
        from ..core.sock import sk_error_report
        sk.sk_err = err
        sk_error_report(sk)
        tcp_done(sk)
        return
    sk.sk_err_soft = err


def tcp_simple_retransmit(sk):
    """The MSS shrank: resend everything outstanding in the new size."""
    from .tcp import TCPCB_LOST
    from .tcp_recovery import tcp_xmit_retransmit_queue
    tp = sk.proto_data
    for skb in tp.rtx_queue:
        if not skb.cb.sacked & TCPCB_LOST:
            skb.cb.sacked |= TCPCB_LOST
            tp.lost_out += skb.cb.pcount
    tp.rtx_hint = None                   # all of it to send again (tcp_recovery.py)
    tcp_xmit_retransmit_queue(sk)
