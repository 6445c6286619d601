"""A TUN device (IFF_TUN | IFF_NO_PI): IP packets in and out, no link header.

Linux: drivers/net/tun.c (tun_net_xmit, tun_get_user, tun_net_initialize)

packetdrill drives the kernel under test through one: what the stack sends
leaves by tun_net_xmit into the device's queue (the file descriptor user
space reads), and packets written to the file descriptor enter by
tun_get_user -> netif_rx. Here the "file" is a port object with send(), as
veth and tap have.

Emulation note: Linux leaves header_ops NULL on an IFF_TUN device and the
neighbour layer then outputs without a header (neigh_direct_output); emu's
neighbour code always calls header_ops.create, so tun_header_ops pushes
nothing. The device offers no offloads (packetdrill does not enable
TUNSETOFFLOAD), so GSO skbs are segmented and checksums completed before
tun_net_xmit, and what user space reads is what a wire would carry.
"""
from ..core.dev import dev_forward_skb_ok, netif_rx
from ..core.netdevice import (
    IFF_MULTICAST, IFF_NOARP, IFF_POINTOPOINT, NET_RX_DROP, HeaderOps,
    NetDevice, NetDeviceOps,
)
from ..core.skbuff import (
    SKB_DROP_REASON_DEV_READY, build_skb_from_frame, kfree_skb,
    skb_reset_mac_header, skb_reset_network_header,
)
from ..hdr.if_ether import ETH_P_IP
from .tap import tun_port_xmit

ARPHRD_NONE = 0xFFFE
TUN_MTU = 1500


class TunPriv:
    __slots__ = ("port",)

    def __init__(self, port):
        self.port = port


def tun_header_create(skb, dev, type, daddr, saddr, length):
    """No link-layer header on a TUN device."""
    return 0


def tun_header_parse(skb):
    return b""


tun_header_ops = HeaderOps(create=tun_header_create, parse=tun_header_parse,
                           cache=None, cache_update=None)


def tun_net_xmit(skb, dev):
    """ndo_start_xmit: queue the IP packet for the reader of the tun fd."""
    if skb.trace is not None:
        skb.trace.hit("tun_net_xmit", dev.name)
    return tun_port_xmit(skb, dev, skb.trace.id if skb.trace is not None else 0)


tun_netdev_ops = NetDeviceOps(ndo_start_xmit=tun_net_xmit)


def tun_setup(name, port):
    """tun_net_initialize for IFF_TUN: point-to-point, NOARP, no header."""
    dev = NetDevice(name, kind="tun", priv=TunPriv(port))
    dev.header_ops = tun_header_ops
    dev.netdev_ops = tun_netdev_ops
    dev.type = ARPHRD_NONE
    dev.hard_header_len = 0
    dev.addr_len = 0
    dev.mtu = TUN_MTU
    dev.flags = IFF_POINTOPOINT | IFF_NOARP | IFF_MULTICAST
    dev.dev_addr = dev.perm_addr = b""
    dev.features = 0
    return dev


def tun_get_user(dev, packet):
    """A packet written to the tun fd: an skb for netif_rx (untrusted input).

    Returns the trace id the packet got (0 when not traced) or NET_RX_DROP.
    """
    n = len(packet)
    if n < 20 or packet[0] >> 4 != 4:
        dev.stats.rx_length_errors += 1
        dev.stats.rx_errors += 1
        return NET_RX_DROP
    skb = build_skb_from_frame(packet)
    skb.dev = dev
    tracer = dev.net.tracer
    tid = 0
    if tracer is not None and tracer.filter.match_l3(ETH_P_IP, skb.buf, skb.data, skb.tail):
        skb.trace = tracer.new_ctx()
        tid = skb.trace.id
        skb.trace.hit("tun_get_user", dev.name)
    if not dev_forward_skb_ok(dev, skb):
        dev.stats.rx_dropped += 1
        kfree_skb(skb, SKB_DROP_REASON_DEV_READY)
        return NET_RX_DROP
    skb_reset_mac_header(skb)
    skb_reset_network_header(skb)
    skb.protocol = ETH_P_IP
    dev.stats.rx_packets += 1
    dev.stats.rx_bytes += n
    netif_rx(skb)
    return tid
