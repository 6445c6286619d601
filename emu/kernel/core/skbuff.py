"""Socket buffers: one packet, its headers found by offsets into one bytearray.

Linux: net/core/skbuff.c, include/linux/skbuff.h

An SkBuff owns (or, once cloned, shares) a bytearray ``buf``. ``head`` is
offset 0 of that buffer; ``data``, ``tail`` and ``end`` are integer offsets,
so pushing and pulling headers moves integers, never bytes. Header positions
(``mac_header``, ``network_header``, ``transport_header``) are offsets too.

Emulation note: skb_shared_info is a small object beside the buffer instead of
bytes past ``end``; it holds ``dataref``, the count of SkBuffs sharing ``buf``.
"""
import threading
from collections import deque

# include/linux/if_packet.h: skb->pkt_type
PACKET_HOST = 0
PACKET_BROADCAST = 1
PACKET_MULTICAST = 2
PACKET_OTHERHOST = 3
PACKET_OUTGOING = 4
PACKET_LOOPBACK = 5

# include/linux/skbuff.h: skb->ip_summed
CHECKSUM_NONE = 0
CHECKSUM_UNNECESSARY = 1
CHECKSUM_COMPLETE = 2
CHECKSUM_PARTIAL = 3

NET_SKB_PAD = 64          # headroom drivers reserve on receive (NET_SKB_PAD)
LL_MAX_HEADER = 128       # headroom protocols reserve on send (LL_MAX_HEADER)
SKB_TRUESIZE_OVERHEAD = 320  # sizeof(struct sk_buff) + skb_shared_info, roughly

# include/net/dropreason-core.h (the subset emu uses)
SKB_DROP_REASON_NOT_SPECIFIED = "NOT_SPECIFIED"
SKB_DROP_REASON_PKT_TOO_SMALL = "PKT_TOO_SMALL"
SKB_DROP_REASON_MAC_MALFORMED = "MAC_MALFORMED"
SKB_DROP_REASON_UNHANDLED_PROTO = "UNHANDLED_PROTO"
SKB_DROP_REASON_OTHERHOST = "OTHERHOST"
SKB_DROP_REASON_IP_CSUM = "IP_CSUM"
SKB_DROP_REASON_IP_INHDR = "IP_INHDR"
SKB_DROP_REASON_IP_INADDRERRORS = "IP_INADDRERRORS"
SKB_DROP_REASON_IP_NOPROTO = "IP_NOPROTO"
SKB_DROP_REASON_IP_RPFILTER = "IP_RPFILTER"
SKB_DROP_REASON_IP_INNOROUTES = "IP_INNOROUTES"
SKB_DROP_REASON_IP_OUTNOROUTES = "IP_OUTNOROUTES"
SKB_DROP_REASON_NEIGH_FAILED = "NEIGH_FAILED"
SKB_DROP_REASON_NEIGH_QUEUEFULL = "NEIGH_QUEUEFULL"
SKB_DROP_REASON_NEIGH_DEAD = "NEIGH_DEAD"
SKB_DROP_REASON_DEV_READY = "DEV_READY"
SKB_DROP_REASON_CPU_BACKLOG = "CPU_BACKLOG"
SKB_DROP_REASON_FULL_RING = "FULL_RING"
SKB_DROP_REASON_SOCKET_RCVBUFF = "SOCKET_RCVBUFF"
SKB_DROP_REASON_NO_SOCKET = "NO_SOCKET"
SKB_DROP_REASON_ARP_MALFORMED = "ARP_MALFORMED"    # emu: arp_rcv's header checks
SKB_DROP_REASON_ICMP_CSUM = "ICMP_CSUM"
SKB_DROP_REASON_BRIDGE_NO_EGRESS = "BRIDGE_NO_EGRESS"
SKB_DROP_REASON_TTL = "IP_TTL"  # emu: named like the rest; Linux counts it in ip_forward
SKB_DROP_REASON_NETFILTER_DROP = "NETFILTER_DROP"
SKB_DROP_REASON_WIRE_MALFORMED = "WIRE_MALFORMED"  # emu: a bad wire header


