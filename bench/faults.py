"""Faults: how fast the orchestrator notices, restarts and answers, and how
closely it keeps a fault schedule.

    python bench/faults.py [--rounds 5]

On the veth-bridge lab:

  detection    SIGKILL h2 from outside; time until the supervisor has
               recorded it as crashed (limit: 1 s, the issue's bound)
  restart      node.start() of the dead h2 until it answers ping from h1,
               as a ratio to launching the whole 3-node lab in the same run
  schedule     a schedule of link down/up events every 0.25 s: the worst
               lateness of an event against its planned time (limit 0.1 s)
  dead answer  `emu exec h2 -- ip addr` on the dead h2 (one line, exit 1),
               as a ratio to `emu exec h1 -- ip addr` on a live node, and
               against the 2 s limit

Each figure is the median of --rounds runs; a ratio above its limit fails.
"""
import argparse
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import emu  # noqa: E402

TOPO = ROOT / "topologies" / "veth-bridge.yaml"


def wait_for(pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.002)
    return False


def cli(env, *args):
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "emu"] + list(args), env=env, check=False,
                       capture_output=True, text=True, timeout=60)
    return time.monotonic() - t0, r


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    base = tempfile.mkdtemp(prefix="emu-bf", dir="/tmp")
    os.chmod(base, 0o700)
    env = dict(os.environ, EMU_RUN_BASE=base,
               PYTHONPATH=str(ROOT) + (os.pathsep + os.environ["PYTHONPATH"]
                                       if os.environ.get("PYTHONPATH") else ""))
    t0 = time.monotonic()
    lab = emu.launch(TOPO, base=base)
    launch = time.monotonic() - t0
    detect, restart, dead, live = [], [], [], []
    try:
        h1, h2 = lab.node("h1"), lab.node("h2")
        for _ in range(a.rounds):
            t0 = time.monotonic()
            os.kill(h2.pid, signal.SIGKILL)
            assert wait_for(lambda: h2.state == "crashed", 10), "death not noticed"
            detect.append(time.monotonic() - t0)
            dt, r = cli(env, "exec", "h2", "--", "ip", "addr")
            assert r.returncode == 1 and "not running" in r.stderr, r.stderr
            dead.append(dt)
            dt, r = cli(env, "exec", "h1", "--", "ip", "addr")
            assert r.returncode == 0, r.stderr
            live.append(dt)
            t0 = time.monotonic()
            h2.start()
            assert wait_for(lambda: h1.ping("h2", count=1, timeout=0.5).received == 1, 30)
            restart.append(time.monotonic() - t0)
        events = [{"at": 0.5 + 0.25 * i, "action": "link_down" if i % 2 == 0 else "link_up",
                   "target": "h1:eth0", "for": None, "restart_after": None, "one_way": False}
                  for i in range(2 * a.rounds)]
        sched = lab._sup.run_schedule(events)
        assert sched.wait(60)
        late = [actual - planned for planned, actual, _ in sched.record]
    finally:
        lab.close()
        shutil.rmtree(base, ignore_errors=True)
    med = statistics.median
    rows = [
        ("detection", med(detect), 1.0, "s after SIGKILL (limit 1 s)"),
        ("restart", med(restart) / launch, 1.0,
         "x lab launch (%.2f s to ping vs %.2f s for the whole lab)" % (med(restart), launch)),
        ("schedule", max(late), 0.1, "s worst lateness of %d events (limit 0.1 s)" % len(late)),
        ("dead answer", med(dead), 2.0,
         "s (%.2fx a live `emu exec h1 -- ip addr`; limit 2 s)" % (med(dead) / med(live))),
    ]
    failed = False
    for name, value, limit, what in rows:
        ok = value <= limit
        failed |= not ok
        print("%-12s %7.3f %s  %s" % (name, value, what, "ok" if ok else "OVER LIMIT"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
