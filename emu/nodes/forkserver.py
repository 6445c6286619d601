"""The fork server (zygote): node processes forked from one preloaded interpreter.

`python -m emu.nodes.forkserver --run-dir D --lifeline FD --ready FD --sock FD`
(or a fork of a detached orchestrator that has not yet imported the kernel,
emu/spawner.py prefork) imports the kernel and the node runtime once, runs
two throwaway nodes and ends them (warm_up), calls gc.freeze() (so forked
children do not copy the pages the collector would touch), and then, per
batch of requests, boots each node's kernel and forks the nodes back to back.
It has no threads and no ZeroMQ context when it forks; each child makes its
own. What a node still costs is mostly the pages of ours it writes to
(reference counts): about 2.8 MB USS at ready, 4.3 MB once configured in a
100-host star (README, Benchmarks), against 14 MB as a fresh interpreter.

Requests and replies are JSON lines on a Unix stream socket shared with the
orchestrator:

  -> {"op": "hello", "run_dir": .., "log": ..}  (a forked server: before any spawn)
  -> {"op": "spawn", "name": .., "kind": .., "cpus": .., "node_id": .., "seed": .., "log": ..}
  <- {"op": "spawned", "name": .., "pid": ..}     or {"op": "error", "name": .., "error": ..}
  <- {"op": "exit", "pid": .., "status": ..}      (a node ended; Popen-style returncode)

Nothing outlives the lab:
  * the lifeline is the read end of a pipe whose only write end the
    orchestrator holds: when the orchestrator dies (even by SIGKILL) it
    reads as end-of-file, here and in every node (the node's user thread
    polls it and exits);
  * every node has PR_SET_PDEATHSIG (SIGKILL) towards this process, which
    is single-threaded, and this process exits when the lifeline or the
    request socket closes: the kernel then kills every node at once.
"""
import gc
import json
import os
import select
import signal
import socket
import sys
import time

from ..kernel.init import start_kernel
from . import node as _node                 # noqa: F401  (preloaded for the children)
from . import runtime as _runtime           # noqa: F401  (the kernel comes with it)


def preload():
    """Import every kernel and wire module (many are imported lazily, inside
    functions) and boot one throwaway kernel, so a child finds it all done."""
    import importlib
    import pkgutil

    from .. import kernel, wire
    for pkg in (kernel, wire):
        for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            try:
                importlib.import_module(m.name)
            except Exception:
                pass             # a module that cannot load here is loaded (or not) by its user
    start_kernel("forkserver", 2, clock=time.monotonic, seed=0)
    _node.prctl()                        # looked up once, for every child
    _node.preload_logging("forkserver")
    try:
        warm_up()
    except Exception:
        import traceback
        traceback.print_exc()           # a cold start costs memory, not correctness


def warm_up():
    """Run two throwaway nodes here, wired together, configured and exchanging
    their gratuitous ARPs, then end them, threads, ZeroMQ context and all.

    What a node does once per process is then done, on pages its children
    share: libzmq's first context (about 0.4 MB: its lazy initialisation and
    the arenas its threads allocate from), the first threads' stacks and
    malloc arenas, the first execution of the boot and configuration paths
    (CPython quickens a code object in place once it has run a few times).
    A child still writes the reference counts of what it touches.
    """
    import tempfile
    import threading

    from .runtime import NodeRuntime
    d = tempfile.mkdtemp(prefix="emu-warm-")
    rts = [NodeRuntime("warm%d" % i, "host", 2, d, i, 0) for i in (1, 2)]
    try:
        for rt in rts:
            rt.threads = [threading.Thread(target=rt.cpu_loop, args=(c,), daemon=True)
                          for c in range(len(rt.net.cpus))]
            rt.threads.append(threading.Thread(target=rt.nic_loop, daemon=True))
            for t in rt.threads:
                t.start()
        for i, rt in enumerate(rts):
            rt.control("wire_attach", {"ifname": "eth0", "rx": "ipc://%s/w%d" % (d, i),
                                       "tx": "ipc://%s/w%d" % (d, 1 - i), "peer": "warm:eth0",
                                       "kind": "veth", "queues": 1})
        for rt in rts:
            rt.control("link_set", {"name": "eth0", "up": True})
        for i, rt in enumerate(rts):
            rt.control("addr_add", {"dev": "eth0", "address": "10.0.0.%d/24" % (i + 1)})
        time.sleep(0.02)                  # the ARPs cross the wire
    finally:
        for rt in rts:
            rt.running = False
            for ev in rt.cpu_events:
                ev.set()
            try:
                rt.nic_notify_tx.send(b"x")
            except Exception:
                pass
        for rt in rts:
            rt.close()
            os.close(rt.wake_fd)
        import shutil
        shutil.rmtree(d, ignore_errors=True)
    if threading.active_count() != 1 or len(os.listdir("/proc/self/task")) != 1:
        raise RuntimeError("warm-up left threads behind: cannot fork safely")


