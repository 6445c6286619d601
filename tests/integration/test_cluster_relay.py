"""The syscall relay (emu/cluster_relay.py) without Ray: a one-machine lab's
nodes reached as if from another host, through a SysRelay over the lab's run
directory and this process's ClientRelay, both over tcp:// with CURVE."""
import os
import socket as pysocket
import time

import pytest

from emu.client.rpc import NodeUnreachable, SyscallClient
from emu.cluster_relay import ClientRelay, SysRelay, node_sys, on_this_host, write_token
from emu.wire.curve import lab_keys

from .conftest import transfer_bytes
from .test_faults import wait_for


def source_address(dst):
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((dst, 9))
    return s.getsockname()[0]


@pytest.fixture
def relayed(bridge_lab):
    """The bridge lab with a relay on its run directory, its nodes marked as on another host."""
    keys = lab_keys()
    relay = SysRelay(bridge_lab.sock_dir, "127.0.0.1", keys, nodes=bridge_lab._lab.nodes)
    token = write_token(bridge_lab.sock_dir)     # beside the sockets, as on a machine
    for info in bridge_lab._lab.nodes.values():
        info.update({"relay": relay.endpoint, "curve": list(keys), "machine_token": token})
    try:
        yield bridge_lab, relay, keys
    finally:
        relay.close()


def test_which_path_a_program_takes(relayed, monkeypatch):
    lab, relay, _ = relayed
    info = lab._lab.nodes["h1"]
    # The machine's token is readable here and matches: the node's own socket.
    assert on_this_host(info) and node_sys(info) == info["sys"]
    assert lab.node("h1").sys_endpoint == info["sys"]
    # Forced (the tests' stand-in for another host), or a token that is not this
    # machine's: a local socket of this process's relay.
    monkeypatch.setenv("EMU_CLUSTER_REMOTE", "1")
    path = lab.node("h1").sys_endpoint
    assert path != info["sys"] and not path.startswith(lab.run_dir)
    assert pysocket.socket(pysocket.AF_UNIX).connect(path) is None
    monkeypatch.delenv("EMU_CLUSTER_REMOTE")
    assert node_sys(dict(info, machine_token="0" * 32)) == path
    # A lab without cluster has neither: its own path, always.
    assert node_sys({"sys": "/x/h1.sys"}) == "/x/h1.sys"


def test_the_python_api_through_the_relay(relayed, monkeypatch):
    lab, relay, _ = relayed
    monkeypatch.setenv("EMU_CLUSTER_REMOTE", "1")
    assert lab.node("h1").ping("h2", count=3, interval=0.05).received == 3
    assert transfer_bytes(lab, "h1", "h2", "10.0.0.2", 9400, 4 * 1024 * 1024)
    assert relay.stats()["opened"] >= 3
    # A process on the node: its shim connects to our relay's local socket, and
    # its kernel routes (the source address it picks is h1's).
    assert lab.node("h1").run(source_address, "10.0.0.2").result(30) == "10.0.0.1"


def test_a_program_that_ends_leaves_no_stream_open(relayed):
    lab, relay, keys = relayed
    c = ClientRelay()
    try:
        sc = SyscallClient(c.path(relay.endpoint, keys, "h1.sys"))
        fd = sc.call("socket", 2, 2, 0)
        assert isinstance(fd, int)
        assert relay.stats()["open"] == 1
        sc.close()
        assert wait_for(lambda: relay.stats()["open"] == 0, 5)
        # A name that is no node socket of the machine, or a path out of it: the
        # stream ends at once (the program's node "went away").
        # A Unix socket of the run directory that is not a node's is not opened either.
        other = pysocket.socket(pysocket.AF_UNIX)
        other.bind(os.path.join(lab.sock_dir, "notanode.sys"))
        other.listen(1)
        opened = relay.stats()["opened"]
        for name in ("nope.sys", "../h1.sys", "h1", "notanode.sys"):
            with pytest.raises(NodeUnreachable):
                SyscallClient(c.path(relay.endpoint, keys, name)).call("socket", 2, 2, 0)
        assert relay.stats()["opened"] == opened
        other.close()
    finally:
        c.close()
    assert not os.path.exists(c.dir)


def test_a_relay_refuses_another_labs_key(relayed, capfd):
    lab, relay, _ = relayed
    c = ClientRelay()
    try:
        t0 = time.monotonic()
        with pytest.raises(NodeUnreachable):
            SyscallClient(c.path(relay.endpoint, lab_keys(), "h1.sys")).call("socket", 2, 2, 0)
        assert time.monotonic() - t0 < 8
        # The relay counts the refusal when its socket monitor reports it, on
        # its own thread: that may come a moment after the client gave up.
        deadline = time.monotonic() + 5
        while relay.stats()["auth_failures"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert relay.stats()["auth_failures"] >= 1 and relay.stats()["opened"] == 0
        assert "refused this lab's key" in capfd.readouterr().err
    finally:
        c.close()


def test_a_killed_programs_relay_directory_is_swept():
    import subprocess
    import sys
    import tempfile
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    stale = tempfile.mkdtemp(prefix="emu-relay-%d-" % p.pid)
    c = ClientRelay()                # the next relay made on this host
    try:
        assert not os.path.exists(stale) and os.path.isdir(c.dir)
    finally:
        c.close()
