"""struct net_device and its companions.

Linux: include/linux/netdevice.h, include/uapi/linux/if.h,
include/uapi/linux/if_link.h (rtnl_link_stats64)
"""
from ..hdr.if_arp import ARPHRD_ETHER
from ..hdr.if_ether import BROADCAST, ETH_DATA_LEN, ETH_HLEN, ETH_MAX_MTU, ETH_MIN_MTU

# include/uapi/linux/if.h
IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_DEBUG = 0x4
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_RUNNING = 0x40
IFF_NOARP = 0x80
IFF_PROMISC = 0x100
IFF_MASTER = 0x400
IFF_SLAVE = 0x800
IFF_MULTICAST = 0x1000
IFF_LOWER_UP = 0x10000

IFF_NAMES = [(IFF_BROADCAST, "BROADCAST"), (IFF_LOOPBACK, "LOOPBACK"),
             (IFF_POINTOPOINT, "POINTOPOINT"), (IFF_MULTICAST, "MULTICAST"),
             (IFF_NOARP, "NOARP"), (IFF_PROMISC, "PROMISC"), (IFF_MASTER, "MASTER"),
             (IFF_SLAVE, "SLAVE"), (IFF_UP, "UP"), (IFF_LOWER_UP, "LOWER_UP")]

IFNAMSIZ = 16

# enum netdev_priv_flags (the subset emu models)
IFF_NO_QUEUE = 1 << 21       # software device: noqueue, no default qdisc

# netdev_tx_t
NETDEV_TX_OK = 0
NETDEV_TX_BUSY = 0x10

# netif_rx / netif_receive_skb results
NET_RX_SUCCESS = 0
NET_RX_DROP = 1

# rx_handler_result_t
RX_HANDLER_CONSUMED = 0
RX_HANDLER_ANOTHER = 1
RX_HANDLER_EXACT = 2
RX_HANDLER_PASS = 3

# include/linux/skbuff.h: skb_shinfo(skb)->gso_type
SKB_GSO_TCPV4 = 1 << 0
SKB_GSO_DODGY = 1 << 1          # from an untrusted source (a wire): recount gso_segs
SKB_GSO_TCP_ECN = 1 << 2
SKB_GSO_TCP_FIXEDID = 1 << 3
SKB_GSO_TCPV6 = 1 << 4
SKB_GSO_PARTIAL = 1 << 12
SKB_GSO_UDP = 1 << 16           # UFO: IP fragmentation of one big datagram (legacy)
SKB_GSO_UDP_L4 = 1 << 17        # UDP_SEGMENT / UDP GRO: one datagram per segment
SKB_GSO_FRAGLIST = 1 << 18

# include/linux/netdev_features.h (the subset emu models). The GSO feature of
# a gso_type is gso_type << NETIF_F_GSO_SHIFT, as in Linux, so net_gso_ok is
# one mask test.
NETIF_F_GSO_SHIFT = 16
NETIF_F_SG = 1 << 0
NETIF_F_IP_CSUM = 1 << 1
NETIF_F_HW_CSUM = 1 << 3
NETIF_F_FRAGLIST = 1 << 6
NETIF_F_GSO = 1 << 11
NETIF_F_LLTX = 1 << 12
NETIF_F_GRO = 1 << 14
NETIF_F_LRO = 1 << 15
NETIF_F_TSO = SKB_GSO_TCPV4 << NETIF_F_GSO_SHIFT
NETIF_F_GSO_ROBUST = SKB_GSO_DODGY << NETIF_F_GSO_SHIFT
NETIF_F_TSO_ECN = SKB_GSO_TCP_ECN << NETIF_F_GSO_SHIFT
NETIF_F_TSO_MANGLEID = SKB_GSO_TCP_FIXEDID << NETIF_F_GSO_SHIFT
NETIF_F_TSO6 = SKB_GSO_TCPV6 << NETIF_F_GSO_SHIFT
NETIF_F_UFO = SKB_GSO_UDP << NETIF_F_GSO_SHIFT
NETIF_F_GSO_UDP_L4 = SKB_GSO_UDP_L4 << NETIF_F_GSO_SHIFT
NETIF_F_GSO_FRAGLIST = SKB_GSO_FRAGLIST << NETIF_F_GSO_SHIFT
NETIF_F_NTUPLE = 1 << 38
NETIF_F_RXHASH = 1 << 39
NETIF_F_RXCSUM = 1 << 40
NETIF_F_GRO_HW = 1 << 50
NETIF_F_GRO_FRAGLIST = 1 << 55
NETIF_F_GRO_UDP_FWD = 1 << 57
NETIF_F_GSO_MASK = ((1 << 19) - 1) << NETIF_F_GSO_SHIFT
NETIF_F_ALL_TSO = NETIF_F_TSO | NETIF_F_TSO6 | NETIF_F_TSO_ECN | NETIF_F_TSO_MANGLEID
NETIF_F_CSUM_MASK = NETIF_F_IP_CSUM | NETIF_F_HW_CSUM
# Software features every device gets at registration (NETIF_F_SOFT_FEATURES).
NETIF_F_SOFT_FEATURES = NETIF_F_GSO | NETIF_F_GRO

