"""A wire end: raw Ethernet frames between two node processes over ZeroMQ.

Each end binds a PULL socket (its inbox) and connects a PUSH socket to the
peer's inbox. Emulation note: DESIGN.md sketches one PAIR socket per end; two
one-way sockets let the sending CPU thread (under the kernel lock) and the
receiving hardware thread each own a socket, with no hand-off between them.

Frames are batched per message (like xmit_more): the kernel appends frames
while it runs, and the runtime flushes each dirty port once when it leaves the
kernel. Every frame is behind the fixed emu_wire_hdr (hdr/virtio_net.py).
"""
import zmq

from ..kernel.core.skbuff import skb_data_release
from ..kernel.hdr.virtio_net import EMU_WIRE_HDR_LEN, EMU_WIRE_MAX_FRAME, emu_wire_hdr

# Messages queued toward a slow peer before we drop. Kept small: the peer's
# NIC thread drains its wire into a bounded RX ring and drops there, so a
# flood must not wait in ZeroMQ's queues instead (at most ~2 x SNDHWM).
SNDHWM = 512
# Bytes per message at most: a batch is flushed early when it reaches this.
# 1 MiB (16 GSO frames of 64 KiB): each message costs both ends' ZeroMQ I/O
# threads and the receiving NIC thread a wake-up and a pass, whatever its
# size; with 256 KiB a bulk TCP transfer spent about a fifth more CPU in the
# I/O threads and the per-message work (issue 14, bench/PROFILE.md).
BATCH_BYTES = 1024 * 1024
# Frames per message at most: a NAPI poll's weight (NAPI_POLL_WEIGHT). A batch
# of a burst of small datagrams (a user thread runs a 256 KiB read of sends,
# about 2,500 of 64 bytes, before it flushes) was one message larger than the
# peer's RX ring: the peer could only drop most of it (rx_missed_errors).
BATCH_FRAMES = 64


