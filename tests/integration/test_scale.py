"""Large labs: a 50-node lab starts, passes traffic and stops with nothing left;
an idle node does not wake on a timer; killing the orchestrator leaves no node.

The nodes are forked from the lab's fork server (emu/nodes/forkserver.py).
Timings here are generous: the figures are in bench/scale.py.
"""
import json
import os
import signal
import subprocess
import sys
import time

import psutil

import emu
from tests.integration.conftest import TOPOLOGIES, cli_env


def star(tmp_path, hosts):
    """A star of `hosts` hosts on one bridge, written to a file."""
    lines = ["name: star%d" % hosts, "nodes:", "  br0: {kind: bridge, cpus: 1}"]
    lines += ["  h%d: {kind: host, cpus: 1, interfaces: {eth0: {address: 10.0.0.%d/24}}}"
              % (i, i) for i in range(1, hosts + 1)]
    lines += ["links:"] + ["  - [h%d:eth0, br0:p%d]" % (i, i) for i in range(1, hosts + 1)]
    path = tmp_path / ("star%d.yaml" % hosts)
    path.write_text("\n".join(lines) + "\n")
    return path


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def test_fifty_nodes_start_ping_across_and_stop_with_nothing_left(tmp_path):
    with emu.launch(star(tmp_path, 49), timeout=120) as lab:
        st = lab._lab.state("running")
        pids = [n["pid"] for n in st["nodes"].values()]
        server = st["forkserver"]["pid"]
        assert len(set(pids)) == 50
        # One process per node, each forked from the lab's fork server.
        assert all(psutil.Process(p).ppid() == server for p in pids)
        assert lab.node("h1").ping("h49", count=2, interval=0.05, timeout=10).received == 2
        assert lab.node("h25").ping("h2", count=1, timeout=10).received == 1
        run_dir = lab.run_dir
    assert _gone(pids + [server], 10) == []
    assert not os.path.exists(run_dir)


def _switches(pid):
    """Context switches of every thread of pid: each wake-up is at least one."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def test_an_idle_node_does_not_wake_on_a_timer():
    with emu.launch(TOPOLOGIES / "veth-bridge.yaml") as lab:
        time.sleep(1.0)                     # the boot's gratuitous ARPs are long done
        pids = [lab.node(n).pid for n in ("h1", "h2", "br0")]
        before = {p: _switches(p) for p in pids}
        time.sleep(4.0)
        woke = {p: _switches(p) - before[p] for p in pids}
        assert lab.node("h1").ping("h2", count=1, timeout=10).received == 1   # not dead, idle
    # A thread polling on a timer (the old 0.25 s watchdog, 0.5 s NIC poll,
    # 1 s cpu0 and user loops) would switch 4 to 16 times a second per node.
    assert all(n <= 3 for n in woke.values()), woke


def test_killing_the_orchestrator_of_fifty_nodes_leaves_no_node(tmp_path):
    base = "/tmp/emu-t-%d-%s" % (os.getpid(), tmp_path.name[-12:])
    env = cli_env()
    env["EMU_RUN_BASE"] = base
    r = subprocess.run([sys.executable, "-m", "emu", "up", "-d", str(star(tmp_path, 49))],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stderr
    (d,) = os.listdir(base)
    with open(os.path.join(base, d, "lab.json")) as f:
        st = json.load(f)
    pids = [n["pid"] for n in st["nodes"].values()] + [st["forkserver"]["pid"]]
    assert len(pids) == 51 and all(_alive(p) for p in pids)
    # `emu up -d` forks the fork server from its orchestrator (spawner.prefork):
    # every process of the lab still names the run base (pgrep -f finds them),
    # and the server writes its log in the run dir once it has learnt it.
    for pid in pids + [st["orchestrator_pid"]]:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            assert base.encode() in f.read(), pid
    assert os.path.exists(os.path.join(st["run_dir"], "forkserver.log"))
    # A forked node logs under its own name (it adopts the server's handler).
    with open(st["nodes"]["h7"]["log"]) as f:
        assert " h7 INFO booted: kind=host" in f.read()
    os.kill(st["orchestrator_pid"], signal.SIGKILL)
    assert _gone(pids, 10) == []
    r = subprocess.run([sys.executable, "-m", "emu", "down"], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(st["run_dir"])
    assert not os.path.exists(os.path.dirname(st["nodes"]["h7"]["sys"]))    # the socket dir too


def test_fork_server_answers_bad_requests_and_ends_with_its_lifeline(tmp_path):
    """A bad request is an error line; a node announces itself once; when the
    lifeline's write end closes, the server and its node are gone."""
    import socket
    mine, theirs = socket.socketpair()
    life_r, life_w = os.pipe()
    ready_r, ready_w = os.pipe()
    server = subprocess.Popen(
        [sys.executable, "-m", "emu.nodes.forkserver", "--run-dir", str(tmp_path),
         "--sock", str(theirs.fileno()), "--lifeline", str(life_r), "--ready", str(ready_w),
         "--parent-pid", str(os.getpid())],
        pass_fds=(theirs.fileno(), life_r, ready_w), env=cli_env())
    theirs.close()
    os.close(life_r)
    os.close(ready_w)
    try:
        req = {"name": "n1", "kind": "host", "cpus": 1, "node_id": 1, "seed": 0,
               "log": str(tmp_path / "n1.log")}
        mine.sendall(b"not json\n[1]\n" + json.dumps(req).encode() + b"\n")
        mine.settimeout(60)
        buf = b""
        while buf.count(b"\n") < 3:
            buf += mine.recv(65536)
        replies = [json.loads(x) for x in buf.splitlines()]
        assert [r["op"] for r in replies] == ["error", "error", "spawned"]
        node = replies[2]["pid"]
        assert psutil.Process(node).ppid() == server.pid
        os.set_blocking(ready_r, True)
        assert os.read(ready_r, 64) == b"n1\n"
    finally:
        os.close(life_w)                    # as if the orchestrator died
    assert server.wait(10) == 0
    assert _gone([node], 10) == []


