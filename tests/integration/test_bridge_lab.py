"""The first lab: h1 and h2 on bridge br0, each a real process."""
import os

import psutil

import emu
from tests.integration.conftest import TOPOLOGIES


def test_ping_both_ways_across_the_bridge(bridge_lab):
    r1 = bridge_lab.node("h1").ping("h2", count=3, interval=0.05)
    r2 = bridge_lab.node("h2").ping("h1", count=3, interval=0.05)
    assert (r1.transmitted, r1.received) == (3, 3)
    assert (r2.transmitted, r2.received) == (3, 3)
    assert [seq for seq, *_ in r1.replies] == [1, 2, 3]
    assert all(ttl == 64 for _, ttl, _, _ in r1.replies)
    # On virtual time a wire and a stack take no time: the RTT is exactly 0.
    assert r1.rtt_stats()[0] > 0 or bridge_lab.clock == "virtual"
    h2 = bridge_lab.node("h2").counters()["snmp"]["Icmp"]
    assert h2["InEchos"] == 3 and h2["OutEchoReps"] == 3 and h2["InEchoReps"] == 3


def test_arp_resolves_and_bridge_learns_then_forwards_without_flooding(bridge_lab):
    h1, h2, br = (bridge_lab.node(n) for n in ("h1", "h2", "br0"))
    assert h1.ping("h2", count=1).received == 1
    neigh = {n["dst"]: n for n in h1.neigh()}
    mac_h2 = next(l["mac"] for l in h2.links() if l["name"] == "eth0")
    mac_h1 = next(l["mac"] for l in h1.links() if l["name"] == "eth0")
    assert neigh["10.0.0.2"]["lladdr"] == mac_h2
    assert neigh["10.0.0.2"]["state"] in ("REACHABLE", "STALE", "DELAY")
    fdb = {r["mac"]: r for r in br.fdb() if not r["is_local"]}
    assert fdb[mac_h1]["dev"] == "p1" and fdb[mac_h2]["dev"] == "p2"
    before = br.counters()["bridge"]["br0"]
    assert h1.ping("h2", count=3, interval=0.05).received == 3
    after = br.counters()["bridge"]["br0"]
    assert after["flooded"] == before["flooded"]          # known unicast: no flooding
    assert after["forwarded"] >= before["forwarded"] + 6  # 3 requests + 3 replies


def test_counters_are_per_device_and_per_cpu(bridge_lab):
    h1 = bridge_lab.node("h1")
    assert h1.ping("h2", count=2, interval=0.05).received == 2
    c = h1.counters()
    assert c["dev"]["eth0"]["tx_packets"] >= 3               # ARP + 2 echoes
    assert c["dev"]["eth0"]["rx_packets"] >= 3
    assert len(c["softnet_stat"]) == 2                       # cpus: 2 in the topology
    assert sum(s["processed"] for s in c["softnet_stat"]) >= 3


def test_lab_processes_and_run_dir_are_gone_after_close():
    lab = emu.launch(TOPOLOGIES / "veth-bridge.yaml")
    pids = list(lab.pids().values())
    run_dir = lab.run_dir
    assert all(psutil.pid_exists(p) for p in pids)
    assert os.path.isdir(run_dir)
    lab.close()
    assert not any(psutil.pid_exists(p) for p in pids)
    assert not os.path.exists(run_dir)


def test_two_labs_of_the_same_topology_do_not_interfere():
    with emu.launch(TOPOLOGIES / "veth-bridge.yaml") as a, \
            emu.launch(TOPOLOGIES / "veth-bridge.yaml") as b:
        assert a.run_dir != b.run_dir
        assert a.node("h1").ping("h2", count=2, interval=0.05).received == 2
        # b saw none of a's traffic
        assert b.node("h2").counters()["snmp"]["Icmp"]["InEchos"] == 0
        assert b.node("h1").ping("h2", count=1).received == 1
        assert a.node("h2").counters()["snmp"]["Icmp"]["InEchos"] == 2


def test_a_fresh_lab_boots_without_drops():
    # Every linked device is up before addresses arrive, so no node counts a
    # frame dropped at a device still down (DEV_READY).
    import time
    with emu.launch(TOPOLOGIES / "star4.yaml") as lab:
        time.sleep(0.5)
        for name in ("br0", "kv", "c1", "c2", "c3"):
            c = lab.node(name).counters()
            assert "DEV_READY" not in c["drop_reasons"], name
            assert all(d["rx_dropped"] == 0 for d in c["dev"].values()), name
