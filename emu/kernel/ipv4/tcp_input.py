"""TCP input: segments arriving on a connection (RFC 9293 3.10.7).

Linux: net/ipv4/tcp_input.c; RFC 9293, RFC 5961 (blind attacks), RFC 6298
(RTO), RFC 5681 and RFC 6582 (fast retransmit, NewReno), RFC 2018 and
RFC 6675 (SACK), RFC 7323 (PAWS), RFC 1122 4.2.3.2 (delayed ACK).
"""
import struct

from ..core.skbuff import consume_skb, kfree_skb
from ..core.sock import EPOLLIN, EPOLLOUT, RCV_SHUTDOWN, SEND_SHUTDOWN, sk_data_ready, sk_error_report
from .tcp import (
    TCP_CA_Disorder, TCP_CA_Loss, TCP_CA_Open, TCP_CLOSE, TCP_CLOSE_WAIT, TCP_CLOSING, TCP_ESTABLISHED, TCP_FIN_WAIT1,
    TCP_FIN_WAIT2, TCP_LAST_ACK, TCP_MAX_QUICKACKS, TCP_MSS_DEFAULT, TCP_PAWS_24DAYS, TCP_RTO_MAX,
    TCP_RTO_MIN, TCP_SYN_RECV, TCP_SYN_SENT, TCP_TIME_WAIT, TCPCB_LOST,
    TCPCB_SACKED_ACKED, TCPCB_SACKED_RETRANS, TCPHDR_ACK, TCPHDR_FIN, TCPHDR_RST,
    TCPHDR_SYN, TCPOPT_EOL, TCPOPT_MSS, TCPOPT_NOP, TCPOPT_SACK, TCPOPT_SACK_PERM,
    TCPOPT_TIMESTAMP, TCPOPT_WINDOW, after, before, seq_add, seq_sub,
    tcp_done, tcp_set_state, tcp_sysctl,
)
from .tcp_output import (
    __tcp_select_window, tcp_current_mss, tcp_push_pending_frames, tcp_receive_window, tcp_send_ack,
    tcp_send_delayed_ack, tcp_set_skb_tso_segs, tcp_sync_mss, tcp_time_stamp,
)
from .tcp_recovery import (
    tcp_fastretrans_alert, tcp_sack_hints_una, tcp_sacktag_write_queue, tcp_xmit_retransmit_queue,
)
from .tcp_rcvwin import (  # noqa: F401 (re-exported: Linux has them in tcp_input.c)
    tcp_enter_quickack_mode, tcp_event_data_recv, tcp_incr_quickack, tcp_init_buffer_space,
    tcp_initialize_rcv_mss, tcp_rcv_rtt_measure_ts, tcp_rcv_space_adjust,
)
from .tcp_timer import (
    ICSK_TIME_PROBE0, inet_csk_clear_xmit_timer, tcp_rearm_rto, tcp_set_keepalive,
)

FLAG_DATA = 0x01
FLAG_WIN_UPDATE = 0x02
FLAG_DATA_ACKED = 0x04
FLAG_RETRANS_DATA_ACKED = 0x08
FLAG_SYN_ACKED = 0x10
FLAG_DATA_SACKED = 0x20
FLAG_SND_UNA_ADVANCED = 0x400


class TcpOptions:
    """struct tcp_options_received."""

    __slots__ = ("mss", "wscale", "sack_ok", "tsval", "tsecr", "saw_tstamp", "sack")

    def __init__(self):
        self.mss = 0
        self.wscale = None
        self.sack_ok = False
        self.tsval = 0
        self.tsecr = 0
        self.saw_tstamp = False
        self.sack = ()


def tcp_parse_options(buf, off, end, syn):
    """Read the options between off and end; malformed options end the parse safely."""
    opt = TcpOptions()
    sacks = []
    while off < end:
        kind = buf[off]
        if kind == TCPOPT_EOL:
            break
        if kind == TCPOPT_NOP:
            off += 1
            continue
        if off + 1 >= end:
            break
        size = buf[off + 1]
        if size < 2 or off + size > end:
            break                     # "silly options": stop (tcp_parse_options)
        if kind == TCPOPT_MSS and size == 4 and syn:
            opt.mss = (buf[off + 2] << 8) | buf[off + 3]
        elif kind == TCPOPT_WINDOW and size == 3 and syn:
            opt.wscale = min(buf[off + 2], 14)          # RFC 7323 2.3: clamp to 14
        elif kind == TCPOPT_SACK_PERM and size == 2 and syn:
            opt.sack_ok = True
        elif kind == TCPOPT_TIMESTAMP and size == 10:
            opt.saw_tstamp = True
            opt.tsval, opt.tsecr = struct.unpack_from("!II", buf, off + 2)
        elif kind == TCPOPT_SACK and size >= 10 and (size - 2) % 8 == 0 and not syn:
            for i in range(off + 2, off + size, 8):
                sacks.append(struct.unpack_from("!II", buf, i))
        off += size
    opt.sack = tuple(sacks)
    return opt


