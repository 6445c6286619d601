"""The orchestrator's side of the fork server (emu/nodes/forkserver.py).

ForkServer starts the server, asks it for nodes in batches, learns when they
are ready (each node writes its name once to a pipe) and when they end (the
server reaps them and reports the status). NodeProc gives a forked node the
part of the Popen interface the orchestrator and the supervisor use.
"""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil

SPAWN_CHUNK = 64         # requests per write: replies never fill the socket meanwhile


class ForkServerError(RuntimeError):
    pass


class NodeProc:
    """A node forked by the server: poll, wait, signals; the server reports its exit.

    Signals go through a pidfd, so a recycled PID is never hit.
    """

    def __init__(self, server, pid):
        self.server = server
        self.pid = pid
        self.returncode = None
        try:
            self.pidfd: int | None = os.pidfd_open(pid)
        except OSError:
            self.pidfd = None            # already gone (and reaped)

    def _gone(self):
        """The process has exited (a pidfd reads as ready then)."""
        if self.pidfd is None:
            return True
        r, _, _ = select.select([self.pidfd], [], [], 0)
        return bool(r)

    def poll(self, drain=True):
        if self.returncode is None:
            if drain:
                self.server.drain()
            st = self.server.status.get(self.pid)
            if st is not None:
                self._done(st)
            elif self.server.dead and self._gone():
                self._done(-signal.SIGKILL)     # the server died: PDEATHSIG took the node
        return self.returncode

    def _done(self, rc):
        self.returncode = rc
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired("node %d" % self.pid, timeout)
            self.server.wait_event(0.1 if left is None else min(left, 0.1))
        return self.returncode

    def send_signal(self, sig):
        if self.returncode is None and self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, sig)
            except ProcessLookupError:
                pass

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)


def prefork():
    """Fork the fork server now, from a process that has no thread and no
    ZeroMQ context yet (`emu up -d`'s orchestrator, first thing): the server
    imports the kernel on the other core while this process imports its own
    modules and reads the topology. Returns a ForkServer for Lab(zygote=...).
    PR_SET_PDEATHSIG follows the thread that forks: this is the main thread.
    """
    assert threading.active_count() == 1, "fork before any thread starts"
    return ForkServer(None, pdeath=True, fork=True)


def _zygote_child(parent, theirs, sock_fd, life_r, ready_w, pdeath):
    """In the forked server: keep only its own descriptors, then serve."""
    try:
        if pdeath:
            from .nodes.node import set_pdeathsig
            set_pdeathsig()
        if os.getppid() != parent:
            os._exit(3)                     # the orchestrator died before we got here
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        keep = sorted({0, 1, 2, sock_fd, life_r, ready_w})
        lo = 0
        for fd in keep:                     # the orchestrator's: its ready pipe, lab files...
            if lo < fd:                     # closerange(n, n) would close everything from n
                os.closerange(lo, fd)
            lo = fd + 1
        os.closerange(lo, 65536)
        from .nodes import forkserver
        rc = forkserver.serve(None, sock_fd, life_r, ready_w)
    except BaseException:
        import traceback
        traceback.print_exc()
        rc = 1
    os._exit(rc or 0)


