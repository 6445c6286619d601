"""The pytest plugin as a user meets it: inner pytest sessions run by pytester."""
import json
import os
import signal
import time

import psutil
import pytest

from tests.integration.conftest import TOPOLOGIES

pytest_plugins = ["pytester"]

BRIDGE = str(TOPOLOGIES / "veth-bridge.yaml")
# Two hosts on one cable: the smallest lab (two processes).
PAIR = """
name: pair
nodes:
  a: {kind: host, cpus: 1, interfaces: {eth0: {address: 10.9.0.1/24}}}
  b: {kind: host, cpus: 1, interfaces: {eth0: {address: 10.9.0.2/24}}}
links:
  - [a:eth0, b:eth0]
"""


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _gone(records, wait=0.0):
    """True once no recorded process lives and no recorded run directory exists."""
    deadline = time.monotonic() + wait
    while True:
        left = [p for r in records for p in r["pids"] if _alive(p)] + \
               [r["run_dir"] for r in records if os.path.exists(r["run_dir"])]
        if not left or time.monotonic() >= deadline:
            return not left
        time.sleep(0.05)


# The inner tests append what they started to RECORD, then fail in some way.
INNER = """
import json, os, time
import pytest

def record(lab, *procs):
    with open(%(record)r, "a") as f:
        f.write(json.dumps({"run_dir": lab.run_dir, "name": lab.name,
                            "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                            "pids": list(lab.pids().values()) + [p.pid for p in procs]}) + "\\n")

def serve():
    while True:
        time.sleep(0.05)
"""


def test_a_failing_test_reports_each_nodes_counters_and_log_then_tears_down(pytester, tmp_path):
    record = tmp_path / "record"
    pytester.makepyfile(test_inner=INNER % {"record": str(record)} + """
@pytest.mark.topology(%(bridge)r)
def test_fails(lab):
    server = lab.node("h2").spawn(serve)
    record(lab, server)
    assert lab.node("h1").ping("h2", count=2, interval=0.05).received == 2
    assert lab.node("h2").counters()["snmp"]["Icmp"]["InEchos"] == 99

def test_lab_needs_a_marker(lab):
    pass

def test_topology_not_found(emu_lab):
    emu_lab("no-such.yaml")
""" % {"bridge": BRIDGE})
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2, errors=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*- emu lab veth-bridge* -*",
        "lab veth-bridge*, run dir *",
        "h2 (host, pid *)",
        "  Icmp: InMsgs=2 InEchos=2 OutMsgs=2 OutEchoReps=2*",
        "  dev eth0: rx_packets=*",
        "  drops: *",
        "  log (last * lines):",
        "*booted: kind=host*",
    ])
    assert "serve on h2 (pid" in out
    assert "the `lab` fixture needs @pytest.mark.topology" in out
    assert "topology no-such.yaml not found" in out
    records = _records(record)
    assert len(records) == 1 and _gone(records)      # torn down before the session ended


def test_a_timed_out_test_still_tears_down_with_the_signal_method(pytester, tmp_path):
    record = tmp_path / "record"
    pytester.makepyfile(test_inner=INNER % {"record": str(record)} + """
def test_hangs(emu_lab):
    lab = emu_lab(%(bridge)r)
    record(lab, lab.node("h1").spawn(serve))
    time.sleep(60)
""" % {"bridge": BRIDGE})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--timeout=8",
                                           "--timeout-method=signal", timeout=60)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Timeout (>8.0s) from pytest-timeout*", "*- emu lab veth-bridge -*"])
    assert _gone(_records(record))


def test_a_process_killed_by_the_thread_timeout_leaves_nothing_behind(pytester, tmp_path):
    # pytest-timeout's thread method ends the process with os._exit(1): no
    # teardown runs. The nodes and processes die with their parent, the
    # reaper removes the run directory.
    record = tmp_path / "record"
    pytester.makepyfile(test_inner=INNER % {"record": str(record)} + """
def test_hangs(emu_lab):
    lab = emu_lab(%(bridge)r)
    record(lab, lab.node("h1").spawn(serve))
    time.sleep(60)
""" % {"bridge": BRIDGE})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--timeout=8",
                                           "--timeout-method=thread", timeout=60)
    assert result.ret != 0 and "Timeout" in result.stdout.str() + result.stderr.str()
    records = _records(record)
    assert len(records) == 1 and _gone(records, wait=10.0)


