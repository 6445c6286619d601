"""wirenic: RSS (Toeplitz), RX rings, interrupts vs NAPI polling, coalescing,
IRQ affinity, hardware checks, ethtool.

Linux: drivers/net/ethernet/intel/ixgbe (the model), the Microsoft RSS
specification (the Toeplitz test vectors)
"""
import socket
import struct

import pytest

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError
from emu.kernel.drivers.wirenic import (
    RSS_TABLES_MICROSOFT, toeplitz_hash, wirenic_hw_irq, wirenic_hw_next_event, wirenic_hw_rx,
    wirenic_rss_hash,
)
from emu.kernel.hdr.virtio_net import VIRTIO_NET_HDR_GSO_TCPV4

from .nic_harness import phys_pair, tcp_frame, udp_frame
from .test_gro import MAC, Rig

TC = rtnetlink.RTNL_OPS


@pytest.mark.parametrize("src,sport,dst,dport,l4,l3", [
    ("66.9.149.187", 2794, "161.142.100.80", 1766, 0x51ccc178, 0x323e8fc2),
    ("199.92.111.2", 14230, "65.69.140.83", 4739, 0xc626b0ea, 0xd718262a),
    ("24.19.198.95", 12898, "12.22.207.184", 38024, 0x5c2b394a, 0xd2d0a5de),
    ("38.27.205.30", 48228, "209.142.163.6", 2217, 0xafc7327f, 0x82989176),
    ("153.39.163.191", 44251, "202.188.127.2", 1303, 0x10e828a2, 0x5d1809c5),
])
def test_toeplitz_matches_the_microsoft_rss_vectors(src, sport, dst, dport, l4, l3):
    addrs = socket.inet_aton(src) + socket.inet_aton(dst)
    assert toeplitz_hash(RSS_TABLES_MICROSOFT, addrs + struct.pack("!HH", sport, dport)) == l4
    assert toeplitz_hash(RSS_TABLES_MICROSOFT, addrs) == l3
    # The NIC hashes TCP and UDP frames the same way (4-tuple), fragments by addresses.
    r = Rig(queues=4)
    f = tcp_frame(MAC, src, dst, sport, dport, 1, b"x" * 10)
    assert wirenic_rss_hash(r.dev.priv, f, 0, len(f)) == (l4, 3)
    f = udp_frame(MAC, src, dst, sport, dport, b"x" * 10)
    assert wirenic_rss_hash(r.dev.priv, f, 0, len(f))[0] == l4


def test_rss_picks_the_queue_through_the_indirection_table():
    r = Rig(queues=4)
    priv = r.dev.priv
    frames = [udp_frame(MAC, "10.0.0.1", "10.0.0.2", 1000 + i, 53, b"q") for i in range(64)]
    queues = [wirenic_hw_rx(r.dev, f) for f in frames]
    for f, q in zip(frames, queues):
        h, _ = wirenic_rss_hash(priv, f, 0, len(f))
        assert q == priv.rss_indir[h & 127]
    assert set(queues) == {0, 1, 2, 3}
    TC["rss_set"](r.net, "eth0", equal=2)                 # ethtool -X eth0 equal 2
    assert {wirenic_hw_rx(r.dev, f) for f in frames} == {0, 1}
    with pytest.raises(KernelError):
        TC["rss_set"](r.net, "eth0", equal=5)


