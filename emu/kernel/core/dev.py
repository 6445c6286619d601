"""Device registration, the transmit path and the core of the receive path.

Linux: net/core/dev.c, net/core/dev.h. Linux's dev.c is 10k+ lines; emu
splits it: this file (registration, dev_queue_xmit, validate_xmit_skb,
netif_rx, netif_receive_skb_list_internal, __netif_receive_skb_core,
process_backlog), napi.py (softnet_data, NAPI, net_rx_action, backlog
enqueue, RPS IPIs), gro.py (GRO), rps.py (flow hash, get_rps_cpu) and gso.py
(skb_gso_segment). The qdisc half of the transmit path is in sched/.
"""
import errno

from .netdevice import (
    IF_OPER_DOWN, IF_OPER_UP, IFF_LOWER_UP, IFF_RUNNING, IFF_UP,
    NET_RX_DROP, NET_RX_SUCCESS, NETDEV_TX_BUSY, NETDEV_TX_OK,
    NETIF_F_GSO_MASK, NETIF_F_HW_CSUM, NETIF_F_IP_CSUM, NETIF_F_LLTX, NETIF_F_SG,
    NETIF_F_SOFT_FEATURES, RX_HANDLER_ANOTHER, RX_HANDLER_CONSUMED, RX_HANDLER_EXACT,
    net_gso_ok, netif_running,
)
from .napi import NAPI_STATE_SCHED, enqueue_to_backlog
from .rps import get_rps_cpu, skb_tx_hash
from .skbuff import (
    CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, PACKET_OUTGOING, SKB_DROP_REASON_DEV_READY,
    SKB_DROP_REASON_NOT_SPECIFIED, SKB_DROP_REASON_UNHANDLED_PROTO, consume_skb,
    SKB_DROP_REASON_PKT_TOO_SMALL, kfree_skb, skb_checksum_help, skb_clone, skb_linearize,
)

class KernelError(OSError):
    """A failed kernel call: carries the errno Linux would return."""

    def __init__(self, err, msg=None):
        super().__init__(err, msg or errno.errorcode.get(err, str(err)))


# ---------------------------------------------------------------- registration

def dev_get_by_name(net, name):
    return net.dev_by_name.get(name)


def dev_get_by_index(net, ifindex):
    return net.dev_by_index.get(ifindex)


def register_netdevice(net, dev):
    """Give dev an ifindex and put it on the net's device lists."""
    if not dev.name or len(dev.name) >= 16 or "/" in dev.name or " " in dev.name:
        raise KernelError(errno.EINVAL, "invalid device name %r" % dev.name)
    if dev.name in net.dev_by_name:
        raise KernelError(errno.EEXIST, "device %s exists" % dev.name)
    dev.net = net
    ops = dev.netdev_ops
    if ops is not None and ops.ndo_init is not None:
        ops.ndo_init(dev)
    net.ifindex_next += 1
    dev.ifindex = net.ifindex_next
    # Software features every device has (and `ethtool -K` may turn off).
    dev.hw_features |= NETIF_F_SOFT_FEATURES
    dev.features |= NETIF_F_SOFT_FEATURES
    dev.wanted_features = dev.features
    net.dev_by_name[dev.name] = dev
    net.dev_by_index[dev.ifindex] = dev
    dev.registered = True
    sch_generic.dev_init_scheduler(dev)
    net.notify("NETDEV_REGISTER", dev)
    return dev


def unregister_netdevice(dev):
    net = dev.net
    if netif_running(dev):
        dev_close(dev)
    net.notify("NETDEV_UNREGISTER", dev)
    ops = dev.netdev_ops
    if ops is not None and ops.ndo_uninit is not None:
        ops.ndo_uninit(dev)
    del net.dev_by_name[dev.name]
    del net.dev_by_index[dev.ifindex]
    sch_generic.dev_shutdown(dev)
    dev.registered = False


def dev_open(dev):
    """ip link set DEV up."""
    if netif_running(dev):
        return 0
    ops = dev.netdev_ops
    if ops is not None and ops.ndo_open is not None:
        ops.ndo_open(dev)
    dev.flags |= IFF_UP
    if dev.carrier:
        dev.flags |= IFF_RUNNING | IFF_LOWER_UP
        dev.operstate = IF_OPER_UP
        sch_generic.dev_activate(dev)
    else:
        # dev_activate: "delay activation until next carrier-on event".
        from .link_watch import rfc2863_policy
        rfc2863_policy(dev)
    dev.net.notify("NETDEV_UP", dev)
    return 0


