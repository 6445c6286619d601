"""netem and tbf under a fake clock: delay and jitter per distribution, the
loss models, correlation, duplication, reordering, corruption, rate, slots,
limit, tbf's bucket, stacking, seeds, and tc's parsing and printing.

Linux: net/sched/sch_netem.c, net/sched/sch_tbf.c; iproute2 tc/q_netem.c,
tc/q_tbf.c, netem/*.c
"""
import errno
import statistics
import struct

import pytest

from emu import netem as unetem
from emu.client.tools import tc as tc_tool
from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError, dev_queue_xmit
from emu.kernel.core.skbuff import CHECKSUM_PARTIAL, alloc_skb, skb_put_data
from emu.kernel.hdr.checksum import ip_compute_csum
from emu.kernel.lib.random32 import RndState
from emu.kernel.sched import sch_netem

from .harness import InlineLab

TC = rtnetlink.RTNL_OPS
MS = 1000000


class Wire:
    """a:eth0 -- b:eth0 with every frame a:eth0 sends recorded with its send time."""

    def __init__(self, seed=0):
        self.lab = InlineLab()
        self.lab.node("a")
        self.lab.node("b")
        self.lab.nets["a"].seed = seed
        self.pa, self.pb = self.lab.link("a", "eth0", "b", "eth0")
        for n in ("a", "b"):
            rtnetlink.rtnl_setlink(self.lab.nets[n], "eth0", up=True)
        self.net = self.lab.nets["a"]
        self.dev = self.lab.dev("a", "eth0")
        self.clock = self.lab.clock
        self.clock.now = 100.0
        self.times = []                  # (ns, frame)
        orig = self.pa.send

        def send(buf, start, end, flags, *rest):
            self.times.append((int(round(self.clock.now * 1e9)), bytes(buf[start:end]), flags))
            return orig(buf, start, end, flags, *rest)
        self.pa.send = send

    def tc(self, line, **kw):
        """tc qdisc add dev eth0 root KIND ARGS... (parsed by the user-space tc parser)."""
        words = line.split()
        kind, args = words[0], words[1:]
        opts = unetem.QDISC_PARSERS[kind](args)
        return TC["qdisc_add"](self.net, "eth0", kind, **kw, **opts)

    def frame(self, n, size=100, tos=None):
        skb = alloc_skb(64 + size + 64)
        skb.data = skb.tail = 64
        body = struct.pack("!I", n) + bytes(max(0, size - 18))
        skb_put_data(skb, b"\x02" * 6 + self.dev.dev_addr + b"\x88\xb5" + body)
        skb.dev = self.dev
        return skb

    def send(self, n, size=100):
        for i in range(n):
            dev_queue_xmit(self.frame(i, size))

    def drain(self, horizon=30.0, limit=10 ** 6):
        """Fire each timer exactly when it is due, for horizon seconds at most."""
        lab = self.lab
        lab.run()
        end = self.clock.now + horizon
        for _ in range(limit):
            nt = self.net.next_timer()
            if nt is None or nt > end:
                return
            self.clock.now = max(self.clock.now, nt)
            self.net.run_timers()
            lab.run()
        raise AssertionError("did not drain")

    def numbers(self):
        return [struct.unpack_from("!I", f, 14)[0] for _, f, _ in self.times if f[12:14] == b"\x88\xb5"]

    def delays_ms(self, t0):
        return [(t - t0) / MS for t, f, _ in self.times if f[12:14] == b"\x88\xb5"]

    def row(self, parent="root"):
        return next(r for r in TC["qdisc_show"](self.net, "eth0") if r["parent"] == parent)


def t0_of(w):
    return int(round(w.clock.now * 1e9))


def test_delay_is_exact_and_the_watchdog_is_one_timer():
    w = Wire()
    w.tc("netem delay 20ms")
    t0 = t0_of(w)
    w.send(5)
    assert w.times == [] and w.row()["stats"]["qlen"] == 5
    assert len([1 for e in w.net.timers.heap if e[2].pending]) == 1
    w.drain()
    assert w.delays_ms(t0) == [20.0] * 5 and w.numbers() == list(range(5))
    st = w.row()["stats"]
    assert st["packets"] == 5 and st["qlen"] == 0 and st["backlog"] == 0


