"""emu's tools against the real ones over a TAP link into a private netns.

iperf3 speaks iperf3's protocol: emu's client against the host's iperf3
server and the host's client against emu's server. tcpdump on the Linux
side of the TAP sees emu's frames, and emu's ping is answered by Linux.
Skips, with the reason, where root, iproute2, /dev/net/tun or the tool is
missing.
"""
import subprocess
import threading
import time

import pytest

from emu.client.exec import run_command
from tests.integration.conftest import TAP_EMU_IP, TAP_LINUX_IP, netns_sh, tap_netns_lab, tap_why_not

pytestmark = pytest.mark.real_time("real tools over a TAP device")

LINUX_IP, EMU_IP = TAP_LINUX_IP, TAP_EMU_IP
sh = netns_sh
_why_not = tap_why_not


@pytest.fixture(scope="module")
def tap_lab(tmp_path_factory):
    if tap_why_not():
        pytest.skip(tap_why_not())
    with tap_netns_lab(tmp_path_factory.mktemp("tap"), "tap-tools") as (lab, ns, tap):
        lab.st = lab._lab.state("running")
        yield lab, ns, tap


def run(lab, argv):
    out = []
    rc = run_command(lab.st, "h1", argv, out=out.append, err=out.append)
    return rc, "\n".join(out)


@pytest.mark.skipif(_why_not("iperf3") is not None, reason=_why_not("iperf3") or "")
def test_emu_iperf3_client_against_the_real_server(tap_lab):
    lab, ns, _ = tap_lab
    srv = subprocess.Popen(["ip", "netns", "exec", ns, "iperf3", "-s", "-1"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.0)
        rc, out = run(lab, ["iperf3", "-c", LINUX_IP, "-t", "2", "-P", "2"])
        sout, _ = srv.communicate(timeout=60)
    finally:
        srv.kill()
    assert rc == 0, out
    assert "sender" in out and "receiver" in out and "iperf Done." in out, out
    assert srv.returncode == 0 and "receiver" in sout, sout


@pytest.mark.skipif(_why_not("iperf3") is not None, reason=_why_not("iperf3") or "")
@pytest.mark.parametrize("opts", [[], ["-R"], ["-u", "-b", "5M"]])
def test_real_iperf3_client_against_emus_server(tap_lab, opts):
    lab, ns, _ = tap_lab
    res = {}
    t = threading.Thread(target=lambda: res.setdefault("s", run(lab, ["iperf3", "-s", "-1"])))
    t.start()
    time.sleep(1.0)
    try:
        p = sh("ip", "netns", "exec", ns, "iperf3", "-c", EMU_IP, "-t", "2", *opts, check=False,
               timeout=30)
    except subprocess.TimeoutExpired as e:
        t.join(40)
        raise AssertionError((e.stdout, e.stderr, res)) from None
    t.join(60)
    assert p.returncode == 0, (p.stdout + p.stderr, res)
    assert "iperf Done." in p.stdout
    rc, sout = res["s"]
    assert rc == 0 and ("receiver" in sout or "sender" in sout), sout


@pytest.mark.skipif(_why_not("tcpdump") is not None, reason=_why_not("tcpdump") or "")
def test_real_tcpdump_reads_emus_pcap(tap_lab, tmp_path):
    lab, ns, _ = tap_lab
    path = str(tmp_path / "emu.pcap")
    res = {}
    t = threading.Thread(target=lambda: res.setdefault("r", run(
        lab, ["tcpdump", "-n", "-i", "eth0", "-c", "4", "-w", path, "icmp"])))
    t.start()
    time.sleep(0.8)
    run(lab, ["ping", "-c", "2", "-i", "0.2", LINUX_IP])
    t.join(20)
    p = sh("tcpdump", "-n", "-r", path, check=False)
    lines = p.stdout.splitlines()
    assert p.returncode == 0 and len(lines) == 4, p.stdout + p.stderr
    assert "ICMP echo request" in lines[0] and "ICMP echo reply" in lines[1]


@pytest.mark.skipif(_why_not("iperf3") is not None, reason=_why_not("iperf3") or "")
def test_emu_iperf3_udp_client_against_the_real_server(tap_lab):
    lab, ns, _ = tap_lab
    srv = subprocess.Popen(["ip", "netns", "exec", ns, "iperf3", "-s", "-1"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.0)
        rc, out = run(lab, ["iperf3", "-c", LINUX_IP, "-t", "2", "-u", "-b", "5M"])
        sout, _ = srv.communicate(timeout=60)
    finally:
        srv.kill()
    assert rc == 0, out
    assert "Jitter" in out and "receiver" in out, out
    assert srv.returncode == 0 and "(0%)" in sout or "receiver" in sout, sout
