"""The system call path and the wires, as ratios to limits measured in the same run
(issue 14's figures; TCP goodput is bench/tcp_throughput.py).

    python bench/syscall_path.py [--seconds 3] [--pings 200]

  noop        a getsockname round trip, against a raw Unix-socket round trip
              between two processes (goal: at most 2 x)
  udp         64-byte datagrams from a program on h1 to a program on h2 across
              br0 with plain sendto/recvfrom: received per second (goal: at
              least 10,000), and as a share of the raw per-frame wire rate
              (64-byte ZeroMQ messages between two processes)
  udp-batch   the same with sendmmsg/recvmmsg (goal: at least 0.05 of the raw
              per-frame wire rate)
  ping        median RTT h1 -> h2 across br0 (N pings 10 ms apart), against a
              raw 4-hop ZeroMQ ring paced the same way (goal: at most 2 x)

Each row prints the measurement, its limit and the ratio; the last lines are
the table. Timings are wall clock on whatever machine this runs: on a shared
one, compare the ratios, not the absolute figures.
"""
import argparse
import multiprocessing
import os
import pathlib
import shutil
import socket
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

UDP_PORT = 7400


# ------------------------------------------------------------------ limits

def raw_unix_rtt_us(n=5000):
    """A round trip of a small message between two processes over a Unix socket."""
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        b.close()
        while True:
            d = a.recv(256)
            if not d:
                os._exit(0)
            a.sendall(d)
    a.close()
    msg = b"x" * 40
    for _ in range(200):
        b.sendall(msg)
        b.recv(256)
    t0 = time.perf_counter()
    for _ in range(n):
        b.sendall(msg)
        b.recv(256)
    dt = time.perf_counter() - t0
    b.close()
    os.waitpid(pid, 0)
    return dt / n * 1e6


def _sink(endpoint, count, ready):
    import zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.PULL)
    s.bind(endpoint)
    ready.set()
    for _ in range(count):
        s.recv()
    s.close(0)
    ctx.term()


def raw_frame_rate(count=100000, size=78):
    """64-byte frames (with their wire header), one per ZeroMQ message, process to process."""
    import zmq
    d = tempfile.mkdtemp(prefix="emu-bench-")
    ep = "ipc://%s/raw" % d
    ready = multiprocessing.Event()
    p = multiprocessing.Process(target=_sink, args=(ep, count, ready))
    p.start()
    ready.wait(10)
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.connect(ep)
    msg = os.urandom(size)
    t0 = time.perf_counter()
    for _ in range(count):
        s.send(msg)
    p.join(120)
    dt = time.perf_counter() - t0
    s.close(0)
    ctx.term()
    shutil.rmtree(d, ignore_errors=True)   # the ipc socket file stays behind
    return count / dt


def _ring_hop(inp, out, n):
    import zmq
    ctx = zmq.Context()
    rx = ctx.socket(zmq.PULL)
    rx.bind(inp)
    tx = ctx.socket(zmq.PUSH)
    tx.connect(out)
    for _ in range(n):
        tx.send(rx.recv())
    time.sleep(0.2)
    rx.close(0)
    tx.close(0)
    ctx.term()


def raw_ring_rtt_us(n, interval=0.01, hops=4):
    """A message around a ring of `hops` ZeroMQ hops (processes), paced like ping: median."""
    import zmq
    d = tempfile.mkdtemp(prefix="emu-bench-")
    eps = ["ipc://%s/r%d" % (d, i) for i in range(hops)]
    procs = [multiprocessing.Process(target=_ring_hop, args=(eps[i], eps[i + 1], n + 5))
             for i in range(1, hops - 1)]
    procs.append(multiprocessing.Process(target=_ring_hop, args=(eps[hops - 1], eps[0], n + 5)))
    for p in procs:
        p.start()
    ctx = zmq.Context()
    rx = ctx.socket(zmq.PULL)
    rx.bind(eps[0])
    tx = ctx.socket(zmq.PUSH)
    tx.connect(eps[1])
    rtts = []
    for i in range(n + 5):
        t0 = time.perf_counter()
        tx.send(b"p" * 98)
        rx.recv()
        if i >= 5:
            rtts.append(time.perf_counter() - t0)
        time.sleep(interval)
    for p in procs:
        p.join(10)
    rx.close(0)
    tx.close(0)
    ctx.term()
    shutil.rmtree(d, ignore_errors=True)
    return statistics.median(rtts) * 1e6


# ------------------------------------------------------------------ programs on nodes

def udp_receiver(seconds, batch):
    """On h2: count 64-byte datagrams for `seconds` after the first; returns per second."""
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", UDP_PORT))
    s.settimeout(30)
    s.recvfrom(2048)
    s.settimeout(1.0)
    got = 0
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        try:
            if batch:
                got += len(s.recvmmsg(64, 2048))
            else:
                s.recvfrom(2048)
                got += 1
        except OSError:
            break
    return got / (time.monotonic() - t0)


