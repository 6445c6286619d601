"""Real descriptors for emulated sockets: a fileno() that epoll accepts.

An emulated socket lives in the node's kernel, so the process has no
descriptor for it. Event loops that call epoll themselves (trio, twisted)
need one. fileno() therefore hands out one end of a local socketpair, a
"mirror", that the shim keeps readable exactly when the node socket is
readable (or hung up, or in error) and writable exactly when it is
writable:

* readable: one byte waits in the mirror (written from the other end);
* not writable: the mirror's small send buffer is full (the other end does
  not read until the node socket is writable again).

Readiness turns true from outside the process (data, ACKs, a FIN): a
watcher thread waits for those in the node's poll. It turns false only by
the process's own calls (a recv that empties the queue, a send that fills
the buffer, accept, connect): after each such call the socket looks again
(poll with timeout 0) and, if the watcher must now wait for something new,
wakes it through a UDP socket of the node that it also polls.

os.read, os.write, os.sendfile, os.set_blocking, os.get_blocking and
os.close given a mirror's number act on its socket (os_functions).

Emulation note: a mirror costs two local descriptors and, while it exists,
one extra system call after a call on its socket that may have made it less
ready (a second one, without waiting, when the watcher must look again).
Mirrors are made on the first fileno() call; the shim's own select, poll and
selectors wait in the node directly and never need one.
"""
import errno
import itertools
import os
import socket as _socket_mod
import threading
import time
import weakref

from .rpc import NodeUnreachable

# include/uapi/asm-generic/poll.h
POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
POLLRDHUP = 0x2000
_READABLE = POLLIN | POLLHUP | POLLERR | POLLRDHUP
_WRITABLE = POLLOUT | POLLERR              # as select() counts them: a hang-up reads
MSG_DONTWAIT = 0x40

_RealSocket = _socket_mod.socket
_gen = itertools.count(1)
# One poll call watches them all, and the node's poll takes at most 1024
# descriptors: past this many, fileno() gives the socket's EMU_FD_BASE number.
MAX_MIRRORS = 1000

# real mirror descriptor -> the emulated socket it stands for (weakly)
BY_REAL = {}


def socket_of_real(fd):
    """The live emulated socket whose mirror is real descriptor fd, or None."""
    ref = BY_REAL.get(fd)
    sock = ref() if ref is not None else None
    if sock is None or sock._closed:
        return None
    return sock


class Mirror:
    """One end of a socketpair whose readiness the shim sets."""

    __slots__ = ("a", "b", "fd", "rd", "wr", "gen")

    def __init__(self):
        a, b = _socket_mod.socketpair(_socket_mod.AF_UNIX, _socket_mod.SOCK_STREAM)
        if not isinstance(a, _RealSocket):       # never an emulated one
            raise OSError(errno.EINVAL, "mirror socketpair is not local")
        a.setblocking(False)
        b.setblocking(False)
        a.setsockopt(_socket_mod.SOL_SOCKET, _socket_mod.SO_SNDBUF, 1)    # the minimum
        self.a, self.b, self.fd = a, b, a.fileno()
        self.rd, self.wr = False, True                # a fresh pair: writable only
        self.gen = next(_gen)

    def want(self):
        """The events the watcher must wait for (those not shown yet)."""
        return (0 if self.rd else POLLIN) | (0 if self.wr else POLLOUT)

    def set(self, rd, wr):
        if rd != self.rd:
            if rd:
                self.b.send(b"\0")
            else:
                _drain(self.a)
            self.rd = rd
        if wr != self.wr:
            if wr:
                _drain(self.b)
            else:
                try:
                    while self.a.send(b"\0" * 4096):
                        pass
                except (BlockingIOError, InterruptedError):
                    pass
            self.wr = wr

    def close(self):
        self.a.close()
        self.b.close()


def _drain(s):
    try:
        while s.recv(65536):
            pass
    except (BlockingIOError, InterruptedError):
        pass


