"""Labs over a Ray cluster (emu/cluster.py): a local cluster of two Ray nodes
on this host ("machines"), the lab split over them, wires across the cut over
tcp:// with CURVE. Skipped without Ray (`make test-cluster` installs it)."""
import os
import signal
import threading
import time

import psutil
import pytest

ray = pytest.importorskip("ray")

import emu  # noqa: E402

from .conftest import transfer_bytes as transfer  # noqa: E402
from .test_faults import wait_for  # noqa: E402

AF_INET, SOCK_STREAM = 2, 1

TOPO = """name: twosites
nodes:
  h1: {kind: host, interfaces: {eth0: {address: 10.0.1.1/24}}, routes: [{dst: default, via: 10.0.1.254}]}
  h2: {kind: host, interfaces: {eth0: {address: 10.0.1.2/24}}, routes: [{dst: default, via: 10.0.1.254}]}
  h3: {kind: host, interfaces: {eth0: {address: 10.0.2.1/24}}, routes: [{dst: default, via: 10.0.2.254}]}
  h4: {kind: host, interfaces: {eth0: {address: 10.0.2.2/24}}, routes: [{dst: default, via: 10.0.2.254}]}
  br1: {kind: bridge}
  br2: {kind: bridge}
  r1: {kind: router, interfaces: {eth0: {address: 10.0.1.254/24}, eth1: {address: 10.0.2.254/24}}}
links:
  - [h1:eth0, br1:p1]
  - [h2:eth0, br1:p2]
  - [r1:eth0, br1:p3]
  - [h3:eth0, br2:p1]
  - [h4:eth0, br2:p2]
  - [r1:eth1, br2:p3]
"""


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {"site_a": 1}, "include_dashboard": False})
    c.add_node(num_cpus=1, resources={"site_b": 1})
    c.wait_for_nodes()
    try:
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


@pytest.fixture
def topo(tmp_path):
    path = tmp_path / "twosites.yaml"
    path.write_text(TOPO)
    return path


def test_a_lab_over_two_machines_pings_and_moves_tcp_across_the_cut(cluster, topo):
    with emu.launch(topo, cluster=cluster.address) as lab:
        inner = lab._lab
        assert len(inner.machines) == 2
        site = inner.placement
        # Each bridge with its hosts on one machine; the router's links are the cut.
        assert site["h1"] == site["h2"] == site["br1"] != site["h3"] == site["h4"] == site["br2"]
        cut = [l for l in inner.topo.links if site[l.a.node] != site[l.b.node]]
        assert len(cut) == 1
        for link in cut:
            for end in link.ends():
                w = lab.node(end.node).call("info")["wires"][end.ifname]
                assert w["transport"] == "tcp" and w["carrier"], (end, w)
        # The control endpoints are CURVE tcp too.
        assert all(i["ctl"].startswith("tcp://") for i in inner.nodes.values())
        for a, b in (("h1", "h3"), ("h4", "h2"), ("h3", "r1"), ("h2", "h4")):
            assert lab.node(a).ping(b, count=2, interval=0.05).received == 2, (a, b)
        assert transfer(lab, "h1", "h3", "10.0.2.1", 9300, 20 * 1024 * 1024)
        # One packet's path across the cut, on one time line (the machines' clock
        # offsets, measured at start, are about 0 on one host).
        assert all(abs(m.clock_offset) < 0.05 for m in inner.machines)
        from emu.client.trace import trace_main
        rows: list = []
        stop = threading.Event()
        started = threading.Event()           # its first line: every node traces
        t = threading.Thread(target=trace_main, args=(inner.state("running"), ["-t", "20", "icmp"]),
                             kwargs={"rows": rows, "out": lambda *_: started.set(), "stop": stop})
        t.start()
        assert started.wait(20)
        lab.node("h1").ping("h3", count=1)
        time.sleep(0.5)
        stop.set()
        t.join(10)
        first = [r for r in rows if r[0] == rows[0][0]] if rows else []
        nodes = [r[1] for r in first]
        assert "h1" in nodes and "r1" in nodes and "br2" in nodes and "h3" in nodes, nodes
        times = [r[3] for r in first]
        assert times == sorted(times) or max(times) - min(times) < 1.0
        actors = [m.info["pid"] for m in inner.machines]
        servers = [m.info["forkserver"] for m in inner.machines]
        dirs = [m.info["run_dir"] for m in inner.machines]
        node_pids = [i["pid"] for i in inner.nodes.values()]
    # Nothing left on any machine: nodes, fork servers, actors, run directories.
    assert wait_for(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                                    for p in node_pids + servers + actors), 20)
    assert not any(os.path.exists(d) for d in dirs)


