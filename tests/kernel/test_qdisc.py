"""Qdiscs under dev_queue_xmit: defaults, pfifo_fast bands, a full TX ring
stopping the queue, NET_TX restarting it, requeues, tc qdisc add/del/show.

Linux: net/sched/sch_generic.c, net/sched/sch_api.c, net/sched/sch_fifo.c,
net/sched/sch_mq.c, net/core/dev.c (__dev_xmit_skb, net_tx_action)
"""
import errno
import struct

import pytest

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError, dev_queue_xmit
from emu.kernel.core.napi import NET_TX_SOFTIRQ
from emu.kernel.core.netdevice import netif_tx_stop_queue
from emu.kernel.core.skbuff import alloc_skb, skb_put_data
from emu.kernel.sched.sch_generic import PRIO2BAND, netif_tx_wake_queue, rt_tos2priority

from .harness import InlineLab
from .nic_harness import phys_pair

TC = rtnetlink.RTNL_OPS


def raw(dev, n, priority=0, tag=b""):
    """An Ethernet frame for the peer, numbered n, as dev_queue_xmit takes it."""
    skb = alloc_skb(64 + 100)
    skb.data = skb.tail = 64
    skb_put_data(skb, b"\x02" * 6 + dev.dev_addr + b"\x88\xb5" + tag + struct.pack("!I", n) + bytes(60))
    skb.dev = dev
    skb.priority = priority
    return skb


def sent_numbers(port, tag=b""):
    return [struct.unpack_from("!I", f, 14 + len(tag))[0] for f in port.sent
            if f[12:14] == b"\x88\xb5" and f[14:14 + len(tag)] == tag]


def qdisc_of(net, dev, parent="root"):
    return next(r for r in TC["qdisc_show"](net, dev) if r["parent"] == parent)


def test_default_qdiscs():
    lab = phys_pair(ncpus=2, queues=4)
    lab1 = phys_pair(ncpus=1, queues=1)
    rows = TC["qdisc_show"](lab.nets["h1"], "eth0")
    assert [(r["kind"], r["parent"]) for r in rows] == [
        ("mq", "root"), ("pfifo_fast", ":1"), ("pfifo_fast", ":2"), ("pfifo_fast", ":3"),
        ("pfifo_fast", ":4")]
    assert [r["kind"] for r in TC["qdisc_show"](lab1.nets["h1"], "eth0")] == ["pfifo_fast"]
    assert TC["qdisc_show"](lab.nets["h1"], "lo")[0]["kind"] == "noqueue"
    v = InlineLab()
    v.node("a")
    v.node("b")
    v.link("a", "eth0", "b", "eth0")
    assert TC["qdisc_show"](v.nets["a"], "eth0")[0]["kind"] == "noop"      # never up yet
    rtnetlink.rtnl_setlink(v.nets["a"], "eth0", up=True)
    assert TC["qdisc_show"](v.nets["a"], "eth0")[0]["kind"] == "noqueue"   # veth: IFF_NO_QUEUE
    assert rtnetlink.rtnl_getlink(v.nets["a"], "eth0")[0]["qdisc"] == "noqueue"


def test_a_full_tx_ring_stops_the_queue_and_net_tx_drains_the_qdisc_in_order():
    lab = phys_pair(ncpus=1, queues=1)
    net = lab.nets["h1"]
    dev = lab.dev("h1", "eth0")
    TC["ring_set"](net, "eth0", tx=8)
    port = lab.port("h1", "eth0")
    port.sent.clear()
    tx0 = TC["ethtool_stats"](net, "eth0")["tx_queue_0_packets"]
    for n in range(20):
        dev_queue_xmit(raw(dev, n))
    txq = dev._tx[0]
    ring = dev.priv.vectors[0].tx_ring
    q = qdisc_of(net, "eth0")
    assert len(ring.desc) == 8 and txq.state & 1                # stopped: ring full
    assert q["stats"]["qlen"] == 12 and q["stats"]["drops"] == 0
    assert TC["ethtool_stats"](net, "eth0")["tx_queue_0_stops"] == 1
    lab.run()                     # hardware sends, completion IRQ, clean, wake, NET_TX...
    assert sent_numbers(port) == list(range(20))
    st = TC["ethtool_stats"](net, "eth0")
    assert st["tx_queue_0_restarts"] >= 2 and st["tx_queue_0_packets"] - tx0 == 20
    assert qdisc_of(net, "eth0")["stats"]["qlen"] == 0 and not txq.state & 1


def test_pfifo_fast_sends_band_0_first():
    assert [PRIO2BAND[rt_tos2priority(t)] for t in (0x10, 0x00, 0x08)] == [0, 1, 2]
    lab = phys_pair(ncpus=1, queues=1)
    net = lab.nets["h1"]
    dev = lab.dev("h1", "eth0")
    port = lab.port("h1", "eth0")
    port.sent.clear()
    txq = dev._tx[0]
    netif_tx_stop_queue(txq)                                    # hold everything in the qdisc
    tos = [0x08, 0x00, 0x10, 0x08, 0x00, 0x10]                  # bulk, best effort, low delay
    for n, t in enumerate(tos):
        dev_queue_xmit(raw(dev, n, priority=rt_tos2priority(t)))
    # The first found the qdisc empty and tried to bypass it: the stopped
    # queue made it a requeue (sent first, as in Linux); the rest sit in bands.
    q = qdisc_of(net, "eth0")
    assert q["options"]["band_qlen"] == [2, 2, 1] and q["stats"]["requeues"] == 1
    netif_tx_wake_queue(txq)
    assert net.cpus[0].pending & (1 << NET_TX_SOFTIRQ)          # __netif_schedule
    lab.run()
    assert sent_numbers(port) == [0, 2, 5, 1, 4, 3]


