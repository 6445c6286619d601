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
    os.kill(st["orchestrator_pid"], signal.SIGKILL)
    assert _gone(pids, 10) == []
    r = subprocess.run([sys.executable, "-m", "emu", "down"], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(st["run_dir"])
