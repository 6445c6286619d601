"""TCP across real node processes (the bridge lab and the router line)."""
import hashlib
import os
import threading

import pytest

AF_INET, SOCK_STREAM = 2, 1


def test_echo_over_tcp_and_clean_close(bridge_lab):
    h1, h2 = bridge_lab.node("h1"), bridge_lab.node("h2")
    with h2.socket(AF_INET, SOCK_STREAM) as srv:
        srv.bind(("0.0.0.0", 8000))
        srv.listen(4)
        srv.settimeout(5)
        cli = h1.socket(AF_INET, SOCK_STREAM)
        cli.settimeout(5)
        cli.connect(("10.0.0.2", 8000))
        conn, addr = srv.accept()
        conn.settimeout(5)
        assert addr[0] == "10.0.0.1" and cli.getpeername() == ("10.0.0.2", 8000)
        cli.sendall(b"ping" * 1000)
        got = b""
        while len(got) < 4000:
            got += conn.recv(65536)
        assert got == b"ping" * 1000
        conn.sendall(b"pong")
        assert cli.recv(10) == b"pong"
        cli.close()
        assert conn.recv(10) == b""                       # EOF after the peer's FIN
        conn.close()
    info = h1.counters()["snmp"]["Tcp"]
    assert info["ActiveOpens"] == 1 and h2.counters()["snmp"]["Tcp"]["PassiveOpens"] == 1


def test_connection_refused_and_timeout(bridge_lab):
    h1 = bridge_lab.node("h1")
    with h1.socket(AF_INET, SOCK_STREAM) as s:
        s.settimeout(5)
        with pytest.raises(ConnectionRefusedError):
            s.connect(("10.0.0.2", 8001))
    with h1.socket(AF_INET, SOCK_STREAM) as s:
        s.settimeout(0.3)
        with pytest.raises(TimeoutError):               # nobody at .77: ARP fails, SYN waits
            s.connect(("10.0.0.77", 80))


def test_100mb_both_directions_at_once_is_byte_exact(bridge_lab):
    h1, h2 = bridge_lab.node("h1"), bridge_lab.node("h2")
    size = 100 * 1024 * 1024
    up, down = os.urandom(size), os.urandom(size)
    srv = h2.socket(AF_INET, SOCK_STREAM)
    srv.bind(("0.0.0.0", 8002))
    srv.listen(1)
    srv.settimeout(10)
    cli = h1.socket(AF_INET, SOCK_STREAM)
    cli.settimeout(60)
    cli.connect(("10.0.0.2", 8002))
    conn, _ = srv.accept()
    conn.settimeout(60)
    results = {}

    # Each direction's sender and receiver run in threads with their own
    # syscall connections (one call at a time per connection).
    def send(sock, data):
        sock.sendall(data)

    def recv(sock, key):
        h = hashlib.sha256()
        n = 0
        while n < size:
            d = sock.recv(1 << 20)
            if not d:
                break
            h.update(d)
            n += len(d)
        results[key] = (n, h.hexdigest())

    # All four at once: each thread gets its own syscall connection, and the
    # connections of one process share its descriptors (one task).
    threads = [threading.Thread(target=send, args=(cli, up)),
               threading.Thread(target=recv, args=(conn, "up")),
               threading.Thread(target=send, args=(conn, down)),
               threading.Thread(target=recv, args=(cli, "down"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    assert results["up"] == (size, hashlib.sha256(up).hexdigest())
    assert results["down"] == (size, hashlib.sha256(down).hexdigest())
    for s in (cli, conn, srv):
        s.close()
