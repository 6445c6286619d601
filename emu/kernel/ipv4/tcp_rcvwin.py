"""TCP receive side: the advertised window, receive-buffer autotuning and the
quick-ACK counts of the delayed-ACK engine.

Linux: net/ipv4/tcp_input.c (tcp_measure_rcv_mss, tcp_grow_window,
tcp_init_buffer_space, tcp_rcv_space_adjust, tcp_initialize_rcv_mss,
tcp_incr_quickack, tcp_event_data_recv), include/net/tcp.h
(tcp_win_from_space, scaling_ratio), net/ipv4/tcp.c (tcp_set_window_clamp).
Split out of tcp_input.py, as the "buffer size and advertised window
tuning" part of tcp_input.c.

rcv_ssthresh is the window TCP is willing to advertise now: it starts at the
initial window, below window_clamp, and grows by about two segments per
data segment that arrives (tcp_grow_window), while the receive buffer
grows with what the reader takes per RTT (tcp_rcv_space_adjust).
Memory is counted in truesize; scaling_ratio is the measured ratio of
payload to truesize (x/256), which turns buffer bytes into window bytes.

Emulation note: truesize is emu's model of an skb's memory (the frame's
buffer plus a fixed overhead, core/skbuff.py), so the measured
scaling_ratio, and the window once it grows past the first flights, follow
emu's buffers, not a given driver's.
"""
from .tcp import (
    TCP_ATO_MIN, TCP_MAX_QUICKACKS, TCP_MIN_MSS, TCP_RMEM_TO_WIN_SCALE, seq_sub,
    tcp_full_space, tcp_space_from_win, tcp_sysctl, tcp_win_from_space,
)
from .tcp_mss import tcp_time_stamp

TCP_MIN_RCVMSS = 536
SOCK_MIN_RCVBUF = 2048 + 2 * 320         # 2 * (2048 + SKB_TRUESIZE overhead), roughly
SOCK_RCVBUF_LOCK = 2
SOCK_SNDBUF_LOCK = 1


