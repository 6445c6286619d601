"""Faults on demand across real node processes: cut cables, partitions, node
crash and restart, supervision, fault schedules (emu/supervisor.py, emu/faults.py)."""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import emu
from emu.client.tools.ip import _flags

from .conftest import TOPOLOGIES, cli_env

AF_INET, SOCK_STREAM, SOCK_DGRAM = 2, 1, 2


def wait_for(pred, timeout=20.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def link_flags(node, dev):
    return _flags([r for r in node.links(stats=False) if r["name"] == dev][0])


@pytest.fixture
def run_base():
    base = tempfile.mkdtemp(prefix="emu-f", dir="/tmp")
    os.chmod(base, 0o700)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def topo_with(tmp_path, src, extra):
    """A copy of topologies/src with extra YAML appended (restart policies, faults)."""
    text = (TOPOLOGIES / src).read_text()
    for node, line in extra.get("nodes", {}).items():
        text = text.replace("  %s:\n" % node, "  %s:\n    %s\n" % (node, line), 1)
    text += extra.get("tail", "")
    path = tmp_path / src
    path.write_text(text)
    return path


def test_tcp_transfer_survives_a_cut_cable_byte_exact(bridge_lab):
    h1, h2 = bridge_lab.node("h1"), bridge_lab.node("h2")
    data = os.urandom(20 * 1024 * 1024)
    srv = h2.socket(AF_INET, SOCK_STREAM)
    srv.bind(("0.0.0.0", 9100))
    srv.listen(1)
    srv.settimeout(10)
    got = bytearray()
    done = threading.Event()

    def receive():
        conn, _ = srv.accept()
        conn.settimeout(60)
        while len(got) < len(data):
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            got.extend(chunk)
        conn.close()
        done.set()

    rx = threading.Thread(target=receive, daemon=True)
    rx.start()
    cli = h1.socket(AF_INET, SOCK_STREAM)
    cli.settimeout(120)
    cli.connect(("10.0.0.2", 9100))
    tx = threading.Thread(target=cli.sendall, args=(data,), daemon=True)
    tx.start()
    assert wait_for(lambda: len(got) > 512 * 1024)
    bridge_lab.link_down("h1:eth0")
    assert len(got) < len(data), "the transfer ended before the cut: make it bigger"
    # Both ends of the cable: administratively UP, no carrier.
    assert link_flags(h1, "eth0").startswith("<NO-CARRIER,")
    assert link_flags(bridge_lab.node("br0"), "p1").startswith("<NO-CARRIER,")
    assert [r for r in h1.links() if r["name"] == "eth0"][0]["operstate"] == "LOWERLAYERDOWN"
    time.sleep(2.0)
    stalled = len(got)
    bridge_lab.link_up("h1:eth0")
    assert "NO-CARRIER" not in link_flags(h1, "eth0")
    assert done.wait(120), "transfer did not finish after link up (%d of %d)" % (len(got), len(data))
    tx.join(10)
    cli.close()
    srv.close()
    assert stalled < len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_partition_cuts_between_groups_and_heal_lets_a_retrying_client_through():
    with emu.launch(TOPOLOGIES / "star4.yaml") as lab:
        c1, c2, c3, kv = (lab.node(n) for n in ("c1", "c2", "c3", "kv"))
        # A UDP echo server on kv.
        srv = kv.socket(AF_INET, SOCK_DGRAM)
        srv.bind(("0.0.0.0", 9200))
        srv.settimeout(0.5)
        stop = threading.Event()

        def echo():
            while not stop.is_set():
                try:
                    msg, addr = srv.recvfrom(2048)
                except TimeoutError:
                    continue
                srv.sendto(msg, addr)

        threading.Thread(target=echo, daemon=True).start()
        with lab.partition(["c1", "c2"], ["c3", "kv"]):
            assert c1.ping("c3", count=2, interval=0.2, timeout=1).received == 0
            assert c3.ping("c1", count=2, interval=0.2, timeout=1).received == 0
            assert c1.ping("c2", count=2, interval=0.2, timeout=2).received == 2
            assert c3.ping("kv", count=2, interval=0.2, timeout=2).received == 2
            # No carrier change: the kernels see only loss.
            assert "NO-CARRIER" not in link_flags(c1, "eth0")
            result = {}
            cli = c1.socket(AF_INET, SOCK_DGRAM)
            cli.settimeout(0.3)

            def client():
                for attempt in range(200):
                    cli.sendto(b"hello %d" % attempt, ("10.0.1.10", 9200))
                    try:
                        result["reply"] = cli.recvfrom(2048)[0]
                        result["attempt"] = attempt
                        return
                    except TimeoutError:
                        pass

            t = threading.Thread(target=client, daemon=True)
            t.start()
            time.sleep(1.5)
            assert "reply" not in result
        t.join(30)
        stop.set()
        assert result.get("reply", b"").startswith(b"hello") and result["attempt"] >= 3
        assert c1.ping("c3", count=2, interval=0.2, timeout=2).received == 2
        # One way: c1's frames to kv vanish, kv's to c1 arrive.
        with lab.partition(["c1"], ["kv"], one_way=True):
            rx = c1.socket(AF_INET, SOCK_DGRAM)
            rx.bind(("0.0.0.0", 9201))
            rx.settimeout(3)
            kv_tx = kv.socket(AF_INET, SOCK_DGRAM)
            kv_tx.sendto(b"down the one-way street", ("10.0.1.1", 9201))
            assert rx.recvfrom(100)[0] == b"down the one-way street"
            cli2 = c1.socket(AF_INET, SOCK_DGRAM)
            cli2.settimeout(1.5)
            cli2.sendto(b"lost", ("10.0.1.10", 9200))
            with pytest.raises(TimeoutError):
                cli2.recvfrom(100)
        assert "partition c1 | kv (one way" in "\n".join(lab.fault_log())


def test_restart_gives_a_fresh_kernel_with_the_configured_state():
    with emu.launch(TOPOLOGIES / "two-subnets.yaml") as lab:
        h1, h2 = lab.node("h1"), lab.node("h2")
        srv = h2.socket(AF_INET, SOCK_STREAM)
        srv.bind(("0.0.0.0", 9300))
        srv.listen(2)
        srv.settimeout(10)
        old = h1.socket(AF_INET, SOCK_STREAM)
        old.settimeout(10)
        old.connect(("10.0.2.10", 9300))
        conn, _ = srv.accept()
        conn.settimeout(30)
        old.sendall(b"before")
        assert conn.recv(10) == b"before"
        assert h2.neigh()
        h2.kill()
        # The node's sockets held here fail at once, they do not hang.
        t0 = time.monotonic()
        with pytest.raises(OSError):
            conn.recv(10)
        assert time.monotonic() - t0 < 5
        with pytest.raises(OSError, match="not running"):
            h2.routes()
        # The peer's end lost its carrier while h2 is down.
        assert link_flags(lab.node("r1"), "eth1").startswith("<NO-CARRIER,")
        h2.start()
        assert h2.state == "running"
        assert [n for n in h2.neigh() if n.get("state") not in ("NOARP", "PERMANENT")] == []
        assert any(r["dst"] == "default" and r.get("via") == "10.0.2.1" for r in h2.routes())
        assert "NO-CARRIER" not in link_flags(lab.node("r1"), "eth1")
        assert h1.ping("h2", count=3, interval=0.2, timeout=3).received >= 2
        srv2 = h2.socket(AF_INET, SOCK_STREAM)
        srv2.bind(("0.0.0.0", 9300))
        srv2.listen(2)
        srv2.settimeout(10)
        new = h1.socket(AF_INET, SOCK_STREAM)
        new.settimeout(10)
        new.connect(("10.0.2.10", 9300))
        c, _ = srv2.accept()
        new.sendall(b"after")
        assert c.recv(10) == b"after"
        # The connection from before the reboot: h2 no longer knows it, and answers RST.
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            old.sendall(b"anyone there?")
            old.recv(10)
            old.sendall(b"anyone there?")


def test_crash_is_noticed_recorded_and_restarted_by_policy(tmp_path, run_base):
    topo = topo_with(tmp_path, "veth-bridge.yaml", {"nodes": {"h2": "restart: on-failure"}})
    with emu.launch(topo, base=run_base) as lab:
        h1, h2 = lab.node("h1"), lab.node("h2")
        env = dict(cli_env(), EMU_RUN_BASE=run_base)
        # h1 (restart: no) dies by an outside SIGKILL: noticed, shown, answered in one line.
        os.kill(h1.pid, signal.SIGKILL)
        assert wait_for(lambda: h1.state == "crashed", 5)
        status = subprocess.run([sys.executable, "-m", "emu", "status"], env=env,
                                capture_output=True, text=True, timeout=60).stdout
        assert "crashed (SIGKILL)" in status
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "emu", "exec", "h1", "--", "ip", "addr"],
                           env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert r.stderr.strip() == ("emu: h1 is not running (killed by SIGKILL %s); "
                                    "start it with: emu node start h1"
                                    % r.stderr.split("SIGKILL ")[1].split(")")[0])
        assert time.monotonic() - t0 < 10
        assert [n for n, _ in lab.lost_nodes()] == ["h1"]
        # h2 (restart: on-failure) comes back by itself.
        pid = h2.pid
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: h2.state == "running" and h2.pid != pid, 30)
        h1.start()
        assert h1.ping("h2", count=2, interval=0.2, timeout=3).received >= 1
        log = "\n".join(lab.fault_log())
        assert "node h2 crashed (SIGKILL)" in log and "restart policy on-failure" in log


