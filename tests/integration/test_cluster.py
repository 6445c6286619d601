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
        t = threading.Thread(target=trace_main, args=(inner.state("running"), ["-t", "3", "icmp"]),
                             kwargs={"rows": rows, "out": lambda *_: None, "stop": stop})
        t.start()
        time.sleep(0.5)
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


def test_the_pytest_plugin_starts_a_lab_over_the_cluster(cluster, topo, emu_lab):
    lab = emu_lab(topo, cluster=cluster.address)
    assert len({i["machine"] for i in lab._lab.nodes.values()}) == 2
    assert lab.node("h1").ping("h4", count=1).received == 1