def _stats(vals):
    return statistics.fmean(vals), statistics.pstdev(vals)


@pytest.mark.parametrize("dist", ["uniform", "normal", "pareto", "paretonormal"])
def test_jitter_follows_the_distribution(dist):
    w = Wire()
    extra = "" if dist == "uniform" else " distribution " + dist
    w.tc("netem delay 100ms 20ms limit 20000" + extra)
    t0 = t0_of(w)
    w.send(10000)
    w.drain()
    d = w.delays_ms(t0)
    assert len(d) == 10000
    mean, sd = _stats(d)
    if dist == "uniform":
        exp_mean, exp_sd = 100.0, 20.0 / 3 ** 0.5
        assert 80.0 <= min(d) and max(d) < 120.0
    else:
        table = unetem.get_distribution(dist)
        tm, tsd = _stats(table)
        exp_mean, exp_sd = 100.0 + 20.0 * tm / 8192, 20.0 * tsd / 8192
    assert abs(mean - exp_mean) < 0.6, (mean, exp_mean)
    assert abs(sd - exp_sd) < 0.06 * exp_sd, (sd, exp_sd)
    if dist == "normal":
        assert 0.9 < exp_sd / 20.0 < 1.1                 # the table really is N(0, 1)
    if dist == "pareto":
        assert max(d) > 100 + 3 * 20                     # a heavy tail


def test_the_distribution_tables_match_iproute2():
    assert unetem.get_distribution("normal")[:8] == (
        -32768, -28307, -26871, -25967, -25298, -24765, -24320, -23937)
    assert all(len(unetem.get_distribution(n)) == 4096 for n in ("normal", "pareto", "paretonormal"))
    assert unetem.get_distribution("pareto")[-1] == 32767


def _losses(w, n=10000):
    w.send(n)
    w.drain()
    got = set(w.numbers())
    return [i not in got for i in range(n)]


def _bursts(lost):
    runs, cur = [], 0
    for x in lost:
        if x:
            cur += 1
        elif cur:
            runs.append(cur)
            cur = 0
    if cur:
        runs.append(cur)
    return runs


def test_random_loss_rate_and_bursts():
    w = Wire()
    w.tc("netem loss 10% limit 20000")
    lost = _losses(w)
    assert 0.09 < sum(lost) / len(lost) < 0.11
    assert 1.0 < statistics.fmean(_bursts(lost)) < 1.2       # 1/(1-p) = 1.11
    assert w.row()["stats"]["drops"] == sum(lost)


def test_loss_correlation_makes_longer_bursts():
    w1, w2 = Wire(), Wire()
    w1.tc("netem loss 50% limit 20000")
    w2.tc("netem loss 50% 75% limit 20000")
    b1 = statistics.fmean(_bursts(_losses(w1)))
    b2 = statistics.fmean(_bursts(_losses(w2)))
    assert b2 > 1.5 * b1


def test_loss_state_4_state_markov():
    w = Wire()
    w.tc("netem loss state 5% 50% limit 20000")          # p13 5%, p31 50%: bursts of 2
    lost = _losses(w, 20000)
    assert abs(sum(lost) / len(lost) - 0.05 / 0.55) < 0.012
    assert 1.8 < statistics.fmean(_bursts(lost)) < 2.2


def test_loss_gemodel():
    w = Wire()
    w.tc("netem loss gemodel 1% 10% 70% 0.1% limit 20000")
    lost = _losses(w, 20000)
    exp = (0.01 / 0.11) * 0.7 + (0.1 / 0.11) * 0.001
    assert abs(sum(lost) / len(lost) - exp) < 0.02
    assert statistics.fmean(_bursts(lost)) > 2                # losses come in bad periods


def test_duplicate_once():
    w = Wire()
    w.tc("netem duplicate 100%")
    w.send(50)
    w.drain()
    nums = w.numbers()
    assert sorted(nums) == sorted(list(range(50)) * 2)     # each twice, never more
    w2 = Wire()
    w2.tc("netem duplicate 30% limit 20000")
    w2.send(5000)
    w2.drain()
    assert 1.27 < len(w2.numbers()) / 5000 < 1.33


