"""Request/response over a node's ZeroMQ endpoints (control and syscalls).

Errors come back as the same OSError subclasses Python's own socket module
raises: OSError(errno, msg) picks ConnectionRefusedError, TimeoutError, ...
"""
import itertools
import os
import socket as _socket
import threading
import time
import weakref

import msgpack
import zmq

from .. import sysproto as P
from .hotcalls import (
    BIG_REPLY, DATA_HDR, R_BIGDATA, EpochPage, HotCalls, _i32, decode_reply, encode_call,
)


class NodeUnreachable(OSError):
    """The node did not answer (it is down, or not started yet)."""


def _context():
    return zmq.Context.instance()


class ControlClient:
    """A connection to one node's control endpoint."""

    def __init__(self, endpoint, timeout=10.0, ctx=None, curve=None):
        self.endpoint = endpoint
        self.curve = curve           # the lab's CURVE keys, for a node's tcp:// endpoint
        self.timeout = timeout
        self.lock = threading.Lock()
        self.sock = None
        self.pid = os.getpid()
        self.ctx = ctx               # a context of the caller's (a lab's: room for 1000s of sockets)

    def _socket(self):
        if self.sock is None or self.pid != os.getpid():
            ctx = self.ctx if self.ctx is not None and self.pid == os.getpid() else _context()
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            if self.curve is not None:
                from ..wire.curve import curve_client
                curve_client(s, self.curve)
            s.connect(self.endpoint)
            self.sock = s
            self.pid = os.getpid()
        return self.sock

    def call(self, op, timeout=None, **args):
        """Run one control op; returns its result or raises OSError."""
        with self.lock:
            s = self._socket()
            s.send(msgpack.packb({"op": op, "args": args}, use_bin_type=True))
            t = self.timeout if timeout is None else timeout
            if not s.poll(int(t * 1000)):
                # The reply may still come later: start afresh next time.
                s.close(0)
                self.sock = None
                raise NodeUnreachable(110, "node at %s did not answer %r" % (self.endpoint, op))
            reply = msgpack.unpackb(s.recv(), raw=False)
        if reply.get("ok"):
            return reply.get("result")
        raise OSError(reply.get("errno", 22), reply.get("error", "error"))

    def close(self):
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None



SPIN = float(os.environ.get("EMU_SYSCALL_SPIN", "0.00005"))   # seconds (0: never)
POST_FRAMES = 64             # credited sends held back before one write takes them all
POST_BYTES = 65536
POST_DELAY = 0.0002          # seconds: the longest a credited send waits for company


class _Conn:
    """One thread's connection: its socket, the reply bytes read ahead, and the
    credited sends not yet written (one write takes a burst of them)."""

    __slots__ = ("sock", "buf", "small", "wait", "pend", "pend_bytes", "wlock", "dead", "last_post",
                 "__weakref__")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.small = bytearray(P.ADDR_REP.size)   # getname's reply, read in place
        self.wait = -1           # the socket's timeout as last set (settimeout costs fcntl calls)
        self.pend = []
        self.pend_bytes = 0
        self.wlock = threading.Lock()
        self.dead = False        # a write behind the owner's back failed: the node went away
        self.last_post = 0.0     # when the last credited send was written or held back


class _Hangup:
    """Kept in a thread's threading.local next to its connection: when the
    thread ends, CPython drops its locals and this hangs up, so the node drops
    the connection and its buffers (a process that starts a thread per
    transfer would otherwise pile them up there)."""

    __slots__ = ("conn",)

    def __init__(self, conn):
        self.conn = conn

    def __del__(self):
        if self.conn.pend:
            return               # held-back sends: the Poster writes them, the socket stays
        try:
            self.conn.sock.close()
        except Exception:
            pass