def udp_sender(seconds, batch):
    """On h1: send 64-byte datagrams to h2 for `seconds`; returns per second."""
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dst = ("10.0.0.2", UDP_PORT)
    payload = b"x" * 64
    n = 0
    t0 = time.monotonic()
    end = t0 + seconds
    msgs = [(payload, dst)] * 64
    while time.monotonic() < end:
        if batch:
            n += s.sendmmsg(msgs)
        else:
            s.sendto(payload, dst)
            n += 1
    return n / (time.monotonic() - t0)


def udp_rate(lab, seconds, batch):
    rx = lab.node("h2").spawn(udp_receiver, seconds, batch)
    time.sleep(0.3)
    # The receiver counts for `seconds` from the first datagram: the sender
    # goes on a little longer, so the whole window is sent into.
    tx = lab.node("h1").spawn(udp_sender, seconds + 0.3, batch)
    probe = _probe_calls(lab, seconds)
    got = rx.result(seconds + 60)
    sent = tx.result(seconds + 60)
    _quiet(lab)
    return got, sent, probe


def _probe_calls(lab, seconds):
    """While the flood runs: another task's no-op call on h1 every 5 ms, timed
    (a node serves its tasks' calls in turn: one that floods must not hold
    up the others). Returns (median, max) in ms."""
    s = lab.node("h1").socket(2, 2)
    time.sleep(0.5)
    lat = []
    end = time.monotonic() + max(0.5, seconds - 1.0)
    while time.monotonic() < end:
        t0 = time.perf_counter()
        s.getsockname()
        lat.append((time.perf_counter() - t0) * 1e3)
        time.sleep(0.005)
    s.close()
    return statistics.median(lat), max(lat)


def _quiet(lab, timeout=30.0):
    """Wait until what a flood left queued (ZeroMQ's queues, rings, backlogs)
    has drained: h2 receives nothing for 0.3 s. The next figure (ping above
    all) would otherwise be measured behind it."""
    h2 = lab.node("h2")
    last = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = h2.counters()["snmp"]["Ip"]["InReceives"]
        if now == last:
            return
        last = now
        time.sleep(0.3)


def noop_us(lab, n=3000):
    s = lab.node("h1").socket(2, 2)
    for _ in range(200):
        s.getsockname()
    t0 = time.perf_counter()
    for _ in range(n):
        s.getsockname()
    dt = time.perf_counter() - t0
    s.close()
    return dt / n * 1e6


def ping_median_us(lab, n):
    res = lab.node("h1").ping("h2", count=n, interval=0.01)
    return statistics.median(res.rtts) * 1000


def main(argv=None):
    import emu
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--pings", type=int, default=200)
    p.add_argument("--only", default="noop,udp,udp-batch,ping",
                   help="comma-separated figures to measure (default: all)")
    a = p.parse_args(argv)
    only = set(a.only.split(","))
    rows = []

    def row(name, value, unit, limit, limit_desc, ratio, goal, ok):
        rows.append((name, value, unit, ratio, goal, ok))
        print("%-10s %10.1f %-12s limit %10.1f (%s)  ratio %.3f  goal %s  %s" % (
            name, value, unit, limit, limit_desc, ratio, goal, "ok" if ok else "MISSED"), flush=True)

    raw_rtt = raw_unix_rtt_us() if "noop" in only else None
    raw_rate = raw_frame_rate() if only & {"udp", "udp-batch"} else None
    with emu.launch(ROOT / "topologies" / "veth-bridge.yaml") as lab:
        if "noop" in only:
            nu = noop_us(lab)
            row("noop", nu, "us", raw_rtt, "raw Unix-socket round trip, us", nu / raw_rtt, "<= 2",
                nu <= 2 * raw_rtt)
        if "udp" in only:
            got, sent, probe = udp_rate(lab, a.seconds, False)
            row("udp", got, "dgrams/s", raw_rate, "raw 64 B wire frames/s", got / raw_rate,
                ">= 10000/s", got >= 10000)
            print("           (sent %.0f/s; another task's no-op call on h1 meanwhile: median %.2f ms, max %.1f)"
                  % ((sent,) + probe))
        if "udp-batch" in only:
            got, sent, probe = udp_rate(lab, a.seconds, True)
            row("udp-batch", got, "dgrams/s", raw_rate, "raw 64 B wire frames/s", got / raw_rate,
                ">= 0.05", got / raw_rate >= 0.05)
            print("           (sent %.0f/s; another task's no-op call on h1 meanwhile: median %.2f ms, max %.1f)"
                  % ((sent,) + probe))
        pm = ping_median_us(lab, a.pings) if "ping" in only else None
    if pm is not None:
        ring = raw_ring_rtt_us(a.pings)
        row("ping", pm, "us median", ring, "raw 4-hop ZeroMQ ring, us", pm / ring, "<= 2", pm <= 2 * ring)
    print()
    print("%-10s %12s %-12s %8s  %-10s" % ("figure", "value", "unit", "ratio", "goal"))
    for name, value, unit, ratio, goal, ok in rows:
        print("%-10s %12.1f %-12s %8.3f  %-10s %s" % (name, value, unit, ratio, goal, "" if ok else "(missed)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