def boot_kernel(req):
    """The node's kernel, booted here before the fork (start_kernel is pure:
    one Net and nothing global). In the child it is new objects on pages
    shared with this server, where booting it after the fork would write to
    every page holding an object the boot touches (CPython's reference
    counts), about 1.3 MB per node."""
    # A virtual-time node boots at the lab's time 0 (its runtime sets the clock after).
    clock = (lambda: 0.0) if req.get("vclock") else time.monotonic
    return start_kernel(req["name"], int(req["cpus"]), clock=clock, seed=int(req["seed"]))


def _child(req, net, sock, wake_r, wake_w, lifeline, ready, zygote_pid):
    """In the forked node: cut what belongs to the server, then be the node."""
    try:
        # The batch's other kernels (and whatever the server had not yet
        # collected) are frozen with the rest: the collector never walks
        # them here, so their pages stay shared.
        gc.freeze()
        _node.set_pdeathsig()
        if os.getppid() != zygote_pid:
            os._exit(3)                     # the server died before we got here
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock.close()
        os.close(wake_r)
        os.close(wake_w)
        fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        rc = _node.run_node(req["name"], req["kind"], int(req["cpus"]), req["run_dir"],
                            int(req["node_id"]), int(req["seed"]), lifeline=lifeline,
                            ready=ready, net=net, ctl=req.get("ctl"), curve=req.get("curve"),
                            vclock=req.get("vclock"))
    except BaseException:
        import traceback
        traceback.print_exc()
        rc = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(rc or 0)


def _log_to(path):
    """stdout and stderr (ours, and so our nodes' until they open their own) to a file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _status(st):
    """A waitpid status as a Popen returncode (negative: the signal)."""
    if os.WIFSIGNALED(st):
        return -os.WTERMSIG(st)
    return os.waitstatus_to_exitcode(st)


def serve(run_dir, sock_fd, lifeline, ready):
    sock = socket.socket(fileno=sock_fd)
    sock.setblocking(True)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    # Ctrl-C on a terminal reaches the whole process group: the orchestrator
    # tears the lab down in order; the server and its nodes (which inherit
    # this) wait to be told.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    me = os.getpid()
    buf = b""
    out: list[bytes] = []
    preload()
    gc.collect()
    gc.freeze()
    while True:
        rl, _, _ = select.select([sock, lifeline, wake_r], [], [])
        if lifeline in rl:
            os._exit(0)                      # the orchestrator is gone: so are we (and our nodes)
        if wake_r in rl:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
        while True:                           # reap every node that ended
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            out.append(b'{"op":"exit","pid":%d,"status":%d}\n' % (pid, _status(st)))
        if sock in rl:
            data = sock.recv(65536)
            if not data:
                os._exit(0)
            buf += data
            *lines, buf = buf.split(b"\n")
            batch: list = []                  # (request, its booted kernel)
            for line in lines:
                req = None
                try:
                    req = json.loads(line)
                    if not isinstance(req, dict) or not isinstance(req.get("name"), str):
                        raise ValueError("a spawn request is a map with a name")
                    if req.get("op") == "hello":        # forked early: now the lab has a run dir
                        run_dir = str(req["run_dir"])
                        _log_to(req["log"])
                        continue
                    req["run_dir"] = run_dir
                    batch.append((req, boot_kernel(req)))
                except Exception as e:                # a bad request
                    name = req.get("name") if isinstance(req, dict) else None
                    out.append((json.dumps({"op": "error", "name": name, "error": str(e)})
                                + "\n").encode())
            # Back to back: a page this process writes between two forks stays
            # behind as the earlier child's own copy (its USS), so nothing but
            # the fork happens between them.
            pids: list = [0] * len(batch)
            for i, (req, net) in enumerate(batch):
                try:
                    pid = os.fork()
                except OSError as e:                  # no memory or processes left
                    pids[i] = e
                    continue
                if pid == 0:
                    _child(req, net, sock, wake_r, wake_w, lifeline, ready, me)
                pids[i] = pid
            for (req, _), pid in zip(batch, pids, strict=True):
                if isinstance(pid, OSError):
                    out.append((json.dumps({"op": "error", "name": req["name"],
                                            "error": str(pid)}) + "\n").encode())
                else:
                    out.append(b'{"op":"spawned","name":%s,"pid":%d}\n'
                               % (json.dumps(req["name"]).encode(), pid))
            batch.clear()                         # the kernels went with their nodes
            req = net = None
        if out:
            try:
                sock.sendall(b"".join(out))
            except OSError:
                os._exit(0)
            out.clear()


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(prog="emu-forkserver")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--sock", type=int, required=True)
    p.add_argument("--lifeline", type=int, required=True)
    p.add_argument("--ready", type=int, required=True)
    p.add_argument("--parent-pid", type=int, required=True)
    p.add_argument("--pdeathsig", action="store_true")
    a = p.parse_args(argv)
    if a.pdeathsig:
        _node.set_pdeathsig()
    if os.getppid() != a.parent_pid:
        return 3                             # the orchestrator died before we got here
    return serve(a.run_dir, a.sock, a.lifeline, a.ready)


if __name__ == "__main__":
    sys.exit(main())