class Watcher:
    """Keeps the mirrors of one process's emulated sockets true to the node."""

    def __init__(self, client):
        self.client = client
        self.lock = threading.RLock()     # a finalizer may close a socket under it
        self.armed = {}                   # node fd -> Mirror
        self.wake = None                  # node fd of the wake-up UDP socket
        self.wake_addr = None
        self.pid = None
        self.local = threading.local()    # per thread: depth of shim calls in progress

    # -- the sockets' side
    def adopt(self, sock):
        """A mirror for sock (its first fileno()); returns it."""
        self._start()
        if len(self.armed) >= MAX_MIRRORS:
            raise OSError(errno.EMFILE, "too many mirrored sockets")
        m = Mirror()
        with self.lock:
            self.armed[sock._fd] = m
            BY_REAL[m.fd] = weakref.ref(sock)
        sock._mirror = m
        self.refresh(sock)
        self.poke()                       # the watcher has not seen this one yet
        return m

    def drop(self, sock):
        m = sock._mirror
        if m is None:
            return
        sock._mirror = None
        with self.lock:
            if self.armed.get(sock._fd) is m:
                del self.armed[sock._fd]
            BY_REAL.pop(m.fd, None)
        m.close()

    def refresh(self, sock):
        """After a call of the process's own on sock: show its readiness now."""
        m = sock._mirror
        if m is None or sock._closed:
            return
        try:
            ready = self.client.call("poll", [[sock._fd, POLLIN | POLLOUT]], 0)
        except OSError:
            return
        rev = ready[0][1] if ready else 0
        with self.lock:
            if sock._mirror is not m:
                return
            before = m.want()
            m.gen = next(_gen)
            m.set(bool(rev & _READABLE), bool(rev & _WRITABLE))
            poke = m.want() & ~before
        if poke:
            self.poke()

    def poke(self):
        """Wake the watcher: it has something new to wait for."""
        if self.wake is not None:
            self.client.call_nowait("sendto", self.wake, b"", 0, list(self.wake_addr))

    # -- the watcher thread
    def _start(self):
        with self.lock:
            if self.pid == os.getpid():
                return
            self.armed.clear()
            c = self.client
            fd = c.call("socket", _socket_mod.AF_INET, _socket_mod.SOCK_DGRAM | _socket_mod.SOCK_NONBLOCK, 0)
            c.call("bind", fd, ["127.0.0.1", 0])
            self.wake, self.wake_addr = fd, c.call("getsockname", fd)
            self.pid = os.getpid()
            threading.Thread(target=self._run, args=(self.pid,), daemon=True,
                             name="emu-fd-watcher").start()

    def _run(self, pid):
        while self.pid == pid:
            with self.lock:
                items, snap = [], {}
                for nfd, m in self.armed.items():
                    w = m.want()
                    if w:
                        items.append([nfd, w])
                        snap[nfd] = m.gen
                items.append([self.wake, POLLIN])
            try:
                ready = self.client.call("poll", items, None)
            except NodeUnreachable:
                return                            # the node went away
            except OSError:
                time.sleep(0.05)                  # a descriptor closed under us: look again
                continue
            woken = False
            with self.lock:
                for nfd, rev in ready:
                    if nfd == self.wake:
                        woken = True
                        continue
                    m = self.armed.get(nfd)
                    if m is None or m.gen != snap.get(nfd) or rev & POLLNVAL:
                        continue                  # closed, or looked at since: look again
                    m.set(m.rd or bool(rev & _READABLE), m.wr or bool(rev & _WRITABLE))
            if woken:
                # One call takes every poke queued (the read-ahead of a UDP
                # recvfrom); they carry nothing, so what came with it is
                # dropped. A poke sent after it wakes the next poll at once.
                try:
                    self.client.recvfrom(self.wake, 64, MSG_DONTWAIT)
                except OSError:
                    pass
                self.client.drop_ahead(self.wake)


# ---------------------------------------------------------------- os.* on a mirror

def os_functions():
    """os.read, os.write, os.sendfile, os.set_blocking, os.get_blocking and
    os.close that, given a mirror's number, act on its emulated socket (as
    they would on a kernel socket's descriptor) and pass anything else to
    the real ones. Returns {name: function}."""
    real_read, real_write, real_sendfile = os.read, os.write, os.sendfile
    real_set_blocking, real_get_blocking, real_close = os.set_blocking, os.get_blocking, os.close

    def read(fd, n, /):
        sock = socket_of_real(fd) if fd in BY_REAL else None
        if sock is None:
            return real_read(fd, n)
        return sock.recv(n)

    def write(fd, data, /):
        sock = socket_of_real(fd) if fd in BY_REAL else None
        if sock is None:
            return real_write(fd, data)
        return sock.send(data)

    def sendfile(out_fd, in_fd, offset, count, *args, **kwargs):
        sock = socket_of_real(out_fd) if out_fd in BY_REAL else None
        if sock is None:
            return real_sendfile(out_fd, in_fd, offset, count, *args, **kwargs)
        # The node cannot read the file: read it here, send what the socket takes,
        # and move the file position by that much when no offset was given.
        pos = os.lseek(in_fd, 0, os.SEEK_CUR) if offset is None else offset
        data = os.pread(in_fd, count, pos)
        n = sock.send(data) if data else 0
        if offset is None:
            os.lseek(in_fd, pos + n, os.SEEK_SET)
        return n

    def set_blocking(fd, blocking, /):
        # O_NONBLOCK of the open file, in the node's kernel; the socket object's
        # timeout stays as it was (CPython's does too).
        sock = socket_of_real(fd) if fd in BY_REAL else None
        if sock is None:
            return real_set_blocking(fd, blocking)
        sock._sys.call("setblocking", sock._fd, not blocking)
        sock._fd_nonblock = not blocking
        return None

    def get_blocking(fd, /):
        sock = socket_of_real(fd) if fd in BY_REAL else None
        if sock is None:
            return real_get_blocking(fd)
        return not sock._fd_nonblock

    def close(fd):
        sock = socket_of_real(fd) if fd in BY_REAL else None
        if sock is None:
            return real_close(fd)
        sock._real_close()       # the descriptor was the socket: it goes (fds shared with files too)
        return None

    return {"read": read, "write": write, "sendfile": sendfile, "set_blocking": set_blocking,
            "get_blocking": get_blocking, "close": close}