def test_reorder_with_gap():
    w = Wire()
    w.tc("netem delay 10ms reorder 100% gap 5")
    t0 = t0_of(w)
    w.send(20)
    w.drain()
    nums, d = w.numbers(), w.delays_ms(t0)
    assert nums[:4] == [4, 9, 14, 19] and d[:4] == [0.0] * 4
    assert nums[4:] == [n for n in range(20) if n % 5 != 4] and set(d[4:]) == {10.0}
    assert w.row()["stats"]["requeues"] == 4
    w2 = Wire()
    w2.tc("netem delay 10ms reorder 25% limit 20000")
    t0 = t0_of(w2)
    w2.send(4000)
    w2.drain()
    early = sum(1 for x in w2.delays_ms(t0) if x == 0.0)
    assert 0.22 * 4000 < early < 0.28 * 4000


def test_corrupt_flips_exactly_one_bit_and_completes_the_checksum_first():
    w = Wire()
    w.tc("netem corrupt 100%")
    originals = []
    for i in range(200):
        skb = w.frame(i, 200)
        originals.append(bytes(skb.buf[skb.data:skb.tail]))
        dev_queue_xmit(skb)
    w.drain()
    assert len(w.times) == 200
    for (_, got, flags), want in zip(w.times, originals):
        diff = sum(bin(a ^ b).count("1") for a, b in zip(got, want))
        assert diff == 1 and len(got) == len(want)
        assert flags == 0                                  # no "checksum is valid" claim


def test_corrupt_completes_a_partial_checksum_first():
    from emu.kernel.core.skbuff import skb_checksum_help, skb_copy
    w = Wire()
    w.tc("netem corrupt 100%")
    expected = []
    for i in range(50):
        skb = w.frame(i, 300)
        skb.ip_summed = CHECKSUM_PARTIAL
        skb.csum_start = skb.data + 34
        skb.csum_offset = 6
        ref = skb_copy(skb)
        assert skb_checksum_help(ref) == 0
        expected.append(bytes(ref.buf[ref.data:ref.tail]))
        dev_queue_xmit(skb)
    w.drain()
    for (_, got, flags), want in zip(w.times, expected):
        assert sum(bin(a ^ b).count("1") for a, b in zip(got, want)) == 1 and flags == 0


def _udp_lab(spec):
    w = Wire()
    for n, ip in (("a", "10.0.0.1/24"), ("b", "10.0.0.2/24")):
        rtnetlink.inet_rtm_newaddr(w.lab.nets[n], "eth0", ip)
    w.lab.run()
    w.tc(spec)
    return w


