"""tbf: the token bucket filter, a classful shaper with one child.

Linux: net/sched/sch_tbf.c, net/sched/sch_generic.c (psched_ratecfg_precompute,
psched_l2t_ns), net/sched/sch_fifo.c (fifo_create_dflt).

Tokens are nanoseconds of transmission time at `rate`: the bucket holds at
most `buffer` (the burst's worth); a packet leaves when the bucket, refilled
by the time since the last departure, covers its length (and the peak bucket
too, with peakrate). Otherwise the watchdog fires when it will, and the
qdisc counts an overlimit. The child (default: a bfifo of `limit` bytes,
hidden as Linux hides it) holds the queue; `tc qdisc add ... parent 1:1`
grafts another (netem, pfifo...) in its place.

Options arrive as tc sends them (tc_tbf_qopt with TCA_TBF_BURST): rate and
peakrate in bytes per second, burst, mtu and limit in bytes.

Emulation note: psched_l2t_ns divides exactly instead of Linux's
multiply-shift approximation; no linklayer/ATM cell or mpu accounting.
"""
from ..core.netdevice import NETIF_F_GSO_MASK
from ..core.skbuff import consume_skb, kfree_skb, skb_is_gso
from .sch_fifo import bfifo_qdisc_ops
from .sch_generic import (
    NET_XMIT_DROP, NET_XMIT_SUCCESS, Qdisc, QdiscOps, SKB_DROP_REASON_QDISC_DROP, noop_qdisc_ops,
    qdisc_reset,
)
from .sch_netem import (
    QdiscWatchdog, ktime_get_ns, net_xmit_drop_count, qdisc_dequeue_peeked, qdisc_peek,
    qdisc_peek_dequeued, qdisc_pkt_len, qdisc_watchdog_cancel, qdisc_watchdog_schedule_ns,
)

NSEC_PER_SEC = 1000000000
U32_MAX = 0xFFFFFFFF


def psched_l2t_ns(rate, length):
    """Nanoseconds to send length bytes at rate bytes per second."""
    return length * NSEC_PER_SEC // rate


def psched_ns_t2l(rate, ns):
    """Bytes sent at rate in ns nanoseconds."""
    return rate * ns // NSEC_PER_SEC


class TbfSchedData:
    """struct tbf_sched_data."""

    def __init__(self, q):
        self.limit = 0
        self.max_size = 0
        self.buffer = 0
        self.mtu = 0
        self.rate = 0
        self.peak = 0
        self.tokens = 0
        self.ptokens = 0
        self.t_c = 0
        self.qdisc = None
        self.watchdog = QdiscWatchdog(q)
        self.opts = {}


def _child_enqueue(skb, child):
    return child.ops.enqueue(skb, child)


def tbf_segment(skb, q):
    """A GSO skb bigger than the bucket: segment it and queue the segments one by one."""
    from ..core import gso
    from ..core.dev import netif_skb_features
    pd = q.priv
    features = netif_skb_features(skb, skb.dev) & ~NETIF_F_GSO_MASK
    segs = gso.skb_gso_segment(skb, features)
    if type(segs) is int or not segs:
        q.drops += 1
        kfree_skb(skb, SKB_DROP_REASON_QDISC_DROP)
        return NET_XMIT_DROP
    consume_skb(skb)
    nb = 0
    for s in segs:
        length = s.len
        ret = _child_enqueue(s, pd.qdisc)
        if ret != NET_XMIT_SUCCESS:
            if net_xmit_drop_count(ret):
                q.drops += 1
        else:
            q.backlog += length
            q.qlen += 1
            nb += 1
    return NET_XMIT_SUCCESS if nb > 0 else NET_XMIT_DROP


def tbf_enqueue(skb, q):
    pd = q.priv
    length = qdisc_pkt_len(skb)
    if length > pd.max_size:
        if skb_is_gso(skb):
            return tbf_segment(skb, q)
        q.drops += 1
        kfree_skb(skb, SKB_DROP_REASON_QDISC_DROP)
        return NET_XMIT_DROP
    blen = skb.len
    ret = _child_enqueue(skb, pd.qdisc)
    if ret != NET_XMIT_SUCCESS:
        if net_xmit_drop_count(ret):
            q.drops += 1
        return ret
    q.backlog += blen
    q.qlen += 1
    return NET_XMIT_SUCCESS


def tbf_dequeue(q):
    pd = q.priv
    skb = qdisc_peek(pd.qdisc)
    if skb is None:
        return None
    now = ktime_get_ns(q.dev.net)
    length = qdisc_pkt_len(skb)
    toks = min(now - pd.t_c, pd.buffer)
    ptoks = 0
    if pd.peak:
        ptoks = min(toks + pd.ptokens, pd.mtu) - psched_l2t_ns(pd.peak, length)
    toks = min(toks + pd.tokens, pd.buffer) - psched_l2t_ns(pd.rate, length)
    if (toks | ptoks) >= 0:
        skb = qdisc_dequeue_peeked(pd.qdisc)
        if skb is None:
            return None
        pd.t_c = now
        pd.tokens = toks
        pd.ptokens = ptoks
        q.backlog -= skb.len
        q.qlen -= 1
        q.bytes += skb.len
        q.packets += 1
        return skb
    qdisc_watchdog_schedule_ns(pd.watchdog, now + max(-toks, -ptoks))
    # A shorter packet behind might fit now, but tbf must not reorder.
    q.overlimits += 1
    return None