def dev_close(dev):
    """ip link set DEV down."""
    if not netif_running(dev):
        return 0
    dev.net.notify("NETDEV_GOING_DOWN", dev)
    sch_generic.dev_deactivate(dev)
    ops = dev.netdev_ops
    if ops is not None and ops.ndo_stop is not None:
        ops.ndo_stop(dev)
    dev.flags &= ~(IFF_UP | IFF_RUNNING | IFF_LOWER_UP)
    dev.operstate = IF_OPER_DOWN
    dev.net.notify("NETDEV_DOWN", dev)
    return 0


def dev_set_mtu(dev, mtu):
    if mtu < dev.min_mtu or mtu > dev.max_mtu:
        raise KernelError(errno.EINVAL, "mtu %d out of range %d..%d" % (mtu, dev.min_mtu, dev.max_mtu))
    ops = dev.netdev_ops
    if ops is not None and ops.ndo_change_mtu is not None:
        ops.ndo_change_mtu(dev, mtu)
    else:
        dev.mtu = mtu
    dev.net.notify("NETDEV_CHANGEMTU", dev)


def dev_add_pack(net, pt):
    """Register a protocol handler (ip_rcv, arp_rcv, packet taps)."""
    if pt.type == net.ETH_P_ALL:
        (pt.dev.ptype_all if pt.dev is not None else net.ptype_all).append(pt)
    elif pt.dev is not None:
        pt.dev.ptype_specific.append(pt)
    else:
        net.ptype_base.setdefault(pt.type, []).append(pt)


def dev_remove_pack(net, pt):
    for lst in (net.ptype_all, net.ptype_base.get(pt.type, []),
                pt.dev.ptype_all if pt.dev is not None else [],
                pt.dev.ptype_specific if pt.dev is not None else []):
        if pt in lst:
            lst.remove(pt)


def netdev_rx_handler_register(dev, rx_handler, rx_handler_data):
    """Claim a device's receive path (a bridge port: br_handle_frame)."""
    if dev.rx_handler is not None:
        raise KernelError(errno.EBUSY, "%s already has an rx_handler" % dev.name)
    dev.rx_handler_data = rx_handler_data
    dev.rx_handler = rx_handler


def netdev_rx_handler_unregister(dev):
    dev.rx_handler = None
    dev.rx_handler_data = None


# ---------------------------------------------------------------- transmit

def netdev_core_pick_tx(dev, skb):
    """Choose the transmit queue (netdev_pick_tx: skb_tx_hash over the real queues)."""
    n = dev.real_num_tx_queues
    if n == 1:
        index = 0
    else:
        ops = dev.netdev_ops
        if ops.ndo_select_queue is not None:
            index = ops.ndo_select_queue(dev, skb)
        else:
            index = skb_tx_hash(dev, skb, n)
        if not 0 <= index < n:
            index = 0
    skb.queue_mapping = index
    return dev._tx[index]


def dev_queue_xmit(skb):
    """Queue a packet for transmission on skb.dev (data at the MAC header).

    __dev_queue_xmit is written out here for one skb on a noqueue device
    that needs nothing fixed (veth, a bridge port: every packet of the
    common paths), and with it validate_xmit_skb's test,
    dev_hard_start_xmit, xmit_one and netdev_start_xmit, their trace hits
    in the same order. Anything else takes __dev_queue_xmit.
    """
    tr = skb.trace
    dev = skb.dev
    if tr is not None:
        tr.hit("dev_queue_xmit", dev.name)
    if dev.real_num_tx_queues != 1:
        return __dev_queue_xmit(skb)
    txq = dev._tx[0]
    if txq.qdisc is not None or not dev.flags & IFF_UP or txq.state & 3 or \
            skb.shinfo.gso_size or skb.data_len or skb.ip_summed == CHECKSUM_PARTIAL:
        return __dev_queue_xmit(skb)
    if tr is not None:
        tr.hit("__dev_queue_xmit")
        tr.hit("dev_hard_start_xmit")
        tr.hit("xmit_one")
    skb.mac_header = skb.data
    if dev.ptype_all or dev.net.ptype_all:
        dev_queue_xmit_nit(skb, dev)
    if tr is not None:
        tr.hit("netdev_start_xmit", dev.name)
    rc = dev.netdev_ops.ndo_start_xmit(skb, dev)
    if rc == NETDEV_TX_OK:
        if not dev.features & NETIF_F_LLTX:
            txq.trans_start = dev.net.clock()
        return rc
    if rc < NET_XMIT_MASK:                 # dev_xmit_complete
        return rc
    dev.stats.tx_dropped += 1              # "Virtual device %s asks to queue packet!"
    if rc == NETDEV_TX_BUSY:
        kfree_skb(skb, SKB_DROP_REASON_DEV_READY)
    return -errno.ENETDOWN


