"""sk_buff page frags: clones share them (dataref), copies own them, pulls and trims.

Linux: net/core/skbuff.c (skb_clone, skb_copy, pskb_copy, pskb_expand_head,
__pskb_pull_tail, ___pskb_trim, skb_copy_bits, skb_checksum_help),
include/linux/skbuff.h (skb_shared_info, pskb_may_pull, skb_headlen)
"""
import struct

from emu.kernel.core.dev import net_dev_init
from emu.kernel.core.net import Net
from emu.kernel.core.netdevice import NetDevice
from emu.kernel.core.skbuff import (
    CHECKSUM_NONE, CHECKSUM_PARTIAL, EFAULT, SkBuffHead, alloc_skb, consume_skb, kfree_skb,
    pskb_copy, pskb_may_pull, pskb_trim, skb_add_rx_frag, skb_checksum_help, skb_clone,
    skb_cloned, skb_copy, skb_copy_bits, skb_cow, skb_headlen, skb_is_nonlinear,
    skb_linearize, skb_put_data, skb_queue_head, skb_queue_purge, skb_queue_tail,
    skb_reserve, skb_trim, skb_unshare, __skb_dequeue, skb_dequeue,
)

HEAD = b"H" * 30
PAGES = [bytes([65 + i]) * (100 + i) for i in range(3)]     # AAA.., BBB.., CCC..


def frag_skb():
    """30 linear bytes plus three page frags (offset 5 into each page)."""
    skb = alloc_skb(64 + len(HEAD))
    skb_reserve(skb, 64)
    skb_put_data(skb, HEAD)
    for i, p in enumerate(PAGES):
        page = bytearray(b"\x00" * 5 + p + b"\xff" * 7)
        skb_add_rx_frag(skb, i, page, 5, len(p), 4096)
    return skb


WHOLE = HEAD + b"".join(PAGES)


def _dev():
    net = Net("n")
    net_dev_init(net)
    dev = NetDevice("eth0")
    dev.net = net
    return dev


def test_frags_carry_data_len_and_truesize():
    skb = frag_skb()
    assert skb.shinfo.nr_frags == 3
    assert skb.len == len(WHOLE) and skb.data_len == sum(map(len, PAGES))
    assert skb_headlen(skb) == 30 and skb_is_nonlinear(skb)
    assert skb.truesize >= 3 * 4096
    assert skb.payload() == WHOLE
    assert bytes(skb.view()) == HEAD                 # the linear part only


def test_clone_shares_data_and_frags_until_the_last_reference():
    skb = frag_skb()
    sh = skb.shinfo
    clone = skb_clone(skb)
    assert clone.shinfo is sh and sh.dataref == 2
    assert skb.cloned and clone.cloned and skb_cloned(skb) and skb_cloned(clone)
    assert clone.buf is skb.buf and clone.payload() == WHOLE
    kfree_skb(skb)
    assert sh.dataref == 1 and sh.nr_frags == 3      # the clone still holds the pages
    assert clone.payload() == WHOLE
    assert not skb_cloned(clone)                     # sole owner again
    consume_skb(clone)
    assert sh.dataref == 0 and sh.frags == [] and clone.buf is None   # released


def test_skb_copy_is_private_and_linear():
    skb = frag_skb()
    c = skb_copy(skb)
    assert c.shinfo is not skb.shinfo and c.shinfo.nr_frags == 0 and c.data_len == 0
    assert c.payload() == WHOLE and c.len == skb.len
    assert c.data - c.head == skb.data - skb.head    # same headroom, same offsets
    c.buf[c.data] = ord("X")
    assert skb.payload() == WHOLE                    # independent


def test_pskb_copy_copies_the_head_and_shares_the_pages():
    skb = frag_skb()
    c = pskb_copy(skb)
    assert c.payload() == WHOLE and c.data_len == skb.data_len
    assert c.buf is not skb.buf and c.shinfo is not skb.shinfo and c.shinfo.dataref == 1
    assert [f.page for f in c.shinfo.frags] == [f.page for f in skb.shinfo.frags]
    assert all(a.page is b.page for a, b in zip(c.shinfo.frags, skb.shinfo.frags))
    c.buf[c.data] = ord("X")                         # its head is private
    assert skb.payload() == WHOLE


def test_skb_cow_gives_a_private_head_and_keeps_frags():
    skb = frag_skb()
    clone = skb_clone(skb)
    assert skb_cow(skb, 100) == 0
    assert not skb_cloned(skb) and skb.buf is not clone.buf
    assert skb.data - skb.head >= 100
    assert skb.payload() == WHOLE and skb.shinfo.nr_frags == 3
    assert clone.shinfo.dataref == 1 and not skb_cloned(clone)
    skb.buf[skb.data] = ord("X")
    assert clone.payload() == WHOLE                  # writing the cow'd head left it alone


