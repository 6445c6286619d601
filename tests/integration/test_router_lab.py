"""IPv4 across real router processes: h1 -- r1 -- r2 -- r3 -- h2."""
import errno
import os
import subprocess
import sys
import textwrap
import time

import pytest

import emu
from tests.integration.conftest import ROOT, TOPOLOGIES, cli_env

AF_INET, SOCK_DGRAM = 2, 2


@pytest.fixture(scope="module")
def line():
    with emu.launch(TOPOLOGIES / "router-line.yaml") as lab:
        yield lab


def test_ping_across_routers_and_ttl_expiry(line):
    r = line.node("h1").ping("h2", count=2, interval=0.05)
    assert r.received == 2 and all(ttl == 61 for _, ttl, _, _ in r.replies)
    lines = []
    r = line.node("h1").ping("h2", count=1, ttl=2, timeout=1.0, out=lines.append)
    assert r.received == 0 and r.errors == 1
    assert "From 10.0.12.2 icmp_seq=1 Time to live exceeded" in lines


def test_udp_4000_bytes_fragmented_over_1500_and_1280_links(line):
    h1, h2 = line.node("h1"), line.node("h2")
    before = h2.counters()["snmp"]["Ip"]["ReasmOKs"]
    with h2.socket(AF_INET, SOCK_DGRAM) as srv, h1.socket(AF_INET, SOCK_DGRAM) as cli:
        srv.bind(("0.0.0.0", 7000))
        srv.settimeout(5)
        data = os.urandom(4000)
        cli.sendto(data, ("10.0.3.10", 7000))
        got, addr = srv.recvfrom(65535)
        assert got == data and addr[0] == "10.0.1.10"
        srv.sendto(b"ack", addr)
        cli.settimeout(5)
        assert cli.recvfrom(100) == (b"ack", ("10.0.3.10", 7000))
    assert h2.counters()["snmp"]["Ip"]["ReasmOKs"] == before + 1
    assert line.node("r2").counters()["snmp"]["Ip"]["FragCreates"] >= 2


def test_filter_rule_on_a_router_blocks_then_unblocks(line):
    h1, h2, r2 = line.node("h1"), line.node("h2"), line.node("r2")
    r2.call("nf_rule_add", chain="FORWARD", proto="udp", dport=7100, target="REJECT",
            reject_with="icmp-admin-prohibited")
    try:
        with h2.socket(AF_INET, SOCK_DGRAM) as srv, h1.socket(AF_INET, SOCK_DGRAM) as cli:
            srv.bind(("0.0.0.0", 7100))
            srv.settimeout(0.5)
            cli.connect(("10.0.3.10", 7100))
            cli.send(b"blocked")
            with pytest.raises(TimeoutError):
                srv.recvfrom(100)
            cli.settimeout(2)
            with pytest.raises(OSError) as e:     # admin prohibited -> EHOSTUNREACH
                cli.recv(100)
            assert e.value.errno == errno.EHOSTUNREACH
            rules = {c["chain"]: c for c in r2.call("nf_show")}
            assert rules["FORWARD"]["rules"][0]["pkts"] == 1
            r2.call("nf_flush")
            cli.send(b"open")
            srv.settimeout(5)
            assert srv.recvfrom(100)[0] == b"open"
    finally:
        r2.call("nf_flush")


def test_socket_timeouts_and_nonblocking(line):
    h1 = line.node("h1")
    with h1.socket(AF_INET, SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 7200))
        s.settimeout(0.2)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            s.recvfrom(10)
        assert 0.15 < time.monotonic() - t0 < 2.0
        s.setblocking(False)
        with pytest.raises(BlockingIOError):
            s.recvfrom(10)
        s.setblocking(True)
        s.setsockopt(1, 20, 0.2)                  # SO_RCVTIMEO: the kernel's timeout
        with pytest.raises(BlockingIOError):      # ... which ends in EAGAIN, as in Linux
            s.recvfrom(10)


def test_task_exit_closes_its_sockets(line):
    """A process that bound a port and exited: the node closed its descriptors."""
    h1 = line.node("h1")
    code = textwrap.dedent("""
        import sys
        from emu.client.socket import socket
        s = socket(2, 2, 0, node=sys.argv[1])
        s.bind(("0.0.0.0", 7300))
        print("bound", flush=True)
    """)
    r = subprocess.run([sys.executable, "-c", code, h1.sys_endpoint], capture_output=True,
                       text=True, env=cli_env(), cwd=ROOT, timeout=30)
    assert r.stdout.strip() == "bound", r.stderr
    deadline = time.monotonic() + 3
    while True:
        with h1.socket(AF_INET, SOCK_DGRAM) as s:
            try:
                s.bind(("0.0.0.0", 7300))
                break
            except OSError as e:
                assert e.errno == errno.EADDRINUSE
                assert time.monotonic() < deadline, "the exited task's socket was never closed"
                time.sleep(0.05)


def test_traceroute_T_times_one_syn_not_its_retransmission(line):
    """r1 rate-limits its ICMP errors to h1 (a burst of 6, then one a second):
    a probe whose time exceeded was suppressed shows `*`, not the ~1,000 ms
    after which the kernel's retransmitted SYN got an answer."""
    import re

    from emu.client.exec import run_command
    st = line._lab.state("running")
    times, stars = [], 0
    for _ in range(4):
        out = []
        rc = run_command(st, "h1", ["traceroute", "-n", "-T", "-m", "1", "-w", "2", "h2"],
                         out=out.append, err=out.append)
        assert rc == 0, out
        hop = out[-1]
        times += [float(t) for t in re.findall(r"([\d.]+) ms", hop)]
        stars += hop.split().count("*")
    assert len(times) + stars == 12
    assert times and max(times) < 900, times


def test_tracepath_finds_the_path_mtu_every_time(line):
    """r2's link to r3 has an MTU of 1280: the probe r2 cannot forward comes
    back as Frag Needed, shown as `pmtu 1280` on its hop, and the hop is
    probed again at that size. A second run finds it again: its probes are
    sent with IP_PMTUDISC_PROBE, which ignores the PMTU h1 has learned."""
    from emu.client.exec import run_command
    st = line._lab.state("running")
    for _ in range(2):
        out = []
        assert run_command(st, "h1", ["tracepath", "-n", "h2"], out=out.append, err=out.append) == 0
        assert out[0].split() == ["1?:", "[LOCALHOST]", "pmtu", "1500"], out
        pmtu = [ln for ln in out if ln.rstrip().endswith("pmtu 1280")]
        assert len(pmtu) == 1 and "10.0.12.2" in pmtu[0], out
        assert out[-1].split() == ["Resume:", "pmtu", "1280", "hops", "4", "back", "4"], out
        assert out[-2].split()[1] == "10.0.3.10" and out[-2].rstrip().endswith("reached"), out
