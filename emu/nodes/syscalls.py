"""The node's system call server: one Unix-socket connection per client
thread, one Task (descriptor table) per client process, and the parked calls
that wait on kernel wait queues.

Linux: net/socket.c (the calls), kernel/exit.c (do_exit closes a task's
files), kernel/sched/wait.c (a sleeping call on a wait queue).

A mixin of NodeRuntime: it uses the runtime's enter_user (the one way into
the kernel), its poller and its wake eventfd.
"""
import logging
import os
import time
from collections import deque
from typing import Any, Callable

import msgpack
import zmq

from ..kernel.core.dev import KernelError
from ..kernel.core.entry import KernelOops
from ..kernel.socket import SyscallBlock, Task, syscall_lookup, task_exit

log = logging.getLogger("emu.node")

EIO = 5


class Conn:
    """One client connection on the syscall socket, and its task."""

    __slots__ = ("sock", "task", "unpacker", "dead", "out", "want_out")

    def __init__(self, sock, task):
        self.sock = sock
        self.task = task
        self.unpacker = msgpack.Unpacker(raw=False, max_buffer_size=64 * 1024 * 1024)
        self.dead = False
        self.out = bytearray()       # replies the client has not read yet
        self.want_out = False        # registered for POLLOUT


class Park:
    """A blocked syscall waiting on wait queues and/or a deadline (ident: its Conn)."""

    __slots__ = ("ident", "req", "deadline", "client_deadline", "on_timeout",
                 "wqs", "entry", "ready", "done", "resume", "partial")

    def __init__(self, ident, req):
        self.ident = ident
        self.req = req
        self.deadline = None
        self.client_deadline = None
        self.on_timeout = 0
        self.wqs = []
        self.entry = None
        self.ready = False
        self.done = False
        self.resume = None
        self.partial = None


