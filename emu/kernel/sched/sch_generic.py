"""Generic packet scheduler: the Qdisc, running it, and the default qdiscs.

Linux: net/sched/sch_generic.c (noop, noqueue, pfifo_fast, qdisc_restart,
sch_direct_xmit, __qdisc_run, dev_activate/dev_deactivate, dev_requeue_skb),
net/core/dev.c (__dev_xmit_skb), include/net/sch_generic.h,
include/net/pkt_sched.h (qdisc_run), net/ipv4/route.c (ip_tos2prio).

dev_queue_xmit picks a transmit queue and enqueues on its qdisc
(__dev_xmit_skb); an empty, idle work-conserving qdisc is bypassed
(sch_direct_xmit). Running the qdisc (__qdisc_run) dequeues and hands packets
to the driver (qdisc_restart -> sch_direct_xmit -> validate_xmit_skb ->
dev_hard_start_xmit) until it is empty, dev_tx_weight packets were sent (then
NET_TX goes on later: __netif_schedule), or the driver's queue is stopped
(netif_tx_stop_queue when its ring is full; a NETDEV_TX_BUSY skb is requeued).
The driver's netif_tx_wake_queue schedules the qdisc again on NET_TX.

Devices with IFF_NO_QUEUE (veth, bridge, loopback) get noqueue: no Qdisc at
all (txq.qdisc is None) and dev_queue_xmit calls the driver directly. Other
devices get pfifo_fast (net.core.default_qdisc), or mq with one pfifo_fast
per transmit queue when they have several.

Emulation note: every node runs under one kernel lock, so the qdisc root
lock and the TCQ_F_NOLOCK variant are one path; no bulk dequeue (BQL is not
modelled): one packet per qdisc_restart.
"""
from collections import deque

from ..core.napi import __netif_schedule
from ..core.netdevice import IFF_NO_QUEUE, NETDEV_TX_BUSY
from ..core.skbuff import SKB_DROP_REASON_DEV_READY, kfree_skb

# include/uapi/linux/pkt_sched.h
TC_PRIO_BESTEFFORT = 0
TC_PRIO_FILLER = 1
TC_PRIO_BULK = 2
TC_PRIO_INTERACTIVE_BULK = 4
TC_PRIO_INTERACTIVE = 6
TC_PRIO_CONTROL = 7
TC_PRIO_MAX = 15
TC_H_ROOT = 0xFFFFFFFF
TC_H_UNSPEC = 0

# Qdisc flags (include/net/sch_generic.h)
TCQ_F_BUILTIN = 1
TCQ_F_INGRESS = 2
TCQ_F_CAN_BYPASS = 4
TCQ_F_MQROOT = 8
TCQ_F_ONETXQUEUE = 0x10

# Qdisc state bits
__QDISC_STATE_SCHED = 1 << 0          # on an output_queue (napi.__netif_schedule)
__QDISC_STATE_DEACTIVATED = 1 << 1
__QDISC_STATE_RUNNING = 1 << 2

NET_XMIT_SUCCESS = 0x00
NET_XMIT_DROP = 0x01
NET_XMIT_CN = 0x02
NET_XMIT_MASK = 0x0F

SKB_DROP_REASON_QDISC_DROP = "QDISC_DROP"

