"""Per-CPU softnet data, softirqs, NAPI, net_rx_action and the backlog.

Linux: net/core/dev.c (softnet_data, napi_schedule_prep, __napi_schedule,
napi_complete_done, __napi_poll, net_rx_action, enqueue_to_backlog,
skb_flow_limit, napi_schedule_rps, net_rps_send_ipi, rps_trigger_softirq,
__netif_schedule, net_tx_action), kernel/softirq.c, include/linux/netdevice.h

Linux's dev.c is one file; emu splits it into dev.py (registration, transmit,
__netif_receive_skb_core), napi.py (this file), gro.py and rps.py.

Emulation note: each emulated CPU is a thread of the node process; the
runtime calls do_softirq(net, cpu) on that thread when its pending mask is
set. Raising a softirq on another CPU asks the runtime to wake that CPU's
thread (net.wake_cpu), which is the IPI of smp_send_reschedule. "This CPU"
(smp_processor_id) is net.cur_cpu. The RPS IPI's handler
(rps_trigger_softirq) runs when the IPI is sent, under the kernel lock, and
the wake-up makes the target CPU's thread run its NET_RX.
"""
from typing import TYPE_CHECKING
from collections import deque

from .netdevice import IFF_UP
from .skbuff import SKB_DROP_REASON_CPU_BACKLOG, SKB_DROP_REASON_DEV_READY, kfree_skb

if TYPE_CHECKING:
    from .skbuff import SkBuff

HI_SOFTIRQ = 0
TIMER_SOFTIRQ = 1
NET_TX_SOFTIRQ = 2
NET_RX_SOFTIRQ = 3
NR_SOFTIRQS = 10
MAX_SOFTIRQ_RESTART = 10
MAX_SOFTIRQ_TIME = 0.002          # seconds (2 ms, as kernel/softirq.c)

# enum napi_state bits (NAPIF_STATE_*)
NAPI_STATE_SCHED = 1 << 0        # poll is scheduled (owned by a poll_list)
NAPI_STATE_DISABLE = 1 << 1      # napi_disable pending
NAPI_STATE_MISSED = 1 << 2       # an event came while scheduled: poll once more
NAPI_STATE_LISTED = 1 << 3       # on its device's napi_list (netif_napi_add)
NAPI_POLL_WEIGHT = 64

GRO_HASH_BUCKETS = 8
HZ = 1000                        # jiffies = clock * HZ (GRO ages are in jiffies)

FLOW_LIMIT_HISTORY = 1 << 7      # skb_flow_limit: the last 128 packets


class NapiStruct:
    """struct napi_struct: a poll function, its state and its GRO lists."""

    __slots__ = ("poll", "weight", "state", "dev", "sd", "name", "priv",
                 "gro_bitmask", "gro_hash", "gro_count", "rx_list", "rx_count",
                 "napi_id", "index", "scratch_cb")

    def __init__(self, poll, weight=NAPI_POLL_WEIGHT, dev=None, name=""):
        self.poll = poll             # poll(napi, budget) -> work done
        self.weight = weight
        self.state = 0
        self.dev = dev
        self.sd = None               # softnet_data it was last scheduled on
        self.name = name
        self.priv = None             # the driver's per-vector data
        # GRO (struct gro_node in Linux 6.15): GRO_HASH_BUCKETS lists of held
        # packets, oldest first, and the GRO_NORMAL batch (rx_list).
        self.gro_bitmask = 0
        self.gro_hash: list[list[SkBuff]] = [[] for _ in range(GRO_HASH_BUCKETS)]
        self.gro_count = [0] * GRO_HASH_BUCKETS
        self.rx_list = []
        self.rx_count = 0
        self.napi_id = 0
        self.index = 0               # queue index (for a multi-queue driver)
        self.scratch_cb = None       # gro.py: the NapiGroCb the next skb uses


