"""wirenic: a multi-queue "physical" Ethernet NIC whose cable is an emu wire.

Linux: drivers/net/ethernet/intel/ixgbe/ixgbe_main.c is the model
(q_vectors with one RX and one TX ring each, ixgbe_msix_clean_rings,
ixgbe_poll, ixgbe_clean_rx_irq, ixgbe_clean_tx_irq, ixgbe_xmit_frame_ring,
ixgbe_maybe_stop_tx), include/linux/netdevice.h; the RSS hash is the
Toeplitz function of the Microsoft RSS specification ("Verifying the RSS
Hash Calculation") with its standard key.

The hardware half (sans-I/O; the node runtime's NIC thread calls it under the
kernel lock, tests call it inline):

  wirenic_hw_rx     a frame arrives: the NIC computes the RSS hash over the
                    IPv4/TCP/UDP tuple, picks the queue through the indirection
                    table and DMAs the frame into that queue's RX ring (a full
                    ring drops it: rx_missed_errors, rx_queue_N_drops)
  wirenic_hw_irq    raise the interrupt of every queue with events, unless it
                    is masked (its NAPI is polling) or coalescing
                    (rx-usecs / rx-frames) says to wait
  wirenic_hw_tx     the TX DMA engine: frames on the TX rings go onto the wire;
                    their descriptors complete (and interrupt, tx-usecs/tx-frames)
  wirenic_hw_next_event  when a coalesced interrupt is due

With flow control on (ethtool -A: pause, the default, as on most NICs) a
full RX ring does not drop: wirenic_hw_rx refuses the frame (-2, an XOFF
PAUSE frame sent) and the wire holds it until the driver's poll empties the
ring below half (XON: priv.xon, the runtime's hook, lets the NIC thread go
on). With pause off a full ring drops.

The driver half is the kernel's: the interrupt handler (wirenic_msix_clean_rings)
runs on the CPU the vector's IRQ is affine to, masks the vector and calls
napi_schedule; wirenic_poll (NET_RX) cleans the TX ring, builds skbs from
the RX ring (hash, queue, checksum state) and hands them to napi_gro_receive;
when it finishes under budget it completes the NAPI and unmasks the vector.
Under a flood the vector stays masked and the NAPI keeps polling: far fewer
interrupts than frames (ethtool -S: rx_queue_N_irqs vs rx_queue_N_packets).
wirenic_xmit puts an skb on the TX ring of the queue the stack chose and
stops that queue when the ring is full; cleaning wakes it (NET_TX restarts
its qdisc).

Emulation note: the wire carries virtio_net_hdr-like metadata with each
frame; the NIC's TX checksum offload marks CHECKSUM_PARTIAL frames
NEEDS_CSUM instead of computing the checksum (the receiving stack treats it
as partial, as veth does), and RX checksum offload turns DATA_VALID into
CHECKSUM_UNNECESSARY instead of re-verifying. A phys wire carries no GSO
frames (the NIC has no TSO: the stack segments before it).
"""
from collections import deque

from ..core.ethtool import EthtoolOps
from ..core.gro import napi_gro_receive
from ..core.napi import (
    NapiStruct, napi_complete_done, napi_disable, napi_enable, napi_schedule,
    netif_napi_add,
)
from ..core.netdevice import (
    NET_RX_DROP, NETDEV_TX_BUSY, NETDEV_TX_OK, NETIF_F_GRO_UDP_FWD, NETIF_F_HW_CSUM,
    NETIF_F_RXCSUM, NETIF_F_RXHASH, NETIF_F_SG, NetDevice, NetDeviceOps,
    netif_tx_stop_queue,
)
from ..core.rps import PKT_HASH_TYPE_L3, PKT_HASH_TYPE_L4
from ..core.skbuff import (
    CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, NET_SKB_PAD, SKB_DROP_REASON_DEV_READY,
    SkBuff, consume_skb, kfree_skb, skb_copy_bits, skb_data_hold, skb_data_release,
)
from ..ethernet.eth import eth_type_trans, ether_setup
from ..hdr.if_ether import ETH_HLEN
from ..hdr.virtio_net import (
    VIRTIO_NET_HDR_F_DATA_VALID, VIRTIO_NET_HDR_F_NEEDS_CSUM,
)
from ..sched.sch_generic import netif_tx_wake_queue