class WirePort:
    """One end of a link, as the veth driver sees it (port.send) and the NIC thread reads it."""

    def __init__(self, ctx, rx_endpoint, tx_endpoint, on_dirty=None, curve=None, name=""):
        """curve: the lab's (public, secret) keys, for a tcp:// wire (wire/curve.py);
        tx_endpoint None: connect() later (a tcp peer's port is known once it is bound)."""
        self.rx = ctx.socket(zmq.PULL)
        self.rx.setsockopt(zmq.LINGER, 0)
        self.rx.setsockopt(zmq.RCVHWM, SNDHWM)
        self.tx = ctx.socket(zmq.PUSH)
        self.tx.setsockopt(zmq.LINGER, 0)
        self.tx.setsockopt(zmq.SNDHWM, SNDHWM)
        # The peer may bind after we connect: retry fast, not after the 100 ms default.
        self.tx.setsockopt(zmq.RECONNECT_IVL, 5)
        self.curve = curve
        self.rx_mon = self.tx_mon = None
        if curve is not None:
            from . import curve as _curve
            _curve.curve_server(self.rx, curve, name)
            _curve.curve_client(self.tx, curve)
            self.tx.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
            self.rx_mon = self.rx.get_monitor_socket(_curve.RX_EVENTS)
            self.tx_mon = self.tx.get_monitor_socket(_curve.TX_EVENTS)
        self.rx.bind(rx_endpoint)
        # What was bound (a tcp://...:* bind learns its port here).
        self.rx_endpoint = self.rx.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.tx_endpoint = None
        if tx_endpoint is not None:
            self.connect(tx_endpoint)
        self.out = []                # the batch: header and frame views, joined at the flush
        self.out_bytes = 0
        self.out_frames = 0
        self.held = []               # clones' data references until the flush
        self.on_dirty = on_dirty     # runtime callback: remember to flush this port
        self.dev = None
        self.carrier = True          # the device's carrier: admin_up and link_up
        self.admin_up = True         # False: `link down` on the wire (a cut cable)
        # A tcp wire's connection to its peer (up once handshaken); ipc has none.
        self.link_up = curve is None
        self.auth_failures = 0       # CURVE handshakes refused on this wire (either side)
        self.rx_filter = None        # a partition: frame -> True to drop (wire/partition.py)
        self.rx_filtered = 0
        self.tx_msgs = 0
        self.tx_dropped = 0          # frames lost because the peer's queue was full
        self.rx_msgs = 0
        self.rx_malformed = 0
        self.rx_malformed_seen = 0   # the part already counted in the device's stats

    def connect(self, tx_endpoint):
        """Connect the sending side to the peer's inbox."""
        self.tx.connect(tx_endpoint)
        self.tx_endpoint = tx_endpoint

    def update_carrier(self):
        """Recompute the carrier; True if it changed."""
        up = self.admin_up and self.link_up
        changed = up != self.carrier
        self.carrier = up
        return changed

    # ---- called by the kernel (veth_xmit), under the kernel lock
    def send(self, buf, start, end, flags, gso_type, gso_size, trace_id, held=None):
        """Queue a frame (bytes start:end of buf) for the next flush. held: the
        driver's reference on a clone's data (skb_data_hold), released at the flush."""
        if not self.carrier:
            return False
        out = self.out
        if not out and self.on_dirty is not None:
            self.on_dirty(self)
        # A view of the frame, not a copy: the batch is joined once, at the
        # flush, under the kernel lock still. Nothing writes the frame before:
        # a freed skb's buffer is nobody's, and a clone's data stays shared
        # (held) until then. A bytearray grown frame by frame reallocated and
        # copied the batch again and again: with 64 KiB GSO frames, the
        # wire's main cost.
        out.append(emu_wire_hdr.pack(flags, gso_type, gso_size, end - start, trace_id))
        out.append(memoryview(buf)[start:end])
        if held is not None:
            self.held.append(held)
        self.out_frames += 1
        self.out_bytes += EMU_WIRE_HDR_LEN + end - start
        if self.out_bytes >= BATCH_BYTES or self.out_frames >= BATCH_FRAMES:
            self.flush()
        return True

    def flush(self):
        """Send the batch built since the last flush (never waits to fill one)."""
        out = self.out
        if not out:
            return
        try:
            # copy=True: ZeroMQ takes one memcpy of the batch. A zero-copy send
            # of Python memory costs more than the copy: pyzmq's garbage
            # collector thread must be told when ZeroMQ lets go of each one.
            self.tx.send(b"".join(out), zmq.NOBLOCK, copy=True)
            self.tx_msgs += 1
        except zmq.Again:
            self.tx_dropped += self.out_frames
        held = self.held
        if held:
            for sh in held:
                skb_data_release(sh)
            self.held = []
        self.out = []
        self.out_bytes = 0
        self.out_frames = 0

    def close(self):
        for mon in (self.rx_mon, self.tx_mon):
            if mon is not None:
                mon.close(0)
        self.rx.close(0)
        self.tx.close(0)


def parse_batch(msg):
    """Yield (flags, gso_type, gso_size, trace_id, frame memoryview) from one message.

    The message is untrusted: stops at the first malformed header and yields
    None for it, so the caller can count it.
    """
    mv = memoryview(msg)
    n = len(mv)
    off = 0
    unpack = emu_wire_hdr.unpack_from
    while off < n:
        if n - off < EMU_WIRE_HDR_LEN:
            yield None
            return
        flags, gso_type, gso_size, flen, trace_id = unpack(mv, off)
        off += EMU_WIRE_HDR_LEN
        if flen > EMU_WIRE_MAX_FRAME or off + flen > n:
            yield None
            return
        yield flags, gso_type, gso_size, trace_id, mv[off:off + flen]
        off += flen


def encode_frames(frames, trace_id=0):
    """A wire message holding frames (for tests and tools that inject frames)."""
    out = bytearray()
    for f in frames:
        out += emu_wire_hdr.pack(0, 0, 0, len(f), trace_id)
        out += f
    return bytes(out)