# ------------------------------------------------------------------ RTT and RTO

def tcp_rtt_estimator(sk, rtt):
    """RFC 6298 2.2-2.3: SRTT and RTTVAR from one sample (seconds)."""
    tp = sk.proto_data
    if rtt <= 0:
        rtt = 1e-6
    # Emulation note: Linux keeps a windowed minimum (tcp_min_rtt_wlen, 5 min);
    # emu keeps the minimum of the connection.
    tp.min_rtt = min(tp.min_rtt, rtt) if tp.min_rtt else rtt
    if not tp.srtt:
        tp.srtt = rtt
        tp.rttvar = rtt / 2
    else:
        tp.rttvar = 0.75 * tp.rttvar + 0.25 * abs(tp.srtt - rtt)
        tp.srtt = 0.875 * tp.srtt + 0.125 * rtt
    tcp_set_rto(sk)


def tcp_set_rto(sk):
    """RTO = SRTT + max(4*RTTVAR, 200 ms), at most 120 s (Linux's __tcp_set_rto)."""
    tp = sk.proto_data
    tp.rto = min(tp.srtt + max(4 * tp.rttvar, TCP_RTO_MIN), TCP_RTO_MAX)


# ------------------------------------------------------------------ receive side

def _queue_rcv(sk, skb):
    tp = sk.proto_data
    skb.sk = sk
    sk.sk_rmem_alloc += skb.truesize          # skb_set_owner_r: memory, not payload
    sk.sk_receive_queue.q.append(skb)
    tp.bytes_received += skb.len
    tp.data_segs_in += 1


def tcp_fin(sk):
    """A FIN arrived in order (RFC 9293 3.10.7.4 eighth): half-close, move on."""
    tp = sk.proto_data
    sk.sk_shutdown |= RCV_SHUTDOWN
    state = sk.sk_state
    if state in (TCP_SYN_RECV, TCP_ESTABLISHED):
        tcp_set_state(sk, TCP_CLOSE_WAIT)
        tp.ack_pingpong = True          # the application is likely to answer: delay the ACK
    elif state == TCP_FIN_WAIT1:
        tcp_send_ack(sk)
        tcp_set_state(sk, TCP_CLOSING)
    elif state == TCP_FIN_WAIT2:
        tcp_send_ack(sk)
        tcp_time_wait(sk)
    tp.out_of_order_queue.clear()
    tp.selective_acks = []
    sk_data_ready(sk)
    if sk.sk_wq.entries:
        sk.sk_wq.wake_up(EPOLLIN | EPOLLOUT)


def tcp_time_wait(sk):
    from .tcp_minisocks import tcp_time_wait as _tw
    _tw(sk)


def tcp_sack_new_ofo(tp, seq, end_seq):
    """Put the block containing [seq, end_seq) first in our SACK list (RFC 2018 4)."""
    blocks = [b for b in tp.selective_acks]
    new_start, new_end = seq, end_seq
    rest = []
    for s, e in blocks:
        if not after(s, new_end) and not before(e, new_start):
            if before(s, new_start):
                new_start = s
            if after(e, new_end):
                new_end = e
        else:
            rest.append((s, e))
    tp.selective_acks = [(new_start, new_end)] + rest[:3]


def tcp_ofo_queue(sk):
    """Move segments that are now in order from the out-of-order queue."""
    tp = sk.proto_data
    ofo = tp.out_of_order_queue
    fin = False
    # Taken from the front in one slice at the end, not pop(0) each (a list:
    # each pop moved the whole rest, and a filled hole can release thousands).
    i, n = 0, len(ofo)
    while i < n and not after(ofo[i].cb.seq, tp.rcv_nxt):
        skb = ofo[i]
        i += 1
        cb = skb.cb
        if not after(cb.end_seq, tp.rcv_nxt):
            consume_skb(skb)              # wholly duplicate
            continue
        trim = seq_sub(tp.rcv_nxt, cb.seq)
        if trim > 0:
            skb.data += trim
            skb.len -= trim
            cb.seq = tp.rcv_nxt
        tp.rcv_nxt = cb.end_seq
        if skb.len:
            _queue_rcv(sk, skb)
        else:
            consume_skb(skb)
        if cb.tcp_flags & TCPHDR_FIN:
            fin = True
            break
    del ofo[:i]
    tp.selective_acks = [(s, e) for s, e in tp.selective_acks if after(e, tp.rcv_nxt)]
    if fin:
        tcp_fin(sk)


