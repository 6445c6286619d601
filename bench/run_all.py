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


def main(argv):
    wanted = set(argv)
    failed = []
    for name, cmd in BENCHES:
        if wanted and name not in wanted:
            continue
        path = HERE / cmd[0]
        if not path.exists():
            continue
        print("== %s" % name, flush=True)
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, str(path)] + cmd[1:])
        print("   (%s: %.1f s%s)" % (name, time.monotonic() - t0,
                                     "" if rc == 0 else ", FAILED rc=%d" % rc), flush=True)
        if rc:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
