"""Soak: many labs, many processes on their nodes; nothing may pile up (make soak)."""
import os

import psutil
import pytest

import emu
from tests.client.test_shim import udp_client, udp_echo_server
from tests.integration.conftest import TOPOLOGIES


@pytest.mark.soak
def test_many_labs_and_processes_leave_nothing_behind():
    me = psutil.Process()
    children = {c.pid for c in me.children(recursive=True)}   # e.g. the plugin's reaper
    fds = me.num_fds()
    threads = me.num_threads()
    run_dirs = []
    for _cycle in range(10):
        with emu.launch(TOPOLOGIES / "star4.yaml") as lab:
            run_dirs.append(lab.run_dir)
            server = lab.node("kv").spawn(udp_echo_server, 7000)
            server.wait_ready(30)
            futures = [lab.node(c).run(udp_client, "kv", 7000, 20)
                       for c in ("c1", "c2", "c3") for _ in range(3)]
            for r in emu.wait_all(futures, timeout=120):
                assert r["replies"] == [b"PING %d" % i for i in range(20)]
            assert server.stop() == 9 * 20
            assert lab.node("kv").counters()["snmp"]["Udp"]["InDatagrams"] == 9 * 20
    left = [c for c in me.children(recursive=True) if c.pid not in children]
    assert all(c.status() == psutil.STATUS_ZOMBIE for c in left), left
    assert not any(os.path.exists(d) for d in run_dirs)
    assert me.num_fds() <= fds + 8          # a few lazily opened (zmq context, ...)
    assert me.num_threads() <= threads + 4
