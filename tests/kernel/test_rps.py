"""RPS: flow hashes, rps_cpus, steering to other CPUs' backlogs, per-flow order.

Linux: net/core/dev.c (get_rps_cpu, enqueue_to_backlog, napi_schedule_rps,
rps_trigger_softirq), net/core/flow_dissector.c, net/core/net-sysfs.c
"""
import struct
from collections import defaultdict

import pytest

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError, dev_add_pack
from emu.kernel.core.netdevice import PacketType
from emu.kernel.core.rps import __skb_get_hash, get_rps_cpu, store_rps_map
from emu.kernel.core.skbuff import build_skb_from_frame
from emu.kernel.drivers.veth import veth_forward_skb
from emu.kernel.ethernet.eth import eth_type_trans
from emu.kernel.hdr.if_ether import ETH_P_IP

from .nic_harness import phys_pair, udp_frame
from .test_dev import pair


def catch_ip(net):
    got = []

    def func(skb, dev, pt, orig_dev):
        got.append((dev.net.cur_cpu, skb.payload()))
        return 0
    # Bound to the device: ip_rcv (a wildcard handler) still runs, this records.
    for dev in net.devices():
        dev_add_pack(net, PacketType(ETH_P_IP, func, dev))
    return got


def flow_frames(dst_mac, nflows, per_flow, src="10.0.0.1", dst="10.0.0.2"):
    """per_flow datagrams of nflows flows, interleaved; payload = (flow, seq)."""
    frames = []
    for k in range(per_flow):
        for f in range(nflows):
            frames.append(udp_frame(dst_mac, src, dst, 10000 + f, 9, struct.pack("!HH", f, k) * 8,
                                    ident=k))
    return frames


def flows_of(got):
    """flow -> (cpus seen, sequence numbers in arrival order)."""
    cpus = defaultdict(set)
    seqs = defaultdict(list)
    for cpu, pkt in got:
        f, k = struct.unpack_from("!HH", pkt, 28)
        cpus[f].add(cpu)
        seqs[f].append(k)
    return cpus, seqs


def test_software_hash_is_per_flow_symmetric_and_l4():
    lab = pair()
    dev = lab.dev("b", "eth0")

    def h(frame):
        skb = build_skb_from_frame(frame)
        skb.dev = dev
        skb.protocol = eth_type_trans(skb, dev)
        return __skb_get_hash(skb), skb.l4_hash
    a = h(udp_frame(dev.dev_addr, "10.0.0.1", "10.0.0.2", 1000, 53, b"x"))
    a2 = h(udp_frame(dev.dev_addr, "10.0.0.1", "10.0.0.2", 1000, 53, b"other payload"))
    back = h(udp_frame(dev.dev_addr, "10.0.0.2", "10.0.0.1", 53, 1000, b"y"))
    other = h(udp_frame(dev.dev_addr, "10.0.0.1", "10.0.0.2", 1001, 53, b"x"))
    assert a[0] and a[1] is True
    assert a == a2 == back                      # the flow, both ways (consistentified)
    assert other[0] != a[0]


def test_rps_cpus_masks_parse_and_bad_ones_are_rejected():
    lab = pair(ncpus=4)
    net = lab.nets["b"]
    dev = lab.dev("b", "eth0")
    assert store_rps_map(dev, 0, "a") == (1, 3)
    assert store_rps_map(dev, 0, "00000000,0000000f") == (0, 1, 2, 3)
    assert store_rps_map(dev, 0, "0") == ()
    for bad in ("zz", "10"):                   # not hex; CPU 4 does not exist
        with pytest.raises(KernelError):
            rtnetlink.RTNL_OPS["queue_set"](net, "eth0", queue=0, rps_cpus=bad)
    with pytest.raises(KernelError):
        rtnetlink.RTNL_OPS["queue_set"](net, "eth0", queue=1, rps_cpus="f")  # no rx-1
    rows = rtnetlink.RTNL_OPS["queue_set"](net, "eth0", queue=0, rps_cpus="6")
    assert rows == [{"queue": 0, "rps_cpus": "6", "rps_map": [1, 2]}]


def test_without_rps_everything_stays_on_the_receiving_cpu():
    lab = pair(ncpus=4)
    net = lab.nets["b"]
    dev = lab.dev("b", "eth0")
    got = catch_ip(net)
    for f in flow_frames(dev.dev_addr, 8, 3):
        lab.inject("b", "eth0", f)
    assert {cpu for cpu, _ in got} == {dev.rx_cpu}
    assert sum(sd.received_rps for sd in net.cpus) == 0