class SkbUnderPanic(RuntimeError):
    """skb_push past the headroom (Linux: skb_under_panic, a BUG())."""


class SkbOverPanic(RuntimeError):
    """skb_put past the end of the buffer (Linux: skb_over_panic, a BUG())."""


class SkbSharedInfo:
    """The part shared by clones: the buffer's reference count and GSO state."""

    __slots__ = ("dataref", "nr_frags", "frags", "gso_size", "gso_segs", "gso_type")

    def __init__(self):
        self.dataref = 1
        self.nr_frags = 0
        self.frags = []
        self.gso_size = 0
        self.gso_segs = 0
        self.gso_type = 0


class SkBuff:
    """struct sk_buff."""

    __slots__ = (
        "buf", "head", "data", "tail", "end", "len", "data_len", "truesize",
        "shinfo", "cloned", "dev", "skb_iif", "sk", "dst", "protocol",
        "pkt_type", "mac_header", "network_header", "transport_header",
        "mac_len", "hash", "l4_hash", "ip_summed", "priority", "mark",
        "queue_mapping", "tstamp", "cb", "trace", "freed", "destructor",
    )

    def __init__(self, buf, shinfo=None):
        self.buf = buf
        self.head = 0
        self.data = 0
        self.tail = 0
        self.end = len(buf)
        self.len = 0
        self.data_len = 0
        self.truesize = len(buf) + SKB_TRUESIZE_OVERHEAD
        self.shinfo = shinfo if shinfo is not None else SkbSharedInfo()
        self.cloned = False
        self.dev = None
        self.skb_iif = 0
        self.sk = None
        self.dst = None
        self.protocol = 0
        self.pkt_type = PACKET_HOST
        self.mac_header = -1
        self.network_header = -1
        self.transport_header = -1
        self.mac_len = 0
        self.hash = 0
        self.l4_hash = False
        self.ip_summed = CHECKSUM_NONE
        self.priority = 0
        self.mark = 0
        self.queue_mapping = 0
        self.tstamp = 0.0
        self.cb = None           # per-layer control block (IPCB, TCP_SKB_CB...)
        self.trace = None        # a TraceCtx when this packet is being traced
        self.freed = False
        self.destructor = None

    def __repr__(self):
        return "<SkBuff len=%d data=%d tail=%d end=%d dev=%s>" % (
            self.len, self.data, self.tail, self.end,
            self.dev.name if self.dev is not None else None)

    # Convenience views (no copies until a caller asks for bytes).
    def payload(self):
        """The bytes between data and tail (a copy: use at the I/O boundary)."""
        return bytes(self.buf[self.data:self.tail])

    def view(self):
        return memoryview(self.buf)[self.data:self.tail]


def alloc_skb(size):
    """An empty buffer of size bytes: head == data == tail, all tailroom."""
    return SkBuff(bytearray(size))


def netdev_alloc_skb(dev, length):
    """Receive buffer with NET_SKB_PAD headroom, as drivers allocate them."""
    skb = SkBuff(bytearray(NET_SKB_PAD + length))
    skb.data = skb.tail = NET_SKB_PAD
    skb.dev = dev
    return skb


def build_skb_from_frame(frame, headroom=NET_SKB_PAD):
    """One copy of a received frame into a fresh buffer behind headroom."""
    n = len(frame)
    buf = bytearray(headroom + n)
    buf[headroom:] = frame
    skb = SkBuff(buf)
    skb.data = headroom
    skb.tail = skb.end
    skb.len = n
    return skb


def skb_headroom(skb):
    return skb.data - skb.head


def skb_tailroom(skb):
    return skb.end - skb.tail