def tbf_reset(q):
    pd = q.priv
    if pd.qdisc is not None:
        qdisc_reset(pd.qdisc)
    q.qlen = 0
    q.backlog = 0
    pd.t_c = ktime_get_ns(q.dev.net)
    pd.tokens = pd.buffer
    pd.ptokens = pd.mtu
    qdisc_watchdog_cancel(pd.watchdog)


def _u(opts, key, default=None, hi=(1 << 64) - 1):
    v = opts.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
        raise OSError(22, "tbf: invalid %s %r" % (key, v))
    return v


def fifo_create_dflt(q, limit):
    """A bfifo of limit bytes under q (the child tbf starts with), hidden from tc show."""
    child = Qdisc(bfifo_qdisc_ops, q.dev, q.dev_queue, (q.handle & 0xFFFF0000) | 1, 0)
    bfifo_qdisc_ops.init(child, {"limit": limit})
    return child


def tbf_change(q, opts):
    opts = dict(opts or {})
    unknown = set(opts) - {"rate", "burst", "limit", "peakrate", "mtu"}
    if unknown:
        raise OSError(22, "tbf: unknown option %s" % ", ".join(sorted(unknown)))
    rate = _u(opts, "rate")
    burst = _u(opts, "burst", hi=U32_MAX)
    limit = _u(opts, "limit", 0, hi=U32_MAX)
    peak = _u(opts, "peakrate", 0)
    mtu = _u(opts, "mtu", 0, hi=U32_MAX)
    if not rate or not burst:
        raise OSError(22, "tbf: rate and burst are required")
    buffer = psched_l2t_ns(rate, burst)
    max_size = burst
    mtu_ns = 0
    if peak:
        if peak <= rate:
            raise OSError(22, "sch_tbf: peakrate %d is lower than or equals to rate %d !"
                          % (peak * 8, rate * 8))
        if not mtu:
            raise OSError(22, "tbf: peakrate needs mtu")
        mtu_ns = psched_l2t_ns(peak, mtu)
        max_size = min(max_size, mtu)
    if not max_size:
        raise OSError(22, "tbf: burst too small")
    pd = q.priv
    if pd.qdisc is not None and pd.qdisc.ops is not noop_qdisc_ops:
        if pd.qdisc.ops is bfifo_qdisc_ops and pd.qdisc.handle == 0:
            pd.qdisc.limit = limit           # fifo_set_limit
    elif limit > 0:
        pd.qdisc = fifo_create_dflt(q, limit)
    pd.limit = limit
    pd.mtu = mtu_ns
    pd.max_size = max_size
    pd.buffer = buffer
    pd.tokens = buffer
    pd.ptokens = mtu_ns
    pd.rate = rate
    pd.peak = peak
    pd.opts = {"rate": rate, "burst": burst, "limit": limit}
    if peak:
        pd.opts.update(peakrate=peak, mtu=mtu)


def tbf_init(q, opts=None):
    q.priv = TbfSchedData(q)
    q.priv.t_c = ktime_get_ns(q.dev.net)
    q.priv.qdisc = Qdisc(noop_qdisc_ops, q.dev, q.dev_queue)
    tbf_change(q, opts or {})


def tbf_dump(q):
    return dict(q.priv.opts)


def tbf_leaf(q, minor):
    return q.priv.qdisc if minor == 1 else None


def tbf_graft(q, minor, new):
    """Put new under class 1 (None: back to noop); the old child's packets are dropped."""
    pd = q.priv
    if minor != 1:
        raise OSError(2, "Specified class not found.")
    if new is None:
        new = Qdisc(noop_qdisc_ops, q.dev, q.dev_queue)
    old = pd.qdisc
    pd.qdisc = new
    if old is not None:
        q.qlen -= old.qlen
        q.backlog -= old.backlog
        qdisc_reset(old)
        destroy = old.ops.destroy
        if destroy is not None:
            destroy(old)
    return old


def tbf_destroy(q):
    pd = q.priv
    qdisc_watchdog_cancel(pd.watchdog)
    if pd.qdisc is not None and pd.qdisc.ops.destroy is not None:
        pd.qdisc.ops.destroy(pd.qdisc)


tbf_qdisc_ops = QdiscOps("tbf", enqueue=tbf_enqueue, dequeue=tbf_dequeue,
                         peek=qdisc_peek_dequeued, init=tbf_init, reset=tbf_reset,
                         destroy=tbf_destroy, dump=tbf_dump, change=tbf_change,
                         graft=tbf_graft, leaf=tbf_leaf)