def test_skb_unshare_copies_a_clone_and_frees_it():
    skb = frag_skb()
    clone = skb_clone(skb)
    n = skb_unshare(clone)
    assert n is not clone and clone.freed and n.payload() == WHOLE and not skb_cloned(n)
    assert skb.shinfo.dataref == 1
    assert skb_unshare(skb) is skb                   # not shared: itself


def test_skb_linearize_pulls_every_frag():
    skb = frag_skb()
    assert skb_linearize(skb) == 0
    assert skb.data_len == 0 and skb.shinfo.nr_frags == 0
    assert skb.payload() == WHOLE == bytes(skb.view())


def test_pskb_may_pull_makes_headers_linear():
    skb = frag_skb()
    assert pskb_may_pull(skb, 30)                    # already linear
    assert skb.shinfo.nr_frags == 3
    assert pskb_may_pull(skb, 30 + 100 + 20)         # all of frag 0 and 20 of frag 1
    assert skb_headlen(skb) == 150 and skb.shinfo.nr_frags == 2
    assert skb.shinfo.frags[0].size == 101 - 20
    assert skb.payload() == WHOLE
    assert bytes(skb.view()) == WHOLE[:150]
    assert not pskb_may_pull(skb, skb.len + 1)
    assert skb.payload() == WHOLE


def test_pskb_may_pull_on_a_clone_does_not_disturb_the_other():
    skb = frag_skb()
    clone = skb_clone(skb)
    assert pskb_may_pull(clone, 200)
    assert skb.payload() == WHOLE and skb.shinfo.nr_frags == 3 and skb_headlen(skb) == 30
    assert clone.payload() == WHOLE and skb_headlen(clone) == 200


def test_pskb_trim_cuts_inside_the_frags():
    skb = frag_skb()
    pskb_trim(skb, 30 + 100 + 50)
    assert skb.len == 180 and skb.shinfo.nr_frags == 2 and skb.payload() == WHOLE[:180]
    skb_trim(skb, 20)                                # into the linear part
    assert skb.len == 20 and skb.data_len == 0 and skb.payload() == WHOLE[:20]


def test_skb_copy_bits_crosses_linear_and_frags():
    skb = frag_skb()
    assert skb_copy_bits(skb, 25, 10) == WHOLE[25:35]
    assert skb_copy_bits(skb, 130, 101) == WHOLE[130:231]
    out = bytearray(8)
    assert skb_copy_bits(skb, 200, 6, out, 2) == 0 and out[2:] == WHOLE[200:206]
    assert skb_copy_bits(skb, len(WHOLE) - 1, 2) == -EFAULT
    assert skb_copy_bits(skb, -64 - 1, 1) == -EFAULT     # before the head


def test_skb_checksum_help_completes_a_partial_checksum():
    # An IPv4/UDP datagram with only the pseudo-header sum in its check field.
    from emu.kernel.hdr.checksum import csum_partial, csum_tcpudp_nofold
    payload = b"partial checksum over frags" * 3
    src, dst = 0x0A000001, 0x0A000002
    ulen = 8 + len(payload)
    skb = alloc_skb(64 + 28)
    skb_reserve(skb, 64)
    skb_put_data(skb, b"\x45" + bytes(19))
    pseudo = csum_tcpudp_nofold(src, dst, ulen, 17)
    skb_put_data(skb, struct.pack("!HHHH", 1000, 2000, ulen, pseudo))
    skb_add_rx_frag(skb, 0, bytearray(payload), 0, len(payload), len(payload))
    skb.ip_summed = CHECKSUM_PARTIAL
    skb.csum_start = skb.data + 20
    skb.csum_offset = 6
    assert skb_checksum_help(skb) == 0
    assert skb.ip_summed == CHECKSUM_NONE
    data = skb.payload()[20:]
    assert csum_partial(data, 0, len(data), csum_tcpudp_nofold(src, dst, ulen, 17)) == 0xFFFF


def test_sk_buff_head_keeps_qlen_under_its_lock():
    lst = SkBuffHead()
    a, b, c = alloc_skb(1), alloc_skb(1), alloc_skb(1)
    skb_queue_tail(lst, a)
    skb_queue_tail(lst, b)
    skb_queue_head(lst, c)
    assert lst.qlen == 3 and len(lst) == 3
    assert skb_dequeue(lst) is c and __skb_dequeue(lst) is a
    assert lst.qlen == 1
    dev = _dev()
    b.dev = dev
    skb_queue_purge(lst, "TEST_PURGE")
    assert lst.qlen == 0 and b.freed and dev.net.drop_reasons["TEST_PURGE"] == 1
