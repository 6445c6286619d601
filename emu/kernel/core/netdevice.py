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

# netdev_features_t (the subset emu models)
NETIF_F_SG = 1 << 0
NETIF_F_HW_CSUM = 1 << 3
NETIF_F_GSO = 1 << 11
NETIF_F_GRO = 1 << 14
NETIF_F_TSO = 1 << 16
NETIF_F_RXCSUM = 1 << 29

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


class NetDeviceOps:
    """struct net_device_ops: the driver's methods."""

    __slots__ = ("ndo_init", "ndo_uninit", "ndo_open", "ndo_stop",
                 "ndo_start_xmit", "ndo_change_mtu", "ndo_get_stats64",
                 "ndo_add_slave", "ndo_del_slave")

    def __init__(self, **methods):
        for name in self.__slots__:
            setattr(self, name, methods.pop(name, None))
        if methods:
            raise TypeError("unknown net_device_ops: %s" % ", ".join(methods))


class HeaderOps:
    """struct header_ops: build and parse the link-layer header."""

    __slots__ = ("create", "parse")

    def __init__(self, create=None, parse=None):
        self.create = create
        self.parse = parse


class NetDevice:
    """struct net_device."""

    __slots__ = (
        "name", "ifindex", "net", "kind", "dev_addr", "perm_addr", "broadcast",
        "addr_len", "type", "mtu", "min_mtu", "max_mtu", "hard_header_len",
        "flags", "operstate", "carrier", "netdev_ops", "header_ops", "stats",
        "rx_handler", "rx_handler_data", "master", "priv", "ip_ptr",
        "ptype_all", "ptype_specific", "qdisc", "features", "tx_queue_len",
        "rx_cpu", "gso_max_size", "registered",
    )

    def __init__(self, name, kind="ether", priv=None):
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
        self.gso_max_size = 65536
        self.registered = False

    def __repr__(self):
        return "<NetDevice %s ifindex=%d>" % (self.name, self.ifindex)


def netif_running(dev):
    return bool(dev.flags & IFF_UP)


def netif_carrier_ok(dev):
    return dev.carrier


class PacketType:
    """struct packet_type: a protocol handler registered with dev_add_pack."""

    __slots__ = ("type", "dev", "func", "af_packet_priv")

    def __init__(self, type, func, dev=None, af_packet_priv=None):
        self.type = type
        self.func = func          # func(skb, dev, pt, orig_dev) -> NET_RX_*
        self.dev = dev
        self.af_packet_priv = af_packet_priv