def skb_reserve(skb, length):
    """Make headroom in an empty buffer by moving data and tail forward."""
    if skb.tail + length > skb.end:
        raise SkbOverPanic("skb_reserve: %d > tailroom %d" % (length, skb.end - skb.tail))
    skb.data += length
    skb.tail += length


def skb_put(skb, length):
    """Extend the data at the tail; returns the offset of the added area."""
    old = skb.tail
    if old + length > skb.end:
        raise SkbOverPanic("skb_over_panic: put %d, tailroom %d" % (length, skb.end - old))
    skb.tail = old + length
    skb.len += length
    return old


def skb_put_data(skb, data):
    off = skb_put(skb, len(data))
    skb.buf[off:off + len(data)] = data
    return off


def skb_push(skb, length):
    """Extend the data at the head (prepend a header); returns the new data offset."""
    if skb.data - length < skb.head:
        raise SkbUnderPanic("skb_under_panic: push %d, headroom %d" % (length, skb.data - skb.head))
    skb.data -= length
    skb.len += length
    return skb.data


def __skb_pull(skb, length):
    skb.len -= length
    skb.data += length
    return skb.data


def skb_pull(skb, length):
    """Remove length bytes from the head; None (like NULL) if there are fewer."""
    if length > skb.len:
        return None
    return __skb_pull(skb, length)


def pskb_may_pull(skb, length):
    """True if length bytes are available in the linear part."""
    return length <= skb.len - skb.data_len


def skb_trim(skb, length):
    """Cut the data to length bytes (drop trailing padding)."""
    if skb.len > length:
        skb.len = length
        skb.tail = skb.data + length


def skb_reset_mac_header(skb):
    skb.mac_header = skb.data


def skb_reset_network_header(skb):
    skb.network_header = skb.data


def skb_set_network_header(skb, offset):
    skb.network_header = skb.data + offset


def skb_reset_transport_header(skb):
    skb.transport_header = skb.data


def skb_set_transport_header(skb, offset):
    skb.transport_header = skb.data + offset


def skb_network_offset(skb):
    return skb.network_header - skb.data


def skb_transport_offset(skb):
    return skb.transport_header - skb.data


def skb_cloned(skb):
    """True if the data is shared with another SkBuff (writes need skb_cow)."""
    return skb.cloned and skb.shinfo.dataref != 1


def _copy_header(new, old):
    """__copy_skb_header: everything but the buffer pointers."""
    for name in ("dev", "skb_iif", "sk", "dst", "protocol", "pkt_type",
                 "mac_header", "network_header", "transport_header", "mac_len",
                 "hash", "l4_hash", "ip_summed", "priority", "mark",
                 "queue_mapping", "tstamp", "cb", "trace"):
        setattr(new, name, getattr(old, name))
    new.sk = None  # a clone is not charged to the socket


def skb_clone(skb):
    """A new SkBuff sharing skb's data; both are marked cloned."""
    n = SkBuff.__new__(SkBuff)
    n.buf = skb.buf
    n.head = skb.head
    n.data = skb.data
    n.tail = skb.tail
    n.end = skb.end
    n.len = skb.len
    n.data_len = skb.data_len
    n.truesize = skb.truesize    # __skb_clone: C(truesize); socket memory counts it
    n.shinfo = skb.shinfo
    n.freed = False
    n.destructor = None
    _copy_header(n, skb)
    skb.shinfo.dataref += 1
    skb.cloned = True
    n.cloned = True
    return n


def skb_copy(skb, headroom=None):
    """A private copy of skb, headers and data (new buffer, same offsets)."""
    buf = bytearray(skb.buf)
    n = SkBuff(buf)
    n.data, n.tail, n.end, n.len = skb.data, skb.tail, skb.end, skb.len
    _copy_header(n, skb)
    n.shinfo.gso_size = skb.shinfo.gso_size
    n.shinfo.gso_segs = skb.shinfo.gso_segs
    n.shinfo.gso_type = skb.shinfo.gso_type
    return n


