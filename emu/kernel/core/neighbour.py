"""The neighbour subsystem: L3 -> L2 address resolution with NUD states.

Linux: net/core/neighbour.c, include/net/neighbour.h; RFC 1122 2.3.2.

A Neighbour moves through the NUD states (Neighbour Unreachability
Detection): NONE -> INCOMPLETE (soliciting) -> REACHABLE -> STALE -> DELAY ->
PROBE -> REACHABLE | FAILED. Packets sent while INCOMPLETE wait on arp_queue.
The protocol (ARP) supplies solicit() and error_report() through NeighOps.
"""
from collections import deque

from ..hdr.if_ether import mac_to_str
from ..hdr.ip import inet_ntoa
from .dev import dev_queue_xmit
from .skbuff import (
    SKB_DROP_REASON_NEIGH_FAILED, SKB_DROP_REASON_NEIGH_QUEUEFULL, kfree_skb, skb_push,
)
from .timer import TimerList

NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_STALE = 0x04
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_FAILED = 0x20
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
NUD_NONE = 0x00

NUD_IN_TIMER = NUD_INCOMPLETE | NUD_REACHABLE | NUD_DELAY | NUD_PROBE
NUD_VALID = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY
NUD_CONNECTED = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE

NUD_NAMES = {NUD_NONE: "NONE", NUD_INCOMPLETE: "INCOMPLETE", NUD_REACHABLE: "REACHABLE",
             NUD_STALE: "STALE", NUD_DELAY: "DELAY", NUD_PROBE: "PROBE",
             NUD_FAILED: "FAILED", NUD_NOARP: "NOARP", NUD_PERMANENT: "PERMANENT"}

NEIGH_UPDATE_F_OVERRIDE = 1
NEIGH_UPDATE_F_ADMIN = 2


class NeighOps:
    """struct neigh_ops: what the protocol provides."""

    __slots__ = ("solicit", "error_report")

    def __init__(self, solicit, error_report):
        self.solicit = solicit            # solicit(neigh, skb_or_None)
        self.error_report = error_report  # error_report(neigh, skb)


class HhCache:
    """struct hh_cache: the link-layer header of every frame to one neighbour,
    built once (header_ops.cache) and copied in front of each packet."""

    __slots__ = ("hh_len", "hh_data")

    def __init__(self):
        self.hh_len = 0              # 0: not built yet
        self.hh_data = b""


class Neighbour:
    """struct neighbour."""

    __slots__ = ("tbl", "primary_key", "dev", "ha", "nud_state", "arp_queue",
                 "probes", "updated", "confirmed", "used", "timer", "dead", "hh")

    def __init__(self, tbl, key, dev, now):
        self.tbl = tbl
        self.primary_key = key
        self.dev = dev
        self.ha = None
        self.nud_state = NUD_NONE
        self.arp_queue: deque = deque()
        self.probes = 0
        self.updated = now
        self.confirmed = now - 1e6
        self.used = now
        self.timer = TimerList(neigh_timer_handler, self)
        self.dead = False
        self.hh = HhCache()


class NeighTable:
    """struct neigh_table (one per protocol: arp_tbl)."""

    def __init__(self, net, ops, prefix="net.ipv4.neigh.default.", constructor=None):
        self.net = net
        self.ops = ops
        self.constructor = constructor   # constructor(neigh): arp_constructor
        self.hash = {}          # (key, ifindex) -> Neighbour
        self.prefix = prefix
        self.stats = {"allocs": 0, "destroys": 0, "lookups": 0, "hits": 0,
                      "res_failed": 0, "unresolved_discards": 0, "periodic_gc_runs": 0,
                      "forced_gc_runs": 0, "table_fulls": 0}
        self.last_flush = net.clock()
        self.gc_work = TimerList(neigh_periodic_work, self)

    def parm(self, name):
        return self.net.sysctl[self.prefix + name]


def neigh_lookup(tbl, key, dev):
    tbl.stats["lookups"] += 1
    n = tbl.hash.get((key, dev.ifindex))
    if n is not None:
        tbl.stats["hits"] += 1
    return n


def neigh_create(tbl, key, dev):
    """Find or make the entry; None when the table is full (neigh_alloc -> ENOBUFS)."""
    n = tbl.hash.get((key, dev.ifindex))
    if n is None:
        now = tbl.net.clock()
        entries = len(tbl.hash)
        if entries >= tbl.parm("gc_thresh3") or \
                (entries >= tbl.parm("gc_thresh2") and now > tbl.last_flush + 5):
            if not neigh_forced_gc(tbl) and entries >= tbl.parm("gc_thresh3"):
                tbl.stats["table_fulls"] += 1
                return None
        if not tbl.gc_work.pending:
            tbl.net.mod_timer(tbl.gc_work, now + _gc_interval(tbl))
        n = Neighbour(tbl, key, dev, now)
        if tbl.constructor is not None:
            tbl.constructor(n)
        tbl.hash[(key, dev.ifindex)] = n
        tbl.stats["allocs"] += 1
    return n


