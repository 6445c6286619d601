"""NAPI: scheduling, the NET_RX budget and time limit, repolls, flow limit.

Linux: net/core/dev.c (napi_schedule_prep, __napi_schedule, napi_complete_done,
__napi_poll, net_rx_action, skb_flow_limit)
"""
from emu.kernel.core import rtnetlink
from emu.kernel.core.napi import (
    NAPI_STATE_MISSED, NAPI_STATE_SCHED, NET_RX_SOFTIRQ, NapiStruct, do_softirq,
    napi_complete_done, napi_schedule, napi_schedule_prep, net_rx_action, netif_napi_add,
)
from emu.kernel.drivers.veth import veth_forward_skb
from emu.kernel.init import start_kernel
from emu.kernel.core.net import FakeClock

from .test_dev import catch, frame, pair


class FakeDriver:
    """A NAPI whose poll takes up to budget items from a counter."""

    def __init__(self, net, backlog, clock=None, per_packet=0.0, name="fake"):
        from emu.kernel.core.netdevice import NetDevice
        self.dev = NetDevice(name)
        self.dev.net = net
        self.napi = NapiStruct(None)
        netif_napi_add(self.dev, self.napi, self.poll)
        self.backlog = backlog
        self.polled = []
        self.clock = clock
        self.per_packet = per_packet
        self.completed = 0

    def poll(self, napi, budget):
        n = min(budget, self.backlog)
        self.backlog -= n
        self.polled.append(n)
        if self.clock is not None:
            self.clock.advance(n * self.per_packet)
        if n < budget:
            if napi_complete_done(napi, n):
                self.completed += 1
        return n


def test_schedule_prep_claims_once_and_marks_missed_events():
    net = start_kernel("n", 2)
    d = FakeDriver(net, 0)
    assert napi_schedule_prep(d.napi)
    assert d.napi.state & NAPI_STATE_SCHED
    assert not napi_schedule_prep(d.napi)            # already scheduled...
    assert d.napi.state & NAPI_STATE_MISSED          # ...the event is remembered
    # Completing with a missed event keeps it scheduled and polls again.
    d.napi.state &= ~NAPI_STATE_MISSED
    assert napi_complete_done(d.napi, 0)
    assert not d.napi.state & NAPI_STATE_SCHED


def test_napi_schedule_queues_on_this_cpu_and_raises_net_rx():
    net = start_kernel("n", 2)
    woken = []
    net.wake_cpu = woken.append
    d = FakeDriver(net, 10)
    net.cur_cpu = 1                                  # the IRQ ran on CPU 1
    assert napi_schedule(d.napi)
    sd = net.cpus[1]
    assert d.napi in sd.poll_list and sd.pending & (1 << NET_RX_SOFTIRQ)
    assert woken == [1] and not net.cpus[0].poll_list
    do_softirq(net, 1)
    assert d.polled == [10] and d.completed == 1 and not sd.poll_list


def test_missed_event_while_polling_polls_once_more():
    net = start_kernel("n", 1)
    d = FakeDriver(net, 5)

    def poll(napi, budget):
        if not d.polled:
            napi_schedule(napi)                      # the IRQ fires during the poll
        return FakeDriver.poll(d, napi, budget)
    d.napi.poll = poll
    napi_schedule(d.napi)
    do_softirq(net, 0)
    assert len(d.polled) == 2 and d.completed == 1
    assert not d.napi.state & (NAPI_STATE_SCHED | NAPI_STATE_MISSED)


