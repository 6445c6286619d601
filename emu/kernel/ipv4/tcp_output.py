"""TCP output: building segments, what may be sent, ACKs, SYNs, FINs, RSTs.

Linux: net/ipv4/tcp_output.c; RFC 9293, RFC 7323 (window scale,
timestamps), RFC 2018 (SACK), RFC 896 (Nagle), RFC 1122 4.2.3.4, RFC 9438.
"""

from ..core.dev import KernelError
from ..core.dst import __sk_dst_check, sk_dst_set
from ..core.sock import MSG_MORE, skb_add_data_nocache
from ..core.netdevice import NETIF_F_CSUM_MASK, NETIF_F_GSO, NETIF_F_TSO
from ..core.skbuff import (
    CHECKSUM_PARTIAL, SKB_TRUESIZE_OVERHEAD,
    alloc_skb, consume_skb, pskb_expand_head, skb_clone, skb_copy, skb_push, skb_put, skb_reserve,
)
from ..hdr.checksum import csum_fold, csum_partial, csum_tcpudp_nofold
from ..hdr.ip import IPPROTO_TCP
from .ip_output import ip_build_header, ip_local_out
from .route import ip_route_output_flow
from .tcp import (
    MAX_TCP_HEADER, TCP_CA_Recovery, TCP_CLOSE, TCP_HLEN, TCP_LISTEN, TCP_NAGLE_CORK,
    TCP_NAGLE_OFF, TCP_NAGLE_PUSH, TCP_SYN_SENT, TCPCB_LOST, TCPCB_SACKED_ACKED,
    TCPCB_SACKED_RETRANS, TCPHDR_ACK, TCPHDR_FIN, TCPHDR_PSH, TCPHDR_RST, TCPHDR_SYN,
    TcpSkbCb, after, before, seq_add, seq_sub, tcp_full_space, tcp_sysctl, tcphdr,
)
from .tcp_mss import (  # noqa: F401 (split out of tcp_output.c; re-exported)
    GSO_MAX_SIZE, IPV4_MAX_PMTU, __tcp_select_window, tcp_current_mss, tcp_established_options,
    tcp_mtu_to_mss, tcp_receive_window, tcp_select_initial_window, tcp_select_window,
    tcp_size_goal, tcp_sync_mss, tcp_syn_options, tcp_time_stamp,
)


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
        if skb is not None and skb.len < goal and skb.end - skb.tail < goal - skb.len \
                and not skb.cb.tcp_flags & (TCPHDR_FIN | TCPHDR_SYN) and skb.shinfo.dataref == 1:
            # The tail is a piece tso_fragment cut off: later writes still fill
            # it to size_goal (Linux appends page frags to it).
            pskb_expand_head(skb, 0, goal - skb.len - (skb.end - skb.tail))
        if skb is None or skb.cb.tcp_flags & (TCPHDR_FIN | TCPHDR_SYN) or skb.len >= goal \
                or skb.end - skb.tail <= 0:
            skb = tcp_alloc_skb(goal)
            skb.cb = TcpSkbCb(tp.write_seq, tp.write_seq, TCPHDR_ACK)
            q.append(skb)
            tp.nonagle &= ~TCP_NAGLE_PUSH        # skb_entail: a push was for what was queued
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
    now = net.clock()
    if clone_it:
        cb.when = now
        # A clone of an earlier transmit still queued (e.g. waiting on ARP)
        # shares our headroom: copy instead, as Linux does with pskb_copy.
        skb = skb_copy(skb) if skb.shinfo.dataref > 1 else skb_clone(skb)
        if skb.len:
            # skb_set_owner_w(skb, sk) with tcp_wfree: TSQ/autocork accounting.
            # Emulation note: the clone's truesize is its payload plus a fixed
            # overhead (emu's write-queue buffers are allocated at size_goal).
            skb.truesize = skb.len + SKB_TRUESIZE_OVERHEAD
            skb.sk = sk
            skb.destructor = tcp_wfree
            tp.tsq_bytes += skb.truesize
    tp.tcp_wstamp = now
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
    # Counted in segments, a GSO skb for as many as it carries (tcp_skb_pcount).
    pcount = cb.pcount if datalen else 1
    if datalen:
        tp.data_segs_out += pcount
        tp.bytes_sent += datalen
        tcp_event_data_sent(sk)
    tp.segs_out += pcount
    net.mib["Tcp"]["OutSegs"] += pcount
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
                    df=sk.pmtudisc != 0, sk=sk,
                    segs=skb.shinfo.gso_segs if skb.shinfo.gso_size else 1)
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
        # tcp_dec_quickack_mode: only an ACK that was owed uses up a quick ACK.
        if tp.ack_quick:
            tp.ack_quick -= 1
            if not tp.ack_quick:
                tp.ack_ato = 0.04           # leaving quick-ack mode deflates ATO
        tp.ack_pending = False
        tp.ack_rcvd_since = 0
        sk.net.del_timer(tp.ack_timer)


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