def test_a_full_rx_ring_pauses_the_wire_or_drops():
    r = Rig(queues=1)
    TC["ring_set"](r.net, "eth0", rx=8)
    xon = []
    r.dev.priv.xon = xon.append
    frames = [udp_frame(MAC, "10.0.0.1", "10.0.0.2", 1, 2, b"x", ident=i) for i in range(10)]
    assert [wirenic_hw_rx(r.dev, f) for f in frames] == [0] * 8 + [-2, -2]   # XOFF
    st = TC["ethtool_stats"](r.net, "eth0")
    assert st["tx_flow_control_xoff"] == 1 and st["rx_queue_0_drops"] == 0
    wirenic_hw_irq(r.dev)
    r.run()
    assert xon == [r.dev] and len(r.got) == 8                   # XON after the poll
    assert wirenic_hw_rx(r.dev, frames[8]) == 0
    # ethtool -A eth0 rx off: a full ring drops.
    assert TC["pause_set"](r.net, "eth0", rx=False)["rx"] is False
    r = Rig(queues=1)
    TC["pause_set"](r.net, "eth0", rx=False)
    TC["ring_set"](r.net, "eth0", rx=8)
    r.rx([udp_frame(MAC, "10.0.0.1", "10.0.0.2", 1, 2, b"x", ident=i) for i in range(20)], run=False)
    st = TC["ethtool_stats"](r.net, "eth0")
    assert st["rx_queue_0_drops"] == 12 and st["rx_missed_errors"] == 12
    r.run()
    assert len(r.got) == 8 and TC["ethtool_stats"](r.net, "eth0")["rx_queue_0_packets"] == 8


def test_a_flood_is_polled_not_interrupted_per_frame():
    r = Rig(queues=1)
    frames = [udp_frame(MAC, "10.0.0.1", "10.0.0.2", 1, 2, b"f", ident=i) for i in range(1000)]
    # Frames arrive faster than one NET_RX pass (budget 64) takes them: in
    # batches of 100, each followed by one pass. The IRQ stays masked.
    TC["ring_set"](r.net, "eth0", rx=4096)
    r.net.sysctl["net.core.netdev_budget"] = 64
    from emu.kernel.core.napi import net_rx_action
    sd = r.net.cpus[0]
    for k in range(0, 1000, 100):
        for f in frames[k:k + 100]:
            wirenic_hw_rx(r.dev, f)
        wirenic_hw_irq(r.dev)
        if sd.pending:
            sd.pending = 0
            net_rx_action(sd)
    r.run()
    st = TC["ethtool_stats"](r.net, "eth0")
    assert st["rx_queue_0_packets"] == 1000 and len(r.got) == 1000
    assert st["queue_0_irqs"] == 1 and st["queue_0_polls"] >= 1000 // 64   # polling mode
    assert st["rx_queue_0_drops"] == 0
    # A trickle: one frame at a time, each completes the NAPI: one IRQ each.
    before = st["queue_0_irqs"]
    for i in range(5):
        r.rx([frames[i]])
    assert TC["ethtool_stats"](r.net, "eth0")["queue_0_irqs"] - before == 5


def test_interrupt_coalescing_by_frames_and_by_time():
    r = Rig(queues=1)
    TC["coalesce_set"](r.net, "eth0", rx_usecs=1000, rx_frames=8)
    vec = r.dev.priv.vectors[0]
    f = [udp_frame(MAC, "10.0.0.1", "10.0.0.2", 1, 2, b"c", ident=i) for i in range(20)]
    r.rx(f[:5])
    assert vec.irqs == 0 and r.got == []
    assert wirenic_hw_next_event(r.dev) == pytest.approx(r.clock.now + 0.001)
    r.rx(f[5:8])                                       # the 8th frame: fire
    assert vec.irqs == 1 and len(r.got) == 8
    r.rx(f[8:10])
    assert vec.irqs == 1
    r.clock.advance(0.0011)                            # rx-usecs passed: fire
    r.rx([])
    assert vec.irqs == 2 and len(r.got) == 10


def test_irq_affinity_decides_where_the_poll_runs():
    r = Rig(queues=2, ncpus=4)
    assert [v.irq_cpu for v in r.dev.priv.vectors] == [0, 1]
    rows = TC["queue_set"](r.net, "eth0", queue=0, smp_affinity="c")     # CPUs 2-3: CPU 2
    assert rows[0]["irq_cpu"] == 2
    TC["queue_set"](r.net, "eth0", queue=1, irq_cpu=3)
    r.rx([udp_frame(MAC, "10.0.0.1", "10.0.0.2", 1000 + i, 53, b"a") for i in range(40)])
    st = [sd.softnet_stat()["processed"] for sd in r.net.cpus]
    assert st[0] == st[1] == 0 and st[2] > 0 and st[3] > 0 and sum(st) == 40
    with pytest.raises(KernelError):
        TC["queue_set"](r.net, "eth0", queue=0, irq_cpu=9)