class SdFlowLimit:
    """struct sd_flow_limit: recent flow history of one CPU's backlog."""

    __slots__ = ("count", "history_head", "history", "num_buckets", "buckets")

    def __init__(self, num_buckets):
        self.count = 0
        self.history_head = 0
        self.history = [0] * FLOW_LIMIT_HISTORY
        self.num_buckets = num_buckets
        self.buckets = [0] * num_buckets


class SoftnetData:
    """struct softnet_data: one CPU's receive state and counters."""

    __slots__ = ("net", "cpu", "input_pkt_queue", "process_queue", "poll_list",
                 "backlog", "pending", "processed", "dropped", "time_squeeze",
                 "received_rps", "flow_limit_count", "cpu_collision",
                 "output_queue", "rps_ipi_list", "in_net_rx_action",
                 "flow_limit")

    def __init__(self, net, cpu, backlog_poll):
        self.net = net
        self.cpu = cpu
        self.input_pkt_queue: deque[SkBuff] = deque()
        self.process_queue: deque[SkBuff] = deque()
        self.poll_list: deque[NapiStruct] = deque()
        self.backlog = NapiStruct(backlog_poll, weight=NAPI_POLL_WEIGHT, name="backlog")
        self.backlog.priv = self
        self.pending = 0             # softirq pending bitmask
        self.processed = 0
        self.dropped = 0
        self.time_squeeze = 0
        self.received_rps = 0
        self.flow_limit_count = 0    # mirrors flow_limit.count (softnet_stat column)
        self.cpu_collision = 0
        self.output_queue: deque = deque()  # qdiscs waiting for NET_TX (__netif_schedule)
        self.rps_ipi_list = []       # remote CPUs to send an RPS IPI to
        self.in_net_rx_action = False
        self.flow_limit = None       # SdFlowLimit when this CPU is in flow_limit_cpu_bitmap

    def softnet_stat(self):
        """The row of /proc/net/softnet_stat for this CPU."""
        fl = self.flow_limit
        return {"processed": self.processed, "dropped": self.dropped,
                "time_squeeze": self.time_squeeze, "cpu_collision": self.cpu_collision,
                "received_rps": self.received_rps,
                "flow_limit_count": fl.count if fl is not None else self.flow_limit_count,
                "backlog_len": len(self.input_pkt_queue) + len(self.process_queue),
                "cpu": self.cpu}


def raise_softirq(sd, nr):
    """Mark softirq nr pending on sd's CPU; wake that CPU if it is not us."""
    sd.pending |= 1 << nr
    net = sd.net
    if net.softirq_cpu != sd.cpu:
        net.wake_cpu(sd.cpu)


def open_softirq(net, nr, action):
    """Register the handler of softirq nr (kernel/softirq.c)."""
    net.softirq_vec[nr] = action


def do_softirq(net, cpu):
    """Run the pending softirqs of one CPU (kernel/softirq.c: __do_softirq).

    As __do_softirq, it restarts while softirqs are pending, at most
    MAX_SOFTIRQ_RESTART times and for MAX_SOFTIRQ_TIME, and not when a task
    waits for the CPU (need_resched: here a system call waiting for the
    kernel); what is left stays pending for ksoftirqd (the CPU thread).
    """
    sd = net.cpus[cpu]
    prev = net.softirq_cpu
    net.softirq_cpu = cpu
    net.cur_cpu = cpu
    end = net.clock() + MAX_SOFTIRQ_TIME
    need_resched = net.need_resched
    try:
        for _ in range(MAX_SOFTIRQ_RESTART):
            pending = sd.pending
            if not pending:
                break
            sd.pending = 0
            if pending & (1 << NET_TX_SOFTIRQ):
                net.softirq_vec[NET_TX_SOFTIRQ](sd)
            if pending & (1 << NET_RX_SOFTIRQ):
                net.softirq_vec[NET_RX_SOFTIRQ](sd)
            if sd.pending and (need_resched() or net.clock() >= end):
                break
    finally:
        net.softirq_cpu = prev
    return sd.pending


