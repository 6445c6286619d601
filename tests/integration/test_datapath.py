"""The fast system call path (sysproto.py): sends on credit, read-ahead,
and the errors Linux reports synchronously still reported by the same call."""
import errno
import socket as pysocket
import time

import pytest

SO_BROADCAST = pysocket.SO_BROADCAST


def _credited(s, addr, n=64):
    """A few sends to addr: the node has vouched for the next ones (a credit)."""
    for _ in range(3):
        assert s.sendto(b"c" * n, addr) == n
    assert s.fileno() in s._sys.credits, "the node gave no send credit"


def _errno(fn):
    with pytest.raises(OSError) as e:
        fn()
    return e.value.errno


def _udp_pair(lab, port):
    """(receiver bound on h2, sender on h1, its destination), h2's address
    resolved: a burst sent while ARP is pending would overflow the
    neighbour's queue (unres_qlen), losing its oldest, as in Linux."""
    rx = lab.node("h2").socket(2, 2)
    rx.bind(("0.0.0.0", port))
    rx.settimeout(5)
    s = lab.node("h1").socket(2, 2)
    dst = ("10.0.0.2", port)
    s.sendto(b"arp", dst)
    assert rx.recvfrom(100)[0] == b"arp"
    return rx, s, dst


def test_udp_errors_of_a_credited_socket_come_from_the_same_call(bridge_lab):
    h1, h2 = bridge_lab.node("h1"), bridge_lab.node("h2")
    rx, s, dst = _udp_pair(bridge_lab, 7100)
    _credited(s, dst)
    # A burst on credit arrives whole and in order.
    for i in range(100):
        assert s.sendto(b"%04d" % i, dst) == 4
    got = []
    try:
        for _ in range(103):
            got.append(rx.recvfrom(100)[0])
    except OSError:
        links = [(link["name"], {k: v for k, v in link["stats"].items() if v})
                 for link in h2.call("link_show", stats=True)]
        want = [b"c" * 64] * 3 + [b"%04d" % i for i in range(100)]
        missing = [w for w in want if w not in got]
        raise AssertionError("lost: %d got; missing %s; %s %s %s %s %s" % (
            len(got), missing, h2.counters()["snmp"]["Udp"], links, h2.counters().get("drop_reasons"),
            h2.call("info")["wires"], h2.counters().get("softnet"))) from None
    assert got[3:] == [b"%04d" % i for i in range(100)]
    # EMSGSIZE: longer than the credit covers, and than UDP allows.
    assert _errno(lambda: s.sendto(b"x" * 70000, dst)) == errno.EMSGSIZE
    # EACCES: a broadcast needs SO_BROADCAST; taking it away ends the credit.
    s.setsockopt(pysocket.SOL_SOCKET, SO_BROADCAST, 1)
    bcast = ("10.0.0.255", 7100)
    _credited(s, bcast)
    s.setsockopt(pysocket.SOL_SOCKET, SO_BROADCAST, 0)
    assert _errno(lambda: s.sendto(b"b" * 64, bcast)) == errno.EACCES
    # ENETUNREACH: the link (and with it the route) goes away.
    _credited(s, dst)
    h1.call("link_set", name="eth0", up=False)
    assert _errno(lambda: s.sendto(b"c" * 64, dst)) == errno.ENETUNREACH
    h1.call("link_set", name="eth0", up=True)
    for s_ in (s, rx):
        s_.close()


def test_connected_udp_reports_econnrefused_on_the_next_send(bridge_lab):
    h1 = bridge_lab.node("h1")
    s = h1.socket(2, 2)
    s.connect(("10.0.0.2", 7199))            # nobody listens there
    assert s.send(b"x" * 64) == 64             # ... the ICMP port unreachable comes later
    deadline = time.monotonic() + 10
    while True:
        try:
            s.send(b"x" * 64)
        except ConnectionRefusedError:
            break
        assert time.monotonic() < deadline, "no ECONNREFUSED"
        time.sleep(0.05)
    s.close()


def test_tcp_send_errors_eagain_and_epipe(bridge_lab):
    h1, h2 = bridge_lab.node("h1"), bridge_lab.node("h2")
    srv = h2.socket(2, 1)
    srv.bind(("0.0.0.0", 7200))
    srv.listen(1)
    srv.settimeout(10)
    c = h1.socket(2, 1)
    c.settimeout(10)
    c.connect(("10.0.0.2", 7200))
    conn, _ = srv.accept()
    # EAGAIN: a non-blocking send once the peer stops reading and the buffers fill.
    c.setblocking(False)
    deadline = time.monotonic() + 30
    with pytest.raises(BlockingIOError):
        while time.monotonic() < deadline:
            c.send(b"z" * 65536)
    # EPIPE: sending after shutting the write side.
    c.setblocking(True)
    c.shutdown(pysocket.SHUT_WR)
    assert _errno(lambda: c.send(b"late")) == errno.EPIPE
    for s in (c, conn, srv):
        s.close()


