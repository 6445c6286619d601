"""The KV store on a lab: three clients at once, then a partition.

Run from the repository root:  pytest -n 4 examples/kv
"""
import socket
import time

import pytest

import emu
from kvstore import KVClient, KVUnavailable, serve

pytestmark = pytest.mark.topology("topologies/star4.yaml")   # kv, c1, c2, c3 on br0


# -- what the clients do (module level: functions go to the nodes by reference)

def write_then_read(n):
    """Put n keys of our own, read them back; return what we read."""
    me = socket.gethostname()
    kv = KVClient("kv")
    for i in range(n):
        kv.put("%s/%d" % (me, i), i * i)
    return {key: kv.get(key) for key in ("%s/%d" % (me, i) for i in range(n))}


def read_all():
    kv = KVClient("kv")
    return {key: kv.get(key) for key in kv.keys()}


def keep_asking(period=0.05):
    """Ask every period until stopped; return (start, end, outcome) of every request."""
    kv = KVClient("kv", timeout=0.05, retries=2)     # gives up after 0.35 s
    seen = []
    try:
        while True:
            start = time.monotonic()
            try:
                kv.put(socket.gethostname(), start)
                outcome = "ok"
            except KVUnavailable:
                outcome = "unavailable"
            seen.append((start, time.monotonic(), outcome))
            time.sleep(period)
    except emu.Stopped:
        return seen


# -- the tests

def test_three_clients_share_one_store(lab):
    server = lab.node("kv").spawn(serve, 7000)
    server.wait_ready()
    clients = [lab.node(c).run(write_then_read, 10) for c in ("c1", "c2", "c3")]
    for c, got in zip(("c1", "c2", "c3"), emu.wait_all(clients, timeout=60)):
        assert got == {"%s/%d" % (c, i): i * i for i in range(10)}
    assert len(lab.node("c1").run(read_all).result(30)) == 30     # everyone's keys
    stats = server.stop()
    # What the kernel counted is what the server saw: nothing lost on the way in.
    udp = lab.node("kv").counters()["snmp"]["Udp"]
    assert udp["InDatagrams"] == stats["requests"] > 60
    assert udp["InErrors"] == udp["RcvbufErrors"] == 0
    # The bridge learned one MAC on each of its four ports.
    learned = [r["dev"] for r in lab.node("br0").fdb() if not r["is_local"]]
    assert sorted(learned) == ["p1", "p2", "p3", "p4"]


def test_a_partitioned_client_sees_timeouts_then_recovers(lab):
    server = lab.node("kv").spawn(serve, 7000)
    server.wait_ready()
    c1, c3 = (lab.node(c).spawn(keep_asking) for c in ("c1", "c3"))
    time.sleep(0.5)
    cut = time.monotonic()
    lab.link_down("c3:eth0")          # c3's cable: nothing passes either way
    time.sleep(1.0)
    healed = time.monotonic()
    lab.link_up("c3:eth0")
    time.sleep(0.6)
    seen1, seen3 = c1.stop(), c3.stop()
    server.stop()

    # c1 never noticed.
    assert {outcome for _, _, outcome in seen1} == {"ok"}
    # c3: answers before the cut, none during it, answers again after.
    assert any(o == "ok" and end < cut for _, end, o in seen3)
    failed = [(start, end) for start, end, o in seen3 if o == "unavailable"]
    assert failed, "no request failed during a 1 s partition"
    assert all(cut - 0.4 < start < healed for start, _ in failed)  # only while cut
    assert all(o == "ok" for start, _, o in seen3 if start > healed)
    assert any(start > healed for start, _, _ in seen3)
    # The kernel saw the cut: c3 sent into a cable that carried nothing.
    assert lab.node("c3").counters()["dev"]["eth0"]["tx_dropped"] > 0
