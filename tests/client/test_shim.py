"""The socket shim: standard-library socket code, run on a node, uses its kernel."""
import select
import selectors
import socket
import socketserver
import struct
import threading
import time

import pytest

import emu
from emu.client.shim import Resolver
from tests.integration.conftest import TOPOLOGIES

HOSTS = {"h1": "10.0.0.1", "h2": "10.0.0.2"}


@pytest.fixture(scope="module")
def bridge():
    # One lab for the module: these tests leave nothing behind in it but counters.
    with emu.launch(TOPOLOGIES / "veth-bridge.yaml") as lab:
        yield lab


# ------------------------------------------------------------------ resolver (no lab)

def test_getaddrinfo_resolves_lab_names_and_quads_like_glibc():
    r = Resolver(HOSTS, "h1")
    assert r.getaddrinfo("h2", 53, type=socket.SOCK_DGRAM) == \
        [(socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("10.0.0.2", 53))]
    kinds = [(t, p) for _, t, p, _, _ in r.getaddrinfo("10.9.8.7", "7000")]
    assert kinds == [(socket.SOCK_STREAM, 6), (socket.SOCK_DGRAM, 17), (socket.SOCK_RAW, 0)]
    assert {sa for *_, sa in r.getaddrinfo("10.9.8.7", "7000")} == {("10.9.8.7", 7000)}
    assert r.getaddrinfo(None, 80, flags=socket.AI_PASSIVE)[0][4] == ("0.0.0.0", 80)
    assert r.getaddrinfo(None, 80)[0][4] == ("127.0.0.1", 80)
    assert r.getaddrinfo("h2", 80, flags=socket.AI_CANONNAME)[0][3] == "h2"
    with pytest.raises(socket.gaierror) as e:
        r.getaddrinfo("h2", 80, socket.AF_INET6)
    assert e.value.errno == socket.EAI_FAMILY
    with pytest.raises(socket.gaierror) as e:
        r.getaddrinfo("h2", "no-such-service")
    assert e.value.errno == socket.EAI_SERVICE


def test_names_outside_the_lab_do_not_resolve():
    r = Resolver(HOSTS, "h1")
    for name in ("example.com", "h3", "10.0.0", "1.2.3.256"):
        with pytest.raises(socket.gaierror) as e:
            r.gethostbyname(name)
        assert e.value.errno == socket.EAI_NONAME
    assert r.gethostbyname("localhost") == "127.0.0.1"
    assert r.gethostbyname("H2.") == "10.0.0.2"
    assert r.gethostbyaddr("10.0.0.2") == ("h2", [], ["10.0.0.2"])
    with pytest.raises(socket.herror):
        r.gethostbyaddr("10.0.0.77")
    assert (r.gethostname(), r.getfqdn()) == ("h1", "h1")


# ------------------------------------------------------------------ code run on nodes

def names_on_node():
    out = {"hostname": socket.gethostname(), "h2": socket.gethostbyname("h2"),
           "quad": socket.gethostbyname("192.0.2.9"),
           "gai": socket.getaddrinfo("h2", 9, type=socket.SOCK_DGRAM)[0][4]}
    try:
        socket.gethostbyname("example.com")
    except socket.gaierror as e:
        out["unknown"] = e.errno
    return out


def test_socket_module_resolves_lab_names_on_the_node(bridge):
    r = bridge.node("h1").run(names_on_node).result(30)
    assert r == {"hostname": "h1", "h2": "10.0.0.2", "quad": "192.0.2.9",
                 "gai": ("10.0.0.2", 9), "unknown": socket.EAI_NONAME}