def test_read_ahead_keeps_datagram_boundaries_order_and_truncation(bridge_lab):
    h1, h2 = bridge_lab.node("h1"), bridge_lab.node("h2")
    rx = h2.socket(2, 2)
    rx.bind(("0.0.0.0", 7300))
    rx.settimeout(5)
    tx = h1.socket(2, 2)
    msgs = [bytes([65 + i]) * (10 + i) for i in range(20)]
    for m in msgs:
        tx.sendto(m, ("10.0.0.2", 7300))
    time.sleep(0.5)                           # all of them queued on h2
    first, addr = rx.recvfrom(5)              # takes the rest ahead
    assert first == msgs[0][:5] and addr[0] == "10.0.0.1"
    assert rx.recvfrom(100, pysocket.MSG_PEEK)[0] == msgs[1]
    rest = [rx.recvfrom(100)[0] for _ in range(19)]
    assert rest == msgs[1:]
    rx.setblocking(False)
    with pytest.raises(BlockingIOError):
        rx.recvfrom(100)
    tx.close()
    rx.close()


def test_getsockname_and_getpeername_in_binary_frames(bridge_lab):
    """OP_NAME (sysproto.py): the addresses, and the errno Linux gives, as the
    msgpack call gives them; a family other than AF_INET falls back to msgpack."""
    from emu import sysproto as P
    h1, h2 = bridge_lab.node("h1"), bridge_lab.node("h2")
    s = h1.socket(2, 2)
    s.bind(("0.0.0.0", 7150))
    assert s.getsockname() == ("0.0.0.0", 7150)
    assert s._sys.call("getsockname", s.fileno()) == ["0.0.0.0", 7150]
    assert _errno(s.getpeername) == errno.ENOTCONN
    s.connect(("10.0.0.2", 7151))
    assert s.getpeername() == ("10.0.0.2", 7151)
    assert s.getsockname() == ("10.0.0.1", 7150)
    fd = s.fileno()
    s.close()
    assert _errno(lambda: h1.socket(2, 2)._sys.getname(fd + 100, 0)) == errno.EBADF
    # The frame as a raw client writes it: the reply kind says which encoding.
    raw = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_STREAM)
    raw.connect(h2.sys_endpoint)
    from emu.client.rpc import _Conn, decode_reply, encode_call, read_frame
    c = _Conn(raw)
    raw.sendall(encode_call(1, "socket", [17, 3, 0x0300]))       # AF_PACKET, SOCK_RAW, ETH_P_ALL
    kind, rid, body = read_frame(c, 10.0)
    pfd = decode_reply(kind, body)
    raw.sendall(P.REQ.pack(P.REQ_LEN, P.OP_NAME, P.N_SOCK, 0, 2, pfd))
    kind, rid, body = read_frame(c, 10.0)
    assert (kind, rid) == (P.R_MSGPACK, 2)
    binary = decode_reply(kind, body)
    raw.sendall(encode_call(4, "getsockname", [pfd]))
    kind, rid, body = read_frame(c, 10.0)
    assert binary == decode_reply(kind, body) and len(binary) == 5    # sockaddr_ll: (ifname, proto, ...)
    raw.sendall(P.REQ.pack(P.REQ_LEN, P.OP_NAME, 7, 0, 3, pfd))    # no such name call
    assert raw.recv(100) == b""                                   # the node drops the connection
    raw.close()


