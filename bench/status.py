"""`emu status` with many nodes: how long the table, the summary and the JSON take.

    python bench/status.py [--nodes 1000] [--rounds 3]

A lab.json in a private run base names --nodes live processes (`sleep`) as
its nodes; their control endpoint is one stand-in process that answers every
`info` (the oops count) the way a node does. Printed, each the median of
--rounds runs of the `emu status` command:

  table      `emu status` (every node's CPU, RSS, threads, oops)
  summary    `emu status --summary` (no per-node calls)
  json       `emu status --format json`

each against the 2 s limit, and the table as a ratio to the way status
worked before (a 0.05 s cpu_percent interval and one info call per node, one
node after another), measured here on 20 nodes and scaled to --nodes.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

LIMIT = 2.0

RESPONDER = r"""
import sys, msgpack, zmq
s = zmq.Context().socket(zmq.ROUTER)
s.bind(sys.argv[1])
print("ready", flush=True)
reply = msgpack.packb({"ok": True, "result": {"oops": 0}}, use_bin_type=True)
while True:
    ident, _ = s.recv_multipart()
    s.send_multipart([ident, reply])
"""


def old_way(nodes, sample=20):
    """Seconds per node of the previous `emu status`: interval per node, info per node."""
    from emu.client.rpc import ControlClient
    t0 = time.monotonic()
    names = list(nodes)[:sample]
    for name in names:
        p = psutil.Process(nodes[name]["pid"])
        with p.oneshot():
            p.status()
            p.cpu_percent(interval=0.05)
            p.memory_info()
            p.num_threads()
        c = ControlClient(nodes[name]["ctl"], timeout=1.0)
        c.call("info")
        c.close()
    return (time.monotonic() - t0) / len(names)


def timed(argv, env, rounds):
    times = []
    for _ in range(rounds):
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "emu", "status"] + argv, env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
        times.append(time.monotonic() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    procs = []
    with tempfile.TemporaryDirectory(prefix="emu-bs-", dir="/tmp") as base:
        os.chmod(base, 0o700)
        run = os.path.join(base, "big-x")
        os.mkdir(run)
        ctl = "ipc://%s/ctl" % run
        responder = subprocess.Popen([sys.executable, "-c", RESPONDER, ctl], stdout=subprocess.PIPE,
                                     text=True)
        procs.append(responder)
        try:
            assert responder.stdout is not None
            responder.stdout.readline()
            nodes = {}
            for i in range(a.nodes):
                p = subprocess.Popen(["sleep", "600"])
                procs.append(p)
                nodes["h%d" % (i + 1)] = {"kind": "host", "pid": p.pid, "ctl": ctl,
                                          "create_time": psutil.Process(p.pid).create_time(),
                                          "log": "/dev/null"}
            me = psutil.Process()
            with open(os.path.join(run, "lab.json"), "w") as f:
                json.dump({"name": "big", "run_dir": run, "status": "running",
                           "orchestrator_pid": me.pid, "orchestrator_create_time": me.create_time(),
                           "orchestrator_cmdline": me.cmdline(), "nodes": nodes, "hosts": {},
                           "links": [], "fault_log": []}, f)
            env = dict(os.environ, EMU_RUN_BASE=base,
                       PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            per_node = old_way(nodes)
            old = per_node * a.nodes
            failed = False
            print("emu status with %d nodes (median of %d runs; limit %.1f s)"
                  % (a.nodes, a.rounds, LIMIT))
            for label, argv in (("table", []), ("summary", ["--summary"]),
                                ("json", ["--format", "json"])):
                t = timed(argv, env, a.rounds)
                failed |= t > LIMIT
                extra = ("; the old way: %.1f s (%.0f ms a node), ratio %.3f"
                         % (old, per_node * 1000, t / old)) if label == "table" else ""
                print("  %-8s %6.2f s   ratio to limit %.2f%s" % (label, t, t / LIMIT, extra))
        finally:
            for p in procs:
                p.kill()
                p.wait()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
