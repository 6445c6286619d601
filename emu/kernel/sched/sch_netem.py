"""netem: the network emulator qdisc (delay, jitter, loss, duplication,
corruption, reordering, rate, slots).

Linux: net/sched/sch_netem.c, include/uapi/linux/pkt_sched.h (tc_netem_*),
include/net/inet_ecn.h (INET_ECN_set_ce), net/sched/sch_api.c (qdisc_watchdog).

Options arrive as tc sends them (the TCA_NETEM_* attributes, already parsed
by emu/netem.py the way iproute2's q_netem.c parses them): times in
nanoseconds, probabilities scaled to 0..2**32-1, the distribution as a table
of signed 16-bit values, the rate in bytes per second.

Enqueue follows netem_enqueue: duplicate -> loss (or ECN mark) -> corrupt ->
limit -> reorder or delay (with rate). Delayed packets wait in the tfifo,
ordered by time_to_send (equal times keep their order); a reordered packet
goes to the head queue and leaves first. The watchdog is a kernel timer that
runs __netif_schedule on the root qdisc when the head packet is due.

Emulation note: Linux draws init_crandom's first value and the corruption
position from get_random_u32(); here every draw (correlation state, loss,
duplicate, corruption position and bit, reorder, jitter, slots) comes from the
qdisc's own RndState seeded by `seed` (default: derived from the lab seed, the
node and the device), so the same seed drops and corrupts the same packets.
Packets are not orphaned (skb_orphan_partial): emu has no TCP small queues.
"""
import heapq
from collections import deque

from ..core.netdevice import NETIF_F_GSO_MASK
from ..core.skbuff import (
    CHECKSUM_NONE, CHECKSUM_PARTIAL, kfree_skb, skb_checksum_help, skb_clone, skb_cow,
    skb_is_gso, skb_unshare,
)
from ..core.timer import TimerList
from ..lib.random32 import RndState, derive_seed
from .sch_generic import (
    NET_XMIT_DROP, NET_XMIT_MASK, NET_XMIT_SUCCESS, QdiscOps, SKB_DROP_REASON_QDISC_DROP,
)

NETEM_DIST_SCALE = 8192
NETEM_DIST_MAX = 16384
__NET_XMIT_STOLEN = 0x00010000
__NET_XMIT_BYPASS = 0x00020000
U32_MAX = 0xFFFFFFFF
INT_MAX = 0x7FFFFFFF
NSEC_PER_SEC = 1000000000

CLG_RANDOM, CLG_4_STATES, CLG_GILB_ELL = 0, 1, 2
TX_IN_GAP_PERIOD, TX_IN_BURST_PERIOD, LOST_IN_GAP_PERIOD, LOST_IN_BURST_PERIOD = 1, 2, 3, 4
GOOD_STATE, BAD_STATE = 1, 2


def net_xmit_drop_count(rc):
    return 0 if rc & __NET_XMIT_STOLEN else 1


def ktime_get_ns(net):
    return int(round(net.now() * 1e9))