def test_corrupted_udp_is_dropped_by_the_receiver_checksum():
    from emu.kernel.socket import SOCK_NONBLOCK, sys_bind, sys_recvfrom, sys_sendto, sys_socket
    SOCK_DGRAM = 2
    w = _udp_lab("netem corrupt 100%")
    ta, tb = w.lab.task("a"), w.lab.task("b")
    rx = sys_socket(tb, 2, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    sys_bind(tb, rx, ("10.0.0.2", 9000))
    tx = sys_socket(ta, 2, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    try:
        # Let ARP through: resolve with a clean qdisc, then corrupt.
        TC["qdisc_del"](w.net, "eth0")
        sys_sendto(ta, tx, b"y", 0, ("10.0.0.2", 9000))
        w.drain(1.0)
        w.tc("netem corrupt 100%")
        for i in range(300):
            sys_sendto(ta, tx, bytes([i % 256]) * 400, 0, ("10.0.0.2", 9000))
        w.drain(5.0)
    finally:
        pass
    got = []
    while True:
        try:
            got.append(sys_recvfrom(tb, rx, 2000)[0])
        except KernelError:
            break
    good = [g for g in got if len(g) == 400]
    assert all(g == bytes([g[0]]) * 400 for g in good)
    assert len(good) < 20                          # a flip in the MAC src/padding may pass
    nb = w.lab.nets["b"]
    assert nb.mib["Udp"]["InCsumErrors"] > 150


def test_rate_serialises_exactly_with_overheads():
    w = Wire()
    w.tc("netem rate 1mbit")                        # 125000 bytes/s
    t0 = t0_of(w)
    w.send(5, size=1000)
    w.drain()
    assert w.delays_ms(t0) == [8.0, 16.0, 24.0, 32.0, 40.0]
    w2 = Wire()
    w2.tc("netem rate 1mbit 20 100 10")             # +20 B, 100-byte cells with 10 B each
    t0 = t0_of(w2)
    w2.send(2, size=1000)
    w2.drain()
    per = 11 * 110 * 8 / 1e6 * 1000                # 1020 B -> 11 cells of 110 B
    assert w2.delays_ms(t0) == [pytest.approx(per, abs=1e-6), pytest.approx(2 * per, abs=1e-6)]
    w3 = Wire()
    w3.tc("netem delay 10ms rate 1mbit")           # latency overlaps serialisation
    t0 = t0_of(w3)
    w3.send(3, size=1000)
    w3.drain()
    assert w3.delays_ms(t0) == [18.0, 26.0, 34.0]


def test_limit_drops_are_counted():
    w = Wire()
    w.tc("netem delay 10ms limit 10")
    w.send(15)
    st = w.row()["stats"]
    assert st["qlen"] == 10 and st["drops"] == 5
    w.drain()
    assert w.numbers() == list(range(10))


def test_slot_sends_in_bursts():
    w = Wire()
    w.tc("netem slot 10ms 10ms packets 2")
    t0 = t0_of(w)
    w.send(6)
    w.drain()
    d = w.delays_ms(t0)
    assert d == [10.0, 10.0, 20.0, 20.0, 30.0, 30.0]


def _ecn_frame(w, n, ecn):
    skb = w.frame(n, 100)
    buf = skb.buf
    eth = skb.data
    buf[eth + 12:eth + 14] = b"\x08\x00"
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, ecn, 86, n, 0, 64, 17, 0,
                               bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])))
    struct.pack_into("!H", ip, 10, ip_compute_csum(ip))
    buf[eth + 14:eth + 34] = ip
    skb.protocol = 0x0800
    skb.network_header = eth + 14
    return skb


def test_ecn_marks_instead_of_dropping():
    w = Wire()
    w.tc("netem loss 100% ecn")
    dev_queue_xmit(_ecn_frame(w, 1, 2))            # ECT(0): marked, sent
    dev_queue_xmit(_ecn_frame(w, 2, 1))            # ECT(1): marked, sent
    dev_queue_xmit(_ecn_frame(w, 3, 0))            # not ECT: dropped
    w.drain()
    assert len(w.times) == 2
    for _, f, _ in w.times:
        assert f[15] & 3 == 3 and ip_compute_csum(f[14:34]) == 0
    assert w.row()["stats"]["drops"] == 3           # marks count as drops, as in Linux


def test_tbf_burst_then_rate():
    w = Wire()
    w.tc("tbf rate 1mbit burst 10kb limit 100000")
    t0 = t0_of(w)
    w.send(30, size=1000)
    w.drain()
    d = w.delays_ms(t0)
    assert d[:10] == [0.0] * 10                    # the bucket's 10240 bytes
    gaps = [round(b - a, 6) for a, b in zip(d[10:], d[11:])]
    assert all(g == 8.0 for g in gaps[1:])         # then one per 8 ms
    st = w.row()["stats"]
    assert st["overlimits"] > 0 and st["packets"] == 30
    assert len(w.numbers()) == 30 and w.numbers() == list(range(30))


def test_tbf_limit_drops():
    w = Wire()
    w.tc("tbf rate 1mbit burst 2kb limit 5000")
    w.send(20, size=1000)
    st = w.row()["stats"]
    assert st["drops"] > 0 and st["backlog"] <= 5000


