"""The kernel stack's own cost per packet, inline (no wires, no processes).

    python bench/stack_inline.py [--packets 4000] [--profile] [--groups]

Kernels are joined in one process by in-memory wires (tests/kernel/harness.py
InlineLab, a fake clock) and N packets are pushed through representative
paths, every node's work included (the sender's, the bridge's or routers',
the receiver's):

  udp-sendto   64-byte datagrams, unconnected sendto h1 -> br0 -> h2, recvfrom on h2
  udp-conn     the same between two connected sockets (send, recv; early demux)
  tcp          bulk h1 -> h2 (TSO and GRO off): per MSS segment, ACKs included
  tcp-gso      bulk h1 -> h2 (TSO/GSO and GRO on): per MSS of payload
  icmp-echo    ping h1 -> h2 from a raw socket: per echo (request and reply)
  forward      64-byte UDP h1 -> r1 -> r2 -> r3 -> h2 (router_line_lab): per datagram

For each: microseconds per packet and Python calls per packet (cProfile's
total call count / packets, in a separate run). The limit is a bare loop
doing, per frame, what any receive path must: a struct unpack of the
Ethernet + IP header and a dict lookup, measured again just before each
path; each path's cost is printed as a multiple of it. Times are the
process's CPU time (time.process_time), not wall time, so that waiting for
a CPU on a shared machine is not counted; each is the best of REPEAT runs.

--profile prints the top functions per path by own time; --groups prints
"where a packet's time goes": own time per packet summed by kernel module.
"""
import argparse
import cProfile
import errno
import io
import os
import pathlib
import pstats
import struct
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emu.kernel.core import rtnetlink  # noqa: E402
from emu.kernel.core.dev import KernelError  # noqa: E402
from emu.kernel.socket import (  # noqa: E402
    SOCK_NONBLOCK, sys_accept, sys_bind, sys_connect, sys_listen, sys_recvfrom, sys_sendto,
    sys_socket,
)
from tests.kernel.harness import bridge_lab, icmp_echo_bytes, router_line_lab  # noqa: E402

AF_INET, SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, IPPROTO_ICMP = 2, 1, 2, 3, 1
MSG_DONTWAIT = 0x40
REPEAT = 3
PAYLOAD = b"x" * 64
MSS = 1448


def _features(lab, tso, gro):
    for net in lab.nets.values():
        for name, dev in list(net.dev_by_name.items()):
            if dev.kind == "veth":
                rtnetlink.RTNL_OPS["features_set"](net, dev=name, **{
                    "tx-tcp-segmentation": tso, "tx-generic-segmentation": tso,
                    "rx-gro": gro})


def _forget_sent(lab):
    for port in lab.ports:
        port.sent.clear()
        port.sent_at.clear()


def _drain(task, fd, size=65536):
    n = 0
    while True:
        try:
            d = sys_recvfrom(task, fd, size, MSG_DONTWAIT)[0]
        except KernelError as e:
            if e.errno == errno.EAGAIN:
                return n
            raise
        if not d:
            return n
        n += len(d)


# ------------------------------------------------------------------ paths
# Each setup returns run(n) -> packets moved; run does the timed work.