def local_bh_enable(net):
    """Process context leaves a bottom-half section: run this CPU's pending softirqs.

    Linux (kernel/softirq.c: __local_bh_enable_ip) runs them right there, so a
    send over loopback is received, and its ACK handled, before the sending
    system call returns; a program that sees EAGAIN sees a quiet socket.
    """
    cpu = net.cur_cpu
    if net.cpus[cpu].pending and net.softirq_cpu < 0:
        do_softirq(net, cpu)


def jiffies(net):
    return int(net.clock() * HZ)


# ---------------------------------------------------------------- NAPI

def netif_napi_add(dev, napi, poll, weight=NAPI_POLL_WEIGHT):
    """Register a driver's NAPI context with its device."""
    napi.dev = dev
    napi.poll = poll
    napi.weight = weight
    napi.state |= NAPI_STATE_LISTED
    dev.napi_list.append(napi)
    net = dev.net
    if net is not None:
        ids = net.proto.setdefault("napi_ids", [0])
        ids[0] += 1
        napi.napi_id = ids[0]
    return napi


def napi_disable(n):
    n.state |= NAPI_STATE_DISABLE


def napi_enable(n):
    n.state &= ~(NAPI_STATE_DISABLE | NAPI_STATE_SCHED | NAPI_STATE_MISSED)


def napi_schedule_prep(n):
    """Claim the NAPI for polling.

    False if it is disabled, or already scheduled -- then MISSED is set so
    that napi_complete_done polls once more instead of losing the event.
    """
    val = n.state
    if val & NAPI_STATE_DISABLE:
        return False
    if val & NAPI_STATE_SCHED:
        n.state = val | NAPI_STATE_MISSED
        return False
    n.state = val | NAPI_STATE_SCHED
    return True


def ____napi_schedule(sd, n):
    """Put n on sd's poll_list and raise NET_RX there."""
    n.sd = sd
    sd.poll_list.append(n)
    if not sd.in_net_rx_action:      # net_rx_action picks it up itself (goto start)
        raise_softirq(sd, NET_RX_SOFTIRQ)


def __napi_schedule(n):
    """Schedule n on this CPU (the one whose IRQ handler runs: net.cur_cpu)."""
    net = n.dev.net
    ____napi_schedule(net.cpus[net.cur_cpu], n)


__napi_schedule_irqoff = __napi_schedule


def napi_schedule(n):
    """What an IRQ handler calls: poll n soon on this CPU. True if newly scheduled."""
    if napi_schedule_prep(n):
        __napi_schedule(n)
        return True
    return False


napi_schedule_irqoff = napi_schedule


def napi_complete_done(n, work_done):
    """The driver polled less than its budget: flush GRO, leave polling mode.

    Returns False when the NAPI must stay scheduled (an event was MISSED
    while polling: it is put back on the poll list); True means the driver
    may re-enable its interrupt.
    """
    if n.gro_bitmask:
        gro.napi_gro_flush(n, False)     # gro_flush_timeout is 0: flush all
    if n.rx_count:
        gro.gro_normal_list(n)
    val = n.state
    if val & NAPI_STATE_MISSED:
        n.state = val & ~NAPI_STATE_MISSED       # SCHED stays set
        __napi_schedule(n)
        return False
    n.state = val & ~NAPI_STATE_SCHED
    return True


def napi_complete(n):
    return napi_complete_done(n, 0)


def __napi_poll(n):
    """Call n.poll under its weight; (work, repoll)."""
    weight = n.weight
    work = 0
    if n.state & NAPI_STATE_SCHED:
        work = n.poll(n, weight)
    if work < weight:
        return work, False
    return work, __napi_poll_used_weight(n)


def __napi_poll_used_weight(n):
    """The rest of __napi_poll when the poll used its whole weight: True if
    n must be polled again (net_rx_action puts it back on the poll list)."""
    # The driver did not complete, the NAPI stays in polling mode and this code owns it.
    if n.state & NAPI_STATE_DISABLE:
        napi_complete(n)
        return False
    # Flush too old packets (HZ >= 1000: only those older than this jiffy).
    if n.gro_bitmask:
        gro.napi_gro_flush(n, True)
    if n.rx_count:
        gro.gro_normal_list(n)
    return True