def test_tbf_with_netem_child():
    w = Wire()
    w.tc("tbf rate 1mbit burst 2kb limit 100000", handle="1:")
    w.tc("netem delay 100ms", parent="1:1", handle="10:")
    rows = TC["qdisc_show"](w.net, "eth0")
    assert [(r["kind"], r["handle"], r["parent"]) for r in rows] == [
        ("tbf", "1:", "root"), ("netem", "10:", "1:1")]
    t0 = t0_of(w)
    w.send(6, size=1000)
    w.drain()
    d = w.delays_ms(t0)
    assert d[:2] == [100.0, 100.0] and all(b - a >= 7.99 for a, b in zip(d[2:], d[3:]))
    assert w.numbers() == list(range(6))
    TC["qdisc_del"](w.net, "eth0", parent="1:1")
    assert [r["kind"] for r in TC["qdisc_show"](w.net, "eth0")] == ["tbf"]
    with pytest.raises(KernelError):
        TC["qdisc_del"](w.net, "eth0", parent="1:1")              # nothing left to delete
    TC["qdisc_del"](w.net, "eth0")
    assert TC["qdisc_show"](w.net, "eth0")[0]["kind"] == "noqueue"


def _pattern(seed_args, lab_seed=0, n=3000):
    w = Wire(seed=lab_seed)
    w.tc("netem loss 20% corrupt 10% limit 20000" + seed_args)
    w.send(n)
    w.drain()
    return [(struct.unpack_from("!I", f, 14)[0] if len(f) > 18 else None, f) for _, f, _ in w.times]


def test_same_seed_same_packets_different_seed_not():
    a = _pattern(" seed 7")
    b = _pattern(" seed 7", lab_seed=99)            # an explicit seed wins over the lab's
    c = _pattern(" seed 8")
    assert a == b and a != c
    assert _pattern("", lab_seed=1) == _pattern("", lab_seed=1)
    assert _pattern("", lab_seed=1) != _pattern("", lab_seed=2)


def test_change_keeps_the_queue_and_replace_of_the_same_kind_changes():
    w = Wire()
    w.tc("netem delay 50ms")
    w.send(3)
    TC["qdisc_add"](w.net, "eth0", "netem", change=True, **unetem.parse_netem(["loss", "100%"]))
    assert w.row()["stats"]["qlen"] == 3            # still queued
    w.send(3)                                       # all lost now
    w.drain()
    assert w.numbers() == [0, 1, 2] and w.row()["stats"]["drops"] == 3
    w.tc("netem delay 5ms", replace=True)
    assert w.row()["stats"]["drops"] == 3           # the same qdisc, changed in place
    with pytest.raises(KernelError) as e:
        TC["qdisc_add"](w.net, "eth0", "tbf", change=True, **unetem.parse_tbf(
            "rate 1mbit burst 2kb limit 10000".split()))
    assert e.value.errno == errno.EINVAL
    TC["qdisc_del"](w.net, "eth0")
    with pytest.raises(KernelError) as e:
        TC["qdisc_add"](w.net, "eth0", "netem", change=True)
    assert e.value.errno == errno.ENOENT


def test_bad_kernel_options_change_nothing():
    w = Wire()
    w.tc("netem delay 10ms")
    for bad in ({"loss": -1}, {"limit": "x"}, {"delay_dist": [1, 2, 70000]}, {"bogus": 1},
                {"loss_model": {"xx": {}}}, {"rate": {"rate": "fast"}},
                {"loss_model": {"gi": 5}}, {"corr": [1]}, {"reorder": {"probability": 2 ** 40}},
                {"slot": {"min_delay": -1}}, {"seed": "x"}):
        with pytest.raises(KernelError):
            TC["qdisc_add"](w.net, "eth0", "netem", change=True, **bad)
    assert w.row()["options"]["latency"] == 10 * MS


class _Ctl:
    def __init__(self, net):
        self.net = net

    def call(self, op, **kw):
        return TC[op](self.net, **kw)


def _tc(net, line):
    out = []
    rc = tc_tool.main(line.split(), _Ctl(net), out.append)
    return rc, out