def test_fork_server_warm_up_leaves_one_thread_and_no_context():
    """preload() runs two throwaway nodes (threads, a ZeroMQ context, a wire)
    so that its children share what a first run initialises; the server must
    still be a single thread when it forks."""
    code = ("import os, threading\n"
            "from emu.nodes import forkserver\n"
            "forkserver.preload()\n"
            "print(threading.active_count(), len(os.listdir('/proc/self/task')))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, env=cli_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "1"], r.stdout
    assert "Traceback" not in r.stderr, r.stderr      # the warm-up did not fail (and get skipped)


def test_the_nodes_sockets_are_on_tmpfs_the_nodes_configure_at_boot_and_all_goes_with_the_lab():
    """With the run base on a disk file system, the nodes' sockets and wire
    inboxes are in a socket directory on tmpfs (emu/rundir.py), linked from
    the run directory, and removed with it."""
    from emu import rundir
    with emu.launch(TOPOLOGIES / "veth-bridge.yaml") as lab:
        run, sock = lab.run_dir, lab.sock_dir
        info = lab._lab.nodes["h1"]
        assert rundir._mount_fstype(sock) == "tmpfs" or rundir.tmpfs_root() is None
        assert info["sys"] == os.path.join(sock, "h1.sys") and os.path.exists(info["sys"])
        assert info["ctl"] == "ipc://%s/h1.ctl" % sock
        assert {"w0a", "w0b", "w1a", "w1b"} <= set(os.listdir(sock))
        assert info["log"] == os.path.join(sock, "h1.log") and os.path.exists(info["log"])
        if sock != run:
            assert rundir.sock_dir_of(run) == sock
        # The nodes did the rest as they booted (Lab._boot_ops): br0, forked
        # first, binds its inboxes; the hosts, forked after it, connect to them.
        # Left for the one configuration phase: br0's connects to the hosts.
        # (A virtual-time lab's nodes run their own user loop: all in phases.)
        phases = lab._lab._config_phases()
        assert lab._lab.virtual or \
            [{n: [op for op, _ in reqs] for n, reqs in p.items()} for p in phases] == \
            [{"br0": ["wire_connect", "wire_connect"]}]
        assert lab.node("h1").ping("h2", count=1, timeout=10).received == 1
    assert not os.path.exists(run) and not os.path.exists(sock)


def test_a_node_that_cannot_attach_its_wires_at_boot_fails_the_start(monkeypatch):
    """A forked node binds its ipc wires as it boots (Lab._boot_ops); one
    that fails ends the node, and the start names the node and the op."""
    import pytest

    from emu.orchestrator import Lab, LabError
    real = Lab._boot_ops

    def bad(self, order=None):
        ops, plan = real(self, order)
        ops["h2"][0][1]["kind"] = "nonsense"
        return ops, plan

    monkeypatch.setattr(Lab, "_boot_ops", bad)
    lab = Lab(str(TOPOLOGIES / "veth-bridge.yaml"))
    with pytest.raises(LabError, match=r"^node h2 failed to boot: wire_attach") as e:
        lab.start(timeout=30)
    assert "\n" not in str(e.value) and "Traceback" not in str(e.value)   # one line
    assert not os.path.exists(lab.run_dir) and not os.path.exists(lab.sock_dir)
