"""Copying skbs: clone, copy, pskb_copy, the copy-on-write helpers, and
reading bytes out of an skb whatever its layout (skb_copy_bits).

Linux: net/core/skbuff.c (__copy_skb_header, skb_copy_header, skb_clone,
skb_copy, __pskb_copy_fclone, skb_copy_bits), include/linux/skbuff.h
(skb_unshare, skb_cow, skb_cow_head, skb_header_pointer). Split from
skbuff.py for size, as skbuff_head.py is; skbuff.py re-exports every name
here, so import them from there (this module needs skbuff loaded first).
"""
from .skbuff import EFAULT, SkBuff, SkbFrag, consume_skb, pskb_expand_head, skb_cloned


_HEADER_FIELDS = ("dev", "skb_iif", "sk", "dst", "protocol", "pkt_type",
                  "mac_header", "network_header", "transport_header", "mac_len",
                  "hash", "l4_hash", "ip_summed", "priority", "mark",
                  "queue_mapping", "tstamp", "cb", "trace", "csum_start", "csum_offset")


def _copy_header(new, old):
    """__copy_skb_header: everything but the buffer pointers (_HEADER_FIELDS,
    written out: a clone per TCP segment sent makes this a hot path)."""
    new.dev = old.dev
    new.skb_iif = old.skb_iif
    new.sk = None  # a clone is not charged to the socket
    new.dst = old.dst
    new.protocol = old.protocol
    new.pkt_type = old.pkt_type
    new.mac_header = old.mac_header
    new.network_header = old.network_header
    new.transport_header = old.transport_header
    new.mac_len = old.mac_len
    new.hash = old.hash
    new.l4_hash = old.l4_hash
    new.ip_summed = old.ip_summed
    new.priority = old.priority
    new.mark = old.mark
    new.queue_mapping = old.queue_mapping
    new.tstamp = old.tstamp
    new.cb = old.cb
    new.trace = old.trace
    new.csum_start = old.csum_start
    new.csum_offset = old.csum_offset


def _copy_gso(new, old):
    """skb_copy_header's GSO part."""
    new.gso_size = old.gso_size
    new.gso_segs = old.gso_segs
    new.gso_type = old.gso_type


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
    """A private, linear copy: headroom, linear data and every frag in one new buffer.

    Header offsets stay the same (the frags land after the old tail).
    """
    if not skb.data_len:
        buf = bytearray(skb.buf)
    else:
        buf = bytearray(skb.buf[:skb.tail])
        for f in skb.shinfo.frags:
            buf += memoryview(f.page)[f.offset:f.offset + f.size]
        buf += bytes(skb.end - skb.tail)
    n = SkBuff(buf)
    n.data, n.len = skb.data, skb.len
    n.tail = skb.data + skb.len
    n.end = len(buf)
    _copy_header(n, skb)
    _copy_gso(n.shinfo, skb.shinfo)
    return n


def pskb_copy(skb):
    """Copy the header (linear part) and share the frags' pages (skb_frag_ref)."""
    n = SkBuff(bytearray(skb.buf[:skb.end]))
    n.data, n.tail, n.len, n.data_len = skb.data, skb.tail, skb.len, skb.data_len
    n.truesize = skb.truesize
    _copy_header(n, skb)
    sh = n.shinfo
    sh.frags = [SkbFrag(f.page, f.offset, f.size) for f in skb.shinfo.frags]
    _copy_gso(sh, skb.shinfo)
    return n


def skb_unshare(skb):
    """Return an SkBuff whose data is private (copy if cloned, freeing the clone)."""
    if not skb_cloned(skb):
        return skb
    n = skb_copy(skb)
    consume_skb(skb)
    return n


def skb_cow(skb, headroom):
    """Make skb's head private and give it at least headroom bytes before data.

    Linux: __skb_cow -> pskb_expand_head (the frags' pages stay shared).
    """
    if not skb_cloned(skb) and skb.data - skb.head >= headroom:
        return 0
    extra = max(0, headroom - (skb.data - skb.head))
    return pskb_expand_head(skb, extra, 0)


def skb_cow_head(skb, headroom):
    return skb_cow(skb, headroom)


def skb_copy_bits(skb, offset, length, to=None, to_off=0):
    """Copy length bytes starting offset bytes after data (linear part, then frags).

    Returns the bytes, or with ``to`` (a bytearray) writes them at to_off and
    returns 0. A negative offset reaches into the headroom, as in Linux;
    -EFAULT when the range is outside the packet.
    """
    if offset > skb.len - length or length < 0 or skb.data + offset < 0:
        return -EFAULT
    start = skb.data + offset
    lin_end = skb.tail
    if start + length <= lin_end:
        if to is None:
            return bytes(skb.buf[start:start + length])
        to[to_off:to_off + length] = memoryview(skb.buf)[start:start + length]
        return 0
    out = bytearray() if to is None else None
    pos = to_off
    if start < lin_end:
        piece = memoryview(skb.buf)[start:lin_end]
        if out is not None:
            out += piece
        else:
            to[pos:pos + len(piece)] = piece
            pos += len(piece)
        length -= lin_end - start
        skip = 0
    else:
        skip = start - lin_end
    for f in skb.shinfo.frags:
        if not length:
            break
        if skip >= f.size:
            skip -= f.size
            continue
        n = min(f.size - skip, length)
        piece = memoryview(f.page)[f.offset + skip:f.offset + skip + n]
        if out is not None:
            out += piece
        else:
            to[pos:pos + n] = piece
            pos += n
        length -= n
        skip = 0
    if length:
        return -EFAULT
    return bytes(out) if out is not None else 0


def skb_header_pointer(skb, offset, length):
    """(buf, off) where length bytes at data+offset can be read; copied out of frags if needed."""
    if offset + length <= skb.len - skb.data_len:
        return skb.buf, skb.data + offset
    data = skb_copy_bits(skb, offset, length)
    if isinstance(data, int):
        return None, 0
    return data, 0