WIRENIC_DEFAULT_RING = 256
WIRENIC_MIN_RING = 8
WIRENIC_MAX_RING = 4096
RSS_INDIR_SIZE = 128            # ethtool -x: the redirection table
VLAN_HLEN = 4

# The Microsoft RSS specification's standard key (40 bytes).
RSS_KEY_MICROSOFT = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa")

_IPPROTO_TCP = 6
_IPPROTO_UDP = 17


# ---------------------------------------------------------------- Toeplitz

def toeplitz_tables(key, nbytes=12):
    """Per input byte position, the hash contribution of each byte value.

    Toeplitz: for every set bit k of the input (MSB first) XOR in the 32 key
    bits starting at key bit k. Tabulated per byte, a hash is nbytes lookups.
    """
    kbits = len(key) * 8
    kint = int.from_bytes(key, "big")

    def window(k):
        return (kint >> (kbits - 32 - k)) & 0xFFFFFFFF

    tables = []
    for i in range(nbytes):
        w = [window(8 * i + b) for b in range(8)]     # bit b of this byte, MSB = 0
        t = [0] * 256
        for v in range(256):
            h = 0
            for b in range(8):
                if v & (0x80 >> b):
                    h ^= w[b]
            t[v] = h
        tables.append(tuple(t))
    return tuple(tables)


def toeplitz_hash(tables, data):
    """The Toeplitz hash of data (at most len(tables) bytes)."""
    h = 0
    for i, b in enumerate(data):
        h ^= tables[i][b]
    return h


# ---------------------------------------------------------------- hardware state

class WirenicRing:
    """One RX or TX descriptor ring and its per-queue counters."""

    __slots__ = ("index", "size", "desc", "packets", "bytes", "drops", "hw_done",
                 "busy", "restarts", "done_since")

    def __init__(self, index, size):
        self.index = index
        self.size = size
        self.desc = deque()      # RX: (buf, len, hash, l4, flags, trace_id); TX: skbs
        self.packets = 0
        self.bytes = 0
        self.drops = 0           # RX: ring full; TX: wire refused
        self.hw_done = 0         # TX: descriptors the hardware completed (at the head)
        self.busy = 0            # TX: NETDEV_TX_BUSY returned
        self.restarts = 0        # TX: queue woken after a stop
        self.done_since = 0.0    # TX: when the oldest uncleaned completion happened


class WirenicQVector:
    """struct ixgbe_q_vector: one interrupt, one NAPI, one RX and one TX ring."""

    __slots__ = ("index", "napi", "rx_ring", "tx_ring", "irq_cpu", "irq_enabled",
                 "rx_pending", "rx_pending_since", "irqs", "polls", "dev")

    def __init__(self, dev, index, rx_size, tx_size, irq_cpu):
        self.dev = dev
        self.index = index
        self.napi = NapiStruct(wirenic_poll, dev=dev, name="%s-%d" % (dev.name, index))
        self.napi.priv = self
        self.napi.index = index
        self.rx_ring = WirenicRing(index, rx_size)
        self.tx_ring = WirenicRing(index, tx_size)
        self.irq_cpu = irq_cpu   # /proc/irq/N/smp_affinity (one CPU)
        self.irq_enabled = False
        self.rx_pending = 0      # frames placed since the last interrupt
        self.rx_pending_since = 0.0
        self.irqs = 0
        self.polls = 0


