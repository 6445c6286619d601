"""sk_buff: offsets into one buffer, clones, copies, drops and queues.

Linux: net/core/skbuff.c, include/linux/skbuff.h
"""
import pytest

from emu.kernel.core.dev import net_dev_init
from emu.kernel.core.net import Net
from emu.kernel.core.netdevice import NetDevice
from emu.kernel.core.skbuff import (
    NET_SKB_PAD, SKB_DROP_REASON_NOT_SPECIFIED, SkbOverPanic, SkbUnderPanic,
    alloc_skb, build_skb_from_frame, consume_skb, kfree_skb, netdev_alloc_skb,
    pskb_may_pull, skb_clone, skb_cloned, skb_copy, skb_cow, skb_dequeue,
    skb_dequeue_tail, skb_headroom, skb_network_offset, skb_peek, skb_pull,
    skb_push, skb_put, skb_put_data, skb_queue_empty, skb_queue_head,
    skb_queue_head_init, skb_queue_len, skb_queue_purge, skb_queue_tail,
    skb_reserve, skb_reset_mac_header, skb_reset_network_header,
    skb_reset_transport_header, skb_set_network_header, skb_set_transport_header,
    skb_tailroom, skb_transport_offset, skb_trim, skb_unshare,
)


def _dev():
    net = Net("n")
    net_dev_init(net)
    dev = NetDevice("eth0")
    dev.net = net
    return dev


def _packet(headroom=32, payload=b"payload!"):
    skb = alloc_skb(headroom + len(payload))
    skb_reserve(skb, headroom)
    skb_put_data(skb, payload)
    return skb


# ---------------------------------------------------------------- geometry

def test_alloc_skb_is_empty_with_all_tailroom():
    skb = alloc_skb(100)
    assert (skb.head, skb.data, skb.tail, skb.end, skb.len) == (0, 0, 0, 100, 0)
    assert skb_headroom(skb) == 0
    assert skb_tailroom(skb) == 100
    assert len(skb.buf) == 100
    assert skb.shinfo.dataref == 1 and not skb_cloned(skb)


def test_skb_reserve_moves_data_and_tail_together():
    skb = alloc_skb(100)
    skb_reserve(skb, 40)
    assert (skb.data, skb.tail, skb.len) == (40, 40, 0)
    assert skb_headroom(skb) == 40 and skb_tailroom(skb) == 60
    with pytest.raises(SkbOverPanic):
        skb_reserve(skb, 61)


def test_skb_put_extends_tail_and_returns_old_tail():
    skb = alloc_skb(64)
    skb_reserve(skb, 16)
    off = skb_put(skb, 10)
    assert off == 16
    assert (skb.tail, skb.len) == (26, 10)
    assert skb_tailroom(skb) == 38
    off = skb_put_data(skb, b"abc")
    assert off == 26 and skb.payload()[-3:] == b"abc" and skb.len == 13


def test_skb_put_past_end_raises_over_panic_and_changes_nothing():
    skb = alloc_skb(20)
    skb_put(skb, 15)
    with pytest.raises(SkbOverPanic):
        skb_put(skb, 6)
    assert (skb.tail, skb.len) == (15, 15)
    skb_put(skb, 5)                  # exactly to the end is fine
    assert skb_tailroom(skb) == 0


def test_skb_push_prepends_and_returns_new_data():
    skb = _packet(headroom=32, payload=b"DATA")
    off = skb_push(skb, 14)
    assert off == 18 == skb.data
    assert skb.len == 18 and skb_headroom(skb) == 18
    skb.buf[off:off + 14] = b"E" * 14
    assert skb.payload() == b"E" * 14 + b"DATA"


def test_skb_push_past_headroom_raises_under_panic_and_changes_nothing():
    skb = _packet(headroom=8)
    with pytest.raises(SkbUnderPanic):
        skb_push(skb, 9)
    assert (skb.data, skb.len) == (8, 8)
    skb_push(skb, 8)                 # all the headroom is fine
    assert skb_headroom(skb) == 0


