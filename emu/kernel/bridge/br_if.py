"""Adding and removing bridge ports.

Linux: net/bridge/br_if.c
"""
import errno

from ..core.dev import KernelError, netdev_rx_handler_register, netdev_rx_handler_unregister
from ..core.netdevice import IFF_LOOPBACK, IFF_SLAVE
from ..ethernet.eth import dev_set_promiscuity
from .br_fdb import br_fdb_delete_by_port, br_fdb_insert_local
from .br_input import br_handle_frame
from .br_private import NetBridgePort


def br_add_if(br, dev):
    """`ip link set DEV master BR`: enslave dev; its frames now go to br_handle_frame."""
    if dev.flags & IFF_LOOPBACK or dev.kind == "bridge":
        raise KernelError(errno.EINVAL, "%s cannot be a bridge port" % dev.name)
    if dev.master is not None:
        raise KernelError(errno.EBUSY, "%s already has a master" % dev.name)
    port_no = 1 + max((p.port_no for p in br.port_list), default=0)
    p = NetBridgePort(br, dev, port_no)
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