def udp_echo_server(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", port))
    emu.ready(port)
    served = 0
    try:
        while True:
            data, addr = s.recvfrom(2048)
            s.sendto(data.upper(), addr)
            served += 1
    except emu.Stopped:
        return served


def udp_client(host, port, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.connect((host, port))          # a name: the shim resolves it
    replies = []
    for i in range(count):
        s.send(b"ping %d" % i)
        replies.append(s.recv(2048))
    return {"replies": replies, "sockname": s.getsockname(), "peer": s.getpeername(),
            "fileno": s.fileno(), "is_socket": isinstance(s, socket.socket),
            "family": s.family, "type": s.type}


def test_udp_round_trips_go_through_the_emulated_kernels(bridge):
    h1, h2 = bridge.node("h1"), bridge.node("h2")
    before = h2.counters()["snmp"]["Udp"]["InDatagrams"]
    server = h2.spawn(udp_echo_server, 7001)
    assert server.wait_ready(30) == 7001
    r = h1.run(udp_client, "h2", 7001, 3).result(30)
    assert r["replies"] == [b"PING 0", b"PING 1", b"PING 2"]
    assert r["sockname"][0] == "10.0.0.1" and r["peer"] == ("10.0.0.2", 7001)
    assert r["fileno"] >= 0 and r["is_socket"]
    assert (r["family"], r["type"]) == (socket.AF_INET, socket.SOCK_DGRAM)
    assert h2.counters()["snmp"]["Udp"]["InDatagrams"] == before + 3
    assert server.stop() == 3                       # it caught Stopped and returned


def timeouts():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    t = time.monotonic()
    try:
        s.recvfrom(100)
        raised = None
    except socket.timeout as e:
        raised = type(e).__name__
    waited = time.monotonic() - t
    s.setblocking(False)
    try:
        s.recv(100)
        nonblocking = None
    except BlockingIOError:
        nonblocking = "BlockingIOError"
    socket.setdefaulttimeout(0.1)
    default = socket.socket(socket.AF_INET, socket.SOCK_DGRAM).gettimeout()
    return raised, waited, nonblocking, s.gettimeout(), default


def test_timeouts_raise_socket_timeout(bridge):
    raised, waited, nonblocking, timeout, default = bridge.node("h1").run(timeouts).result(30)
    assert raised == "TimeoutError"                  # socket.timeout is TimeoutError
    assert 0.15 <= waited < 2.0
    assert nonblocking == "BlockingIOError" and timeout == 0.0 and default == 0.1


def waits():
    out = {}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    addr = s.getsockname()
    t = time.monotonic()
    out["idle"] = select.select([s], [], [], 0.2) == ([], [], [])
    out["idle_waited"] = time.monotonic() - t
    out["writable"] = select.select([], [s], [], 0)[1] == [s]
    s.sendto(b"x", addr)
    out["readable"] = select.select([s], [], [], 2)[0] == [s]
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ, "data")
    ready = sel.select(2)
    out["selector"] = [(k.fileobj is s, k.data, ev) for k, ev in ready]
    s.recv(10)
    out["selector_idle"] = sel.select(0.05) == []
    p = select.poll()
    p.register(s, select.POLLIN)
    s.sendto(b"y", addr)
    out["poll"] = p.poll(2000) == [(s.fileno(), select.POLLIN)]
    s.recv(10)
    # A real descriptor and an emulated one in the same wait.
    a, b = socket.socketpair()
    out["pair_real"] = not hasattr(a, "_wait_fileno") and isinstance(a, socket.socket)
    b.send(b"z")
    out["mixed_real"] = select.select([s, a], [], [], 2)[0] == [a]
    a.recv(1)
    s.sendto(b"w", addr)
    out["mixed_emu"] = select.select([s, a], [], [], 2)[0] == [s]
    return out


def test_select_poll_and_selectors_wait_in_the_node(bridge):
    out = bridge.node("h1").run(waits).result(30)
    waited = out.pop("idle_waited")
    assert 0.15 <= waited < 2.0
    assert out == {"idle": True, "writable": True, "readable": True,
                   "selector": [(True, "data", selectors.EVENT_READ)], "selector_idle": True,
                   "poll": True, "pair_real": True, "mixed_real": True, "mixed_emu": True}


def threads_share_a_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    got = []
    reader = threading.Thread(target=lambda: got.append(s.recvfrom(100)[0]))
    reader.start()
    time.sleep(0.2)                  # the reader is now blocked in the node
    t = time.monotonic()
    s.sendto(b"hello", s.getsockname())
    sent_after = time.monotonic() - t
    reader.join(5)
    return got, sent_after


def test_a_thread_blocked_in_recv_does_not_block_another_threads_send(bridge):
    got, sent_after = bridge.node("h2").run(threads_share_a_socket).result(30)
    assert got == [b"hello"]
    assert sent_after < 1.0          # not held up until the reader's 5 s timeout


class _Upper(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data.upper(), self.client_address)


def socketserver_udp(port):
    with socketserver.UDPServer(("", port), _Upper) as server:
        emu.ready(server.server_address)
        try:
            server.serve_forever(poll_interval=0.1)
        except emu.Stopped:
            return "stopped"


def test_an_unmodified_socketserver_serves_on_a_node(bridge):
    server = bridge.node("h2").spawn(socketserver_udp, 7002)
    assert tuple(server.wait_ready(30)) == ("0.0.0.0", 7002)
    r = bridge.node("h1").run(udp_client, "10.0.0.2", 7002, 2).result(30)
    assert r["replies"] == [b"PING 0", b"PING 1"]
    assert server.stop() == "stopped"


def connect_by_name():
    try:
        socket.create_connection(("h2", 9), timeout=5)
    except socket.gaierror:
        return "gaierror"
    except OSError as e:
        return type(e).__name__
    return "connected"


def test_create_connection_resolves_and_connects_through_the_node(bridge):
    # "h2" means nothing to the real resolver; h2's kernel answers the SYN to
    # a closed port with a RST.
    h2 = bridge.node("h2")
    rsts = h2.counters()["snmp"]["Tcp"]["OutRsts"]
    assert bridge.node("h1").run(connect_by_name).result(30) == "ConnectionRefusedError"
    assert h2.counters()["snmp"]["Tcp"]["OutRsts"] == rsts + 1


def tcp_line_server(port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("", port))
    srv.listen()
    emu.ready(port)
    conn, peer = srv.accept()
    with conn, conn.makefile("rwb") as f:
        line = f.readline()
        # Before the reply: after it, the client may already have closed (CLOSE-WAIT).
        info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO)
        # What a program written for Linux does: unpack struct tcp_info.
        raw = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        f.write(line.upper())
        f.flush()
        return {"peer": peer, "accepted_is_socket": isinstance(conn, socket.socket),
                "accepted_fileno": conn.fileno(), "state": info["state"],
                "bytes_received": info["bytes_received"], "raw_len": len(raw),
                "raw_state": raw[0], "raw_snd_mss": struct.unpack_from("<I", raw, 16)[0],
                "raw_bytes_received": struct.unpack_from("<Q", raw, 128)[0]}