def tcp_minshall_check(tp):
    """A small segment we sent is still unacknowledged (Minshall's Nagle)."""
    return after(tp.snd_sml, tp.snd_una) and not after(tp.snd_sml, tp.snd_nxt)


def tcp_minshall_update(tp, mss_now, skb):
    """Remember the end of the last segment sent that was not full-sized."""
    if skb.len < skb.cb.pcount * mss_now:
        tp.snd_sml = skb.cb.end_seq


def tcp_nagle_check(partial, tp, nonagle):
    """True if a partial segment must wait: corked, or Nagle on (RFC 896) with
    data in flight and a small segment of ours unacknowledged (Minshall)."""
    return partial and (bool(nonagle & TCP_NAGLE_CORK) or
                        (not nonagle and tp.packets_out and tcp_minshall_check(tp)))


def tcp_nagle_test(tp, skb, cur_mss, nonagle):
    """May skb (one segment) go now? Full-sized, a FIN, pushed, or Nagle allows it."""
    if nonagle & TCP_NAGLE_PUSH:
        return True
    if skb.cb.tcp_flags & TCPHDR_FIN:
        return True
    return not tcp_nagle_check(skb.len < cur_mss, tp, nonagle)


def tcp_cwnd_test(tp):
    """How many segments cwnd lets out now: at most half of it, so that at
    least two TSO/GSO packets are in flight (tcp_cwnd_test)."""
    in_flight = tcp_packets_in_flight(tp)
    cwnd = tp.snd_cwnd
    if in_flight >= cwnd:
        return 0
    return min(max(cwnd >> 1, 1), cwnd - in_flight)


def tcp_snd_wnd_test(tp, skb, cur_mss):
    """Does the first segment of skb fit the peer's window?"""
    end_seq = skb.cb.end_seq if skb.len <= cur_mss else seq_add(skb.cb.seq, cur_mss)
    return not after(end_seq, seq_add(tp.snd_una, tp.snd_wnd))


def sk_gso_max_size(sk):
    """sk_setup_caps: the device's GSO size less room for the headers (0: no GSO)."""
    dst = sk.sk_dst_cache
    if dst is None or not dst.dev.features & (NETIF_F_TSO | NETIF_F_GSO) or sk.sk_socket is None:
        return 0
    return min(GSO_MAX_SIZE, dst.dev.gso_max_size) - (MAX_TCP_HEADER + 1)


def tcp_pacing_rate(sk):
    """sk_pacing_rate as tcp_update_pacing_rate sets it (bytes/s): 200 % of
    cwnd * mss / srtt in slow start, 120 % after; unlimited before an RTT."""
    tp = sk.proto_data
    if not tp.srtt:
        return 1 << 62
    ratio = 2.0 if tp.snd_cwnd < tp.snd_ssthresh // 2 else 1.2
    return int(tp.mss_cache * max(tp.snd_cwnd, tp.packets_out) * ratio / tp.srtt)