def napi_poll(n, repoll):
    work, do_repoll = __napi_poll(n)
    if do_repoll:
        repoll.append(n)
    return work


def net_rx_action(sd):
    """NET_RX softirq: poll the NAPIs on this CPU's poll_list under the budget.

    Stops when netdev_budget packets were processed or netdev_budget_usecs
    passed, counting a time_squeeze (Linux counts it whenever that happens);
    unfinished NAPIs go back on the poll_list and NET_RX stays raised. RPS
    IPIs queued while polling are sent at the end
    (net_rps_action_and_irq_enable).
    """
    try:
        net = sd.net
        sysctl = net.sysctl
        clock = net.clock
        budget = sysctl["net.core.netdev_budget"]
        time_limit = clock() + sysctl["net.core.netdev_budget_usecs"] / 1e6
        poll_list = sd.poll_list
        repoll: list[NapiStruct] = []
        while True:                              # start:
            sd.in_net_rx_action = True
            lst = list(poll_list)
            poll_list.clear()
            n_lst = len(lst)
            i = 0
            squeezed = False
            while i < n_lst:
                n = lst[i]
                i += 1
                # napi_poll -> __napi_poll, written out.
                weight = n.weight
                work = n.poll(n, weight) if n.state & NAPI_STATE_SCHED else 0
                if work >= weight and __napi_poll_used_weight(n):
                    repoll.append(n)
                budget -= work
                if budget <= 0 or clock() >= time_limit:
                    sd.time_squeeze += 1
                    squeezed = True
                    break
            if squeezed or repoll:
                break
            sd.in_net_rx_action = False
            if not poll_list:
                break
            # ____napi_schedule refilled poll_list while we polled: go round.
        # Back on the poll_list: the unpolled ones, the newly scheduled ones, the repolls.
        rest = lst[i:]
        if rest or repoll:
            new = list(poll_list)
            poll_list.clear()
            poll_list.extend(rest)
            poll_list.extend(new)
            poll_list.extend(repoll)
        if poll_list:
            sd.pending |= 1 << NET_RX_SOFTIRQ
        sd.in_net_rx_action = False
        if sd.rps_ipi_list:
            net_rps_send_ipi(sd)
    finally:
        sd.in_net_rx_action = False          # never left set by a failing poll


def __netif_schedule(q):
    """Put a qdisc on this CPU's output_queue and raise NET_TX (dev.c)."""
    if q.state & __QDISC_STATE_SCHED:
        return
    q.state |= __QDISC_STATE_SCHED
    net = q.dev.net
    sd = net.cpus[net.cur_cpu]
    sd.output_queue.append(q)
    raise_softirq(sd, NET_TX_SOFTIRQ)


__QDISC_STATE_SCHED = 1 << 0     # include/net/sch_generic.h: on an output_queue


def net_tx_action(sd):
    """NET_TX softirq: run the qdiscs that __netif_schedule left on output_queue.

    Emulation note: qdisc_run is reached as q.run(), so that this module does
    not import sched/ (Linux has both in one file).
    """
    out = sd.output_queue
    n = len(out)
    for _ in range(n):
        q = out.popleft()
        q.state &= ~__QDISC_STATE_SCHED
        q.run()


# ---------------------------------------------------------------- backlog and RPS IPIs

def skb_flow_limit(skb, qlen, sd_this):
    """Drop a packet of a flow that dominates a backlog more than half full.

    Linux: skb_flow_limit (net.core.flow_limit_cpu_bitmap selects the CPUs).
    The history is that of the CPU doing the enqueue (this CPU).
    """
    fl = sd_this.flow_limit
    if fl is None or qlen < (sd_this.net.sysctl["net.core.netdev_max_backlog"] >> 1):
        return False
    new_flow = rps.skb_get_hash(skb) & (fl.num_buckets - 1)
    old_flow = fl.history[fl.history_head]
    fl.history[fl.history_head] = new_flow
    fl.history_head = (fl.history_head + 1) & (FLOW_LIMIT_HISTORY - 1)
    if fl.buckets[old_flow]:
        fl.buckets[old_flow] -= 1
    fl.buckets[new_flow] += 1
    if fl.buckets[new_flow] > (FLOW_LIMIT_HISTORY >> 1):
        fl.count += 1
        return True
    return False


