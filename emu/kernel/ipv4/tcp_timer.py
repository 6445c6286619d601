"""TCP timers: retransmission (RFC 6298), persist, delayed ACK, keepalive.

Linux: net/ipv4/tcp_timer.c, net/ipv4/inet_connection_sock.c
"""
import errno

from ..core.sock import sk_error_report
from ..core.timer import TimerList
from .tcp import (
    TCP_CA_Loss, TCP_CLOSE, TCP_CLOSE_WAIT, TCP_ESTABLISHED, TCP_FIN_WAIT2, TCP_LISTEN,
    TCP_RTO_MAX, TCP_RTO_MIN, TCP_SYN_RECV, TCP_SYN_SENT, TCPCB_LOST, TCPCB_SACKED_ACKED,
    TCPCB_SACKED_RETRANS, tcp_sysctl,
)

ICSK_TIME_RETRANS = 1
ICSK_TIME_PROBE0 = 3


def tcp_init_xmit_timers(sk):
    tp = sk.proto_data
    tp.retransmit_timer = TimerList(tcp_write_timer, sk)
    tp.ack_timer = TimerList(tcp_delack_timer, sk)
    tp.keepalive_timer = TimerList(tcp_keepalive_timer, sk)


def tcp_clear_xmit_timers(sk):
    tp = sk.proto_data
    net = sk.net
    for t in (tp.retransmit_timer, tp.ack_timer, tp.keepalive_timer):
        if t is not None:
            net.del_timer(t)
    tp.ack_pending = False


def inet_csk_reset_xmit_timer(sk, what, when):
    tp = sk.proto_data
    tp.timer_kind = what
    sk.net.mod_timer(tp.retransmit_timer, sk.net.clock() + min(when, TCP_RTO_MAX))


def inet_csk_clear_xmit_timer(sk):
    tp = sk.proto_data
    sk.net.del_timer(tp.retransmit_timer)
    tp.timer_kind = 0


def tcp_rearm_rto(sk):
    """After an ACK: restart the RTO if data is still out, else stop it (RFC 6298 5.2-5.3)."""
    tp = sk.proto_data
    if not tp.packets_out:
        inet_csk_clear_xmit_timer(sk)
    else:
        inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS, tp.rto)


def tcp_check_probe_timer(sk):
    """Nothing in flight and the peer's window shut: start the persist timer."""
    tp = sk.proto_data
    if not tp.packets_out and not tp.retransmit_timer.pending:
        inet_csk_reset_xmit_timer(sk, ICSK_TIME_PROBE0, max(tp.rto, TCP_RTO_MIN))


def tcp_write_timer(sk):
    tp = sk.proto_data
    if sk.sk_state in (TCP_CLOSE, TCP_LISTEN):
        return
    if tp.timer_kind == ICSK_TIME_PROBE0:
        tcp_probe_timer(sk)
    else:
        tcp_retransmit_timer(sk)


def tcp_write_err(sk, err=None):
    """Give up on the connection: the user sees ETIMEDOUT (or the soft error)."""
    from .tcp import tcp_done
    sk.sk_err = err or sk.sk_err_soft or errno.ETIMEDOUT
    sk.net.mib["TcpExt"]["TCPAbortOnTimeout"] += 1
    sk_error_report(sk)
    tcp_done(sk)


def retransmits_timed_out(sk, boundary):
    """Has the connection been retransmitting longer than boundary backoffs would take?"""
    tp = sk.proto_data
    if not tp.retrans_stamp:
        return False
    rto_base = TCP_RTO_MIN if sk.sk_state not in (TCP_SYN_SENT, TCP_SYN_RECV) else 1.0
    linear = 9       # ilog2(TCP_RTO_MAX / rto_base), as Linux computes the timeout
    if boundary <= linear:
        timeout = ((2 << boundary) - 1) * rto_base
    else:
        timeout = ((2 << linear) - 1) * rto_base + (boundary - linear) * TCP_RTO_MAX
    if tp.user_timeout:
        timeout = tp.user_timeout
    return sk.net.clock() - tp.retrans_stamp >= timeout - 1e-9


def tcp_clamp_rto_to_user_timeout(sk):
    """The RTO, but no later than TCP_USER_TIMEOUT after the first retransmission's
    original send (Linux's tcp_clamp_rto_to_user_timeout)."""
    tp = sk.proto_data
    if not tp.user_timeout or not tp.retrans_stamp:
        return tp.rto
    remaining = tp.user_timeout - (sk.net.clock() - tp.retrans_stamp)
    return max(min(tp.rto, remaining), 1e-3)


def tcp_write_timeout(sk):
    """True if the connection is over (tcp_syn_retries / tcp_retries2 reached)."""
    tp = sk.proto_data
    net = sk.net
    if sk.sk_state in (TCP_SYN_SENT, TCP_SYN_RECV):
        retries = tp.syn_retries if tp.syn_retries is not None else tcp_sysctl(net, "tcp_syn_retries")
        if tp.retransmits >= retries:
            tcp_write_err(sk)
            return True
        return False
    retries = tcp_sysctl(net, "tcp_retries2")
    if retransmits_timed_out(sk, retries) or tp.retransmits > retries + 10:
        tcp_write_err(sk)
        return True
    return False