def tcp_data_queue_ofo(sk, skb):
    """Keep a segment that arrived ahead of a hole; SACK it; ACK at once (RFC 5681 4.2)."""
    tp = sk.proto_data
    net = sk.net
    net.mib["TcpExt"]["TCPOFOQueue"] += 1
    cb = skb.cb
    ofo = tp.out_of_order_queue
    # Where it goes: looked for from the tail, where a segment past a hole
    # nearly always lands (Linux's ooo_last_skb fast path), not from the head.
    i = len(ofo)
    while i > 0 and not before(ofo[i - 1].cb.seq, cb.seq):
        i -= 1
    if i < len(ofo) and ofo[i].cb.seq == cb.seq and not before(ofo[i].cb.end_seq, cb.end_seq):
        consume_skb(skb)                  # nothing new
    elif i > 0 and not before(ofo[i - 1].cb.end_seq, cb.end_seq):
        consume_skb(skb)                  # inside the previous one
    else:
        ofo.insert(i, skb)
        # Drop later segments this one covers completely.
        j = i + 1
        while j < len(ofo) and not after(ofo[j].cb.end_seq, cb.end_seq):
            consume_skb(ofo.pop(j))
    if tp.sack_ok:
        tcp_sack_new_ofo(tp, cb.seq, cb.end_seq)
    tp.ack_pending = True
    tcp_send_ack(sk)


def tcp_dsack_set(sk, seq, end_seq):
    """Report [seq, end_seq) as received twice in the next ACK (RFC 2883)."""
    tp = sk.proto_data
    if tp.sack_ok and tcp_sysctl(sk.net, "tcp_dsack"):
        tp.duplicate_sack = (seq, end_seq)


def tcp_data_queue(sk, skb):
    """Queue a segment's data (and FIN) in sequence (RFC 9293 3.10.7.4 seventh)."""
    if skb.trace is not None:
        skb.trace.hit("tcp_data_queue")
    tp = sk.proto_data
    cb = skb.cb
    if cb.seq == cb.end_seq:
        consume_skb(skb)
        return
    if cb.seq == tp.rcv_nxt:
        if skb.len and not tcp_receive_window(tp):
            # Our window is shut: drop and re-advertise (tcp_data_queue out_of_window).
            sk.net.mib["TcpExt"]["TCPZeroWindowDrop"] += 1
            tcp_enter_quickack_mode(sk)
            tcp_send_ack(sk)
            kfree_skb(skb, "TCP_ZEROWINDOW")
            return
        had_ofo = bool(tp.out_of_order_queue)
        tp.rcv_nxt = cb.end_seq
        if skb.len:
            tcp_event_data_recv(sk, skb)
            _queue_rcv(sk, skb)
        else:
            consume_skb(skb)
        tp.ack_pending = True
        if cb.tcp_flags & TCPHDR_FIN:
            tcp_fin(sk)
        if tp.out_of_order_queue:
            tcp_ofo_queue(sk)
        if had_ofo:
            # A hole just filled: ACK now so the sender leaves recovery fast.
            tp.ack_quick = max(tp.ack_quick, 1)
        elif tp.selective_acks:
            tp.selective_acks = [(s, e) for s, e in tp.selective_acks if after(e, tp.rcv_nxt)]
        if skb.len:
            sk_data_ready(sk, skb)
        return
    if not after(cb.end_seq, tp.rcv_nxt):
        # All of it was seen before: a retransmission. ACK at once, with a D-SACK.
        sk.net.mib["TcpExt"]["DelayedACKLost"] += 1
        tcp_dsack_set(sk, cb.seq, cb.end_seq)
        tcp_enter_quickack_mode(sk)
        tcp_send_ack(sk)
        consume_skb(skb)
        return
    if not before(cb.seq, seq_add(tp.rcv_nxt, tcp_receive_window(tp))):
        tcp_enter_quickack_mode(sk)
        tcp_send_ack(sk)
        kfree_skb(skb, "TCP_OVERWINDOW")
        return
    if before(cb.seq, tp.rcv_nxt):
        # Partly old: keep the new part, D-SACK the old one.
        tcp_dsack_set(sk, cb.seq, tp.rcv_nxt)
        trim = seq_sub(tp.rcv_nxt, cb.seq)
        skb.data += trim
        skb.len -= trim
        cb.seq = tp.rcv_nxt
        return tcp_data_queue(sk, skb)
    tcp_data_queue_ofo(sk, skb)


def __tcp_ack_snd_check(sk):
    """ACK now or later (RFC 1122 4.2.3.2, as __tcp_ack_snd_check decides):
    now if more than a full segment arrived and the window does not shrink,
    in quick-ack mode, or with out-of-order data; otherwise delayed."""
    tp = sk.proto_data
    if not tp.ack_pending:
        return
    rcv_nxt = tp.rcv_nxt
    if (seq_sub(rcv_nxt, tp.rcv_wup) > tp.ack_rcv_mss and
            (seq_sub(rcv_nxt, tp.copied_seq) < 1 or __tcp_select_window(sk) >= tp.rcv_wnd)) \
            or (tp.ack_quick and not tp.ack_pingpong) or tp.out_of_order_queue:
        tcp_send_ack(sk)
    else:
        tcp_send_delayed_ack(sk)