def tcp_tso_autosize(sk, mss_now, min_tso_segs, gso_max_size):
    """Segments per TSO/GSO packet: about 1 ms of data at the pacing rate, plus
    a share of 64 KiB that halves for every 512 us of min RTT (tcp_tso_autosize)."""
    nbytes = tcp_pacing_rate(sk) >> 10                 # sk_pacing_shift 10: ~1 ms
    r = int(sk.proto_data.min_rtt * 1e6) >> tcp_sysctl(sk.net, "tcp_tso_rtt_log")
    if r < 32:
        nbytes += gso_max_size >> r
    nbytes = min(nbytes, gso_max_size)
    return max(nbytes // mss_now, min_tso_segs)


def tcp_tso_segs(sk, mss_now):
    """The most segments one TSO/GSO skb may carry now."""
    gso_max_size = sk_gso_max_size(sk)
    if not gso_max_size:
        return 1
    return tcp_tso_autosize(sk, mss_now, tcp_sysctl(sk.net, "tcp_min_tso_segs"), gso_max_size)


def tcp_tso_should_defer(sk, skb, max_segs):
    """Hold back a TSO/GSO skb that cwnd or the window would cut short, if
    an ACK that opens more room is due soon (tcp_tso_should_defer).

    Returns (defer, is_cwnd_limited). Emulation note: "the last write" is the
    last segment TCP handed to IP (tcp_wstamp), not its departure time.
    """
    tp = sk.proto_data
    now = sk.net.clock()
    if tp.ca_state >= TCP_CA_Recovery:
        return False, False
    if now - tp.tcp_wstamp > 0.001:        # the last write was over 1 ms ago: no burst
        return False, False
    in_flight = tp.packets_out - (tp.sacked_out + tp.lost_out) + tp.retrans_out
    cb = skb.cb
    send_win = (tp.snd_una + tp.snd_wnd - cb.seq) & 0xFFFFFFFF        # seq_sub(una + wnd, seq)
    if send_win > 0x7FFFFFFF:
        send_win -= 0x100000000
    cong_win = (tp.snd_cwnd - in_flight) * tp.mss_cache
    limit = min(send_win, cong_win)
    if limit >= max_segs * tp.mss_cache:       # a full-sized TSO skb can go
        return False, False
    if skb is not tp.write_queue[-1] and limit >= skb.len:
        return False, False                     # mid-queue, all of it sendable
    win_divisor = tcp_sysctl(sk.net, "tcp_tso_win_divisor")
    if win_divisor:
        chunk = min(tp.snd_wnd, tp.snd_cwnd * tp.mss_cache) // win_divisor
        if limit >= chunk:
            return False, False
    elif limit > 3 * tp.mss_cache:
        return False, False
    if not tp.rtx_queue:
        return False, False
    # If the next ACK is likely to come too late (half srtt), do not defer.
    if now - tp.rtx_queue[0].cb.when < tp.srtt / 2:
        return False, False
    if cong_win < send_win:
        if cong_win <= skb.len:
            return True, True
    elif send_win <= skb.len:
        return True, False
    if cb.tcp_flags & TCPHDR_FIN:
        return False, False                     # it will get no more data
    return True, False


def tcp_mss_split_point(sk, skb, mss_now, max_segs, nonagle):
    """Where to cut skb for this send: max_segs segments, the peer's window,
    and, if Nagle or a cork holds partial segments, a whole number of MSS."""
    tp = sk.proto_data
    window = (tp.snd_una + tp.snd_wnd - skb.cb.seq) & 0xFFFFFFFF      # seq_sub(una + wnd, seq)
    if window > 0x7FFFFFFF:
        window -= 0x100000000
    max_len = mss_now * max_segs
    if max_len <= window and skb is not tp.write_queue[-1]:
        return max_len
    needed = min(skb.len, window)
    if max_len <= needed:
        return max_len
    partial = needed % mss_now
    # The last segment is not full-sized: may Nagle let it go with the rest?
    if tcp_nagle_check(partial != 0, tp, nonagle):
        return needed - partial
    return needed


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
    """Send queued data as far as cwnd, the peer's window, Nagle and TSO
    deferral allow (tcp_write_xmit): each skb carries at most
    min(tcp_cwnd_test, tcp_tso_segs) segments."""
    from .tcp_timer import ICSK_TIME_RETRANS, inet_csk_reset_xmit_timer, tcp_check_probe_timer
    tp = sk.proto_data
    if sk.net.tracer is not None:
        sk.net.tracer.send_hit("tcp_write_xmit")
    q = tp.write_queue
    sent = sent_pkts = 0
    is_cwnd_limited = False
    max_segs = tcp_tso_segs(sk, mss_now)
    tp.in_write_xmit = True
    try:
        while q:
            skb = q[0]
            cb = skb.cb
            skb_len = skb.len
            tso_segs = (skb_len + mss_now - 1) // mss_now if skb_len > mss_now else 1
            # tcp_cwnd_test and tcp_snd_wnd_test, written out: this loop runs
            # once per skb sent, and a Python call costs as much as the test.
            in_flight = tp.packets_out - (tp.sacked_out + tp.lost_out) + tp.retrans_out
            cwnd = tp.snd_cwnd
            if in_flight >= cwnd:
                is_cwnd_limited = True
                break
            cwnd_quota = cwnd - in_flight
            if cwnd_quota > cwnd >> 1:
                cwnd_quota = cwnd >> 1 or 1
            end_seq = cb.end_seq if skb_len <= mss_now else (cb.seq + mss_now) & 0xFFFFFFFF
            if ((tp.snd_una + tp.snd_wnd - end_seq) & 0xFFFFFFFF) > 0x7FFFFFFF:
                break                         # receiver window full (after(end_seq, una + wnd))
            if tso_segs == 1:
                if not tcp_nagle_test(tp, skb, mss_now, nonagle if skb is q[-1] else TCP_NAGLE_PUSH):
                    break
            elif not push_one:
                defer, cwnd_limited = tcp_tso_should_defer(sk, skb, max_segs)
                if defer:
                    is_cwnd_limited |= cwnd_limited
                    break
            limit = mss_now
            if tso_segs > 1:
                limit = tcp_mss_split_point(sk, skb, mss_now, min(cwnd_quota, max_segs), nonagle)
            if skb.len > limit:
                q.insert(1, tcp_split(sk, skb, limit))       # tso_fragment
            if cb.end_seq == cb.seq:
                break
            pcount = tcp_set_skb_tso_segs(skb, mss_now)
            skb_len = skb.len
            sh = skb.shinfo
            if skb_len > mss_now:
                sh.gso_size = mss_now
                sh.gso_segs = pcount
                sh.gso_type = 1                  # SKB_GSO_TCPV4
            else:
                sh.gso_size = 0
            q.popleft()
            if not cb.first_tx:
                cb.first_tx = sk.net.clock()
            tcp_transmit_skb(sk, skb)
            tp.rtx_queue.append(skb)
            if ((tp.snd_nxt - cb.end_seq) & 0xFFFFFFFF) > 0x7FFFFFFF:      # after(end_seq, snd_nxt)
                tp.snd_nxt = cb.end_seq
            tp.packets_out += pcount
            if skb_len < pcount * mss_now:
                tp.snd_sml = cb.end_seq              # tcp_minshall_update
            sent += 1
            sent_pkts += pcount
            if push_one:
                break
    finally:
        tp.in_write_xmit = False
    if sent_pkts and tp.ca_state == 3:         # TCP_CA_Recovery: PRR counts what it sent
        tp.prr_out += sent_pkts
    if tp.packets_out and not tp.retransmit_timer.pending:
        inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS, tp.rto)
    if not sent and q and not tp.packets_out:
        tcp_check_probe_timer(sk)
    is_cwnd_limited |= tcp_packets_in_flight(tp) >= tp.snd_cwnd
    if sent or is_cwnd_limited:
        tcp_cwnd_validate(tp, is_cwnd_limited)
    return sent