class SyscallServer:
    """The user thread's half of a node: clients, their tasks and their calls."""

    # Owned by the user thread; set up by NodeRuntime.__init__ and user_loop.
    net: Any
    conns: dict              # socket fd -> Conn
    tasks_by_key: dict       # a client process's key -> its Task
    next_tid: int
    poller: Any
    parks: list
    ready_parks: deque
    wake_fd: int
    enter_user: Callable[..., Any]    # NodeRuntime's way into the kernel

    def _accept(self, listener):
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            task = Task(self.net, self.next_tid)
            task.conns = 1
            task.key = None
            conn = Conn(sock, task)
            self.next_tid += 1
            self.conns[sock.fileno()] = conn
            self.poller.register(sock.fileno(), zmq.POLLIN)

    def _conn_readable(self, conn):
        try:
            data = conn.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._task_gone(conn)
            return
        conn.unpacker.feed(data)
        try:
            for req in conn.unpacker:
                if not isinstance(req, dict):
                    raise ValueError("request is not a map")
                park = Park(conn, req)
                t = req.get("timeout")
                if t is not None:
                    park.client_deadline = time.monotonic() + max(0.0, float(t))
                self._do_syscall(park)
        except (ValueError, TypeError, msgpack.UnpackException):
            self._task_gone(conn)      # garbage on the syscall socket: drop the task

    def _task_gone(self, conn):
        """The client process went away: close everything it held (do_exit)."""
        fd = conn.sock.fileno()
        if self.conns.pop(fd, None) is None:
            return
        try:
            self.poller.unregister(fd)
        except KeyError:
            pass
        conn.sock.close()
        conn.dead = True
        for p in [p for p in self.parks if p.ident is conn]:
            self._unpark(p)
        task = conn.task
        task.conns -= 1
        if task.conns > 0:
            return              # another thread of that process is still attached
        if task.key is not None:
            self.tasks_by_key.pop(task.key, None)
        self._task_exit(task)

    def _task_exit(self, task):
        try:
            self.enter_user(task_exit, task)
        except KernelOops:
            pass

    def _attach(self, conn, key):
        """Several connections (threads) of one process share its task: its descriptors."""
        if not isinstance(key, (str, int)) or len(str(key)) > 128:
            raise KernelError(22, "bad task key")
        key = str(key)
        task = self.tasks_by_key.get(key)
        if task is None:
            task = conn.task
            task.key = key
            self.tasks_by_key[key] = task
        elif task is not conn.task:
            old = conn.task
            old.conns -= 1
            conn.task = task
            task.conns += 1
            if old.conns <= 0:
                self._task_exit(old)         # its descriptors die with it
        return task.tid

    def _reply(self, conn, reply):
        if conn.dead:
            return
        try:
            data = msgpack.packb(reply, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as e:
            # A result that cannot travel is a bug, but never the node's death.
            log.exception("unpackable syscall reply")
            data = msgpack.packb({"id": reply.get("id"), "err": 5, "msg": "EIO: %s" % e},
                                 use_bin_type=True)
        # Never block the node on one client: what the socket does not take
        # now waits in conn.out and leaves when the client reads (POLLOUT).
        conn.out += data
        self._flush_conn(conn)

    def _flush_conn(self, conn):
        if conn.dead:
            return
        try:
            while conn.out:
                n = conn.sock.send(conn.out)
                if not n:
                    break
                del conn.out[:n]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._task_gone(conn)
            return
        fd = conn.sock.fileno()
        if conn.out and not conn.want_out:
            self.poller.modify(fd, zmq.POLLIN | zmq.POLLOUT)
            conn.want_out = True
        elif not conn.out and conn.want_out:
            self.poller.modify(fd, zmq.POLLIN)
            conn.want_out = False

    def _do_syscall(self, park):
        req = park.req
        if park.ident.dead:
            return
        rid = req.get("id")
        try:
            reply = {"id": rid, "ok": self._syscall(park)}
        except SyscallBlock:
            return               # parked: the reply comes when it wakes or times out
        except KernelError as e:
            reply = {"id": rid, "err": e.errno, "msg": e.strerror}
        except KernelOops as e:
            reply = {"id": rid, "err": EIO, "msg": "EIO: kernel oops: %s" % e}
        self._reply(park.ident, reply)

    def _syscall(self, park):
        """Run (or resume) one system call through the kernel entry."""
        req = park.req
        call = req.get("call")
        args = req.get("args", ())
        if call == "_attach":
            if not isinstance(args, (list, tuple)) or len(args) != 1:
                raise KernelError(22, "_attach takes one key")
            return self._attach(park.ident, args[0])
        task = park.ident.task
        if park.resume is not None:
            fn, args = park.resume, ()
        else:
            sys_fn = syscall_lookup(call, args)        # ENOSYS / EINVAL / EFAULT
            fn, args = sys_fn, (task, *args)
        return self.enter_user(self._syscall_k, park, fn, args)

    def _syscall_k(self, park, fn, args):
        """In the kernel: the call, and on SyscallBlock its wait-queue entries."""
        try:
            return fn(*args)
        except SyscallBlock as b:
            self._park(park, b)
            raise

    def _park(self, park, block):
        """Wait on block.wqs; the deadline is the nearer of the kernel's and the client's."""
        now = time.monotonic()
        if park.deadline is None and block.timeout is not None:
            park.deadline = now + block.timeout
        park.on_timeout = block.on_timeout
        park.resume = block.resume
        park.partial = block.partial
        park.ready = False

        def wake(mask, park=park):
            if not park.ready:
                park.ready = True
                self.ready_parks.append(park)
                os.eventfd_write(self.wake_fd, 1)

        park.entry = wake
        park.wqs = block.wqs
        for wq in block.wqs:
            wq.add(wake)
        if park not in self.parks:
            self.parks.append(park)

    def _unpark(self, park):
        if park.wqs:
            self.enter_user(self._unpark_wqs, park)   # wait queues are kernel state
        if park in self.parks:
            self.parks.remove(park)

    @staticmethod
    def _unpark_wqs(park):
        for wq in park.wqs:
            wq.remove(park.entry)
        park.wqs = []

    def _run_ready_parks(self):
        while self.ready_parks:
            park = self.ready_parks.popleft()
            if park not in self.parks:
                continue
            self._unpark(park)
            self._do_syscall(park)

    def _next_park_timeout(self):
        if not self.parks:
            return -1            # idle: only a request, a client or the lifeline wakes us
        now = time.monotonic()
        ds = [d for p in self.parks for d in (p.deadline, p.client_deadline) if d is not None]
        if not ds:
            return -1
        return max(0, int((min(ds) - now) * 1000) + 1)

    def _expire_parks(self):
        now = time.monotonic()
        for park in list(self.parks):
            rid = park.req.get("id")
            expired = (park.client_deadline is not None and now >= park.client_deadline) or \
                (park.deadline is not None and now >= park.deadline)
            done = None
            if expired and park.partial is not None:
                try:
                    done = self.enter_user(park.partial)
                except (KernelError, KernelOops):
                    done = None
            if done:
                self._unpark(park)           # some work was done: return it, as Linux does
                self._reply(park.ident, {"id": rid, "ok": done})
            elif park.client_deadline is not None and now >= park.client_deadline and \
                    (park.deadline is None or park.client_deadline <= park.deadline):
                self._unpark(park)
                self._reply(park.ident, {"id": rid, "timeout": True})
            elif park.deadline is not None and now >= park.deadline:
                self._unpark(park)
                if park.on_timeout:
                    self._reply(park.ident, {"id": rid, "err": park.on_timeout,
                                             "msg": "Resource temporarily unavailable"})
                else:
                    self._reply(park.ident, {"id": rid, "ok": []})