def test_budget_exhaustion_counts_a_time_squeeze_and_repolls():
    net = start_kernel("n", 1)
    rtnetlink.sysctl_set(net, "net.core.netdev_budget", 100)
    a, b = FakeDriver(net, 200, name="a"), FakeDriver(net, 30, name="b")
    napi_schedule(a.napi)
    napi_schedule(b.napi)
    sd = net.cpus[0]
    sd.pending = 0
    net_rx_action(sd)
    # a used its whole weight (64): repolled; b got 30 and completed; budget
    # 100 - 64 - 30 = 6 > 0: no squeeze yet.
    assert a.polled == [64] and b.polled == [30] and sd.time_squeeze == 0
    assert list(sd.poll_list) == [a.napi] and sd.pending & (1 << NET_RX_SOFTIRQ)
    sd.pending = 0
    net_rx_action(sd)
    # 64 more from a: the budget (100) is not gone, a stays in polling mode.
    assert a.polled == [64, 64]
    # Exactly exhausting the budget counts a squeeze, even with nothing left.
    rtnetlink.sysctl_set(net, "net.core.netdev_budget", 64)
    c = FakeDriver(net, 64, name="c")
    sd.poll_list.clear()
    napi_schedule(c.napi)
    sd.pending = 0
    net_rx_action(sd)
    assert c.polled == [64] and sd.time_squeeze == 1
    assert rtnetlink.counters(net)["softnet_stat"][0]["time_squeeze"] == 1


def test_time_limit_squeezes_and_leaves_the_rest_on_the_poll_list():
    clock = FakeClock()
    net = start_kernel("n", 1, clock)
    # 2000 us of budget; each packet "takes" 100 us.
    a = FakeDriver(net, 30, clock, per_packet=100e-6, name="a")
    b = FakeDriver(net, 5, clock, per_packet=100e-6, name="b")
    napi_schedule(a.napi)
    napi_schedule(b.napi)
    sd = net.cpus[0]
    sd.pending = 0
    net_rx_action(sd)
    assert a.polled == [30] and b.polled == []       # out of time after a's 3 ms
    assert sd.time_squeeze == 1
    assert list(sd.poll_list) == [b.napi] and sd.pending & (1 << NET_RX_SOFTIRQ)
    do_softirq(net, 0)
    assert b.polled == [5] and not sd.poll_list


def test_a_napi_scheduled_during_net_rx_action_runs_in_the_same_softirq():
    net = start_kernel("n", 1)
    a, b = FakeDriver(net, 3, name="a"), FakeDriver(net, 4, name="b")

    def poll(napi, budget):
        napi_schedule(b.napi)
        return FakeDriver.poll(a, napi, budget)
    a.napi.poll = poll
    napi_schedule(a.napi)
    sd = net.cpus[0]
    sd.pending = 0
    net_rx_action(sd)
    assert a.polled == [3] and b.polled == [4] and not sd.poll_list
    assert not sd.pending


def test_flow_limit_drops_the_dominant_flow_of_a_busy_backlog():
    lab = pair()
    net, dev = lab.nets["b"], lab.dev("b", "eth0")
    catch(net)
    rtnetlink.sysctl_set(net, "net.core.netdev_max_backlog", 200)
    rtnetlink.RTNL_OPS["sysctl_set"](net, "net.core.flow_limit_cpu_bitmap", 1)
    assert net.cpus[0].flow_limit is not None
    for _ in range(200):                              # one flow (same addresses)
        veth_forward_skb(dev, frame(dev.dev_addr, ethertype=0x0800,
                                    payload=bytes.fromhex("4500001c00000000401100000a0000010a000002")
                                    + bytes(8)))
    st = rtnetlink.counters(net)["softnet_stat"][0]
    # Past half the backlog (100), the flow owns more than half of the last
    # 128 packets: later ones are dropped and counted.
    assert st["flow_limit_count"] > 0
    # Linux counts these in dropped too; the backlog itself never overflowed.
    assert st["dropped"] == st["flow_limit_count"]
    assert len(net.cpus[0].input_pkt_queue) == 200 - st["flow_limit_count"] < 200
    rtnetlink.RTNL_OPS["sysctl_set"](net, "net.core.flow_limit_cpu_bitmap", 0)
    assert net.cpus[0].flow_limit is None
