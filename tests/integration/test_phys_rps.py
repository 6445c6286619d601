"""A phys link with 4 queues between 4-CPU hosts: RSS spreads flows over the
CPUs the queues' IRQs go to, and rps_cpus changed at run time re-steers them.

Frames are pushed into h2's wire inbox as the peer's NIC would send them.
"""
import struct
import time

import pytest
import zmq

import emu
from emu.kernel.hdr.checksum import ip_compute_csum
from emu.wire.zwire import encode_frames

from .conftest import TOPOLOGIES

pytestmark = pytest.mark.real_time("frames pushed into a wire from outside the lab")

NFLOWS = 64
PER_FLOW = 6


def _udp_frame(dst_mac, src_mac, sport, seq, dst_ip=b"\x0a\x00\x01\x63"):
    """UDP 10.0.1.1:sport -> 10.0.1.99:9 (not h2's address: dropped after routing,
    no ICMP reply, so h2 sends nothing back)."""
    payload = struct.pack("!HH", sport, seq) * 8
    udp = struct.pack("!HHHH", sport, 9, 8 + len(payload), 0) + payload
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq, 0x4000, 64, 17, 0,
                               b"\x0a\x00\x01\x01", dst_ip))
    ip[10:12] = ip_compute_csum(ip).to_bytes(2, "big")
    return dst_mac + src_mac + b"\x08\x00" + bytes(ip) + udp


def _push(lab, frames, batch=16):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.LINGER, 5000)
    s.connect("ipc://%s/w0b" % lab.sock_dir)        # link 0 [h1:eth0, h2:eth0]: h2 is end b
    for i in range(0, len(frames), batch):
        s.send(encode_frames(frames[i:i + batch]))
    s.close()


def _processed(node):
    return [s["processed"] for s in node.counters()["softnet_stat"]]


def _wait_rx(node, target, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        c = node.counters()
        if c["dev"]["eth0"]["rx_packets"] >= target and \
                all(s["backlog_len"] == 0 for s in c["softnet_stat"]):
            return c
        time.sleep(0.05)
    raise AssertionError("h2 received %d of %d" % (node.counters()["dev"]["eth0"]["rx_packets"],
                                                   target))


def _phase(lab, h2, mac, src_mac, tag):
    frames = [_udp_frame(mac, src_mac, 20000 + f, tag * 100 + k)
              for k in range(PER_FLOW) for f in range(NFLOWS)]
    before_rx = h2.counters()["dev"]["eth0"]["rx_packets"]
    before = _processed(h2)
    _push(lab, frames)
    c = _wait_rx(h2, before_rx + len(frames))
    after = [s["processed"] for s in c["softnet_stat"]]
    return [a - b for a, b in zip(after, before)], c


def test_rss_spreads_flows_and_rps_follows_rps_cpus():
    with emu.launch(TOPOLOGIES / "phys-pair.yaml") as lab:
        h1, h2 = lab.node("h1"), lab.node("h2")
        assert h1.ping("h2", count=1).received == 1          # ARP settled both ways
        mac = bytes.fromhex(next(l["mac"] for l in h2.links() if l["name"] == "eth0")
                            .replace(":", ""))
        src_mac = bytes.fromhex(next(l["mac"] for l in h1.links() if l["name"] == "eth0")
                                .replace(":", ""))
        n = NFLOWS * PER_FLOW

        # RSS only: every CPU gets the flows of the queue whose IRQ it takes.
        queues = h2.call("queue_show", dev="eth0")
        assert [q["irq_cpu"] for q in queues] == [0, 1, 2, 3]
        delta, c = _phase(lab, h2, mac, src_mac, 1)
        assert sum(delta) >= n and all(d > 0 for d in delta), delta
        st = h2.call("ethtool_stats", dev="eth0")
        assert all(st["rx_queue_%d_packets" % q] > 0 for q in range(4))
        assert st["interrupts"] < st["rx_packets"]            # NAPI polls, not one IRQ each

        # RPS to CPU 3 on every queue (echo 8 > /sys/class/net/eth0/queues/rx-*/rps_cpus).
        rps0 = [s["received_rps"] for s in c["softnet_stat"]]
        rows = h2.call("queue_set", dev="eth0", rps_cpus="8")
        assert [r["rps_cpus"] for r in rows] == ["8"] * 4
        delta, c = _phase(lab, h2, mac, src_mac, 2)
        assert delta[3] >= n and sum(delta[:3]) <= 2, delta
        assert c["softnet_stat"][3]["received_rps"] > rps0[3]

        # Change it again at run time: the spread follows.
        h2.call("queue_set", dev="eth0", rps_cpus="3")      # CPUs 0 and 1
        delta, c = _phase(lab, h2, mac, src_mac, 3)
        assert delta[0] > 0 and delta[1] > 0 and delta[0] + delta[1] >= n, delta
        assert delta[2] + delta[3] <= 2, delta
