"""ethtool and the per-queue sysfs knobs, as control requests.

Linux: net/ethtool/ioctl.c (ethtool -S/-k/-K/-l/-g/-G/-c/-C/-x/-X),
include/linux/ethtool.h (struct ethtool_ops), net/core/net-sysfs.c
(/sys/class/net/DEV/queues/rx-N/rps_cpus), kernel/irq/proc.c
(/proc/irq/N/smp_affinity).

A driver with more to say than struct rtnl_link_stats64 fills
dev.ethtool_ops (wirenic does: per-queue counters, rings, coalescing, RSS,
IRQ affinity). Every request and answer is plain data; rtnetlink.py's
RTNL_OPS maps the control endpoint's op names onto these functions.
"""
import errno

from .dev import KernelError
from .netdevice import NETDEV_FEATURE_ALIASES, NETDEV_FEATURE_NAMES
from .rps import cpumask_parse, show_rps_map, store_rps_map


class EthtoolOps:
    """struct ethtool_ops: the subset emu's drivers implement."""

    __slots__ = ("get_drvinfo", "get_ethtool_stats", "get_channels", "get_ringparam",
                 "set_ringparam", "get_coalesce", "set_coalesce", "get_rxfh", "set_rxfh",
                 "get_irq_affinity", "set_irq_affinity", "get_pauseparam",
                 "set_pauseparam")

    def __init__(self, **methods):
        for name in self.__slots__:
            setattr(self, name, methods.pop(name, None))
        if methods:
            raise TypeError("unknown ethtool_ops: %s" % ", ".join(methods))


def _dev(net, name):
    dev = net.dev_by_name.get(name)
    if dev is None:
        raise KernelError(errno.ENODEV, "Cannot find device \"%s\"" % name)
    return dev


def _op(dev, name):
    ops = dev.ethtool_ops
    fn = getattr(ops, name) if ops is not None else None
    if fn is None:
        raise KernelError(errno.EOPNOTSUPP, "Operation not supported by %s (%s)"
                          % (dev.name, dev.kind))
    return fn