pskb_copy = skb_copy  # no paged fragments yet: a full copy is what pskb_copy gives


def _release_data(skb):
    skb.shinfo.dataref -= 1
    skb.buf = None


def skb_unshare(skb):
    """Return an SkBuff whose data is private (copy if cloned, freeing the clone)."""
    if not skb_cloned(skb):
        return skb
    n = skb_copy(skb)
    consume_skb(skb)
    return n


def skb_cow(skb, headroom):
    """Make skb's data private and give it at least headroom bytes before data."""
    if not skb_cloned(skb) and skb.data - skb.head >= headroom:
        return
    extra = max(0, headroom - (skb.data - skb.head))
    buf = bytearray(extra) + skb.buf
    old = skb.shinfo
    old.dataref -= 1
    # pskb_expand_head copies skb_shared_info into the new head: GSO state stays.
    skb.shinfo = SkbSharedInfo()
    skb.shinfo.gso_size = old.gso_size
    skb.shinfo.gso_segs = old.gso_segs
    skb.shinfo.gso_type = old.gso_type
    skb.buf = buf
    skb.cloned = False
    skb.data += extra
    skb.tail += extra
    skb.end += extra
    for name in ("mac_header", "network_header", "transport_header"):
        v = getattr(skb, name)
        if v >= 0:
            setattr(skb, name, v + extra)


def skb_linearize(skb):
    """All data in one buffer already (no frags yet): nothing to do."""
    return 0


def kfree_skb(skb, reason=SKB_DROP_REASON_NOT_SPECIFIED):
    """Free a dropped packet, counting the drop reason on its device's net."""
    if skb.freed:
        return
    dev = skb.dev
    if dev is not None:
        dev.net.drop_reasons[reason] += 1
    if skb.trace is not None:
        skb.trace.hit("kfree_skb", reason)
    _free(skb)


def consume_skb(skb):
    """Free a packet that was used, not dropped."""
    if not skb.freed:
        _free(skb)


def _free(skb):
    skb.freed = True
    if skb.destructor is not None:
        skb.destructor(skb)
        skb.destructor = None
    if skb.buf is not None:
        _release_data(skb)


class SkBuffHead:
    """struct sk_buff_head: a packet queue with its own lock and length.

    Emulation note: a deque instead of prev/next pointers in each SkBuff.
    """

    __slots__ = ("q", "lock")

    def __init__(self):
        self.q = deque()
        self.lock = threading.Lock()

    @property
    def qlen(self):
        return len(self.q)

    def __len__(self):
        return len(self.q)

    def __bool__(self):
        return bool(self.q)


def skb_queue_head_init(lst=None):
    if lst is None:
        return SkBuffHead()
    lst.q.clear()
    return lst


def __skb_queue_tail(lst, skb):
    lst.q.append(skb)


def __skb_queue_head(lst, skb):
    lst.q.appendleft(skb)


def __skb_dequeue(lst):
    return lst.q.popleft() if lst.q else None


def __skb_dequeue_tail(lst):
    return lst.q.pop() if lst.q else None


def skb_queue_tail(lst, skb):
    with lst.lock:
        lst.q.append(skb)


def skb_queue_head(lst, skb):
    with lst.lock:
        lst.q.appendleft(skb)


def skb_dequeue(lst):
    with lst.lock:
        return lst.q.popleft() if lst.q else None


def skb_dequeue_tail(lst):
    with lst.lock:
        return lst.q.pop() if lst.q else None


def skb_peek(lst):
    return lst.q[0] if lst.q else None


def skb_queue_len(lst):
    return len(lst.q)


def skb_queue_empty(lst):
    return not lst.q


def skb_queue_purge(lst, reason=SKB_DROP_REASON_NOT_SPECIFIED):
    with lst.lock:
        items = list(lst.q)
        lst.q.clear()
    for skb in items:
        kfree_skb(skb, reason)