class WirenicPriv:
    """The adapter: the wire port, the vectors, RSS and coalescing settings."""

    __slots__ = ("port", "peer_name", "vectors", "rss_key", "rss_tables", "rss_indir",
                 "rx_usecs", "rx_frames", "tx_usecs", "tx_frames", "kick",
                 "rx_malformed", "rx_oversize", "tx_carrier_drops", "pause", "xoff",
                 "xon", "tx_pause_frames")

    def __init__(self, port, peer_name):
        self.port = port
        self.peer_name = peer_name
        self.vectors = []
        self.rss_key = RSS_KEY_MICROSOFT
        self.rss_tables = RSS_TABLES_MICROSOFT
        self.rss_indir = []
        self.rx_usecs = 0        # ethtool -C: delay an RX interrupt this long...
        self.rx_frames = 0       # ...or until this many frames (0: no frame limit)
        self.tx_usecs = 0
        self.tx_frames = 0
        self.kick = None         # runtime hook: kick(dev) after xmit (the doorbell)
        self.rx_malformed = 0
        self.rx_oversize = 0
        self.tx_carrier_drops = 0
        self.pause = True        # ethtool -A DEV rx on: flow control instead of drops
        self.xoff = False        # a ring filled up: the wire is paused
        self.xon = None          # runtime hook: xon(dev) when there is room again
        self.tx_pause_frames = 0


RSS_TABLES_MICROSOFT = toeplitz_tables(RSS_KEY_MICROSOFT)     # a constant, built at import


# ---------------------------------------------------------------- RSS

def wirenic_rss_hash(priv, buf, off, end):
    """(hash, hash_type) the NIC computes for the frame buf[off:end]."""
    if end - off < ETH_HLEN + 20 or buf[off + 12] != 0x08 or buf[off + 13] != 0x00:
        return 0, 0
    nh = off + ETH_HLEN
    vihl = buf[nh]
    if vihl >> 4 != 4:
        return 0, 0
    tables = priv.rss_tables
    proto = buf[nh + 9]
    ihl = (vihl & 15) * 4
    frag = ((buf[nh + 6] & 0x3F) << 8) | buf[nh + 7]
    if (proto == _IPPROTO_TCP or proto == _IPPROTO_UDP) and not frag and \
            end - nh >= ihl + 4:
        t = nh + ihl
        h = (tables[0][buf[nh + 12]] ^ tables[1][buf[nh + 13]] ^ tables[2][buf[nh + 14]] ^
             tables[3][buf[nh + 15]] ^ tables[4][buf[nh + 16]] ^ tables[5][buf[nh + 17]] ^
             tables[6][buf[nh + 18]] ^ tables[7][buf[nh + 19]] ^ tables[8][buf[t]] ^
             tables[9][buf[t + 1]] ^ tables[10][buf[t + 2]] ^ tables[11][buf[t + 3]])
        return h, PKT_HASH_TYPE_L4
    h = (tables[0][buf[nh + 12]] ^ tables[1][buf[nh + 13]] ^ tables[2][buf[nh + 14]] ^
         tables[3][buf[nh + 15]] ^ tables[4][buf[nh + 16]] ^ tables[5][buf[nh + 17]] ^
         tables[6][buf[nh + 18]] ^ tables[7][buf[nh + 19]])
    return h, PKT_HASH_TYPE_L3


def ethtool_rxfh_indir_default(index, n_rx_rings):
    return index % n_rx_rings


def wirenic_set_rss(dev, key=None, indir=None):
    """ethtool -X: a new key and/or redirection table."""
    priv = dev.priv
    if key is not None:
        if len(key) != 40:
            raise OSError(22, "RSS key must be 40 bytes")
        priv.rss_key = bytes(key)
        priv.rss_tables = RSS_TABLES_MICROSOFT if priv.rss_key == RSS_KEY_MICROSOFT \
            else toeplitz_tables(priv.rss_key)
    if indir is not None:
        if len(indir) != RSS_INDIR_SIZE or any(not 0 <= q < dev.real_num_rx_queues
                                               for q in indir):
            raise OSError(22, "indirection table needs %d queue numbers below %d"
                          % (RSS_INDIR_SIZE, dev.real_num_rx_queues))
        priv.rss_indir = list(indir)