def __dev_queue_xmit(skb, sb_dev=None):
    """Pick the transmit queue; with a qdisc on it: __dev_xmit_skb (enqueue,
    then run the qdisc). Without one (noqueue: veth, bridge, loopback):
    validate and hand the packet straight to the driver."""
    if skb.trace is not None:
        skb.trace.hit("__dev_queue_xmit")
    dev = skb.dev
    skb.mac_header = skb.data
    txq = netdev_core_pick_tx(dev, skb) if dev.real_num_tx_queues != 1 else dev._tx[0]
    q = txq.qdisc
    if q is not None:
        return __dev_xmit_skb(skb, q, dev, txq)
    # noqueue (Linux: the dev->flags & IFF_UP branch of __dev_queue_xmit).
    if dev.flags & IFF_UP:
        skb = validate_xmit_skb(skb, dev)
        if skb is None:
            return NET_XMIT_DROP
        if not txq.state & 3:              # netif_xmit_stopped
            rest, rc = dev_hard_start_xmit_list(skb, dev, txq)
            if rc < NET_XMIT_MASK:         # dev_xmit_complete
                return rc
            skb = rest
        # "Virtual device %s asks to queue packet!"
        dev.stats.tx_dropped += 1
        _kfree_list(skb, SKB_DROP_REASON_DEV_READY)
        return -errno.ENETDOWN
    dev.stats.tx_dropped += 1
    kfree_skb(skb, SKB_DROP_REASON_DEV_READY)
    return -errno.ENETDOWN


NET_XMIT_SUCCESS = 0x00
NET_XMIT_DROP = 0x01
NET_XMIT_CN = 0x02
NET_XMIT_MASK = 0x0F


def _kfree_list(skb, reason):
    if type(skb) is list:
        for s in skb:
            kfree_skb(s, reason)
    elif skb is not None:
        kfree_skb(skb, reason)


def __dev_xmit_skb(skb, q, dev, txq):
    """Enqueue on the qdisc and run it (bypassing it when it is empty and idle)."""
    if skb.trace is not None:
        skb.trace.hit("__dev_xmit_skb", q.kind)
    return sch_generic.qdisc_xmit(skb, q, dev, txq)


def netif_skb_features(skb, dev):
    """The features that apply to this skb (gso_features_check)."""
    features = dev.features
    sh = skb.shinfo
    if sh.gso_size and (sh.gso_segs > dev.gso_max_segs or skb.len > dev.gso_max_size):
        features &= ~NETIF_F_GSO_MASK
    return features


def netif_needs_gso(skb, features):
    s = skb.ip_summed
    return skb.shinfo.gso_size != 0 and (
        not net_gso_ok(features, skb.shinfo.gso_type)
        or (s != CHECKSUM_PARTIAL and s != CHECKSUM_UNNECESSARY))


def skb_csum_hwoffload_help(skb, features):
    """Complete the checksum in software unless the device computes it."""
    if features & NETIF_F_HW_CSUM:
        return 0
    if features & NETIF_F_IP_CSUM and skb.protocol == 0x0800:
        return 0
    return skb_checksum_help(skb)


def validate_xmit_skb(skb, dev):
    """Make skb acceptable to dev: segment GSO skbs it cannot take, linearize
    for a device without scatter-gather, complete checksums it cannot offload.

    Returns an skb, a list of skbs (the GSO segments) or None (dropped).
    """
    if not skb.shinfo.gso_size and not skb.data_len and skb.ip_summed != CHECKSUM_PARTIAL:
        return skb                   # the common case: nothing to fix
    features = netif_skb_features(skb, dev)
    if skb.shinfo.gso_size and netif_needs_gso(skb, features):
        segs = gso.skb_gso_segment(skb, features)
        if type(segs) is int:
            kfree_skb(skb, SKB_DROP_REASON_NOT_SPECIFIED)
            dev.stats.tx_dropped += 1
            return None
        if segs is not None:
            consume_skb(skb)
            return segs
        return skb
    if skb.data_len and not features & NETIF_F_SG and skb_linearize(skb):
        kfree_skb(skb, SKB_DROP_REASON_NOT_SPECIFIED)
        dev.stats.tx_dropped += 1
        return None
    if skb.ip_summed == CHECKSUM_PARTIAL:
        skb.transport_header = skb.csum_start
        if skb_csum_hwoffload_help(skb, features):
            kfree_skb(skb, SKB_DROP_REASON_NOT_SPECIFIED)
            dev.stats.tx_dropped += 1
            return None
    return skb