def __neigh_lookup(tbl, key, dev, creat):
    n = neigh_lookup(tbl, key, dev)
    if n is None and creat:
        n = neigh_create(tbl, key, dev)
    return n


def neigh_delete(tbl, n):
    tbl.net.del_timer(n.timer)
    n.dead = True
    tbl.hash.pop((n.primary_key, n.dev.ifindex), None)
    tbl.stats["destroys"] += 1
    while n.arp_queue:
        kfree_skb(n.arp_queue.popleft(), "NEIGH_DEAD")


def _gc_interval(tbl):
    return tbl.parm("base_reachable_time_ms") / 2000.0


def _gc_candidate(n):
    # Linux keeps anything referenced: a pending timer holds a reference, as do
    # packets waiting for resolution. Permanent entries are never collected.
    return not n.nud_state & (NUD_PERMANENT | NUD_IN_TIMER) and not n.arp_queue


def neigh_forced_gc(tbl):
    """Drop FAILED entries and ones not updated for 5 s, down to gc_thresh2."""
    tbl.stats["forced_gc_runs"] += 1
    now = tbl.net.clock()
    tbl.last_flush = now
    target = tbl.parm("gc_thresh2")
    shrunk = 0
    for n in list(tbl.hash.values()):
        if len(tbl.hash) <= target:
            break
        if _gc_candidate(n) and (n.nud_state == NUD_FAILED or now >= n.updated + 5):
            neigh_delete(tbl, n)
            shrunk += 1
    return shrunk


def neigh_periodic_work(tbl):
    """Every base_reachable_time/2: above gc_thresh1, forget FAILED entries and
    ones unused for gc_stale_time (neigh_periodic_work)."""
    net = tbl.net
    now = net.clock()
    if len(tbl.hash) >= tbl.parm("gc_thresh1"):
        tbl.stats["periodic_gc_runs"] += 1
        stale = tbl.parm("gc_stale_time")
        for n in list(tbl.hash.values()):
            if _gc_candidate(n) and (n.nud_state == NUD_FAILED or now >= n.used + stale):
                neigh_delete(tbl, n)
    if tbl.hash:
        net.mod_timer(tbl.gc_work, now + _gc_interval(tbl))


def neigh_ifdown(tbl, dev):
    """The device went down: forget its neighbours (neigh_flush_dev)."""
    for n in [n for n in tbl.hash.values() if n.dev is dev]:
        neigh_delete(tbl, n)


def _retrans_time(tbl):
    return tbl.parm("retrans_time_ms") / 1000.0


def _max_probes(tbl, n):
    return tbl.parm("ucast_solicit") + tbl.parm("mcast_solicit")


def neigh_event_send(n, skb):
    """Start or continue resolution; returns 0 if n can be used now, 1 if skb waits."""
    state = n.nud_state
    net = n.tbl.net
    now = net.clock()
    n.used = now
    if state & (NUD_CONNECTED | NUD_DELAY | NUD_PROBE):
        return 0
    if state == NUD_STALE:
        # Use the stale address, but verify it soon (RFC 4861 7.3.3, as Linux).
        n.nud_state = NUD_DELAY
        net.mod_timer(n.timer, now + n.tbl.parm("delay_first_probe_time"))
        return 0
    if state == NUD_NONE or state & NUD_FAILED:
        n.nud_state = NUD_INCOMPLETE
        n.probes = 1
        n.updated = now
        net.mod_timer(n.timer, now + _retrans_time(n.tbl))
        n.tbl.ops.solicit(n, skb)
    if skb is not None:
        tbl = n.tbl
        if len(n.arp_queue) >= tbl.parm("unres_qlen"):
            tbl.stats["unresolved_discards"] += 1
            kfree_skb(n.arp_queue.popleft(), SKB_DROP_REASON_NEIGH_QUEUEFULL)
        n.arp_queue.append(skb)
    return 1


def neigh_update(n, lladdr, new, flags=NEIGH_UPDATE_F_OVERRIDE):
    """A protocol learned something about n (an ARP reply or request)."""
    net = n.tbl.net
    now = net.clock()
    old = n.nud_state
    if old & (NUD_NOARP | NUD_PERMANENT) and not flags & NEIGH_UPDATE_F_ADMIN:
        return
    if not new & NUD_VALID:
        net.del_timer(n.timer)
        n.nud_state = new
        return
    if lladdr is None:
        lladdr = n.ha
    elif n.ha is not None and lladdr != n.ha and not flags & NEIGH_UPDATE_F_OVERRIDE:
        if old & NUD_CONNECTED:
            return          # do not let a stray reply replace a confirmed address
        new = NUD_STALE
    if old & NUD_VALID and lladdr == n.ha and new == NUD_STALE and \
            not flags & NEIGH_UPDATE_F_ADMIN:
        # Linux neigh_update: a valid entry whose address did not change keeps
        # its state (an ARP request from a REACHABLE neighbour is only a hint).
        return
    if new & NUD_CONNECTED:
        n.confirmed = now
    n.updated = now
    if lladdr != n.ha:
        n.ha = lladdr
        neigh_update_hhs(n)
    n.nud_state = new
    if new & NUD_REACHABLE:
        net.mod_timer(n.timer, now + n.tbl.parm("base_reachable_time_ms") / 1000.0)
    elif new & NUD_IN_TIMER == 0:
        net.del_timer(n.timer)
    n.probes = 0
    if new & NUD_VALID and n.arp_queue:
        # Resolution done: send what waited (neigh_update -> n->output).
        q = n.arp_queue
        n.arp_queue = deque()
        for skb in q:
            neigh_output_resolved(n, skb)


