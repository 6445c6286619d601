"""veth: one end of a virtual Ethernet pair whose peer is in another node.

Linux: drivers/net/veth.c

In Linux veth_xmit hands the skb straight to the peer device
(veth_forward_skb -> __dev_forward_skb -> netif_rx). In emu the peer lives in
another process: veth_xmit puts the frame on the wire port, and the peer's node
runs veth_forward_skb -> __dev_forward_skb -> netif_rx when the frame arrives. The wire port is
given to the driver by the runtime (or by a test): port.send(buf, start, end,
flags, gso_type, gso_size, trace_id, held) copies the bytes out, at once or
when it flushes its batch (then releasing held, a reference on a clone's data).

Like Linux veth, the device advertises scatter-gather, checksum offload and
every software GSO type (VETH_FEATURES), so the stack may hand it 64 KiB
TCP/UDP GSO skbs unsegmented and CHECKSUM_PARTIAL skbs with no checksum
computed; the wire header carries gso_type/gso_size and the checksum state
(wire_hdr.py) and veth_forward_skb restores them on the other side. It has
no qdisc (IFF_NO_QUEUE: noqueue).

Receive ring: the node's hardware thread takes frames off the wire into a
bounded ring (veth_hw_rx, the producer, no kernel lock) and the receive
interrupt (veth_rx_irq, in the kernel) moves them to netif_rx while the
backlog has room. A frame that finds the ring full is dropped and counted in
rx_missed_errors, as a NIC counts frames it had no descriptor for, so a
flood is dropped at the edge and nothing unbounded waits in front of the
kernel. Emulation note: Linux's veth queues into its peer's ptr_ring
(VETH_RING_SIZE 256) only with NAPI/XDP on, and has no ethtool -G; emu's
ring is always there (ethtool -g/-G, default 1024) because the wire between
processes needs a bounded place to land.
"""
from collections import deque

from ..core.dev import __dev_forward_skb, register_netdevice
from ..core.napi import enqueue_to_backlog
from ..core.rps import get_rps_cpu
from ..core.ethtool import EthtoolOps
from ..core.netdevice import (
    IFF_NO_QUEUE, IFF_UP, NETDEV_TX_OK, NET_RX_DROP, NETIF_F_FRAGLIST, NETIF_F_GSO_FRAGLIST,
    NETIF_F_GSO_UDP_L4, NETIF_F_HW_CSUM, NETIF_F_LLTX, NETIF_F_RXCSUM, NETIF_F_SG,
    NETIF_F_ALL_TSO, NetDevice, NetDeviceOps,
)
from ..core.skbuff import (
    NET_SKB_PAD, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST, SKB_DROP_REASON_DEV_READY, SKB_DROP_REASON_PKT_TOO_SMALL, SkBuff,
    consume_skb, kfree_skb, skb_copy_bits, skb_data_hold, skb_data_release,
)
from ..ethernet.eth import ether_setup
from ..hdr.if_ether import BROADCAST, ETH_HLEN, ETH_P_802_2, ETH_P_802_3_MIN
from .wire_hdr import virtio_net_hdr_from_skb, virtio_net_hdr_to_skb

# drivers/net/veth.c: VETH_FEATURES (NETIF_F_GSO_SOFTWARE is ALL_TSO | GSO_UDP_L4 | GSO_FRAGLIST)
VETH_FEATURES = (NETIF_F_SG | NETIF_F_FRAGLIST | NETIF_F_HW_CSUM | NETIF_F_RXCSUM |
                 NETIF_F_ALL_TSO | NETIF_F_GSO_UDP_L4 | NETIF_F_GSO_FRAGLIST)
SKB_DROP_REASON_WIRE_MALFORMED = "WIRE_MALFORMED"
# veth boots with TSO on, as in Linux: TCP sends super-segments across the
# wire (`ethtool -K DEV tso off` gives MSS-sized frames). USO stays off, as
# UDP has no receive-side segmentation of GSO skbs yet.
VETH_TSO_OFF = NETIF_F_GSO_UDP_L4


VETH_RING_SIZE = 1024
_PAD = bytearray(NET_SKB_PAD)      # bytearray + frame: a bytearray
VETH_RING_MIN = 64
VETH_RING_MAX = 4096


class VethPriv:
    """struct veth_priv: where the peer is (here, a wire port), and the RX ring.

    The ring is single-producer (the hardware thread appends) and
    single-consumer (the kernel pops): the producer checks the length before
    it appends and only it appends, so the ring never exceeds its size, and
    deque's append/popleft are each atomic.
    """

    __slots__ = ("port", "peer_name", "rx_malformed", "rx_ring", "rx_ring_size",
                 "hw_rx_missed")

    def __init__(self, port=None, peer_name=""):
        self.port = port
        self.peer_name = peer_name
        self.rx_malformed = 0
        self.rx_ring = deque()
        self.rx_ring_size = VETH_RING_SIZE
        self.hw_rx_missed = 0        # the hardware's own counter, read by the kernel


def veth_open(dev):
    return 0


def veth_close(dev):
    return 0