def tcp_ack_update_window(sk, cb, ack):
    tp = sk.proto_data
    # RFC 7323 2.2: the window in a SYN is never scaled.
    nwin = cb.window if cb.tcp_flags & TCPHDR_SYN else cb.window << tp.snd_wscale
    flag = 0
    # RFC 9293 3.10.7.4 fifth: SND.WL1 < SEG.SEQ, or equal and SND.WL2 =< SEG.ACK.
    # tcp_may_update_window: a same-sequence update may only grow the window
    # (or close it), so a reordered old ACK cannot shrink it.
    seq = cb.seq
    if ((tp.snd_una - ack) & 0xFFFFFFFF) > 0x7FFFFFFF or \
            ((tp.snd_wl1 - seq) & 0xFFFFFFFF) > 0x7FFFFFFF or \
            (seq == tp.snd_wl1 and (nwin > tp.snd_wnd or not nwin)):
        if tp.snd_wnd != nwin:
            flag |= FLAG_WIN_UPDATE
            tp.snd_wnd = nwin
            if nwin > tp.max_window:
                tp.max_window = nwin
        tp.snd_wl1 = cb.seq
    return flag


def tcp_tso_acked(sk, skb, ack, mss):
    """Part of a super-segment was acknowledged: trim it (tcp_tso_acked), so
    the segments that left the network leave packets_out too."""
    tp = sk.proto_data
    cb = skb.cb
    before_pcount = cb.pcount
    n = seq_sub(ack, cb.seq)
    skb.data += n
    skb.len -= n
    cb.seq = ack
    sk.sk_wmem_alloc -= n
    gone = before_pcount - tcp_set_skb_tso_segs(skb, cb.mss or mss)
    tp.packets_out -= gone
    if cb.sacked & TCPCB_SACKED_RETRANS:
        tp.retrans_out = max(0, tp.retrans_out - gone)
    if cb.sacked & TCPCB_LOST:
        tp.lost_out = max(0, tp.lost_out - gone)
    return gone


def tcp_clean_rtx_queue(sk, ack, cb_in, opt):
    """Free what ack covers; take an RTT sample (Karn's rule); count what was acked."""
    tp = sk.proto_data
    net = sk.net
    now = net.clock()
    mss = tcp_current_mss(sk)
    acked_pcount = 0
    flag = 0
    rtt = -1.0
    q = tp.rtx_queue
    while q:
        skb = q[0]
        cb = skb.cb
        if after(cb.end_seq, ack):
            if skb.len > mss and after(ack, cb.seq) and not cb.tcp_flags & TCPHDR_SYN:
                acked_pcount += tcp_tso_acked(sk, skb, ack, mss)
                flag |= FLAG_DATA_ACKED
            break
        pcount = cb.pcount
        if cb.sacked & TCPCB_SACKED_RETRANS:
            tp.retrans_out -= pcount
            flag |= FLAG_RETRANS_DATA_ACKED
        elif cb.retrans == 0 and rtt < 0 and not cb.sacked & TCPCB_SACKED_ACKED:
            rtt = now - cb.when
        if cb.sacked & TCPCB_SACKED_ACKED:
            tp.sacked_out -= pcount
        if cb.sacked & TCPCB_LOST:
            tp.lost_out -= pcount
        tp.packets_out -= pcount
        acked_pcount += pcount
        if cb.tcp_flags & TCPHDR_SYN:
            flag |= FLAG_SYN_ACKED
        else:
            flag |= FLAG_DATA_ACKED
        sk.sk_wmem_alloc -= skb.len
        q.popleft()
        consume_skb(skb)
    tp.packets_out = max(tp.packets_out, 0)
    tp.sacked_out = max(tp.sacked_out, 0)
    tp.lost_out = max(tp.lost_out, 0)
    tp.retrans_out = max(tp.retrans_out, 0)
    sk.sk_wmem_alloc = max(sk.sk_wmem_alloc, 0)
    if flag & FLAG_RETRANS_DATA_ACKED:
        rtt = -1.0       # Karn: this ACK covers a retransmission, its timing is ambiguous
    # With timestamps, the echo measures even retransmitted segments (RFC 7323 4).
    if rtt < 0 and opt.saw_tstamp and opt.tsecr and tp.tstamp_ok and flag & FLAG_DATA_ACKED:
        ms = (tcp_time_stamp(sk) - opt.tsecr) & 0xFFFFFFFF
        if ms < 0x7FFFFFFF:
            rtt = max(ms / 1000.0, 0.0005)
    if rtt >= 0 and acked_pcount:
        tcp_rtt_estimator(sk, rtt)
        if tp.ca_ops.pkts_acked is not None:
            tp.ca_ops.pkts_acked(sk, acked_pcount, rtt)
    if acked_pcount:
        tp.delivered += acked_pcount
    return flag, acked_pcount


