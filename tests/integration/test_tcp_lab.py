"""TCP across real node processes (the bridge lab and the router line)."""

import pytest

from tests.integration.conftest import transfer_both_ways

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
    """All four at once: each thread gets its own syscall connection, and the
    connections of one process share its descriptors (one task)."""
    got_up, want_up, got_down, want_down = transfer_both_ways(
        bridge_lab, "h1", "h2", "10.0.0.2", 8002, 100 * 1024 * 1024, timeout=100)
    assert got_up == want_up
    assert got_down == want_down