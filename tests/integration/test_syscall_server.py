"""The node's syscall server: one client that stops reading must not stall others."""
import socket as pysocket
import time

from emu.client.rpc import encode_call


def _call(sock, rid, name, *args):
    sock.sendall(encode_call(rid, name, args))


def test_a_client_that_stops_reading_does_not_block_the_node(bridge_lab):
    h1, h2 = bridge_lab.node("h1"), bridge_lab.node("h2")
    # A raw client of h2's syscall socket: a UDP socket with lots of data queued...
    greedy = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_STREAM)
    greedy.connect(h2.sys_endpoint)
    _call(greedy, 1, "socket", 2, 2, 0)
    _call(greedy, 2, "setsockopt", 3, 1, 8, 4 * 1024 * 1024)    # fd 3, SO_RCVBUF 4 MiB
    _call(greedy, 3, "bind", 3, ["0.0.0.0", 6001])
    time.sleep(0.3)
    tx = h1.socket(2, 2)
    for _ in range(30):
        tx.sendto(b"x" * 60000, ("10.0.0.2", 6001))
    time.sleep(0.5)
    # ... asks for all of it (1.8 MB of replies) and never reads a byte.
    for i in range(4, 34):
        _call(greedy, i, "recvfrom", 3, 65536, 0)
    time.sleep(0.2)
    # A well-behaved client on the same node still gets its answers at once.
    t0 = time.monotonic()
    with h2.socket(2, 2) as s:
        s.bind(("0.0.0.0", 6002))
        tx.sendto(b"ping", ("10.0.0.2", 6002))
        s.settimeout(5)
        assert s.recvfrom(100)[0] == b"ping"
    assert time.monotonic() - t0 < 1.5
    greedy.close()


def test_a_threads_connection_closes_when_the_thread_ends(bridge_lab):
    """A process that runs each transfer in a new thread does not pile up
    connections (and their buffers) in the node; its sockets outlive the
    threads, as descriptors belong to the process."""
    import gc
    import threading
    h1 = bridge_lab.node("h1")
    keep = h1.socket(pysocket.AF_INET, pysocket.SOCK_DGRAM)     # this thread's connection
    keep.bind(("0.0.0.0", 5999))
    base = h1.call("info")["tasks"]
    made = []

    def worker():
        s = h1.socket(pysocket.AF_INET, pysocket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 0))
        made.append(s)

    for _ in range(5):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    gc.collect()
    deadline = time.monotonic() + 10
    while h1.call("info")["tasks"] > base:
        assert time.monotonic() < deadline, h1.call("info")
        time.sleep(0.05)
    assert all(s.getsockname()[1] for s in made)          # the sockets are still there
    keep.close()
    for s in made:
        s.close()


def test_a_long_send_that_waits_keeps_its_buffer_from_the_next_long_frame(bridge_lab):
    """The node reads long send frames into a buffer it keeps per connection;
    a send parked for room still reads from it, so the next long frame (here
    pipelined by a raw client, to another socket) must not land there."""
    import os

    from emu import sysproto as P
    from emu.client.rpc import _Conn, decode_reply, read_frame
    h1, h2 = bridge_lab.node("h1"), bridge_lab.node("h2")
    listeners = []
    for port in (7101, 7102):
        ls = h2.socket(pysocket.AF_INET, pysocket.SOCK_STREAM)
        ls.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_RCVBUF, 4096)   # a small window
        ls.bind(("0.0.0.0", port))
        ls.listen(1)
        listeners.append(ls)
    raw = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_STREAM)
    raw.connect(h1.sys_endpoint)
    c = _Conn(raw)

    def call(rid, name, *args):
        _call(raw, rid, name, *args)
        kind, got, body = read_frame(c, 10.0)
        assert got == rid
        return decode_reply(kind, body, name)

    fds = []
    for i, port in enumerate((7101, 7102)):
        fd = call(10 + i, "socket", 2, 1, 0)
        call(20 + i, "setsockopt", fd, pysocket.SOL_SOCKET, pysocket.SO_SNDBUF, 16384)
        call(30 + i, "connect", fd, ["10.0.0.2", port])
        fds.append(fd)
    peers = [ls.accept()[0] for ls in listeners]
    first, second = os.urandom(600_000), os.urandom(600_000)
    for rid, fd, data in ((41, fds[0], first), (42, fds[1], second)):
        raw.sendall(P.SENDTO_HDR.pack(P.SENDTO_HDR.size + len(data), P.OP_SENDTO, 0, 0, rid, fd,
                                      0, 0, 0, 0, P.NAN) + data)
    time.sleep(0.5)               # the first waits for room (nobody reads it yet)

    def read_all(s, n):
        s.settimeout(20)
        out = bytearray()
        while len(out) < n:
            d = s.recv(1 << 20)
            assert d
            out += d
        return bytes(out)

    assert read_all(peers[1], len(second)) == second
    assert read_all(peers[0], len(first)) == first
    replies = {}
    while len(replies) < 2:
        kind, rid, body = read_frame(c, 10.0)
        replies[rid] = decode_reply(kind, body)[0]
    assert replies == {41: len(first), 42: len(second)}
    raw.close()
    for s in peers + listeners:
        s.close()