def tcp_ack(sk, skb, opt):
    """Process the ACK field (RFC 9293 3.10.7.4 fifth). Returns flags, or -1 to drop."""
    if skb.trace is not None:
        skb.trace.hit("tcp_ack")
    tp = sk.proto_data
    net = sk.net
    cb = skb.cb
    ack = cb.ack_seq
    prior_snd_una = tp.snd_una
    # before/after written out for the common case (once per segment).
    advanced = (ack - prior_snd_una) & 0xFFFFFFFF
    if advanced > 0x7FFFFFFF:                           # before(ack, prior_snd_una)
        # RFC 5961 5.2: an ACK too far in the past is answered with a challenge.
        if before(ack, seq_sub(prior_snd_una, tp.max_window) & 0xFFFFFFFF):
            tcp_send_challenge_ack(sk)
            return -1
        return 0
    if ((tp.snd_nxt - ack) & 0xFFFFFFFF) > 0x7FFFFFFF:      # after(ack, snd_nxt)
        # It acknowledges what we never sent: drop it (Linux: TCP_ACK_UNSENT_DATA;
        # answering would let two confused ends ACK each other forever).
        return -1
    flag = 0
    now = net.clock()
    tp.last_ack_recv = now
    tp.probes_out = 0
    if advanced:
        flag |= FLAG_SND_UNA_ADVANCED
    flag |= tcp_ack_update_window(sk, cb, ack)
    newly_sacked = 0
    if tp.sack_ok and opt.sack:
        newly_sacked = tcp_sacktag_write_queue(sk, opt.sack)
        if newly_sacked:
            flag |= FLAG_DATA_SACKED
    is_dupack = (not flag & (FLAG_SND_UNA_ADVANCED | FLAG_WIN_UPDATE)) and skb.len == 0 \
        and tp.packets_out > 0 and not cb.tcp_flags & (TCPHDR_SYN | TCPHDR_FIN)
    if flag & FLAG_DATA_SACKED and tp.packets_out:
        is_dupack = True
    acked = 0
    delivered = newly_sacked        # tcp_newly_delivered: SACKed now, or acked and not SACKed before
    if flag & FLAG_SND_UNA_ADVANCED:
        tp.bytes_acked += advanced
        tp.snd_una = ack
        tcp_sack_hints_una(tp)
        sacked_before = tp.sacked_out
        tclean, acked = tcp_clean_rtx_queue(sk, ack, cb, opt)
        delivered += acked - (max(sacked_before - tp.sacked_out, 0) if tp.sack_ok else 0)
        flag |= tclean
        tp.backoff = 0
        tp.retransmits = 0
        tp.retrans_stamp = 0.0 if not tp.retrans_out else tp.retrans_stamp
        tp.dupacks = 0 if tp.ca_state == TCP_CA_Open else tp.dupacks
        tcp_rearm_rto(sk)
    if tp.ca_state != TCP_CA_Open or is_dupack or tp.sacked_out:
        tcp_fastretrans_alert(sk, flag, is_dupack, acked, delivered)
    # cwnd grows on progress except while it is being reduced (tcp_cong_control:
    # not in CWR/Recovery), by what this ACK delivered (segments SACKed earlier
    # were counted then); after an RTO that is slow start (RFC 5681 3.1).
    if acked and delivered and tp.ca_state in (TCP_CA_Open, TCP_CA_Disorder, TCP_CA_Loss):
        tp.ca_ops.cong_avoid(sk, ack, delivered)
        if tp.ca_state == TCP_CA_Loss and tp.lost_out:
            # tcp_xmit_recovery runs after tcp_cong_control: what slow start
            # just opened goes to the lost segments.
            tcp_xmit_retransmit_queue(sk)
    # The window opened while the persist timer ran: stop probing.
    if tp.timer_kind == ICSK_TIME_PROBE0 and tp.snd_wnd:
        inet_csk_clear_xmit_timer(sk)
        tp.backoff = 0
        tp.probes_out = 0
        if tp.packets_out:
            tcp_rearm_rto(sk)
    if acked and sk.sk_wq.entries:
        sk.sk_wq.wake_up(EPOLLOUT)       # send buffer space (sk_write_space)
    tcp_sndbuf_expand(sk)
    return flag