def veth_xmit(skb, dev):
    """ndo_start_xmit: the frame leaves this node on the wire."""
    if skb.trace is not None:
        skb.trace.hit("veth_xmit", dev.name)
    port = dev.priv.port
    length = skb.len
    hdr = virtio_net_hdr_from_skb(skb) if skb.ip_summed or skb.shinfo.gso_size else (0, 0, 0)
    if hdr is None:
        dev.stats.tx_dropped += 1
        kfree_skb(skb, SKB_DROP_REASON_DEV_READY)
        return NETDEV_TX_OK
    flags, gso_type, gso_size = hdr
    held = None
    if skb.data_len:
        buf, start, end = skb_copy_bits(skb, 0, length), 0, length   # gather the frags
    else:
        buf, start, end = skb.buf, skb.data, skb.tail
        if port is not None and skb.cloned:
            # The port reads the frame when it flushes, at the end of this kernel
            # entry: until then a clone's data stays referenced (skb_data_hold;
            # private data is never written meanwhile, nothing to hold).
            held = skb_data_hold(skb)
    if port is None or not port.send(buf, start, end, flags, gso_type, gso_size,
                                     skb.trace.id if skb.trace is not None else 0, held):
        if held is not None:
            skb_data_release(held)
        # No peer or the wire is full: Linux veth counts these as drops too.
        dev.stats.tx_dropped += 1
        kfree_skb(skb, SKB_DROP_REASON_DEV_READY)
        return NETDEV_TX_OK
    dev.stats.tx_packets += 1
    dev.stats.tx_bytes += length
    if skb.destructor is None and not skb.freed:
        # consume_skb, written out for an skb nobody accounts for.
        skb.freed = True
        sh = skb.shinfo
        sh.dataref -= 1
        if sh.dataref == 0:
            sh.frags = []
        skb.buf = None
    else:
        consume_skb(skb)
    return NETDEV_TX_OK


def veth_get_iflink(dev):
    """The peer's ifindex (0: no peer here).

    Emulation note: the peer is a device in another node's kernel, so its
    ifindex is not ours to give; 0 still says "a device with a peer", which is
    what makes a veth without carrier LOWERLAYERDOWN rather than DOWN.
    """
    return 0


veth_netdev_ops = NetDeviceOps(ndo_open=veth_open, ndo_stop=veth_close,
                               ndo_start_xmit=veth_xmit, ndo_get_iflink=veth_get_iflink)


def veth_setup(name, mac, port=None, peer_name=""):
    """A veth device ready for register_netdevice (Linux: veth_setup)."""
    dev = NetDevice(name, kind="veth", priv=VethPriv(port, peer_name))
    ether_setup(dev)
    dev.netdev_ops = veth_netdev_ops
    dev.priv_flags |= IFF_NO_QUEUE
    dev.hw_features |= VETH_FEATURES
    dev.features |= (VETH_FEATURES | NETIF_F_LLTX) & ~VETH_TSO_OFF
    dev.dev_addr = dev.perm_addr = mac
    dev.ethtool_ops = VETH_ETHTOOL_OPS
    return dev


def veth_newlink(net, name, mac, mtu=None, port=None, peer_name=""):
    """rtnl_link_ops.newlink of veth (ip link add NAME type veth peer name PEER):
    set up and register this end of the pair.

    Emulation note: Linux creates and registers both ends here, the peer
    first; emu's peer end is a device in another node's kernel, created by
    that node's own veth_newlink, and the two are joined by the wire port;
    peer_name ("node:ifname") only names it.
    """
    dev = veth_setup(name, mac, port, peer_name)
    if mtu is not None:
        dev.mtu = mtu
    dev.rx_cpu = len(net.dev_by_name) % len(net.cpus)
    register_netdevice(net, dev)
    return dev


