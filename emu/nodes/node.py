"""The node process: one kernel, its control and syscall endpoints.

Nodes are normally forked from the fork server (emu/nodes/forkserver.py),
which calls run_node; `python -m emu.nodes.node --name h1 ...` starts one as
a fresh interpreter (debugging, or a lab without the server).

A node ends when told to, on SIGTERM, or when its orchestrator goes away: its
user thread polls a lifeline (a pipe whose write end only the orchestrator
holds, or a pidfd of the parent) and exits when it reads as closed; no thread
polls on a timer for it. PR_SET_PDEATHSIG adds the kernel's own guarantee
towards the process that forked us.
"""
import argparse
import ctypes
import logging
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
LOG_FORMAT = "%(asctime)s {name} %(levelname)s %(message)s"
# Done once in the fork server, for its children: "prctl" (libc's), "log"
# (the log handler they adopt, preload_logging).
_preloaded: dict = {}


def set_pdeathsig(sig=signal.SIGKILL):
    """Ask Linux to kill us when the thread that started us dies."""
    try:
        prctl()(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def prctl():
    """libc's prctl (looked up once: a fork server's children share it)."""
    if "prctl" not in _preloaded:
        _preloaded["prctl"] = ctypes.CDLL(None, use_errno=True).prctl
    return _preloaded["prctl"]


class _NodeName(logging.Filter):
    """Gives the preloaded handler its node's format at the node's first
    record (_preloaded["name"], set by the forked node): a node that never
    logs through logging never builds a Formatter (about 0.06 MB of its own
    memory, measured)."""

    def __init__(self, handler):
        super().__init__()
        self.handler = handler
        self.named = None

    def filter(self, record):
        name = _preloaded.get("name")
        if name is not None and name != self.named:
            self.named = name
            self.handler.setFormatter(logging.Formatter(LOG_FORMAT.format(name=name)))
        return True


def preload_logging(name):
    """The fork server configures logging (and logs once) for its children:
    a child then only names itself (its handler takes the name at its first
    record), instead of writing the pages a first configuration and a first
    record touch."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=LOG_FORMAT.format(name=name))
    handler = logging.getLogger().handlers[0]
    handler.addFilter(_NodeName(handler))
    _preloaded["log"] = handler
    logging.getLogger("emu.node").info("preloaded")


# The host's sleep, taken at import: a program of a virtual-time lab sleeps
# on the lab's time (client/vtime.py), and the watchdog must not.
_host_sleep = time.sleep


def watchdog(parent_pid, interval=0.25):
    """Exit at once if the parent is gone (we were re-parented).

    Nodes do not use it (their lifeline is an event); emu.client.run's
    programs on nodes still do.
    """
    while True:
        if os.getppid() != parent_pid:
            os._exit(3)
        _host_sleep(interval)


def announce_ready(fd, name, ctl=None):
    """Tell the orchestrator once that we serve (one short write: atomic on a pipe);
    a tcp control endpoint's port is known only now, and goes with the name."""
    try:
        os.write(fd, (name + ("" if ctl is None else " " + ctl) + "\n").encode())
    except BlockingIOError:
        pass                     # the pipe is full (restarts nobody waits for): not needed
    except OSError:
        os._exit(3)              # nobody is listening: the orchestrator is gone
    os.close(fd)


def boot_line(name, msg):
    """One INFO line in the node's log, as its log handler formats it (LOG_FORMAT),
    written straight to stderr: a record through the logging module touches
    enough of the fork server's objects to cost a forked node about 0.15 MB
    of its own memory (3.82 against 3.67 MB a host in the same run), for
    the one line every node writes."""
    t = time.time()
    line = "%s,%03d %s INFO %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)),
                                     int(t * 1000) % 1000, name, msg)
    try:
        sys.stderr.flush()
        os.write(2, line.encode())
    except OSError:
        pass


def run_node(name, kind, cpus, run_dir, node_id=0, seed=0, lifeline=None, ready=None, net=None,
             ctl=None, curve=None, vclock=None, boot=None):
    """Boot the kernel (unless given one: `net`) and serve until shutdown; returns the exit status.

    ctl: a tcp://A.B.C.D:* control endpoint to bind instead of the run
    directory's ipc:// path, with curve, the lab's (public, secret) keys.
    vclock: the lab timekeeper's endpoint (vclock.py): the node runs on the
    lab's virtual time (vruntime.py). boot: control requests ([op, args])
    served before the node says it is ready (its ipc wires' attach).
    """
    if "log" in _preloaded:          # forked: stderr is our log file now, same descriptor
        _preloaded["name"] = name
    else:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format=LOG_FORMAT.format(name=name))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    from .runtime import BootError, NodeRuntime
    rt: NodeRuntime
    if vclock is not None:
        from .vruntime import VirtualRuntime
        rt = VirtualRuntime(name, kind, cpus, run_dir, node_id, seed, net=net, vclock=vclock)
    else:
        rt = NodeRuntime(name, kind, cpus, run_dir, node_id, seed, net=net)
    rt.lifeline_fd = lifeline
    rt.boot_ops = boot or ()
    if ctl is not None:
        rt.ctl_endpoint = ctl
        rt.curve = tuple(curve)
    if ready is not None:
        rt.on_ready = lambda: announce_ready(ready, name, rt.ctl_endpoint if ctl else None)
    boot_line(name, "booted: kind=%s cpus=%d pid=%d" % (kind, cpus, os.getpid()))
    try:
        rt.run()
    except BootError as e:
        # One line, not a traceback: the orchestrator quotes the log's end.
        logging.getLogger("emu.node").error("%s", e)
        sys.stderr.flush()
        return 1
    logging.getLogger("emu.node").info("shutting down")
    # Skip interpreter teardown: daemon threads and the ZeroMQ context go with us.
    sys.stderr.flush()
    return 0


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
    p.add_argument("--ready-fd", type=int, default=None)
    a = p.parse_args(argv)
    if a.pdeathsig:
        set_pdeathsig()
    try:
        lifeline = os.pidfd_open(a.parent_pid)   # readable once the orchestrator has exited
    except OSError:
        return 3
    if os.getppid() != a.parent_pid:
        return 3                 # the orchestrator died before we got here
    os._exit(run_node(a.name, a.kind, a.cpus, a.run_dir, a.node_id, a.seed,
                      lifeline=lifeline, ready=a.ready_fd))


if __name__ == "__main__":
    sys.exit(main())