def test_tc_tool_prints_as_iproute2():
    w = Wire()
    rc, out = _tc(w.net, "qdisc add dev eth0 root netem delay 50ms 10ms 25% distribution normal "
                         "loss 1% duplicate 0.5% reorder 25% 50% gap 5 corrupt 0.1% rate 100mbit "
                         "limit 1000 seed 7")
    assert rc == 0, out
    rc, out = _tc(w.net, "-s qdisc show dev eth0")
    assert out[0].startswith("qdisc netem 8001: dev eth0 root limit 1000 delay 50ms  10ms 25% "
                             "loss 1% duplicate 0.5% reorder 25% 50% corrupt 0.1% rate 100Mbit "
                             "seed 7 gap 5")
    assert out[1].startswith(" Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0)")
    assert _tc(w.net, "qdisc del dev eth0 root")[0] == 0
    assert _tc(w.net, "qdisc add dev eth0 root handle 1: tbf rate 10mbit burst 32kbit latency 50ms")[0] == 0
    assert _tc(w.net, "qdisc add dev eth0 parent 1:1 handle 10: netem delay 100ms")[0] == 0
    rc, out = _tc(w.net, "qdisc show dev eth0")
    assert out[0] == "qdisc tbf 1: dev eth0 root rate 10Mbit burst 4Kb lat 50.0ms"
    assert out[1].startswith("qdisc netem 10: dev eth0 parent 1:1 limit 1000 delay 100ms seed ")
    assert _tc(w.net, "qdisc change dev eth0 parent 1:1 handle 10: netem delay 5ms")[0] == 0
    assert " delay 5ms" in _tc(w.net, "qdisc show dev eth0")[1][1]


@pytest.mark.parametrize("args,msg", [
    ("loss 140%", 'Illegal "loss percent"'),
    ("delay 20parsecs", 'Illegal "latency"'),
    ("reorder 25%", "reordering not possible without specifying some delay"),
    ("delay 10ms gap 5", "gap specified without reorder probability"),
    ("ecn", "ecn requested without loss model"),
    ("delay 10ms distribution normal", "distribution specified but no latency and jitter values"),
    ("delay 10ms 1ms distribution weird", "No distribution data for weird"),
    ("frobnicate", 'What is "frobnicate"?'),
    ("rate fast", 'Illegal "rate"'),
])
def test_tc_netem_errors(args, msg):
    w = Wire()
    rc, out = _tc(w.net, "qdisc add dev eth0 root netem " + args)
    assert rc == 1 and out[0].startswith(msg), out
    assert TC["qdisc_show"](w.net, "eth0")[0]["kind"] == "noqueue"


def test_tc_tbf_errors():
    w = Wire()
    for args, msg in (("burst 10kb latency 1ms", 'tbf: the "rate" parameter is mandatory.'),
                      ("rate 1mbit latency 1ms", 'tbf: the "burst" parameter is mandatory.'),
                      ("rate 1mbit burst 10kb", 'tbf: either "limit" or "latency" are required.')):
        rc, out = _tc(w.net, "qdisc add dev eth0 root tbf " + args)
        assert rc == 1 and out == [msg]


def test_tabledist_and_crandom_follow_linux_arithmetic():
    prng = RndState(1)
    # Uniform: (rnd % 2sigma) + mu - sigma stays in [mu - sigma, mu + sigma).
    vals = [sch_netem.tabledist(1000, 10, None, prng, None) for _ in range(1000)]
    assert min(vals) >= 990 and max(vals) < 1010
    # A table of one value t gives mu + sigma * t / 8192, rounded as C does.
    assert sch_netem.tabledist(0, 8192 * 3 + 5, None, prng, [-4096]) == -12291
    st = sch_netem.CrndState(rho=0xFFFFFFFF, last=12345)
    assert sch_netem.get_crandom(st, prng) == 12345          # full correlation: stuck


