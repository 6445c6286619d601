"""The node's system call server: one Unix-socket connection per client
thread (or one per process, shared by its threads), one Task (descriptor
table) per client process, and the parked calls that wait on kernel wait
queues.

Linux: net/socket.c (the calls), kernel/exit.c (do_exit closes a task's
files), kernel/sched/wait.c (a sleeping call on a wait queue).

The framing is emu/sysproto.py: binary frames for the data-bearing calls
(sendto, recvfrom: raw payload, no msgpack), msgpack maps for the rest.
Reading a connection and cutting it into frames is sysframes.py's (a mixin).
What one read of a connection brings is run as one batch: the wires are
flushed once at its end (one wire message for a burst of datagrams, as
xmit_more does), and the replies leave in one write per connection per
pass of the user thread.

Send credit (sysproto.py): a successful UDP sendto returns the node's send
epoch; the client then sends like datagrams without waiting for a reply.
The epoch (mirrored to <sys_path>.epoch, a shared page) moves on anything
that could change such a send's outcome: every state-changing call (here),
every control request (runtime.py), a routing change or a socket error (the
kernel bumps net.send_epoch). Emulation note: a send that raced with such a
change made by someone else (no order between the two) and then failed is
counted as dropped (drop reason SEND_CREDIT_RACE), as if the change had come
just after it; the sender's own calls are ordered after its sends: a
connection is read in order, and a call on one connection of a task first
drains the task's other connections.

A mixin of NodeRuntime: it uses the runtime's enter_user (the one way into
the kernel), its poller and its wake eventfd.
"""
import logging
import os
import threading
from collections import deque
from typing import Any, Callable

import msgpack
import zmq

from .. import sysproto as P
from ..kernel.core.dev import KernelError
from ..kernel.core.entry import KernelOops
from ..kernel.socket import (
    SyscallBlock, Task, sys_recvfrom, sys_sendto, sys_sendto_in, syscall_lookup, task_exit,
)
from .sysframes import BadFrame, Park  # noqa: F401  (re-exported: runtime.py, vruntime.py)
from . import sysframes
from .sysframes import EIO, OP_RECV_BATCH, Conn, SyscallReader

log = logging.getLogger("emu.node")

# Calls that change no state a send's outcome depends on: they leave the send epoch alone.
READ_ONLY = frozenset(("sendto", "recvfrom", "poll", "getsockname", "getpeername", "getsockopt",
                       "nanosleep"))


def _sendto_k(task, fd, data, flags, ip, port, has_addr):
    """The binary sendto, and the send credit if the socket earned one (in the kernel)."""
    if type(data) is memoryview:
        sock = task.fds.get(fd)
        if sock is None or sock.type != 1:
            data = bytes(data)           # only TCP takes a view of the frame (tcp_sendmsg)
    n = sys_sendto_in(task, fd, data, flags, ip, port) if has_addr else \
        sys_sendto(task, fd, data, flags, None)
    sock = task.fds.get(fd)
    credit = 0
    if sock is not None and sock.family == 2 and (
            (sock.type == 2 and getattr(sock.sk, "sk_protocol", 0) in (0, 17)) or
            (sock.type == 3 and not getattr(sock.sk, "hdrincl", 1))):
        # UDP, and raw sockets that let the kernel build the IP header (ping's):
        # the same synchronous errors (EMSGSIZE by size, EACCES for a broadcast
        # address, ENETUNREACH and EPERM by routes and rules, which move the
        # epoch); a raw socket with IP_HDRINCL checks what the user wrote.
        credit = task.net.send_epoch
    return n, credit


def _recvfrom_batch_k(task, fd, size, flags):
    """recvfrom, then up to READAHEAD_MAX more datagrams already queued (UDP only)."""
    first = sys_recvfrom(task, fd, size, flags)
    sock = task.fds.get(fd)
    if sock is None or sock.type != 2 or sock.family != 2 or \
            getattr(sock.sk, "sk_protocol", 0) not in (0, 17):
        return first
    more: list = []
    try:
        while len(more) < P.READAHEAD_MAX and not sock.sk.sk_err:    # an error goes first
            more.append(sys_recvfrom(task, fd, P.READAHEAD_SIZE, 0x40))    # MSG_DONTWAIT
    except KernelError:
        pass                             # EAGAIN: the queue is empty
    return _Batch(first, more, task.net.send_epoch)


