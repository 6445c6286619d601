"""A node never dies of its input: oopses, floods, and labs that trust only what they made."""
import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import zmq

from emu.client.rpc import ControlClient, SyscallClient
from emu.kernel import socket as ksocket
from emu.kernel.hdr.checksum import ip_compute_csum
from emu.nodes.runtime import NodeRuntime
from emu.wire.zwire import encode_frames
from tests.integration.conftest import cli_env


@pytest.fixture
def runtime(tmp_path):
    """A node runtime in this process (so a test can plant a kernel bug in it)."""
    rt = NodeRuntime("n1", "host", 2, str(tmp_path), node_id=1)
    t = threading.Thread(target=rt.run, daemon=True)
    t.start()
    ctl = ControlClient(rt.ctl_endpoint)
    deadline = time.monotonic() + 10
    while not os.path.exists(rt.sys_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield rt, ctl
    try:
        ctl.call("shutdown", timeout=2)
    except OSError:
        pass
    t.join(5)
    ctl.close()
    rt.close()


def test_a_kernel_bug_in_a_syscall_is_an_oops_not_a_dead_node(runtime, monkeypatch):
    rt, ctl = runtime

    def buggy_getsockname(task, fd):
        return {}["no such key"]
    monkeypatch.setitem(ksocket.SYSCALLS, "getsockname", buggy_getsockname)
    sc = SyscallClient(rt.sys_path)
    fd = sc.call("socket", 2, 2, 0)
    with pytest.raises(OSError) as e:
        sc.call("getsockname", fd)
    assert e.value.errno == errno.EIO
    # The node goes on: the same task's next call works, and the oops is counted
    # where `emu status` and the counters read it.
    sc.call("bind", fd, ["127.0.0.1", 0])
    assert ctl.call("info")["oops"] == 1
    rep = ctl.call("oops")
    assert rep["count"] == 1 and "KeyError" in rep["reports"][0]
    assert ctl.call("counters")["oops"] == 1
    # A bad control request names its field and changes nothing.
    with pytest.raises(OSError) as e:
        ctl.call("link_add", name="x0", kind="bridge", port=1)
    assert e.value.errno == errno.EINVAL and "'port'" in e.value.strerror
    assert [l["name"] for l in ctl.call("link_show")] == ["lo"]


def test_garbage_on_the_syscall_socket_ends_only_that_task(runtime):
    rt, ctl = runtime
    g = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    g.connect(rt.sys_path)
    g.sendall(bytes(range(256)) * 16 + b"\xc1" * 64)
    g.settimeout(5)
    # Dropped, as a process that broke its ABI: an end of file, or a reset when
    # the node closed it with garbage still unread (Linux's unix sockets do so).
    try:
        assert g.recv(100) == b""
    except ConnectionResetError:
        pass
    g.close()
    sc = SyscallClient(rt.sys_path)
    assert sc.call("socket", 2, 2, 0) >= 3
    assert ctl.call("info")["oops"] == 0


def _syn(src_ip, dst_ip, sport, dport, dst_mac, src_mac):
    tcp = bytearray(20)
    tcp[0:2] = sport.to_bytes(2, "big")
    tcp[2:4] = dport.to_bytes(2, "big")
    tcp[4:8] = (sport * 7919).to_bytes(4, "big")
    tcp[12] = 5 << 4
    tcp[13] = 0x02
    tcp[14:16] = (64240).to_bytes(2, "big")
    pseudo = bytes(src_ip) + bytes(dst_ip) + b"\x00\x06" + len(tcp).to_bytes(2, "big")
    tcp[16:18] = ip_compute_csum(pseudo + bytes(tcp)).to_bytes(2, "big")
    ip = bytearray(b"\x45\x00" + (40).to_bytes(2, "big") + b"\x00\x01\x40\x00\x40\x06\x00\x00"
                   + bytes(src_ip) + bytes(dst_ip))
    ip[10:12] = ip_compute_csum(ip).to_bytes(2, "big")
    return dst_mac + src_mac + b"\x08\x00" + bytes(ip) + bytes(tcp)


@pytest.mark.real_time("a flood pushed into a wire from outside the lab")
def test_a_wire_flood_is_dropped_at_the_rx_ring(bridge_lab):
    """More frames than the ring holds, as fast as ZeroMQ takes them: the
    excess is counted as rx_missed_errors, and the node still answers."""
    h2 = bridge_lab.node("h2")
    assert h2.call("ring_set", dev="eth0", rx=128)["rx"] == 128
    mac = bytes.fromhex(h2.call("link_show", name="eth0")[0]["mac"].replace(":", ""))
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 2000)
    push.setsockopt(zmq.SNDHWM, 100000)
    link = bridge_lab.link("h2:eth0")
    end = "a" if (link.a.node, link.a.ifname) == ("h2", "eth0") else "b"
    push.connect("ipc://%s/w%d%s" % (bridge_lab.sock_dir, link.index, end))
    frames = [_syn([10, 0, 0, 99], [10, 0, 0, 2], 1024 + i % 60000, 9, mac, b"\x02" * 6)
              for i in range(4000)]
    for i in range(0, len(frames), 1000):       # 4 messages of 1,000 frames each
        push.send(encode_frames(frames[i:i + 1000]))
    push.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        st = h2.call("ethtool_stats", dev="eth0")
        if st["rx_missed_errors"] + st["rx_queue_0_packets"] >= 4000:
            break
        time.sleep(0.1)
    assert st["rx_missed_errors"] > 0
    link_stats = h2.call("link_show", name="eth0", stats=True)[0]["stats"]
    assert link_stats["rx_missed_errors"] == st["rx_missed_errors"]
    assert bridge_lab.node("h1").ping("h2", count=2, interval=0.2).received == 2
    assert h2.call("info")["oops"] == 0


