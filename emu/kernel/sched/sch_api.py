"""Packet scheduler API: the qdisc kinds and `tc qdisc add|replace|del|show`.

Linux: net/sched/sch_api.c (register_qdisc, qdisc_create, qdisc_graft,
tc_modify_qdisc, tc_get_qdisc, tc_dump_qdisc)

The control endpoint reaches these through rtnetlink.py's RTNL_OPS
("qdisc_show", "qdisc_add", "qdisc_del").
"""
import errno

from ..core.dev import KernelError
from .sch_fifo import bfifo_qdisc_ops, pfifo_qdisc_ops
from .sch_generic import (
    TC_H_ROOT, TCQ_F_ONETXQUEUE, Qdisc, dev_activate, dev_deactivate, noop_qdisc_ops,
    noqueue_qdisc_ops, pfifo_fast_ops,
)
from .sch_mq import mq_qdisc_ops

# qdisc_base: the kinds `tc qdisc add` knows (register_qdisc at boot).
QDISC_BASE = {ops.id: ops for ops in (pfifo_fast_ops, pfifo_qdisc_ops, bfifo_qdisc_ops,
                                      noqueue_qdisc_ops, mq_qdisc_ops)}


def default_qdisc_ops(net):
    """net.core.default_qdisc, if it names a queueing kind (else pfifo_fast)."""
    ops = QDISC_BASE.get(net.sysctl.get("net.core.default_qdisc", "pfifo_fast"))
    if ops is None or ops.enqueue is None:
        return pfifo_fast_ops
    return ops


def _dev(net, name):
    dev = net.dev_by_name.get(name)
    if dev is None:
        raise KernelError(errno.ENODEV, "Cannot find device \"%s\"" % name)
    return dev


def _parse_parent(parent):
    """"root" -> None; ":N" or "H:N" -> N (an mq class = transmit queue N-1)."""
    if parent in (None, "root"):
        return None
    text = str(parent)
    if ":" not in text:
        raise KernelError(errno.EINVAL, "invalid parent %r" % parent)
    minor = text.split(":", 1)[1]
    try:
        n = int(minor, 16)
    except ValueError:
        raise KernelError(errno.EINVAL, "invalid parent %r" % parent)
    return n


def _handle_str(h):
    return "%x:" % (h >> 16)


def _parent_str(q):
    if q.parent == TC_H_ROOT:
        return "root"
    major = q.parent >> 16
    return ("%x:%x" % (major, q.parent & 0xFFFF)) if major else (":%x" % (q.parent & 0xFFFF))


def _row(dev, q):
    dump = q.ops.dump(q) if q.ops.dump is not None else {}
    return {"dev": dev.name, "kind": q.kind, "handle": _handle_str(q.handle),
            "parent": _parent_str(q), "root": q.parent == TC_H_ROOT,
            "options": dump,
            "stats": {"bytes": q.bytes, "packets": q.packets, "drops": q.drops,
                      "overlimits": q.overlimits, "requeues": q.requeues,
                      "backlog": q.backlog, "qlen": q.qlen}}


def tc_dump_qdisc(net, dev=None):
    """tc -s qdisc show [dev DEV]: the root qdisc of each device, then its children."""
    rows = []
    for d in net.devices():
        if dev is not None and d.name != dev:
            continue
        root = d.qdisc
        if root is None:
            continue
        rows.append(_row(d, root))
        if root.ops is mq_qdisc_ops:
            for txq in d._tx:
                q = txq.qdisc_sleeping
                if q is not None:
                    rows.append(_row(d, q))
    if dev is not None and not rows:
        _dev(net, dev)
    return rows


def _next_handle(net):
    n = net.proto.get("tc_next_handle", 0x8001)
    net.proto["tc_next_handle"] = n + 1
    return n << 16


def qdisc_create(dev, txq, kind, parent, handle, opts):
    ops = QDISC_BASE.get(kind)
    if ops is None:
        raise KernelError(errno.ENOENT, "Unknown qdisc \"%s\"" % kind)
    q = Qdisc(ops, dev, txq, parent, handle)
    if ops.init is not None:
        try:
            ops.init(q, opts)
        except OSError as e:
            raise KernelError(e.errno or errno.EINVAL, e.strerror or str(e))
    return q