# ---------------------------------------------------------------- hardware: receive

def wirenic_hw_rx(dev, frame, flags=0, gso_type=0, gso_size=0, trace_id=0, now=0.0):
    """A frame from the wire: RSS picks the queue, the frame is DMAed into its ring.

    The frame is untrusted: runts, oversized frames and GSO metadata (a phys
    link has none) are counted as errors and dropped by the "hardware".
    Returns the queue index, -1 when the frame was dropped, or -2 when the
    ring is full and flow control is on: the frame stays on the wire (the
    caller offers it again after priv.xon).
    """
    priv = dev.priv
    n = len(frame)
    stats = dev.stats
    if n < ETH_HLEN or n > dev.mtu + ETH_HLEN + VLAN_HLEN:
        stats.rx_length_errors += 1
        stats.rx_errors += 1
        if n >= ETH_HLEN:
            priv.rx_oversize += 1
        return -1
    if gso_type or not dev.flags & 1:
        if gso_type:
            priv.rx_malformed += 1
            stats.rx_frame_errors += 1
            stats.rx_errors += 1
        else:
            stats.rx_dropped += 1
        return -1
    h, ht = wirenic_rss_hash(priv, frame, 0, n)
    q = priv.rss_indir[h & (RSS_INDIR_SIZE - 1)]
    vec = priv.vectors[q]
    ring = vec.rx_ring
    if len(ring.desc) >= ring.size:
        if priv.pause:
            if not priv.xoff:
                priv.xoff = True
                priv.tx_pause_frames += 1
            return -2
        ring.drops += 1
        stats.rx_missed_errors += 1
        return -1
    buf = bytearray(NET_SKB_PAD + n)                  # the DMA into a ring buffer
    buf[NET_SKB_PAD:] = frame
    ring.desc.append((buf, n, h, ht, flags, trace_id))
    if not vec.rx_pending:
        vec.rx_pending_since = now
    vec.rx_pending += 1
    return q


def wirenic_hw_irq(dev, now=0.0):
    """Raise the interrupt of every vector that has events and may interrupt now."""
    priv = dev.priv
    fired = 0
    for vec in priv.vectors:
        if not vec.irq_enabled:
            continue
        tx = vec.tx_ring
        rx_due = vec.rx_pending and (
            not priv.rx_usecs or (priv.rx_frames and vec.rx_pending >= priv.rx_frames)
            or now - vec.rx_pending_since >= priv.rx_usecs / 1e6)
        tx_due = tx.hw_done and (
            not priv.tx_usecs or (priv.tx_frames and tx.hw_done >= priv.tx_frames)
            or now - tx.done_since >= priv.tx_usecs / 1e6
            or dev._tx[vec.index].state & 1)
        if rx_due or tx_due:
            wirenic_msix_clean_rings(dev, vec)
            fired += 1
    return fired


def wirenic_hw_next_event(dev):
    """The time a coalesced interrupt falls due (None: nothing waits)."""
    priv = dev.priv
    best = None
    for vec in priv.vectors:
        if not vec.irq_enabled:
            continue
        if vec.rx_pending and priv.rx_usecs:
            t = vec.rx_pending_since + priv.rx_usecs / 1e6
            best = t if best is None or t < best else best
        if vec.tx_ring.hw_done and priv.tx_usecs:
            t = vec.tx_ring.done_since + priv.tx_usecs / 1e6
            best = t if best is None or t < best else best
    return best


def wirenic_msix_clean_rings(dev, vec):
    """The interrupt handler, on the vector's affine CPU: mask it, schedule its NAPI."""
    net = dev.net
    vec.irq_enabled = False          # auto-masked until the poll completes
    vec.irqs += 1
    vec.rx_pending = 0
    prev = net.cur_cpu
    net.cur_cpu = vec.irq_cpu
    try:
        napi_schedule(vec.napi)
    finally:
        net.cur_cpu = prev