def tcp_line_client(host, port):
    with socket.create_connection((host, port), timeout=5) as c:
        c.sendall(b"hello over tcp\n")
        return c.makefile("rb").readline()


def test_tcp_accept_makefile_and_tcp_info_on_nodes(bridge):
    server = bridge.node("h2").spawn(tcp_line_server, 8000)
    server.wait_ready(30)
    assert bridge.node("h1").run(tcp_line_client, "h2", 8000).result(30) == b"HELLO OVER TCP\n"
    r = server.result(30)
    assert r["peer"][0] == "10.0.0.1" and r["accepted_is_socket"]
    assert r["accepted_fileno"] >= 0
    assert (r["state"], r["bytes_received"]) == ("ESTABLISHED", len(b"hello over tcp\n"))
    # getsockopt(TCP_INFO, buflen): Linux 6.x's 248-byte struct tcp_info.
    assert (r["raw_len"], r["raw_state"], r["raw_snd_mss"]) == (248, 1, 1448)
    assert r["raw_bytes_received"] == len(b"hello over tcp\n")


class _Reverse(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line.rstrip(b"\n")[::-1] + b"\n")


def threading_tcp_server(port):
    with socketserver.ThreadingTCPServer(("", port), _Reverse) as server:
        emu.ready()
        try:
            server.serve_forever(poll_interval=0.1)
        except emu.Stopped:
            return "stopped"


def tcp_lines(host, port, lines):
    with socket.create_connection((host, port), timeout=5) as c, c.makefile("rwb") as f:
        out = []
        for line in lines:
            f.write(line + b"\n")
            f.flush()
            out.append(f.readline())
        return out


def test_an_unmodified_threading_tcp_server_serves_on_a_node(bridge):
    server = bridge.node("h2").spawn(threading_tcp_server, 8001)
    server.wait_ready(30)
    assert bridge.node("h1").run(tcp_lines, "h2", 8001, [b"abc", b"hello"]).result(30) == \
        [b"cba\n", b"olleh\n"]
    assert server.stop() == "stopped"


class _Catch:
    """An asyncio datagram protocol that keeps the first datagram."""

    def __init__(self):
        import asyncio
        self.got = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        pass

    def datagram_received(self, data, addr):
        if not self.got.done():
            self.got.set_result((data, addr[0]))

    def connection_lost(self, exc):
        pass


async def _asyncio_round_trip():
    import asyncio
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Catch, local_addr=("h1", 7003))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.sendto(b"via asyncio", ("h1", 7003))
    try:
        return await asyncio.wait_for(proto.got, 5)
    finally:
        transport.close()


def asyncio_round_trip():
    import asyncio
    return asyncio.run(_asyncio_round_trip())


def test_asyncio_datagram_endpoints_use_the_node(bridge):
    assert bridge.node("h1").run(asyncio_round_trip).result(30) == (b"via asyncio", "10.0.0.1")