def tcp_sndbuf_expand(sk):
    """Let the send buffer follow cwnd (tcp_sndbuf_expand): room for 2x cwnd of data."""
    tp = sk.proto_data
    if sk.sk_userlocks & 1:                    # SOCK_SNDBUF_LOCK
        return
    cwnd = tp.snd_cwnd
    want = 4 * (cwnd if cwnd > TCP_MAX_QUICKACKS else TCP_MAX_QUICKACKS) * tp.mss_cache
    if want > sk.sk_sndbuf:
        want = min(want, sk.net.sysctl["net.ipv4.tcp_wmem"][2])
        if want > sk.sk_sndbuf:
            sk.sk_sndbuf = want


def tcp_oow_rate_limited(sk):
    """True if this socket answered an out-of-window segment less than
    net.ipv4.tcp_invalid_ratelimit ago (tcp_oow_rate_limited): two confused
    ends must not ACK each other forever."""
    tp = sk.proto_data
    now = sk.net.clock()
    if now - tp.last_oow_ack_time < sk.net.sysctl["net.ipv4.tcp_invalid_ratelimit"] / 1000.0:
        sk.net.mib["TcpExt"]["TCPACKSkippedSeq"] += 1
        return True
    tp.last_oow_ack_time = now
    return False


def tcp_send_dupack(sk):
    """An out-of-window segment: re-ACK it, rate-limited (tcp_send_dupack)."""
    if not tcp_oow_rate_limited(sk):
        tcp_send_ack(sk)


def tcp_send_challenge_ack(sk):
    """RFC 5961 7: ACKs that answer suspicious segments, rate-limited per
    socket first, then per net (tcp_challenge_ack_limit)."""
    if tcp_oow_rate_limited(sk):
        return
    net = sk.net
    st = net.proto.setdefault("tcp_challenge", [0.0, 0])
    now = net.clock()
    if now - st[0] >= 1.0:
        st[0] = now
        st[1] = 0
    if st[1] >= net.sysctl["net.ipv4.tcp_challenge_ack_limit"]:
        return
    st[1] += 1
    net.mib["TcpExt"]["TCPChallengeACK"] += 1
    tcp_send_ack(sk)


def tcp_reset(sk):
    """An acceptable RST: the user sees the error of its state (tcp_reset)."""
    state = sk.sk_state
    net = sk.net
    if state == TCP_SYN_SENT:
        err = 111                       # ECONNREFUSED
    elif state == TCP_CLOSE_WAIT:
        err = 32                        # EPIPE
    elif state == TCP_CLOSE:
        return
    else:
        err = 104                       # ECONNRESET
    if state in (TCP_ESTABLISHED, TCP_CLOSE_WAIT):
        net.mib["Tcp"]["EstabResets"] += 1
    sk.sk_err = err
    sk_error_report(sk)
    tcp_done(sk)


def tcp_validate_incoming(sk, skb, th_flags, opt):
    """Sequence, PAWS, RST and SYN checks on a synchronized connection. False: dropped."""
    tp = sk.proto_data
    net = sk.net
    cb = skb.cb
    # RFC 7323 5.3: PAWS.
    if opt.saw_tstamp and tp.tstamp_ok and not th_flags & TCPHDR_RST and tp.ts_recent_stamp:
        if ((tp.ts_recent - opt.tsval) & 0xFFFFFFFF) < 0x80000000 and tp.ts_recent != opt.tsval \
                and net.clock() - tp.ts_recent_stamp < TCP_PAWS_24DAYS:
            net.mib["TcpExt"]["PAWSEstab"] += 1
            if not th_flags & TCPHDR_RST:
                tcp_send_dupack(sk)
            kfree_skb(skb, "TCP_RFC7323_PAWS")
            return False
    # RFC 9293 3.10.7.4 first: is the segment in the window? (tcp_sequence:
    # not before(end_seq, rcv_wup) and not after(seq, rcv_nxt +
    # tcp_receive_window), the modular comparisons written out: once per segment.)
    rcv_nxt = tp.rcv_nxt
    rcv_wnd = (tp.rcv_wup + tp.rcv_wnd - rcv_nxt) & 0xFFFFFFFF
    if rcv_wnd > 0x7FFFFFFF:
        rcv_wnd = 0
    ok = ((cb.end_seq - tp.rcv_wup) & 0xFFFFFFFF) <= 0x7FFFFFFF and \
        ((rcv_nxt + rcv_wnd - cb.seq) & 0xFFFFFFFF) <= 0x7FFFFFFF
    if not ok:
        if not th_flags & TCPHDR_RST:
            if th_flags & TCPHDR_SYN:
                tcp_send_challenge_ack(sk)
            else:
                tcp_send_dupack(sk)
        kfree_skb(skb, "TCP_INVALID_SEQUENCE")
        return False
    if th_flags & TCPHDR_RST:
        # RFC 5961 3.2: only an exact match resets; in-window gets a challenge ACK.
        if cb.seq == tp.rcv_nxt:
            tcp_reset(sk)
        else:
            tcp_send_challenge_ack(sk)
        kfree_skb(skb, "TCP_RESET")
        return False
    if opt.saw_tstamp and tp.tstamp_ok and ((tp.rcv_wup - cb.seq) & 0xFFFFFFFF) <= 0x7FFFFFFF:
        tp.ts_recent = opt.tsval
        tp.ts_recent_stamp = net.clock()
    if th_flags & TCPHDR_SYN:
        # RFC 5961 4.2: a SYN on a synchronized connection gets a challenge ACK.
        net.mib["TcpExt"]["TCPSYNChallenge"] += 1
        tcp_send_challenge_ack(sk)
        kfree_skb(skb, "TCP_INVALID_SYN")
        return False
    return True


