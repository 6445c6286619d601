"""CUBIC congestion control, Linux's default.

Linux: net/ipv4/tcp_cubic.c; RFC 9438.

Emulation note: HyStart (the delay-based early exit from slow start) is
not modelled; slow start ends at ssthresh or on loss, as with Reno.
"""
from .tcp_cong import (
    TcpCongestionOps, tcp_cong_avoid_ai, tcp_in_slow_start, tcp_is_cwnd_limited, tcp_slow_start,
)

BETA = 717            # / 1024: multiplicative decrease to ~0.7
BICTCP_BETA_SCALE = 1024
C = 0.4               # RFC 9438 4.2 (Linux: bic_scale 41 / 1024 * 10)
FAST_CONVERGENCE = True
TCP_FRIENDLINESS = True


class BicTcp:
    __slots__ = ("cnt", "last_max_cwnd", "last_cwnd", "last_time", "bic_origin_point",
                 "bic_K", "delay_min", "epoch_start", "ack_cnt", "tcp_cwnd")

    def __init__(self):
        self.reset()

    def reset(self):
        self.cnt = 0
        self.last_max_cwnd = 0
        self.last_cwnd = 0
        self.last_time = 0.0
        self.bic_origin_point = 0
        self.bic_K = 0.0
        self.delay_min = 0.0
        self.epoch_start = 0.0
        self.ack_cnt = 0
        self.tcp_cwnd = 0


def cubictcp_init(sk):
    sk.proto_data.ca_priv = BicTcp()


def bictcp_update(sk, ca, cwnd, acked):
    now = sk.net.clock()
    ca.ack_cnt += acked
    if ca.last_cwnd == cwnd and now - ca.last_time <= 1.0 / 32:
        return
    ca.last_cwnd = cwnd
    ca.last_time = now
    if not ca.epoch_start:
        ca.epoch_start = now
        ca.ack_cnt = acked
        ca.tcp_cwnd = cwnd
        if ca.last_max_cwnd <= cwnd:
            ca.bic_K = 0.0
            ca.bic_origin_point = cwnd
        else:
            ca.bic_K = ((ca.last_max_cwnd - cwnd) / C) ** (1.0 / 3)
            ca.bic_origin_point = ca.last_max_cwnd
    t = now - ca.epoch_start + ca.delay_min
    target = ca.bic_origin_point + C * (t - ca.bic_K) ** 3
    if target > cwnd:
        cnt = cwnd / (target - cwnd)
    else:
        cnt = 100 * cwnd
    if ca.last_max_cwnd == 0 and cnt > 20:
        cnt = 20
    if TCP_FRIENDLINESS:
        # Grow at least as fast as Reno would (RFC 9438 4.3).
        # Linux: beta_scale = 8*(1024+717)/3/(1024-717); delta = cwnd*beta_scale >> 3
        scale = 8 * (BICTCP_BETA_SCALE + BETA) / 3 / (BICTCP_BETA_SCALE - BETA)
        d = (cwnd * scale) / 8
        while ca.ack_cnt > d and d > 0:
            ca.ack_cnt -= d
            ca.tcp_cwnd += 1
        if ca.tcp_cwnd > cwnd:
            max_cnt = cwnd / (ca.tcp_cwnd - cwnd)
            if cnt > max_cnt:
                cnt = max_cnt
    ca.cnt = max(int(cnt), 2)


def cubictcp_cong_avoid(sk, ack, acked):
    tp = sk.proto_data
    ca = tp.ca_priv
    if not tcp_is_cwnd_limited(tp):
        return
    if tcp_in_slow_start(tp):
        acked = tcp_slow_start(tp, acked)
        if not acked:
            return
    bictcp_update(sk, ca, tp.snd_cwnd, acked)
    tcp_cong_avoid_ai(tp, ca.cnt, acked)


def cubictcp_recalc_ssthresh(sk):
    tp = sk.proto_data
    ca = tp.ca_priv
    ca.epoch_start = 0.0
    if tp.snd_cwnd < ca.last_max_cwnd and FAST_CONVERGENCE:
        ca.last_max_cwnd = (tp.snd_cwnd * (BICTCP_BETA_SCALE + BETA)) // (2 * BICTCP_BETA_SCALE)
    else:
        ca.last_max_cwnd = tp.snd_cwnd
    return max((tp.snd_cwnd * BETA) // BICTCP_BETA_SCALE, 2)


def cubictcp_state(sk, new_state):
    if new_state == 4:            # TCP_CA_Loss
        sk.proto_data.ca_priv.reset()


def cubictcp_acked(sk, acked, rtt):
    """Track the minimum RTT (delay_min) the cubic clock starts from."""
    ca = sk.proto_data.ca_priv
    if rtt > 0 and (ca.delay_min == 0 or rtt < ca.delay_min):
        ca.delay_min = rtt


def cubictcp_undo(sk):
    tp = sk.proto_data
    return max(tp.snd_cwnd, tp.prior_cwnd)


cubictcp = TcpCongestionOps("cubic", cubictcp_recalc_ssthresh, cubictcp_cong_avoid,
                            init=cubictcp_init, set_state=cubictcp_state,
                            undo_cwnd=cubictcp_undo, pkts_acked=cubictcp_acked)
