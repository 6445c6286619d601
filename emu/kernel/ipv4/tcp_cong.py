"""Pluggable congestion control and Reno.

Linux: net/ipv4/tcp_cong.c; RFC 5681 (slow start, congestion avoidance).
"""
import errno

from ..core.dev import KernelError


class TcpCongestionOps:
    """struct tcp_congestion_ops."""

    __slots__ = ("name", "init", "ssthresh", "cong_avoid", "set_state", "undo_cwnd",
                 "pkts_acked", "cwnd_event")

    def __init__(self, name, ssthresh, cong_avoid, init=None, set_state=None,
                 undo_cwnd=None, pkts_acked=None, cwnd_event=None):
        self.name = name
        self.init = init
        self.ssthresh = ssthresh
        self.cong_avoid = cong_avoid
        self.set_state = set_state
        self.undo_cwnd = undo_cwnd
        self.pkts_acked = pkts_acked
        self.cwnd_event = cwnd_event


def tcp_in_slow_start(tp):
    return tp.snd_cwnd < tp.snd_ssthresh


def tcp_is_cwnd_limited(tp):
    """Grow cwnd only when it limits us (RFC 7661): in slow start when the
    last window used over half of it, else when sending stopped at cwnd."""
    if tcp_in_slow_start(tp):
        return tp.snd_cwnd < 2 * tp.max_packets_out
    return tp.is_cwnd_limited


def tcp_slow_start(tp, acked):
    """RFC 5681 3.1: cwnd += acked, up to ssthresh; returns what is left over."""
    cwnd = min(tp.snd_cwnd + acked, tp.snd_ssthresh)
    acked -= cwnd - tp.snd_cwnd
    tp.snd_cwnd = cwnd
    return acked


def tcp_cong_avoid_ai(tp, w, acked):
    """Additive increase: one segment per w segments acknowledged."""
    if tp.snd_cwnd_cnt >= w:
        tp.snd_cwnd_cnt = 0
        tp.snd_cwnd += 1
    tp.snd_cwnd_cnt += acked
    if tp.snd_cwnd_cnt >= w:
        delta = tp.snd_cwnd_cnt // w
        tp.snd_cwnd_cnt -= delta * w
        tp.snd_cwnd += delta


def tcp_reno_ssthresh(sk):
    return max(sk.proto_data.snd_cwnd >> 1, 2)


def tcp_reno_cong_avoid(sk, ack, acked):
    tp = sk.proto_data
    if not tcp_is_cwnd_limited(tp):
        return
    if tcp_in_slow_start(tp):
        acked = tcp_slow_start(tp, acked)
        if not acked:
            return
    tcp_cong_avoid_ai(tp, tp.snd_cwnd, acked)


def tcp_reno_undo_cwnd(sk):
    tp = sk.proto_data
    return max(tp.snd_cwnd, tp.prior_cwnd)


tcp_reno = TcpCongestionOps("reno", tcp_reno_ssthresh, tcp_reno_cong_avoid,
                            undo_cwnd=tcp_reno_undo_cwnd)


def _registry():
    from .tcp_cubic import cubictcp
    return {"reno": tcp_reno, "cubic": cubictcp}


def tcp_assign_congestion_control(sk):
    name = sk.net.sysctl["net.ipv4.tcp_congestion_control"]
    tcp_set_congestion_control(sk, name)


def tcp_set_congestion_control(sk, name):
    """setsockopt(TCP_CONGESTION) and the per-net default."""
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).split(b"\0")[0].decode(errors="replace")
    ops = _registry().get(name)
    if ops is None:
        raise KernelError(errno.ENOENT, "no congestion control %r" % name)
    tp = sk.proto_data
    tp.ca_ops = ops
    tp.ca_priv = None
    if ops.init is not None:
        ops.init(sk)


def tcp_available_congestion_control():
    return sorted(_registry())