def wirenic_irq_enable(dev, vec, now=None):
    """Unmask the vector; an event that came while it was masked fires at once."""
    vec.irq_enabled = True
    if vec.rx_ring.desc or vec.tx_ring.hw_done:
        wirenic_msix_clean_rings(dev, vec)


# ---------------------------------------------------------------- hardware: transmit

def wirenic_hw_tx(dev, now=0.0):
    """The TX DMA engine: put every new descriptor's frame on the wire; complete them."""
    priv = dev.priv
    port = priv.port
    sent = 0
    for vec in priv.vectors:
        ring = vec.tx_ring
        desc = ring.desc
        start = ring.hw_done
        if start >= len(desc):
            continue
        if not start:
            ring.done_since = now
        for i in range(start, len(desc)):
            skb = desc[i]
            s = skb.ip_summed
            flags = VIRTIO_NET_HDR_F_NEEDS_CSUM if s == CHECKSUM_PARTIAL else \
                VIRTIO_NET_HDR_F_DATA_VALID if s == CHECKSUM_UNNECESSARY else 0
            held = None
            if skb.data_len:
                data, a, b = skb_copy_bits(skb, 0, skb.len), 0, skb.len
            else:
                data, a, b = skb.buf, skb.data, skb.tail
                if port is not None:
                    held = skb_data_hold(skb)    # read by the port at its flush (veth_xmit)
            if port is None or not port.send(data, a, b, flags, 0, 0,
                                             skb.trace.id if skb.trace is not None else 0, held):
                if held is not None:
                    skb_data_release(held)
                ring.drops += 1
                priv.tx_carrier_drops += 1
            sent += 1
        ring.hw_done = len(desc)
    return sent


# ---------------------------------------------------------------- driver: NAPI poll