def veth_forward_skb(dev, frame, flags=0, gso_type=0, gso_size=0, trace_id=0):
    """A frame from the peer arrives: build an skb, __dev_forward_skb, netif_rx.

    Emulation note: in Linux veth_xmit calls veth_forward_skb on the peer
    device directly; emu's peer is in another process, so veth_xmit puts the
    frame on the wire and this runs in the receiving node.

    frame is untrusted: a runt is dropped and counted, never raised.
    """
    n = len(frame)
    if n < ETH_HLEN:
        dev.stats.rx_length_errors += 1
        dev.stats.rx_errors += 1
        dev.net.drop_reasons[SKB_DROP_REASON_PKT_TOO_SMALL] += 1
        return NET_RX_DROP
    # build_skb_from_frame, written out: one copy behind NET_SKB_PAD headroom.
    skb = SkBuff(_PAD + frame)
    skb.data = NET_SKB_PAD
    skb.tail = skb.end
    skb.len = n
    skb.dev = dev
    net = dev.net
    tracer = net.tracer
    if tracer is not None:
        if trace_id:
            skb.trace = tracer.ctx_for(trace_id)
        elif tracer.filter.match_frame(skb.buf, skb.data, skb.tail):
            skb.trace = tracer.new_ctx()
        if skb.trace is not None:
            skb.trace.hit("veth_forward_skb", dev.name)
    if (flags or gso_type) and not virtio_net_hdr_to_skb(skb, flags, gso_type, gso_size):
        # GSO or checksum metadata that does not fit the frame (virtio_net_hdr_to_skb
        # says -EINVAL): a malformed frame.
        dev.stats.rx_errors += 1
        dev.stats.rx_frame_errors += 1
        kfree_skb(skb, SKB_DROP_REASON_WIRE_MALFORMED)
        return NET_RX_DROP
    if not (dev.flags & IFF_UP and (n <= dev.mtu + dev.hard_header_len + 4
                                    or skb.shinfo.gso_size != 0)):
        __dev_forward_skb(dev, skb)        # not forwardable: dropped and counted there
        return NET_RX_DROP
    # __dev_forward_skb (its checks passed above; skb_scrub_packet finds a
    # fresh skb clean), eth_type_trans and netif_rx -> netif_rx_internal,
    # written out, their trace hits in order.
    tr = skb.trace
    if tr is not None:
        tr.hit("__dev_forward_skb", dev.name)
    skb.tstamp = 0
    buf = skb.buf
    off = skb.mac_header = skb.data
    skb.data = off + ETH_HLEN
    skb.len -= ETH_HLEN
    if buf[off] & 1:
        skb.pkt_type = PACKET_BROADCAST if buf[off:off + 6] == BROADCAST else PACKET_MULTICAST
    elif buf[off:off + 6] != dev.dev_addr:
        skb.pkt_type = PACKET_OTHERHOST
    proto = (buf[off + 12] << 8) | buf[off + 13]
    skb.protocol = proto if proto >= ETH_P_802_3_MIN else ETH_P_802_2
    stats = dev.stats
    stats.rx_packets += 1
    stats.rx_bytes += n
    if tr is not None:
        tr.hit("netif_rx")
        tr.hit("netif_rx_internal")
    cpu = get_rps_cpu(dev, skb) if dev._rx[0].rps_map or skb.queue_mapping else -1
    if cpu < 0:
        cpu = net.cur_cpu
    elif tr is not None:
        tr.hit("get_rps_cpu", cpu)
    return enqueue_to_backlog(skb, cpu)


# ------------------------------------------------------------------ the RX ring

def veth_hw_rx(dev, item):
    """Hardware side: one frame (flags, gso_type, gso_size, trace_id, frame) off
    the wire into the ring; False (and counted) when the ring is full."""
    priv = dev.priv
    if len(priv.rx_ring) >= priv.rx_ring_size:
        priv.hw_rx_missed += 1
        return False
    priv.rx_ring.append(item)
    return True


def veth_rx_irq(dev, high):
    """The receive interrupt: ring -> netif_rx while the CPU's backlog is under
    `high` (what does not fit waits in the ring). Returns frames moved."""
    priv = dev.priv
    ring = priv.rx_ring
    s = dev.stats
    missed = priv.hw_rx_missed
    if missed != s.rx_missed_errors:        # fold in the hardware counter
        s.rx_errors += missed - s.rx_missed_errors
        s.rx_missed_errors = missed
    queue = dev.net.cpus[dev.rx_cpu].input_pkt_queue
    n = 0
    while ring and len(queue) < high:
        flags, gso_type, gso_size, trace_id, frame = ring.popleft()
        veth_forward_skb(dev, frame, flags, gso_type, gso_size, trace_id)
        n += 1
    return n


def veth_get_ringparam(dev):
    return {"rx": dev.priv.rx_ring_size, "tx": 0, "rx_max": VETH_RING_MAX, "tx_max": 0,
            "rx_pending": len(dev.priv.rx_ring)}


def veth_set_ringparam(dev, rx=None, tx=None):
    """ethtool -G DEV rx N: frames past a smaller size are dropped as missed."""
    if tx is not None:
        raise OSError(22, "veth has no TX ring")
    if rx is not None:
        if not VETH_RING_MIN <= int(rx) <= VETH_RING_MAX:
            raise OSError(22, "ring size must be %d..%d" % (VETH_RING_MIN, VETH_RING_MAX))
        priv = dev.priv
        priv.rx_ring_size = int(rx)


def veth_get_ethtool_stats(dev):
    """ethtool -S: the link counters and the ring's (Linux veth prints rx_queue_N_*)."""
    s = dev.stats
    priv = dev.priv
    return {"peer": priv.peer_name, "rx_queue_0_packets": s.rx_packets,
            "rx_queue_0_bytes": s.rx_bytes, "rx_queue_0_drops": s.rx_dropped,
            "rx_missed_errors": max(priv.hw_rx_missed, s.rx_missed_errors),
            "rx_ring_pending": len(priv.rx_ring),
            "tx_queue_0_packets": s.tx_packets, "tx_queue_0_bytes": s.tx_bytes,
            "tx_queue_0_drops": s.tx_dropped}


VETH_ETHTOOL_OPS = EthtoolOps(get_ringparam=veth_get_ringparam, set_ringparam=veth_set_ringparam,
                              get_ethtool_stats=veth_get_ethtool_stats)
