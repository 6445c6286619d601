"""Carrier and operational state: netif_carrier_on/off and the link watch.

Linux: net/core/link_watch.c, net/sched/sch_generic.c (netif_carrier_on/off),
net/core/dev.c (netdev_state_change, dev_get_flags), RFC 2863 (operstate)

A driver (or, in emu, the wire reporting that its other end is gone or back)
calls netif_carrier_off/on. IFF_LOWER_UP follows the carrier at once; the
link watch then derives the operational state (default_operstate), sets
IFF_RUNNING from it, swaps the qdiscs (dev_deactivate: a device without
carrier transmits nothing) and sends NETDEV_CHANGE down the notifier chain,
where the FIB marks routes `linkdown` and the bridge disables the port.

As in Linux, urgent events (a device with a peer, as veth; a carrier coming
back whose qdisc must be restored) are handled at once; the others (a
physical NIC losing its carrier) wait for the next link watch run, at most
one second after the previous one (linkwatch_nextevent), so a flapping link
cannot flood the notifier chain.

Emulation note: Linux runs the link watch from a workqueue; emu runs urgent
events inline and the others on a kernel timer.
"""
from .netdevice import (
    IF_OPER_DOWN, IF_OPER_LOWERLAYERDOWN, IF_OPER_UP, IFF_LOWER_UP, IFF_RUNNING, IFF_UP,
    netif_carrier_ok, netif_running,
)
from .timer import TimerList

LINKWATCH_DELAY = 1.0        # HZ: the most a non-urgent event waits


class LinkWatch:
    """The link watch's state (lweventlist, linkwatch_nextevent, its work)."""

    __slots__ = ("lweventlist", "nextevent", "timer", "events")

    def __init__(self, net):
        self.lweventlist = []
        self.nextevent = 0.0
        self.timer = TimerList(lambda data: linkwatch_run_queue(net, False))
        self.events = 0


def _lw(net):
    lw = net.proto.get("linkwatch")
    if lw is None:
        lw = net.proto["linkwatch"] = LinkWatch(net)
    return lw


def dev_get_iflink(dev):
    """The ifindex of the device below (a veth's peer); the device itself if none."""
    ops = dev.netdev_ops
    if ops is not None and ops.ndo_get_iflink is not None:
        return ops.ndo_get_iflink(dev)
    return dev.ifindex


def default_operstate(dev):
    """RFC 2863 operstate from the carrier: a device whose lower layer (a veth's
    peer) is gone is LOWERLAYERDOWN, one that lost its own carrier is DOWN."""
    if not netif_carrier_ok(dev):
        return IF_OPER_LOWERLAYERDOWN if dev_get_iflink(dev) != dev.ifindex else IF_OPER_DOWN
    return IF_OPER_UP


def rfc2863_policy(dev):
    dev.operstate = default_operstate(dev) if netif_running(dev) else IF_OPER_DOWN
    # dev_get_flags: IFF_RUNNING is "operationally up".
    if netif_running(dev) and dev.operstate == IF_OPER_UP:
        dev.flags |= IFF_RUNNING
    else:
        dev.flags &= ~IFF_RUNNING


def netdev_state_change(dev):
    dev.net.notify("NETDEV_CHANGE", dev)


def linkwatch_do_dev(dev):
    """Apply one device's carrier change: operstate, qdiscs, NETDEV_CHANGE."""
    from ..sched import sch_generic
    rfc2863_policy(dev)
    if dev.flags & IFF_UP:
        if netif_carrier_ok(dev):
            sch_generic.dev_activate(dev)
        else:
            sch_generic.dev_deactivate(dev)
        netdev_state_change(dev)


def linkwatch_urgent_event(dev):
    if not netif_running(dev):
        return False
    if dev.ifindex != dev_get_iflink(dev):
        return True
    # A carrier that came back on a device whose qdisc is noop (deactivated).
    return netif_carrier_ok(dev)


def linkwatch_run_queue(net, urgent_only):
    lw = _lw(net)
    if not urgent_only:
        lw.nextevent = net.now() + LINKWATCH_DELAY
    todo, lw.lweventlist = lw.lweventlist, []
    for dev in todo:
        if urgent_only and not linkwatch_urgent_event(dev):
            lw.lweventlist.append(dev)
            continue
        if dev.registered:
            lw.events += 1
            linkwatch_do_dev(dev)
    if lw.lweventlist and not lw.timer.pending:
        net.mod_timer(lw.timer, max(lw.nextevent, net.now()))


def linkwatch_fire_event(dev):
    """Queue dev for the link watch; run it now if the event is urgent."""
    net = dev.net
    lw = _lw(net)
    if dev not in lw.lweventlist:
        lw.lweventlist.append(dev)
    if linkwatch_urgent_event(dev):
        linkwatch_run_queue(net, True)
    elif not lw.timer.pending:
        net.mod_timer(lw.timer, max(lw.nextevent, net.now()))


def linkwatch_sync_dev(dev):
    """Run dev's pending event now (as dev_close does before going down)."""
    lw = _lw(dev.net)
    if dev in lw.lweventlist:
        lw.lweventlist.remove(dev)
        linkwatch_do_dev(dev)


def netif_carrier_on(dev):
    """The device has a link partner again."""
    if dev.carrier:
        return
    dev.carrier = True
    dev.carrier_up_count += 1
    if netif_running(dev):
        dev.flags |= IFF_LOWER_UP
    if dev.registered:
        linkwatch_fire_event(dev)


def netif_carrier_off(dev):
    """The link partner is gone (cable pulled, peer vanished)."""
    if not dev.carrier:
        return
    dev.carrier = False
    dev.carrier_down_count += 1
    dev.flags &= ~IFF_LOWER_UP
    if dev.registered:
        linkwatch_fire_event(dev)
