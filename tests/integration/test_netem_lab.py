"""netem in running labs: RTT with tc/link-level delay, and TCP through loss,
reordering, duplication and corruption staying byte-exact."""
import concurrent.futures
import itertools
import statistics
import time

import pytest

import emu
from tests.integration.conftest import transfer_both_ways

AF_INET, SOCK_STREAM = 2, 1

TOPO = """\
name: netem-lab
nodes:
  h1: {kind: host, interfaces: {eth0: {address: 10.0.0.1/24}}}
  h2: {kind: host, interfaces: {eth0: {address: 10.0.0.2/24}}}
  h3: {kind: host, interfaces: {eth0: {address: 10.0.1.1/24}}}
  h4: {kind: host, interfaces: {eth0: {address: 10.0.1.2/24}}}
links:
  - endpoints: [h1:eth0, h2:eth0]
    netem: {delay: 20ms}
  - [h3:eth0, h4:eth0]
"""


@pytest.fixture(scope="module")
def netem_lab(tmp_path_factory):
    path = tmp_path_factory.mktemp("netem") / "netem-lab.yaml"
    path.write_text(TOPO)
    with emu.launch(path) as lab:
        yield lab


def _median_rtt(lab, src, dst, count=8):
    node = lab.node(src)
    node.ping(dst, count=1, interval=0.2)                 # ARP first
    r = node.ping(dst, count=count, interval=0.1)
    assert r.rtts, r.lines
    return statistics.median(r.rtts)


def test_ping_rtt_with_tc_netem_and_link_level_netem(netem_lab):
    base = _median_rtt(netem_lab, "h3", "h4")
    link_level = _median_rtt(netem_lab, "h1", "h2")       # 20 ms on each end: 40 ms
    with netem_lab.netem("h3:eth0", delay="20ms") as imp:  # one end: 20 ms
        one_end = _median_rtt(netem_lab, "h3", "h4")
        assert imp.show()["kind"] == "netem"
    after = _median_rtt(netem_lab, "h3", "h4")
    assert 18.0 <= one_end - base <= 35.0, (base, one_end)
    assert 38.0 <= link_level - base <= 60.0, (base, link_level)
    assert after < base + 10.0
    rows = netem_lab.node("h3").call("qdisc_show", dev="eth0")
    assert rows[0]["kind"] == "noqueue"                   # the context manager restored it


_PORTS = itertools.count(9000)
IMPAIRED = dict(delay="1ms", loss="5%", reorder="25%", duplicate="1%", corrupt="0.5%")


def test_tcp_10mb_each_way_through_loss_reorder_duplicate_corrupt(netem_lab):
    with netem_lab.netem("h3:eth0", seed=11, **IMPAIRED) as i3, \
            netem_lab.netem("h4:eth0", seed=12, **IMPAIRED):
        got_up, want_up, got_down, want_down = transfer_both_ways(
            netem_lab, "h3", "h4", "10.0.1.2", 8100, 10 * 1024 * 1024)
        st = i3.show()["stats"]
    assert got_up == want_up and got_down == want_down
    assert st["drops"] > 0 and st["requeues"] > 0         # loss and reordering happened
    csum = sum(netem_lab.node(n).counters()["snmp"]["Tcp"]["InCsumErrors"] for n in ("h3", "h4"))
    assert csum > 0                                       # corruption reached TCP's check


SOAK_RUNS = 100
SOAK_AT_ONCE = 4          # transfers in flight together, under one pair of netem seeds


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("loss,size", [("1%", 1 << 20), ("5%", 1 << 20), ("20%", 1 << 16)])
def test_soak_transfers_under_loss(netem_lab, loss, size):
    """100 transfers each way at once per loss rate, SOAK_AT_ONCE at a time,
    each batch under its own netem seeds.

    At 20% loss each way the transfers are small: TCP then backs its RTO off
    to seconds (as Linux does: after a lost ACK the next ACK echoes an old
    timestamp, RFC 7323's conservative RTT), so 1 MiB can take minutes.
    """
    spec = dict(IMPAIRED, loss=loss)
    bad = []
    for batch in range(SOAK_RUNS // SOAK_AT_ONCE):
        t0 = time.monotonic()
        with netem_lab.netem("h3:eth0", seed=100 + batch, **spec), \
                netem_lab.netem("h4:eth0", seed=1000 + batch, **spec), \
                concurrent.futures.ThreadPoolExecutor(SOAK_AT_ONCE) as pool:
            runs = [pool.submit(transfer_both_ways, netem_lab, "h3", "h4", "10.0.1.2",
                                next(_PORTS), size) for _ in range(SOAK_AT_ONCE)]
            results = [r.result() for r in runs]
        print("soak loss %s batch %d: %.1f s" % (loss, batch, time.monotonic() - t0), flush=True)
        for i, (got_up, want_up, got_down, want_down) in enumerate(results):
            if got_up != want_up or got_down != want_down:
                bad.append((batch, i, got_up, got_down))
    assert bad == []