def _call(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except OSError as e:
        if isinstance(e, KernelError):
            raise
        raise KernelError(e.errno or errno.EINVAL, e.strerror or str(e)) from None


def ethtool_get_stats(net, dev):
    """ethtool -S DEV."""
    d = _dev(net, dev)
    ops = d.ethtool_ops
    if ops is not None and ops.get_ethtool_stats is not None:
        return ops.get_ethtool_stats(d)
    # A single-queue software device: its link counters, per queue as they are.
    s = d.stats
    out = {"rx_queue_0_packets": s.rx_packets, "rx_queue_0_bytes": s.rx_bytes,
           "rx_queue_0_drops": s.rx_dropped, "tx_queue_0_packets": s.tx_packets,
           "tx_queue_0_bytes": s.tx_bytes, "tx_queue_0_drops": s.tx_dropped}
    for txq in d._tx:
        out["tx_queue_%d_stops" % txq.index] = txq.tx_stops
        out["tx_queue_%d_restarts" % txq.index] = txq.tx_wakes
    peer = getattr(d.priv, "peer_name", None)
    if peer is not None:
        out["peer"] = peer
    return out


def ethtool_get_features(d):
    return {name: bool(d.features & bit) for bit, name in NETDEV_FEATURE_NAMES
            if (d.features | d.hw_features) & bit}


def ethtool_show(net, dev):
    """ethtool -i/-k/-l/-g/-c/-x DEV in one answer."""
    d = _dev(net, dev)
    out = {"name": d.name, "driver": d.kind, "features": ethtool_get_features(d),
           "fixed": sorted(name for bit, name in NETDEV_FEATURE_NAMES
                           if d.features & bit and not d.hw_features & bit),
           "channels": {"combined": d.real_num_rx_queues, "rx": d.real_num_rx_queues,
                        "tx": d.real_num_tx_queues},
           "queues": ethtool_queue_show(net, dev)}
    ops = d.ethtool_ops
    if ops is not None:
        if ops.get_ringparam is not None:
            out["rings"] = ops.get_ringparam(d)
        if ops.get_coalesce is not None:
            out["coalesce"] = ops.get_coalesce(d)
        if ops.get_rxfh is not None:
            out["rss"] = ops.get_rxfh(d)
        if ops.get_pauseparam is not None:
            out["pause"] = ops.get_pauseparam(d)
    return out


def ethtool_set_features(net, dev, **features):
    """ethtool -K DEV gro off tso on ... (names as ethtool takes them)."""
    d = _dev(net, dev)
    want = d.features
    for name, on in features.items():
        key = name.replace("_", "-")
        bits = NETDEV_FEATURE_ALIASES.get(key)
        if bits is None:
            bits = next((b for b, n in NETDEV_FEATURE_NAMES if n == key), None)
        if bits is None:
            raise KernelError(errno.EINVAL, "unknown feature %r" % name)
        changeable = bits & d.hw_features
        if not changeable:
            raise KernelError(errno.EOPNOTSUPP, "Could not change any device features "
                              "(%s is fixed on %s)" % (name, d.name))
        if on:
            want |= changeable
        else:
            want &= ~changeable
    if want != d.features:
        d.features = want
        d.wanted_features = want
        d.net.notify("NETDEV_FEAT_CHANGE", d)
    return ethtool_get_features(d)


def ethtool_set_ringparam(net, dev, rx=None, tx=None):
    """ethtool -G DEV rx N tx N."""
    d = _dev(net, dev)
    _call(_op(d, "set_ringparam"), d, rx=rx, tx=tx)
    return _op(d, "get_ringparam")(d)


def ethtool_set_coalesce(net, dev, rx_usecs=None, rx_frames=None, tx_usecs=None,
                         tx_frames=None):
    """ethtool -C DEV rx-usecs N rx-frames N tx-usecs N tx-frames N."""
    d = _dev(net, dev)
    _call(_op(d, "set_coalesce"), d, rx_usecs=rx_usecs, rx_frames=rx_frames,
          tx_usecs=tx_usecs, tx_frames=tx_frames)
    return _op(d, "get_coalesce")(d)


def ethtool_set_pauseparam(net, dev, rx=None, tx=None):
    """ethtool -A DEV rx on|off tx on|off."""
    d = _dev(net, dev)
    _call(_op(d, "set_pauseparam"), d, rx=rx, tx=tx)
    return _op(d, "get_pauseparam")(d)


def ethtool_set_rxfh(net, dev, equal=None, indir=None, key=None):
    """ethtool -X DEV equal N | weight ... | hkey KEY."""
    d = _dev(net, dev)
    fn = _op(d, "set_rxfh")
    if equal is not None:
        equal = int(equal)
        if not 1 <= equal <= d.real_num_rx_queues:
            raise KernelError(errno.EINVAL, "equal %d: the device has %d RX queues"
                              % (equal, d.real_num_rx_queues))
        size = len(_op(d, "get_rxfh")(d)["indir"])
        indir = [i % equal for i in range(size)]
    if isinstance(key, str):
        try:
            key = bytes.fromhex(key.replace(":", ""))
        except ValueError:
            raise KernelError(errno.EINVAL, "invalid hkey") from None
    _call(fn, d, key=key, indir=indir)
    return _op(d, "get_rxfh")(d)


def ethtool_queue_show(net, dev):
    """Per receive queue: its rps_cpus and (for a NIC) its IRQ's CPU."""
    d = _dev(net, dev)
    get_irq = d.ethtool_ops.get_irq_affinity if d.ethtool_ops is not None else None
    rows = []
    for rxq in d._rx[:d.real_num_rx_queues]:
        row = {"queue": rxq.index, "rps_cpus": show_rps_map(d, rxq.index),
               "rps_map": list(rxq.rps_map)}
        if get_irq is not None:
            row["irq_cpu"] = get_irq(d, rxq.index)
        rows.append(row)
    return rows


def ethtool_queue_set(net, dev, queue=None, rps_cpus=None, irq_cpu=None, smp_affinity=None):
    """echo MASK > /sys/class/net/DEV/queues/rx-N/rps_cpus (queue None: all of them);
    echo MASK > /proc/irq/N/smp_affinity for the queue's vector (irq_cpu: one CPU)."""
    d = _dev(net, dev)
    queues = range(d.real_num_rx_queues) if queue is None else [int(queue)]
    for q in queues:
        if not 0 <= q < d.real_num_rx_queues:
            raise KernelError(errno.ENOENT, "%s has no rx-%d" % (d.name, q))
    if smp_affinity is not None:
        try:
            _, cpus = cpumask_parse(smp_affinity, len(net.cpus))
        except OSError as e:
            raise KernelError(e.errno, e.strerror) from None
        if not cpus:
            raise KernelError(errno.EINVAL, "an empty smp_affinity")
        irq_cpu = cpus[0]             # the effective affinity: the lowest CPU of the mask
    if irq_cpu is not None:
        fn = _op(d, "set_irq_affinity")
        for q in queues:
            _call(fn, d, q, int(irq_cpu))
    if rps_cpus is not None:
        for q in queues:
            _call(store_rps_map, d, q, rps_cpus)
    return ethtool_queue_show(net, dev)


ETHTOOL_OPS = {
    "ethtool_stats": ethtool_get_stats, "ethtool_show": ethtool_show,
    "features_set": ethtool_set_features, "ring_set": ethtool_set_ringparam,
    "coalesce_set": ethtool_set_coalesce, "rss_set": ethtool_set_rxfh,
    "pause_set": ethtool_set_pauseparam,
    "queue_show": ethtool_queue_show, "queue_set": ethtool_queue_set,
}
