"""The loopback device: what a node sends to itself comes back in.

Linux: drivers/net/loopback.c
"""
from ..core.dev import netif_rx
from ..core.netdevice import IFF_LOOPBACK, IFF_NO_QUEUE, NETDEV_TX_OK, NetDevice, NetDeviceOps
from ..core.skbuff import CHECKSUM_UNNECESSARY, skb_cow, skb_orphan
from ..ethernet.eth import eth_header_ops, eth_type_trans
from ..hdr.if_arp import ARPHRD_LOOPBACK

LOOPBACK_MTU = 65536


def loopback_xmit(skb, dev):
    if skb.trace is not None:
        skb.trace.hit("loopback_xmit")
    length = skb.len
    skb_cow(skb, 0)     # the receive side may write headers; keep taps' clones intact
    skb.ip_summed = CHECKSUM_UNNECESSARY
    skb.dst = None
    skb_orphan(skb)         # the sender's socket stops accounting it
    skb.protocol = eth_type_trans(skb, dev)
    dev.stats.tx_packets += 1
    dev.stats.tx_bytes += length
    dev.stats.rx_packets += 1
    dev.stats.rx_bytes += length
    netif_rx(skb)
    return NETDEV_TX_OK


loopback_ops = NetDeviceOps(ndo_start_xmit=loopback_xmit)


def loopback_setup():
    dev = NetDevice("lo", kind="loopback")
    dev.header_ops = eth_header_ops
    dev.type = ARPHRD_LOOPBACK
    dev.mtu = LOOPBACK_MTU
    dev.hard_header_len = 14
    dev.dev_addr = dev.perm_addr = b"\x00" * 6
    dev.flags = IFF_LOOPBACK
    dev.priv_flags |= IFF_NO_QUEUE      # noqueue
    dev.netdev_ops = loopback_ops
    return dev
