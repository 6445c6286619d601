"""Interop with the real Linux kernel through a TAP device in a private netns.

The test makes its own network namespace (198.18.0.0/15 addresses, no route
out of it), attaches an emulated host to a TAP device created inside it, and
deletes the namespace afterwards.
"""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.integration.conftest import TAP_EMU_IP, TAP_LINUX_IP, netns_sh, tap_netns_lab, tap_why_not

LINUX_IP, EMU_IP = TAP_LINUX_IP, TAP_EMU_IP
sh = netns_sh

pytestmark = [pytest.mark.real_time("a TAP device is the real network"),
              pytest.mark.skipif(tap_why_not() is not None, reason=tap_why_not() or "")]


@pytest.fixture
def tap_lab(tmp_path):
    with tap_netns_lab(tmp_path, "tap-host") as t:
        yield t


def test_namespace_has_no_route_out(tap_lab):
    lab, ns, tap = tap_lab
    routes = sh("ip", "-n", ns, "route", "show").stdout
    assert "default" not in routes
    assert routes.strip().startswith("198.18.0.0/24 dev %s" % tap)


@pytest.mark.skipif(not shutil.which("ping"), reason="iputils ping is not installed (apt-get install iputils-ping)")
def test_real_ping_gets_replies_from_the_emulated_host(tap_lab):
    lab, ns, tap = tap_lab
    r = sh("ip", "netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", EMU_IP, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 packets transmitted, 3 received" in r.stdout
    assert lab.node("h1").counters()["snmp"]["Icmp"]["InEchos"] == 3


def test_emulated_host_pings_linux(tap_lab):
    lab, ns, tap = tap_lab
    r = lab.node("h1").ping(LINUX_IP, count=3, interval=0.1)
    assert r.received == 3
    neigh = {n["dst"]: n for n in lab.node("h1").neigh()}
    linux_mac = sh("ip", "-n", ns, "-br", "link", "show", tap).stdout.split()[2]
    assert neigh[LINUX_IP]["lladdr"] == linux_mac


ECHO_SERVER = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], 9999))
    print("ready", flush=True)
    for _ in range(2):
        data, addr = s.recvfrom(65535)
        s.sendto(data[::-1], addr)
""")


def test_udp_both_ways_with_fragmentation(tap_lab):
    lab, ns, tap = tap_lab
    srv = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", ECHO_SERVER, LINUX_IP],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "ready"
        h1 = lab.node("h1")
        with h1.socket(2, 2, 0) as s:
            s.settimeout(5)
            for payload in (b"small datagram", os.urandom(4000)):   # 4000 B: 3 fragments each way
                s.sendto(payload, (LINUX_IP, 9999))
                data, addr = s.recvfrom(65535)
                assert data == payload[::-1] and addr == (LINUX_IP, 9999)
        ip = h1.counters()["snmp"]["Ip"]
        assert ip["FragCreates"] >= 3 and ip["ReasmOKs"] >= 1
        assert srv.wait(10) == 0
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


def test_linux_client_to_emulated_server(tap_lab):
    lab, ns, tap = tap_lab
    h1 = lab.node("h1")
    with h1.socket(2, 2, 0) as s:
        s.bind(("0.0.0.0", 8888))
        s.settimeout(5)
        client = textwrap.dedent("""
            import socket, sys
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            c.settimeout(5)
            c.sendto(b"x" * 3000, (sys.argv[1], 8888))
            print(c.recvfrom(65535)[0].decode())
        """)
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", client, EMU_IP],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        data, addr = s.recvfrom(65535)
        assert data == b"x" * 3000 and addr[0] == LINUX_IP
        s.sendto(b"hello from emu", addr)
        out, err = p.communicate(timeout=10)
        assert out.strip() == "hello from emu", err


TCP_SERVER = textwrap.dedent("""
    import hashlib, socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], 9998))
    s.listen(1)
    print("ready", flush=True)
    c, _ = s.accept()
    h = hashlib.sha256()
    n = 0
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        h.update(d)
        n += len(d)
    c.sendall(("%d %s" % (n, h.hexdigest())).encode())
    c.close()
""")

TCP_CLIENT = textwrap.dedent("""
    import hashlib, os, socket, subprocess, sys
    data = os.urandom(int(sys.argv[2]))
    c = socket.create_connection((sys.argv[1], 9997), timeout=60)
    c.sendall(data)
    # What Linux negotiated, while the connection is open: ss -ti, and the
    # tcpi_options byte of struct tcp_info (ss on this iproute2 does not print ts/sack).
    print(subprocess.run(["ss", "-tin", "dst", sys.argv[1]], capture_output=True, text=True).stdout,
          flush=True)
    info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    print("OPTIONS", info[5], info[6] & 15, info[6] >> 4, flush=True)
    c.shutdown(socket.SHUT_WR)
    reply = c.recv(200).decode()
    print("RESULT", len(data), hashlib.sha256(data).hexdigest(), reply, flush=True)
""")


def test_tcp_20mb_linux_client_to_emulated_server(tap_lab):
    import hashlib
    lab, ns, tap = tap_lab
    h1 = lab.node("h1")
    size = 20 * 1024 * 1024
    with h1.socket(2, 1, 0) as srv:
        srv.bind(("0.0.0.0", 9997))
        srv.listen(1)
        srv.settimeout(30)
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", TCP_CLIENT,
                              EMU_IP, str(size)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        conn, addr = srv.accept()
        conn.settimeout(60)
        h = hashlib.sha256()
        n = 0
        while True:
            d = conn.recv(1 << 20)
            if not d:
                break
            h.update(d)
            n += len(d)
        conn.sendall(("%d %s" % (n, h.hexdigest())).encode())
        conn.close()
        out, err = p.communicate(timeout=120)
    result = next(line for line in out.splitlines() if line.startswith("RESULT")).split()
    assert result[1] == result[3] == str(size) and result[2] == result[4], out + err
    # On the Linux side: window scaling (ss -ti: wscale:7,...), and in tcp_info
    # TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE, our shift 7.
    assert "wscale:7," in out, out
    opts = next(line for line in out.splitlines() if line.startswith("OPTIONS")).split()
    assert int(opts[1]) == 7 and int(opts[2]) == 7, out


def test_tcp_20mb_emulated_client_to_linux_server(tap_lab):
    import hashlib
    lab, ns, tap = tap_lab
    srv = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", TCP_SERVER, LINUX_IP],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "ready"
        size = 20 * 1024 * 1024
        data = os.urandom(size)
        with lab.node("h1").socket(2, 1, 0) as c:
            c.settimeout(60)
            c.connect((LINUX_IP, 9998))
            info = c.getsockopt(6, 11)                     # TCP_INFO
            assert set(info["options"]) == {"ts", "sack", "wscale"}
            c.sendall(data)
            c.shutdown(1)
            reply = c.recv(200).decode().split()
        assert reply == [str(size), hashlib.sha256(data).hexdigest()]
    finally:
        if srv.poll() is None:
            srv.kill()
        srv.wait()
