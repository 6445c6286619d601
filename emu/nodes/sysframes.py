"""The syscall server's reading side (a mixin of SyscallServer,
syscalls.py): a client connection read and cut into frames, each frame
made a call (a Park); runs of credited sends go to the kernel in bursts.
Also the connection and the call themselves, and the framing's constants.
"""
import math
import struct
import time
from collections import deque
from typing import Any, Callable

import msgpack

from .. import sysproto as P
from ..kernel.core.dev import KernelError
from ..kernel.core.entry import KernelOops
from ..kernel.socket import SYSCALLS, SyscallBlock, sys_sendto, sys_sendto_in

EIO = 5
OP_RECV_BATCH = 100          # a Park's op: recvfrom with read-ahead (R_DATAV)
# Bytes read from one connection per pass of the user thread. A pass runs
# what it read before it looks at the other connections: with 256 KiB, a
# task sending small datagrams handed the node about 2,500 sends (30-40 ms
# of kernel work) per pass, and another task's call on the same node waited
# behind them (getsockname: 44-56 ms median during such a flood; 4-5 ms
# with 16 KiB, 1.4 ms with 4 KiB, the flood's own rate unchanged). A frame
# longer than this is read in place (_big_readable).
RECV_CHUNK = 4096
# The process's clock for call deadlines: the host's, or the lab's virtual
# time (vruntime.py sets it: one runtime per node process); syscalls.py reads it here.
clock = time.monotonic
SEND_BURST = 64              # credited sends run in one kernel entry
# Bound once: the frame parser's per-frame lookups (a run of credited sends).
_REQ_LEN, _OP_SENDTO, _F_NOREPLY = P.REQ_LEN, P.OP_SENDTO, P.F_NOREPLY
_SENDTO_HDR = P.SENDTO_HDR
_SENDTO_LEN = P.SENDTO_HDR.size
_REQ_HEAD = struct.Struct("<IBBH")     # REQ's first fields: length, op, flags, pad


class Conn:
    """One client connection on the syscall socket, and its task."""

    __slots__ = ("sock", "task", "dead", "inbuf", "out", "want_out", "queued", "big", "big_have",
                 "big_buf")

    def __init__(self, sock, task):
        self.sock = sock
        self.task = task
        self.dead = False
        self.inbuf = b""             # the start of a frame not yet complete
        self.out: deque = deque()    # reply chunks the client has not read yet
        self.want_out = False        # registered for POLLOUT
        self.queued = False          # in the server's list of connections to write
        self.big = None              # a long frame being read straight into its own buffer
        self.big_have = 0
        self.big_buf = None          # that buffer, kept for the next long frame


class Park:
    """One system call: run now, or blocked on wait queues and/or a deadline."""

    __slots__ = ("ident", "rid", "call", "args", "op", "noreply", "deadline",
                 "client_deadline", "on_timeout", "wqs", "entry", "ready", "done",
                 "resume", "partial", "unwait")

    def __init__(self, ident, rid, call, args, op=P.OP_MSGPACK, noreply=False, timeout=None):
        self.ident = ident
        self.rid = rid
        self.call = call
        self.args = args
        self.op = op
        self.noreply = noreply
        self.deadline = None
        self.client_deadline = None if timeout is None else clock() + max(0.0, timeout)
        self.on_timeout = 0
        self.wqs = []
        self.entry = None
        self.ready = False
        self.done = False
        self.resume = None
        self.partial = None
        self.unwait = False          # woken: leave the wait queues on the next entry


class BadFrame(Exception):
    """Not our framing: the client broke the ABI; its connection is dropped."""

def _sendto_batch_k(net, task, batch):
    """A burst of credited sends in one kernel entry; one that fails raced (syscalls.py)."""
    for fd, data, flags, ip, port, has_addr in batch:
        try:
            if has_addr:
                sys_sendto_in(task, fd, data, flags, ip, port)
            else:
                sys_sendto(task, fd, data, flags, None)
        except (KernelError, SyscallBlock):
            net.drop_reasons["SEND_CREDIT_RACE"] += 1