def udp_setup(lab, src, dst, daddr, connected):
    t1, t2 = lab.task(src), lab.task(dst)
    rx = sys_socket(t2, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    sys_bind(t2, rx, ("0.0.0.0", 9000))
    tx = sys_socket(t1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    addr = (daddr, 9000)
    if connected:
        sys_bind(t1, tx, ("0.0.0.0", 9001))
        sys_connect(t1, tx, addr)
        sys_connect(t2, rx, (connected, 9001))
        addr = None
    sys_sendto(t1, tx, PAYLOAD, 0, addr or (daddr, 9000))     # ARP and FDB warm up
    lab.run()
    _drain(t2, rx)

    def run(n):
        got = 0
        for _batch in range(n // 16):
            for _ in range(16):
                sys_sendto(t1, tx, PAYLOAD, 0, addr)
            lab.run()
            while True:
                try:
                    sys_recvfrom(t2, rx, 2048, MSG_DONTWAIT)
                except KernelError:
                    break
                got += 1
        _forget_sent(lab)
        assert got == n - n % 16, (got, n)                # nothing lost
        return got
    return run


def tcp_setup(lab, offload):
    _features(lab, offload, offload)
    t1, t2 = lab.task("h1"), lab.task("h2")
    ls = sys_socket(t2, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    sys_bind(t2, ls, ("0.0.0.0", 80))
    sys_listen(t2, ls, 8)
    c = sys_socket(t1, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    try:
        sys_connect(t1, c, ("10.0.0.2", 80))
    except KernelError as e:
        assert e.errno == errno.EINPROGRESS
    lab.run()
    s, _ = sys_accept(t2, ls, SOCK_NONBLOCK)
    chunk = os.urandom(65536)

    def run(n):
        want = n * MSS
        sent = got = 0
        stuck = 0
        while got < want:
            if sent < want:
                try:
                    sent += sys_sendto(t1, c, chunk[:min(65536, want - sent)], 0, None)
                except KernelError as e:
                    assert e.errno == errno.EAGAIN
            lab.run()
            moved = _drain(t2, s)
            got += moved
            lab.run()
            if not moved:
                stuck += 1
                lab.advance(0.001, tick=0.001)   # delayed ACKs, pacing: let timers run
                assert stuck < 100000
        _forget_sent(lab)
        return got // MSS
    return run


def icmp_setup(lab):
    t1 = lab.task("h1")
    fd = sys_socket(t1, AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_ICMP)
    req = icmp_echo_bytes(0x4242, 1)
    sys_sendto(t1, fd, req, 0, ("10.0.0.2", 0))
    lab.run()
    _drain(t1, fd)

    def run(n):
        got = 0
        for _ in range(n):
            sys_sendto(t1, fd, req, 0, ("10.0.0.2", 0))
            lab.run()
            got += 1 if _drain(t1, fd) else 0
        _forget_sent(lab)
        assert got == n
        return n
    return run


PATHS = {
    "udp-sendto": lambda: udp_setup(bridge_lab(), "h1", "h2", "10.0.0.2", False),
    "udp-conn": lambda: udp_setup(bridge_lab(), "h1", "h2", "10.0.0.2", "10.0.0.1"),
    "tcp": lambda: tcp_setup(bridge_lab(), False),
    "tcp-gso": lambda: tcp_setup(bridge_lab(), True),
    "icmp-echo": lambda: icmp_setup(bridge_lab()),
    "forward": lambda: udp_setup(router_line_lab(), "h1", "h2", "10.0.3.10", False),
}


def bare_limit(n):
    """µs per frame of a loop that unpacks Ethernet+IP headers and looks up a dict."""
    hdr = struct.Struct("!6s6sHBBHHHBBH4s4s")
    frame = bytes(14) + bytes([0x45]) + bytes(19) + PAYLOAD
    frames = [frame] * n
    table = {bytes(4): 1}
    best = 1e9
    for _ in range(REPEAT):
        t0 = time.process_time()
        for f in frames:
            h = hdr.unpack_from(f, 0)
            table.get(h[12])
        best = min(best, (time.process_time() - t0) / n)
    return best * 1e6


def measure(name, n):
    best = 1e9
    for _ in range(REPEAT):
        run = PATHS[name]()
        run(min(n, 64))                    # warm-up: caches, slow start
        t0 = time.process_time()
        moved = run(n)
        best = min(best, (time.process_time() - t0) / moved)
    return best * 1e6


def profile(name, n):
    run = PATHS[name]()
    run(min(n, 64))
    pr = cProfile.Profile()
    pr.enable()
    moved = run(n)
    pr.disable()
    st = pstats.Stats(pr)
    return pr, st, moved


GROUPS = (
    ("wire (harness)", ("bench/", "tests/")),
    ("syscall+sock", ("emu/kernel/socket.py", "core/entry.py", "core/sock.py", "ipv4/af_inet.py")),
    ("udp", ("ipv4/udp",)),
    ("tcp", ("ipv4/tcp",)),
    ("raw/icmp", ("ipv4/raw.py", "ipv4/icmp.py")),
    ("route/fib", ("ipv4/route.py", "core/dst.py", "ipv4/devinet.py")),
    ("ip out", ("ipv4/ip_output.py",)),
    ("ip in+fwd", ("ipv4/ip_input.py", "ipv4/ip_forward.py", "ipv4/ip_options")),
    ("neigh/eth", ("core/neighbour.py", "ipv4/arp.py", "ethernet/")),
    ("netfilter", ("netfilter/",)),
    ("dev+veth", ("core/dev.py", "sched/", "drivers/", "core/netdevice.py", "core/gso.py",
                  "core/gro.py", "offload.py", "core/rps.py", "core/napi.py")),
    ("skbuff", ("core/skbuff.py",)),
    ("bridge", ("bridge/",)),
    ("checksum", ("hdr/",)),
    ("timers/clock", ("core/timer.py", "core/net.py")),
)


def group_of(filename):
    for g, keys in GROUPS:
        if any(k in filename for k in keys):
            return g
    return "builtins/other"


def groups(st, moved, us):
    """(group, share of own time, µs per packet) per function group, biggest first.

    cProfile inflates every call by about the same amount, so each group's
    share of the profiled own time, times the unprofiled µs per packet, is
    its estimated cost (builtins are charged to "builtins/other").
    """
    out: dict = {}
    for (filename, _, _), (_, _, tt, _, _) in st.stats.items():
        g = group_of(filename)
        out[g] = out.get(g, 0.0) + tt
    total = sum(out.values()) or 1.0
    return sorted(((g, t / total, us * t / total) for g, t in out.items()),
                  key=lambda x: -x[1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=4000)
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--groups", action="store_true")
    a = ap.parse_args(argv)
    n = a.packets
    print("stack_inline: %d packets per path, best of %d, CPU time; limit: struct unpack "
          "+ dict lookup per frame, measured before each path" % (n, REPEAT))
    text = io.StringIO()
    for name in a.paths.split(","):
        limit = bare_limit(n * 4)
        us = measure(name, n if not name.startswith("tcp") else n // 2)
        pr, st, moved = profile(name, n // 2)
        calls = st.total_calls / moved
        print("  %-11s %7.1f us/packet = %5.0f x the limit (%.2f us); %4.0f Python calls/packet"
              % (name, us, us / limit, limit, calls), flush=True)
        if a.groups:
            text.write("\n--- %s: where a packet's %.1f us go (cProfile own-time shares)\n"
                       % (name, us))
            for g, share, t in groups(st, moved, us):
                if share >= 0.01:
                    text.write("  %-15s %5.1f %%  %6.1f us\n" % (g, 100 * share, t))
        if a.profile:
            text.write("\n--- cProfile %s, %d packets (top 25 by own time)\n" % (name, moved))
            pstats.Stats(pr, stream=text).sort_stats("tottime").print_stats(25)
    sys.stdout.write(text.getvalue())


if __name__ == "__main__":
    main()