def test_nodes_killed_on_one_machine_are_crashes_the_lab_reports(cluster, tmp_path):
    topo = tmp_path / "pinned.yaml"         # h1 (and so br1, h2) pinned by a resource label
    topo.write_text(TOPO.replace("  h1: {kind: host,", "  h1: {kind: host, machine: site_b,"))
    with emu.launch(topo, cluster=cluster.address) as lab:
        inner = lab._lab
        assert "site_b" in inner.machines[inner.placement["h1"]].resources
        assert inner.placement["br1"] == inner.placement["h1"] != inner.placement["h3"]
        far = inner.placement["h3"]
        victims = [n for n, k in inner.placement.items() if k == far]
        for n in victims:
            os.kill(inner.nodes[n]["pid"], signal.SIGKILL)
        assert wait_for(lambda: all(lab.node(n).state != "running" for n in victims), 20), \
            {n: lab.node(n).state for n in victims}
        near = [n for n in inner.placement if n not in victims]
        assert all(lab.node(n).state == "running" for n in near)
        # The machine that lost nothing still works.
        assert lab.node("h1").ping("h2", count=1).received == 1
        # Restarted on their machine, they rejoin: the tcp wire across the cut reconnects.
        for n in sorted(victims, key=lambda n: inner.topo.node(n).kind != "bridge"):
            lab.node(n).start()
        assert wait_for(lambda: lab.node("h1").ping("h3", count=1, timeout=1).received == 1, 30)
        assert inner.placement["h3"] == far


def test_the_pytest_plugin_starts_a_lab_over_the_cluster(cluster, topo, emu_lab, monkeypatch):
    lab = emu_lab(topo, cluster=cluster.address)
    assert len({i["machine"] for i in lab._lab.nodes.values()}) == 2
    assert lab.node("h1").ping("h4", count=1).received == 1
    # The same from a host that is not the nodes' (through their machines' relays).
    monkeypatch.setenv("EMU_CLUSTER_REMOTE", "1")
    assert "emu-relay-" in lab.node("h4").sys_endpoint
    assert lab.node("h4").ping("h1", count=1).received == 1


# -------------------------------------------------------------- another host
# EMU_CLUSTER_REMOTE=1 makes every cluster node count as on another host, so
# programs take the path they take from a host that is not the node's machine:
# the syscall relay of its machine (emu/cluster_relay.py), over tcp:// with
# CURVE. The nodes' syscall sockets are never opened directly.


def test_the_python_api_reaches_nodes_of_another_host(cluster, topo, monkeypatch):
    monkeypatch.setenv("EMU_CLUSTER_REMOTE", "1")
    from .test_cluster_relay import source_address
    with emu.launch(topo, cluster=cluster.address) as lab:
        inner = lab._lab
        for name, info in inner.nodes.items():
            path = lab.node(name).sys_endpoint
            assert path != info["sys"] and "emu-relay-" in path, (name, path)
        before = [m.call("relay_stats")["opened"] for m in inner.machines]
        for a, b in (("h1", "h3"), ("h4", "h2")):
            assert lab.node(a).ping(b, count=2, interval=0.05).received == 2, (a, b)
        assert transfer(lab, "h1", "h3", "10.0.2.1", 9301, 4 * 1024 * 1024)
        assert lab.node("h3").run(source_address, "10.0.1.1").result(60) == "10.0.2.1"
        after = [m.call("relay_stats") for m in inner.machines]
        assert all(a["opened"] > b for a, b in zip(after, before, strict=True)), (before, after)
        assert all(a["auth_failures"] == 0 for a in after)
        # What ended closed its streams: the node process's, the transfer's
        # threads'. Left: this process's first connection to each node it used
        # (socket.py keeps one per node as long as the process lives).
        assert wait_for(lambda: sum(m.call("relay_stats")["open"] for m in inner.machines) <= 4,
                        20), [m.call("relay_stats") for m in inner.machines]


