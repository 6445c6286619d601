"""The node process: `python -m emu.nodes.node --name h1 --kind host ...`.

It boots one kernel, serves its control and syscall endpoints, and ends when
told to, when its orchestrator goes away (PR_SET_PDEATHSIG, and a watchdog
that notices being re-parented), or on SIGTERM.
"""
import argparse
import ctypes
import logging
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def set_pdeathsig(sig=signal.SIGKILL):
    """Ask Linux to kill us when the thread that started us dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def watchdog(parent_pid, interval=0.25):
    """Exit at once if the orchestrator is gone (we were re-parented)."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(3)
        time.sleep(interval)


def main(argv=None):
    p = argparse.ArgumentParser(prog="emu-node")
    p.add_argument("--name", required=True)
    p.add_argument("--kind", default="host")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--parent-pid", type=int, required=True)
    p.add_argument("--node-id", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pdeathsig", action="store_true")
    a = p.parse_args(argv)
    if a.pdeathsig:
        set_pdeathsig()
    if os.getppid() != a.parent_pid:
        return 3                 # the orchestrator died before we got here
    threading.Thread(target=watchdog, args=(a.parent_pid,), daemon=True, name="watchdog").start()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s " + a.name + " %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    from .runtime import NodeRuntime
    rt = NodeRuntime(a.name, a.kind, a.cpus, a.run_dir, a.node_id, a.seed)
    logging.getLogger("emu.node").info("booted: kind=%s cpus=%d pid=%d", a.kind, a.cpus, os.getpid())
    rt.run()
    logging.getLogger("emu.node").info("shutting down")
    # Skip interpreter teardown: daemon threads and the ZeroMQ context go with us.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