def qdisc_pkt_len(skb):
    """qdisc_pkt_len_init: a GSO skb counts the headers of every segment it will be."""
    sh = skb.shinfo
    if not sh.gso_size or skb.transport_header < 0 or skb.mac_header < 0:
        return skb.len
    th = skb.transport_header
    hdr_len = th - skb.data
    if th + 13 <= skb.tail and not sh.gso_type & 0x10000:       # TCP: its header length
        hdr_len += (skb.buf[th + 12] >> 4) * 4
    else:
        hdr_len += 8
    payload = max(0, skb.len - hdr_len)
    segs = sh.gso_segs or max(1, -(-payload // sh.gso_size))
    return skb.len + (segs - 1) * max(0, hdr_len)


# ---------------------------------------------------------------- the watchdog

class QdiscWatchdog:
    """struct qdisc_watchdog: a timer that reschedules the root qdisc."""

    __slots__ = ("timer", "qdisc", "last_expires")

    def __init__(self, q):
        self.qdisc = q
        self.timer = TimerList(qdisc_watchdog, self)
        self.last_expires = 0


def qdisc_root(q):
    """The qdisc at the top of q's tree (what dev_queue_xmit enqueues on)."""
    root = q.dev_queue.qdisc_sleeping if q.dev_queue is not None else None
    return root if root is not None else q


def qdisc_tree_reduce_backlog(q, n, length):
    """The ancestors of q lose n packets and length bytes (negative: gain them)."""
    root = qdisc_root(q)
    chain = []
    p = root
    while p is not None and p is not q and p.ops.leaf is not None:
        chain.append(p)
        p = p.ops.leaf(p, 1)
    if p is not q:
        return
    for a in chain:
        a.qlen -= n
        a.backlog -= length


def qdisc_watchdog(wd):
    from ..core.napi import __netif_schedule
    __netif_schedule(qdisc_root(wd.qdisc))


def qdisc_watchdog_schedule_ns(wd, expires_ns):
    """Arm (or move) the watchdog; an armed timer at the same time is left alone."""
    net = wd.qdisc.dev.net
    if wd.timer.pending and wd.last_expires == expires_ns:
        return
    wd.last_expires = expires_ns
    net.mod_timer(wd.timer, expires_ns / 1e9)


def qdisc_watchdog_cancel(wd):
    wd.qdisc.dev.net.del_timer(wd.timer)


# ---------------------------------------------------------------- peeking non-work-conserving children

def qdisc_peek_dequeued(q):
    """Dequeue into the stash (q.gso_skb) so a parent can look before it takes."""
    if not q.gso_skb:
        skb = q.ops.dequeue(q)
        if skb is None:
            return None
        q.gso_skb.append(skb)
        q.qlen += 1
        q.backlog += skb.len
    return q.gso_skb[0]


def qdisc_dequeue_peeked(q):
    if q.gso_skb:
        skb = q.gso_skb.popleft()
        q.qlen -= 1
        q.backlog -= skb.len
        return skb
    return q.ops.dequeue(q)


def qdisc_peek(q):
    return q.ops.peek(q) if q.ops.peek is not None else qdisc_peek_dequeued(q)


# ---------------------------------------------------------------- randomness

class CrndState:
    """struct crndstate: the last value and the correlation (u32 scale)."""

    __slots__ = ("last", "rho")

    def __init__(self, rho=0, last=0):
        self.rho = rho
        self.last = last


def init_crandom(state, rho, prng):
    state.rho = rho
    state.last = prng.prandom_u32_state()


def get_crandom(state, prng):
    """A uniform u32, correlated with the last one by rho/2**32."""
    if state is None or state.rho == 0:
        return prng.prandom_u32_state()
    value = prng.prandom_u32_state()
    rho = state.rho + 1
    answer = (value * ((1 << 32) - rho) + state.last * rho) >> 32
    state.last = answer
    return answer


def _cdiv(a, b):
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _cmod(a, b):
    return a - _cdiv(a, b) * b


def tabledist(mu, sigma, state, prng, dist):
    """mu plus a draw of deviation sigma: uniform, or from the table (inverse CDF)."""
    if sigma == 0:
        return mu
    rnd = get_crandom(state, prng)
    if dist is None:                          # the default uniform distribution
        return ((rnd % (2 * sigma)) + mu) - sigma
    t = dist[rnd % len(dist)]
    x = _cmod(sigma, NETEM_DIST_SCALE) * t
    if x >= 0:
        x += NETEM_DIST_SCALE // 2
    else:
        x -= NETEM_DIST_SCALE // 2
    return _cdiv(x, NETEM_DIST_SCALE) + _cdiv(sigma, NETEM_DIST_SCALE) * t + mu


# ---------------------------------------------------------------- private data

class ClgState:
    """struct clgstate: the Markov loss models' state and transition probabilities."""

    __slots__ = ("state", "a1", "a2", "a3", "a4", "a5")

    def __init__(self):
        self.state = 1
        self.a1 = self.a2 = self.a3 = self.a4 = self.a5 = 0


class SlotState:
    __slots__ = ("slot_next", "packets_left", "bytes_left")

    def __init__(self):
        self.slot_next = 0
        self.packets_left = 0
        self.bytes_left = 0


class NetemSchedData:
    """struct netem_sched_data."""

    def __init__(self, q):
        self.t_heap = []             # tfifo: (time_to_send, seq, skb)
        self.t_seq = 0
        self.t_len = 0
        self.t_max = None            # latest time_to_send in the tfifo (skb_rb_last)
        self.latency = self.jitter = 0
        self.loss = self.limit = self.counter = self.gap = 0
        self.duplicate = self.reorder = self.corrupt = 0
        self.rate = self.packet_overhead = self.cell_size = self.cell_overhead = 0
        self.delay_cor, self.loss_cor, self.dup_cor = CrndState(), CrndState(), CrndState()
        self.reorder_cor, self.corrupt_cor = CrndState(), CrndState()
        self.delay_dist = None
        self.slot_dist = None
        self.loss_model = CLG_RANDOM
        self.clg = ClgState()
        self.ecn = False
        self.seed = 0
        self.seed_given = False
        self.prng = RndState(0)
        self.slot_config = None
        self.slot = SlotState()
        self.watchdog = QdiscWatchdog(q)
        self.opts = {}               # what tc gave, for netem_dump


# ---------------------------------------------------------------- loss models

def loss_4state(pd):
    """The 4-state Markov chain of the GI (General and Intuitive) loss model."""
    clg = pd.clg
    rnd = pd.prng.prandom_u32_state()
    s = clg.state
    if s == TX_IN_GAP_PERIOD:
        if rnd < clg.a4:
            clg.state = LOST_IN_GAP_PERIOD
            return True
        if clg.a4 < rnd < clg.a1 + clg.a4:
            clg.state = LOST_IN_BURST_PERIOD
            return True
        if clg.a1 + clg.a4 < rnd:
            clg.state = TX_IN_GAP_PERIOD
    elif s == TX_IN_BURST_PERIOD:
        if rnd < clg.a5:
            clg.state = LOST_IN_BURST_PERIOD
            return True
        clg.state = TX_IN_BURST_PERIOD
    elif s == LOST_IN_BURST_PERIOD:
        if rnd < clg.a3:
            clg.state = TX_IN_BURST_PERIOD
        elif clg.a3 < rnd < clg.a2 + clg.a3:
            clg.state = TX_IN_GAP_PERIOD
        elif clg.a2 + clg.a3 < rnd:
            clg.state = LOST_IN_BURST_PERIOD
            return True
    elif s == LOST_IN_GAP_PERIOD:
        clg.state = TX_IN_GAP_PERIOD
    return False


def loss_gilb_ell(pd):
    """Gilbert-Elliot: move between good and bad, then lose with that state's probability."""
    clg = pd.clg
    prng = pd.prng
    if clg.state == GOOD_STATE:
        if prng.prandom_u32_state() < clg.a1:
            clg.state = BAD_STATE
        if prng.prandom_u32_state() < clg.a4:
            return True
    else:
        if prng.prandom_u32_state() < clg.a2:
            clg.state = GOOD_STATE
        if prng.prandom_u32_state() > clg.a3:
            return True
    return False


def loss_event(pd):
    if pd.loss_model == CLG_RANDOM:
        return bool(pd.loss) and pd.loss >= get_crandom(pd.loss_cor, pd.prng)
    if pd.loss_model == CLG_4_STATES:
        return loss_4state(pd)
    return loss_gilb_ell(pd)


def INET_ECN_set_ce(skb):
    """Mark an ECN-capable IPv4 packet Congestion Experienced; False if it is not ECT."""
    nh = skb.network_header
    if skb.protocol != 0x0800 or nh < skb.data or nh + 20 > skb.tail:
        return False
    buf = skb.buf
    ecn = (buf[nh + 1] + 1) & 3
    if ecn <= 1:
        return not ecn                       # CE already: True; not ECT: False
    if skb_cow(skb, 0):
        return False
    buf = skb.buf
    # csum16_add(check, htons(0xFFFB) + htons(ecn)): the TOS byte grew by 1 or 2.
    add = 0xFFFB + ecn
    check = ((buf[nh + 10] << 8) | buf[nh + 11]) + add
    if check > 0xFFFF:
        check = (check & 0xFFFF) + 1
    buf[nh + 10], buf[nh + 11] = check >> 8, check & 0xFF
    buf[nh + 1] |= 3
    return True


# ---------------------------------------------------------------- rate and slots

def packet_time_ns(length, pd):
    """How long length bytes take at the configured rate (with overheads and cells)."""
    length += pd.packet_overhead
    if pd.cell_size:
        cells = length // pd.cell_size
        if length > cells * pd.cell_size:
            cells += 1
        length = cells * (pd.cell_size + pd.cell_overhead)
    return max(0, length) * NSEC_PER_SEC // pd.rate


def get_slot_next(pd, now):
    cfg = pd.slot_config
    if pd.slot_dist is None:
        next_delay = cfg["min_delay"] + ((pd.prng.prandom_u32_state()
                                          * (cfg["max_delay"] - cfg["min_delay"])) >> 32)
    else:
        next_delay = tabledist(cfg["dist_delay"], cfg["dist_jitter"], None, pd.prng,
                               pd.slot_dist)
    pd.slot.slot_next = now + next_delay
    pd.slot.packets_left = cfg["max_packets"]
    pd.slot.bytes_left = cfg["max_bytes"]


# ---------------------------------------------------------------- enqueue

def tfifo_enqueue(skb, q, pd, tts):
    pd.t_seq += 1
    heapq.heappush(pd.t_heap, (tts, pd.t_seq, skb))
    if pd.t_max is None or tts > pd.t_max:
        pd.t_max = tts
    pd.t_len += 1
    q.qlen += 1


def netem_segment(skb, q):
    """Segment a GSO skb in software (netem_segment) so one segment can be corrupted."""
    from ..core import gso
    from ..core.dev import netif_skb_features
    features = netif_skb_features(skb, skb.dev) & ~NETIF_F_GSO_MASK
    segs = gso.skb_gso_segment(skb, features)
    if segs is None:
        return [skb]                         # nothing to cut: corrupt it whole
    if type(segs) is int or not segs:
        q.drops += 1
        kfree_skb(skb, SKB_DROP_REASON_QDISC_DROP)
        return None
    from ..core.skbuff import consume_skb
    consume_skb(skb)
    return list(segs)


def netem_enqueue(skb, q):
    pd = q.priv
    net = q.dev.net
    prng = pd.prng
    prev_len = skb.len
    count = 1
    segs = None
    skb2 = None
    if pd.duplicate and pd.duplicate >= get_crandom(pd.dup_cor, prng):
        count += 1
    if loss_event(pd):
        if pd.ecn and INET_ECN_set_ce(skb):
            q.drops += 1                     # marked, counted as a drop as Linux does
        else:
            count -= 1
    if count == 0:
        q.drops += 1
        kfree_skb(skb, SKB_DROP_REASON_QDISC_DROP)
        return NET_XMIT_SUCCESS | __NET_XMIT_BYPASS
    if count > 1:
        skb2 = skb_clone(skb)                # duplicate before mangling
    if pd.corrupt and pd.corrupt >= get_crandom(pd.corrupt_cor, prng):
        if skb_is_gso(skb):
            segs = netem_segment(skb, q)
            if segs is None:
                skb = None
            else:
                skb, segs = segs[0], segs[1:]
        if skb is not None:
            skb = skb_unshare(skb)
            if skb.ip_summed == CHECKSUM_PARTIAL and skb_checksum_help(skb):
                q.drops += 1
                kfree_skb(skb, SKB_DROP_REASON_QDISC_DROP)
                skb = None
        if skb is not None:
            headlen = skb.len - skb.data_len
            if headlen > 0:
                pos = prng.get_random_u32_below(headlen)
                bit = prng.get_random_u32_below(8)
                skb.buf[skb.data + pos] ^= 1 << bit
            # Emulation note: the frame must not leave claiming a good checksum
            # (a wire DATA_VALID flag): the receiver verifies it and drops it.
            skb.ip_summed = CHECKSUM_NONE
        if skb is None:
            if skb2 is not None:
                kfree_skb(skb2, SKB_DROP_REASON_QDISC_DROP)
            return _netem_enqueue_segs(segs, q, None, prev_len) if segs else NET_XMIT_DROP
    if pd.t_len >= q.limit:
        q.drops += 1
        kfree_skb(skb, SKB_DROP_REASON_QDISC_DROP)
        for s in segs or ():
            kfree_skb(s, SKB_DROP_REASON_QDISC_DROP)
        if skb2 is not None:
            kfree_skb(skb2, SKB_DROP_REASON_QDISC_DROP)
        return NET_XMIT_DROP
    if skb2 is not None:
        # Re-insert the duplicate at the top of the tree (the parents expect
        # one skb per enqueue), not duplicating it again.
        rootq = qdisc_root(q)
        dupsave = pd.duplicate
        pd.duplicate = 0
        rootq.ops.enqueue(skb2, rootq)
        pd.duplicate = dupsave
    q.backlog += skb.len
    now = ktime_get_ns(net)
    if pd.gap == 0 or pd.counter < pd.gap - 1 or pd.reorder < get_crandom(pd.reorder_cor, prng):
        delay = tabledist(pd.latency, pd.jitter, pd.delay_cor, prng, pd.delay_dist)
        if pd.rate:
            last = pd.t_max
            if q.q:
                t_head = q.q[-1][0]
                if last is None or t_head > last:
                    last = t_head
            if last is not None:
                # The last packet queued is the reference: it leaves at `last`,
                # this one is serialised after it.
                delay -= last - now
                delay = max(0, delay)
                now = last
            delay += packet_time_ns(qdisc_pkt_len(skb), pd)
        pd.counter += 1
        tfifo_enqueue(skb, q, pd, now + delay)
    else:
        # Reorder: this one goes to the front and leaves now.
        pd.counter = 0
        q.q.append((now, skb))
        q.qlen += 1
        q.requeues += 1
    if segs:
        return _netem_enqueue_segs(segs, q, skb, prev_len)
    return NET_XMIT_SUCCESS


def _netem_enqueue_segs(segs, q, first, prev_len):
    """The other segments of a corrupted GSO skb go through netem one by one;
    the parents, which counted one skb of prev_len bytes, learn the rest."""
    nb = 1 if first is not None else 0
    length = first.len if first is not None else 0
    for s in segs:
        slen = s.len
        rc = netem_enqueue(s, q)
        if rc == NET_XMIT_SUCCESS:
            nb += 1
            length += slen
    if nb:
        qdisc_tree_reduce_backlog(q, -(nb - 1), -(length - prev_len))
        return NET_XMIT_SUCCESS
    return NET_XMIT_DROP


# ---------------------------------------------------------------- dequeue

def _tfifo_pop(q, pd):
    tts, _, skb = heapq.heappop(pd.t_heap)
    pd.t_len -= 1
    if not pd.t_len:
        pd.t_max = None
    return skb


def netem_dequeue(q):
    pd = q.priv
    if q.q:                                   # reordered packets: they leave at once
        _, skb = q.q.popleft()
        return _deliver(q, skb)
    if not pd.t_heap:
        return None
    now = ktime_get_ns(q.dev.net)
    tts = pd.t_heap[0][0]
    slot = pd.slot
    if slot.slot_next and slot.slot_next < tts:
        get_slot_next(pd, now)
    if tts <= now and slot.slot_next <= now:
        skb = _tfifo_pop(q, pd)
        skb.dev = q.dev
        if slot.slot_next:
            slot.packets_left -= 1
            slot.bytes_left -= qdisc_pkt_len(skb)
            if slot.packets_left <= 0 or slot.bytes_left <= 0:
                get_slot_next(pd, now)
        return _deliver(q, skb)
    qdisc_watchdog_schedule_ns(pd.watchdog, max(tts, slot.slot_next))
    return None


def _deliver(q, skb):
    q.qlen -= 1
    q.backlog -= skb.len
    q.bytes += skb.len
    q.packets += 1
    return skb


def netem_reset(q):
    pd = q.priv
    while q.q:
        kfree_skb(q.q.popleft()[1], SKB_DROP_REASON_QDISC_DROP)
    while pd.t_heap:
        kfree_skb(heapq.heappop(pd.t_heap)[2], SKB_DROP_REASON_QDISC_DROP)
    pd.t_len = 0
    pd.t_max = None
    q.qlen = 0
    q.backlog = 0
    qdisc_watchdog_cancel(pd.watchdog)


def netem_destroy(q):
    qdisc_watchdog_cancel(q.priv.watchdog)


# ---------------------------------------------------------------- configuration

def _u(opts, key, default=0, lo=0, hi=U32_MAX):
    if not isinstance(opts, dict):
        raise OSError(22, "netem: invalid attribute for %s" % key)
    v = opts.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise OSError(22, "netem: invalid %s %r" % (key, v))
    return v


def _pair(opts, key):
    """A (probability, correlation) attribute, as tc_netem_reorder/tc_netem_corrupt."""
    v = opts.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise OSError(22, "netem: invalid %s" % key)
    return _u(v, "probability"), _u(v, "correlation")


def _table(v, what):
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or not 0 < len(v) <= NETEM_DIST_MAX or not all(
            isinstance(x, int) and not isinstance(x, bool) and -32768 <= x <= 32767 for x in v):
        raise OSError(22, "netem: invalid %s table" % what)
    return list(v)


NETEM_OPTS = {"limit", "latency", "jitter", "loss", "gap", "duplicate", "corr", "reorder",
              "corrupt", "loss_model", "ecn", "rate", "slot", "delay_dist", "slot_dist", "seed"}


def netem_change(q, opts):
    """Check every attribute first, then apply them all (a bad one changes nothing)."""
    opts = dict(opts or {})
    unknown = set(opts) - NETEM_OPTS
    if unknown:
        raise OSError(22, "netem: unknown option %s" % ", ".join(sorted(unknown)))
    net = q.dev.net
    limit = _u(opts, "limit", 1000)
    latency = _u(opts, "latency", 0, 0, (1 << 63) - 1)
    # Capped to what tabledist takes, as netem_change does.
    jitter = min(abs(_u(opts, "jitter", 0, -(1 << 63), (1 << 63) - 1)), INT_MAX)
    loss = _u(opts, "loss")
    gap = _u(opts, "gap")
    duplicate = _u(opts, "duplicate")
    corr = opts.get("corr") or {}
    if not isinstance(corr, dict):
        raise OSError(22, "netem: invalid corr")
    delay_corr, loss_corr, dup_corr = (_u(corr, k) for k in ("delay", "loss", "dup"))
    reorder = _pair(opts, "reorder")
    corrupt = _pair(opts, "corrupt")
    delay_dist = _table(opts.get("delay_dist"), "distribution")
    slot_dist = _table(opts.get("slot_dist"), "slot distribution")
    lm = opts.get("loss_model")
    model = CLG_RANDOM
    clg = ClgState()
    if lm is not None:
        if not isinstance(lm, dict) or len(lm) != 1:
            raise OSError(22, "netem: invalid loss model")
        if "gi" in lm:
            gi = lm["gi"]
            model = CLG_4_STATES
            clg.a1, clg.a2, clg.a3, clg.a4, clg.a5 = (
                _u(gi, k) for k in ("p13", "p31", "p32", "p14", "p23"))
        elif "ge" in lm:
            ge = lm["ge"]
            model = CLG_GILB_ELL
            clg.a1, clg.a2, clg.a3, clg.a4 = (_u(ge, k) for k in ("p", "r", "h", "k1"))
        else:
            raise OSError(22, "netem: unknown loss type")
    rate = opts.get("rate")
    rate_v = (0, 0, 0, 0)
    if rate is not None:
        if not isinstance(rate, dict):
            raise OSError(22, "netem: invalid rate")
        rate_v = (_u(rate, "rate", 0, 0, (1 << 64) - 1),
                  _u(rate, "packet_overhead", 0, -(1 << 31), INT_MAX),
                  _u(rate, "cell_size"), _u(rate, "cell_overhead", 0, -(1 << 31), INT_MAX))
    slot = opts.get("slot")
    slot_cfg = None
    if slot is not None:
        if not isinstance(slot, dict):
            raise OSError(22, "netem: invalid slot")
        slot_cfg = {k: _u(slot, k, 0, 0, (1 << 63) - 1) for k in
                    ("min_delay", "max_delay", "dist_delay", "dist_jitter")}
        slot_cfg["max_packets"] = _u(slot, "max_packets", 0, 0, INT_MAX) or INT_MAX
        slot_cfg["max_bytes"] = _u(slot, "max_bytes", 0, 0, INT_MAX) or INT_MAX
        slot_cfg["max_delay"] = max(slot_cfg["max_delay"], slot_cfg["min_delay"])
        slot_cfg["dist_jitter"] = min(slot_cfg["dist_jitter"], INT_MAX)
    seed = opts.get("seed")
    if seed is not None:
        seed = _u(opts, "seed", 0, 0, (1 << 64) - 1)
    # All checked: apply (netem_change).
    pd = q.priv
    q.limit = limit
    pd.limit = limit
    pd.latency, pd.jitter = latency, jitter
    pd.gap, pd.counter = gap, 0
    pd.loss, pd.duplicate = loss, duplicate
    # A gap alone means every gap-th packet is reordered (compatibility with old tc).
    pd.reorder = U32_MAX if gap else 0
    pd.seed_given = seed is not None
    pd.seed = seed if seed is not None else derive_seed("netem", net.seed, net.name, q.dev.name)
    pd.prng.prandom_seed_state(pd.seed)
    prng = pd.prng
    init_crandom(pd.delay_cor, delay_corr, prng)
    init_crandom(pd.loss_cor, loss_corr, prng)
    init_crandom(pd.dup_cor, dup_corr, prng)
    if reorder is not None:
        pd.reorder = reorder[0]
        init_crandom(pd.reorder_cor, reorder[1], prng)
    if corrupt is not None:
        pd.corrupt = corrupt[0]
        init_crandom(pd.corrupt_cor, corrupt[1], prng)
    else:
        pd.corrupt = 0
    pd.loss_model, pd.clg = model, clg
    pd.delay_dist = delay_dist
    pd.slot_dist = slot_dist
    pd.rate, pd.packet_overhead, pd.cell_size, pd.cell_overhead = rate_v
    pd.ecn = bool(opts.get("ecn"))
    pd.slot_config = slot_cfg
    pd.slot = SlotState()
    if slot_cfg is not None:
        get_slot_next(pd, ktime_get_ns(net))
    stored = {k: v for k, v in opts.items() if k not in ("delay_dist", "slot_dist")}
    stored["limit"] = limit
    stored["seed"] = pd.seed
    pd.opts = stored


def netem_init(q, opts=None):
    q.priv = NetemSchedData(q)
    q.q = deque()
    netem_change(q, opts or {})


def netem_dump(q):
    """The options as tc sent them (the tables left out), the seed in use included."""
    return dict(q.priv.opts)


netem_qdisc_ops = QdiscOps("netem", enqueue=netem_enqueue, dequeue=netem_dequeue,
                           peek=None, init=netem_init, reset=netem_reset,
                           destroy=netem_destroy, dump=netem_dump, change=netem_change)

__all__ = ["netem_qdisc_ops", "netem_change", "NET_XMIT_MASK"]
