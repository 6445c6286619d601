"""The bridge device: frames the node itself sends through the bridge.

Linux: net/bridge/br_device.c
"""
from ..core.netdevice import IFF_MASTER, IFF_NO_QUEUE, NETDEV_TX_OK, NetDevice, NetDeviceOps
from ..core.skbuff import skb_pull, skb_reset_mac_header
from ..ethernet.eth import ether_setup
from ..hdr.if_ether import ETH_HLEN
from .br_fdb import br_fdb_find, br_fdb_insert_local
from .br_forward import br_flood, br_forward
from .br_if import br_add_if, br_del_if
from .br_private import NetBridge


def br_dev_xmit(skb, dev):
    """Transmit from the bridge device: look the destination up, forward or flood."""
    if skb.trace is not None:
        skb.trace.hit("br_dev_xmit")
    br = dev.priv
    dev.stats.tx_packets += 1
    dev.stats.tx_bytes += skb.len
    skb_reset_mac_header(skb)
    skb.skb_iif = 0
    dest = bytes(skb.buf[skb.data:skb.data + 6])
    skb_pull(skb, ETH_HLEN)
    dst = None if dest[0] & 1 else br_fdb_find(br, dest)
    # A local fdb entry has no port (dst.dst is None): br_forward drops it, as Linux does.
    if dst is not None:
        br_forward(dst.dst, skb, False)
    else:
        br_flood(br, skb, False)
    return NETDEV_TX_OK


def br_dev_init(dev):
    """ndo_init: once registered (it has a clock), the bridge's own MAC is local."""
    br_fdb_insert_local(dev.priv, None, dev.dev_addr)


def br_add_slave(dev, slave):
    return br_add_if(dev.priv, slave)


def br_del_slave(dev, slave):
    return br_del_if(dev.priv, slave)


br_netdev_ops = NetDeviceOps(ndo_init=br_dev_init, ndo_start_xmit=br_dev_xmit, ndo_add_slave=br_add_slave,
                             ndo_del_slave=br_del_slave)


def br_dev_setup(name, mac):
    dev = NetDevice(name, kind="bridge")
    ether_setup(dev)
    dev.flags |= IFF_MASTER
    dev.priv_flags |= IFF_NO_QUEUE      # noqueue, as br_dev_setup does
    dev.netdev_ops = br_netdev_ops
    dev.dev_addr = dev.perm_addr = mac
    dev.priv = NetBridge(dev)
    return dev

