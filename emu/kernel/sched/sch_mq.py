"""mq: the root of a multiqueue device, one child qdisc per transmit queue.

Linux: net/sched/sch_mq.c

mq itself queues nothing: dev_queue_xmit enqueues on the chosen transmit
queue's own qdisc (pfifo_fast by default), so the queues never share a lock.
Its statistics are the sum of its children's.
"""
from .sch_generic import TCQ_F_MQROOT, TCQ_F_ONETXQUEUE, QdiscOps, qdisc_create_dflt


def mq_attach(root):
    """mq_init + mq_attach: a default child on every transmit queue."""
    from .sch_api import default_qdisc_ops
    dev = root.dev
    dflt = default_qdisc_ops(dev.net)
    children = []
    for i, txq in enumerate(dev._tx):
        q = qdisc_create_dflt(dev, txq, dflt, (root.handle & 0xFFFF0000) | (i + 1))
        q.flags |= TCQ_F_ONETXQUEUE
        txq.qdisc_sleeping = q
        children.append(q)
    root.priv = children


def mq_init(root, opts=None):
    if root.dev.real_num_tx_queues < 2:
        raise OSError(95, "mq needs a multiqueue device")
    if opts:
        raise OSError(22, "mq takes no options")
    root.flags |= TCQ_F_MQROOT


def mq_dump(root):
    """Sum the children's counters into the root (what `tc -s qdisc` shows for mq)."""
    kids = [txq.qdisc_sleeping for txq in root.dev._tx]
    root.qlen = sum(q.qlen for q in kids)
    root.backlog = sum(q.backlog for q in kids)
    root.bytes = sum(q.bytes for q in kids)
    root.packets = sum(q.packets for q in kids)
    root.drops = sum(q.drops for q in kids)
    root.requeues = sum(q.requeues for q in kids)
    root.overlimits = sum(q.overlimits for q in kids)
    return {}


mq_qdisc_ops = QdiscOps("mq", init=mq_init, attach=mq_attach, dump=mq_dump)
