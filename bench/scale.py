"""Scale: start and stop of N-node labs, memory and idle CPU per node.

For N = 10, 100, 200 hosts (and 1000 with --big) it starts a generated lab
(one bridge; past 250 hosts, leaf bridges of 25 hosts in their own subnets
behind a core router), and measures the time to all nodes ready and
configured, the USS of one host, the lab's total (PSS summed over its
nodes, its fork server and its orchestrator: each shared page counted
once), the CPU the idle lab burns once the boot's ARPs have settled, a
sampled all-pairs ping (10 pairs), the time `stop` takes (and whether any
node needed a signal), then the time `emu up -d` of the same lab takes from
the command line (what a user waits for) and the time until no node is left
after its orchestrator is killed (SIGKILL). The limit is measured in the same run:
spawning as many bare `python -c pass` processes (the issue's target: start
at most 0.4 of that at 100 nodes); the issue's absolute targets are printed
beside the figures.

    python bench/scale.py [--big] [--sizes 10,100]
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import psutil  # noqa: E402

LEAF = 25


def star_topology(hosts, name="scale", routed=None):
    """YAML text of a lab of `hosts` hosts.

    Up to 250 hosts: one bridge (a star). Past that: leaf bridges of 25 hosts,
    each its own subnet 10.K.0.0/24, joined by a core router r0 (the issue's
    "bridges of 25 hosts behind routers"): one broadcast domain of 1000 hosts
    would spend the start on a million gratuitous ARP deliveries.
    """
    out = ["name: %s-%d" % (name, hosts), "nodes:"]
    links = []
    if not (hosts > 250 if routed is None else routed):
        for i in range(1, hosts + 1):
            out.append("  h%d: {kind: host, interfaces: {eth0: {address: 10.0.0.%d/24}}}" % (i, i))
        out.append("  br0: {kind: bridge}")
        links = ["  - [h%d:eth0, br0:p%d]" % (i, i) for i in range(1, hosts + 1)]
        return "\n".join(out + ["links:"] + links) + "\n"
    nleaf = (hosts + LEAF - 1) // LEAF
    for i in range(hosts):
        k, j = i // LEAF + 1, i % LEAF + 1
        out.append("  h%d: {kind: host, interfaces: {eth0: {address: 10.%d.0.%d/24}}, "
                   "routes: [{dst: default, via: 10.%d.0.254}]}" % (i + 1, k, j, k))
        links.append("  - [h%d:eth0, br%d:p%d]" % (i + 1, k, j))
    for k in range(1, nleaf + 1):
        out.append("  br%d: {kind: bridge}" % k)
        links.append("  - [r0:eth%d, br%d:up]" % (k, k))
    out.append("  r0:\n    kind: router\n    interfaces:")
    out += ["      eth%d: {address: 10.%d.0.254/24}" % (k, k) for k in range(1, nleaf + 1)]
    return "\n".join(out + ["links:"] + links) + "\n"


def write_star(hosts, d, routed=None):
    path = os.path.join(d, "star%d.yaml" % hosts)
    with open(path, "w") as f:
        f.write(star_topology(hosts, routed=routed))
    return path


def uss(pid):
    try:
        return psutil.Process(pid).memory_full_info().uss
    except psutil.Error:
        return 0


def pss(pid):
    """Proportional set size: shared pages split among their users (sums to the total)."""
    try:
        return psutil.Process(pid).memory_full_info().pss
    except psutil.Error:
        return 0


def bare_spawn(n):
    """Seconds to start and reap n `python -c pass` processes, in parallel."""
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", "pass"]) for _ in range(n)]
    for p in procs:
        p.wait()
    return time.perf_counter() - t


def cpu_times(pids):
    total = 0.0
    for pid in pids:
        try:
            c = psutil.Process(pid).cpu_times()
            total += c.user + c.system
        except psutil.Error:
            pass
    return total


def run_size(n, d, idle=2.0):
    from emu.client.lab import launch
    path = write_star(n, d)
    t = time.perf_counter()
    handle = launch(path, timeout=120)
    start = time.perf_counter() - t
    lab = handle._lab
    pids = [i["pid"] for i in lab.nodes.values()]
    nodes = len(pids)
    sample = [i["pid"] for name, i in lab.nodes.items() if name.startswith("h")][:20]
    per_node = sorted(uss(p) for p in sample)[len(sample) // 2]
    # Everything the lab holds, each shared page counted once: PSS (a page
    # shared by k processes counts 1/k in each) summed over the nodes, the
    # fork server and the orchestrator (here, this process).
    total = sum(pss(p) for p in pids) + pss(os.getpid())
    if lab.zygote is not None:
        total += pss(lab.zygote.pid)
    # The boot's gratuitous ARPs take a while to settle in a large broadcast
    # domain: wait (up to 20 s) for a quiet second, then measure.
    settle = time.monotonic() + 20
    c0 = cpu_times(pids)
    while time.monotonic() < settle:
        time.sleep(1.0)
        c1 = cpu_times(pids)
        if c1 - c0 < 0.02:
            break
        c0 = c1
    c0 = cpu_times(pids)
    time.sleep(idle)
    idle_cpu = (cpu_times(pids) - c0) / idle * 100
    ping_ok = _ping(handle, n)
    t = time.perf_counter()
    handle.close()
    stop = time.perf_counter() - t
    st = lab.stop_stats
    fallback = st.get("terminated", 0) + st.get("killed", 0)
    left = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    return {"n": nodes, "start": start, "stop": stop, "uss": per_node, "total": total,
            "idle_cpu": idle_cpu, "left": len(left), "ping": ping_ok, "fallback": fallback}


def _ping(handle, n, samples=10):
    """A sampled all-pairs ping: h1 to the last host, and random pairs (fixed seed)."""
    import random
    rng = random.Random(n)
    pairs = [(1, n)] + [tuple(rng.sample(range(1, n + 1), 2)) for _ in range(samples - 1)]
    ok = 0
    for a, b in pairs:
        try:
            r = handle.node("h%d" % a).ping("h%d" % b, count=1, timeout=5)
            ok += r.received == 1
        except Exception:               # counted as lost: the figures still count
            pass
    return "%d/%d" % (ok, len(pairs))


def cli_up_and_orphan(n, d):
    """`emu up -d` of the same lab from the command line, as a user runs it
    (seconds until it returns), then SIGKILL of its orchestrator: seconds
    until no node is left. (None, None) if it did not start."""
    path = write_star(n, d)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(HERE) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    base = tempfile.mkdtemp(prefix="emu-scale-cli-")
    os.chmod(base, 0o700)
    env["EMU_RUN_BASE"] = base
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "emu", "up", "-d", path], check=False, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    up = time.perf_counter() - t
    import glob
    import json
    states = glob.glob(os.path.join(base, "*", "lab.json"))
    if r.returncode != 0 or not states:
        subprocess.run([sys.executable, "-m", "emu", "down", "--all"], check=False, env=env,
                       capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)
        return None, None
    with open(states[0]) as f:
        st = json.load(f)
    orch = psutil.Process(st["orchestrator_pid"])
    kids = orch.children(recursive=True)
    t = time.perf_counter()
    orch.send_signal(signal.SIGKILL)
    while time.perf_counter() - t < 30:
        alive = [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            break
        time.sleep(0.01)
    took = time.perf_counter() - t
    from emu.rundir import remove_run_dir
    for d in os.listdir(base):               # and the socket directory each links to
        remove_run_dir(os.path.join(base, d))
    shutil.rmtree(base, ignore_errors=True)
    return up, took


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--big", action="store_true", help="also N = 1000")
    p.add_argument("--sizes", default=None, help="comma-separated host counts")
    a = p.parse_args(argv)
    sizes = [int(x) for x in a.sizes.split(",")] if a.sizes else [10, 100, 200] + ([1000] if a.big else [])
    base = tempfile.mkdtemp(prefix="emu-scale-")
    os.chmod(base, 0o700)
    os.environ.setdefault("EMU_RUN_BASE", base)
    print("scale: generated stars, %d cores" % os.cpu_count())
    print("%6s %8s %8s %8s %8s %6s %9s %9s %8s %9s %8s %6s %6s" % (
        "nodes", "start s", "bare s", "ratio", "up -d s", "ratio", "stop s", "USS/node", "total",
        "idle CPU", "orphan s", "left", "ping"))
    print("  (start: the Lab in this process; up -d: `emu up -d` from the command line, until "
          "it returns; ratio: / bare spawn of as many `python -c pass`; stop: all nodes told "
          "at once, no signal needed unless marked; orphan: SIGKILL of the detached "
          "orchestrator to no node left)")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            bare = bare_spawn(n + (1 if n <= 250 else (n + LEAF - 1) // LEAF + 1))
            r = run_size(n, d)
            up, orphan = cli_up_and_orphan(n, d)
            r.update(bare=bare, orphan=orphan, up=up)
            rows.append(r)
            print("%6d %8.2f %8.2f %8.2f %8s %6s %9.2f %7.1fMB %6.0fMB %8.1f%% %8s %6d %6s" % (
                r["n"], r["start"], bare, r["start"] / bare,
                "%.2f" % up if up is not None else "-",
                "%.2f" % (up / bare) if up is not None else "-", r["stop"], r["uss"] / 2**20,
                r["total"] / 2**20, r["idle_cpu"], "%.2f" % orphan if orphan is not None else "-",
                r["left"], r["ping"]) + ("  (%d signalled at stop)" % r["fallback"]
                                         if r["fallback"] else ""), flush=True)
    print("targets: start 100 nodes <= 1.5 s and <= 0.4 x bare spawn; 1000 nodes <= 10 s; "
          "stop 1000 <= 5 s; idle node <= 4 MB USS, CPU ~0; 1000-node lab <= 4 GB; orphans gone <= 2 s")
    for r in rows:
        if r["n"] >= 100 and r["n"] < 150:
            print("at %d nodes: start %.2f s (limit 1.5 s), %.2f x bare spawn (limit 0.4); "
                  "emu up -d %s" % (r["n"], r["start"], r["start"] / r["bare"],
                                    "%.2f s, %.2f x bare spawn" % (r["up"], r["up"] / r["bare"])
                                    if r["up"] is not None else "failed"))
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