def enqueue_to_backlog(skb, cpu):
    """Put skb on cpu's input_pkt_queue and schedule its backlog NAPI.

    When cpu is another CPU (RPS), the backlog is scheduled by an IPI that
    this CPU sends at the end of its NET_RX (napi_schedule_rps).
    """
    if skb.trace is not None:
        skb.trace.hit("enqueue_to_backlog", cpu)
    dev = skb.dev
    net = dev.net
    if not dev.flags & IFF_UP:       # netif_running
        dev.stats.rx_dropped += 1
        kfree_skb(skb, SKB_DROP_REASON_DEV_READY)
        return 1
    sd = net.cpus[cpu]
    q = sd.input_pkt_queue
    qlen = len(q)
    if qlen <= net.sysctl["net.core.netdev_max_backlog"]:
        mysd = net.cpus[net.cur_cpu]
        if mysd.flow_limit is None or not skb_flow_limit(skb, qlen, mysd):
            if not qlen:
                # First packet: schedule the backlog NAPI (unless already polling).
                backlog = sd.backlog
                if not backlog.state & NAPI_STATE_SCHED:
                    backlog.state |= NAPI_STATE_SCHED
                    if sd is not mysd:
                        napi_schedule_rps(sd, mysd)
                    else:
                        # napi_schedule_rps on this CPU: ____napi_schedule and
                        # raise_softirq, written out.
                        backlog.sd = sd
                        sd.poll_list.append(backlog)
                        if not sd.in_net_rx_action:
                            sd.pending |= 1 << NET_RX_SOFTIRQ
                            if net.softirq_cpu != sd.cpu:
                                net.wake_cpu(sd.cpu)
            q.append(skb)
            return 0
    sd.dropped += 1
    dev.stats.rx_dropped += 1
    kfree_skb(skb, SKB_DROP_REASON_CPU_BACKLOG)
    return 1


def napi_schedule_rps(sd, mysd):
    """Schedule sd's backlog: directly on this CPU, by IPI on another one."""
    if sd is not mysd:
        if sd not in mysd.rps_ipi_list:
            mysd.rps_ipi_list.append(sd)
        # Outside net_rx_action NET_RX must run here to send the IPI.
        if not mysd.in_net_rx_action:
            raise_softirq(mysd, NET_RX_SOFTIRQ)
        return 1
    ____napi_schedule(mysd, mysd.backlog)
    return 0


def net_rps_send_ipi(mysd):
    """Send the IPIs RPS queued: each target CPU schedules its backlog."""
    lst = mysd.rps_ipi_list
    if not lst:
        return
    mysd.rps_ipi_list = []
    for remsd in lst:
        rps_trigger_softirq(remsd)


def rps_trigger_softirq(sd):
    """The RPS IPI on the target CPU: poll its backlog; count it there."""
    ____napi_schedule(sd, sd.backlog)
    sd.received_rps += 1


def flow_limit_update(net):
    """Apply net.core.flow_limit_cpu_bitmap / flow_limit_table_len (sysctl handler)."""
    mask = int(net.sysctl.get("net.core.flow_limit_cpu_bitmap", 0))
    size = int(net.sysctl.get("net.core.flow_limit_table_len", 4096))
    size = 1 << max(0, size - 1).bit_length() if size > 0 else 1
    for sd in net.cpus:
        if mask >> sd.cpu & 1:
            if sd.flow_limit is None or sd.flow_limit.num_buckets != size:
                sd.flow_limit = SdFlowLimit(size)
        else:
            if sd.flow_limit is not None:
                sd.flow_limit_count += sd.flow_limit.count
            sd.flow_limit = None


# Bound late: gro.py reaches dev.py, which imports this module (Linux has
# them all in dev.c); rps.py only hashes.
from . import gro, rps  # noqa: E402
