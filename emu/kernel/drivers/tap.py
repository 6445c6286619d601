"""A device whose other end is a Linux TAP interface (interop with the real kernel).

Linux: drivers/net/tun.c

The node's runtime opens /dev/net/tun and gives the driver a port, as it
gives veth a wire: tap_xmit writes a frame to the real kernel, tun_get_user
takes one from it. Emulation note: in Linux this file is the TAP side; here
it is the emulated device facing a TAP. Frames toward the real kernel always
carry complete checksums (the real stack verifies them).
"""
from ..core.dev import dev_forward_skb_ok, netif_rx
from ..core.netdevice import NET_RX_DROP, NETDEV_TX_OK, NetDevice, NetDeviceOps
from ..core.skbuff import SKB_DROP_REASON_DEV_READY, build_skb_from_frame, consume_skb, kfree_skb
from ..ethernet.eth import eth_type_trans, ether_setup
from ..hdr.if_ether import ETH_HLEN


class TapPriv:
    __slots__ = ("port", "tap_name")

    def __init__(self, port, tap_name):
        self.port = port
        self.tap_name = tap_name


def tap_xmit(skb, dev):
    """ndo_start_xmit: the frame goes to the real kernel's TAP device."""
    if skb.trace is not None:
        skb.trace.hit("tap_xmit", dev.name)
    return tun_port_xmit(skb, dev, 0)


def tun_port_xmit(skb, dev, trace_id):
    """Hand skb's bytes to the device's port (the real TAP, or a packetdrill
    script's TUN), counting it sent or dropped (a full or missing port)."""
    port = dev.priv.port
    length = skb.len
    if port is None or not port.send(skb.buf, skb.data, skb.tail, 0, 0, 0, trace_id):
        dev.stats.tx_dropped += 1
        kfree_skb(skb, SKB_DROP_REASON_DEV_READY)
        return NETDEV_TX_OK
    dev.stats.tx_packets += 1
    dev.stats.tx_bytes += length
    consume_skb(skb)
    return NETDEV_TX_OK


tap_netdev_ops = NetDeviceOps(ndo_start_xmit=tap_xmit)


def tap_setup(name, mac, port, tap_name):
    dev = NetDevice(name, kind="tap", priv=TapPriv(port, tap_name))
    ether_setup(dev)
    dev.netdev_ops = tap_netdev_ops
    dev.dev_addr = dev.perm_addr = mac
    return dev


def tun_get_user(dev, frame):
    """A frame from the real kernel: build an skb and hand it to netif_rx (untrusted)."""
    n = len(frame)
    if n < ETH_HLEN:
        dev.stats.rx_length_errors += 1
        dev.stats.rx_errors += 1
        return NET_RX_DROP
    skb = build_skb_from_frame(frame)
    skb.dev = dev
    tracer = dev.net.tracer
    if tracer is not None and tracer.filter.match_frame(skb.buf, skb.data, skb.tail):
        skb.trace = tracer.new_ctx()
        skb.trace.hit("tun_get_user", dev.name)
    if not dev_forward_skb_ok(dev, skb):
        dev.stats.rx_dropped += 1
        kfree_skb(skb, SKB_DROP_REASON_DEV_READY)
        return NET_RX_DROP
    skb.protocol = eth_type_trans(skb, dev)
    dev.stats.rx_packets += 1
    dev.stats.rx_bytes += n
    return netif_rx(skb)