class Poster:
    """Writes held-back credited sends out within POST_DELAY (a daemon thread per
    process), so a send never waits for the next call to leave."""

    def __init__(self, flush):
        self.flush = flush
        self.ev = threading.Event()
        self.pid = os.getpid()
        threading.Thread(target=self._run, daemon=True, name="emu-syscall-poster").start()

    def kick(self):
        if not self.ev.is_set():
            self.ev.set()

    def _run(self):
        while True:
            self.ev.wait()
            time.sleep(POST_DELAY)
            self.ev.clear()
            try:
                self.flush()
            except Exception:      # a node gone: the next call reports it
                pass


def _set_wait(c, wait):
    if c.wait != wait:
        c.sock.settimeout(wait)
        c.wait = wait


def read_frame(c, wait=None, big=False):
    """The next reply frame on connection c: (kind, rid, body memoryview). EOFError at the end.

    big: the caller asked for more than BIG_REPLY bytes of data. With nothing
    read ahead, the first read then takes only an R_DATA header, so that the
    data of a long reply is read by one recv straight into the bytes handed
    to the caller (kind R_BIGDATA): no copy in user space.
    """
    s = c.sock
    buf = c.buf
    first = DATA_HDR if big and not buf else 262144
    while True:
        if len(buf) >= P.REP_LEN:
            flen, kind, _, _, rid = P.REP.unpack_from(buf, 0)
            if flen < P.REP_LEN or flen > P.MAX_FRAME:
                raise EOFError()
            if len(buf) >= flen:
                body = bytes(buf[P.REP_LEN:flen])
                del buf[:flen]
                return kind, rid, body
            if flen > BIG_REPLY and kind == P.R_DATA and len(buf) >= DATA_HDR and \
                    P.DATA.unpack_from(buf, P.REP_LEN)[2] == P.NO_ADDR:
                # A stream's long read: its data, with what came of it already.
                mflags = P.DATA.unpack_from(buf, P.REP_LEN)[0]
                rest = _recv_exact(c, flen - len(buf))
                data = rest if len(buf) == DATA_HDR else b"".join((memoryview(buf)[DATA_HDR:], rest))
                buf.clear()
                return R_BIGDATA, rid, (data, mflags)
            if flen > BIG_REPLY:
                # A long reply: straight into a buffer of its own.
                frame = bytearray(flen)
                have = len(buf)
                frame[:have] = buf
                buf.clear()
                mv = memoryview(frame)
                _set_wait(c, wait)
                while have < flen:
                    try:
                        k = s.recv_into(mv[have:])
                    except _socket.timeout:
                        raise NodeUnreachable(110, "node did not answer") from None
                    if not k:
                        raise EOFError()
                    have += k
                return kind, rid, mv[P.REP_LEN:]
        data = None
        if SPIN:
            # A reply is usually tens of microseconds away: look for it a few
            # times before sleeping, so that neither side pays a wake-up.
            end = time.perf_counter() + SPIN
            _set_wait(c, None)      # (with a timeout, CPython would poll before the recv)
            while True:
                try:
                    data = s.recv(first, _socket.MSG_DONTWAIT)
                    break
                except BlockingIOError:
                    if time.perf_counter() > end:
                        break
        if data is None:
            _set_wait(c, wait)
            try:
                data = s.recv(first)
            except _socket.timeout:
                raise NodeUnreachable(110, "node did not answer") from None
        if not data:
            raise EOFError()
        buf += data
        first = 262144


def _recv_exact(c, n):
    """n bytes of a frame the node is writing now, as one bytes object (one
    recv with MSG_WAITALL, in blocking mode: the node writes the rest of a
    frame without waiting for anything but us; if it dies, that is EOF)."""
    _set_wait(c, None)
    data = c.sock.recv(n, _socket.MSG_WAITALL)
    if len(data) == n:
        return data
    if not data:
        raise EOFError()
    parts = [data]               # cut short (a signal): the rest, then one join
    have = len(data)
    while have < n:
        more = c.sock.recv(n - have, _socket.MSG_WAITALL)
        if not more:
            raise EOFError()
        parts.append(more)
        have += len(more)
    return b"".join(parts)