def wirenic_clean_tx_irq(vec):
    """Free the descriptors the hardware completed; wake the queue if it was stopped."""
    ring = vec.tx_ring
    done = ring.hw_done
    if not done:
        return True
    dev = vec.dev
    desc = ring.desc
    nbytes = 0
    for _ in range(done):
        skb = desc.popleft()
        nbytes += skb.len
        consume_skb(skb)
    ring.hw_done = 0
    ring.packets += done
    ring.bytes += nbytes
    dev.stats.tx_packets += done
    dev.stats.tx_bytes += nbytes
    txq = dev._tx[vec.index]
    if txq.state & 1 and ring.size - len(desc) >= max(1, ring.size // 4):
        ring.restarts += 1
        netif_tx_wake_queue(txq)
    return True


def wirenic_clean_rx_irq(vec, napi, budget):
    """Build an skb for up to budget frames of the RX ring and pass them to GRO."""
    ring = vec.rx_ring
    desc = ring.desc
    n = len(desc)
    if n > budget:
        n = budget
    if not n:
        return 0
    dev = vec.dev
    net = dev.net
    features = dev.features
    rxhash = features & NETIF_F_RXHASH
    rxcsum = features & NETIF_F_RXCSUM
    qm = vec.index + 1
    tracer = net.tracer
    nbytes = 0
    good = 0
    popleft = desc.popleft
    for _ in range(n):
        buf, length, h, ht, flags, tid = popleft()
        skb = SkBuff(buf)                            # napi_build_skb around the ring buffer
        skb.data = NET_SKB_PAD
        skb.tail = NET_SKB_PAD + length
        skb.len = length
        skb.dev = dev
        if tracer is not None:
            if tid:
                skb.trace = tracer.ctx_for(tid)
            elif tracer.filter.match_frame(buf, NET_SKB_PAD, skb.tail):
                skb.trace = tracer.new_ctx()
            if skb.trace is not None:
                skb.trace.hit("wirenic_poll", "%s rx-%d" % (dev.name, vec.index))
        if rxhash:
            skb.hash = h                             # skb_set_hash(skb, h, ht)
            skb.l4_hash = ht == PKT_HASH_TYPE_L4
        skb.queue_mapping = qm                       # skb_record_rx_queue
        if flags:
            if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM:
                if not _partial_from_frame(skb):
                    dev.stats.rx_frame_errors += 1
                    dev.stats.rx_errors += 1
                    kfree_skb(skb, "WIRE_MALFORMED")
                    continue
            elif rxcsum and flags & VIRTIO_NET_HDR_F_DATA_VALID:
                skb.ip_summed = CHECKSUM_UNNECESSARY
        nbytes += length
        good += 1
        skb.protocol = eth_type_trans(skb, dev)
        napi_gro_receive(napi, skb)
    ring.packets += good
    ring.bytes += nbytes
    dev.stats.rx_packets += good
    dev.stats.rx_bytes += nbytes
    priv = dev.priv
    if priv.xoff and len(desc) <= ring.size >> 1:
        priv.xoff = False                            # XON: the wire may go on
        if priv.xon is not None:
            priv.xon(dev)
    return n


def _partial_from_frame(skb):
    """CHECKSUM_PARTIAL for a NEEDS_CSUM frame: the checksum is at the IPv4 L4 header."""
    from .wire_hdr import virtio_net_hdr_to_skb
    return virtio_net_hdr_to_skb(skb, VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0)


def wirenic_poll(napi, budget):
    """NAPI poll: TX completions, then RX under budget; unmask the IRQ when done."""
    vec = napi.priv
    vec.polls += 1
    clean_complete = wirenic_clean_tx_irq(vec)
    work = wirenic_clean_rx_irq(vec, napi, budget)
    if work >= budget or not clean_complete:
        return budget                    # still work: stay in polling mode
    if napi_complete_done(napi, work):
        wirenic_irq_enable(vec.dev, vec)
    return min(work, budget - 1)


# ---------------------------------------------------------------- driver: transmit

def wirenic_xmit(skb, dev):
    """ndo_start_xmit: the skb goes on its queue's TX ring; a full ring stops the queue."""
    if skb.trace is not None:
        skb.trace.hit("wirenic_xmit", "%s tx-%d" % (dev.name, skb.queue_mapping))
    priv = dev.priv
    q = skb.queue_mapping
    if q >= len(priv.vectors):
        q = 0
    ring = priv.vectors[q].tx_ring
    txq = dev._tx[q]
    if len(ring.desc) >= ring.size:
        # ixgbe_maybe_stop_tx failed to stop in time: tell the stack to requeue.
        netif_tx_stop_queue(txq)
        ring.busy += 1
        return NETDEV_TX_BUSY
    ring.desc.append(skb)
    if len(ring.desc) >= ring.size:
        netif_tx_stop_queue(txq)
    kick = priv.kick
    if kick is not None:
        kick(dev)                        # the doorbell: the hardware sends on kernel exit
    return NETDEV_TX_OK


def wirenic_open(dev):
    now = dev.net.clock()
    for vec in dev.priv.vectors:
        napi_enable(vec.napi)
        vec.irq_enabled = True
        vec.rx_pending_since = now
    return 0


def wirenic_close(dev):
    for vec in dev.priv.vectors:
        napi_disable(vec.napi)
        vec.irq_enabled = False
        vec.rx_ring.desc.clear()
        vec.rx_pending = 0
        tx = vec.tx_ring
        while tx.desc:
            kfree_skb(tx.desc.popleft(), SKB_DROP_REASON_DEV_READY)
        tx.hw_done = 0
    return 0


wirenic_netdev_ops = NetDeviceOps(ndo_open=wirenic_open, ndo_stop=wirenic_close,
                                  ndo_start_xmit=wirenic_xmit)


def wirenic_get_ringparam(dev):
    v = dev.priv.vectors[0]
    return {"rx": v.rx_ring.size, "tx": v.tx_ring.size, "rx_max": WIRENIC_MAX_RING,
            "tx_max": WIRENIC_MAX_RING}


def wirenic_get_coalesce(dev):
    p = dev.priv
    return {"rx_usecs": p.rx_usecs, "rx_frames": p.rx_frames, "tx_usecs": p.tx_usecs,
            "tx_frames": p.tx_frames}


def wirenic_get_pauseparam(dev):
    return {"autoneg": False, "rx": dev.priv.pause, "tx": dev.priv.pause}


def wirenic_set_pauseparam(dev, rx=None, tx=None):
    """ethtool -A DEV rx on|off: flow control on a full RX ring (else drops)."""
    if rx is not None:
        dev.priv.pause = bool(rx)
        if not rx:
            dev.priv.xoff = False


def wirenic_get_rxfh(dev):
    p = dev.priv
    return {"hfunc": "toeplitz", "key": p.rss_key.hex(), "indir": list(p.rss_indir)}


def wirenic_get_irq_affinity(dev, queue):
    return dev.priv.vectors[queue].irq_cpu

WIRENIC_FEATURES = NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_RXCSUM | NETIF_F_RXHASH
WIRENIC_HW_FEATURES = WIRENIC_FEATURES | NETIF_F_GRO_UDP_FWD


def wirenic_setup(name, mac, port=None, peer_name="", queues=1, ncpus=1,
                  rx_ring=WIRENIC_DEFAULT_RING, tx_ring=WIRENIC_DEFAULT_RING):
    """A wirenic with `queues` combined channels, ready for register_netdevice."""
    if not 1 <= queues <= 64:
        raise OSError(22, "queues must be 1..64")
    dev = NetDevice(name, kind="wirenic", priv=WirenicPriv(port, peer_name),
                    txqs=queues, rxqs=queues)
    ether_setup(dev)
    dev.netdev_ops = wirenic_netdev_ops
    dev.ethtool_ops = wirenic_ethtool_ops
    dev.hw_features |= WIRENIC_HW_FEATURES
    dev.features |= WIRENIC_FEATURES
    dev.dev_addr = dev.perm_addr = mac
    priv = dev.priv
    priv.rss_indir = [ethtool_rxfh_indir_default(i, queues) for i in range(RSS_INDIR_SIZE)]
    # One IRQ per queue, spread over the CPUs (as irqbalance would).
    priv.vectors = [WirenicQVector(dev, i, rx_ring, tx_ring, i % max(1, ncpus))
                    for i in range(queues)]
    return dev


def wirenic_register(net, name, mac, port=None, peer_name="", queues=1, mtu=None):
    """Create, register and wire up a wirenic in net (what a `phys` link end becomes)."""
    from ..core.dev import register_netdevice
    dev = wirenic_setup(name, mac, port, peer_name, queues, len(net.cpus))
    if mtu is not None:
        dev.mtu = int(mtu)
    register_netdevice(net, dev)
    for vec in dev.priv.vectors:
        netif_napi_add(dev, vec.napi, wirenic_poll)
        dev._rx[vec.index].napi = vec.napi
    return dev


def wirenic_set_irq_affinity(dev, queue, cpu):
    """/proc/irq/N/smp_affinity of a queue's vector (the lowest CPU of a mask is used)."""
    vecs = dev.priv.vectors
    if not 0 <= queue < len(vecs):
        raise OSError(2, "%s has no queue %d" % (dev.name, queue))
    if not 0 <= cpu < len(dev.net.cpus):
        raise OSError(22, "no cpu %d" % cpu)
    vecs[queue].irq_cpu = cpu


def wirenic_set_ringparam(dev, rx=None, tx=None):
    """ethtool -G: ring sizes (the rings are emptied, as a real reconfiguration does)."""
    for v in (rx, tx):
        if v is not None and not WIRENIC_MIN_RING <= int(v) <= WIRENIC_MAX_RING:
            raise OSError(22, "ring size must be %d..%d" % (WIRENIC_MIN_RING, WIRENIC_MAX_RING))
    for vec in dev.priv.vectors:
        if rx is not None:
            vec.rx_ring.size = int(rx)
            while len(vec.rx_ring.desc) > vec.rx_ring.size:
                vec.rx_ring.desc.pop()
                vec.rx_ring.drops += 1
        if tx is not None:
            vec.tx_ring.size = int(tx)


def wirenic_set_coalesce(dev, rx_usecs=None, rx_frames=None, tx_usecs=None, tx_frames=None):
    """ethtool -C: interrupt coalescing."""
    priv = dev.priv
    for name, given in (("rx_usecs", rx_usecs), ("rx_frames", rx_frames),
                        ("tx_usecs", tx_usecs), ("tx_frames", tx_frames)):
        if given is None:
            continue
        v = int(given)
        if not 0 <= v <= 1_000_000:
            raise OSError(22, "%s out of range" % name)
        setattr(priv, name, v)


def wirenic_get_ethtool_stats(dev):
    """ethtool -S: totals, then per queue (rx_queue_N_*, tx_queue_N_*)."""
    priv = dev.priv
    s = dev.stats
    out = {"rx_packets": s.rx_packets, "tx_packets": s.tx_packets,
           "rx_bytes": s.rx_bytes, "tx_bytes": s.tx_bytes,
           "rx_missed_errors": s.rx_missed_errors, "rx_length_errors": s.rx_length_errors,
           "rx_frame_errors": s.rx_frame_errors, "rx_oversize": priv.rx_oversize,
           "tx_busy": sum(v.tx_ring.busy for v in priv.vectors),
           "tx_restart_queue": sum(v.tx_ring.restarts for v in priv.vectors),
           "tx_carrier_drops": priv.tx_carrier_drops,
           "tx_flow_control_xoff": priv.tx_pause_frames,
           "interrupts": sum(v.irqs for v in priv.vectors),
           "napi_polls": sum(v.polls for v in priv.vectors)}
    for v in priv.vectors:
        i = v.index
        txq = dev._tx[i]
        out["tx_queue_%d_packets" % i] = v.tx_ring.packets
        out["tx_queue_%d_bytes" % i] = v.tx_ring.bytes
        out["tx_queue_%d_stops" % i] = txq.tx_stops
        out["tx_queue_%d_restarts" % i] = v.tx_ring.restarts
        out["tx_queue_%d_busy" % i] = v.tx_ring.busy
    for v in priv.vectors:
        i = v.index
        out["rx_queue_%d_packets" % i] = v.rx_ring.packets
        out["rx_queue_%d_bytes" % i] = v.rx_ring.bytes
        out["rx_queue_%d_drops" % i] = v.rx_ring.drops
        out["queue_%d_irqs" % i] = v.irqs
        out["queue_%d_polls" % i] = v.polls
    return out


wirenic_ethtool_ops = EthtoolOps(
    get_ethtool_stats=wirenic_get_ethtool_stats, get_ringparam=wirenic_get_ringparam,
    set_ringparam=wirenic_set_ringparam, get_coalesce=wirenic_get_coalesce,
    set_coalesce=wirenic_set_coalesce, get_rxfh=wirenic_get_rxfh, set_rxfh=wirenic_set_rss,
    get_irq_affinity=wirenic_get_irq_affinity, set_irq_affinity=wirenic_set_irq_affinity,
    get_pauseparam=wirenic_get_pauseparam, set_pauseparam=wirenic_set_pauseparam)


__all__ = ["wirenic_setup", "wirenic_register", "wirenic_hw_rx", "wirenic_hw_irq",
           "wirenic_hw_tx", "wirenic_hw_next_event", "wirenic_poll", "wirenic_xmit",
           "toeplitz_tables", "toeplitz_hash", "RSS_KEY_MICROSOFT", "NET_RX_DROP"]