# net/sched/sch_generic.c: prio2band (priority -> pfifo_fast band; 0 goes first)
PRIO2BAND = (1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
PFIFO_FAST_BANDS = 3

# net/ipv4/route.c: ip_tos2prio, indexed by IPTOS_TOS(tos) >> 1
ECN_OR_COST = TC_PRIO_FILLER
IP_TOS2PRIO = (
    TC_PRIO_BESTEFFORT, ECN_OR_COST, TC_PRIO_BESTEFFORT, ECN_OR_COST,
    TC_PRIO_BULK, ECN_OR_COST, TC_PRIO_BULK, ECN_OR_COST,
    TC_PRIO_INTERACTIVE, ECN_OR_COST, TC_PRIO_INTERACTIVE, ECN_OR_COST,
    TC_PRIO_INTERACTIVE_BULK, ECN_OR_COST, TC_PRIO_INTERACTIVE_BULK, ECN_OR_COST,
)


def rt_tos2priority(tos):
    """The skb priority a TOS byte maps to (include/net/route.h)."""
    return IP_TOS2PRIO[(tos & 0x1E) >> 1]


class QdiscOps:
    """struct Qdisc_ops: one queueing discipline's methods."""

    __slots__ = ("id", "enqueue", "dequeue", "peek", "init", "reset", "destroy",
                 "dump", "attach", "static_flags", "change", "graft", "leaf")

    def __init__(self, id, enqueue=None, dequeue=None, peek=None, init=None,
                 reset=None, destroy=None, dump=None, attach=None, static_flags=0,
                 change=None, graft=None, leaf=None):
        self.id = id
        self.enqueue = enqueue       # (skb, q) -> NET_XMIT_*
        self.dequeue = dequeue       # (q) -> skb or None
        self.peek = peek
        self.init = init             # (q, opts) -> None (raise OSError on bad opts)
        self.reset = reset           # (q): drop everything queued
        self.destroy = destroy
        self.dump = dump             # (q) -> dict of options (tc qdisc show)
        self.attach = attach         # (q): mq grafts its children
        self.static_flags = static_flags
        self.change = change         # (q, opts): tc qdisc change, in place
        self.graft = graft           # (q, minor, new) -> old: a classful qdisc's child
        self.leaf = leaf             # (q, minor) -> the child qdisc of that class


class Qdisc:
    """struct Qdisc: an instance of a queueing discipline on a device."""

    __slots__ = ("ops", "kind", "handle", "parent", "dev", "dev_queue", "flags",
                 "state", "limit", "q", "qlen", "backlog", "gso_skb", "bytes",
                 "packets", "drops", "requeues", "overlimits", "priv")

    def __init__(self, ops, dev, dev_queue, parent=TC_H_ROOT, handle=0):
        self.ops = ops
        self.kind = ops.id
        self.handle = handle
        self.parent = parent
        self.dev = dev
        self.dev_queue = dev_queue
        self.flags = ops.static_flags
        self.state = 0
        self.limit = 0
        self.q = None                # the discipline's queue(s)
        self.qlen = 0                # packets queued, requeued ones included
        self.backlog = 0             # bytes queued
        self.gso_skb = deque()       # requeued by dev_requeue_skb: sent first
        self.bytes = 0               # bstats
        self.packets = 0
        self.drops = 0               # qstats
        self.requeues = 0
        self.overlimits = 0
        self.priv = None

    def __repr__(self):
        return "<Qdisc %s %x: dev %s qlen %d>" % (self.kind, self.handle >> 16,
                                                  self.dev.name, self.qlen)

    def enqueue(self, skb):
        return self.ops.enqueue(skb, self)

    def dequeue(self):
        return self.ops.dequeue(self)

    def run(self):
        """qdisc_run (how NET_TX reaches this module)."""
        qdisc_run(self)


def qdisc_drop(skb, q, reason=SKB_DROP_REASON_QDISC_DROP):
    q.drops += 1
    kfree_skb(skb, reason)
    return NET_XMIT_DROP


def qdisc_enqueue_tail(skb, q, lst):
    lst.append(skb)
    q.qlen += 1
    q.backlog += skb.len
    return NET_XMIT_SUCCESS


def qdisc_dequeue_head(q, lst):
    if not lst:
        return None
    skb = lst.popleft()
    q.qlen -= 1
    q.backlog -= skb.len
    q.bytes += skb.len
    q.packets += 1
    return skb


def qdisc_reset(q):
    """Drop everything queued (requeued packets too)."""
    if q.ops.reset is not None:
        q.ops.reset(q)
    while q.gso_skb:
        kfree_skb(q.gso_skb.popleft(), SKB_DROP_REASON_QDISC_DROP)
    q.qlen = 0
    q.backlog = 0


# ---------------------------------------------------------------- noop

def noop_enqueue(skb, q):
    """The qdisc of a device that is down: every packet is dropped.

    Emulation note: the drop is counted under DEV_READY (the device is not
    ready), like the noqueue path of a device that is down.
    """
    skb.dev.stats.tx_dropped += 1
    q.drops += 1
    kfree_skb(skb, SKB_DROP_REASON_DEV_READY)
    return NET_XMIT_CN


def noop_dequeue(q):
    return None


noop_qdisc_ops = QdiscOps("noop", enqueue=noop_enqueue, dequeue=noop_dequeue,
                          static_flags=TCQ_F_BUILTIN)
noqueue_qdisc_ops = QdiscOps("noqueue", static_flags=TCQ_F_BUILTIN)


# ---------------------------------------------------------------- pfifo_fast

def pfifo_fast_init(q, opts=None):
    q.q = [deque() for _ in range(PFIFO_FAST_BANDS)]
    q.limit = q.dev.tx_queue_len or 1
    q.flags |= TCQ_F_CAN_BYPASS
    if opts:
        raise OSError(22, "pfifo_fast takes no options")


def pfifo_fast_enqueue(skb, q):
    """Three bands by skb.priority through prio2band; each holds tx_queue_len packets."""
    band = q.q[PRIO2BAND[skb.priority & TC_PRIO_MAX]]
    if len(band) >= q.limit:
        return qdisc_drop(skb, q)
    band.append(skb)
    q.qlen += 1
    q.backlog += skb.len
    return NET_XMIT_SUCCESS


def pfifo_fast_dequeue(q):
    for band in q.q:
        if band:
            skb = band.popleft()
            q.qlen -= 1
            q.backlog -= skb.len
            q.bytes += skb.len
            q.packets += 1
            return skb
    return None


def pfifo_fast_peek(q):
    for band in q.q:
        if band:
            return band[0]
    return None


def pfifo_fast_reset(q):
    for band in q.q:
        while band:
            kfree_skb(band.popleft(), SKB_DROP_REASON_QDISC_DROP)


def pfifo_fast_dump(q):
    return {"bands": PFIFO_FAST_BANDS, "priomap": list(PRIO2BAND),
            "band_qlen": [len(b) for b in q.q]}


pfifo_fast_ops = QdiscOps("pfifo_fast", enqueue=pfifo_fast_enqueue,
                          dequeue=pfifo_fast_dequeue, peek=pfifo_fast_peek,
                          init=pfifo_fast_init, reset=pfifo_fast_reset,
                          dump=pfifo_fast_dump)


# ---------------------------------------------------------------- running a qdisc

def qdisc_run_begin(q):
    if q.state & __QDISC_STATE_RUNNING:
        return False
    q.state |= __QDISC_STATE_RUNNING
    return True


def qdisc_run_end(q):
    q.state &= ~__QDISC_STATE_RUNNING


def dev_requeue_skb(skb, q):
    """The driver said NETDEV_TX_BUSY: keep skb (or the rest of a list) in front."""
    items = skb if type(skb) is list else (skb,)
    for s in items:
        q.gso_skb.append(s)
        q.requeues += 1
        q.qlen += 1
        q.backlog += s.len
    __netif_schedule(q)


def dequeue_skb(q):
    """The next packet to send: a requeued one first (if its queue runs); (skb, validate)."""
    gso = q.gso_skb
    if gso:
        skb = gso[0]
        txq = q.dev._tx[skb.queue_mapping] if skb.queue_mapping < q.dev.real_num_tx_queues \
            else q.dev_queue
        if txq.state & 7:                   # netif_xmit_frozen_or_stopped
            return None, False
        gso.popleft()
        q.qlen -= 1
        q.backlog -= skb.len
        return skb, False
    if q.flags & TCQ_F_ONETXQUEUE and q.dev_queue.state & 7:
        return None, False
    skb = q.ops.dequeue(q)
    return skb, True


def sch_direct_xmit(skb, q, dev, txq, validate):
    """Send skb (dequeued or bypassing q) to the driver; False if q should stop.

    A NETDEV_TX_BUSY (or a stopped queue) requeues what was not sent.
    """
    if type(skb) is not list and skb.trace is not None:
        skb.trace.hit("sch_direct_xmit", dev.name)
    if validate:
        skb = core_dev.validate_xmit_skb_list(skb, dev)
        if skb is None:
            return True
    if not txq.state & 7:
        skb, ret = core_dev.dev_hard_start_xmit_list(skb, dev, txq)
    else:
        ret = NETDEV_TX_BUSY
    if ret >= NET_XMIT_MASK and skb is not None:     # !dev_xmit_complete
        dev_requeue_skb(skb, q)
        return False
    return True


def qdisc_restart(q):
    """Dequeue one packet and send it; False when there is nothing (more) to do now."""
    skb, validate = dequeue_skb(q)
    if skb is None:
        return False
    dev = q.dev
    qm = skb.queue_mapping
    txq = dev._tx[qm] if qm < dev.real_num_tx_queues else dev._tx[0]
    return sch_direct_xmit(skb, q, dev, txq, validate)


def __qdisc_run(q):
    """Send until empty, stopped, or dev_tx_weight packets: then let NET_TX go on."""
    sysctl = q.dev.net.sysctl
    quota = sysctl["net.core.dev_weight"] * sysctl["net.core.dev_weight_tx_bias"]
    while qdisc_restart(q):
        quota -= 1
        if quota <= 0:
            __netif_schedule(q)
            break


def qdisc_run(q):
    if qdisc_run_begin(q):
        __qdisc_run(q)
        qdisc_run_end(q)


def qdisc_xmit(skb, q, dev, txq):
    """__dev_xmit_skb: enqueue on q and run it, or bypass an empty idle q."""
    if q.state & __QDISC_STATE_DEACTIVATED:
        return qdisc_drop(skb, q, SKB_DROP_REASON_DEV_READY)
    if q.flags & TCQ_F_CAN_BYPASS and not q.qlen and qdisc_run_begin(q):
        # Work-conserving, nothing waiting, not running: straight to the driver.
        q.bytes += skb.len
        q.packets += 1
        if sch_direct_xmit(skb, q, dev, txq, True):
            __qdisc_run(q)
        qdisc_run_end(q)
        return NET_XMIT_SUCCESS
    rc = q.ops.enqueue(skb, q) & NET_XMIT_MASK     # dev_qdisc_enqueue
    if qdisc_run_begin(q):
        __qdisc_run(q)
        qdisc_run_end(q)
    return rc


# ---------------------------------------------------------------- attaching qdiscs to devices

def qdisc_create_dflt(dev, dev_queue, ops, parent):
    q = Qdisc(ops, dev, dev_queue, parent)
    if ops.init is not None:
        ops.init(q, None)
    return q


def dev_init_scheduler(dev):
    """register_netdevice: the device and its queues start with noop_qdisc."""
    noop = Qdisc(noop_qdisc_ops, dev, dev._tx[0])
    dev.qdisc = noop
    for txq in dev._tx:
        txq.qdisc = noop
        txq.qdisc_sleeping = noop


def attach_default_qdiscs(dev):
    """noqueue for IFF_NO_QUEUE devices, else the default qdisc, or mq on multiqueue."""
    from .sch_api import default_qdisc_ops       # (they build on this module)
    from .sch_mq import mq_qdisc_ops
    if dev.priv_flags & IFF_NO_QUEUE or not dev.tx_queue_len:
        nq = Qdisc(noqueue_qdisc_ops, dev, dev._tx[0])
        for txq in dev._tx:
            txq.qdisc_sleeping = nq
        dev.qdisc = nq
        return
    dflt = default_qdisc_ops(dev.net)
    if dev.real_num_tx_queues == 1:
        q = qdisc_create_dflt(dev, dev._tx[0], dflt, TC_H_ROOT)
        q.flags |= TCQ_F_ONETXQUEUE
        dev._tx[0].qdisc_sleeping = q
        dev.qdisc = q
        return
    root = qdisc_create_dflt(dev, dev._tx[0], mq_qdisc_ops, TC_H_ROOT)
    dev.qdisc = root
    root.ops.attach(root)


def dev_activate(dev):
    """The device is up: its queues get their configured (or the default) qdiscs."""
    if dev.qdisc is None or dev.qdisc.ops is noop_qdisc_ops:
        attach_default_qdiscs(dev)
    for txq in dev._tx:
        q = txq.qdisc_sleeping
        txq.qdisc = None if q.ops is noqueue_qdisc_ops else q
        q.state &= ~__QDISC_STATE_DEACTIVATED


def dev_deactivate(dev):
    """The device goes down: what is queued is dropped, the queues point at noop."""
    noop = Qdisc(noop_qdisc_ops, dev, dev._tx[0])
    for txq in dev._tx:
        q = txq.qdisc
        if q is not None and q.ops is not noop_qdisc_ops:
            q.state |= __QDISC_STATE_DEACTIVATED
            qdisc_reset(q)
        txq.qdisc = noop


def dev_shutdown(dev):
    """unregister_netdevice: the qdiscs go away."""
    for txq in dev._tx:
        for q in (txq.qdisc, txq.qdisc_sleeping):
            if q is not None and q.ops is not noop_qdisc_ops:
                qdisc_reset(q)
    dev_init_scheduler(dev)


# ---------------------------------------------------------------- waking a stopped queue

def netif_tx_wake_queue(txq):
    """The driver has room again: restart the queue and run its qdisc on NET_TX."""
    if txq.state & 1:                      # __QUEUE_STATE_DRV_XOFF
        txq.state &= ~1
        txq.tx_wakes += 1
        q = txq.qdisc
        if q is not None and q.ops is not noop_qdisc_ops:
            __netif_schedule(q)


def netif_wake_subqueue(dev, index):
    netif_tx_wake_queue(dev._tx[index])


def netif_wake_queue(dev):
    netif_tx_wake_queue(dev._tx[0])


def netif_tx_wake_all_queues(dev):
    for txq in dev._tx:
        netif_tx_wake_queue(txq)


# Bound late: dev.c calls into us and we into it.
from ..core import dev as core_dev  # noqa: E402
