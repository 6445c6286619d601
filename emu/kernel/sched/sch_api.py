"""Packet scheduler API: the qdisc kinds and `tc qdisc add|replace|del|show`.

Linux: net/sched/sch_api.c (register_qdisc, qdisc_create, qdisc_graft,
tc_modify_qdisc, tc_get_qdisc, tc_dump_qdisc)

The control endpoint reaches these through rtnetlink.py's RTNL_OPS
("qdisc_show", "qdisc_add", "qdisc_del").
"""
import errno
from typing import Any, Callable

from ..core.dev import KernelError
from .sch_fifo import bfifo_qdisc_ops, pfifo_qdisc_ops
from .sch_generic import (
    TC_H_ROOT, TCQ_F_ONETXQUEUE, Qdisc, dev_activate, dev_deactivate, noop_qdisc_ops,
    noqueue_qdisc_ops, pfifo_fast_ops,
)
from .sch_mq import mq_qdisc_ops
from .sch_netem import netem_qdisc_ops
from .sch_tbf import tbf_qdisc_ops

# qdisc_base: the kinds `tc qdisc add` knows (register_qdisc at boot).
QDISC_BASE = {ops.id: ops for ops in (pfifo_fast_ops, pfifo_qdisc_ops, bfifo_qdisc_ops,
                                      noqueue_qdisc_ops, mq_qdisc_ops, netem_qdisc_ops,
                                      tbf_qdisc_ops)}


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
        raise KernelError(errno.EINVAL, "invalid parent %r" % parent) from None
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
        _dump_leaves(d, root, rows)
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
            raise KernelError(e.errno or errno.EINVAL, e.strerror or str(e)) from None
    return q


def tc_modify_qdisc(net, dev, kind, parent="root", handle=None, replace=False, change=False,
                    **opts):
    """tc qdisc add|replace|change dev DEV (root | parent H:N) [handle H] KIND [options]."""
    d = _dev(net, dev)
    row = _modify_tree(d, kind, parent, handle, replace, change, opts)
    if row is not None:
        return row
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


def tc_delete_qdisc(net, dev, parent="root", handle=None):
    """tc qdisc del dev DEV root: back to the default qdiscs (del of an mq class: noop)."""
    d = _dev(net, dev)
    cls = _classful_parent(d, parent)
    if cls is not None:
        q, minor = cls
        old = q.ops.leaf(q, minor)
        if old is None or old.handle == 0:
            raise KernelError(errno.ENOENT, "Cannot delete qdisc with handle of zero.")
        q.ops.graft(q, minor, None)
        return {}
    root = d.qdisc
    if parent in (None, "root") and root is not None and root.ops.destroy is not None:
        root.ops.destroy(root)
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


# ---------------------------------------------------------------- classful trees, change

def _walk(d):
    """Every qdisc of d that tc can name: the root, mq's children, classful leaves."""
    root = d.qdisc
    if root is None:
        return
    stack = [root]
    if root.ops is mq_qdisc_ops:
        stack += [txq.qdisc_sleeping for txq in d._tx if txq.qdisc_sleeping is not None]
    while stack:
        q = stack.pop(0)
        yield q
        if q.ops.leaf is not None:
            child = q.ops.leaf(q, 1)
            if child is not None:
                stack.append(child)


def _dump_leaves(d, q, rows):
    """The children grafted under classful qdiscs (a default child, handle 0, stays hidden)."""
    for p in list(_walk(d)):
        if p.ops.leaf is None:
            continue
        child = p.ops.leaf(p, 1)
        if child is not None and child.handle and child.ops is not noop_qdisc_ops:
            rows.append(_row(d, child))


def _split_parent(parent):
    """"H:N" -> (H, N) as numbers; "root" -> None."""
    if parent in (None, "root"):
        return None
    text = str(parent)
    if ":" not in text:
        raise KernelError(errno.EINVAL, "invalid parent %r" % parent)
    major, minor = text.split(":", 1)
    try:
        return int(major or "0", 16), int(minor or "0", 16)
    except ValueError:
        raise KernelError(errno.EINVAL, "invalid parent %r" % parent) from None


def _classful_parent(d, parent):
    """(qdisc, minor) when parent names a class of a classful qdisc such as tbf."""
    hm = _split_parent(parent)
    if hm is None or not hm[0]:
        return None
    for q in _walk(d):
        if q.handle >> 16 == hm[0] and q.ops.graft is not None:
            return q, hm[1]
    return None


def _call_change(q, opts):
    try:
        q.ops.change(q, opts)
    except OSError as e:
        raise KernelError(e.errno or errno.EINVAL, e.strerror or str(e)) from None


def _modify_tree(d, kind, parent, handle, replace, change, opts):
    """tc qdisc change (in place), replace of the same kind (also in place, as
    Linux's tc_modify_qdisc), and grafting under a classful qdisc's class.

    Returns None for what the mq/root code below handles.
    """
    cls = _classful_parent(d, parent)
    if cls is not None:
        pq, minor = cls
        existing = pq.ops.leaf(pq, minor)
    elif parent in (None, "root"):
        existing = d.qdisc
        if existing is not None and (existing.handle == 0 or existing.ops is noop_qdisc_ops):
            existing = None
    else:
        existing = None
        if change:
            hm = _split_parent(parent)
            root = d.qdisc
            if root is not None and root.ops is mq_qdisc_ops and hm and 1 <= hm[1] <= len(d._tx):
                existing = d._tx[hm[1] - 1].qdisc_sleeping
    if handle is not None and existing is not None:
        h = int(str(handle).rstrip(":"), 16) << 16
        if existing.handle != h and change:
            raise KernelError(errno.ENOENT, "Specified qdisc not found.")
    if change or (replace and existing is not None and existing.kind == kind):
        if existing is None or existing.handle == 0:
            raise KernelError(errno.ENOENT, "Specified qdisc not found.")
        if existing.kind != kind:
            raise KernelError(errno.EINVAL, "Invalid qdisc name.")
        if existing.ops.change is None:
            if cls is None:
                return None          # the fifos: a new one in its place, as before
            raise KernelError(errno.EOPNOTSUPP, "Change operation not supported by specified qdisc.")
        _call_change(existing, opts)
        return _row(d, existing)
    if cls is None:
        return None
    pq, minor = cls
    if pq.ops.leaf(pq, minor) is None:
        raise KernelError(errno.ENOENT, "Specified class not found.")
    if existing is not None and existing.handle and not replace:
        raise KernelError(errno.EEXIST, "Exclusivity flag on, cannot modify.")
    if kind == "mq":
        raise KernelError(errno.EINVAL, "mq cannot be a child")
    h = _next_handle(d.net) if handle is None else int(str(handle).rstrip(":"), 16) << 16
    if any(q.handle == h for q in _walk(d)):
        raise KernelError(errno.EEXIST, "Exclusivity flag on, cannot modify.")
    new = qdisc_create(d, pq.dev_queue, kind, (pq.handle & 0xFFFF0000) | minor, h, opts)
    pq.ops.graft(pq, minor, new)
    return _row(d, new)


TC_OPS: dict[str, Callable[..., Any]] = {"qdisc_show": tc_dump_qdisc, "qdisc_add": tc_modify_qdisc,
          "qdisc_del": tc_delete_qdisc}