def test_a_raw_icmp_socket_sends_on_credit_and_its_errors_come_from_the_same_call(bridge_lab):
    """ping's socket (raw, the kernel builds the IP header) earns a send
    credit as UDP does; EMSGSIZE, EACCES and ENETUNREACH still come from the
    call that causes them. With IP_HDRINCL there is no credit."""
    import struct
    h1 = bridge_lab.node("h1")
    s = h1.socket(2, pysocket.SOCK_RAW, pysocket.IPPROTO_ICMP)
    s.settimeout(5)
    dst = ("10.0.0.2", 0)

    def echo(seq, size=56):
        body = struct.pack("!BBHHH", 8, 0, 0, 0x4242, seq) + b"p" * size
        csum = sum(struct.unpack("!%dH" % (len(body) // 2), body))
        csum = (csum & 0xFFFF) + (csum >> 16)
        csum = ~((csum & 0xFFFF) + (csum >> 16)) & 0xFFFF
        return body[:2] + struct.pack("!H", csum) + body[4:]
    for seq in range(3):
        assert s.sendto(echo(seq), dst) == 64
    assert s.fileno() in s._sys.credits, "no send credit for a raw ICMP socket"
    replies = 0
    for seq in range(3, 13):                     # on credit: each one still answered
        assert s.sendto(echo(seq), dst) == 64
    deadline = time.monotonic() + 10
    while replies < 13 and time.monotonic() < deadline:
        data, addr = s.recvfrom(2048)
        if data[20] == 0 and addr[0] == "10.0.0.2":
            replies += 1
    assert replies == 13
    assert _errno(lambda: s.sendto(b"x" * 70000, dst)) == errno.EMSGSIZE
    assert _errno(lambda: s.sendto(echo(20), ("10.0.0.255", 0))) == errno.EACCES
    assert s.sendto(echo(21), dst) == 64         # the credit again
    h1.call("link_set", name="eth0", up=False)
    assert _errno(lambda: s.sendto(echo(22), dst)) == errno.ENETUNREACH
    h1.call("link_set", name="eth0", up=True)
    s.close()
    r = h1.socket(2, pysocket.SOCK_RAW, pysocket.IPPROTO_RAW)      # IP_HDRINCL implied
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8, 0, 0, 64, 17, 0,
                      pysocket.inet_aton("10.0.0.1"), pysocket.inet_aton("10.0.0.2"))
    for _ in range(3):
        r.sendto(hdr + b"\x00" * 8, dst)
    assert r.fileno() not in r._sys.credits
    r.close()


def test_sendmmsg_and_recvmmsg_batch_in_order_with_linux_semantics(bridge_lab):
    """sendmmsg packs the sends its credit covers into one write; recvmmsg
    takes the read-ahead in one step. Order, boundaries, truncation, the
    count returned and the first message's error are Linux's."""
    rx, tx, dst = _udp_pair(bridge_lab, 7400)
    msgs = [(b"%03d" % i + b"x" * 5, dst) for i in range(40)]
    posted = []
    orig = tx._sys._post_batch
    tx._sys._post_batch = lambda parts: (posted.append(len(parts)), orig(parts))[1]
    try:
        assert tx.sendmmsg(msgs) == 40
    finally:
        tx._sys._post_batch = orig
    if bridge_lab.clock != "virtual":
        # The first send earns the credit; the 39 after it leave in one write.
        # (A virtual-time node keeps no send-epoch page: every send there is
        # a round trip, so sendmmsg's are too.)
        assert posted == [2 * 39], posted
    else:
        assert posted == []
    got = rx.recvmmsg(64, 100)
    while len(got) < 40:
        got += rx.recvmmsg(64, 100)
    assert [d for d, _ in got] == [m for m, _ in msgs]
    assert {a for _, a in got} == {("10.0.0.1", tx.getsockname()[1])}
    # Sizes that outgrow the credit go as sendto does, in order with the rest.
    msgs = [(b"%03d" % i + b"v" * (i % 9), dst) for i in range(30)]
    assert tx.sendmmsg(msgs) == 30
    got = rx.recvmmsg(64, 100)
    while len(got) < 30:
        got += rx.recvmmsg(64, 100)
    assert [d for d, _ in got] == [m for m, _ in msgs]
    # vlen bounds what one call returns; a short buffer truncates as recvfrom does.
    assert tx.sendmmsg([(b"y" * 50, dst)] * 10) == 10
    time.sleep(0.3)
    part = rx.recvmmsg(4, 20)
    assert [d for d, _ in part] == [b"y" * 20] * 4
    rest = rx.recvmmsg(64, 100)
    assert [d for d, _ in rest] == [b"y" * 50] * 6
    rx.setblocking(False)
    with pytest.raises(BlockingIOError):
        rx.recvmmsg(8, 100)
    assert rx.recvmmsg(0, 100) == [] and tx.sendmmsg([]) == 0
    # An error on the first message raises it; on a later one, the count so far.
    assert _errno(lambda: tx.sendmmsg([(b"z" * 70000, dst)])) == errno.EMSGSIZE
    assert tx.sendmmsg([(b"ok", dst), (b"z" * 70000, dst), (b"never", dst)]) == 1
    rx.setblocking(True)
    assert rx.recvfrom(100)[0] == b"ok"
    rx.setblocking(False)
    with pytest.raises(BlockingIOError):
        rx.recvfrom(100)                      # "never" was not sent
    # A connected socket: address None.
    tx.connect(dst)
    assert tx.sendmmsg([(b"c1", None), (b"c2", None), (b"c3", None)]) == 3
    rx.settimeout(5)
    assert [rx.recvfrom(100)[0] for _ in range(3)] == [b"c1", b"c2", b"c3"]
    tx.close()
    rx.close()


def test_the_user_threads_busy_poll_ends_when_calls_stop(bridge_lab):
    """After a call the node's user thread polls without sleeping for a few
    tens of microseconds (runtime.USER_BUSY_POLL), then sleeps: calls back to
    back are answered without a wake-up, an idle node burns no CPU."""
    import psutil
    h1 = bridge_lab.node("h1")
    s = h1.socket(2, 2)
    s.bind(("0.0.0.0", 0))
    for _ in range(2000):
        s.getsockname()
    proc = psutil.Process(h1.pid)
    time.sleep(0.2)
    t0 = sum(proc.cpu_times()[:2])
    time.sleep(1.0)
    busy = sum(proc.cpu_times()[:2]) - t0
    s.close()
    assert busy < 0.1, "h1 used %.2f s of CPU in 1 s with no call" % busy