class SyscallReader:
    """Reading the connections; SyscallServer provides the state below."""

    net: Any
    parks: list
    enter_user: Callable[..., Any]    # NodeRuntime's way into the kernel
    dirty: list              # NodeRuntime's wire ports with frames to flush
    _flush_wires: Callable[[], None]   # NodeRuntime's: flush them (end of a batch)
    defer_flush: bool        # kernel_exit leaves the wires to the end of the batch
    _task_gone: Callable[[Any], None]
    _do_syscall: Callable[[Any], None]
    _out_now: Callable[[Any, Any], None]

    # ------------------------------------------------------------- reading
    def _read_chunk(self, conn):
        """What conn's socket has now, after the bytes a frame left over:
        empty when nothing is there, or when the client is gone (then its task
        is ended here)."""
        try:
            data = conn.sock.recv(RECV_CHUNK)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            data = b""
        if not data:
            self._task_gone(conn)
            return b""
        if conn.inbuf:
            data = conn.inbuf + data
            conn.inbuf = b""
        return data

    def _conn_readable(self, conn):
        if conn.big is not None:
            self._big_readable(conn)
            return
        data = self._read_chunk(conn)
        if not data:
            return
        self.defer_flush = True
        try:
            self._frames(conn, data)
        except BadFrame:
            self._task_gone(conn)     # garbage on the syscall socket: drop the task
        finally:
            self.defer_flush = False
            if self.dirty:
                self._flush_wires()

    def _frames(self, conn, data):
        mv = memoryview(data)
        n = len(data)
        off = 0
        unpack = P.REQ.unpack_from
        burst: list = []
        while n - off >= _REQ_LEN:
            flen, op, flags, pad, rid, fd = unpack(mv, off)
            if op > P.OP_LAST or pad or flen < _REQ_LEN or flen > P.MAX_FRAME:
                raise BadFrame()
            if n - off < flen:
                break
            if conn.dead:
                return
            if op == _OP_SENDTO and flags & _F_NOREPLY:
                # A run of credited sends (a sendmmsg, a sending loop): parsed
                # here, one unpack each, until the run or the burst ends.
                off = self._credited_run(mv, n, off, flen, burst)
                if len(burst) < SEND_BURST and n - off >= _REQ_LEN:
                    continue
                self._send_burst(conn, burst)
                burst = []
                continue
            if burst:
                self._send_burst(conn, burst)
                burst = []
                if op == P.OP_SENDTO and flags & P.F_NOREPLY:
                    continue
            if not flags & P.F_NOREPLY and len(conn.task.conn_list) > 1:
                self._drain_siblings(conn)
            self._frame(conn, mv, off, flen, op, flags, rid, fd)
            off += flen
        if burst:
            self._send_burst(conn, burst)
        if off < n:
            rest = mv[off:]
            if len(rest) >= P.REQ_LEN and flen > RECV_CHUNK:
                # A long frame (a big stream send): read the rest of it in place,
                # not by joining chunks, into the connection's buffer for them.
                # A new 1 MiB buffer per call cost its pages' faults every time
                # (tens of microseconds each in a VM), more than the call's copies.
                buf = conn.big_buf
                if buf is None or len(buf) < flen:
                    buf = bytearray(flen)
                conn.big_buf = None          # ours until the call is done with it
                frame = memoryview(buf)[:flen]
                frame[:len(rest)] = rest
                conn.big, conn.big_have = frame, len(rest)
            else:
                conn.inbuf = bytes(rest)

    @staticmethod
    def _credited_run(mv, n, off, flen, burst):
        """Credited sendto frames from off (the first one's length flen, already
        checked) into burst, up to SEND_BURST of them; returns where the run
        ended: at a frame of another kind or flags, a partial frame, or the end."""
        unpack = _SENDTO_HDR.unpack_from
        append = burst.append
        while True:
            if flen < _SENDTO_LEN:
                raise BadFrame()
            flen, op, flags, pad, _, fd, mflags, ip, port, has_addr, _ = unpack(mv, off)
            append((fd, bytes(mv[off + _SENDTO_LEN:off + flen]), mflags, ip, port, has_addr))
            off += flen
            if len(burst) >= SEND_BURST or n - off < _SENDTO_LEN:
                return off
            flen, op, flags, pad = _REQ_HEAD.unpack_from(mv, off)
            if op != _OP_SENDTO or not flags & _F_NOREPLY or pad or flen > P.MAX_FRAME or n - off < flen:
                return off                   # the caller's loop takes it from here

    def _big_readable(self, conn):
        frame = conn.big
        try:
            k = conn.sock.recv_into(frame[conn.big_have:])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            k = 0
        if not k:
            self._task_gone(conn)
            return
        conn.big_have += k
        if conn.big_have < len(frame):
            return
        conn.big = None
        self.defer_flush = True
        try:
            self._frames(conn, frame)
        except BadFrame:
            self._task_gone(conn)
        finally:
            self.defer_flush = False
            if self.dirty:
                self._flush_wires()
        # The call took its bytes (tcp_sendmsg copies them into skbs): the buffer
        # serves the next long frame, unless a call of this connection still
        # waits (a parked send resumes on the bytes it has not taken yet).
        if not conn.dead and not any(p.ident is conn for p in self.parks):
            conn.big_buf = frame.obj

    def _send_burst(self, conn, burst):
        if conn.dead:
            return
        try:
            self.enter_user(_sendto_batch_k, self.net, conn.task, burst)
        except KernelOops:
            pass                 # logged and counted; the rest of the burst is lost

    def _drain_siblings(self, conn):
        """Before a call, what this process's other threads sent earlier (their
        async sends above all) runs first: their bytes are already here."""
        for other in list(conn.task.conn_list):
            if other is not conn and not other.dead:
                while not other.dead and other.big is None:
                    data = self._read_chunk(other)
                    if not data:
                        break
                    try:
                        self._frames_nodrain(other, data)
                    except BadFrame:
                        self._task_gone(other)

    def _frames_nodrain(self, conn, data):
        # One level only: a sibling's frames do not drain again.
        saved = conn.task.conn_list
        conn.task.conn_list = [conn]
        try:
            self._frames(conn, data)
        finally:
            conn.task.conn_list = saved

    def _frame(self, conn, mv, off, flen, op, flags, rid, fd):
        body = off + P.REQ_LEN
        if op == P.OP_NAME:
            if flen != P.REQ_LEN or flags > P.N_PEER:
                raise BadFrame()
            self._name_call(conn, rid, fd, flags)
            return
        if op == P.OP_SENDTO:
            if flen < P.REQ_LEN + P.SENDTO.size:
                raise BadFrame()
            mflags, ip, port, has_addr, timeout = P.SENDTO.unpack_from(mv, body)
            if flen > RECV_CHUNK and type(mv.obj) is bytearray:
                # A long frame read into the connection's buffer (_big_readable),
                # not reused while a call may read it: a stream send takes its
                # payload without copying it.
                data = mv[body + P.SENDTO.size:off + flen].toreadonly()
            else:
                data = bytes(mv[body + P.SENDTO.size:off + flen])
            park = Park(conn, rid, "sendto", [fd, data, mflags, ip, port, has_addr], op,
                        False, None if timeout != timeout else timeout)
        elif op == P.OP_RECVFROM:
            if flen != P.REQ_LEN + P.RECVFROM.size:
                raise BadFrame()
            size, mflags, timeout = P.RECVFROM.unpack_from(mv, body)
            park = Park(conn, rid, "recvfrom", [fd, size, mflags], op, False,
                        None if timeout != timeout else timeout)
            if flags & P.F_READAHEAD:
                park.op = OP_RECV_BATCH
        else:
            try:
                req = msgpack.unpackb(mv[body:off + flen], raw=False)
            except (ValueError, TypeError, msgpack.UnpackException):
                raise BadFrame() from None
            if not isinstance(req, dict):
                raise BadFrame()
            t = req.get("timeout")
            if t is not None:
                try:
                    t = float(t)
                except (TypeError, ValueError):
                    t = None
                if t is not None and math.isnan(t):
                    t = None
            # F_NOREPLY: a call the client forgets (close from a finalizer).
            park = Park(conn, req.get("id"), req.get("call"), req.get("args", ()), op,
                        bool(flags & P.F_NOREPLY), t)
        self._do_syscall(park)

    def _name_call(self, conn, rid, fd, peer):
        """getsockname / getpeername: no wait, no state change, no park: run
        and answer at once (the no-op call's path: as few steps as it takes)."""
        try:
            res = self.enter_user(SYSCALLS["getpeername" if peer else "getsockname"], conn.task, fd)
        except KernelError as e:
            frame = P.ERR_REP.pack(P.ERR_REP.size, P.R_ERR, 0, 0, rid, e.errno)
        except KernelOops:
            frame = P.ERR_REP.pack(P.ERR_REP.size, P.R_ERR, 0, 0, rid, EIO)
        else:
            ip = None
            if type(res) is tuple and len(res) == 2 and type(res[0]) is str and type(res[1]) is int:
                ip = P.ip_to_int(res[0])
            if ip is not None and 0 <= res[1] <= 0xFFFF:
                frame = P.ADDR_REP.pack(P.ADDR_REP.size, P.R_ADDR, 0, 0, rid, ip, res[1])
            else:
                data = msgpack.packb({"id": rid, "ok": res}, use_bin_type=True)
                frame = P.REP.pack(P.REP_LEN + len(data), P.R_MSGPACK, 0, 0, rid) + data
        self._out_now(conn, frame)
