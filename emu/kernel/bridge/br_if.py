"""Adding and removing bridge ports.

Linux: net/bridge/br_if.c
"""
import errno

from ..core.dev import KernelError, netdev_rx_handler_register, netdev_rx_handler_unregister
from ..core.netdevice import IF_OPER_UP, IFF_LOOPBACK, IFF_SLAVE, netif_carrier_ok, netif_running
from ..ethernet.eth import dev_set_promiscuity
from .br_fdb import br_fdb_delete_by_port, br_fdb_insert_local
from .br_input import br_handle_frame
from .br_private import BR_STATE_DISABLED, BR_STATE_FORWARDING, NetBridgePort


def br_add_if(br, dev):
    """`ip link set DEV master BR`: enslave dev; its frames now go to br_handle_frame."""
    if dev.flags & IFF_LOOPBACK or dev.kind == "bridge":
        raise KernelError(errno.EINVAL, "%s cannot be a bridge port" % dev.name)
    if dev.master is not None:
        raise KernelError(errno.EBUSY, "%s already has a master" % dev.name)
    port_no = 1 + max((p.port_no for p in br.port_list), default=0)
    p = NetBridgePort(br, dev, port_no)
    if not netif_carrier_ok(dev):
        p.state = BR_STATE_DISABLED          # enabled by the carrier's return
    net = dev.net
    if br_device_event not in net.notifiers:
        net.notifiers.append(br_device_event)     # Linux: br_init registers br_device_notifier
    netdev_rx_handler_register(dev, br_handle_frame, p)
    dev.master = br.dev
    dev.flags |= IFF_SLAVE
    dev_set_promiscuity(dev, True)
    br.port_list.append(p)
    br_fdb_insert_local(br, p, dev.dev_addr)
    return p


def br_del_if(br, dev):
    p = dev.rx_handler_data
    if p is None or p.br is not br:
        raise KernelError(errno.EINVAL, "%s is not a port of %s" % (dev.name, br.dev.name))
    br.port_list.remove(p)
    br_fdb_delete_by_port(br, p)
    netdev_rx_handler_unregister(dev)
    dev.master = None
    dev.flags &= ~IFF_SLAVE
    dev_set_promiscuity(dev, False)


def br_port_state_selection(br):
    """The bridge device has carrier while one of its ports forwards (br_stp.c).

    Emulation note: emu applies this only when a port's carrier changes, not
    at creation (a bridge with no ports yet keeps its carrier).
    """
    from ..core.link_watch import netif_carrier_off, netif_carrier_on
    if any(q.state == BR_STATE_FORWARDING for q in br.port_list):
        netif_carrier_on(br.dev)
    else:
        netif_carrier_off(br.dev)


def br_stp_enable_port(p):
    """No STP runs: an enabled port forwards at once."""
    p.state = BR_STATE_FORWARDING
    br_port_state_selection(p.br)


def br_stp_disable_port(p):
    """The port stops forwarding and forgets what it learned (br_stp_if.c)."""
    p.state = BR_STATE_DISABLED
    br = p.br
    for addr in [a for a, f in br.fdb.items() if f.dst is p and not f.is_local and not f.is_static]:
        del br.fdb[addr]
    br_port_state_selection(br)


def br_port_carrier_check(p):
    dev = p.dev
    if netif_running(dev) and dev.operstate == IF_OPER_UP:    # netif_oper_up
        if p.state == BR_STATE_DISABLED:
            br_stp_enable_port(p)
    elif p.state != BR_STATE_DISABLED:
        br_stp_disable_port(p)


def br_device_event(event, dev):
    """The bridge's netdevice notifier: a port follows its device's carrier."""
    p = dev.rx_handler_data
    if dev.rx_handler is not br_handle_frame or p is None:
        return
    if event == "NETDEV_CHANGE":
        br_port_carrier_check(p)
    elif event == "NETDEV_UP" and netif_carrier_ok(dev):
        br_stp_enable_port(p)
