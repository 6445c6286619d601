"""Socket buffers: one packet, its headers found by offsets into one bytearray.

Linux: net/core/skbuff.c, include/linux/skbuff.h

An SkBuff owns (or, once cloned, shares) a bytearray ``buf``. ``head`` is
offset 0 of that buffer; ``data``, ``tail`` and ``end`` are integer offsets,
so pushing and pulling headers moves integers, never bytes. Header positions
(``mac_header``, ``network_header``, ``transport_header``) are offsets too.

Paged data: ``shinfo.frags`` lists SkbFrag pieces (a "page" -- here any
bytearray -- an offset and a size) that follow the linear part, as in Linux;
``data_len`` is their total, so ``len - data_len`` is the linear length
(skb_headlen). GRO builds such skbs (each merged segment's payload becomes a
frag of the first one's), GSO and skb_linearize flatten them.

Emulation note: skb_shared_info is a small object beside the buffer instead of
bytes past ``end``; it holds ``dataref``, the count of SkBuffs sharing ``buf``.
Pages are Python bytearrays: a page reference is a Python reference, so
"put_page" is dropping it; the data (head and the frag references) is released
when dataref reaches 0. emu is built as with CONFIG_MAX_SKB_FRAGS=45 and has
no frag_list: GRO flushes a packet whose frags are full instead of chaining.
"""

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


MAX_SKB_FRAGS = 45         # CONFIG_MAX_SKB_FRAGS (17 by default, 45 at most)
EFAULT = 14
ENOMEM = 12


class SkbFrag:
    """skb_frag_t: size bytes of a page (a bytearray) starting at offset."""

    __slots__ = ("page", "offset", "size")

    def __init__(self, page, offset, size):
        self.page = page
        self.offset = offset
        self.size = size

    def __repr__(self):
        return "<SkbFrag off=%d size=%d>" % (self.offset, self.size)


def skb_frag_page(frag):
    return frag.page


def skb_frag_off(frag):
    return frag.offset


def skb_frag_size(frag):
    return frag.size


def skb_frag_address(frag):
    """The frag's bytes (a view: no copy)."""
    return memoryview(frag.page)[frag.offset:frag.offset + frag.size]


_new = object.__new__


class SkbSharedInfo:
    """struct skb_shared_info: what clones share -- dataref, page frags, GSO state."""

    __slots__ = ("dataref", "frags", "gso_size", "gso_segs", "gso_type")

    def __init__(self):
        self.dataref = 1
        self.frags = []          # SkbFrag, in order after the linear data
        self.gso_size = 0
        self.gso_segs = 0
        self.gso_type = 0

    @property
    def nr_frags(self):
        return len(self.frags)