def _emu(*args, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "emu", *args], capture_output=True, text=True,
                          env=env or cli_env(), timeout=timeout)


def test_emu_down_refuses_a_planted_lab_json(tmp_path):
    base = tmp_path / "base"
    base.mkdir(mode=0o700)
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        planted = base / "planted-x"
        planted.mkdir()
        (planted / "lab.json").write_text(json.dumps({
            "name": "planted", "run_dir": str(planted), "status": "running",
            "orchestrator_pid": victim.pid,
            "nodes": {"h1": {"pid": victim.pid, "log": "/dev/null"}}, "hosts": {}}))
        env = dict(cli_env(), EMU_RUN_BASE=str(base))
        r = _emu("down", "--all", env=env)
        time.sleep(0.3)
        assert victim.poll() is None, "emu down killed a process it did not start"
        assert "not a process emu started" in r.stderr
    finally:
        victim.kill()
        victim.wait()


def test_a_run_base_others_can_write_is_refused(tmp_path):
    base = tmp_path / "open"
    base.mkdir()
    os.chmod(base, 0o755)
    r = _emu("status", env=dict(cli_env(), EMU_RUN_BASE=str(base)))
    assert r.returncode == 1
    assert r.stderr.strip().startswith("emu: run base") and "0700" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_random_control_requests_to_a_running_node(runtime):
    """Random ops (the runtime's own included) with random fields over the
    real control endpoint: every one gets a reply, nothing oopses, the node
    still answers."""
    import random
    rt, ctl = runtime
    rng = random.Random(11)
    from emu.kernel.core.rtnetlink import RTNL_OPS
    from emu.nodes.runtime import RUNTIME_POLICY
    ops = sorted(set(RTNL_OPS) | set(RUNTIME_POLICY) - {"shutdown"}) + ["bogus", ""]
    fields = ["name", "dev", "ifname", "up", "mtu", "rx", "tx", "kind", "mac", "peer",
              "queues", "tap", "netns", "spec", "address", "dst", "value", "port"]
    values = ["eth0", "lo", "x" * 20, "ipc:///nonexistent/w", "tcp://10.1.2.3:5", 0, -1,
              70000, True, None, [1, 2], {"groups": [["a"]]}, 1.5, "veth", "02:00:00:00:00:01"]
    for _ in range(400):
        args = {rng.choice(fields): rng.choice(values) for _ in range(rng.randrange(0, 4))}
        try:
            ctl.call(rng.choice(ops), **args)
        except OSError as e:
            assert e.errno != errno.EIO, e           # an error reply, never an oops
    assert ctl.call("info")["oops"] == 0
    assert ctl.call("ping")["name"] == "n1"