def on_virtual_time(sys_path):
    """Whether the node at sys_path is in a virtual-time lab (its clock page is
    beside it): its calls' timeouts are then on the lab's time, and how long
    the host waits for a reply says nothing of the node's health."""
    return os.path.exists(os.path.join(os.path.dirname(sys_path), "clock.page"))


# This process, as an object a forked child replaces: getname's fast path
# tells a child from its parent without os.getpid() (a system call, 0.5 us in
# this VM). A child forked behind Python's back (no at-fork handlers) still
# takes the generic path's getpid check on any other call.
_PROC = [object()]


def _forked():
    _PROC[0] = object()


os.register_at_fork(after_in_child=_forked)

# getname's fast path, looked up once.
_REQ_PACK, _REQ_LEN, _OP_NAME = P.REQ.pack, P.REQ_LEN, P.OP_NAME
_ADDR_REP_UNPACK, _ADDR_REP_LEN, _R_ADDR = P.ADDR_REP.unpack_from, P.ADDR_REP.size, P.R_ADDR
_MSG_DONTWAIT = _socket.MSG_DONTWAIT
_perf_counter = time.perf_counter
_int_to_ip = P.int_to_ip


# A prefix for this process's task keys: "vt<ID>-" in a program of a
# virtual-time lab (vtime.py), which is how its node tells the lab's clock
# that the program waits in a call.
TASK_KEY_PREFIX = [""]


