"""TCP output: building segments, what may be sent, ACKs, SYNs, FINs, RSTs.

Linux: net/ipv4/tcp_output.c; RFC 9293, RFC 7323 (window scale,
timestamps), RFC 2018 (SACK), RFC 896 (Nagle), RFC 1122 4.2.3.4, RFC 9438.
"""
import struct

from ..core.dev import KernelError
from ..core.dst import __sk_dst_check, sk_dst_set
from ..core.sock import skb_add_data_nocache
from ..core.netdevice import NETIF_F_CSUM_MASK, NETIF_F_GSO, NETIF_F_TSO
from ..core.skbuff import (
    CHECKSUM_PARTIAL,
    alloc_skb, consume_skb, skb_clone, skb_copy, skb_push, skb_put, skb_reserve,
)
from ..hdr.checksum import csum_fold, csum_partial, csum_tcpudp_nofold
from ..hdr.ip import IPPROTO_TCP
from .ip_output import ip_build_header, ip_local_out
from .route import ip_route_output_flow
from .tcp import (
    MAX_TCP_HEADER, TCP_CLOSE, TCP_HLEN, TCP_LISTEN, TCP_MAX_WSCALE, TCP_MIN_MSS,
    TCP_SYN_SENT, TCPCB_LOST, TCPCB_SACKED_ACKED, TCPCB_SACKED_RETRANS, TCPHDR_ACK,
    TCPHDR_FIN, TCPHDR_PSH, TCPHDR_RST,
    TCPHDR_SYN, TCPOPT_MSS, TCPOPT_NOP, TCPOPT_SACK, TCPOPT_SACK_PERM, TCPOPT_TIMESTAMP,
    TCPOPT_WINDOW, TcpSkbCb, after, before, seq_add, seq_sub, tcp_sysctl, tcphdr,
)

TCP_NAGLE_OFF = 1      # TCP_NODELAY
TCP_NAGLE_CORK = 2
TCP_NAGLE_PUSH = 4
GSO_MAX_SIZE = 65536
IPV4_MAX_PMTU = 65535  # the largest IPv4 datagram: caps the MSS we advertise


def tcp_time_stamp(sk):
    """The TSval clock: milliseconds (Linux: tcp_time_stamp_raw, 1 kHz)."""
    return (int(sk.net.clock() * 1000) + sk.proto_data.ts_offset) & 0xFFFFFFFF


# ------------------------------------------------------------------ MSS and windows

def tcp_mtu_to_mss(sk, pmtu):
    tp = sk.proto_data
    mss = pmtu - 20 - TCP_HLEN
    mss = min(mss, tp.mss_clamp)
    if tp.user_mss:
        mss = min(mss, tp.user_mss)
    if tp.tstamp_ok:
        mss -= 12
    return max(mss, TCP_MIN_MSS - 40 if pmtu < 128 else TCP_MIN_MSS - 40)


def tcp_sync_mss(sk, pmtu):
    tp = sk.proto_data
    tp.mss_cache = tcp_mtu_to_mss(sk, pmtu)
    return tp.mss_cache


def tcp_current_mss(sk):
    """The MSS for the next segment, less the SACK blocks we will carry."""
    tp = sk.proto_data
    mss = tp.mss_cache
    if tp.selective_acks:
        mss -= 4 + 8 * min(len(tp.selective_acks), 3 if tp.tstamp_ok else 4)
    return max(mss, 1)


def tcp_size_goal(sk, mss):
    """How big a skb to build: one MSS, or a GSO super-segment when the route allows."""
    dst = sk.sk_dst_cache
    # sk_can_gso: the device segments in hardware (TSO), or the stack does it
    # in software just before the driver (NETIF_F_GSO): either way TCP builds
    # super-segments and crosses its own layers once per 64 KiB, not per MSS.
    if dst is None or not dst.dev.features & (NETIF_F_TSO | NETIF_F_GSO) or sk.sk_socket is None:
        return mss
    goal = min(GSO_MAX_SIZE - MAX_TCP_HEADER, dst.dev.gso_max_size - MAX_TCP_HEADER)
    return max(mss, goal - goal % mss)