class SkBuff:
    """struct sk_buff."""

    __slots__ = (
        "buf", "head", "data", "tail", "end", "len", "data_len", "truesize",
        "shinfo", "cloned", "dev", "skb_iif", "sk", "dst", "protocol",
        "pkt_type", "mac_header", "network_header", "transport_header",
        "mac_len", "hash", "l4_hash", "ip_summed", "priority", "mark",
        "queue_mapping", "tstamp", "cb", "trace", "freed", "destructor",
        "csum_start", "csum_offset",
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
        if shinfo is None:
            # SkbSharedInfo(), its __init__ written out (one Python call less per skb).
            shinfo = _new(SkbSharedInfo)
            shinfo.dataref = 1
            shinfo.frags = []
            shinfo.gso_size = 0
            shinfo.gso_segs = 0
            shinfo.gso_type = 0
        self.shinfo = shinfo
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
        self.csum_start = 0      # CHECKSUM_PARTIAL: offset in buf where summing starts
        self.csum_offset = 0     # ... and where, from there, the result goes

    def __repr__(self):
        return "<SkBuff len=%d data=%d tail=%d end=%d dev=%s>" % (
            self.len, self.data, self.tail, self.end,
            self.dev.name if self.dev is not None else None)

    # Convenience views (no copies until a caller asks for bytes).
    def payload(self):
        """All len bytes from data on, frags included (a copy: use at the I/O boundary)."""
        if not self.data_len:
            return bytes(self.buf[self.data:self.tail])
        return skb_copy_bits(self, 0, self.len)

    def view(self):
        """The linear part (data..tail) as a view."""
        return memoryview(self.buf)[self.data:self.tail]


def skb_scrub_packet(skb, xnet):
    """Clear what must not follow a packet into another device or namespace
    (the route, the owning socket, the timestamp; with xnet the mark too)."""
    skb.dst = None
    skb.sk = None
    skb.tstamp = 0
    skb.skb_iif = 0
    if xnet:
        skb.mark = 0


def alloc_skb(size):
    """An empty buffer of size bytes: head == data == tail, all tailroom."""
    return SkBuff(bytearray(size))


def netdev_alloc_skb(dev, length):
    """Receive buffer with NET_SKB_PAD headroom, as drivers allocate them."""
    skb = SkBuff(bytearray(NET_SKB_PAD + length))
    skb.data = skb.tail = NET_SKB_PAD
    skb.dev = dev
    return skb


_PAD = bytearray(NET_SKB_PAD)


def build_skb_from_frame(frame, headroom=NET_SKB_PAD):
    """One copy of a received frame into a fresh buffer behind headroom."""
    n = len(frame)
    # pad + frame: one allocation and one copy (bytearray(size) would zero
    # the whole buffer first, and a 64 KiB GSO frame is mostly payload).
    buf = (_PAD if headroom == NET_SKB_PAD else bytearray(headroom)) + frame
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


def skb_headlen(skb):
    """Bytes in the linear part (Linux: skb->len - skb->data_len)."""
    return skb.len - skb.data_len


def skb_is_nonlinear(skb):
    return skb.data_len != 0


def skb_pagelen(skb):
    """The linear part plus every frag."""
    n = skb.tail - skb.data
    for f in skb.shinfo.frags:
        n += f.size
    return n


def skb_is_gso(skb):
    return skb.shinfo.gso_size != 0


def skb_fill_page_desc(skb, i, page, off, size):
    """Set frag i (appending when i == nr_frags); no length accounting."""
    frags = skb.shinfo.frags
    frag = SkbFrag(page, off, size)
    if i == len(frags):
        frags.append(frag)
    else:
        frags[i] = frag


def skb_add_rx_frag(skb, i, page, off, size, truesize):
    """A driver adds received data held in a page: frag i plus the lengths."""
    skb_fill_page_desc(skb, i, page, off, size)
    skb.len += size
    skb.data_len += size
    skb.truesize += truesize


def pskb_may_pull(skb, length):
    """Make sure length bytes from data on are linear; False if skb is shorter.

    Linux: pskb_may_pull -> __pskb_pull_tail copies them out of the frags.
    """
    if length <= skb.len - skb.data_len:
        return True
    if length > skb.len:
        return False
    return __pskb_pull_tail(skb, length - (skb.len - skb.data_len)) is not None


def __pskb_pull_tail(skb, delta):
    """Move delta bytes from the frags to the end of the linear part; new tail or None."""
    if delta > skb.data_len:
        return None
    eat = skb.tail + delta - skb.end
    if eat > 0 or skb_cloned(skb):
        pskb_expand_head(skb, 0, eat + 128 if eat > 0 else 0)
    buf = skb.buf
    tail = skb.tail
    frags = skb.shinfo.frags
    left = delta
    k = 0
    while left:
        f = frags[k]
        n = min(left, f.size)
        buf[tail:tail + n] = memoryview(f.page)[f.offset:f.offset + n]
        tail += n
        left -= n
        if n == f.size:
            k += 1                  # wholly consumed: put_page
        else:
            # partly consumed: the frag shrinks from the front (a private copy
            # of the descriptor: clones share the list only until expand_head)
            frags[k] = SkbFrag(f.page, f.offset + n, f.size - n)
    del frags[:k]
    skb.tail = tail
    skb.data_len -= delta
    return tail


def pskb_expand_head(skb, nhead, ntail):
    """Give skb a private head with nhead more headroom and ntail more tailroom.

    The frag descriptors are copied (their pages shared, as skb_frag_ref does);
    the old head loses one reference (dataref).
    """
    old = skb.shinfo
    buf = bytearray(nhead) + skb.buf[:skb.tail]
    if skb.end - skb.tail + ntail:
        buf += bytes(skb.end - skb.tail + ntail)
    new = SkbSharedInfo()
    new.frags = [SkbFrag(f.page, f.offset, f.size) for f in old.frags]
    new.gso_size = old.gso_size
    new.gso_segs = old.gso_segs
    new.gso_type = old.gso_type
    old.dataref -= 1
    if old.dataref == 0:
        old.frags = []
    skb.shinfo = new
    skb.buf = buf
    skb.cloned = False
    if skb.sk is None:           # truesize already charged to a socket stays as is
        skb.truesize += nhead + ntail
    if nhead:
        skb.data += nhead
        skb.tail += nhead
        if skb.mac_header >= 0:
            skb.mac_header += nhead
        if skb.network_header >= 0:
            skb.network_header += nhead
        if skb.transport_header >= 0:
            skb.transport_header += nhead
        skb.csum_start += nhead
    skb.end = len(buf)
    return 0


def skb_linearize(skb):
    """Pull every frag into the linear part (0, or -ENOMEM as in Linux)."""
    if not skb.data_len:
        return 0
    return 0 if __pskb_pull_tail(skb, skb.data_len) is not None else -ENOMEM


def skb_linearize_cow(skb):
    """Linear and private (writable) data."""
    if skb.data_len or skb_cloned(skb):
        if skb_cloned(skb):
            pskb_expand_head(skb, 0, 0)
        return skb_linearize(skb)
    return 0


def pskb_trim(skb, length):
    """Cut to length bytes, frags included (___pskb_trim)."""
    if length >= skb.len:
        return 0
    if not skb.data_len:
        skb.len = length
        skb.tail = skb.data + length
        return 0
    if skb_cloned(skb):
        pskb_expand_head(skb, 0, 0)
    headlen = skb.len - skb.data_len
    frags = skb.shinfo.frags
    if length <= headlen:
        frags.clear()
        skb.tail = skb.data + length
        skb.len = length
        skb.data_len = 0
        return 0
    offset = headlen
    for k, f in enumerate(frags):
        end = offset + f.size
        if end >= length:
            frags[k] = SkbFrag(f.page, f.offset, length - offset)
            del frags[k + 1:]
            break
        offset = end
    skb.len = length
    skb.data_len = length - headlen
    return 0


def skb_trim(skb, length):
    """Cut the data to length bytes (drop trailing padding); frag-aware."""
    if skb.len > length:
        if skb.data_len:
            pskb_trim(skb, length)
            return
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


def _release_data(skb):
    """skb_release_data: drop our reference; the last one frees head and pages."""
    sh = skb.shinfo
    sh.dataref -= 1
    if sh.dataref == 0:
        sh.frags = []            # put_page on every frag
    skb.buf = None


def skb_data_hold(skb):
    """A reference on skb's data without an skb (dataref), or None when nobody
    else shares it: what a NIC's DMA mapping of a clone's frame holds until the
    hardware has read it. Meanwhile the data counts as shared, so TCP copies
    before it writes headers for a retransmission (tcp_transmit_skb). Give it
    back with skb_data_release."""
    sh = skb.shinfo
    if not skb.cloned or sh.dataref == 1:
        return None              # private data: freeing the skb frees it, nobody writes it
    sh.dataref += 1
    return sh


def skb_data_release(sh):
    sh.dataref -= 1
    if sh.dataref == 0:
        sh.frags = []


def skb_csum_unnecessary(skb):
    """The stack need not verify the L4 checksum (verified, or not computed yet)."""
    s = skb.ip_summed
    return s == CHECKSUM_UNNECESSARY or s == CHECKSUM_PARTIAL


def skb_checksum_help(skb):
    """Complete a CHECKSUM_PARTIAL checksum in software (no offload below us).

    The field at csum_start + csum_offset holds the pseudo-header sum; the
    ones' complement sum from csum_start to the end, folded, replaces it.
    """
    from ..hdr.checksum import csum_partial
    if skb.ip_summed != CHECKSUM_PARTIAL:
        return 0
    if skb.data_len and skb_linearize(skb):
        return -ENOMEM
    if skb_cloned(skb):
        pskb_expand_head(skb, 0, 0)
    buf = skb.buf
    start = skb.csum_start
    where = start + skb.csum_offset
    end = skb.data + skb.len
    if start < skb.data or where + 2 > end:
        return -EFAULT
    c = ~csum_partial(buf, start, end) & 0xFFFF
    if c == 0:
        c = 0xFFFF               # CSUM_MANGLED_0
    buf[where] = c >> 8
    buf[where + 1] = c & 0xFF
    skb.ip_summed = CHECKSUM_NONE
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
    """Free a packet that was used, not dropped (_free and _release_data
    written out: every packet ends here)."""
    if not skb.freed:
        skb.freed = True
        if skb.destructor is not None:
            skb.destructor(skb)
            skb.destructor = None
        if skb.buf is not None:
            sh = skb.shinfo
            sh.dataref -= 1
            if sh.dataref == 0:
                sh.frags = []            # put_page on every frag
            skb.buf = None


def skb_orphan(skb):
    """Detach skb from its owning socket, running the owner's destructor now
    (the socket stops accounting it: TCP's TSQ, a receive buffer)."""
    if skb.destructor is not None:
        skb.destructor(skb)
        skb.destructor = None
    skb.sk = None


def _free(skb):
    skb.freed = True
    if skb.destructor is not None:
        skb.destructor(skb)
        skb.destructor = None
    if skb.buf is not None:
        _release_data(skb)


# The queue of skbs (sk_buff_head) lives in skbuff_head.py and the copy family
# (skb_clone, skb_copy, skb_cow, skb_copy_bits, ...) in skbcopy.py; both are
# re-exported here, where Linux declares them (include/linux/skbuff.h). Bound
# late: both modules import this one.
from .skbuff_head import (  # noqa: E402,F401
    SkBuffHead, __skb_dequeue, __skb_dequeue_tail, __skb_queue_head, __skb_queue_tail,
    skb_dequeue, skb_dequeue_tail, skb_peek, skb_queue_empty, skb_queue_head,
    skb_queue_head_init, skb_queue_len, skb_queue_purge, skb_queue_tail,
)
from .skbcopy import (  # noqa: E402,F401
    _HEADER_FIELDS, _copy_gso, _copy_header, pskb_copy, skb_clone, skb_copy, skb_copy_bits,
    skb_cow, skb_cow_head, skb_header_pointer, skb_unshare,
)