# `ethtool -k` names of the features above (net/ethtool/common.c netdev_features_strings)
NETDEV_FEATURE_NAMES = (
    (NETIF_F_SG, "tx-scatter-gather"), (NETIF_F_IP_CSUM, "tx-checksum-ipv4"),
    (NETIF_F_HW_CSUM, "tx-checksum-ip-generic"), (NETIF_F_FRAGLIST, "tx-scatter-gather-fraglist"),
    (NETIF_F_GSO, "tx-generic-segmentation"), (NETIF_F_LLTX, "tx-lockless"),
    (NETIF_F_GRO, "rx-gro"), (NETIF_F_LRO, "rx-lro"),
    (NETIF_F_TSO, "tx-tcp-segmentation"), (NETIF_F_GSO_ROBUST, "tx-gso-robust"),
    (NETIF_F_TSO_ECN, "tx-tcp-ecn-segmentation"), (NETIF_F_TSO_MANGLEID, "tx-tcp-mangleid-segmentation"),
    (NETIF_F_TSO6, "tx-tcp6-segmentation"), (NETIF_F_GSO_UDP_L4, "tx-udp-segmentation"),
    (NETIF_F_GSO_FRAGLIST, "tx-gso-list"), (NETIF_F_NTUPLE, "rx-ntuple-filter"),
    (NETIF_F_RXHASH, "rx-hashing"), (NETIF_F_RXCSUM, "rx-checksum"),
    (NETIF_F_GRO_HW, "rx-gro-hw"), (NETIF_F_GRO_FRAGLIST, "rx-gro-list"),
    (NETIF_F_GRO_UDP_FWD, "rx-udp-gro-forwarding"),
)
# `ethtool -K DEV gro off` short names (ethtool's off_flag_def)
NETDEV_FEATURE_ALIASES = {
    "sg": NETIF_F_SG, "tx": NETIF_F_CSUM_MASK, "rx": NETIF_F_RXCSUM,
    "tso": NETIF_F_ALL_TSO, "gso": NETIF_F_GSO, "gro": NETIF_F_GRO, "lro": NETIF_F_LRO,
    "rxhash": NETIF_F_RXHASH, "ntuple": NETIF_F_NTUPLE,
    "rx-gro-hw": NETIF_F_GRO_HW, "rx-gro-list": NETIF_F_GRO_FRAGLIST,
    "rx-udp-gro-forwarding": NETIF_F_GRO_UDP_FWD, "tx-udp-segmentation": NETIF_F_GSO_UDP_L4,
}

# netdev_queue state bits (include/linux/netdevice.h)
__QUEUE_STATE_DRV_XOFF = 1 << 0      # the driver stopped the queue (ring full)
__QUEUE_STATE_STACK_XOFF = 1 << 1    # BQL stopped it
__QUEUE_STATE_FROZEN = 1 << 2
QUEUE_STATE_ANY_XOFF = __QUEUE_STATE_DRV_XOFF | __QUEUE_STATE_STACK_XOFF
QUEUE_STATE_ANY_XOFF_OR_FROZEN = QUEUE_STATE_ANY_XOFF | __QUEUE_STATE_FROZEN

GRO_LEGACY_MAX_SIZE = 65536
GSO_LEGACY_MAX_SIZE = 65536
GSO_MAX_SEGS = 65535

