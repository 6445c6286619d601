"""`python -m emu.labd TOPOLOGY READY_FD [--faults F] [--name N] [--base DIR]`:
the orchestrator of a detached lab (`emu up -d`).

Its first act is to fork the lab's fork server (spawner.prefork), while it
has no thread and no ZeroMQ context and has imported almost nothing: the
server then imports the kernel on one core while this process imports the
orchestrator and reads the topology on the other, instead of one after the
other. The run base is on the command line, so `pgrep -f RUN_BASE` finds
the orchestrator, its fork server and every node (a fork keeps it).
"""
import os
import subprocess
import sys

UP_VALUED = ("--name", "--faults", "--clock", "--seed")       # `emu up`'s options that take a value


def run_base():
    """Where labs keep their run directories (short: ipc paths have a 107-byte limit)."""
    return os.environ.get("EMU_RUN_BASE") or "/tmp/emu-%d" % os.getuid()


def early_start(argv):
    """`emu up -d FILE`: start the orchestrator at once, held (--hold) until
    the command line, which then imports its modules and checks the
    topology, the name and the fault schedule, says go; the two start-ups
    overlap. Returns {"proc", "go", "ready", "file", "name", "faults"} or
    None (not `emu up -d`, or a command line this simple reading does not
    follow: the command line then starts the orchestrator itself).

    If the command line ends without saying go (an error, Ctrl-C), the
    held orchestrator reads end-of-file and exits, its fork server with it.
    """
    if len(argv) < 3 or argv[0] != "up" or os.environ.get("EMU_EARLY", "1") == "0":
        return None
    opts: dict = {}
    files = []
    detach = False
    words = iter(argv[1:])
    for w in words:
        if w in ("-d", "--detach"):
            detach = True
        elif w in UP_VALUED:
            opts[w] = next(words, None)
        elif w.startswith(tuple(o + "=" for o in UP_VALUED)):
            k, v = w.split("=", 1)
            opts[k] = v
        elif w.startswith("-"):
            return None                      # -h, --help, a mistake: argparse answers
        else:
            files.append(w)
    if not detach or len(files) != 1 or None in opts.values():
        return None
    path = os.path.abspath(files[0])
    faults = os.path.abspath(opts["--faults"]) if opts.get("--faults") else None
    name = opts.get("--name")
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    cmd = [sys.executable, "-m", "emu.labd", path, str(ready_w), "--base", run_base(),
           "--hold", str(go_r)]
    cmd += ["--faults", faults] if faults else []
    cmd += ["--name", name] if name else []
    for o in ("--clock", "--seed"):
        cmd += [o, opts[o]] if opts.get(o) else []
    env = dict(os.environ)
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.Popen(cmd, pass_fds=(ready_w, go_r), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, env=env)
    except OSError:
        for fd in (go_r, go_w, ready_r, ready_w):
            os.close(fd)
        return None
    os.close(go_r)
    os.close(ready_w)
    return {"proc": proc, "go": go_w, "ready": ready_r, "file": path, "name": name,
            "faults": faults}


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(prog="emu-labd")
    p.add_argument("topology")
    p.add_argument("ready_fd", type=int)
    p.add_argument("--faults")
    p.add_argument("--name")
    p.add_argument("--cluster", help="a Ray cluster's address (emu/cluster.py)")
    p.add_argument("--clock")
    p.add_argument("--seed", type=int)
    p.add_argument("--base")
    p.add_argument("--hold", type=int, help="wait for a byte on this descriptor before starting")
    a = p.parse_args(argv)
    zygote = None
    # Over a cluster, each machine has its own fork server (emu/cluster.py).
    # A virtual-time lab starts its own (a fixed hash seed: see Lab._spawn).
    if os.environ.get("EMU_FORKSERVER", "1") != "0" and not a.cluster and a.clock != "virtual":
        from .spawner import prefork
        zygote = prefork()
    from .orchestrator import serve
    return serve(a.topology, a.ready_fd, a.faults, a.name, base=a.base, zygote=zygote,
                 hold=a.hold, cluster=a.cluster, clock=a.clock, seed=a.seed)


if __name__ == "__main__":
    sys.exit(main())