def test_tcp_through_tbf_and_a_corrupting_netem_child_is_exact_and_counts_balance():
    """GSO super-segments get segmented to corrupt one; the parent tbf learns the
    extra segments (qdisc_tree_reduce_backlog), so its queue length stays true."""
    import os
    from .test_tcp import Pair, pump
    p = Pair(tso=True).connect()
    net = p.lab.nets["h1"]
    TC["qdisc_add"](net, "eth0", "tbf", handle="1:", **unetem.parse_tbf(
        "rate 200mbit burst 64kb latency 20ms".split()))
    TC["qdisc_add"](net, "eth0", "netem", parent="1:1", handle="10:", **unetem.parse_netem(
        "delay 1ms corrupt 20% duplicate 5% seed 3".split()))
    up = os.urandom(400_000)
    assert pump(p, (p.t1, p.c), (p.t2, p.s), up, max_rounds=20000) == up
    p.lab.advance(1.0)
    rows = {r["kind"]: r["stats"] for r in TC["qdisc_show"](net, "eth0")}
    assert rows["tbf"]["qlen"] == 0 and rows["tbf"]["backlog"] == 0
    assert rows["netem"]["qlen"] == 0 and rows["netem"]["backlog"] == 0
    assert rows["tbf"]["packets"] == rows["netem"]["packets"] > 0
    assert p.lab.nets["h2"].mib["Tcp"]["InCsumErrors"] > 0


def test_tc_netem_parsing_details():
    p = unetem.parse_netem
    assert p("loss random 10% 25%".split())["corr"] == {"loss": unetem.get_percent("25%")}
    assert p("drop 5".split())["loss"] == unetem.get_percent("5%")      # a bare number is %
    assert p("delay 10ms 5ms 25%".split())["corr"]["delay"] == unetem.get_percent("25%")
    assert p("lat 1s".split())["latency"] == 10 ** 9                   # prefixes, as matches()
    assert p("delay 100".split())["latency"] == 100000                  # bare time: usecs
    gi = p("loss state 1% 30% 2% 40% 0.5%".split())["loss_model"]["gi"]
    assert [gi[k] for k in ("p13", "p31", "p32", "p23", "p14")] == [
        unetem.get_percent(x) for x in ("1%", "30%", "2%", "40%", "0.5%")]
    ge = p("loss gemodel 1% 10% 70% 0.1%".split())["loss_model"]["ge"]
    assert ge["h"] == unetem.U32_MAX - unetem.get_percent("70%")     # tc takes 1-h
    assert p("rate 1gbit -4 64 2".split())["rate"] == {
        "rate": 125000000, "packet_overhead": -4, "cell_size": 64, "cell_overhead": 2}
    assert p("delay 10ms reorder 10%".split())["gap"] == 1
    with pytest.raises(unetem.NetemError):
        p("loss 1% loss 2%".split())
    assert unetem.format_netem(p("loss gemodel 1% 10% 70% 0.1%".split())).endswith(
        "loss gemodel p 1% r 10% 1-h 70% 1-k 0.1% seed 0".replace(" seed 0", ""))
    assert unetem.sprint_rate(187500) == "1500Kbit" and unetem.sprint_size(1514) == "1514b"


def test_slot_distribution_and_loss_random_keyword_in_the_kernel():
    w = Wire()
    w.tc("netem slot distribution normal 10ms 2ms packets 1 limit 5000")
    t0 = t0_of(w)
    w.send(400)
    w.drain()
    d = w.delays_ms(t0)
    gaps = [b - a for a, b in zip(d, d[1:])]
    assert len(d) == 400 and 9.0 < statistics.fmean(gaps) < 11.0 and statistics.pstdev(gaps) > 1.0


def test_tbf_peakrate_limits_the_burst():
    w = Wire()
    w.tc("tbf rate 1mbit burst 10kb peakrate 2mbit mtu 1000 limit 100000")
    t0 = t0_of(w)
    w.send(6, size=1000)
    w.drain()
    d = w.delays_ms(t0)
    assert d[0] == 0.0
    assert all(abs((b - a) - 4.0) < 1e-6 for a, b in zip(d, d[1:]))   # 1000 B at 2 Mbit/s
    with pytest.raises(unetem.NetemError):
        unetem.parse_tbf("rate 1mbit burst 10kb peakrate 2mbit latency 5ms".split())
    with pytest.raises(KernelError):
        w.tc("tbf rate 2mbit burst 10kb peakrate 1mbit mtu 1000 limit 100000", replace=True)
