"""RPS: steering received packets to other CPUs by their flow hash.

Linux: net/core/dev.c (get_rps_cpu, skb_tx_hash), net/core/net-sysfs.c
(store_rps_map: /sys/class/net/DEV/queues/rx-N/rps_cpus),
net/core/flow_dissector.c (__skb_get_hash, __flow_hash_consistentify),
include/linux/skbuff.h (skb_get_hash, skb_set_hash, skb_record_rx_queue).

A flow hash comes from the NIC (RSS: wirenic computes a Toeplitz hash and
the driver calls skb_set_hash) or, when the device gave none (veth), from
__skb_get_hash in software. get_rps_cpu maps it through the receive queue's
rps_map: map[reciprocal_scale(hash, len(map))], so one flow always lands on
one CPU (per-flow order is kept) and flows spread over the CPUs in the mask.

Emulation note: Linux hashes the flow keys with siphash and a random boot
key; emu hashes the (consistentified) keys with Python's tuple hash and a
per-node key derived from the node name, so runs are reproducible. RFS
(rps_sock_flow_table) is not modelled. A hardware L3 hash is kept as is
(Linux recomputes an L4 software hash for it in skb_get_hash).
"""
import errno
import hashlib

from ..hdr.if_ether import ETH_P_IP

PKT_HASH_TYPE_NONE = 0
PKT_HASH_TYPE_L2 = 1
PKT_HASH_TYPE_L3 = 2
PKT_HASH_TYPE_L4 = 3

_IPPROTO_TCP = 6
_IPPROTO_UDP = 17


def reciprocal_scale(val, ep_ro):
    """Map a 32-bit value onto [0, ep_ro) by its high bits (include/linux/math.h)."""
    return (val * ep_ro) >> 32


def skb_set_hash(skb, hash_, hash_type):
    skb.hash = hash_ & 0xFFFFFFFF
    skb.l4_hash = hash_type == PKT_HASH_TYPE_L4


def skb_record_rx_queue(skb, rx_queue):
    skb.queue_mapping = rx_queue + 1


def skb_get_rx_queue(skb):
    return skb.queue_mapping - 1


def skb_rx_queue_recorded(skb):
    return skb.queue_mapping != 0


def flow_hashrnd(net):
    """The node's flow hash key (net_get_random_once(&hashrnd) in Linux)."""
    k = net.proto.get("flow_hashrnd")
    if k is None:
        k = net.proto["flow_hashrnd"] = int.from_bytes(
            hashlib.blake2s(("hashrnd/" + net.name).encode(), digest_size=8).digest(), "big")
    return k


def __flow_hash(saddr, daddr, ports, proto, key):
    """Hash of the flow keys, the same both ways (__flow_hash_consistentify); never 0."""
    sport = ports >> 16
    dport = ports & 0xFFFF
    if daddr < saddr or (daddr == saddr and dport < sport):
        saddr, daddr = daddr, saddr
        ports = (dport << 16) | sport
    h = hash((saddr, daddr, ports, proto, key)) & 0xFFFFFFFF
    return h or 1


def __skb_get_hash(skb):
    """Compute the software flow hash from the IPv4 header (the flow dissector).

    The header is at skb.network_header, or at data when that is not set yet
    (a received skb before __netif_receive_skb_core).

    TCP and UDP hash the 4-tuple (an L4 hash) unless the packet is a
    fragment; other IPv4 packets hash the addresses (L3). Non-IP: no hash.
    """
    skb.hash = 0
    skb.l4_hash = False
    if skb.protocol != ETH_P_IP:
        return 0
    buf = skb.buf
    nh = skb.network_header
    if nh < skb.data:
        nh = skb.data
    if skb.tail - nh < 20:
        return 0
    vihl = buf[nh]
    if vihl >> 4 != 4:
        return 0
    ihl = (vihl & 15) * 4
    proto = buf[nh + 9]
    saddr = int.from_bytes(buf[nh + 12:nh + 16], "big")
    daddr = int.from_bytes(buf[nh + 16:nh + 20], "big")
    ports = 0
    l4 = False
    if (proto == _IPPROTO_TCP or proto == _IPPROTO_UDP) and \
            not ((buf[nh + 6] & 0x3F) | buf[nh + 7]) and skb.tail - nh >= ihl + 4:
        t = nh + ihl
        ports = int.from_bytes(buf[t:t + 4], "big")
        l4 = True
    h = __flow_hash(saddr, daddr, ports, proto, flow_hashrnd(skb.dev.net))
    skb.hash = h
    skb.l4_hash = l4
    return h


def skb_get_hash(skb):
    """The flow hash: the one the NIC gave, else computed (and kept) in software."""
    h = skb.hash
    if h:
        return h
    return __skb_get_hash(skb)


def get_rps_cpu(dev, skb):
    """The CPU RPS steers skb to, or -1 (no rps_map on its receive queue, no hash)."""
    index = skb.queue_mapping - 1 if skb.queue_mapping else 0
    if index >= dev.real_num_rx_queues:
        return -1            # "received on queue N, but number of RX queues is M"
    m = dev._rx[index].rps_map
    if not m:
        return -1
    skb.network_header = skb.data
    h = skb.hash or __skb_get_hash(skb)
    if not h:
        return -1
    return m[(h * len(m)) >> 32]


def skb_tx_hash(dev, skb, qcount):
    """Pick a transmit queue: the receive queue when forwarding, else by flow hash."""
    if skb.queue_mapping:
        h = skb.queue_mapping - 1
        while h >= qcount:
            h -= qcount
        return h
    return reciprocal_scale(skb_get_hash(skb), qcount)


def cpumask_parse(text, ncpus):
    """A sysfs cpumask ("f", "0000000f", "00000000,0000000f") -> (mask, cpus)."""
    if isinstance(text, int):
        mask = text
    else:
        t = str(text).strip().replace(",", "").lower()
        if t.startswith("0x"):
            t = t[2:]
        try:
            mask = int(t, 16) if t else 0
        except ValueError:
            raise OSError(errno.EINVAL, "invalid cpumask %r" % (text,)) from None
    if mask < 0:
        raise OSError(errno.EINVAL, "invalid cpumask %r" % (text,))
    if mask >> ncpus:
        raise OSError(errno.EINVAL, "cpumask %x names CPUs this node lacks (%d CPUs)"
                      % (mask, ncpus))
    return mask, tuple(c for c in range(ncpus) if mask >> c & 1)


def store_rps_map(dev, index, text):
    """Write /sys/class/net/DEV/queues/rx-INDEX/rps_cpus."""
    if not 0 <= index < dev.real_num_rx_queues:
        raise OSError(errno.ENOENT, "%s has no rx-%d" % (dev.name, index))
    _, cpus = cpumask_parse(text, len(dev.net.cpus))
    dev._rx[index].rps_map = cpus
    return cpus


def show_rps_map(dev, index):
    mask = 0
    for c in dev._rx[index].rps_map:
        mask |= 1 << c
    return "%x" % mask