@pytest.mark.real_time("waits on the host's clock for a schedule no program drives")
def test_scheduled_kill_with_restart_after_holds_the_restart_policy(tmp_path, run_base):
    # h2 has `restart: always`, but the schedule says when it comes back: it
    # stays down for restart_after, not the policy's immediate restart.
    topo = topo_with(tmp_path, "veth-bridge.yaml", {
        "nodes": {"h2": "restart: always"},
        "tail": "faults:\n  - {at: 0.5s, kill: h2, restart_after: 2s}\n"})
    with emu.launch(topo, base=run_base) as lab:
        h2 = lab.node("h2")
        pid = h2.pid
        assert wait_for(lambda: h2.state != "running", 10)
        t_down = time.monotonic()
        time.sleep(1.0)
        assert h2.state == "killed", h2.state        # the policy did not bring it back
        assert wait_for(lambda: h2.state == "running" and h2.pid != pid, 20)
        assert time.monotonic() - t_down >= 1.2
        sched = lab._sup.schedules[0]
        assert sched.wait(10)
        assert all("failed" not in text for _, _, text in sched.record), sched.record
        assert not any("restart policy always" in line for line in lab.fault_log())
        assert lab.node("h1").ping("h2", count=2, interval=0.2, timeout=3).received >= 1


@pytest.mark.real_time("waits on the host's clock for a schedule no program drives")
def test_fault_schedule_runs_each_event_at_its_time(tmp_path):
    topo = topo_with(tmp_path, "veth-bridge.yaml", {"tail": (
        "faults:\n"
        "  - {at: 1s, link_down: h1:eth0, for: 1s}\n"
        "  - {at: 2.5s, kill: h2, restart_after: 1s}\n"
        "  - {at: 5s, partition: [[h1], [h2]], for: 1s}\n")})
    with emu.launch(topo) as lab:
        sched = lab._sup.schedules[0]
        assert sched.wait(60)
        planned = [p for p, _, _ in sched.record]
        assert planned == [1.0, 2.0, 2.5, 3.5, 5.0, 6.0]
        assert all(0 <= actual - p < 2.0 for p, actual, _ in sched.record), sched.record
        log = lab.fault_log()
        for text in ("link h1:eth0 <-> br0:p1 down", "link h1:eth0 <-> br0:p1 up",
                     "node h2 killed (SIGKILL)", "node h2 started", "partition h1 | h2", "heal"):
            assert any(text in line for line in log), (text, log)
        assert lab.node("h1").ping("h2", count=2, interval=0.2, timeout=3).received >= 1