class _Forked:
    """The part of Popen ForkServer uses, for a server this process forked."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            try:
                pid, st = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = 0
                return 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(st)
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("forkserver %d" % self.pid, timeout)
            time.sleep(0.005)
        return self.returncode

    def kill(self):
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)    # our unreaped child: its PID is still ours
            except ProcessLookupError:
                pass


class ForkServer:
    """One lab's fork server: started with the lab, gone with it."""

    def __init__(self, run_dir, env=None, pdeath=False, log=None, fork=False):
        """Start the server: a fresh interpreter (`python -m emu.nodes.forkserver`),
        or, with fork=True, a fork of this process, which must have no threads
        and no ZeroMQ context yet (see prefork); run_dir and log may then come
        later, with hello()."""
        self.lock = threading.RLock()
        self.status: dict[int, int] = {}      # pid -> returncode, as the server reported them
        self.ready: set[str] = set()          # nodes that announced themselves
        self.ready_order: list[str] = []      # the same, in the order they did
        self.ctl_eps: dict[str, str] = {}     # a node's tcp control endpoint, as it announced it
        self.dead = False
        self.drained = 0.0
        self.buf = b""
        self.spawned: list[dict] = []
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        life_r, lifeline = os.pipe()
        self.lifeline: int | None = lifeline      # only we hold the write end
        self.ready_r, ready_w = os.pipe()
        os.set_blocking(self.ready_r, False)
        os.set_blocking(ready_w, False)           # a node never blocks on its announcement
        self.sock = mine
        if fork:
            me = os.getpid()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _zygote_child(me, (mine.fileno(), lifeline, self.ready_r),
                              theirs.fileno(), life_r, ready_w, pdeath)
            self.proc: _Forked | subprocess.Popen = _Forked(pid)
            self.cmdline = psutil.Process().cmdline()    # a fork keeps ours
        else:
            cmd = [sys.executable, "-m", "emu.nodes.forkserver", "--run-dir", run_dir,
                   "--sock", str(theirs.fileno()), "--lifeline", str(life_r),
                   "--ready", str(ready_w), "--parent-pid", str(os.getpid())]
            if pdeath:
                cmd.append("--pdeathsig")
            logf = open(log or os.devnull, "ab")
            try:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                             stderr=subprocess.STDOUT, env=env, close_fds=True,
                                             pass_fds=(theirs.fileno(), life_r, ready_w))
            finally:
                logf.close()
            self.cmdline = cmd
        theirs.close()
        os.close(life_r)
        os.close(ready_w)
        try:
            self.create_time = psutil.Process(self.proc.pid).create_time()
        except psutil.Error:
            self.create_time = None

    def hello(self, run_dir, log):
        """A forked server learns its lab's run directory and its log file."""
        try:
            self.sock.sendall((json.dumps({"op": "hello", "name": "", "run_dir": run_dir,
                                           "log": log}) + "\n").encode())
        except OSError as e:
            self.dead = True
            raise ForkServerError("the fork server is gone (%s)" % e) from None

    @property
    def pid(self):
        return self.proc.pid

    def record(self):
        return {"pid": self.proc.pid, "create_time": self.create_time, "cmdline": self.cmdline}

    # ------------------------------------------------------------- messages
    def _lines(self, data):
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("op") == "exit":
                self.status[msg["pid"]] = msg["status"]
            else:
                self.spawned.append(msg)

    def _read_sock(self):
        try:
            data = self.sock.recv(65536, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.dead = True
            return
        self._lines(data)

    def _read_ready(self):
        if self.ready_r < 0:
            return
        try:
            data = os.read(self.ready_r, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        for line in data.decode(errors="replace").split("\n"):
            name, _, ctl = line.partition(" ")
            if name:
                self.ready.add(name)
                self.ready_order.append(name)
                if ctl:
                    self.ctl_eps[name] = ctl

    def drain(self, force=False):
        """Take in whatever the server and the nodes have said so far.

        Unforced, at most once a millisecond: a supervisor polling 1000 nodes
        in a row costs two system calls, not two thousand.
        """
        now = time.monotonic()
        if not force and now - self.drained < 0.001:
            return
        self.drained = now
        with self.lock:
            if not self.dead:
                while True:
                    r, _, _ = select.select([self.sock], [], [], 0)
                    if not r:
                        break
                    self._read_sock()
                    if self.dead:
                        break
            self._read_ready()

    def wait_event(self, timeout):
        """Sleep until the server or a node says something (or timeout)."""
        fds = ([] if self.ready_r < 0 else [self.ready_r]) + ([] if self.dead else [self.sock])
        if fds:
            select.select(fds, [], [], max(0.0, timeout))
        else:
            time.sleep(max(0.0, timeout))
        self.drain(force=True)

    # ------------------------------------------------------------- spawning
    def spawn(self, reqs, on_spawned=None):
        """Fork one node per request ({"name", "kind", "cpus", "node_id", "seed", "log"}).

        Returns {name: NodeProc}; a node the server could not fork raises.
        """
        out = {}
        with self.lock:
            for i in range(0, len(reqs), SPAWN_CHUNK):
                chunk = reqs[i:i + SPAWN_CHUNK]
                if self.dead:
                    raise ForkServerError("the fork server is gone")
                try:
                    self.sock.sendall(b"".join((json.dumps(r) + "\n").encode() for r in chunk))
                except OSError as e:
                    self.dead = True
                    raise ForkServerError("the fork server is gone (%s)" % e) from None
                want = len(chunk)
                deadline = time.monotonic() + 60.0
                while want:
                    if self.spawned:
                        msg = self.spawned.pop(0)
                        if msg.get("op") != "spawned":
                            raise ForkServerError("cannot fork node %s: %s"
                                                  % (msg.get("name"), msg.get("error")))
                        out[msg["name"]] = NodeProc(self, msg["pid"])
                        want -= 1
                        if on_spawned is not None:
                            on_spawned(len(out))
                        continue
                    select.select([self.sock], [], [], 1.0)
                    self._read_sock()
                    if self.dead:
                        raise ForkServerError("the fork server is gone")
                    if time.monotonic() > deadline:
                        raise ForkServerError("the fork server did not answer within 60 s")
        return out

    def wait_ready(self, names, timeout, procs, on_ready=None):
        """Until every named node has announced itself; a node that exits first raises.

        Returns the names still pending at the deadline (empty: all ready), or
        (name, returncode) of a node that ended while booting.
        """
        deadline = time.monotonic() + timeout
        pending = set(names) - self.ready
        last = -1
        while pending:
            self.wait_event(min(0.5, max(0.0, deadline - time.monotonic())))
            pending -= self.ready
            if on_ready is not None and len(pending) != last:
                last = len(pending)
                on_ready(len(names) - last)
            for name in list(pending):
                proc = procs[name]
                if isinstance(proc, NodeProc) and proc.poll(drain=False) is not None:
                    return (name, proc.returncode)
            if pending and time.monotonic() > deadline:
                return pending
        return set()

    def wait_all(self, procs, timeout):
        """Wait for every NodeProc to end; returns those still alive at the deadline."""
        deadline = time.monotonic() + timeout
        self.drain(force=True)
        left = [p for p in procs if p.poll(drain=False) is None]
        while left:
            now = time.monotonic()
            if now >= deadline:
                break
            self.wait_event(min(0.2, deadline - now))      # drains once
            left = [p for p in left if p.poll(drain=False) is None]
        return left

    def close(self, timeout=2.0):
        """Cut the lifeline (any node still up exits), end the server and reap it."""
        with self.lock:
            if self.lifeline is not None:
                os.close(self.lifeline)
                self.lifeline = None
            try:
                self.sock.close()
            except OSError:
                pass
            self.dead = True
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with self.lock:
            if self.ready_r >= 0:
                os.close(self.ready_r)
                self.ready_r = -1
