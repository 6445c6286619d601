"""The wire port: frames batched as views and joined once at the flush; a
clone's data held (dataref) until then, so nothing rewrites a queued frame.

Linux: drivers/net/virtio_net.c (a TX ring's frames stay mapped until sent)
"""
import zmq

from emu.kernel.core.skbuff import alloc_skb, consume_skb, skb_clone, skb_data_hold, skb_push, skb_put, skb_reserve
from emu.wire.zwire import BATCH_BYTES, WirePort, parse_batch


def _pair(tmp_path):
    ctx = zmq.Context()
    a = WirePort(ctx, "ipc://%s/a" % tmp_path, "ipc://%s/b" % tmp_path)
    b = WirePort(ctx, "ipc://%s/b" % tmp_path, "ipc://%s/a" % tmp_path)
    return ctx, a, b


def _recv(port):
    assert port.rx.poll(5000), "nothing on the wire"
    return [(f, bytes(v)) for f, _, _, _, v in parse_batch(port.rx.recv())]


def _close(ctx, *ports):
    for p in ports:
        p.close()
    ctx.term()


def _tcp_like_skb(payload):
    """A write-queue skb (payload, headroom) and the clone TCP transmits (a header pushed)."""
    skb = alloc_skb(128 + len(payload))
    skb_reserve(skb, 128)
    off = skb_put(skb, len(payload))
    skb.buf[off:off + len(payload)] = payload
    clone = skb_clone(skb)
    hoff = skb_push(clone, 20)
    clone.buf[hoff:hoff + 20] = b"H" * 20
    return skb, clone


def test_a_clones_data_stays_shared_until_the_flush_and_the_frame_is_as_sent(tmp_path):
    ctx, a, b = _pair(tmp_path)
    try:
        skb, clone = _tcp_like_skb(b"p" * 1000)
        held = skb_data_hold(clone)
        assert held is skb.shinfo and skb.shinfo.dataref == 3
        assert a.send(clone.buf, clone.data, clone.tail, 0, 0, 0, 0, held)
        consume_skb(clone)               # veth_xmit frees its clone at once
        # A retransmission now (tcp_transmit_skb) sees the data shared and copies
        # rather than pushing its header into the bytes the port has not sent yet.
        assert skb.shinfo.dataref == 2
        a.flush()
        assert skb.shinfo.dataref == 1
        # The wire has the frame as it was when sent, even if the buffer changes now.
        skb.buf[108:128] = b"X" * 20
        assert _recv(b) == [(0, b"H" * 20 + b"p" * 1000)]
    finally:
        _close(ctx, a, b)


def test_private_data_is_not_held_and_a_batch_keeps_frames_in_order(tmp_path):
    ctx, a, b = _pair(tmp_path)
    try:
        frames = []
        for i in range(5):
            skb = alloc_skb(64 + 100)
            skb_reserve(skb, 64)
            off = skb_put(skb, 100)
            skb.buf[off:off + 100] = bytes([i]) * 100
            assert skb_data_hold(skb) is None        # nobody else writes a private buffer
            assert a.send(skb.buf, skb.data, skb.tail, i, 0, 0, 0)
            frames.append((i, bytes([i]) * 100))
            consume_skb(skb)
        assert a.out_frames == 5 and a.tx_msgs == 0   # one message at the flush
        a.flush()
        assert a.tx_msgs == 1 and not a.out and not a.out_bytes
        assert _recv(b) == frames
    finally:
        _close(ctx, a, b)


def test_a_full_batch_leaves_at_once_and_releases_what_it_held(tmp_path):
    ctx, a, b = _pair(tmp_path)
    try:
        skb, clone = _tcp_like_skb(b"q" * 60000)
        n = BATCH_BYTES // 60000 + 1
        for _ in range(n):
            assert a.send(clone.buf, clone.data, clone.tail, 0, 1, 1448, 0, skb_data_hold(clone))
        assert a.tx_msgs == 1 and not a.out      # BATCH_BYTES reached: flushed by send
        assert skb.shinfo.dataref == 2           # the skb and its clone, nothing held
        assert _recv(b) == [(0, b"H" * 20 + b"q" * 60000)] * n
    finally:
        _close(ctx, a, b)


def test_a_message_carries_at_most_a_napi_weight_of_frames(tmp_path):
    """A burst of small frames leaves in messages of BATCH_FRAMES: one message
    must never hold more than a receiver's RX ring takes between interrupts."""
    from emu.wire.zwire import BATCH_FRAMES
    ctx, a, b = _pair(tmp_path)
    try:
        frame = bytes(range(60))
        for _ in range(BATCH_FRAMES * 2 + 5):
            a.send(frame, 0, len(frame), 0, 0, 0, 0)
        a.flush()
        sizes = [len(_recv(b)) for _ in range(3)]
        assert sizes == [BATCH_FRAMES, BATCH_FRAMES, 5]
        assert a.tx_msgs == 3
    finally:
        _close(ctx, a, b)
