"""LabHandle: partitions (link_down/up), kernel-state assertions, evidence."""
import socket
import time

import pytest

import emu

from tests.integration.conftest import TOPOLOGIES


def _eth0(node):
    return next(l for l in node.links() if l["name"] == "eth0")


@pytest.mark.topology(TOPOLOGIES / "veth-bridge.yaml")
def test_link_down_cuts_both_directions_and_link_up_mends_it(lab):
    h1, h2, br = lab.node("h1"), lab.node("h2"), lab.node("br0")
    assert h1.ping("h2", count=1).received == 1
    assert lab.link("br0:p1") is lab.link("h1:eth0")
    lab.link_down("h1:eth0")
    # Both ends of the wire are cut; the devices stay administratively up.
    assert h1.info_()["wires"]["eth0"]["carrier"] is False
    assert br.info_()["wires"]["p1"]["carrier"] is False
    assert br.info_()["wires"]["p2"]["carrier"] is True
    assert "UP" in _eth0(h1)["flags"]
    dropped = _eth0(h1)["stats"]["tx_dropped"]
    assert h1.ping("h2", count=2, interval=0.05, timeout=0.3).received == 0
    assert h2.ping("h1", count=2, interval=0.05, timeout=0.3).received == 0
    assert _eth0(h1)["stats"]["tx_dropped"] >= dropped + 2     # sent into a cut cable
    lab.link_up("h1:eth0")
    assert h1.ping("h2", count=2, interval=0.05).received == 2
    assert h2.ping("h1", count=1).received == 1
    with pytest.raises(KeyError, match="no link at 'h1:eth9'"):
        lab.link_down("h1:eth9")


def hold_connection(port, payload):
    """Accept one connection, read payload's worth, keep it open until stopped."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("", port))
    srv.listen()
    emu.ready()
    conn, _ = srv.accept()
    got = b""
    try:
        while len(got) < payload:
            got += conn.recv(65536)
        time.sleep(60)
    except emu.Stopped:             # (a stop in the last recv's return still counts what came)
        return len(got)


def send_and_hold(host, port, payload):
    c = socket.create_connection((host, port), timeout=10)
    c.sendall(b"x" * payload)
    emu.ready(c.getsockname()[1])
    try:
        time.sleep(60)
    except emu.Stopped:
        c.close()


@pytest.mark.topology(TOPOLOGIES / "veth-bridge.yaml")
def test_kernel_state_for_assertions(lab):
    h1, h2 = lab.node("h1"), lab.node("h2")
    assert h1.ping("h2", count=2, interval=0.05).received == 2
    assert h2.counters()["snmp"]["Icmp"]["InEchos"] == 2
    assert any(n["dst"] == "10.0.0.2" for n in h1.neigh())
    assert {r["dev"] for r in lab.node("br0").fdb() if not r["is_local"]} == {"p1", "p2"}
    # tcp_info of a connection held by processes on the nodes, read from the test.
    server = h2.spawn(hold_connection, 8000, 5000)
    server.wait_ready(30)
    client = h1.spawn(send_and_hold, "h2", 8000, 5000)
    port = client.wait_ready(30)
    deadline = time.monotonic() + 10

    def read_by_server():
        """h2's kernel has the 5,000 bytes and the server has read them (its
        Recv-Q is empty): stop() then finds it in its sleep, not its recv loop."""
        rows = [r for r in h2.sockets() if r["proto"] == "tcp" and r["local"][1] == 8000
                and r["peer"][1] == port]
        info = (h2.tcp_info(remote=("h1", port)) or [{}])[0]
        return info.get("bytes_received") == 5000 and rows and rows[0]["recv_q"] == 0
    while not read_by_server():
        assert time.monotonic() < deadline, h2.sockets()
        time.sleep(0.02)
    [rx] = h2.tcp_info(remote=("h1", port))
    assert rx["state"] == "ESTABLISHED" and rx["local"] == ("10.0.0.2", 8000)
    [tx] = h1.tcp_info(local=(None, port), remote=("10.0.0.2", 8000))
    assert tx["bytes_sent"] >= 5000 and tx["peer"] == ("10.0.0.2", 8000)
    assert h1.tcp_info(remote=("h2", 9999)) == []
    assert any(s["proto"] == "tcp" and s["state"] == "LISTEN" for s in h2.sockets())
    text = lab.evidence(log_lines=3)
    assert "h2 (host, pid %d)" % h2.pid in text
    assert "Icmp: InMsgs=2 InEchos=2" in text               # non-zero counters only
    assert "Forwarding=" not in text and "OutErrors=0" not in text
    assert "  tcp ESTAB 10.0.0.2:8000 -> 10.0.0.1:%d" % port in text     # ss-like rows
    assert "booted" in text                                  # the log tail
    assert server.stop() == 5000
    client.stop()