def _emu(*args, env, timeout=60, **kw):
    import subprocess
    import sys

    from .conftest import ROOT
    return subprocess.run([sys.executable, "-m", "emu", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT, **kw)


def _popen(*args, env):
    import subprocess
    import sys

    from .conftest import ROOT
    return subprocess.Popen([sys.executable, "-m", "emu", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _wait_line(stream, word, timeout=20.0):
    """Read stream (a pipe) up to the first line that holds word (a thread reads:
    a select on a buffered pipe misses lines already read into its buffer)."""
    import queue
    lines: queue.Queue = queue.Queue()

    def read():
        for line in iter(stream.readline, ""):
            lines.put(line)
            if word in line:
                return
        lines.put(None)
    threading.Thread(target=read, daemon=True).start()
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if word in line:
            return seen
    raise AssertionError("no %r within %.0f s: %r" % (word, timeout, seen))


def test_the_cli_on_nodes_of_another_host(cluster, topo, tmp_path):
    import json

    from .conftest import cli_env
    base = "/tmp/emu-tc-%d-%s" % (os.getpid(), tmp_path.name[-8:])
    env = cli_env()
    env.update({"EMU_RUN_BASE": base, "EMU_CLUSTER_REMOTE": "1"})
    r = _emu("up", "-d", "--cluster", cluster.address, str(topo), env=env, timeout=180)
    assert r.returncode == 0, r.stderr
    try:
        (run,) = [d for d in os.listdir(base) if os.path.exists(os.path.join(base, d, "lab.json"))]
        with open(os.path.join(base, run, "lab.json")) as f:
            st = json.load(f)
        assert len({i["machine"] for i in st["nodes"].values()}) == 2
        assert all(i["relay"].startswith("tcp://") and i["machine_token"]
                   for i in st["nodes"].values())
        # A program's syscall socket is this host's relay, not the machine's path,
        # and its kernel is the node's (its source address is h3's).
        code = ("import json, os, socket; print(json.loads(os.environ['EMU_SHIM'])['sys']); "
                "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(('10.0.1.1', 9)); "
                "print(s.getsockname()[0])")
        r = _emu("exec", "h3", "--", "python", "-c", code, env=env)
        assert r.returncode == 0, r.stderr
        path, addr = r.stdout.split()
        assert "emu-relay-" in path and not path.startswith(os.path.dirname(st["nodes"]["h3"]["sys"]))
        assert addr == "10.0.2.1"
        # Output and exit statuses as on one machine.
        r = _emu("exec", "h1", "--", "ping", "-c", "2", "-i", "0.2", "h4", env=env)
        assert r.returncode == 0 and "2 received" in r.stdout, (r.stdout, r.stderr)
        r = _emu("exec", "h1", "--", "ping", "-c", "1", "-W", "1", "10.0.2.99", env=env)
        assert r.returncode == 1 and "0 received" in r.stdout, (r.stdout, r.stderr)
        r = _emu("exec", "h2", "--", "python", "-c", "raise SystemExit(3)", env=env)
        assert r.returncode == 3, r.stderr
        r = _emu("exec", "h3", "--", "ip", "-br", "addr", env=env)
        assert r.returncode == 0 and "10.0.2.1/24" in r.stdout, r.stderr
        r = _emu("shell", "h4", env=env, input="ping -c 1 h1\nss -a\nexit 5\n")
        assert r.returncode == 5 and "1 received" in r.stdout, (r.stdout, r.stderr)
        # tcpdump on one machine sees the ping from the other.
        td = _popen("exec", "h3", "--", "tcpdump", "-n", "-c", "2", "icmp", env=env)
        _wait_line(td.stderr, "listening on")
        assert _emu("exec", "h1", "--", "ping", "-c", "1", "h3", env=env).returncode == 0
        out, err = td.communicate(timeout=30)
        assert td.returncode == 0, err
        assert "10.0.1.1 > 10.0.2.1: ICMP echo request" in out, out
        assert "10.0.2.1 > 10.0.1.1: ICMP echo reply" in out, out
        # Ctrl-C: ping prints its summary and exits 0, as the real one.
        p = _popen("exec", "h1", "--", "ping", "-i", "0.2", "h3", env=env)
        _wait_line(p.stdout, "bytes from")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
        assert p.returncode == 0 and "packets transmitted" in out, (p.returncode, out, err)
        # status: every node running (the supervisor's word, no PID read here), its machine shown.
        r = _emu("status", env=env)
        assert r.returncode == 0 and "MACHINE" in r.stdout, r.stdout
        rows = [l.split() for l in r.stdout.splitlines() if l.split()[:1] and l.split()[0] in st["nodes"]]
        assert len(rows) == 7 and all("running" in row for row in rows), r.stdout
        # trace: one packet's path across the machines.
        tr = _popen("trace", "-t", "30", "-c", "1", "icmp", env=env)
        _wait_line(tr.stdout, "tracing")
        assert _emu("exec", "h2", "--", "ping", "-c", "1", "h4", env=env).returncode == 0
        out, err = tr.communicate(timeout=30)
        assert tr.returncode == 0 and all(n in out for n in ("h2", "r1", "h4")), (out, err)
        # netem on a link end, over the control endpoint.
        r = _emu("netem", "set", "r1:eth1", "--delay", "100ms", env=env)
        assert r.returncode == 0, r.stderr
        r = _emu("exec", "h1", "--", "ping", "-c", "2", "-i", "0.2", "h3", env=env)
        rtts = [float(x.split("=")[1]) for x in r.stdout.split() if x.startswith("time=")]
        assert len(rtts) == 2 and min(rtts) >= 100, r.stdout
        assert _emu("netem", "reset", "r1:eth1", env=env).returncode == 0
        # Faults go through the lab's orchestrator and the nodes' control endpoints.
        assert _emu("link", "down", "r1:eth1", env=env).returncode == 0
        assert _emu("exec", "h1", "--", "ping", "-c", "1", "-W", "1", "h3", env=env).returncode == 1
        assert _emu("link", "up", "r1:eth1", env=env).returncode == 0
        assert wait_for(lambda: _emu("exec", "h1", "--", "ping", "-c", "1", "-W", "1", "h3",
                                     env=env).returncode == 0, 20)
        assert _emu("partition", "h1,h2", "h3,h4", env=env).returncode == 0
        assert _emu("exec", "h2", "--", "ping", "-c", "1", "-W", "1", "h4", env=env).returncode == 1
        assert _emu("heal", env=env).returncode == 0
        assert _emu("exec", "h2", "--", "ping", "-c", "1", "-W", "1", "h4", env=env).returncode == 0
        r = _emu("top", "--once", "-j", env=env)
        assert r.returncode == 0 and "h3" in r.stdout, r.stderr
        r = _emu("graph", "--lab", "twosites", "-o", str(tmp_path / "g.json"), env=env)
        assert r.returncode == 0, r.stderr
        g = json.loads((tmp_path / "g.json").read_text())
        assert {n["name"]: n["state"] for n in g["nodes"]} == dict.fromkeys(st["nodes"], "running")
        # A node killed under a program: the program ends, 137, saying so.
        p = _popen("exec", "h4", "--", "ping", "-i", "0.2", "h1", env=env)
        _wait_line(p.stdout, "bytes from")
        assert _emu("node", "kill", "h4", env=env).returncode == 0
        out, err = p.communicate(timeout=30)
        assert p.returncode == 137 and "h4 is not running" in err, (p.returncode, out, err)
        r = _emu("exec", "h4", "--", "ping", "-c", "1", "h1", env=env)
        assert r.returncode != 0 and "not running" in r.stderr, r.stderr
        assert _emu("node", "start", "h4", env=env).returncode == 0
        assert wait_for(lambda: _emu("exec", "h4", "--", "ping", "-c", "1", "-W", "1", "h1",
                                     env=env).returncode == 0, 30)
    finally:
        r = _emu("down", env=env, timeout=120)
        left = os.listdir(base)
        if not left:
            os.rmdir(base)
    assert r.returncode == 0, r.stderr
    assert not left, left             # no run directory, the lab's or a machine's