# operstate (RFC 2863)
IF_OPER_UNKNOWN = "UNKNOWN"
IF_OPER_DOWN = "DOWN"
IF_OPER_UP = "UP"
IF_OPER_LOWERLAYERDOWN = "LOWERLAYERDOWN"


class RtnlLinkStats64:
    """Per-device counters, as `ip -s link` shows them."""

    FIELDS = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors",
              "tx_errors", "rx_dropped", "tx_dropped", "multicast", "collisions",
              "rx_length_errors", "rx_over_errors", "rx_crc_errors",
              "rx_frame_errors", "rx_fifo_errors", "rx_missed_errors",
              "tx_aborted_errors", "tx_carrier_errors", "tx_fifo_errors",
              "tx_heartbeat_errors", "tx_window_errors", "rx_compressed",
              "tx_compressed", "rx_nohandler")
    __slots__ = FIELDS

    def __init__(self):
        for f in self.FIELDS:
            setattr(self, f, 0)

    def as_dict(self):
        return {f: getattr(self, f) for f in self.FIELDS}


class NetdevRxQueue:
    """struct netdev_rx_queue: one receive queue (its RPS map lives here).

    rps_map is a tuple of CPU numbers (struct rps_map's cpus[]), empty when
    RPS is off for the queue: /sys/class/net/DEV/queues/rx-N/rps_cpus.
    """

    __slots__ = ("dev", "index", "rps_map", "napi")

    def __init__(self, dev, index):
        self.dev = dev
        self.index = index
        self.rps_map = ()
        self.napi = None


class NetdevQueue:
    """struct netdev_queue: one transmit queue, its qdisc and its stop state."""

    __slots__ = ("dev", "index", "state", "qdisc", "qdisc_sleeping", "trans_start",
                 "trans_timeout", "tx_stops", "tx_wakes")

    def __init__(self, dev, index):
        self.dev = dev
        self.index = index
        self.state = 0
        self.qdisc = None            # the qdisc enqueued to (None: noqueue)
        self.qdisc_sleeping = None   # the configured qdisc while the device is down
        self.trans_start = 0.0
        self.trans_timeout = 0
        self.tx_stops = 0            # netif_tx_stop_queue calls (ethtool: tx_queue_N_stops)
        self.tx_wakes = 0            # netif_tx_wake_queue restarts


class NetDeviceOps:
    """struct net_device_ops: the driver's methods."""

    __slots__ = ("ndo_init", "ndo_uninit", "ndo_open", "ndo_stop",
                 "ndo_start_xmit", "ndo_change_mtu", "ndo_get_stats64",
                 "ndo_add_slave", "ndo_del_slave", "ndo_select_queue",
                 "ndo_features_check", "ndo_get_iflink")

    def __init__(self, **methods):
        for name in self.__slots__:
            setattr(self, name, methods.pop(name, None))
        if methods:
            raise TypeError("unknown net_device_ops: %s" % ", ".join(methods))


class HeaderOps:
    """struct header_ops: build and parse the link-layer header."""

    __slots__ = ("create", "parse", "cache", "cache_update")

    def __init__(self, create=None, parse=None, cache=None, cache_update=None):
        self.create = create
        self.parse = parse
        self.cache = cache                  # cache(neigh, hh, type): fill an hh_cache
        self.cache_update = cache_update    # cache_update(hh, dev, haddr): new destination


