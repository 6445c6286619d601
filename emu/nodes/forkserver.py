"""The fork server (zygote): node processes forked from one preloaded interpreter.

`python -m emu.nodes.forkserver --run-dir D --lifeline FD --ready FD --sock FD`
(or a fork of a detached orchestrator that has not yet imported the kernel,
emu/spawner.py prefork) imports the kernel and the node runtime once, runs
two throwaway nodes and ends them (warm_up), calls gc.freeze() (so forked
children do not copy the pages the collector would touch), and then, per
batch of requests, boots each node's kernel and forks the nodes back to back.
It has no threads and no ZeroMQ context when it forks; each child makes its
own. What a node still costs is mostly the pages of ours it writes to
(reference counts, allocator state): about 3.9 MB USS once configured in a
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
    _runtime.MALLOC["tuned"] = _runtime.tune_malloc()    # inherited by every child
    try:
        warm_up()
    except Exception:
        import traceback
        traceback.print_exc()           # a cold start costs memory, not correctness


WARM_ROUNDS = 1         # rounds of the warm-up lab (4 or 10 measured no smaller nodes)


def warm_up(rounds=WARM_ROUNDS):
    """Run a throwaway lab here, then end it, threads, ZeroMQ context and
    all: two hosts and a bridge, wired, configured as the orchestrator
    configures a lab (through their control endpoints: attach, connect,
    link up, bridge, addresses, routes), their user threads serving.

    What a node does once per process is then done, on pages its children
    share: libzmq's first context (about 0.4 MB: its lazy initialisation and
    the arenas its threads allocate from), the first threads' stacks and
    malloc arenas, the first execution of the boot and configuration paths
    (CPython specialises code in place as it runs it; rtnl_validate works
    out an op's required fields, with inspect, on its first call). A child
    still writes the reference counts of what it touches. Covering every
    op the orchestrator sends (the earlier warm-up had no user thread,
    wire_connect, bridge or route): 3.98 MB USS per host of a 100-host star
    instead of 4.25 in the same session.
    """
    import threading
    for _ in range(rounds):
        _warm_lab()
    if threading.active_count() != 1 or len(os.listdir("/proc/self/task")) != 1:
        raise RuntimeError("warm-up left threads behind: cannot fork safely")


def _warm_lab():
    import shutil
    import tempfile
    import threading

    import msgpack
    import zmq

    from .runtime import NodeRuntime
    d = tempfile.mkdtemp(prefix="emu-warm-")
    kinds = {"warm1": "host", "warm2": "bridge", "warm3": "host"}
    rts = {n: NodeRuntime(n, k, 2, d, i + 1, 0) for i, (n, k) in enumerate(kinds.items())}
    ctx = zmq.Context()
    try:
        for rt in rts.values():
            rt.threads = [threading.Thread(target=rt.cpu_loop, args=(c,), daemon=True)
                          for c in range(len(rt.net.cpus))]
            rt.threads.append(threading.Thread(target=rt.nic_loop, daemon=True))
            rt.threads.append(threading.Thread(target=rt.user_loop, daemon=True))
            for t in rt.threads:
                t.start()
        for rt in rts.values():
            while rt.user_tid is None or not os.path.exists(rt.sys_path):
                time.sleep(0.001)

        def run(batches):
            socks = {}
            for n, reqs in batches.items():
                s = socks[n] = ctx.socket(zmq.DEALER)
                s.setsockopt(zmq.LINGER, 0)
                s.connect(rts[n].ctl_endpoint)
                for op, args in reqs:
                    s.send(msgpack.packb({"op": op, "args": args}, use_bin_type=True))
            for n, reqs in batches.items():
                for op, _ in reqs:
                    if not socks[n].poll(2000):
                        raise RuntimeError("warm-up: %s did not answer %s" % (n, op))
                    reply = msgpack.unpackb(socks[n].recv(), raw=False)
                    if not reply.get("ok"):
                        raise RuntimeError("warm-up: %s %s: %s" % (n, op, reply.get("error")))
                socks[n].close()

        ends = (("warm1", "eth0", "warm2", "p1"), ("warm3", "eth0", "warm2", "p2"))
        w = {}
        for k, (a, ai, b, bi) in enumerate(ends):
            w[(a, ai)] = "ipc://%s/w%da" % (d, k)
            w[(b, bi)] = "ipc://%s/w%db" % (d, k)
        peer = {(a, ai): (b, bi) for a, ai, b, bi in ends}
        peer.update({v: k for k, v in peer.items()})
        attach: dict = {}
        connect: dict = {}
        for (n, i), ep in w.items():
            attach.setdefault(n, []).append(("wire_attach", {
                "ifname": i, "rx": ep, "tx": None, "mac": None, "mtu": None,
                "peer": "%s:%s" % peer[(n, i)], "kind": "veth", "queues": 1}))
            connect.setdefault(n, []).append(("wire_connect", {"ifname": i, "tx": w[peer[(n, i)]]}))
        run(attach)
        for n in ("warm1", "warm3"):
            connect[n].append(("link_set", {"name": "eth0", "up": True}))
        run(connect)
        run({"warm2": [("link_add", {"name": "br0", "kind": "bridge"}),
                       ("link_set", {"name": "p1", "master": "br0", "up": True}),
                       ("link_set", {"name": "p2", "master": "br0", "up": True}),
                       ("link_set", {"name": "br0", "up": True})]})
        run({n: [("addr_add", {"dev": "eth0", "address": "10.0.0.%d/24" % k}),
                 ("route_add", {"dst": "default", "via": "10.0.0.254", "dev": None,
                                "metric": 0})]
             for n, k in (("warm1", 1), ("warm3", 3))})
        time.sleep(0.005)                 # what the configuration sent crosses the wires
    finally:
        ctx.destroy(linger=0)
        for rt in rts.values():
            rt.running = False
            for ev in rt.cpu_events:
                ev.set()
            try:
                rt.nic_notify_tx.send(b"x")
            except Exception:
                pass
            os.eventfd_write(rt.wake_fd, 1)
        for rt in rts.values():
            rt.close()
            os.close(rt.wake_fd)
            if rt.epoch_map is not None:
                rt.epoch_map.close()
        shutil.rmtree(d, ignore_errors=True)


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
        # The node's sockets go to the lab's socket directory (emu/rundir.py).
        rc = _node.run_node(req["name"], req["kind"], int(req["cpus"]),
                            req.get("sock_dir") or req["run_dir"],
                            int(req["node_id"]), int(req["seed"]), lifeline=lifeline,
                            ready=ready, net=net, ctl=req.get("ctl"), curve=req.get("curve"),
                            vclock=req.get("vclock"), boot=req.get("boot"))
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