def tc_modify_qdisc(net, dev, kind, parent="root", handle=None, replace=False, **opts):
    """tc qdisc add|replace dev DEV (root | parent :N) KIND [limit N]."""
    d = _dev(net, dev)
    minor = _parse_parent(parent)
    h = _next_handle(net) if handle is None else int(str(handle).rstrip(":"), 16) << 16
    if minor is None:
        old = d.qdisc
        if old is not None and old.handle and old.ops not in (noop_qdisc_ops,) and not replace:
            raise KernelError(errno.EEXIST, "Exclusivity flag on, cannot modify.")
        if kind == "mq":
            if opts:
                raise KernelError(errno.EINVAL, "mq takes no options")
            if d.real_num_tx_queues < 2:
                raise KernelError(errno.EOPNOTSUPP, "mq needs a multiqueue device")
        new = qdisc_create(d, d._tx[0], kind, TC_H_ROOT, h, opts)
        up = bool(d.flags & 1)
        if up:
            dev_deactivate(d)
        if kind == "mq":
            d.qdisc = new
            new.ops.attach(new)
        else:
            if d.real_num_tx_queues == 1:
                new.flags |= TCQ_F_ONETXQUEUE
            for txq in d._tx:
                txq.qdisc_sleeping = new
            d.qdisc = new
        if up:
            dev_activate(d)
        return _row(d, new)
    root = d.qdisc
    if root is None or root.ops is not mq_qdisc_ops:
        raise KernelError(errno.EINVAL, "parent %s: only the classes of an mq root take qdiscs"
                          % parent)
    if not 1 <= minor <= d.real_num_tx_queues:
        raise KernelError(errno.ENOENT, "mq has no class %s" % parent)
    txq = d._tx[minor - 1]
    old = txq.qdisc_sleeping
    if old is not None and old.handle and not replace:
        raise KernelError(errno.EEXIST, "Exclusivity flag on, cannot modify.")
    new = qdisc_create(d, txq, kind, (root.handle & 0xFFFF0000) | minor, h, opts)
    if kind in ("mq",):
        raise KernelError(errno.EINVAL, "mq cannot be a child")
    new.flags |= TCQ_F_ONETXQUEUE
    up = bool(d.flags & 1)
    if up:
        dev_deactivate(d)
    txq.qdisc_sleeping = new
    root.priv[minor - 1] = new
    if up:
        dev_activate(d)
    return _row(d, new)


def tc_delete_qdisc(net, dev, parent="root"):
    """tc qdisc del dev DEV root: back to the default qdiscs (del of an mq class: noop)."""
    d = _dev(net, dev)
    minor = _parse_parent(parent)
    up = bool(d.flags & 1)
    if minor is None:
        root = d.qdisc
        if root is None or root.ops in (noop_qdisc_ops,) or (
                root.handle == 0 and root.ops is noqueue_qdisc_ops):
            raise KernelError(errno.ENOENT, "Cannot delete qdisc with handle of zero.")
        if up:
            dev_deactivate(d)
        noop = Qdisc(noop_qdisc_ops, d, d._tx[0])
        d.qdisc = noop
        for txq in d._tx:
            txq.qdisc_sleeping = noop
        if up:
            dev_activate(d)      # attach_default_qdiscs
        return {}
    root = d.qdisc
    if root is None or root.ops is not mq_qdisc_ops or not 1 <= minor <= d.real_num_tx_queues:
        raise KernelError(errno.ENOENT, "no qdisc at parent %s" % parent)
    txq = d._tx[minor - 1]
    if up:
        dev_deactivate(d)
    noop = Qdisc(noop_qdisc_ops, d, txq, (root.handle & 0xFFFF0000) | minor)
    txq.qdisc_sleeping = noop
    root.priv[minor - 1] = noop
    if up:
        dev_activate(d)
    return {}


TC_OPS = {"qdisc_show": tc_dump_qdisc, "qdisc_add": tc_modify_qdisc,
          "qdisc_del": tc_delete_qdisc}
