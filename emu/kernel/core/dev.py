"""Device registration, the transmit path and the core of the receive path.

Linux: net/core/dev.c. Linux's dev.c is 10k+ lines; emu splits it: this
file (registration, dev_queue_xmit, netif_rx, __netif_receive_skb_core),
napi.py (softnet_data, NAPI, net_rx_action, process_backlog).
"""
import errno

from .netdevice import (
    IF_OPER_DOWN, IF_OPER_UP, IFF_LOWER_UP, IFF_RUNNING, IFF_UP, NET_RX_DROP,
    NET_RX_SUCCESS, NETDEV_TX_OK, RX_HANDLER_ANOTHER, RX_HANDLER_CONSUMED,
    RX_HANDLER_EXACT, netif_running,
)
from .napi import NAPI_STATE_SCHED, enqueue_to_backlog
from .skbuff import (
    PACKET_OUTGOING, SKB_DROP_REASON_DEV_READY,
    SKB_DROP_REASON_UNHANDLED_PROTO, kfree_skb, skb_clone,
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
    net.dev_by_name[dev.name] = dev
    net.dev_by_index[dev.ifindex] = dev
    dev.registered = True
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
    dev.net.notify("NETDEV_UP", dev)
    return 0


def dev_close(dev):
    """ip link set DEV down."""
    if not netif_running(dev):
        return 0
    dev.net.notify("NETDEV_GOING_DOWN", dev)
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

def dev_queue_xmit(skb):
    """Queue a packet for transmission on skb.dev (through its qdisc, if any)."""
    if skb.trace is not None:
        skb.trace.hit("dev_queue_xmit", skb.dev.name)
    dev = skb.dev
    q = dev.qdisc
    if q is not None:
        return q.enqueue_and_run(skb, dev)
    # noqueue: veth, bridge and loopback transmit directly (Linux: the
    # dev->flags & IFF_UP branch of __dev_queue_xmit).
    if not netif_running(dev):
        dev.stats.tx_dropped += 1
        kfree_skb(skb, SKB_DROP_REASON_DEV_READY)
        return NET_RX_DROP
    return dev_hard_start_xmit(skb, dev)


def dev_hard_start_xmit(skb, dev):
    if skb.trace is not None:
        skb.trace.hit("dev_hard_start_xmit")
    return xmit_one(skb, dev)


def xmit_one(skb, dev):
    if skb.trace is not None:
        skb.trace.hit("xmit_one")
    if dev.ptype_all or dev.net.ptype_all:
        dev_queue_xmit_nit(skb, dev)
    return netdev_start_xmit(skb, dev)


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


def netdev_start_xmit(skb, dev):
    if skb.trace is not None:
        skb.trace.hit("netdev_start_xmit", dev.name)
    return dev.netdev_ops.ndo_start_xmit(skb, dev)


# ---------------------------------------------------------------- receive

def netif_rx(skb):
    """Queue a received packet to the current CPU's backlog (non-NAPI drivers, veth)."""
    if skb.trace is not None:
        skb.trace.hit("netif_rx")
    net = skb.dev.net
    return enqueue_to_backlog(skb, net.cur_cpu)


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
    while True:
        dev = skb.dev
        net = dev.net
        skb.skb_iif = dev.ifindex
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
    """__dev_forward_skb's checks: the receiving device is up and the frame fits."""
    return netif_running(dev) and skb.len <= dev.mtu + dev.hard_header_len + 4


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
            sd.processed += 1
            __netif_receive_skb(skb)
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