def neigh_timer_handler(n):
    """Per-neighbour timer: ages REACHABLE, probes in DELAY/PROBE/INCOMPLETE."""
    if n.dead:
        return
    tbl = n.tbl
    net = tbl.net
    now = net.clock()
    state = n.nud_state
    if state & NUD_REACHABLE:
        if now >= n.confirmed + tbl.parm("base_reachable_time_ms") / 1000.0:
            n.nud_state = NUD_STALE
        else:
            net.mod_timer(n.timer, n.confirmed + tbl.parm("base_reachable_time_ms") / 1000.0)
        return
    if state & NUD_DELAY:
        if now >= n.confirmed + tbl.parm("delay_first_probe_time") and \
                now >= n.updated + tbl.parm("delay_first_probe_time"):
            n.nud_state = NUD_PROBE
            n.probes = 0
            state = NUD_PROBE
        else:
            n.nud_state = NUD_REACHABLE
            net.mod_timer(n.timer, n.confirmed + tbl.parm("base_reachable_time_ms") / 1000.0)
            return
    if state & (NUD_INCOMPLETE | NUD_PROBE):
        limit = tbl.parm("mcast_solicit") if state & NUD_INCOMPLETE else tbl.parm("ucast_solicit")
        if n.probes >= limit:
            n.nud_state = NUD_FAILED
            tbl.stats["res_failed"] += 1
            q = n.arp_queue
            n.arp_queue = deque()
            for skb in q:
                tbl.ops.error_report(n, skb)
                kfree_skb(skb, SKB_DROP_REASON_NEIGH_FAILED)
            return
        n.probes += 1
        net.mod_timer(n.timer, now + _retrans_time(tbl))
        tbl.ops.solicit(n, n.arp_queue[-1] if n.arp_queue else None)


def neigh_update_hhs(n):
    """n's link-layer address changed: rewrite its cached header."""
    hh = n.hh
    if hh.hh_len:
        update = n.dev.header_ops.cache_update
        if update is not None and n.ha is not None:
            update(hh, n.dev, n.ha)
        else:
            hh.hh_len = 0


def neigh_hh_init(n, skb):
    """Build n's cached header on its first resolved send (header_ops.cache)."""
    cache = n.dev.header_ops.cache
    if cache is not None and not n.hh.hh_len and n.ha is not None:
        cache(n, n.hh, skb.protocol)


def neigh_output_resolved(n, skb):
    """neigh_resolve_output once n.ha is known: build the header and queue it."""
    dev = n.dev
    if not n.hh.hh_len:
        neigh_hh_init(n, skb)
    dev.header_ops.create(skb, dev, skb.protocol, n.ha, dev.dev_addr, skb.len)
    return dev_queue_xmit(skb)


def neigh_hh_output(hh, skb):
    """Copy the cached hard header in front of the packet and queue it
    (include/net/neighbour.h): the fast path of a connected neighbour."""
    if skb.trace is not None:
        skb.trace.hit("neigh_hh_output")
    hh_len = hh.hh_len
    off = skb_push(skb, hh_len)
    skb.buf[off:off + hh_len] = hh.hh_data
    return dev_queue_xmit(skb)


def neigh_output(n, skb):
    """Send skb to neighbour n: at once if its address is valid, else after resolution."""
    if skb.trace is not None:
        skb.trace.hit("neigh_output", NUD_NAMES.get(n.nud_state, n.nud_state))
    if n.nud_state & NUD_CONNECTED:
        hh = n.hh
        if hh.hh_len:
            return neigh_hh_output(hh, skb)
        return neigh_output_resolved(n, skb)
    if neigh_event_send(n, skb) == 0:
        return neigh_output_resolved(n, skb)
    return 0


def neigh_dump(tbl):
    """The table as `ip neigh show` lists it."""
    return [{"dst": inet_ntoa(n.primary_key), "dev": n.dev.name,
             "lladdr": mac_to_str(n.ha) if n.ha is not None else None,
             "state": NUD_NAMES.get(n.nud_state, str(n.nud_state)),
             "probes": n.probes, "queued": len(n.arp_queue)}
            for n in sorted(tbl.hash.values(), key=lambda n: (n.dev.ifindex, n.primary_key))]
