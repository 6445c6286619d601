"""The emu command as a user runs it: up -d, status, exec, down, bad files."""
import os
import re
import signal
import subprocess
import sys
import time

import psutil

from tests.integration.conftest import ROOT, TOPOLOGIES, cli_env


def emu(*args, timeout=60, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "emu", *args], capture_output=True, text=True,
                          timeout=timeout, env=env or cli_env(), cwd=ROOT, **kw)


def _own_base(tmp_path):
    # Each test its own run base: `emu status`/`down` see only this test's labs.
    base = "/tmp/emu-t-%d-%s" % (os.getpid(), tmp_path.name[-12:])
    env = cli_env()
    env["EMU_RUN_BASE"] = base
    return base, env


def _lab_pids(base):
    import json
    out = {}
    for d in os.listdir(base):
        with open(os.path.join(base, d, "lab.json")) as f:
            st = json.load(f)
        out[d] = st
    return out


def test_up_detached_status_exec_down(tmp_path):
    base, env = _own_base(tmp_path)
    r = emu("up", "-d", str(TOPOLOGIES / "veth-bridge.yaml"), env=env)
    assert r.returncode == 0, r.stderr
    try:
        labs = _lab_pids(base)
        assert len(labs) == 1
        st = next(iter(labs.values()))
        r = emu("status", env=env)
        assert r.returncode == 0
        for name in ("h1", "h2", "br0"):
            assert re.search(r"^\s+%s\s+\w+\s+%d\s+\w+" % (name, st["nodes"][name]["pid"]), r.stdout, re.M), r.stdout
        r = emu("exec", "h1", "--", "ping", "-c", "3", "-i", "0.1", "h2", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == "PING h2 (10.0.0.2) 56(84) bytes of data."
        for i, seq in enumerate((1, 2, 3), start=1):
            assert re.fullmatch(r"64 bytes from 10\.0\.0\.2: icmp_seq=%d ttl=64 time=\d+\.\d+ ms" % seq, lines[i])
        assert lines[5] == "--- h2 ping statistics ---"
        assert re.fullmatch(r"3 packets transmitted, 3 received, 0% packet loss, time \d+ms", lines[6])
        assert re.fullmatch(r"rtt min/avg/max/mdev = [\d.]+/[\d.]+/[\d.]+/[\d.]+ ms", lines[7])
        r = emu("exec", "h2", "--", "ping", "-c", "1", "10.0.0.77", "-W", "0.3", env=env)
        assert r.returncode == 1 and "1 packets transmitted, 0 received" in r.stdout
        r = emu("exec", "h1", "--", "ip", "addr", env=env)
        assert "inet 10.0.0.1/24 brd 10.0.0.255 scope global eth0" in r.stdout
        # `emu exec ... | head` whose reader has gone: ended by SIGPIPE as the real
        # tool is, with nothing on stderr (it said "RTNETLINK answers: Broken pipe").
        for cmd in (["ip", "-s", "link"], ["cat", "/proc/net/snmp"], ["nstat", "-a"]):
            p = subprocess.Popen([sys.executable, "-m", "emu", "exec", "h1", "--", *cmd],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
            p.stdout.close()                  # the reader is gone before the first line
            err = p.stderr.read().decode()
            assert p.wait(30) == -signal.SIGPIPE and err == "", (cmd, p.returncode, err)
    finally:
        r = emu("down", env=env)
    assert r.returncode == 0, r.stderr
    assert not any(psutil.pid_exists(n["pid"]) for n in st["nodes"].values())
    assert not os.path.exists(st["run_dir"])


def test_foreground_up_tears_down_on_ctrl_c(tmp_path):
    base, env = _own_base(tmp_path)
    p = subprocess.Popen([sys.executable, "-m", "emu", "up", str(TOPOLOGIES / "veth-bridge.yaml")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        line = ""
        while "press Ctrl-C" not in line:
            line = p.stdout.readline()
            assert line, p.stderr.read()
        st = next(iter(_lab_pids(base).values()))
        pids = [n["pid"] for n in st["nodes"].values()]
        assert all(psutil.pid_exists(x) for x in pids)
        p.send_signal(signal.SIGINT)
        assert p.wait(15) == 0
    finally:
        if p.poll() is None:
            p.kill()
    assert not any(psutil.pid_exists(x) for x in pids)
    assert not os.path.exists(st["run_dir"])


def test_nodes_die_when_the_orchestrator_is_killed(tmp_path):
    base, env = _own_base(tmp_path)
    r = emu("up", "-d", str(TOPOLOGIES / "veth-bridge.yaml"), env=env)
    assert r.returncode == 0, r.stderr
    st = next(iter(_lab_pids(base).values()))
    pids = [n["pid"] for n in st["nodes"].values()]
    os.kill(st["orchestrator_pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(x) for x in pids):
        time.sleep(0.05)
    assert not any(_alive(x) for x in pids)
    # `emu down` cleans up what the dead orchestrator left behind.
    r = emu("down", env=env)
    assert r.returncode == 0
    assert not os.path.exists(st["run_dir"])


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_bad_topology_files_fail_with_one_line(tmp_path):
    cases = {
        "unknown-node.yaml": ("nodes:\n  h1: {kind: host}\nlinks:\n  - [h1:eth0, br9:p1]\n", ["br9", "link"]),
        "dup-addr.yaml": ("nodes:\n  h1: {kind: host, interfaces: {eth0: {address: 10.0.0.1/24}}}\n"
                          "  h2: {kind: host, interfaces: {eth0: {address: 10.0.0.1/24}}}\n", ["10.0.0.1"]),
        "missing-kind.yaml": ("nodes:\n  h1: {cpus: 2}\n", ["h1", "kind"]),
        "bad-yaml.yaml": ("nodes: [\n  h1: {kind: host\n", ["line"]),
    }
    for fname, (text, words) in cases.items():
        path = tmp_path / fname
        path.write_text(text)
        r = emu("up", str(path), timeout=30)
        assert r.returncode == 1
        err = r.stderr.strip()
        assert len(err.splitlines()) == 1, err
        assert fname in err
        for w in words:
            assert w in err, (w, err)


def test_up_detached_starts_its_orchestrator_early_and_lets_it_go_on_an_error(tmp_path):
    """`emu up -d` starts the orchestrator before it has checked anything
    (labd.early_start, held until the CLI says go): a refused start (a bad
    file, a name in use) leaves no process behind, a good one uses it."""
    base, env = _own_base(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: x\n")
    r = emu("up", "-d", str(bad), env=env)
    assert r.returncode == 1 and "bad.yaml" in r.stderr
    r = emu("up", "-d", "--name", "early", str(TOPOLOGIES / "veth-bridge.yaml"), env=env)
    assert r.returncode == 0, r.stderr
    try:
        (st,) = _lab_pids(base).values()
        assert "--hold" in st["orchestrator_cmdline"]          # the early one was used
        r = emu("up", "-d", "--name=early", str(TOPOLOGIES / "veth-bridge.yaml"), env=env)
        assert r.returncode == 1 and "already running" in r.stderr
        orch = psutil.Process(st["orchestrator_pid"])
        lab = {orch.pid} | {p.pid for p in orch.children(recursive=True)}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            mine = [p for p in psutil.process_iter(["cmdline"])
                    if "emu.labd" in (p.info["cmdline"] or [])
                    and base in (p.info["cmdline"] or []) and p.pid not in lab
                    and p.status() != psutil.STATUS_ZOMBIE]
            if not mine:
                break
            time.sleep(0.1)
        assert mine == [], mine
    finally:
        emu("down", "--all", "-y", env=env)
