"""Per-CPU softnet data, softirqs, NAPI, net_rx_action and the backlog.

Linux: net/core/dev.c (softnet_data, enqueue_to_backlog, process_backlog,
net_rx_action, napi_*), kernel/softirq.c, include/linux/netdevice.h

Emulation note: each emulated CPU is a thread of the node process; the
runtime calls do_softirq(net, cpu) on that thread when its pending mask is
set. Raising a softirq on another CPU asks the runtime to wake that CPU's
thread (net.wake_cpu), which is the IPI of smp_send_reschedule.
"""
from collections import deque

from .skbuff import SKB_DROP_REASON_CPU_BACKLOG, kfree_skb

HI_SOFTIRQ = 0
TIMER_SOFTIRQ = 1
NET_TX_SOFTIRQ = 2
NET_RX_SOFTIRQ = 3
NR_SOFTIRQS = 10
MAX_SOFTIRQ_RESTART = 10

NAPI_STATE_SCHED = 1 << 0
NAPI_STATE_DISABLE = 1 << 1
NAPI_POLL_WEIGHT = 64


class NapiStruct:
    """struct napi_struct."""

    __slots__ = ("poll", "weight", "state", "dev", "sd", "gro", "name", "priv")

    def __init__(self, poll, weight=NAPI_POLL_WEIGHT, dev=None, name=""):
        self.poll = poll             # poll(napi, budget) -> work done
        self.weight = weight
        self.state = 0
        self.dev = dev
        self.sd = None               # softnet_data it is scheduled on
        self.gro = None
        self.name = name
        self.priv = None


class SoftnetData:
    """struct softnet_data: one CPU's receive state and counters."""

    __slots__ = ("net", "cpu", "input_pkt_queue", "process_queue", "poll_list",
                 "backlog", "pending", "processed", "dropped", "time_squeeze",
                 "received_rps", "flow_limit_count", "cpu_collision",
                 "output_queue")

    def __init__(self, net, cpu, backlog_poll):
        self.net = net
        self.cpu = cpu
        self.input_pkt_queue = deque()
        self.process_queue = deque()
        self.poll_list = deque()
        self.backlog = NapiStruct(backlog_poll, weight=NAPI_POLL_WEIGHT, name="backlog")
        self.backlog.priv = self
        self.pending = 0             # softirq pending bitmask
        self.processed = 0
        self.dropped = 0
        self.time_squeeze = 0
        self.received_rps = 0
        self.flow_limit_count = 0
        self.cpu_collision = 0
        self.output_queue = deque()  # qdiscs waiting for NET_TX

    def softnet_stat(self):
        """The row of /proc/net/softnet_stat for this CPU."""
        return {"processed": self.processed, "dropped": self.dropped,
                "time_squeeze": self.time_squeeze, "cpu_collision": self.cpu_collision,
                "received_rps": self.received_rps,
                "flow_limit_count": self.flow_limit_count,
                "backlog_len": len(self.input_pkt_queue) + len(self.process_queue),
                "cpu": self.cpu}


def raise_softirq(sd, nr):
    """Mark softirq nr pending on sd's CPU; wake that CPU if it is not us."""
    sd.pending |= 1 << nr
    net = sd.net
    if net.softirq_cpu != sd.cpu:
        net.wake_cpu(sd.cpu)


def do_softirq(net, cpu):
    """Run the pending softirqs of one CPU (kernel/softirq.c: __do_softirq)."""
    sd = net.cpus[cpu]
    prev = net.softirq_cpu
    net.softirq_cpu = cpu
    net.cur_cpu = cpu
    try:
        for _ in range(MAX_SOFTIRQ_RESTART):
            pending = sd.pending
            if not pending:
                break
            sd.pending = 0
            if pending & (1 << NET_TX_SOFTIRQ):
                net_tx_action(sd)
            if pending & (1 << NET_RX_SOFTIRQ):
                net_rx_action(sd)
    finally:
        net.softirq_cpu = prev
    return sd.pending


# ---------------------------------------------------------------- NAPI

def napi_schedule_prep(n):
    """Claim the NAPI for polling; False if it is already scheduled or disabled."""
    if n.state & (NAPI_STATE_SCHED | NAPI_STATE_DISABLE):
        return False
    n.state |= NAPI_STATE_SCHED
    return True


def ____napi_schedule(sd, n):
    n.sd = sd
    sd.poll_list.append(n)
    raise_softirq(sd, NET_RX_SOFTIRQ)


def __napi_schedule(n, cpu):
    net = n.dev.net if n.dev is not None else None
    ____napi_schedule(net.cpus[cpu], n)


def napi_schedule(n, cpu):
    if napi_schedule_prep(n):
        __napi_schedule(n, cpu)


def napi_complete_done(n, work_done):
    """The driver is done polling: leave polling mode (the caller re-enables its IRQ)."""
    if n.gro is not None:
        n.gro.flush_all()
    n.state &= ~NAPI_STATE_SCHED
    return True


def napi_poll(n, repoll):
    """Call one NAPI's poll under its weight; requeue it if it used all of it."""
    weight = n.weight
    work = 0
    if n.state & NAPI_STATE_SCHED:
        work = n.poll(n, weight)
    if work < weight:
        return work
    # Used its whole weight: it still has work and stays in polling mode.
    if n.gro is not None:
        n.gro.flush_old()
    repoll.append(n)
    return work


def net_rx_action(sd):
    """NET_RX softirq: poll the NAPIs on this CPU's poll_list under the budget."""
    net = sd.net
    sysctl = net.sysctl
    budget = sysctl["net.core.netdev_budget"]
    time_limit = net.clock() + sysctl["net.core.netdev_budget_usecs"] / 1e6
    poll_list = sd.poll_list
    repoll = []
    while poll_list:
        n = poll_list.popleft()
        budget -= napi_poll(n, repoll)
        if budget <= 0 or net.clock() >= time_limit:
            if poll_list or repoll:
                sd.time_squeeze += 1
            break
    if repoll:
        poll_list.extend(repoll)
    if poll_list:
        raise_softirq(sd, NET_RX_SOFTIRQ)


def net_tx_action(sd):
    """NET_TX softirq: run the qdiscs that stopped queues left waiting."""
    out = sd.output_queue
    n = len(out)
    for _ in range(n):
        q = out.popleft()
        q.run_from_softirq()


# ---------------------------------------------------------------- backlog

def enqueue_to_backlog(skb, cpu):
    """Put skb on cpu's input_pkt_queue and schedule its backlog NAPI."""
    if skb.trace is not None:
        skb.trace.hit("enqueue_to_backlog", cpu)
    net = skb.dev.net
    sd = net.cpus[cpu]
    q = sd.input_pkt_queue
    if len(q) <= net.sysctl["net.core.netdev_max_backlog"]:
        if not q:
            # First packet: schedule the backlog NAPI (unless already polling).
            if napi_schedule_prep(sd.backlog):
                ____napi_schedule(sd, sd.backlog)
        q.append(skb)
        return 0
    sd.dropped += 1
    skb.dev.stats.rx_dropped += 1
    kfree_skb(skb, SKB_DROP_REASON_CPU_BACKLOG)
    return 1
