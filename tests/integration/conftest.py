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