def tcp_initialize_rcv_mss(sk):
    """Our first guess of the peer's MSS: low, so that we rather ACK too often."""
    tp = sk.proto_data
    hint = min(tp.advmss, tp.mss_cache, tp.rcv_wnd // 2, TCP_MIN_RCVMSS)
    tp.ack_rcv_mss = max(hint, TCP_MIN_MSS)


def tcp_incr_quickack(sk, max_quickacks=TCP_MAX_QUICKACKS):
    """ACK the next segments at once: as many as half the window holds, at most max."""
    tp = sk.proto_data
    quickacks = tp.rcv_wnd // (2 * tp.ack_rcv_mss) or 2
    quickacks = min(quickacks, max_quickacks)
    if quickacks > tp.ack_quick:
        tp.ack_quick = quickacks


def tcp_enter_quickack_mode(sk, max_quickacks=TCP_MAX_QUICKACKS):
    tp = sk.proto_data
    tcp_incr_quickack(sk, max_quickacks)
    tp.ack_pingpong = False
    tp.ack_ato = TCP_ATO_MIN


def tcp_set_window_clamp(sk, val):
    """A new largest window (tcp_set_window_clamp): rcv_ssthresh follows it down,
    or up as far as the window already offered."""
    tp = sk.proto_data
    old = tp.window_clamp
    new = max(SOCK_MIN_RCVBUF // 2, val)
    if new == old:
        return
    tp.window_clamp = new
    if new < old:
        tp.rcv_ssthresh = min(tp.rcv_ssthresh, new)
    else:
        tp.rcv_ssthresh = max(min(tp.rcv_wnd, new), tp.rcv_ssthresh)


def tcp_measure_rcv_mss(sk, skb):
    """Learn the peer's MSS from full segments, and the payload/truesize ratio
    whenever that MSS changes."""
    tp = sk.proto_data
    length = skb.shinfo.gso_size or skb.len
    if length >= tp.ack_rcv_mss:
        if length != tp.ack_rcv_mss and skb.truesize > 0:
            old_ratio = tp.scaling_ratio
            tp.scaling_ratio = min(255, (skb.len << TCP_RMEM_TO_WIN_SCALE) // skb.truesize) or 1
            if old_ratio != tp.scaling_ratio:
                tcp_set_window_clamp(sk, tcp_win_from_space(sk, sk.sk_rcvbuf))
                if tp.window_clamp < tp.rcv_ssthresh:
                    tp.rcv_ssthresh = tp.window_clamp
        tp.ack_rcv_mss = min(length, tp.advmss)


def __tcp_grow_window(sk, skb, truesize):
    """Slow part of check #2: a segment with a poor len/truesize ratio still
    grows the window while rcv_ssthresh is small against tcp_rmem[2]."""
    tp = sk.proto_data
    truesize = tcp_win_from_space(sk, truesize) >> 1
    window = tcp_win_from_space(sk, tcp_sysctl(sk.net, "tcp_rmem")[2]) >> 1
    while tp.rcv_ssthresh <= window:
        if truesize <= skb.len:
            return 2 * tp.ack_rcv_mss
        truesize >>= 1
        window >>= 1
    return 0


def tcp_grow_window(sk, skb):
    """Open rcv_ssthresh by a couple of segments if such segments will fit
    the receive buffer (tcp_grow_window)."""
    tp = sk.proto_data
    ratio = tp.scaling_ratio
    # tcp_space and tcp_win_from_space written out (once per data segment).
    space = ((sk.sk_rcvbuf - sk.sk_rmem_alloc) * ratio) >> TCP_RMEM_TO_WIN_SCALE
    room = (tp.window_clamp if tp.window_clamp < space else space) - tp.rcv_ssthresh
    if room <= 0:
        return
    truesize = skb.truesize
    if (truesize * ratio) >> TCP_RMEM_TO_WIN_SCALE <= skb.len:
        incr = 2 * tp.advmss
    else:
        incr = __tcp_grow_window(sk, skb, truesize)
    if incr:
        incr = max(incr, 2 * skb.len)
        tp.rcv_ssthresh += min(room, incr)
        tp.ack_quick |= 1


def tcp_event_data_recv(sk, skb):
    """A data segment arrived in order: MSS and ratio, the delayed-ACK timeout
    from the gaps between segments, and the window's growth."""
    tp = sk.proto_data
    now = sk.net.clock()
    tcp_measure_rcv_mss(sk, skb)
    if not tp.ack_lrcvtime:
        # The first data segment: start the delayed-ACK engine in quick-ack mode.
        tcp_incr_quickack(sk, TCP_MAX_QUICKACKS)
        tp.ack_ato = TCP_ATO_MIN
    else:
        m = now - tp.ack_lrcvtime
        if m <= TCP_ATO_MIN / 2:
            tp.ack_ato = tp.ack_ato / 2 + TCP_ATO_MIN / 2
        elif m < tp.ack_ato:
            tp.ack_ato = min(tp.ack_ato / 2 + m, tp.rto)
        elif m > tp.rto:
            # Too long a gap: the sender is restarting; ACK quickly again.
            tcp_incr_quickack(sk, TCP_MAX_QUICKACKS)
    tp.ack_lrcvtime = now
    tp.last_data_recv = now
    tp.ack_rcvd_since += 1
    if skb.len >= 128:
        tcp_grow_window(sk, skb)


def tcp_rcv_rtt_measure_ts(sk, skb, opt):
    """The receiver's RTT from the timestamp a full segment echoes
    (tcp_rcv_rtt_measure_ts, tcp_rcv_rtt_update without window dependence:
    7/8 of the old estimate plus 1/8 of the sample; 1 ms at least)."""
    tp = sk.proto_data
    if opt.tsecr == tp.rcv_rtt_last_tsecr:
        return
    tp.rcv_rtt_last_tsecr = opt.tsecr
    cb = skb.cb
    if seq_sub(cb.end_seq, cb.seq) < tp.ack_rcv_mss:
        return
    delta = (tcp_time_stamp(sk) - opt.tsecr) & 0xFFFFFFFF
    if delta >= 0x7FFFFFFF // 1000:
        return
    m = max(delta, 1) / 1000.0
    tp.rcv_rtt = tp.rcv_rtt + (m - tp.rcv_rtt) / 8 if tp.rcv_rtt else m


def tcp_init_buffer_space(sk):
    """At ESTABLISHED: clamp the window to the buffer less one segment
    (tcp_app_win), start rcv_ssthresh there, and the autotuning's first space."""
    from .tcp_input import tcp_sndbuf_expand
    tp = sk.proto_data
    if not sk.sk_userlocks & SOCK_SNDBUF_LOCK:
        tcp_sndbuf_expand(sk)
    tp.rcv_space_time = sk.net.clock()
    tp.rcv_space_seq = tp.copied_seq
    maxwin = tcp_full_space(sk)
    app_win = tcp_sysctl(sk.net, "tcp_app_win")
    if tp.window_clamp >= maxwin:
        tp.window_clamp = maxwin
        if app_win and maxwin > 4 * tp.advmss:
            tp.window_clamp = max(maxwin - (maxwin >> app_win), 4 * tp.advmss)
    # Force reservation of one segment.
    if app_win and tp.window_clamp > 2 * tp.advmss and tp.window_clamp + tp.advmss > maxwin:
        tp.window_clamp = max(2 * tp.advmss, maxwin - tp.advmss)
    tp.rcv_ssthresh = min(tp.rcv_ssthresh, tp.window_clamp)
    tp.rcv_space = min(tp.rcv_ssthresh, tp.rcv_wnd, 10 * tp.advmss)


def tcp_rcv_space_adjust(sk):
    """Receive-buffer autotuning (DRS): once per RTT, size the buffer for twice
    what the reader took, plus the sender's growth, and let the clamp follow.

    Emulation note: the receiver's RTT comes from timestamps only
    (tcp_rcv_rtt_measure_ts); without them emu falls back to the
    connection's smoothed RTT instead of Linux's per-window measurement.
    """
    tp = sk.proto_data
    now = sk.net.clock()
    if not tp.rcv_space_time:
        tp.rcv_space_time = now
        tp.rcv_space_seq = tp.copied_seq
        return
    rtt = tp.rcv_rtt or tp.srtt
    if not rtt or now - tp.rcv_space_time < rtt:
        return
    copied = seq_sub(tp.copied_seq, tp.rcv_space_seq)
    if copied > tp.rcv_space:
        if tcp_sysctl(sk.net, "tcp_moderate_rcvbuf") and not sk.sk_userlocks & SOCK_RCVBUF_LOCK:
            rcvwin = (copied << 1) + 16 * tp.advmss
            grow = rcvwin * (copied - tp.rcv_space) // max(tp.rcv_space, 1)
            rcvwin += grow << 1
            rcvbuf = min(tcp_space_from_win(sk, rcvwin), tcp_sysctl(sk.net, "tcp_rmem")[2])
            if rcvbuf > sk.sk_rcvbuf:
                sk.sk_rcvbuf = rcvbuf
                tp.window_clamp = tcp_win_from_space(sk, rcvbuf)
        tp.rcv_space = copied
    tp.rcv_space_seq = tp.copied_seq
    tp.rcv_space_time = now