def test_the_hardware_refuses_what_a_cable_cannot_carry():
    r = Rig(queues=1)
    st0 = r.dev.stats
    assert wirenic_hw_rx(r.dev, b"\x01\x02\x03") == -1                       # runt
    assert wirenic_hw_rx(r.dev, MAC + bytes(8) + b"\x08\x00" + bytes(1600)) == -1   # oversize
    f = tcp_frame(MAC, "10.0.0.1", "10.0.0.2", 1, 2, 1, b"x" * 100)
    assert wirenic_hw_rx(r.dev, f, 0, VIRTIO_NET_HDR_GSO_TCPV4, 1000) == -1   # GSO on a phys wire
    assert st0.rx_length_errors == 2 and st0.rx_frame_errors == 1 and st0.rx_errors == 3
    st = TC["ethtool_stats"](r.net, "eth0")
    assert st["rx_oversize"] == 1


def test_ethtool_show_and_features():
    r = Rig(queues=2, ncpus=2)
    info = TC["ethtool_show"](r.net, "eth0")
    assert info["driver"] == "wirenic" and info["channels"]["combined"] == 2
    assert info["rings"]["rx"] == 256 and info["coalesce"]["rx_usecs"] == 0
    assert info["rss"]["hfunc"] == "toeplitz" and len(info["rss"]["indir"]) == 128
    assert info["features"]["rx-gro"] and info["features"]["rx-hashing"]
    assert not info["features"]["tx-tcp-segmentation"] if "tx-tcp-segmentation" in info["features"] else True
    TC["features_set"](r.net, "eth0", rxhash=False)
    r.rx([udp_frame(MAC, "10.0.0.1", "10.0.0.2", 1, 2, b"h")])
    assert r.got[0].hash == 0                                   # no RX hash from the NIC
    with pytest.raises(KernelError):
        TC["features_set"](r.net, "eth0", tso=True)             # fixed off on this NIC
    with pytest.raises(KernelError):
        TC["ring_set"](r.net, "lo", rx=100)                     # not a NIC


def test_tx_checksum_state_goes_on_the_wire():
    lab = phys_pair(ncpus=1, queues=1)
    from .test_gso import gso_skb
    from emu.kernel.core.dev import dev_queue_xmit
    dev = lab.dev("h1", "eth0")
    skb = gso_skb(dev, b"p" * 100)                               # CHECKSUM_PARTIAL, 1 segment
    skb.shinfo.gso_size = 0
    port = lab.port("h1", "eth0")
    n = len(port.sent)
    dev_queue_xmit(skb)
    lab.hw_tx()
    frame, flags, gso_type, gso_size, _ = port.peer.inbox[-1]
    assert flags == 1 and gso_type == 0 and len(port.sent) == n + 1   # NEEDS_CSUM


def test_a_traced_ping_shows_the_nic_napi_gro_rps_path():
    lab = phys_pair(ncpus=2, queues=2)
    from .harness import ping
    ping(lab, "h1", "10.0.0.2", seq=1)                       # ARP out of the way
    net = lab.nets["h2"]
    TC["queue_set"](net, "eth0", rps_cpus="2")               # steer to CPU 1
    for n in ("h1", "h2"):
        TC["trace_start"](lab.nets[n], proto="icmp")
    assert len(ping(lab, "h1", "10.0.0.2", seq=2)) == 1
    rows = TC["trace_dump"](net)
    first = rows[0][0]
    path = [r[4] for r in rows if r[0] == first]
    want = ["wirenic_poll", "napi_gro_receive", "dev_gro_receive",
            "netif_receive_skb_list_internal", "get_rps_cpu", "enqueue_to_backlog",
            "process_backlog", "__netif_receive_skb_core", "ip_rcv"]
    it = iter(path)
    assert all(f in it for f in want), path                  # in this order
    tx = [r[4] for r in TC["trace_dump"](lab.nets["h1"])]
    assert "__dev_xmit_skb" in tx and "wirenic_xmit" in tx