def test_skb_pull_removes_from_head_or_refuses():
    skb = _packet(headroom=0, payload=b"0123456789")
    assert skb_pull(skb, 4) == 4
    assert skb.payload() == b"456789" and skb.len == 6
    assert skb_pull(skb, 7) is None          # more than there is: NULL, no change
    assert skb.payload() == b"456789"
    assert skb_pull(skb, 6) == 10 and skb.len == 0


def test_skb_trim_and_pskb_may_pull():
    skb = _packet(headroom=0, payload=b"x" * 60)
    assert pskb_may_pull(skb, 60) and not pskb_may_pull(skb, 61)
    skb_trim(skb, 42)                       # e.g. Ethernet padding after IP tot_len
    assert skb.len == 42 and skb.tail == 42
    skb_trim(skb, 100)                      # never grows
    assert skb.len == 42


def test_header_offsets_follow_push_and_pull():
    skb = _packet(headroom=64, payload=b"t" * 8)
    skb_reset_transport_header(skb)
    skb_push(skb, 20)
    skb_reset_network_header(skb)
    skb_push(skb, 14)
    skb_reset_mac_header(skb)
    assert (skb.mac_header, skb.network_header, skb.transport_header) == (30, 44, 64)
    assert skb_network_offset(skb) == 14 and skb_transport_offset(skb) == 34
    skb_pull(skb, 14)
    assert skb_network_offset(skb) == 0 and skb_transport_offset(skb) == 20
    skb_set_network_header(skb, 0)
    skb_set_transport_header(skb, 20)
    assert skb.transport_header == 64 and skb.network_header == 44


def test_receive_buffers_reserve_net_skb_pad():
    frame = bytes(range(60))
    skb = build_skb_from_frame(frame)
    assert skb_headroom(skb) == NET_SKB_PAD and skb.len == 60
    assert skb.payload() == frame
    dev = _dev()
    skb = netdev_alloc_skb(dev, 128)
    assert skb_headroom(skb) == NET_SKB_PAD and skb_tailroom(skb) == 128 and skb.dev is dev


# ---------------------------------------------------------------- freeing

def test_kfree_skb_counts_the_reason_on_the_devices_net():
    dev = _dev()
    skb = _packet()
    skb.dev = dev
    kfree_skb(skb, "IP_CSUM")
    assert dev.net.drop_reasons["IP_CSUM"] == 1
    assert skb.freed and skb.buf is None
    kfree_skb(skb, "IP_CSUM")               # a second free is a no-op
    assert dev.net.drop_reasons["IP_CSUM"] == 1


def test_kfree_skb_default_reason_and_no_device():
    dev = _dev()
    skb = _packet()
    skb.dev = dev
    kfree_skb(skb)
    assert dev.net.drop_reasons[SKB_DROP_REASON_NOT_SPECIFIED] == 1
    orphan = _packet()
    kfree_skb(orphan, "IP_CSUM")            # no device: nowhere to count, still freed
    assert orphan.freed and dev.net.drop_reasons["IP_CSUM"] == 0


def test_consume_skb_is_not_a_drop_and_runs_the_destructor():
    dev = _dev()
    skb = _packet()
    skb.dev = dev
    seen = []
    skb.destructor = seen.append
    consume_skb(skb)
    assert seen == [skb] and skb.freed
    assert sum(dev.net.drop_reasons.values()) == 0


# ---------------------------------------------------------------- sharing

def test_clone_shares_data_and_counts_dataref():
    skb = _packet(payload=b"shared")
    skb.protocol = 0x0800
    c = skb_clone(skb)
    assert c is not skb and c.buf is skb.buf and c.shinfo is skb.shinfo
    assert skb.shinfo.dataref == 2
    assert skb_cloned(skb) and skb_cloned(c)
    assert (c.data, c.tail, c.len, c.protocol) == (skb.data, skb.tail, skb.len, 0x0800)
    assert c.truesize == skb.truesize       # a clone charges a socket like the original
    skb.buf[skb.data] = ord("S")            # one buffer: the clone sees the write
    assert c.payload() == b"Shared"
    skb_pull(c, 2)                          # offsets are per SkBuff
    assert skb.len == 6 and c.len == 4
    consume_skb(c)
    assert skb.shinfo.dataref == 1 and not skb_cloned(skb)
    assert skb.payload() == b"Shared"       # the original still owns the bytes