def tcp_data_snd_check(sk):
    if sk.proto_data.write_queue:
        tcp_push_pending_frames(sk)


def tcp_rcv_established(sk, skb, th_flags, opt):
    """ESTABLISHED: validate, take the ACK, queue the data, send what we can."""
    if skb.trace is not None:
        skb.trace.hit("tcp_rcv_established")
    if not tcp_validate_incoming(sk, skb, th_flags, opt):
        return
    if not th_flags & TCPHDR_ACK:
        kfree_skb(skb, "TCP_FLAGS")        # RFC 9293: no ACK bit, drop the segment
        return
    if tcp_ack(sk, skb, opt) < 0:
        kfree_skb(skb, "TCP_OLD_ACK")
        return
    if opt.saw_tstamp and opt.tsecr and skb.len:
        tcp_rcv_rtt_measure_ts(sk, skb, opt)
    tcp_data_queue(sk, skb)
    tcp_data_snd_check(sk)
    __tcp_ack_snd_check(sk)


def tcp_rcv_synsent_state_process(sk, skb, th_flags, opt):
    """SYN-SENT (RFC 9293 3.10.7.3): our SYN answered by SYN-ACK, RST or a crossing SYN."""
    from .tcp_ipv4 import tcp_v4_send_reset_for
    from .tcp_output import tcp_alloc_skb, tcp_transmit_skb
    tp = sk.proto_data
    net = sk.net
    cb = skb.cb
    if th_flags & TCPHDR_ACK:
        if not after(cb.ack_seq, tp.isn) or after(cb.ack_seq, tp.snd_nxt):
            if not th_flags & TCPHDR_RST:
                tcp_v4_send_reset_for(net, skb)
            kfree_skb(skb, "TCP_INVALID_ACK_SEQUENCE")
            return
        if th_flags & TCPHDR_RST:
            tcp_reset(sk)
            kfree_skb(skb, "TCP_RESET")
            return
        if not th_flags & TCPHDR_SYN:
            kfree_skb(skb, "TCP_FLAGS")
            return
        # A SYN-ACK: the connection is open.
        tp.rcv_nxt = tp.rcv_wup = tp.copied_seq = seq_add(cb.seq, 1)
        tp.snd_wl1 = cb.seq
        tp.wscale_ok = tp.wscale_ok and opt.wscale is not None
        if tp.wscale_ok:
            tp.snd_wscale = opt.wscale
        else:
            tp.snd_wscale = tp.rcv_wscale = 0
            tp.window_clamp = min(tp.window_clamp, 65535)
        tp.snd_wnd = cb.window           # never scaled in a SYN (RFC 7323 2.2)
        tp.max_window = tp.snd_wnd
        tp.sack_ok = tp.sack_ok and opt.sack_ok
        tp.tstamp_ok = tp.tstamp_ok and opt.saw_tstamp
        if tp.tstamp_ok:
            tp.ts_recent = opt.tsval
            tp.ts_recent_stamp = net.clock()
        tp.mss_clamp = opt.mss or TCP_MSS_DEFAULT
        from .route import ip_dst_mtu
        from .tcp_output import tcp_route
        tcp_sync_mss(sk, ip_dst_mtu(net, tcp_route(sk), sk.inet_daddr))
        tcp_initialize_rcv_mss(sk)
        tcp_ack(sk, skb, opt)
        tcp_set_state(sk, TCP_ESTABLISHED)
        tcp_init_transfer(sk)
        if sk.sk_wq.entries:
            sk.sk_wq.wake_up(EPOLLOUT)   # connect() returns
        if skb.len or th_flags & TCPHDR_FIN:
            tcp_data_queue(sk, skb)
        else:
            consume_skb(skb)
        tcp_send_ack(sk)
        tcp_push_pending_frames(sk)
        return
    if th_flags & TCPHDR_RST:
        kfree_skb(skb, "TCP_RESET")
        return
    if th_flags & TCPHDR_SYN:
        # Simultaneous open (RFC 9293 3.5 figure 8): SYN-RECEIVED, send SYN-ACK.
        tcp_set_state(sk, TCP_SYN_RECV)
        tp.rcv_nxt = tp.rcv_wup = tp.copied_seq = seq_add(cb.seq, 1)
        tp.snd_wnd = cb.window
        tp.snd_wl1 = cb.seq
        tp.wscale_ok = tp.wscale_ok and opt.wscale is not None
        tp.snd_wscale = opt.wscale if tp.wscale_ok else 0
        tp.sack_ok = tp.sack_ok and opt.sack_ok
        tp.tstamp_ok = tp.tstamp_ok and opt.saw_tstamp
        if tp.tstamp_ok:
            tp.ts_recent = opt.tsval
            tp.ts_recent_stamp = net.clock()
        tp.mss_clamp = opt.mss or TCP_MSS_DEFAULT
        synack = tcp_alloc_skb()
        from .tcp import TcpSkbCb
        synack.cb = TcpSkbCb(tp.isn, seq_add(tp.isn, 1), TCPHDR_SYN | TCPHDR_ACK)
        tcp_transmit_skb(sk, synack, clone_it=False)
    kfree_skb(skb, "TCP_FLAGS")