def validate_xmit_skb_list(skb, dev):
    """validate_xmit_skb over a list (what the qdisc dequeued)."""
    if type(skb) is not list:
        return validate_xmit_skb(skb, dev)
    out = []
    for s in skb:
        r = validate_xmit_skb(s, dev)
        if type(r) is list:
            out.extend(r)
        elif r is not None:
            out.append(r)
    return out or None


def dev_hard_start_xmit(skb, dev, txq=None):
    """Hand one skb (or a list) to the driver; the NETDEV_TX_* result."""
    return dev_hard_start_xmit_list(skb, dev, txq if txq is not None else dev._tx[0])[1]


def dev_hard_start_xmit_list(first, dev, txq):
    """xmit_one over first (an skb or a list); (what is left, rc).

    Stops at a NETDEV_TX_BUSY (that skb and the rest are left for the caller
    to requeue) or when the queue was stopped before the list ended.
    """
    if type(first) is not list:
        if first.trace is not None:
            first.trace.hit("dev_hard_start_xmit")
        rc = xmit_one(first, dev, txq, False)
        if rc == NETDEV_TX_BUSY:
            return first, rc
        return None, rc
    rc = NETDEV_TX_OK
    n = len(first)
    for i, skb in enumerate(first):
        if skb.trace is not None:
            skb.trace.hit("dev_hard_start_xmit")
        rc = xmit_one(skb, dev, txq, i + 1 < n)
        if rc == NETDEV_TX_BUSY:
            return first[i:], rc
        if i + 1 < n and txq.state & 1:            # netif_tx_queue_stopped
            return first[i + 1:], NETDEV_TX_BUSY
    return None, rc


def xmit_one(skb, dev, txq=None, more=False):
    if skb.trace is not None:
        skb.trace.hit("xmit_one")
    if dev.ptype_all or dev.net.ptype_all:
        dev_queue_xmit_nit(skb, dev)
    return netdev_start_xmit(skb, dev, txq, more)


def dev_queue_xmit_nit(skb, dev):
    """Give each tap (packet socket) a clone of an outgoing packet."""
    if skb.trace is not None:
        skb.trace.hit("dev_queue_xmit_nit")
    for pt in dev.net.ptype_all + dev.ptype_all:
        if pt.dev is not None and pt.dev is not dev:
            continue
        nskb = skb_clone(skb)
        nskb.pkt_type = PACKET_OUTGOING
        nskb.network_header = skb.network_header
        pt.func(nskb, dev, pt, dev)


def netdev_start_xmit(skb, dev, txq=None, more=False):
    """Call the driver's ndo_start_xmit (more: xmit_more, another skb follows)."""
    if skb.trace is not None:
        skb.trace.hit("netdev_start_xmit", dev.name)
    rc = dev.netdev_ops.ndo_start_xmit(skb, dev)
    if rc == NETDEV_TX_OK and txq is not None and not dev.features & NETIF_F_LLTX:
        # txq_trans_update: only when the xmit lock was taken (HARD_TX_LOCK
        # takes none for an LLTX device, so its trans_start stays).
        txq.trans_start = dev.net.clock()
    return rc


# ---------------------------------------------------------------- receive

def netif_rx(skb):
    """Queue a received packet to a CPU's backlog (non-NAPI drivers, veth).

    With an rps_map on the device's receive queue the flow hash picks the
    CPU (get_rps_cpu); otherwise it is this CPU.
    """
    tr = skb.trace
    if tr is not None:
        tr.hit("netif_rx")
        tr.hit("netif_rx_internal")
    # netif_rx_internal, written out.
    dev = skb.dev
    cpu = get_rps_cpu(dev, skb) if dev._rx[0].rps_map or skb.queue_mapping else -1
    if cpu < 0:
        cpu = dev.net.cur_cpu
    elif tr is not None:
        tr.hit("get_rps_cpu", cpu)
    return enqueue_to_backlog(skb, cpu)


