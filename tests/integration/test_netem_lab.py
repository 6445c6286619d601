"""netem in running labs: RTT with tc/link-level delay, and TCP through loss,
reordering, duplication and corruption staying byte-exact."""
import hashlib
import itertools
import os
import statistics
import threading
import time

import pytest

import emu

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


def _transfer(lab, a, b, addr, port, size):
    """size bytes each way at once between a and b; returns the four (n, sha256)."""
    na, nb = lab.node(a), lab.node(b)
    up, down = os.urandom(size), os.urandom(size)
    srv = nb.socket(AF_INET, SOCK_STREAM)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    srv.settimeout(600)                       # at 20% loss the handshake can take a while
    cli = na.socket(AF_INET, SOCK_STREAM)
    cli.settimeout(600)
    cli.connect((addr, port))
    conn, _ = srv.accept()
    conn.settimeout(600)
    results = {}

    def send(sock, data):
        sock.sendall(data)

    def recv(sock, key):
        h = hashlib.sha256()
        n = 0
        while n < size:
            d = sock.recv(1 << 20)
            if not d:
                break
            h.update(d)
            n += len(d)
        results[key] = (n, h.hexdigest())

    threads = [threading.Thread(target=send, args=(cli, up)),
               threading.Thread(target=recv, args=(conn, "up")),
               threading.Thread(target=send, args=(conn, down)),
               threading.Thread(target=recv, args=(cli, "down"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(900)
    for s in (cli, conn, srv):
        s.close()
    return (results.get("up"), (size, hashlib.sha256(up).hexdigest()),
            results.get("down"), (size, hashlib.sha256(down).hexdigest()))


_PORTS = itertools.count(9000)
IMPAIRED = dict(delay="1ms", loss="5%", reorder="25%", duplicate="1%", corrupt="0.5%")


def test_tcp_10mb_each_way_through_loss_reorder_duplicate_corrupt(netem_lab):
    with netem_lab.netem("h3:eth0", seed=11, **IMPAIRED) as i3, \
            netem_lab.netem("h4:eth0", seed=12, **IMPAIRED):
        got_up, want_up, got_down, want_down = _transfer(
            netem_lab, "h3", "h4", "10.0.1.2", 8100, 10 * 1024 * 1024)
        st = i3.show()["stats"]
    assert got_up == want_up and got_down == want_down
    assert st["drops"] > 0 and st["requeues"] > 0         # loss and reordering happened
    csum = sum(netem_lab.node(n).counters()["snmp"]["Tcp"]["InCsumErrors"] for n in ("h3", "h4"))
    assert csum > 0                                       # corruption reached TCP's check


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("loss,size", [("1%", 1 << 20), ("5%", 1 << 20), ("20%", 1 << 16)])
def test_soak_transfers_under_loss(netem_lab, loss, size):
    """100 transfers each way at once per loss rate, each with its own seeds.

    At 20% loss each way the transfers are small: emu's TCP then backs its RTO
    off to tens of seconds (see the netem report), so 1 MiB can take minutes.
    """
    spec = dict(IMPAIRED, loss=loss)
    bad = []
    for i in range(100):
        t0 = time.monotonic()
        with netem_lab.netem("h3:eth0", seed=100 + i, **spec), \
                netem_lab.netem("h4:eth0", seed=1000 + i, **spec):
            got_up, want_up, got_down, want_down = _transfer(
                netem_lab, "h3", "h4", "10.0.1.2", next(_PORTS), size)
        print("soak loss %s run %d: %.1f s" % (loss, i, time.monotonic() - t0), flush=True)
        if got_up != want_up or got_down != want_down:
            bad.append((i, got_up, got_down))
    assert bad == []