def test_skb_copy_is_independent():
    skb = _packet(payload=b"original")
    skb_reset_network_header(skb)
    cp = skb_copy(skb)
    assert cp.buf is not skb.buf and cp.shinfo is not skb.shinfo
    assert cp.payload() == b"original" and cp.network_header == skb.network_header
    assert skb.shinfo.dataref == 1 and cp.shinfo.dataref == 1
    cp.buf[cp.data] = ord("O")
    assert skb.payload() == b"original"
    kfree_skb(skb)
    assert cp.payload() == b"Original"


def test_skb_cow_unshares_a_clone():
    skb = _packet(headroom=32, payload=b"cow")
    c = skb_clone(skb)
    skb_cow(c, 0)
    assert c.buf is not skb.buf and not skb_cloned(c)
    assert skb.shinfo.dataref == 1 and not skb_cloned(skb)
    c.buf[c.data] = ord("C")
    assert skb.payload() == b"cow" and c.payload() == b"Cow"


def test_skb_cow_grows_headroom_and_keeps_headers_and_gso():
    skb = _packet(headroom=4, payload=b"IPHDR+data")
    skb_reset_network_header(skb)
    skb_set_transport_header(skb, 5)
    skb.shinfo.gso_size, skb.shinfo.gso_type = 1448, 1
    skb_cow(skb, 64)
    assert skb_headroom(skb) >= 64
    assert skb.payload() == b"IPHDR+data"
    assert bytes(skb.buf[skb.network_header:skb.network_header + 5]) == b"IPHDR"
    assert skb.transport_header - skb.network_header == 5
    assert (skb.shinfo.gso_size, skb.shinfo.gso_type) == (1448, 1)
    skb_push(skb, 64)                       # the new headroom is usable


def test_skb_cow_is_a_no_op_when_private_with_room():
    skb = _packet(headroom=64)
    buf = skb.buf
    skb_cow(skb, 32)
    assert skb.buf is buf


def test_skb_unshare_copies_only_when_cloned():
    skb = _packet()
    assert skb_unshare(skb) is skb
    c = skb_clone(skb)
    u = skb_unshare(c)
    assert u is not c and u.buf is not skb.buf and c.freed
    assert skb.shinfo.dataref == 1 and u.payload() == skb.payload()


# ---------------------------------------------------------------- queues

def test_sk_buff_head_queue_functions():
    q = skb_queue_head_init()
    assert skb_queue_empty(q) and skb_queue_len(q) == 0 and not q
    a, b, c = _packet(payload=b"a"), _packet(payload=b"b"), _packet(payload=b"c")
    skb_queue_tail(q, b)
    skb_queue_tail(q, c)
    skb_queue_head(q, a)
    assert skb_queue_len(q) == len(q) == q.qlen == 3
    assert skb_peek(q) is a and skb_queue_len(q) == 3     # peek does not dequeue
    assert skb_dequeue(q) is a
    assert skb_dequeue_tail(q) is c
    assert skb_dequeue(q) is b
    assert skb_dequeue(q) is None and skb_dequeue_tail(q) is None
    assert skb_queue_empty(q)


def test_skb_queue_purge_frees_with_a_reason():
    dev = _dev()
    q = skb_queue_head_init()
    skbs = [_packet() for _ in range(3)]
    for skb in skbs:
        skb.dev = dev
        skb_queue_tail(q, skb)
    skb_queue_purge(q, "NEIGH_DEAD")
    assert skb_queue_empty(q) and all(s.freed for s in skbs)
    assert dev.net.drop_reasons["NEIGH_DEAD"] == 3
    assert skb_queue_head_init(q) is q      # re-init of an existing head