def test_rps_spreads_flows_keeps_their_order_and_counts_ipis_on_the_target():
    lab = pair(ncpus=4)
    net = lab.nets["b"]
    dev = lab.dev("b", "eth0")
    rtnetlink.RTNL_OPS["queue_set"](net, "eth0", rps_cpus="f")
    woken = []
    net.wake_cpu = woken.append
    got = catch_ip(net)
    frames = flow_frames(dev.dev_addr, 16, 6)
    net.cur_cpu = dev.rx_cpu
    for f in frames:                            # a burst: all queued before softirqs run
        veth_forward_skb(dev, f)
    lab.run()
    cpus, seqs = flows_of(got)
    assert len(got) == len(frames)
    assert all(len(c) == 1 for c in cpus.values())          # a flow stays on one CPU
    assert all(s == list(range(6)) for s in seqs.values())  # in order
    used = {next(iter(c)) for c in cpus.values()}
    assert len(used) >= 3                                    # 16 flows spread over the CPUs
    st = [sd.softnet_stat() for sd in net.cpus]
    remote = [c for c in used if c != dev.rx_cpu]
    assert all(st[c]["received_rps"] >= 1 for c in remote)   # counted on the target
    assert st[dev.rx_cpu]["received_rps"] == 0
    assert set(remote) <= set(woken)                         # the IPI woke them
    for c in used:
        assert st[c]["processed"] == sum(1 for cpu, _ in got if cpu == c)


def test_changing_rps_cpus_moves_the_flows():
    lab = pair(ncpus=4)
    net = lab.nets["b"]
    dev = lab.dev("b", "eth0")
    got = catch_ip(net)
    rtnetlink.RTNL_OPS["queue_set"](net, "eth0", rps_cpus="4")      # CPU 2 only
    for f in flow_frames(dev.dev_addr, 8, 2):
        lab.inject("b", "eth0", f)
    assert {cpu for cpu, _ in got} == {2}
    got.clear()
    rtnetlink.RTNL_OPS["queue_set"](net, "eth0", rps_cpus="9")      # CPUs 0 and 3
    for f in flow_frames(dev.dev_addr, 8, 2):
        lab.inject("b", "eth0", f)
    assert {cpu for cpu, _ in got} == {0, 3}


def test_get_rps_cpu_uses_the_nic_hash_and_the_recorded_queue():
    lab = phys_pair(ncpus=4, queues=2)
    net = lab.nets["h2"]
    dev = lab.dev("h2", "eth0")
    rtnetlink.RTNL_OPS["queue_set"](net, "eth0", queue=1, rps_cpus="8")
    skb = build_skb_from_frame(udp_frame(dev.dev_addr, "10.0.0.1", "10.0.0.2", 1, 2, b"x"))
    skb.dev = dev
    skb.protocol = eth_type_trans(skb, dev)
    skb.hash = 0x12345678
    skb.queue_mapping = 1                       # received on rx-0: no map there
    assert get_rps_cpu(dev, skb) == -1
    skb.queue_mapping = 2                       # rx-1: mask 8 -> CPU 3
    assert get_rps_cpu(dev, skb) == 3
    assert skb.hash == 0x12345678               # the NIC's hash was used as is


def test_rps_behind_a_multiqueue_nic():
    lab = phys_pair(ncpus=4, queues=4)
    net = lab.nets["h2"]
    dev = lab.dev("h2", "eth0")
    got = catch_ip(net)
    frames = flow_frames(dev.dev_addr, 32, 2)
    port = lab.port("h1", "eth0")
    for f in frames:
        port.peer.inbox.append((f, 0, 0, 0, 0))
    lab.run()
    cpus, seqs = flows_of(got)
    assert len(got) == len(frames)
    # Without RPS a flow is processed where its RSS queue's IRQ goes.
    from emu.kernel.drivers.wirenic import wirenic_rss_hash
    priv = dev.priv
    for k in range(32):
        h, _ = wirenic_rss_hash(priv, frames[k], 0, len(frames[k]))
        assert cpus[k] == {priv.vectors[priv.rss_indir[h & 127]].irq_cpu}
    assert len({next(iter(c)) for c in cpus.values()}) >= 3
    assert sum(sd.received_rps for sd in net.cpus) == 0
    got.clear()
    rtnetlink.RTNL_OPS["queue_set"](net, "eth0", rps_cpus="2")       # everything to CPU 1
    for f in frames:
        port.peer.inbox.append((f, 0, 0, 0, 0))
    lab.run()
    assert {cpu for cpu, _ in got} == {1} and len(got) == len(frames)
    assert net.cpus[1].received_rps >= 1
    assert all(s == [0, 1] for s in flows_of(got)[1].values())