def tcp_cwnd_validate(tp, is_cwnd_limited):
    """Remember, per window of data, how much of cwnd was used (tcp_cwnd_validate)."""
    if not before(tp.snd_una, tp.cwnd_usage_seq) or is_cwnd_limited or \
            tp.packets_out > tp.max_packets_out:
        tp.max_packets_out = tp.packets_out
        tp.cwnd_usage_seq = tp.snd_nxt
        tp.is_cwnd_limited = is_cwnd_limited


def tcp_should_autocork(sk, skb, size_goal):
    """Hold a not yet full skb while earlier segments still sit in a qdisc or
    device: their TX completion will push it, with what the next writes add
    (tcp_should_autocork).

    Emulation note: Linux compares sk_wmem_alloc (the memory of segments
    below TCP) with the skb's truesize; emu counts the payload plus a fixed
    overhead of each segment not yet freed by the qdisc or driver (tsq_bytes;
    the + 1 is sk_wmem_alloc's base reference, so an equal skb still corks).
    """
    tp = sk.proto_data
    return skb.len < size_goal and tcp_sysctl(sk.net, "tcp_autocorking") and \
        bool(tp.rtx_queue) and tp.tsq_bytes + 1 > skb.len + SKB_TRUESIZE_OVERHEAD and \
        not skb.cb.tcp_flags & TCPHDR_FIN