def tcp_init_transfer(sk):
    """After the handshake: initial window (IW10, or 1 after a lost SYN), keepalive."""
    tp = sk.proto_data
    if tp.total_retrans:
        tp.snd_cwnd = 1                  # RFC 6298 5.7 / Linux: the SYN was lost
    tcp_init_buffer_space(sk)
    tp.snd_cwnd_cnt = 0
    if sk.sk_keepalive:
        tcp_set_keepalive(sk, True)


def tcp_rcv_state_process(sk, skb, th_flags, opt):
    """Every state but LISTEN, TIME-WAIT and the ESTABLISHED fast path."""
    if skb.trace is not None:
        skb.trace.hit("tcp_rcv_state_process")
    tp = sk.proto_data
    state = sk.sk_state
    if state == TCP_CLOSE:
        kfree_skb(skb, "TCP_CLOSE")
        return
    if state == TCP_SYN_SENT:
        return tcp_rcv_synsent_state_process(sk, skb, th_flags, opt)
    if not tcp_validate_incoming(sk, skb, th_flags, opt):
        return
    if not th_flags & TCPHDR_ACK:
        kfree_skb(skb, "TCP_FLAGS")
        return
    acceptable = tcp_ack(sk, skb, opt) >= 0
    if state == TCP_SYN_RECV:
        if not acceptable:
            from .tcp_ipv4 import tcp_v4_send_reset_for
            tcp_v4_send_reset_for(sk.net, skb)
            kfree_skb(skb, "TCP_INVALID_ACK_SEQUENCE")
            return
        tcp_set_state(sk, TCP_ESTABLISHED)
        tcp_init_transfer(sk)
        tp.snd_wnd = skb.cb.window << tp.snd_wscale
        if sk.sk_wq.entries:
            sk.sk_wq.wake_up(EPOLLOUT)
    elif not acceptable:
        kfree_skb(skb, "TCP_OLD_ACK")
        return
    fin_acked = tp.fin_sent and tp.snd_una == tp.write_seq
    if state == TCP_FIN_WAIT1 and fin_acked:
        tcp_set_state(sk, TCP_FIN_WAIT2)
        sk.sk_shutdown |= SEND_SHUTDOWN
        if sk.sk_socket is None:
            from .tcp_minisocks import tcp_arm_fin_wait2
            tcp_arm_fin_wait2(sk)
    elif state == TCP_CLOSING and fin_acked:
        tcp_time_wait(sk)
        consume_skb(skb)
        return
    elif state == TCP_LAST_ACK and fin_acked:
        tcp_done(sk)
        consume_skb(skb)
        return
    state = sk.sk_state
    if state in (TCP_CLOSE_WAIT, TCP_CLOSING, TCP_LAST_ACK):
        if before(skb.cb.seq, tp.rcv_nxt):
            tcp_data_queue(sk, skb)      # an old segment (the FIN again): re-ACK it
        else:
            consume_skb(skb)             # data after the peer's FIN: ignored
    elif state in (TCP_FIN_WAIT1, TCP_FIN_WAIT2) and sk.sk_socket is None and skb.len \
            and after(skb.cb.end_seq, tp.rcv_nxt):
        # Data for a socket nobody will read: abort (tcp_rcv_state_process).
        sk.net.mib["TcpExt"]["TCPAbortOnData"] += 1
        from .tcp_output import tcp_send_active_reset
        tcp_send_active_reset(sk)
        tcp_done(sk)
        kfree_skb(skb, "TCP_ABORT_ON_DATA")
        return
    else:
        tcp_data_queue(sk, skb)
    if sk.sk_state not in (TCP_CLOSE, TCP_TIME_WAIT):
        tcp_data_snd_check(sk)
        __tcp_ack_snd_check(sk)
