"""The simple FIFOs: pfifo (a packet limit) and bfifo (a byte limit).

Linux: net/sched/sch_fifo.c
"""
from collections import deque

from .sch_generic import (
    NET_XMIT_SUCCESS, TCQ_F_CAN_BYPASS, QdiscOps, qdisc_dequeue_head, qdisc_drop,
    qdisc_enqueue_tail,
)
from ..core.skbuff import kfree_skb


def pfifo_enqueue(skb, q):
    if q.qlen < q.limit:                  # requeued packets count (sch->q.qlen)
        return qdisc_enqueue_tail(skb, q, q.q)
    return qdisc_drop(skb, q)


def bfifo_enqueue(skb, q):
    if q.backlog + skb.len <= q.limit:
        return qdisc_enqueue_tail(skb, q, q.q)
    return qdisc_drop(skb, q)


def fifo_dequeue(q):
    return qdisc_dequeue_head(q, q.q)


def fifo_peek(q):
    return q.q[0] if q.q else None


def fifo_reset(q):
    while q.q:
        kfree_skb(q.q.popleft(), "QDISC_DROP")


def _fifo_init(q, opts, bytes_):
    """limit defaults to tx_queue_len packets (bfifo: times the MTU in bytes)."""
    q.q = deque()
    dev = q.dev
    limit = (opts or {}).get("limit")
    if limit is None:
        limit = max(dev.tx_queue_len, 1)
        if bytes_:
            limit *= dev.mtu + dev.hard_header_len
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        raise OSError(22, "invalid limit %r" % (limit,)) from None
    if limit < 0:
        raise OSError(22, "invalid limit %r" % (limit,))
    unknown = set(opts or {}) - {"limit"}
    if unknown:
        raise OSError(22, "unknown option %s" % ", ".join(sorted(unknown)))
    q.limit = limit
    bypass = limit >= dev.mtu + dev.hard_header_len if bytes_ else limit >= 1
    if bypass:
        q.flags |= TCQ_F_CAN_BYPASS


def pfifo_init(q, opts=None):
    _fifo_init(q, opts, False)


def bfifo_init(q, opts=None):
    _fifo_init(q, opts, True)


def fifo_dump(q):
    return {"limit": q.limit}


pfifo_qdisc_ops = QdiscOps("pfifo", enqueue=pfifo_enqueue, dequeue=fifo_dequeue,
                           peek=fifo_peek, init=pfifo_init, reset=fifo_reset, dump=fifo_dump)
bfifo_qdisc_ops = QdiscOps("bfifo", enqueue=bfifo_enqueue, dequeue=fifo_dequeue,
                           peek=fifo_peek, init=bfifo_init, reset=fifo_reset, dump=fifo_dump)

__all__ = ["pfifo_qdisc_ops", "bfifo_qdisc_ops", "NET_XMIT_SUCCESS"]