def test_netdev_tx_busy_requeues_and_the_packet_goes_later():
    lab = phys_pair(ncpus=1, queues=1)
    net = lab.nets["h1"]
    dev = lab.dev("h1", "eth0")
    TC["ring_set"](net, "eth0", tx=8)
    port = lab.port("h1", "eth0")
    port.sent.clear()
    ring = dev.priv.vectors[0].tx_ring
    for n in range(8):
        dev_queue_xmit(raw(dev, n))
    dev._tx[0].state &= ~1                # a driver that failed to stop in time...
    dev_queue_xmit(raw(dev, 8))           # ...answers NETDEV_TX_BUSY
    q = qdisc_of(net, "eth0")
    assert ring.busy == 1 and q["stats"]["requeues"] == 1 and q["stats"]["qlen"] == 1
    lab.run()
    assert sent_numbers(port) == list(range(9))


def test_dev_tx_weight_bounds_one_qdisc_run():
    lab = phys_pair(ncpus=1, queues=1)
    net = lab.nets["h1"]
    dev = lab.dev("h1", "eth0")
    TC["ring_set"](net, "eth0", tx=4096)
    txq = dev._tx[0]
    netif_tx_stop_queue(txq)
    for n in range(150):
        dev_queue_xmit(raw(dev, n))
    sd = net.cpus[0]
    netif_tx_wake_queue(txq)
    q = dev._tx[0].qdisc
    assert list(sd.output_queue) == [q]
    from emu.kernel.core.napi import net_tx_action
    sd.pending = 0
    net_tx_action(sd)             # one qdisc run: dev_tx_weight (64) packets...
    ring = dev.priv.vectors[0].tx_ring
    assert len(ring.desc) == 64 and q.qlen == 150 - 64
    assert list(sd.output_queue) == [q] and sd.pending & (1 << NET_TX_SOFTIRQ)  # ...then later
    lab.run()
    assert sent_numbers(lab.port("h1", "eth0"))[-150:] == list(range(150))


def test_tc_qdisc_add_replace_del():
    lab = phys_pair(ncpus=1, queues=1)
    net = lab.nets["h1"]
    dev = lab.dev("h1", "eth0")
    row = TC["qdisc_add"](net, "eth0", "pfifo", limit=3)
    assert row["kind"] == "pfifo" and row["options"] == {"limit": 3} and row["handle"] != "0:"
    with pytest.raises(KernelError) as e:
        TC["qdisc_add"](net, "eth0", "pfifo")
    assert e.value.errno == errno.EEXIST
    netif_tx_stop_queue(dev._tx[0])
    for n in range(5):
        dev_queue_xmit(raw(dev, n))
    st = qdisc_of(net, "eth0")["stats"]
    assert st["qlen"] == 3 and st["drops"] == 2
    TC["qdisc_add"](net, "eth0", "bfifo", replace=True, limit=10000)
    assert qdisc_of(net, "eth0")["kind"] == "bfifo"
    TC["qdisc_del"](net, "eth0")
    assert qdisc_of(net, "eth0")["kind"] == "pfifo_fast"          # the default again
    with pytest.raises(KernelError) as e:
        TC["qdisc_add"](net, "eth0", "nosuch")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(KernelError):
        TC["qdisc_add"](net, "eth0", "pfifo", limit=-1)


def test_tc_on_mq_classes_and_on_a_veth():
    lab = phys_pair(ncpus=2, queues=2)
    net = lab.nets["h1"]
    TC["qdisc_add"](net, "eth0", "pfifo", parent=":2", limit=7)
    assert [(r["kind"], r["parent"]) for r in TC["qdisc_show"](net, "eth0")] == [
        ("mq", "root"), ("pfifo_fast", ":1"), ("pfifo", ":2")]
    v = InlineLab()
    v.node("a")
    v.node("b")
    pa, _ = v.link("a", "eth0", "b", "eth0")
    rtnetlink.rtnl_setlink(v.nets["a"], "eth0", up=True)
    with pytest.raises(KernelError) as e:
        TC["qdisc_del"](v.nets["a"], "eth0")                      # noqueue: nothing to delete
    assert e.value.errno == errno.ENOENT
    TC["qdisc_add"](v.nets["a"], "eth0", "pfifo", limit=10)
    dev = v.dev("a", "eth0")
    dev_queue_xmit(raw(dev, 1))
    assert sent_numbers(pa) == [1]                                # through pfifo to the wire
    assert qdisc_of(v.nets["a"], "eth0")["stats"]["packets"] == 1


def test_device_down_drops_what_is_queued():
    lab = phys_pair(ncpus=1, queues=1)
    net = lab.nets["h1"]
    dev = lab.dev("h1", "eth0")
    netif_tx_stop_queue(dev._tx[0])
    for n in range(4):
        dev_queue_xmit(raw(dev, n))
    assert qdisc_of(net, "eth0")["stats"]["qlen"] == 4
    rtnetlink.rtnl_setlink(net, "eth0", up=False)
    assert net.drop_reasons["QDISC_DROP"] == 4
    assert qdisc_of(net, "eth0")["kind"] == "pfifo_fast"          # configured, kept for later
    dev_queue_xmit(raw(dev, 9))                                   # noop while down
    assert net.drop_reasons["DEV_READY"] >= 1 and dev.stats.tx_dropped >= 1
    rtnetlink.rtnl_setlink(net, "eth0", up=True)
    assert dev._tx[0].qdisc.kind == "pfifo_fast"