class NetDevice:
    """struct net_device."""

    __slots__ = (
        "name", "ifindex", "net", "kind", "dev_addr", "perm_addr", "broadcast",
        "addr_len", "type", "mtu", "min_mtu", "max_mtu", "hard_header_len",
        "flags", "operstate", "carrier", "netdev_ops", "header_ops", "stats",
        "rx_handler", "rx_handler_data", "master", "priv", "ip_ptr",
        "ptype_all", "ptype_specific", "qdisc", "features", "tx_queue_len",
        "rx_cpu", "gso_max_size", "registered", "carrier_up_count", "carrier_down_count",
        "hw_features", "wanted_features", "num_rx_queues", "real_num_rx_queues",
        "_rx", "num_tx_queues", "real_num_tx_queues", "_tx", "gro_max_size",
        "gso_max_segs", "ethtool_ops", "napi_list", "watchdog_timeo", "priv_flags",
    )

    def __init__(self, name, kind="ether", priv=None, txqs=1, rxqs=1):
        self.name = name
        self.ifindex = 0
        self.net = None
        self.kind = kind
        self.dev_addr = b"\x00" * 6
        self.perm_addr = self.dev_addr
        self.broadcast = BROADCAST
        self.addr_len = 6
        self.type = ARPHRD_ETHER
        self.mtu = ETH_DATA_LEN
        self.min_mtu = ETH_MIN_MTU
        self.max_mtu = ETH_MAX_MTU
        self.hard_header_len = ETH_HLEN
        self.flags = 0
        self.operstate = IF_OPER_DOWN
        self.carrier = True
        self.carrier_up_count = 0      # netif_carrier_on/off calls (ip -d link: carrier_changes)
        self.carrier_down_count = 0
        self.netdev_ops = None
        self.header_ops = None
        self.stats = RtnlLinkStats64()
        self.rx_handler = None
        self.rx_handler_data = None
        self.master = None
        self.priv = priv
        self.ip_ptr = None          # struct in_device (IPv4 addresses)
        self.ptype_all = []         # taps bound to this device
        self.ptype_specific = []
        self.qdisc = None           # None: noqueue (veth, bridge, loopback)
        self.features = 0
        self.tx_queue_len = 1000
        self.rx_cpu = 0             # CPU its wire "interrupt" lands on
        self.gso_max_size = GSO_LEGACY_MAX_SIZE
        self.registered = False
        # alloc_netdev_mqs: the queues exist from allocation on.
        self.hw_features = 0         # what `ethtool -K` may toggle
        self.wanted_features = 0
        self.num_rx_queues = self.real_num_rx_queues = rxqs
        self._rx = [NetdevRxQueue(self, i) for i in range(rxqs)]
        self.num_tx_queues = self.real_num_tx_queues = txqs
        self._tx = [NetdevQueue(self, i) for i in range(txqs)]
        self.gro_max_size = GRO_LEGACY_MAX_SIZE
        self.gso_max_segs = GSO_MAX_SEGS
        self.ethtool_ops = None
        self.napi_list = []          # netif_napi_add
        self.watchdog_timeo = 5.0
        self.priv_flags = 0

    def __repr__(self):
        return "<NetDevice %s ifindex=%d>" % (self.name, self.ifindex)


def netif_running(dev):
    return bool(dev.flags & IFF_UP)


def netif_carrier_ok(dev):
    return dev.carrier


def netdev_get_tx_queue(dev, index):
    return dev._tx[index]


def netif_tx_stop_queue(txq):
    """The driver's ring is full: stop the stack from handing it packets."""
    if not txq.state & __QUEUE_STATE_DRV_XOFF:
        txq.tx_stops += 1
    txq.state |= __QUEUE_STATE_DRV_XOFF


def netif_stop_subqueue(dev, index):
    netif_tx_stop_queue(dev._tx[index])


def netif_stop_queue(dev):
    netif_tx_stop_queue(dev._tx[0])


def netif_tx_queue_stopped(txq):
    return bool(txq.state & __QUEUE_STATE_DRV_XOFF)


def netif_xmit_stopped(txq):
    return bool(txq.state & QUEUE_STATE_ANY_XOFF)


def netif_xmit_frozen_or_stopped(txq):
    return bool(txq.state & QUEUE_STATE_ANY_XOFF_OR_FROZEN)


def netif_tx_start_queue(txq):
    txq.state &= ~__QUEUE_STATE_DRV_XOFF


def net_gso_ok(features, gso_type):
    """Can a device with these features take a GSO skb of this type as is?

    A DODGY skb (GSO metadata from a wire) needs NETIF_F_GSO_ROBUST too;
    tcp_gso_segment then only recounts gso_segs.
    """
    feature = gso_type << NETIF_F_GSO_SHIFT
    return (features & feature) == feature


class PacketType:
    """struct packet_type: a protocol handler registered with dev_add_pack."""

    __slots__ = ("type", "dev", "func", "af_packet_priv")

    def __init__(self, type, func, dev=None, af_packet_priv=None):
        self.type = type
        self.func = func          # func(skb, dev, pt, orig_dev) -> NET_RX_*
        self.dev = dev
        self.af_packet_priv = af_packet_priv
