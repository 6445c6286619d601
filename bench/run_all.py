"""Run every benchmark in bench/ (what `make bench` runs), one after another.

    python bench/run_all.py [NAME ...]

Each benchmark is its own process and prints its own lines; this prints a
header per benchmark and exits non-zero if any of them failed.
"""
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
BENCHES = [
    ("stack_inline", ["stack_inline.py"]),     # kernel stack per packet inline, calls/packet
    ("rx_gro", ["rx_gro.py"]),                 # receive path, GRO on/off, vs the raw wire
    ("tcp_throughput", ["tcp_throughput.py"]),  # TCP goodput h1 -> h2 vs the raw wire
    ("syscall_path", ["syscall_path.py"]),       # no-op call, UDP program to program, ping vs raw limits
    ("flood", ["flood.py"]),                     # SYN flood: legit connects, emu exec latency
    ("netem", ["netem.py"]),                    # netem delay 0 cost, rate and delay accuracy
    ("faults", ["faults.py"]),                 # death detection, restart, schedule, dead-node answer
    ("status", ["status.py"]),                 # emu status with 1000 nodes: table, summary, json
    ("scale", ["scale.py"]),                   # 10/100/200-node labs: start, stop, USS, idle CPU
    ("shim_fds", ["shim_fds.py"]),             # real descriptors for emulated sockets: extra syscalls
    ("cluster", ["cluster.py"]),               # a tcp:// CURVE wire vs ipc://; the syscall relay
]


def _run(path, args):
    """Run one benchmark, its output passed through as it comes; returns (rc, lines)."""
    p = subprocess.Popen([sys.executable, str(path)] + args, stdout=subprocess.PIPE, text=True, bufsize=1)
    lines = []
    assert p.stdout is not None
    for line in p.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line.rstrip("\n"))
    return p.wait(), lines


# The data path's targets (issue 14), picked from the benchmarks' own lines:
# (benchmark, what the line starts with, its name in the table, the goal).
TARGETS = [
    ("tcp_throughput", "tcp h1 -> h2 via br0, gso/gro on:", "TCP goodput, offloads on (ratio to raw wire)", ">= 0.2"),
    ("tcp_throughput", "tcp h1 -> h2 via br0, gso/gro off:", "TCP offloads off, Mbit/s (segments/s ratio to raw MTU frames/s)", ">= 0.1"),
    ("syscall_path", "noop ", "no-op call (ratio to raw Unix round trip)", "<= 2"),
    ("syscall_path", "udp ", "UDP 64 B sendto/recvfrom (datagrams/s)", ">= 10000/s"),
    ("syscall_path", "udp-batch ", "UDP 64 B sendmmsg/recvmmsg (ratio to raw frames)", ">= 0.05"),
    ("syscall_path", "ping ", "ping h1 -> h2 median (ratio to raw 4-hop ring)", "<= 2"),
]


def _meets(result, goal):
    """result (a number as printed) against a goal like '<= 2' or '>= 10000/s'; '-': none."""
    if goal == "-":
        return True
    op, limit = goal.split()
    limit = float(limit.rstrip("/s"))
    value = float(result)
    return value <= limit if op == "<=" else value >= limit


def _targets(outputs):
    """One table of the data path's figures, as each benchmark printed them."""
    rows = []
    for bench, start, label, goal in TARGETS:
        for line in outputs.get(bench, ()):
            if line.startswith(start) and "ratio" in line:
                ratio = line.split("ratio", 1)[1].split()[0]
                value = line[len(start):].split()[0]
                if label.startswith("UDP 64 B sendto"):
                    ratio = value           # this goal is a rate, not a ratio
                rows.append((label, value, ratio, goal, _meets(ratio, goal)))
                break
    if not rows:
        return
    print("\n== issue 14 (data path): one table")
    print("%-64s %12s %10s  %-18s" % ("figure", "value", "result", "goal"))
    for label, value, ratio, goal, ok in rows:
        print("%-64s %12s %10s  %-18s %s" % (label, value, ratio, goal, "" if ok else "(missed)"))


def main(argv):
    wanted = set(argv)
    failed = []
    outputs = {}
    for name, cmd in BENCHES:
        if wanted and name not in wanted:
            continue
        path = HERE / cmd[0]
        if not path.exists():
            continue
        print("== %s" % name, flush=True)
        t0 = time.monotonic()
        rc, outputs[name] = _run(path, cmd[1:])
        print("   (%s: %.1f s%s)" % (name, time.monotonic() - t0,
                                     "" if rc == 0 else ", FAILED rc=%d" % rc), flush=True)
        if rc:
            failed.append(name)
    _targets(outputs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