def netif_rx_internal(skb):
    """Pick the backlog: the flow hash's CPU with RPS, else this one."""
    if skb.trace is not None:
        skb.trace.hit("netif_rx_internal")
    dev = skb.dev
    cpu = get_rps_cpu(dev, skb) if dev._rx[0].rps_map or skb.queue_mapping else -1
    if cpu < 0:
        cpu = dev.net.cur_cpu
    elif skb.trace is not None:
        skb.trace.hit("get_rps_cpu", cpu)
    return enqueue_to_backlog(skb, cpu)


def netif_receive_skb(skb):
    """Receive one skb now, in this softirq (NAPI drivers, GRO's flush)."""
    if skb.trace is not None:
        skb.trace.hit("netif_receive_skb")
    return netif_receive_skb_internal(skb)


def netif_receive_skb_internal(skb):
    """Steer skb to another CPU's backlog by RPS, or pass it up here."""
    if skb.trace is not None:
        skb.trace.hit("netif_receive_skb_internal")
    cpu = get_rps_cpu(skb.dev, skb)
    if cpu >= 0:
        if skb.trace is not None:
            skb.trace.hit("get_rps_cpu", cpu)
        return enqueue_to_backlog(skb, cpu)
    return __netif_receive_skb(skb)


def netif_receive_skb_list_internal(lst):
    """Pass a batch up: RPS steers some to other CPUs' backlogs, the rest go up here."""
    here = None
    for skb in lst:
        if skb.trace is not None:
            skb.trace.hit("netif_receive_skb_list_internal")
        dev = skb.dev
        index = skb.queue_mapping - 1 if skb.queue_mapping else 0
        if index < dev.real_num_rx_queues and dev._rx[index].rps_map:
            cpu = get_rps_cpu(dev, skb)
            if cpu >= 0:
                if skb.trace is not None:
                    skb.trace.hit("get_rps_cpu", cpu)
                enqueue_to_backlog(skb, cpu)
                continue
        if here is None:
            here = [skb]
        else:
            here.append(skb)
    if here is not None:
        __netif_receive_skb_list(here)


def __netif_receive_skb_list(lst):
    """Emulation note: delivered one by one (no ip_list_rcv sublists)."""
    for skb in lst:
        __netif_receive_skb(skb)


def __netif_receive_skb(skb):
    return __netif_receive_skb_core(skb)


def deliver_skb(skb, pt, orig_dev):
    if skb.trace is not None:
        skb.trace.hit("deliver_skb")
    return pt.func(skb, skb.dev, pt, orig_dev)


def __netif_receive_skb_core(skb):
    """Hand one packet to taps, the device's rx_handler, then its protocol handler."""
    if skb.trace is not None:
        skb.trace.hit("__netif_receive_skb_core", skb.dev.name)
    orig_dev = skb.dev
    skb.network_header = skb.data
    skb.transport_header = skb.data
    skb.mac_len = skb.network_header - skb.mac_header
    deliver_exact = False
    net = orig_dev.net
    sd = net.cpus[net.cur_cpu]
    while True:                                      # another_round:
        dev = skb.dev
        net = dev.net
        skb.skb_iif = dev.ifindex
        sd.processed += 1
        if net.ptype_all or dev.ptype_all:
            for pt in net.ptype_all + dev.ptype_all:
                deliver_skb(skb_clone(skb), pt, orig_dev)
        rx_handler = dev.rx_handler
        if rx_handler is not None:
            ret = rx_handler(skb)
            if ret == RX_HANDLER_CONSUMED:
                return NET_RX_SUCCESS
            if ret == RX_HANDLER_ANOTHER:
                continue        # skb.dev changed (the bridge device): go round
            if ret == RX_HANDLER_EXACT:
                deliver_exact = True    # only handlers bound to this device
        break
    if not deliver_exact and not dev.ptype_specific:
        # The common case, one handler for the protocol (ip_rcv, arp_rcv):
        # straight to it, no list of handlers built per packet.
        ptypes = net.ptype_base.get(skb.protocol, ())
        if len(ptypes) == 1:
            pt = ptypes[0]
            sdev = skb.dev
            if pt.dev is None or pt.dev is sdev:
                if skb.trace is not None:      # deliver_skb, written out
                    skb.trace.hit("deliver_skb")
                return pt.func(skb, sdev, pt, orig_dev)
    handlers = [] if deliver_exact else [
        pt for pt in net.ptype_base.get(skb.protocol, ())
        if pt.dev is None or pt.dev is skb.dev]
    if dev.ptype_specific:
        handlers += [pt for pt in dev.ptype_specific if pt.type == skb.protocol]
    if not handlers:
        # Linux counts an unknown protocol in rx_dropped; rx_nohandler is for
        # frames an rx_handler said to deliver exactly and nobody took.
        if deliver_exact:
            dev.stats.rx_nohandler += 1
        else:
            dev.stats.rx_dropped += 1
        kfree_skb(skb, SKB_DROP_REASON_UNHANDLED_PROTO)
        return NET_RX_DROP
    # Emulation note: Linux shares one skb among handlers by reference count;
    # emu gives all but the last a clone.
    for pt in handlers[:-1]:
        deliver_skb(skb_clone(skb), pt, orig_dev)
    return deliver_skb(skb, handlers[-1], orig_dev)