class _Batch(tuple):
    """_recvfrom_batch_k's result: (first, more, epoch)."""

    def __new__(cls, first, more, epoch):
        return tuple.__new__(cls, (first, more, epoch))


class SyscallServer(SyscallReader):
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
    poll_changes: int        # the poller's registrations changed (count)
    sys_lock: Any            # held by whichever thread serves the calls (user thread, or complete_parks)
    user_tid: Any
    enter_user: Callable[..., Any]    # NodeRuntime's way into the kernel
    out_conns: list          # connections with replies to write at the end of this pass
    dirty: list              # NodeRuntime's wire ports with frames to flush
    _flush_wires: Callable[[], None]   # NodeRuntime's: flush them (end of a batch)
    defer_flush: bool        # kernel_exit leaves the wires to the end of the batch

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
            task.conn_list = [conn]   # type: ignore[attr-defined]  # the runtime's
            self.next_tid += 1
            self.conns[sock.fileno()] = conn
            self.poller.register(sock.fileno(), zmq.POLLIN)


    def _out_now(self, conn, frame):
        """A reply written now, if nothing of this connection waits before it."""
        if conn.out or conn.dead:
            self._out(conn, frame)
            return
        try:
            n = conn.sock.send(frame)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self._task_gone(conn)
            return
        if n < len(frame):
            self._out(conn, memoryview(frame)[n:])

    # ------------------------------------------------------------- tasks
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
        conn.out.clear()
        for p in [p for p in self.parks if p.ident is conn]:
            self._unpark(p)
        task = conn.task
        if conn in task.conn_list:
            task.conn_list = [c for c in task.conn_list if c is not conn]
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
            old.conn_list = [c for c in old.conn_list if c is not conn]
            conn.task = task
            task.conns += 1
            task.conn_list = task.conn_list + [conn]
            if old.conns <= 0:
                self._task_exit(old)         # its descriptors die with it
        return task.tid

    # ------------------------------------------------------------- replies
    def _out(self, conn, frame):
        if conn.dead:
            return
        conn.out.append(frame)
        if not conn.queued:
            conn.queued = True
            self.out_conns.append(conn)

    def _reply_ok(self, park, result):
        if park.noreply:
            return
        op = park.op
        if op == P.OP_SENDTO:
            n, credit = result if isinstance(result, tuple) else (result, 0)
            self._out(park.ident, P.INT_REP.pack(P.INT_REP.size, P.R_INT, 0, 0, park.rid, n, credit))
            return
        if op == OP_RECV_BATCH:
            if type(result) is _Batch:
                self._reply_datav(park, *result)
                return
            op = P.OP_RECVFROM
        if op == P.OP_RECVFROM:
            data, addr, mflags = result
            if addr is None:
                a = b""
                alen = P.NO_ADDR
            elif isinstance(addr, tuple) and len(addr) == 2 and isinstance(addr[0], str):
                a = addr[0].encode()
                alen = len(a)
            else:
                a = None
            if a is not None and alen <= P.NO_ADDR:
                hdr = P.DATA_HDR.pack(P.DATA_HDR.size + (0 if alen == P.NO_ADDR else alen) + len(data),
                                      P.R_DATA, 0, 0, park.rid, mflags, addr[1] if addr else 0, alen)
                self._out(park.ident, hdr + a + data if len(data) < 65536 else hdr + a)
                if len(data) >= 65536:
                    self._out(park.ident, data)
                return
        self._reply_map(park, {"id": park.rid, "ok": result})

    def _reply_datav(self, park, first, more, epoch):
        parts: list = [b""]
        size = P.REP_LEN + P.DATAV.size
        for data, addr, mflags in [first] + more:
            if addr is None:
                a, alen, port = b"", P.NO_ADDR, 0
            else:
                a = addr[0].encode()
                alen, port = len(a), addr[1]
            parts.append(P.REC.pack(mflags, port, alen, len(data)))
            parts.append(a)
            parts.append(data)
            size += P.REC.size + len(a) + len(data)
        parts[0] = P.REP.pack(size, P.R_DATAV, 0, 0, park.rid) + P.DATAV.pack(1 + len(more), epoch)
        self._out(park.ident, b"".join(parts))

    def _reply_err(self, park, err, msg=""):
        if park.noreply:
            if park.op == P.OP_SENDTO:
                self.net.drop_reasons["SEND_CREDIT_RACE"] += 1
            return
        if park.op != P.OP_MSGPACK:
            self._out(park.ident, P.ERR_REP.pack(P.ERR_REP.size, P.R_ERR, 0, 0, park.rid, err))
            return
        self._reply_map(park, {"id": park.rid, "err": err, "msg": msg})

    def _reply_timeout(self, park):
        if park.noreply:
            return
        if park.op != P.OP_MSGPACK:
            self._out(park.ident, P.REP.pack(P.REP_LEN, P.R_TIMEOUT, 0, 0, park.rid))
            return
        self._reply_map(park, {"id": park.rid, "timeout": True})

    def _reply_map(self, park, reply):
        try:
            data = msgpack.packb(reply, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as e:
            # A result that cannot travel is a bug, but never the node's death.
            log.exception("unpackable syscall reply")
            data = msgpack.packb({"id": reply.get("id"), "err": 5, "msg": "EIO: %s" % e},
                                 use_bin_type=True)
        self._out(park.ident, P.REP.pack(P.REP_LEN + len(data), P.R_MSGPACK, 0, 0,
                                         park.rid if isinstance(park.rid, int) and
                                         0 <= park.rid < 1 << 32 else 0) + data)

    def _flush_out(self):
        """End of a pass: every connection's replies in one write each."""
        conns, self.out_conns = self.out_conns, []
        for conn in conns:
            conn.queued = False
            self._flush_conn(conn)

    def _flush_conn(self, conn):
        # Never block the node on one client: what the socket does not take
        # now waits in conn.out and leaves when the client reads (POLLOUT).
        if conn.dead:
            return
        out = conn.out
        try:
            while out:
                if len(out) > 1:
                    chunks = list(out)[:64]
                    n = conn.sock.sendmsg(chunks)
                else:
                    n = conn.sock.send(out[0])
                if not n:
                    break
                while n and out:
                    first = out[0]
                    if n >= len(first):
                        n -= len(first)
                        out.popleft()
                    else:
                        out[0] = memoryview(first)[n:]
                        n = 0
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._task_gone(conn)
            return
        fd = conn.sock.fileno()
        if out and not conn.want_out:
            self.poller.modify(fd, zmq.POLLIN | zmq.POLLOUT)
            conn.want_out = True
            self.poll_changes += 1
        elif not out and conn.want_out:
            self.poller.modify(fd, zmq.POLLIN)
            conn.want_out = False
            self.poll_changes += 1

    # ------------------------------------------------------------- calls
    def _do_syscall(self, park):
        if park.ident.dead:
            if park.unwait:
                park.unwait = False
                self.enter_user(self._unpark_wqs, park)
            return
        try:
            result = self._syscall(park)
        except SyscallBlock:
            if park.noreply:         # a credited send never waits: it raced (see above)
                self._unpark(park)
                if park.op == P.OP_SENDTO:
                    self.net.drop_reasons["SEND_CREDIT_RACE"] += 1
            return               # parked: the reply comes when it wakes or times out
        except KernelError as e:
            self._reply_err(park, e.errno, e.strerror)
            return
        except KernelOops as e:
            self._reply_err(park, EIO, "EIO: kernel oops: %s" % e)
            return
        self._reply_ok(park, result)

    def _syscall(self, park):
        """Run (or resume) one system call through the kernel entry."""
        call = park.call
        args = park.args
        if call == "_attach":
            if not isinstance(args, (list, tuple)) or len(args) != 1:
                raise KernelError(22, "_attach takes one key")
            return self._attach(park.ident, args[0])
        task = park.ident.task
        if park.resume is not None:
            fn, args = park.resume, ()
        else:
            sys_fn: Callable[..., Any]
            if park.op == P.OP_SENDTO:
                sys_fn = _sendto_k           # its fields were checked by their binary layout
            elif park.op == OP_RECV_BATCH:
                sys_fn = _recvfrom_batch_k
            else:
                sys_fn = syscall_lookup(call, args)        # ENOSYS / EINVAL / EFAULT
            fn, args = sys_fn, (task, *args)
        return self.enter_user(self._syscall_k, park, fn, args)

    def _syscall_k(self, park, fn, args):
        """In the kernel: the call, and on SyscallBlock its wait-queue entries."""
        if park.unwait:
            park.unwait = False
            self._unpark_wqs(park)
        if park.call not in READ_ONLY:
            self.net.send_epoch += 1           # its outcome may change what a credit vouched for
        try:
            return fn(*args)
        except SyscallBlock as b:
            self._park(park, b)
            raise

    def _park(self, park, block):
        """Wait on block.wqs; the deadline is the nearer of the kernel's and the client's."""
        now = sysframes.clock()      # the lab's clock on virtual time (vruntime.py)
        if park.deadline is None and block.timeout is not None:
            park.deadline = now + block.timeout
        park.on_timeout = block.on_timeout
        park.resume = block.resume
        park.partial = block.partial
        park.ready = False

        def wake(mask, park=park):
            # The thread that leaves the kernel next completes the call
            # (complete_parks): a NIC or CPU thread answers the caller itself,
            # with no hand-off to the user thread.
            if not park.ready:
                park.ready = True
                self.ready_parks.append(park)

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

    def complete_parks(self):
        """After a NIC or CPU thread's kernel entry woke parked calls: run them
        here and write their replies, as a woken task runs its own system call
        on the CPU that woke it, unless the user thread is busy serving (it
        holds sys_lock): then it is told (the eventfd) and runs them itself."""
        if not self.sys_lock.acquire(blocking=False):
            os.eventfd_write(self.wake_fd, 1)
            return
        prev = self.user_tid
        self.user_tid = threading.get_ident()     # need_resched: this thread is the caller now
        changes = self.poll_changes + len(self.conns)
        try:
            self._run_ready_parks()
            if self.out_conns:
                self._flush_out()
        finally:
            self.user_tid = prev
            self.sys_lock.release()
        if self.ready_parks or changes != self.poll_changes + len(self.conns):
            # Woken meanwhile by another thread, or what the user thread polls
            # for changed (a reply waits for room, a client went away): its
            # poll, already running, must start again.
            os.eventfd_write(self.wake_fd, 1)

    def _run_ready_parks(self):
        if not self.ready_parks:
            return
        self.defer_flush = True
        try:
            while self.ready_parks:
                park = self.ready_parks.popleft()
                if park not in self.parks:
                    continue
                # Off its wait queues in the same kernel entry as the call it resumes.
                self.parks.remove(park)
                park.unwait = True
                self._do_syscall(park)
        finally:
            self.defer_flush = False
            if self.dirty:
                self._flush_wires()

    def _next_park_timeout(self):
        if not self.parks:
            return -1            # idle: only a request, a client or the lifeline wakes us
        now = sysframes.clock()
        ds = [d for p in self.parks for d in (p.deadline, p.client_deadline) if d is not None]
        if not ds:
            return -1
        return max(0, int((min(ds) - now) * 1000) + 1)

    def _expire_parks(self):
        if not self.parks:
            return
        now = sysframes.clock()
        for park in list(self.parks):
            expired = (park.client_deadline is not None and now >= park.client_deadline) or \
                (park.deadline is not None and now >= park.deadline)
            if not expired:
                continue
            done = None
            if park.partial is not None:
                try:
                    done = self.enter_user(park.partial)
                except (KernelError, KernelOops):
                    done = None
            if done:
                self._unpark(park)           # some work was done: return it, as Linux does
                self._reply_ok(park, done)
            elif park.client_deadline is not None and now >= park.client_deadline and \
                    (park.deadline is None or park.client_deadline <= park.deadline):
                self._unpark(park)
                self._reply_timeout(park)
            elif park.deadline is not None and now >= park.deadline:
                self._unpark(park)
                if park.on_timeout:
                    self._reply_err(park, park.on_timeout, "Resource temporarily unavailable")
                else:
                    self._reply_ok(park, [])