def tcp_enter_loss(sk):
    """RTO fired: everything outstanding is presumed lost; cwnd back to 1 (RFC 5681 3.1)."""
    tp = sk.proto_data
    if tp.ca_state != TCP_CA_Loss or tp.retransmits == 0:
        tp.prior_ssthresh = tp.snd_ssthresh
        tp.snd_ssthresh = tp.ca_ops.ssthresh(sk)
        tp.undo_marker = tp.snd_una
    tp.snd_cwnd = 1
    tp.snd_cwnd_cnt = 0
    tp.lost_out = 0
    tp.retrans_out = 0
    for skb in tp.rtx_queue:
        skb.cb.sacked &= ~TCPCB_SACKED_RETRANS
        if not skb.cb.sacked & TCPCB_SACKED_ACKED:
            skb.cb.sacked |= TCPCB_LOST
            tp.lost_out += skb.cb.pcount
    tp.rtx_hint = None                   # all of it to send again (tcp_recovery.py)
    tp.ca_state = TCP_CA_Loss
    tp.high_seq = tp.snd_nxt
    tp.dupacks = 0
    if tp.ca_ops.set_state is not None:
        tp.ca_ops.set_state(sk, TCP_CA_Loss)


def tcp_retransmit_timer(sk):
    """The RTO fired (RFC 6298 5.4-5.7): retransmit the head, back off, maybe give up."""
    from .tcp_output import tcp_retransmit_skb
    tp = sk.proto_data
    net = sk.net
    if not tp.packets_out or not tp.rtx_queue:
        return
    if tp.snd_wnd == 0 and sk.sk_state not in (TCP_SYN_SENT, TCP_SYN_RECV) and \
            not tp.rtx_queue[0].cb.tcp_flags & 0x03:
        # Zero window with data out: the peer is alive but full (tcp_retransmit_timer).
        if net.clock() - tp.last_ack_recv > TCP_RTO_MAX:
            tcp_write_err(sk)
            return
    if tcp_write_timeout(sk):
        return
    if tp.retransmits == 0:
        net.mib["TcpExt"]["TCPTimeouts"] += 1
    tcp_enter_loss(sk)
    skb = tp.rtx_queue[0]
    if tcp_retransmit_skb(sk, skb) < 0:
        inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS, 0.5)
        return
    tp.backoff += 1
    tp.retransmits += 1
    # RFC 6298 5.5: double the RTO (max 120 s).
    tp.rto = min(tp.rto * 2, TCP_RTO_MAX)
    inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS, tcp_clamp_rto_to_user_timeout(sk))


def tcp_probe_timer(sk):
    """Persist timer: probe a zero window; give up after tcp_retries2 unanswered probes."""
    from .tcp_output import tcp_send_probe0
    tp = sk.proto_data
    if tp.packets_out or not tp.write_queue:
        tp.probes_out = 0
        tp.backoff = 0
        return
    if tp.probes_out > tcp_sysctl(sk.net, "tcp_retries2"):
        tcp_write_err(sk)
        return
    tcp_send_probe0(sk)


def tcp_delack_timer(sk):
    """The delayed ACK is due (RFC 1122 4.2.3.2)."""
    from .tcp_output import tcp_send_ack
    tp = sk.proto_data
    if sk.sk_state in (TCP_CLOSE, TCP_LISTEN) or not tp.ack_pending:
        return
    if tp.ack_pingpong:
        # The application did not answer in time: leave interactive mode.
        tp.ack_pingpong = False
        tp.ack_ato = 0.04
    else:
        tp.ack_ato = min(tp.ack_ato * 2, 0.2)
    sk.net.mib["TcpExt"]["DelayedACKs"] += 1
    tcp_send_ack(sk)


def keepalive_time_when(tp, net):
    return tp.keepalive_time if tp.keepalive_time is not None else tcp_sysctl(net, "tcp_keepalive_time")


def keepalive_intvl_when(tp, net):
    return tp.keepalive_intvl if tp.keepalive_intvl is not None else tcp_sysctl(net, "tcp_keepalive_intvl")


def keepalive_probes(tp, net):
    return tp.keepalive_probes if tp.keepalive_probes is not None else tcp_sysctl(net, "tcp_keepalive_probes")


def tcp_set_keepalive(sk, on):
    tp = sk.proto_data
    net = sk.net
    if tp.keepalive_timer is None:
        return
    if on and sk.sk_state not in (TCP_CLOSE, TCP_LISTEN):
        net.mod_timer(tp.keepalive_timer, net.clock() + keepalive_time_when(tp, net))
    else:
        net.del_timer(tp.keepalive_timer)


def tcp_keepalive_timer(sk):
    """RFC 1122 4.2.3.6: after idle time, probe; after N unanswered probes, ETIMEDOUT."""
    from .tcp_output import tcp_write_wakeup
    tp = sk.proto_data
    net = sk.net
    if sk.sk_state in (TCP_CLOSE, TCP_LISTEN) or not sk.sk_keepalive:
        return
    if sk.sk_state not in (TCP_ESTABLISHED, TCP_CLOSE_WAIT, TCP_FIN_WAIT2):
        return
    now = net.clock()
    idle = now - max(tp.last_ack_recv, tp.last_data_recv)
    if tp.packets_out or tp.write_queue:
        net.mod_timer(tp.keepalive_timer, now + keepalive_time_when(tp, net))
        return
    if idle >= keepalive_time_when(tp, net) - 1e-9:
        if tp.probes_out >= keepalive_probes(tp, net):
            from .tcp_output import tcp_send_active_reset
            tcp_send_active_reset(sk)       # as tcp_keepalive_timer: RST, then the error
            tcp_write_err(sk)
            return
        tcp_write_wakeup(sk)
        tp.probes_out += 1
        net.mod_timer(tp.keepalive_timer, now + keepalive_intvl_when(tp, net))
    else:
        net.mod_timer(tp.keepalive_timer, now + keepalive_time_when(tp, net) - idle)