def dev_forward_skb_ok(dev, skb):
    """__dev_forward_skb's checks (is_skb_forwardable): the device is up and
    the frame fits its MTU, or is a GSO frame (segmented later if need be)."""
    return bool(dev.flags & IFF_UP) and (                 # netif_running
        skb.len <= dev.mtu + dev.hard_header_len + 4 or skb.shinfo.gso_size != 0)


def __dev_forward_skb(dev, skb):
    """Make a frame another device sent fit to be received on dev: check it
    is forwardable, scrub what belonged to the sender's side, classify it
    (eth_type_trans). 0, or NET_RX_DROP when it was dropped and counted."""
    if skb.trace is not None:
        skb.trace.hit("__dev_forward_skb", dev.name)
    # dev_forward_skb_ok, written out.
    if not (dev.flags & IFF_UP and (skb.len <= dev.mtu + dev.hard_header_len + 4
                                    or skb.shinfo.gso_size != 0)):
        dev.stats.rx_dropped += 1
        kfree_skb(skb, SKB_DROP_REASON_DEV_READY if not dev.flags & IFF_UP
                  else SKB_DROP_REASON_PKT_TOO_SMALL)
        return NET_RX_DROP
    # Emulation note: the peer is in another node (another namespace): xnet.
    # skb_scrub_packet(skb, True), written out.
    skb.dst = None
    skb.sk = None
    skb.tstamp = 0
    skb.skb_iif = 0
    skb.mark = 0
    skb.priority = 0
    skb.protocol = eth_type_trans(skb, dev)
    return 0


def dev_forward_skb(dev, skb):
    """Loop a frame back into dev's receive path (the backlog of this CPU).

    Linux drivers that pass frames between devices use it (veth before 4.x,
    ipvlan, macvlan); veth in 6.x, as in emu, calls __dev_forward_skb and
    __netif_rx itself so it can count the frame in between (veth_forward_skb).
    """
    if skb.trace is not None:
        skb.trace.hit("dev_forward_skb", dev.name)
    return __dev_forward_skb(dev, skb) or netif_rx_internal(skb)


def net_dev_init(net):
    """Boot the core of the network stack (a subsys_initcall in Linux): the
    per-CPU softnet data with its backlog NAPI, and the NET_TX / NET_RX
    softirq handlers."""
    from .napi import NET_RX_SOFTIRQ, NET_TX_SOFTIRQ, SoftnetData, net_rx_action, net_tx_action, open_softirq
    net.cpus = [SoftnetData(net, i, process_backlog) for i in range(net.ncpus)]
    open_softirq(net, NET_TX_SOFTIRQ, net_tx_action)
    open_softirq(net, NET_RX_SOFTIRQ, net_rx_action)


def process_backlog(napi, quota):
    """The backlog NAPI's poll: feed queued packets to __netif_receive_skb."""
    sd = napi.priv
    work = 0
    pq = sd.process_queue
    while True:
        while pq:
            skb = pq.popleft()
            if skb.trace is not None:
                skb.trace.hit("process_backlog", sd.cpu)
            __netif_receive_skb_core(skb)            # __netif_receive_skb
            work += 1
            if work >= quota:
                return work
        iq = sd.input_pkt_queue
        if not iq:
            # Emulation of __napi_complete for the backlog: it is already off
            # the poll list, so just clear the state.
            napi.state &= ~NAPI_STATE_SCHED
            return work
        pq.extend(iq)
        iq.clear()


# Bound late: these modules reach back into this one (dev.c is one file in Linux).
from . import gso  # noqa: E402
from ..ethernet.eth import eth_type_trans  # noqa: E402
from ..sched import sch_generic  # noqa: E402