def test_labs_in_four_xdist_workers_run_at_once_without_colliding(pytester, tmp_path):
    record = tmp_path / "record"
    (tmp_path / "pair.yaml").write_text(PAIR)
    pytester.makepyfile(test_inner=INNER % {"record": str(record)} + """
@pytest.mark.parametrize("i", range(4))
def test_lab(emu_lab, i):
    lab = emu_lab(%(pair)r)
    record(lab)
    # Wait until all four labs are up at the same time.
    deadline = time.monotonic() + 60
    while len(open(%(record)r).read().splitlines()) < 4:
        assert time.monotonic() < deadline, "the four labs never ran at once"
        time.sleep(0.05)
    assert lab.node("a").ping("b", count=i + 1, interval=0.02).received == i + 1
    time.sleep(0.3)     # the others ping meanwhile: none of it may arrive here
    assert lab.node("b").counters()["snmp"]["Icmp"]["InEchos"] == i + 1
""" % {"pair": str(tmp_path / "pair.yaml"), "record": str(record)})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "4", timeout=120)
    result.assert_outcomes(passed=4)
    records = _records(record)
    assert len(records) == 4
    assert len({r["worker"] for r in records}) == 4
    assert len({r["run_dir"] for r in records}) == 4
    assert sorted(r["name"] for r in records) == ["pair.gw%d" % i for i in range(4)]
    assert _gone(records)


def test_teardown_holds_back_sigalrm_until_it_is_done():
    # pytest-timeout's signal method raises from its SIGALRM handler: during
    # a lab's close that would leave half a lab behind.
    from emu.pytest_plugin import _signals_deferred
    fired = []

    def handler(sig, frame):
        fired.append(time.monotonic())
        raise RuntimeError("timeout")
    old = signal.signal(signal.SIGALRM, handler)
    try:
        with pytest.raises(RuntimeError, match="timeout"):
            with _signals_deferred():
                os.kill(os.getpid(), signal.SIGALRM)
                time.sleep(0.05)
                inside = list(fired)
                finished = time.monotonic()
        assert inside == [] and len(fired) == 1 and fired[0] >= finished
        assert signal.getsignal(signal.SIGALRM) is handler
    finally:
        signal.signal(signal.SIGALRM, old)


def test_a_test_whose_lab_lost_a_node_it_did_not_kill_fails_with_its_log(pytester, tmp_path):
    topo = tmp_path / "pair.yaml"
    topo.write_text(PAIR)
    pytester.makepyfile(test_inner="""
import os, signal, time

def test_outside_kill(emu_lab):
    lab = emu_lab(%(topo)r)
    os.kill(lab.node("b").pid, signal.SIGKILL)      # not through the lab: a crash
    deadline = time.monotonic() + 10
    while lab.node("b").state == "running" and time.monotonic() < deadline:
        time.sleep(0.05)

def test_own_kill(emu_lab):
    lab = emu_lab(%(topo)r)
    lab.node("b").kill()                             # the test's own fault: fine
    lab.node("b").start()
    assert lab.node("a").ping("b", count=1, timeout=3).received == 1
""" % {"topo": str(topo)})
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "*emu lab pair lost node b (SIGKILL), which the test did not kill; its log ends:",
        "*booted: kind=host*",
    ])


def test_a_failing_virtual_time_test_prints_its_seed_and_the_replay_command(pytester):
    pytester.makepyfile(test_vt="""
import pytest

@pytest.mark.topology(%(bridge)r, clock="virtual", seed=77)
def test_fails(lab):
    assert lab.clock == "virtual"
    assert False, "boom"

def test_seed_from_the_command_line(emu_lab):
    lab = emu_lab(%(bridge)r, clock="virtual", seed=1)
    assert lab.seed == 5                    # --emu-seed wins over the marker's
""" % {"bridge": BRIDGE})
    result = pytester.runpytest("-p", "no:cacheprovider", "--emu-seed", "5")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "*- emu replay -*",
        "lab veth-bridge* ran on virtual time, seed 5: replay with",
        "  pytest 'test_vt.py::test_fails' --emu-clock virtual --emu-seed 5",
    ])
