"""Wires over TCP with CURVE (emu/wire/curve.py): what links between machines
use, exercised here on loopback. Frames cross unchanged, a peer without the
lab's key is refused and counted, a lost connection is carrier loss."""

import pytest
import zmq

import emu
from emu.orchestrator import Lab, LabError
from emu.wire.curve import curve_client, lab_keys
from emu.wire.zwire import encode_frames

from .conftest import transfer_bytes
from .test_faults import link_flags, wait_for

pytestmark = pytest.mark.real_time("tcp wires are for labs over several machines, which run in real time")

AF_INET, SOCK_STREAM = 2, 1

TOPO = """name: tcpwire
nodes:
  h1: {kind: host, interfaces: {eth0: {address: 10.0.0.1/24}}}
  h2: {kind: host, interfaces: {eth0: {address: 10.0.0.2/24}}}
  br0: {kind: bridge}
links:
  - {endpoints: [h1:eth0, br0:p1], transport: tcp}
  - {endpoints: [h2:eth0, br0:p2], transport: tcp}
"""


@pytest.fixture
def topo(tmp_path):
    path = tmp_path / "tcpwire.yaml"
    path.write_text(TOPO)
    return path


@pytest.fixture
def lab(topo):
    with emu.launch(topo) as lab:
        yield lab


def wires(lab, node):
    return lab.node(node).call("info")["wires"]


def test_tcp_wires_carry_ping_and_tcp_byte_exact(lab):
    w = wires(lab, "h1")["eth0"]
    assert w["transport"] == "tcp" and w["rx"].startswith("tcp://127.0.0.1:")
    assert w["carrier"] and w["link_up"] and w["auth_failures"] == 0
    assert lab.node("h1").ping("h2", count=3, interval=0.05).received == 3
    assert transfer_bytes(lab, "h1", "h2", "10.0.0.2", 9200, 4 * 1024 * 1024)


@pytest.mark.parametrize("knows_server_key", [False, True])
def test_a_peer_without_the_labs_key_is_refused_and_counted(lab, knows_server_key):
    h2 = wires(lab, "h2")["eth0"]
    before = h2["rx_msgs"]
    ctx = zmq.Context()
    try:
        rogue = ctx.socket(zmq.PUSH)
        rogue.linger = 0
        curve_client(rogue, lab_keys())          # another key pair: not this lab's
        if knows_server_key:
            # It knows whom it talks to (the lab's public key) but cannot prove
            # it holds the lab's secret: ZAP refuses it.
            rogue.curve_serverkey = lab._lab.curve[0].encode()
        rogue.connect(h2["rx"])
        frame = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\x00" * 28
        for _ in range(3):
            try:
                rogue.send(encode_frames([frame]), zmq.NOBLOCK)
            except zmq.Again:
                pass
        assert wait_for(lambda: wires(lab, "h2")["eth0"]["auth_failures"] >= 1, 10)
        rogue.close(0)
    finally:
        ctx.term()
    after = wires(lab, "h2")["eth0"]
    assert after["rx_msgs"] == before, "a refused peer's frames must not arrive"
    assert after["carrier"]                       # the lab's own link is unharmed
    assert lab.node("h1").ping("h2", count=2, interval=0.05).received == 2


def test_a_lost_connection_is_carrier_loss_and_reconnection_restores_it(lab):
    h1 = lab.node("h1")
    assert "NO-CARRIER" not in link_flags(h1, "eth0")
    lab.node("br0").kill()
    assert wait_for(lambda: link_flags(h1, "eth0").startswith("<NO-CARRIER,"), 10)
    assert not wires(lab, "h1")["eth0"]["link_up"]
    lab.node("br0").start()
    assert wait_for(lambda: "NO-CARRIER" not in link_flags(h1, "eth0"), 15)
    assert wait_for(lambda: h1.ping("h2", count=1, timeout=1).received == 1, 20)


def test_a_wire_with_a_wrong_key_fails_the_start_naming_the_link(topo, monkeypatch):
    real = Lab._config_phases
    other = lab_keys()

    def phases(self):
        out = real(self)
        for batch in out:
            for op, args in batch.get("h2", []):
                if op == "wire_attach":
                    args["curve_public"], args["curve_secret"] = other
        return out

    monkeypatch.setattr(Lab, "_config_phases", phases)
    lab = Lab(topo)
    with pytest.raises(LabError) as e:
        lab.start(30)
    lab.stop()
    msg = str(e.value)
    assert "link 1 [h2:eth0, br0:p2]" in msg and "CURVE" in msg, msg