def tcp_wfree(skb):
    """A transmitted segment left the qdisc or driver (tcp_wfree): if a push
    was autocorked, send now (Linux: the TSQ tasklet, tcp_tsq_handler)."""
    sk = skb.sk
    if sk is None or sk.proto_data is None:
        return
    tp = sk.proto_data
    tp.tsq_bytes -= skb.truesize
    if tp.tsq_throttled and not tp.in_write_xmit and sk.sk_state != TCP_CLOSE:
        tp.tsq_throttled = False
        if tp.write_queue:
            tcp_write_xmit(sk, tcp_current_mss(sk), tp.nonagle)


def tcp_push(sk, mss, flags=0, size_goal=0):
    """tcp_push: mark the last queued skb PSH (not with MSG_MORE), autocork,
    and try to send with the socket's Nagle setting."""
    tp = sk.proto_data
    if sk.net.tracer is not None:
        sk.net.tracer.send_hit("tcp_push")
    if not tp.write_queue:
        return
    last = tp.write_queue[-1]
    if not flags & MSG_MORE or after(tp.write_seq, seq_add(tp.pushed_seq, tp.max_window >> 1)):
        last.cb.tcp_flags |= TCPHDR_PSH                  # tcp_mark_push (or forced_push)
        tp.pushed_seq = tp.write_seq
    if size_goal and tcp_should_autocork(sk, last, size_goal):
        if not tp.tsq_throttled:
            sk.net.mib["TcpExt"]["TCPAutoCorking"] += 1
            tp.tsq_throttled = True
        return
    nonagle = TCP_NAGLE_CORK if flags & MSG_MORE else tp.nonagle
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
        __tcp_push_pending_frames(sk, tcp_current_mss(sk), tp.nonagle)


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
    if skb.len > mss:                   # (skb is in rtx_queue: both callers take it from there)
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


def tcp_event_data_sent(sk):
    """Data left (tcp_event_data_sent): a reply within the ATO of the last
    received segment makes the connection interactive (pingpong), so the
    ACK of the peer's next request waits for the reply to carry it.

    Linux counts replies against net.ipv4.tcp_pingpong_thresh, 1 by default;
    emu keeps the flag.
    """
    tp = sk.proto_data
    now = sk.net.clock()
    tp.last_data_sent = now
    if tp.ack_lrcvtime and now - tp.ack_lrcvtime < tp.ack_ato:
        tp.ack_pingpong = True


def tcp_send_delayed_ack(sk):
    """Owe an ACK: send it within ato (40 ms .. 200 ms), unless something carries it."""
    tp = sk.proto_data
    net = sk.net
    ato = tp.ack_ato
    if ato > 0.04:                                    # TCP_DELACK_MIN
        # At most 500 ms (200 ms in interactive mode), and never more than
        # one RTT when one is known (tcp_send_delayed_ack): so a bulk
        # receiver's delayed ACK cannot race the sender's 200 ms RTO floor.
        max_ato = 0.2 if tp.ack_pingpong else 0.5
        if tp.srtt:
            max_ato = min(max_ato, max(tp.srtt, 0.04))
        ato = min(ato, max_ato)
    # An ATO of 0 (no data received yet: a bare FIN) sends it at the next tick.
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
    __tcp_push_pending_frames(sk, tcp_current_mss(sk), TCP_NAGLE_OFF)


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
    if sk.sk_userlocks & 2 and (tp.window_clamp > tcp_full_space(sk) or not tp.window_clamp):
        tp.window_clamp = tcp_full_space(sk)         # SO_RCVBUF set: no larger window
    # Rounded to the full advmss: no timestamp has been received yet (Linux: 64240).
    tp.rcv_wnd, tp.window_clamp, tp.rcv_wscale = tcp_select_initial_window(
        sk, tcp_full_space(sk), tp.advmss, tp.window_clamp, tp.wscale_ok)
    tp.rcv_ssthresh = tp.rcv_wnd
    tp.rcv_nxt = 0
    tp.rcv_wup = 0
    tp.copied_seq = 0
    tp.snd_una = tp.isn
    tp.snd_sml = tp.isn
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