class SyscallClient(HotCalls):
    """A process's connection(s) to a node's syscall socket.

    Each thread gets its own connection, and all of a process's connections
    join one task (one descriptor table) by sending the process's key first:
    one thread can block in recv() while another sends on the same socket.
    When the process exits its connections close and the node closes the
    task's descriptors.
    """

    def __init__(self, path):
        self.path = path
        self.virtual = on_virtual_time(path)
        self.local = threading.local()
        self.ids = itertools.count(1)
        self.pid = None
        self.proc = None               # _PROC[0] when pid was last checked (getname's fast path)
        self.key = None
        self.all = weakref.WeakSet()   # live connections (a thread's dies with it)
        self.anchor = None             # the first one lives as long as we do: the node
                                       # keeps a task while one of its connections is open
        self.credits = {}
        self.rbufs = {}
        self.epoch_page = None
        self.posting = []         # connections with held-back sends
        self.poster = None

    def _epoch(self):
        page = self.epoch_page
        return 0 if page is None else page.read()

    def _conn(self):
        if self.pid != os.getpid():
            # A new process (fork): a task of its own, as Linux gives a child... a copy.
            self.pid = os.getpid()
            self.key = "%s%d-%s" % (TASK_KEY_PREFIX[0], self.pid, os.urandom(6).hex())
            self.local = threading.local()
            self.all = weakref.WeakSet()
            self.anchor = None
            self.credits = {}
            self.rbufs = {}
            self.posting = []
        self.proc = _PROC[0]
        c = getattr(self.local, "conn", None)
        if c is not None and c.dead:
            self._drop(c)
            raise NodeUnreachable(104, "node at %s went away" % self.path)
        if c is None:
            s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                s.connect(self.path)
            except OSError as e:
                s.close()
                raise NodeUnreachable(e.errno or 111, "node at %s: %s" % (self.path, e.strerror)) from None
            c = self.local.conn = _Conn(s)
            self.all.add(c)
            if self.anchor is None:
                self.anchor = c
            else:
                self.local.hangup = _Hangup(c)
            if self.epoch_page is None:
                self.epoch_page = EpochPage(self.path)
            try:
                self._roundtrip(c, (encode_call(0, "_attach", [self.key]),), 0, 10.0)
            except (OSError, EOFError):
                self._drop(c)
                raise NodeUnreachable(104, "node at %s went away" % self.path) from None
        return c

    def call(self, name, *args, timeout=None, liveness=5.0):
        """Run a system call in the node; timeout (seconds) bounds a blocking call."""
        if name == "close" or name == "poll":
            local = self._local_call(name, args)
            if local is not None:
                return local
        elif (name == "getsockname" or name == "getpeername") and len(args) == 1 and \
                _i32(args[0]) and timeout is None:
            return self.getname(int(args[0]), name == "getpeername")
        rid = next(self.ids)
        kind, body = self._exchange(rid, (encode_call(rid, name, args, timeout),), name, timeout,
                                    liveness)
        return decode_reply(kind, body, name)

    def getname(self, fd, peer):
        """getsockname(2) / getpeername(2): HotCalls.getname, with a path of its
        own when this thread's connection is idle in a real-time lab (the
        no-op call the benchmarks time, issue 14): the 16-byte request in one
        send, the 18-byte R_ADDR reply read in place with one recv_into. Any
        other reply (an error, a frame left over from an interrupted call, a
        short read) goes on to read_frame, as HotCalls.getname's would."""
        try:
            c = self.local.conn
        except AttributeError:
            c = None
        if c is None or self.proc is not _PROC[0] or self.virtual or self.posting or c.dead or c.buf:
            return HotCalls.getname(self, fd, peer)
        rid = next(self.ids)
        sock = c.sock
        small = c.small
        try:
            if c.wait is not None:
                sock.settimeout(None)
                c.wait = None
            if c.last_post:
                # The Poster may be writing this connection's held-back sends.
                with c.wlock:
                    sock.sendall(_REQ_PACK(_REQ_LEN, _OP_NAME, peer, 0, rid, fd))
            else:
                sock.sendall(_REQ_PACK(_REQ_LEN, _OP_NAME, peer, 0, rid, fd))
            n = -1
            if SPIN:
                # As read_frame: the reply is usually microseconds away.
                end = _perf_counter() + SPIN
                while True:
                    try:
                        n = sock.recv_into(small, 0, _MSG_DONTWAIT)
                        break
                    except BlockingIOError:
                        if _perf_counter() > end:
                            break
            if n < 0:
                n = sock.recv_into(small)
            if n == _ADDR_REP_LEN:
                flen, kind, _, _, got, ip, port = _ADDR_REP_UNPACK(small)
                if flen == _ADDR_REP_LEN and kind == _R_ADDR and got == rid:
                    return [_int_to_ip(ip), port]
            if not n:
                raise EOFError()
            c.buf += small[:n]
            while True:
                kind, got, body = read_frame(c, None)
                if got == rid:
                    break
        except (OSError, EOFError) as e:
            raise self._lost(c, e, "getpeername" if peer else "getsockname") from None
        if kind == P.R_ADDR:
            ip, port = P.ADDR.unpack_from(body, 0)
            return [P.int_to_ip(ip), port]
        return decode_reply(kind, body)

    def _exchange(self, rid, parts, name, timeout, liveness=5.0, big=False):
        c = self._conn()
        if self.virtual:
            timeout = None       # the call's timeout is on the lab's time, not the host's
        try:
            return self._roundtrip(c, parts, rid, None if timeout is None else timeout + liveness, big)
        except (OSError, EOFError) as e:
            raise self._lost(c, e, name) from None

    def _lost(self, c, e, name):
        """The NodeUnreachable to raise for e, an I/O error on connection c during call name."""
        self._drop(c)
        if isinstance(e, NodeUnreachable):
            return NodeUnreachable(e.errno, "node at %s did not answer %s" % (self.path, name))
        return NodeUnreachable(getattr(e, "errno", None) or 104, "node at %s went away during %s" % (self.path, name))

    def _post(self, hdr, data):
        c = self._conn()
        now = time.perf_counter()
        last, c.last_post = c.last_post, now
        if not c.pend and now - last > POST_DELAY:
            # A lone send (none in the last POST_DELAY): written now. Holding it
            # back for company that is not coming only delays it, and waking
            # the Poster thread costs a GIL hand-off (ping sends one per 10 ms).
            try:
                with c.wlock:
                    # The header and the caller's bytes in one sendmsg: a 1 MiB
                    # stream send was copied twice here (bytes(), then +).
                    write_parts(c.sock, (hdr, data))
            except OSError as e:
                self._drop(c)
                raise NodeUnreachable(e.errno or 104, "node at %s went away during sendto" % self.path) from None
            return
        # Held back: the bytes are copied (the caller may reuse its buffer),
        # once; the flush joins the header and them with the rest.
        c.pend.append(hdr)
        c.pend.append(bytes(data))
        c.pend_bytes += len(hdr) + len(data)
        if len(c.pend) >= 2 * POST_FRAMES or c.pend_bytes >= POST_BYTES:     # two parts a frame
            try:
                self._flush_conn(c)
            except OSError as e:
                self._drop(c)
                raise NodeUnreachable(e.errno or 104, "node at %s went away during sendto" % self.path) from None
            # A thread that only sends would keep the GIL for a whole switch
            # interval (5 ms): let a thread waiting on a reply (a reader) in now.
            time.sleep(0)
        else:
            if c not in self.posting:
                self.posting.append(c)
            if self.poster is None or self.poster.pid != os.getpid():
                self.poster = Poster(self._flush_all)
            self.poster.kick()

    def _post_batch(self, parts):
        """sendmmsg's credited sends (headers and data, in order): written now,
        after what this thread holds back, in one write."""
        c = self._conn()
        c.last_post = time.perf_counter()
        try:
            with c.wlock:
                if c.pend:
                    parts = c.pend + parts
                    c.pend, c.pend_bytes = [], 0
                c.sock.sendall(b"".join(parts))
        except OSError as e:
            self._drop(c)
            raise NodeUnreachable(e.errno or 104, "node at %s went away during sendmmsg" % self.path) from None
        time.sleep(0)            # as _post: a reader waiting for the GIL gets in

    @staticmethod
    def _flush_conn(c):
        with c.wlock:
            if c.pend:
                out, c.pend, c.pend_bytes = c.pend, [], 0
                c.sock.sendall(b"".join(out))    # (under the owner's timeout, if any)

    def _flush_all(self):
        """Every thread's held-back sends, before any call: they came first."""
        conns, self.posting = self.posting, []
        for c in conns:
            try:
                self._flush_conn(c)
            except OSError:
                c.dead = True     # that thread's next call finds the node gone
                self.credits.clear()

    def _roundtrip(self, c, parts, rid, wait, big=False):
        if self.posting:
            self._flush_all()
        with c.wlock:
            if c.wait != wait:
                c.sock.settimeout(wait)
                c.wait = wait
            if len(parts) == 1:
                c.sock.sendall(parts[0])
            else:
                write_parts(c.sock, parts)
        while True:
            kind, got, body = read_frame(c, wait, big)
            if got == rid:
                return kind, body

    def _drop(self, c):
        # The node went away (or will be a new one): what it vouched for is void.
        self.credits.clear()
        self.rbufs.clear()
        self.epoch_page = None       # a restarted node has a page of its own
        try:
            c.sock.close()
        except OSError:
            pass
        if getattr(self.local, "conn", None) is c:
            self.local.conn = None
        if self.anchor is c:
            self.anchor = None

    def close(self):
        for c in list(self.all):
            try:
                c.sock.close()
            except OSError:
                pass
        self.all = weakref.WeakSet()
        self.anchor = None
        self.local = threading.local()


def _send_parts(c, parts, wait):
    """Write a frame given as parts (header, payload), all of it."""
    _set_wait(c, wait)
    write_parts(c.sock, parts)


def write_parts(s, parts):
    if len(parts) == 1:
        s.sendall(parts[0])
        return
    hdr, data = parts
    if len(data) <= 4096:
        s.sendall(hdr + bytes(data))
        return
    total = len(hdr) + len(data)
    n = s.sendmsg([hdr, data])
    if n < total:
        view = memoryview(data).cast("B")
        if n < len(hdr):
            s.sendall(hdr[n:])
            n = len(hdr)
        s.sendall(view[n - len(hdr):])
