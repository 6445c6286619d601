import contextlib
import hashlib
import os
import pathlib
import threading
from socket import AF_INET, SOCK_STREAM

import pytest

import emu

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOPOLOGIES = ROOT / "topologies"


@pytest.fixture
def bridge_lab():
    with emu.launch(TOPOLOGIES / "veth-bridge.yaml") as lab:
        yield lab


def cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def transfer_both_ways(lab, a, b, addr, port, size, timeout=600):
    """size bytes each way at once between nodes a and b (b listens on addr:port),
    sender and receiver of each direction in threads with their own syscall
    connections; returns (got up, wanted up, got down, wanted down) as (n, sha256)."""
    na, nb = lab.node(a), lab.node(b)
    up, down = os.urandom(size), os.urandom(size)
    srv = nb.socket(AF_INET, SOCK_STREAM)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    srv.settimeout(timeout)                   # at 20% loss the handshake can take a while
    cli = na.socket(AF_INET, SOCK_STREAM)
    cli.settimeout(timeout)
    cli.connect((addr, port))
    conn, _ = srv.accept()
    conn.settimeout(timeout)
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
        t.join(timeout * 1.5)
    for s in (cli, conn, srv):
        s.close()
    return (results.get("up"), (size, hashlib.sha256(up).hexdigest()),
            results.get("down"), (size, hashlib.sha256(down).hexdigest()))


TAP_LINUX_IP, TAP_EMU_IP = "198.18.0.1", "198.18.0.2"


def tap_why_not(tool=None):
    """Why a TAP interop test cannot run here (None: it can)."""
    import shutil
    if os.geteuid() != 0:
        return "needs root (network namespaces and /dev/net/tun)"
    if not shutil.which("ip"):
        return "needs iproute2's ip"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    if tool and not shutil.which(tool):
        return "the real %s is not installed on this host" % tool
    return None


def netns_sh(*cmd, check=True, timeout=30):
    import subprocess
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)


@contextlib.contextmanager
def tap_netns_lab(directory, name):
    """A one-host lab whose h1:eth0 faces a TAP device in a network namespace
    made (and deleted) here: 198.18.0.1/24 on the Linux side, 198.18.0.2/24
    on h1, no route out. Yields (lab, netns, tap)."""
    import textwrap
    import uuid
    tag = uuid.uuid4().hex[:8]
    ns, tap = "emu-%s" % tag, "emutap%s" % tag[:6]
    netns_sh("ip", "netns", "add", ns)
    try:
        # The lab's own file says it: eth0 of h1 faces TAP device `tap` in `ns`.
        topo = directory / ("%s.yaml" % name)
        topo.write_text(textwrap.dedent("""
            name: %s
            nodes:
              h1: {kind: host, cpus: 1, interfaces: {eth0: {address: %s/24}}}
            links:
              - {endpoints: [h1:eth0], type: tap, tap: %s, netns: %s}
        """ % (name, TAP_EMU_IP, tap, ns)))
        with emu.launch(topo) as lab:
            netns_sh("ip", "-n", ns, "link", "set", "lo", "up")
            netns_sh("ip", "-n", ns, "addr", "add", TAP_LINUX_IP + "/24", "dev", tap)
            netns_sh("ip", "-n", ns, "link", "set", tap, "up")
            yield lab, ns, tap
    finally:
        netns_sh("ip", "netns", "del", ns, check=False)


def transfer_bytes(lab, a, b, addr, port, size):
    """size random bytes from node a to b (listening on addr:port): True if they arrive intact."""
    data = os.urandom(size)
    srv = lab.node(b).socket(AF_INET, SOCK_STREAM)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    got = bytearray()

    def receive():
        conn, _ = srv.accept()
        conn.settimeout(120)
        while True:
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            got.extend(chunk)
        conn.close()

    t = threading.Thread(target=receive, daemon=True)
    t.start()
    cli = lab.node(a).socket(AF_INET, SOCK_STREAM)
    cli.settimeout(120)
    cli.connect((addr, port))
    cli.sendall(data)
    cli.close()
    t.join(120)
    srv.close()
    return hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
