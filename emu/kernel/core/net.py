"""struct net: everything one node's kernel owns.

Linux: include/net/net_namespace.h, net/core/net_namespace.c

A Net is the single owner of a node's state: devices, protocol tables,
routing, neighbours, sockets, counters, sysctls, timers and the per-CPU
softnet_data. The runtime gives it a clock and the wake_cpu hook; unit tests
give it a fake clock and drive softirqs inline.
"""
from collections import Counter

from ..hdr.if_ether import ETH_P_ALL
from ..lib.random32 import RndState, derive_seed
from .entry import NO_LOCK, _no_exit
from .timer import TimerBase

DEFAULT_SYSCTLS = {
    "net.core.netdev_budget": 300,
    "net.core.netdev_budget_usecs": 2000,
    "net.core.netdev_max_backlog": 1000,
    "net.core.dev_weight": 64,
    "net.core.dev_weight_tx_bias": 1,        # NET_TX quota: dev_weight * this (dev_tx_weight)
    "net.core.gro_normal_batch": 8,
    "net.core.flow_limit_cpu_bitmap": 0,
    "net.core.flow_limit_table_len": 4096,
    "net.core.default_qdisc": "pfifo_fast",
    "net.core.rmem_default": 212992,
    "net.core.rmem_max": 212992,
    "net.core.wmem_default": 212992,
    "net.core.wmem_max": 212992,
    "net.ipv4.ip_forward": 0,
    "net.ipv4.ip_early_demux": 1,            # ip_rcv_finish_core: find the socket before routing
    "net.ipv4.conf.all.ignore_routes_with_linkdown": 0,
    "net.ipv4.conf.default.ignore_routes_with_linkdown": 0,
    "net.ipv4.ip_default_ttl": 64,
    "net.ipv4.icmp_echo_ignore_all": 0,
    "net.ipv4.icmp_echo_ignore_broadcasts": 1,
    "net.ipv4.icmp_ratelimit": 1000,         # ms between errors to one host (after a burst of 6)
    "net.ipv4.icmp_ratemask": 0x1818,        # dest unreach, source quench, time exceeded, param prob
    "net.ipv4.icmp_msgs_per_sec": 1000,
    "net.ipv4.icmp_msgs_burst": 50,
    # Per-device IPv4 settings (devinet.c ipv4_devconf / ipv4_devconf_dflt): "all",
    # "default", and one copy of default per device (see devinet.DEVCONF_DEFAULTS).
    "net.ipv4.conf.all.accept_local": 0,
    "net.ipv4.conf.default.accept_local": 0,
    "net.ipv4.conf.all.accept_source_route": 0,
    "net.ipv4.conf.default.accept_source_route": 1,     # ANDed with all's 0: off
    "net.ipv4.conf.all.arp_accept": 0,
    "net.ipv4.conf.default.arp_accept": 0,
    "net.ipv4.conf.all.arp_ignore": 0,
    "net.ipv4.conf.default.arp_ignore": 0,
    "net.ipv4.conf.all.drop_gratuitous_arp": 0,
    "net.ipv4.conf.default.drop_gratuitous_arp": 0,
    "net.ipv4.conf.all.arp_notify": 0,
    "net.ipv4.conf.default.arp_notify": 0,
    "net.ipv4.neigh.default.locktime": 100,  # USER_HZ ticks (1 s), as /proc/sys shows it
    "net.ipv4.neigh.default.retrans_time_ms": 1000,
    "net.ipv4.neigh.default.base_reachable_time_ms": 30000,
    "net.ipv4.neigh.default.delay_first_probe_time": 5,
    "net.ipv4.neigh.default.gc_stale_time": 60,
    "net.ipv4.neigh.default.mcast_solicit": 3,
    "net.ipv4.neigh.default.ucast_solicit": 3,
    "net.ipv4.neigh.default.unres_qlen": 101,
    # Table-wide limits (Linux shows them under default too): periodic GC above
    # thresh1, forced GC above thresh2 (at most every 5 s) or at thresh3, where
    # allocation fails ("neighbor table overflow").
    "net.ipv4.neigh.default.gc_thresh1": 128,
    "net.ipv4.neigh.default.gc_thresh2": 512,
    "net.ipv4.neigh.default.gc_thresh3": 1024,
    "net.bridge.ageing_time": 300,
    # Write-only in Linux (ipv4_sysctl_rtcache_flush): any write flushes the route cache.
    "net.ipv4.route.flush": 0,
}


class FakeClock:
    """A settable clock for tests: net.clock() returns .now."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, dt):
        self.now += dt
        return self.now


def _never():
    return False


class Net:
    """One node's kernel state (struct net plus the per-CPU data it needs)."""

    ETH_P_ALL = ETH_P_ALL

    def __init__(self, name="node", ncpus=1, clock=None, seed=0):
        self.name = name
        self.clock = clock if clock is not None else FakeClock()
        # Randomness comes in like time: one seeded generator per namespace.
        self.seed = seed
        self.rng = RndState(derive_seed("net", seed, name))
        self.ncpus = ncpus
        self.cpus: list = []       # softnet_data per CPU: net_dev_init fills it
        self.softirq_vec: list = [None] * 10   # open_softirq: nr -> action(sd)
        self.cur_cpu = 0           # CPU the kernel is running on now
        self.softirq_cpu = -1      # CPU whose softirqs are running, or -1
        self.wake_cpu = _no_wake   # runtime hook: the IPI that wakes a CPU thread
        self.dev_by_name = {}
        self.dev_by_index = {}
        self.ifindex_next = 0
        self.ptype_base = {}       # ethertype -> [PacketType]
        self.ptype_all = []        # taps on every device
        self.notifiers = []        # netdev notifier chain: f(event, dev)
        self.sysctl = dict(DEFAULT_SYSCTLS)
        self.timers = TimerBase()
        self.drop_reasons: Counter[str] = Counter()
        self.tracer = None
        self.mib = {}              # "Ip" -> {"InReceives": n, ...}: see snmp.py
        self.proto = {}            # per-protocol state set up by the *_init functions
        self.rt_genid = 0          # routing generation: cached dsts older than it are stale (dst.py)
        # Emulation note: no Linux counterpart. Moves on anything that may change
        # whether a send fails (routes, socket errors, PMTU); the runtime's send
        # credits (nodes/syscalls.py) hold only while it stays.
        self.send_epoch = 1
        # need_resched(): a task waits for the CPU (the runtime: a system call
        # waits for the kernel); softirq loops end early for it.
        self.need_resched = _never
        # The way in (entry.py): the runtime sets a real lock and its exit work.
        self.kernel_lock = NO_LOCK
        self.kernel_exit = _no_exit
        self.oops = 0              # unexpected exceptions caught at the entry
        self.oops_log = None       # their reports (the last few)

    # ---- time
    def now(self):
        return self.clock()

    def mod_timer(self, timer, expires):
        self.timers.mod_timer(timer, expires)

    def del_timer(self, timer):
        return self.timers.del_timer(timer)

    def next_timer(self):
        return self.timers.next_timer()

    def run_timers(self, now=None):
        return self.timers.run_timers(self.clock() if now is None else now)

    # ---- notifier chain (register_netdevice_notifier)
    def notify(self, event, dev):
        for fn in self.notifiers:
            fn(event, dev)

    def devices(self):
        return [self.dev_by_index[i] for i in sorted(self.dev_by_index)]


def _no_wake(cpu):
    """Inline use: the caller runs do_softirq itself."""