def tcp_space(sk):
    """Free receive space, with half the buffer kept for overhead (tcp_adv_win_scale 1)."""
    return max(0, (sk.sk_rcvbuf - sk.sk_rmem_alloc) // 2)


def tcp_full_space(sk):
    return sk.sk_rcvbuf // 2


def tcp_select_initial_window(sk, mss):
    """RFC 7323 2.3: the window for the SYN and the shift we will use."""
    tp = sk.proto_data
    space = min(tcp_full_space(sk), tp.window_clamp)
    wscale = 0
    if tp.wscale_ok:
        biggest = max(tcp_sysctl(sk.net, "tcp_rmem")[2], sk.net.sysctl["net.core.rmem_max"],
                      sk.sk_rcvbuf)
        while biggest > 65535 and wscale < TCP_MAX_WSCALE:
            biggest >>= 1
            wscale += 1
    tp.rcv_wscale = wscale
    rcv_wnd = min(space, 65535)
    if mss > 0:
        rcv_wnd = max(mss, rcv_wnd - rcv_wnd % mss)
    tp.rcv_wnd = rcv_wnd
    tp.window_clamp = min(tp.window_clamp, 65535 << wscale)


def __tcp_select_window(sk):
    """The window we could offer now (receiver-side SWS avoidance, RFC 1122 4.2.3.3)."""
    tp = sk.proto_data
    mss = tp.ack_rcv_mss
    free_space = tcp_space(sk)
    full_space = min(tp.window_clamp, tcp_full_space(sk))
    if free_space < full_space // 2:
        tp.ack_quick = 0
        if free_space < mss:
            return 0
    window = tp.rcv_wnd
    if tp.rcv_wscale:
        window = free_space
        window = (window >> tp.rcv_wscale) << tp.rcv_wscale
        if window == 0 and free_space >= (1 << tp.rcv_wscale):
            window = 1 << tp.rcv_wscale
    else:
        if window <= free_space - mss or window > free_space:
            window = (free_space // mss) * mss
        elif mss == full_space and free_space > window + full_space // 2:
            window = free_space
    return window


def tcp_receive_window(tp):
    win = seq_sub(seq_add(tp.rcv_wup, tp.rcv_wnd), tp.rcv_nxt)
    return max(win, 0)


def tcp_select_window(sk):
    """The window field of an outgoing segment: never shrinks what we offered."""
    tp = sk.proto_data
    cur_win = tcp_receive_window(tp)
    new_win = __tcp_select_window(sk)
    if new_win < cur_win:
        # RFC 9293 3.8.6.2.2: do not shrink the window (round up to the scale unit).
        unit = 1 << tp.rcv_wscale
        new_win = (cur_win + unit - 1) // unit * unit
    tp.rcv_wnd = new_win
    tp.rcv_wup = tp.rcv_nxt
    limit = 65535 << tp.rcv_wscale if tp.wscale_ok else 65535
    new_win = min(new_win, limit)
    return new_win >> tp.rcv_wscale


# ------------------------------------------------------------------ options

def tcp_syn_options(sk, mss, wscale, ts, sack, tsval, tsecr):
    """MSS, SACK-permitted, timestamps, window scale: Linux's order and NOP padding."""
    out = bytearray(struct.pack("!BBH", TCPOPT_MSS, 4, mss))
    if ts:
        if sack:
            out += bytes((TCPOPT_SACK_PERM, 2))
        else:
            out += bytes((TCPOPT_NOP, TCPOPT_NOP))
        out += struct.pack("!BBII", TCPOPT_TIMESTAMP, 10, tsval, tsecr)
    elif sack:
        out += bytes((TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK_PERM, 2))
    if wscale is not None:
        out += bytes((TCPOPT_NOP, TCPOPT_WINDOW, 3, wscale))
    return bytes(out)


def tcp_established_options(sk):
    tp = sk.proto_data
    out = bytearray()
    if tp.tstamp_ok:
        out += struct.pack("!BBBBII", TCPOPT_NOP, TCPOPT_NOP, TCPOPT_TIMESTAMP, 10,
                           tcp_time_stamp(sk), tp.ts_recent)
    if tp.sack_ok and tp.selective_acks:
        blocks = tp.selective_acks[:3 if tp.tstamp_ok else 4]
        out += bytes((TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK, 2 + 8 * len(blocks)))
        for start, end in blocks:
            out += struct.pack("!II", start, end)
    return bytes(out)


# ------------------------------------------------------------------ building segments

def tcp_alloc_skb(payload_len=0):
    skb = alloc_skb(MAX_TCP_HEADER + payload_len)
    skb_reserve(skb, MAX_TCP_HEADER)
    return skb


def tcp_queue_data(sk, chunk, goal):
    """Append user bytes to the write queue, filling the last skb up to goal."""
    tp = sk.proto_data
    q = tp.write_queue
    pos = 0
    n = len(chunk)
    while pos < n:
        skb = q[-1] if q else None
        if skb is None or skb.cb.tcp_flags & (TCPHDR_FIN | TCPHDR_SYN) or skb.len >= goal \
                or skb.end - skb.tail <= 0:
            skb = tcp_alloc_skb(goal)
            skb.cb = TcpSkbCb(tp.write_seq, tp.write_seq, TCPHDR_ACK)
            q.append(skb)
        take = min(n - pos, goal - skb.len, skb.end - skb.tail)
        skb_add_data_nocache(sk, skb, chunk[pos:pos + take])
        pos += take
        skb.cb.end_seq = seq_add(skb.cb.end_seq, take)
        tp.write_seq = seq_add(tp.write_seq, take)
        sk.sk_wmem_alloc += take


def tcp_transmit_skb(sk, skb, clone_it=True, rcv_nxt=None):
    """Push the TCP header (and options) in front of a clone and send it (RFC 9293 3.1)."""
    tp = sk.proto_data
    net = sk.net
    cb = skb.cb
    if clone_it:
        cb.when = net.clock()
        # A clone of an earlier transmit still queued (e.g. waiting on ARP)
        # shares our headroom: copy instead, as Linux does with pskb_copy.
        skb = skb_copy(skb) if skb.shinfo.dataref > 1 else skb_clone(skb)
    flags = cb.tcp_flags
    if flags & TCPHDR_SYN:
        mss = tp.advmss
        opts = tcp_syn_options(sk, mss, tp.rcv_wscale if tp.wscale_ok else None,
                               tp.tstamp_ok, tp.sack_ok, tcp_time_stamp(sk), tp.ts_recent)
        window = min(tp.rcv_wnd, 65535)
    else:
        opts = tcp_established_options(sk)
        window = tcp_select_window(sk)
    if len(opts) % 4:
        opts += bytes(4 - len(opts) % 4)
    hlen = TCP_HLEN + len(opts)
    datalen = skb.len
    off = skb_push(skb, hlen)
    ack = tp.rcv_nxt if rcv_nxt is None else rcv_nxt
    tcphdr.pack_into(skb.buf, off, sk.inet_sport, sk.inet_dport, cb.seq,
                     ack if flags & TCPHDR_ACK else 0, (hlen // 4) << 4, flags, window, 0, 0)
    if opts:
        skb.buf[off + TCP_HLEN:off + hlen] = opts
    skb.transport_header = off
    if flags & TCPHDR_ACK:
        tcp_event_ack_sent(sk)
    if datalen:
        tp.data_segs_out += 1
        tp.bytes_sent += datalen
        tp.last_data_sent = net.clock()
    tp.segs_out += 1
    net.mib["Tcp"]["OutSegs"] += 1
    if flags & TCPHDR_RST:
        net.mib["Tcp"]["OutRsts"] += 1
    return ip_queue_xmit(sk, skb)


def tcp_v4_send_check(skb, saddr, daddr):
    buf = skb.buf
    t = skb.transport_header
    n = skb.tail - t
    s = csum_tcpudp_nofold(saddr, daddr, n, IPPROTO_TCP)
    c = csum_fold(csum_partial(buf, t, skb.tail, s))
    buf[t + 16] = c >> 8
    buf[t + 17] = c & 0xFF


def tcp_route(sk):
    """The socket's cached route (re-looked up when routes change)."""
    rt = __sk_dst_check(sk)
    if rt is None:
        rt = ip_route_output_flow(sk.net, sk.inet_daddr, sk.inet_saddr, sk.sk_bound_dev_if)
        sk_dst_set(sk, rt)
    return rt


def ip_queue_xmit(sk, skb):
    """Route, then build the IP header (DF: TCP does path MTU discovery) and send."""
    net = sk.net
    try:
        rt = tcp_route(sk)
    except KernelError as e:
        sk.sk_err_soft = e.errno
        consume_skb(skb)
        return -e.errno
    skb.dst = rt
    if rt.dev.features & NETIF_F_CSUM_MASK:
        # Checksum offload (CHECKSUM_PARTIAL): leave the pseudo-header sum in
        # the field; the device, or skb_checksum_help before a device that
        # cannot, completes it (Linux: __tcp_v4_send_check).
        t = skb.transport_header
        c = csum_tcpudp_nofold(sk.inet_saddr, sk.inet_daddr, skb.tail - t, IPPROTO_TCP)
        skb.buf[t + 16] = c >> 8
        skb.buf[t + 17] = c & 0xFF
        skb.ip_summed = CHECKSUM_PARTIAL
        skb.csum_start = t
        skb.csum_offset = 16
    else:
        tcp_v4_send_check(skb, sk.inet_saddr, sk.inet_daddr)
    ttl = sk.uc_ttl if sk.uc_ttl >= 0 else net.sysctl["net.ipv4.ip_default_ttl"]
    ip_build_header(skb, sk.inet_saddr, sk.inet_daddr, IPPROTO_TCP, ttl, sk.tos,
                    df=sk.pmtudisc != 0)
    skb.priority = sk.sk_priority
    skb.mark = sk.sk_mark
    tracer = net.tracer
    if tracer is not None:
        tracer.send_hit("tcp_transmit_skb")
        tracer.send_hit("ip_queue_xmit")
        tracer.attach(skb)
        if skb.trace is not None and tracer.pending is None and not _first_hits(skb):
            # A segment sent from a softirq or a timer (ACK, retransmission):
            # its path starts here.
            skb.trace.hit("tcp_transmit_skb")
            skb.trace.hit("ip_queue_xmit")
    return ip_local_out(net, sk, skb)


def _first_hits(skb):
    """True if attach() already wrote the send path's pending hits for skb."""
    ring = skb.trace.tracer.ring
    return bool(ring) and ring[-1][0] == skb.trace.id and ring[-1][4] == "ip_queue_xmit"


def tcp_event_ack_sent(sk):
    """An ACK went out: no delayed ACK is owed any more."""
    tp = sk.proto_data
    if tp.ack_pending:
        tp.ack_pending = False
        tp.ack_rcvd_since = 0
        sk.net.del_timer(tp.ack_timer)
    if tp.ack_quick:
        tp.ack_quick -= 1 if tp.ack_quick > 0 else 0


# ------------------------------------------------------------------ sending data

def tcp_packets_in_flight(tp):
    return tp.packets_out - (tp.sacked_out + tp.lost_out) + tp.retrans_out


def tcp_skb_pcount(skb, mss=None):
    """The segments skb counts for: stored when it was sent (Linux: tcp_gso_segs),
    so later MSS changes never make packets_out drift."""
    return skb.cb.pcount


def tcp_set_skb_tso_segs(skb, mss):
    """Count skb in segments of mss (tcp_set_skb_tso_segs)."""
    cb = skb.cb
    cb.mss = mss
    cb.pcount = max(1, (skb.len + mss - 1) // mss) if skb.len else 1
    return cb.pcount


def tcp_nagle_test(tp, skb, mss, nonagle):
    """RFC 896 / Minshall: hold a small segment while data is unacknowledged."""
    if nonagle & TCP_NAGLE_PUSH and not nonagle & TCP_NAGLE_CORK and not tp.cork:
        if nonagle & TCP_NAGLE_OFF:
            return True
    if skb.cb.tcp_flags & TCPHDR_FIN:
        return True
    if skb.len >= mss:
        return True
    if nonagle & TCP_NAGLE_CORK or tp.cork:
        return False
    if nonagle & TCP_NAGLE_OFF:
        return True
    return tp.packets_out == 0


def tcp_split(sk, skb, length):
    """Cut the first length bytes of a write-queue skb off into their own skb."""
    rest = tcp_alloc_skb(skb.len - length)
    off = skb_put(rest, skb.len - length)
    rest.buf[off:rest.tail] = skb.buf[skb.data + length:skb.tail]
    cb = skb.cb
    rest.cb = TcpSkbCb(seq_add(cb.seq, length), cb.end_seq, cb.tcp_flags)
    cb.end_seq = seq_add(cb.seq, length)
    cb.tcp_flags &= ~(TCPHDR_FIN | TCPHDR_PSH)
    skb.tail = skb.data + length
    skb.len = length
    return rest


def tcp_fragment(sk, skb, length):
    """Split an skb of the retransmit queue after length bytes (tcp_fragment).

    SACK blocks and retransmissions work per MSS, while the queue may hold
    GSO super-segments: cut them where the peer's view of them changes.
    """
    tp = sk.proto_data
    q = tp.rtx_queue
    cb = skb.cb
    mss = cb.mss or tcp_current_mss(sk)
    old = cb.pcount
    i = q.index(skb)
    rest = tcp_split(sk, skb, length)
    rcb = rest.cb
    rcb.sacked, rcb.when, rcb.retrans, rcb.first_tx = cb.sacked, cb.when, cb.retrans, cb.first_tx
    q.insert(i + 1, rest)
    delta = tcp_set_skb_tso_segs(skb, mss) + tcp_set_skb_tso_segs(rest, mss) - old
    if delta:
        tp.packets_out += delta
        if cb.sacked & TCPCB_SACKED_ACKED:
            tp.sacked_out += delta
        if cb.sacked & TCPCB_SACKED_RETRANS:
            tp.retrans_out += delta
        if cb.sacked & TCPCB_LOST:
            tp.lost_out += delta
    return rest


def tcp_write_xmit(sk, mss_now, nonagle, push_one=False):
    """Send queued data as far as cwnd, the peer's window and Nagle allow."""
    from .tcp_timer import ICSK_TIME_RETRANS, inet_csk_reset_xmit_timer, tcp_check_probe_timer
    tp = sk.proto_data
    if sk.net.tracer is not None:
        sk.net.tracer.send_hit("tcp_write_xmit")
    q = tp.write_queue
    sent = 0
    is_cwnd_limited = False
    while q:
        skb = q[0]
        cwnd_quota = tp.snd_cwnd - tcp_packets_in_flight(tp)
        if cwnd_quota <= 0:
            is_cwnd_limited = True
            break
        cb = skb.cb
        wnd_end = seq_add(tp.snd_una, tp.snd_wnd)
        if after(cb.end_seq, wnd_end) and skb.len:
            room = seq_sub(wnd_end, cb.seq)
            if room <= 0 or (room < mss_now and room < skb.len and tp.packets_out):
                break        # receiver window full (tcp_snd_wnd_test)
            if room < skb.len:
                q.insert(1, tcp_split(sk, skb, room))
        limit = mss_now * min(cwnd_quota, max(1, tcp_size_goal(sk, mss_now) // mss_now))
        if skb.len > limit:
            q.insert(1, tcp_split(sk, skb, limit))
        if not tcp_nagle_test(tp, skb, mss_now, nonagle if q[0] is q[-1] else TCP_NAGLE_PUSH):
            break
        pcount = tcp_set_skb_tso_segs(skb, mss_now)
        if skb.len > mss_now:
            skb.shinfo.gso_size = mss_now
            skb.shinfo.gso_segs = pcount
            skb.shinfo.gso_type = 1          # SKB_GSO_TCPV4
        else:
            skb.shinfo.gso_size = 0
        q.popleft()
        if not cb.first_tx:
            cb.first_tx = sk.net.clock()
        tcp_transmit_skb(sk, skb)
        tp.rtx_queue.append(skb)
        tp.snd_nxt = cb.end_seq if after(cb.end_seq, tp.snd_nxt) else tp.snd_nxt
        tp.packets_out += pcount
        sent += 1
        if push_one:
            break
    if tp.packets_out and not tp.retransmit_timer.pending:
        inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS, tp.rto)
    if not sent and q and not tp.packets_out:
        tcp_check_probe_timer(sk)
    tcp_cwnd_validate(tp, is_cwnd_limited or tcp_packets_in_flight(tp) >= tp.snd_cwnd)
    return sent


def tcp_cwnd_validate(tp, is_cwnd_limited):
    """Remember, per window of data, how much of cwnd was used (tcp_cwnd_validate)."""
    if not before(tp.snd_una, tp.cwnd_usage_seq) or is_cwnd_limited or \
            tp.packets_out > tp.max_packets_out:
        tp.max_packets_out = tp.packets_out
        tp.cwnd_usage_seq = tp.snd_nxt
        tp.is_cwnd_limited = is_cwnd_limited


def tcp_push(sk, mss, flags=0):
    """tcp_push: mark the last queued skb PSH and try to send."""
    tp = sk.proto_data
    if sk.net.tracer is not None:
        sk.net.tracer.send_hit("tcp_push")
    if not tp.write_queue:
        return
    last = tp.write_queue[-1]
    last.cb.tcp_flags |= TCPHDR_PSH
    tp.pushed_seq = tp.write_seq
    nonagle = tp.nonagle | (TCP_NAGLE_PUSH if not tp.cork else TCP_NAGLE_CORK)
    __tcp_push_pending_frames(sk, mss, nonagle)


def __tcp_push_pending_frames(sk, cur_mss, nonagle):
    """Send what the write queue holds (a closed socket sends nothing)."""
    if sk.net.tracer is not None:
        sk.net.tracer.send_hit("__tcp_push_pending_frames")
    if sk.sk_state == TCP_CLOSE:
        return
    tcp_write_xmit(sk, cur_mss, nonagle)


def tcp_push_pending_frames(sk):
    tp = sk.proto_data
    if tp.write_queue:
        __tcp_push_pending_frames(sk, tcp_current_mss(sk), tp.nonagle | TCP_NAGLE_PUSH if not tp.cork
                                  else TCP_NAGLE_CORK)


def tcp_retransmit_skb(sk, skb):
    """Send skb (already sent once) again (RFC 9293 3.8.1)."""
    tp = sk.proto_data
    net = sk.net
    cb = skb.cb
    if before(cb.end_seq, tp.snd_una) or cb.end_seq == tp.snd_una:
        return -1
    if before(cb.seq, tp.snd_una):
        # Partly acknowledged: trim the front (tcp_trim_head).
        n = seq_sub(tp.snd_una, cb.seq)
        skb.data += n
        skb.len -= n
        cb.seq = tp.snd_una
        sk.sk_wmem_alloc -= n
        old = cb.pcount
        tp.packets_out -= old - tcp_set_skb_tso_segs(skb, cb.mss or tcp_current_mss(sk))
    mss = tcp_current_mss(sk)
    if skb.len > mss and skb in tp.rtx_queue:
        tcp_fragment(sk, skb, mss)          # retransmit one MSS, not a whole super-segment
    skb.shinfo.gso_size = 0
    if tcp_transmit_skb(sk, skb) < 0:
        return -1
    net.mib["Tcp"]["RetransSegs"] += cb.pcount
    tp.total_retrans += 1
    tp.bytes_retrans += skb.len
    if not cb.sacked & TCPCB_SACKED_RETRANS:
        cb.sacked |= TCPCB_SACKED_RETRANS
        tp.retrans_out += cb.pcount
    cb.retrans += 1
    if not tp.retrans_stamp:
        tp.retrans_stamp = cb.first_tx or net.clock()
    return 0


def tcp_send_ack(sk, rcv_nxt=None):
    """A pure ACK (RFC 9293 3.8.6.3)."""
    tp = sk.proto_data
    if sk.sk_state == TCP_CLOSE:
        return
    skb = tcp_alloc_skb()
    skb.cb = TcpSkbCb(tp.snd_nxt, tp.snd_nxt, TCPHDR_ACK)
    tcp_transmit_skb(sk, skb, clone_it=False, rcv_nxt=rcv_nxt)


def tcp_send_delayed_ack(sk):
    """Owe an ACK: send it within ato (40 ms .. 200 ms), unless something carries it."""
    tp = sk.proto_data
    net = sk.net
    ato = tp.ack_ato
    if tp.srtt:
        ato = min(ato, max(tp.srtt / 2, 0.04) if tp.ack_pingpong else ato)
    ato = max(0.04, min(ato, 0.2))
    deadline = net.clock() + ato
    if tp.ack_pending and tp.ack_timer.pending and tp.ack_timer.expires <= deadline:
        return
    tp.ack_pending = True
    net.mod_timer(tp.ack_timer, deadline)


def tcp_send_fin(sk):
    """Queue our FIN after the data (RFC 9293 3.6); it goes out even past Nagle."""
    tp = sk.proto_data
    q = tp.write_queue
    if q and not q[-1].cb.tcp_flags & TCPHDR_FIN:
        q[-1].cb.tcp_flags |= TCPHDR_FIN
        q[-1].cb.end_seq = seq_add(q[-1].cb.end_seq, 1)
    else:
        skb = tcp_alloc_skb()
        skb.cb = TcpSkbCb(tp.write_seq, seq_add(tp.write_seq, 1), TCPHDR_ACK | TCPHDR_FIN)
        q.append(skb)
    tp.write_seq = seq_add(tp.write_seq, 1)
    tp.fin_sent = True
    tcp_write_xmit(sk, tcp_current_mss(sk), TCP_NAGLE_OFF | TCP_NAGLE_PUSH)


def tcp_send_active_reset(sk):
    """Abort: RST|ACK with our next sequence number."""
    tp = sk.proto_data
    skb = tcp_alloc_skb()
    skb.cb = TcpSkbCb(tp.snd_nxt, tp.snd_nxt, TCPHDR_ACK | TCPHDR_RST)
    tcp_transmit_skb(sk, skb, clone_it=False)


def tcp_connect_init(sk):
    """Pick the MSS and window for a new connection (tcp_connect_init)."""
    from .route import ip_dst_mtu
    tp = sk.proto_data
    net = sk.net
    rt = tcp_route(sk)
    mtu = ip_dst_mtu(net, rt, sk.inet_daddr)
    tp.advmss = min(min(mtu, IPV4_MAX_PMTU) - 40, tp.user_mss or 65535)
    tp.mss_clamp = tp.user_mss or 65535
    tp.tstamp_ok = bool(tcp_sysctl(net, "tcp_timestamps"))
    tp.wscale_ok = bool(tcp_sysctl(net, "tcp_window_scaling"))
    tp.sack_ok = bool(tcp_sysctl(net, "tcp_sack"))
    tcp_sync_mss(sk, mtu)
    # Rounded to the full advmss: no timestamp has been received yet (Linux: 64240).
    tcp_select_initial_window(sk, tp.advmss)
    tp.rcv_nxt = 0
    tp.rcv_wup = 0
    tp.copied_seq = 0
    tp.snd_una = tp.isn
    tp.snd_nxt = tp.isn
    tp.write_seq = tp.isn
    tp.pushed_seq = tp.isn
    tp.snd_wnd = 0
    tp.ack_rcv_mss = min(tp.advmss, 536)


def tcp_connect(sk):
    """Send the SYN (RFC 9293 3.5) and arm its retransmission."""
    from .tcp_timer import ICSK_TIME_RETRANS, inet_csk_reset_xmit_timer
    tp = sk.proto_data
    tcp_connect_init(sk)
    skb = tcp_alloc_skb()
    skb.cb = TcpSkbCb(tp.isn, seq_add(tp.isn, 1), TCPHDR_SYN)
    skb.cb.first_tx = sk.net.clock()
    tp.write_seq = tp.snd_nxt = seq_add(tp.isn, 1)
    tp.retrans_stamp = sk.net.clock()
    tcp_transmit_skb(sk, skb)
    tp.rtx_queue.append(skb)
    tp.packets_out += 1
    sk.net.mib["Tcp"]["ActiveOpens"] += 1
    inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS, tp.rto)


def tcp_xmit_probe_skb(sk, urgent=False):
    """A segment the peer must ACK: seq snd_una - 1 (a window or keepalive probe)."""
    tp = sk.proto_data
    skb = tcp_alloc_skb()
    seq = tp.snd_una if urgent else seq_add(tp.snd_una, -1)
    skb.cb = TcpSkbCb(seq, seq, TCPHDR_ACK)
    tcp_transmit_skb(sk, skb, clone_it=False)


def tcp_write_wakeup(sk):
    """Probe the window: send new data if any fits, else a bare probe."""
    tp = sk.proto_data
    if sk.sk_state == TCP_CLOSE:
        return -1
    q = tp.write_queue
    if q and before(q[0].cb.seq, seq_add(tp.snd_una, tp.snd_wnd)):
        mss = tcp_current_mss(sk)
        skb = q[0]
        room = max(1, seq_sub(seq_add(tp.snd_una, tp.snd_wnd), skb.cb.seq))
        if skb.len > min(room, mss):
            q.insert(1, tcp_split(sk, skb, min(room, mss)))
        q.popleft()
        tcp_set_skb_tso_segs(skb, mss)
        tcp_transmit_skb(sk, skb)
        tp.rtx_queue.append(skb)
        tp.snd_nxt = skb.cb.end_seq
        tp.packets_out += skb.cb.pcount
        return 0
    tcp_xmit_probe_skb(sk)
    return 1


def tcp_send_probe0(sk):
    """The persist timer fired: probe the zero window, back off (RFC 9293 3.8.6.1)."""
    from .tcp_timer import ICSK_TIME_PROBE0, inet_csk_reset_xmit_timer
    tp = sk.proto_data
    err = tcp_write_wakeup(sk)
    if tp.packets_out or not tp.write_queue:
        tp.probes_out = 0
        tp.backoff = 0
        if tp.packets_out:
            # New data left with the probe: it needs a retransmission timer
            # (tcp_event_new_data_sent).
            from .tcp_timer import ICSK_TIME_RETRANS as _RT
            inet_csk_reset_xmit_timer(sk, _RT, tp.rto)
        return
    tp.backoff += 1 if tp.backoff < 15 else 0
    tp.probes_out += 1
    when = min(max(tp.rto, 0.2) * (1 << tp.backoff), 120.0)
    inet_csk_reset_xmit_timer(sk, ICSK_TIME_PROBE0, when)
    return err


__all__ = ["tcp_push", "tcp_send_ack", "tcp_send_fin", "tcp_connect", "tcp_write_xmit",
           "TCP_LISTEN", "TCP_SYN_SENT", "TCPHDR_RST", "TCPHDR_ACK", "TCPHDR_SYN"]
