"""The socket.socket class of a process bound to an emu node (see emu.client.shim).

Every public method and attribute of CPython 3.11's socket.socket, with
Linux's semantics: frameworks look the class over at import time (trio
wraps sendmsg, asyncio calls sendfile and dup, ...). What has no meaning
for a socket that lives in the node's kernel says so the way Linux would
(EOPNOTSUPP, ENOPROTOOPT, EINVAL from the kernel itself).
"""
import errno
import os
import socket as _socket_mod
import sys
import threading

from .shimfd import BY_REAL, socket_of_real
from .socket import socket as _EmuSocketBase

EMU_FD_BASE = 1 << 30        # far above any real descriptor (fs.nr_open is 2^20 by default)

_RealSocket = _socket_mod.socket
_READER_THREAD = "emu-syscall-reader"


class _SocketMeta(type):
    """isinstance(x, socket.socket) holds for real AF_UNIX sockets too."""

    def __instancecheck__(cls, obj):
        return type.__instancecheck__(cls, obj) or (cls.__dict__.get("_is_base") and
                                                    isinstance(obj, _RealSocket))

    def __subclasscheck__(cls, sub):
        return type.__subclasscheck__(cls, sub) or (cls.__dict__.get("_is_base") and
                                                    issubclass(sub, _RealSocket))


def _cannot_wait():
    """True where a system call must not wait for its reply: on the thread that
    reads the replies (a finalizer run by the garbage collector there would wait
    for itself) and while the interpreter shuts down (that thread is gone)."""
    return sys.is_finalizing() or threading.current_thread().name == _READER_THREAD


def _as_enum(enum, value):
    try:
        return enum(value)
    except ValueError:
        return value


def _buffer_bytes(buffers):
    """sendmsg's buffers (any bytes-like objects) as one bytes object."""
    try:
        return b"".join(memoryview(b).cast("B") for b in buffers)
    except TypeError:
        raise TypeError("sendmsg() argument 1 must be an iterable of bytes-like objects") from None


def _is_node_fileno(fileno):
    """A number socket(fileno=...) should take as an emulated socket's."""
    return isinstance(fileno, int) and (fileno >= EMU_FD_BASE or fileno in BY_REAL)


def make_socket_class(binding):
    """The socket.socket of a process bound to binding's node."""
    client = binding.client
    watcher = binding.watcher
    depth = watcher.local

    def refreshing(fn, lazy):
        """fn, then (once per outermost call) the socket's mirror brought up to date.

        lazy (the data calls): on a non-blocking socket that one of the shim's
        selectors waits for (asyncio's loop: it waits in the node, not on the
        mirror), only when the call would have blocked. Until then the mirror
        may still show ready when the socket no longer is: at worst a spurious
        wake-up for someone who also waits on the mirror, and a system call
        less per call for the loop.
        """
        def call(self, *args, **kwargs):
            depth.n = getattr(depth, "n", 0) + 1
            would_block = False
            try:
                return fn(self, *args, **kwargs)
            except BlockingIOError:
                would_block = True
                raise
            finally:
                depth.n -= 1
                if self._mirror is not None and not depth.n and (would_block or not lazy or
                                                                 not self._selectors or
                                                                 self._timeout != 0.0):
                    watcher.refresh(self)
        call.__name__, call.__qualname__, call.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        return call

    class socket(_EmuSocketBase, metaclass=_SocketMeta):
        """socket.socket for a process attached to an emu node (see emu.client.shim)."""

        _is_base = True
        # Class defaults, so that a half-made socket (its __init__ raised)
        # still closes, finalizes and prints without AttributeError.
        _closed = True
        _fd = -1
        _family, _type, _proto = _socket_mod.AF_INET, _socket_mod.SOCK_STREAM, 0
        _timeout = None
        _sys = client
        _io_refs = 0
        _close_pending = False
        _inheritable = False
        _mirror = None                 # the real descriptor fileno() hands out (shimfd)
        _selectors = 0                 # how many of the shim's selectors it is registered in
        _fd_nonblock = False           # O_NONBLOCK in the node (timeout 0, or os.set_blocking)

        def __new__(cls, family=-1, type=-1, proto=-1, fileno=None):
            if fileno is not None:
                if _is_node_fileno(fileno):
                    return object.__new__(cls)      # adopt an emulated descriptor
                return _RealSocket(family, type, proto, fileno)
            if family == _socket_mod.AF_UNIX:
                # Local IPC, not the network.
                return _RealSocket(family, type, proto)
            return object.__new__(cls)

        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
            if fileno is not None:
                if fileno >= EMU_FD_BASE:
                    self._init_from_fd(fileno - EMU_FD_BASE, family, type, proto)
                else:
                    # A mirror's number: the socket stays its owner's; this is a
                    # second descriptor for it (Emulation note: CPython would share one).
                    owner = socket_of_real(fileno)
                    if owner is None:
                        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
                    self._init_from_fd(client.call("dup", owner._fd), family, type, proto)
                return
            family = _socket_mod.AF_INET if family == -1 else family
            type = _socket_mod.SOCK_STREAM if type == -1 else type
            proto = 0 if proto == -1 else proto
            super().__init__(family, type, proto, node=client)
            self._set_kind(family, type, proto)
            if type & _socket_mod.SOCK_NONBLOCK:
                self._timeout = 0.0        # the kernel made it non-blocking already
                self._fd_nonblock = True

        def _init_from_fd(self, fd, family, type, proto):
            """socket(fileno=...): take over a descriptor of the node (as CPython,
            asking the kernel for what was not given)."""
            self._sys, self._fd, self._closed, self._timeout = client, fd, False, None
            sol = _socket_mod.SOL_SOCKET
            try:
                if family == -1:
                    family = client.call("getsockopt", fd, sol, _socket_mod.SO_DOMAIN)
                if type == -1:
                    type = client.call("getsockopt", fd, sol, _socket_mod.SO_TYPE)
                if proto == -1:
                    proto = client.call("getsockopt", fd, sol, _socket_mod.SO_PROTOCOL)
            except OSError:
                self._closed = True
                raise
            self._set_kind(family, type, proto)
            default = _socket_mod.getdefaulttimeout()
            if default is not None:
                self.settimeout(default)

        def _set_kind(self, family, type, proto):
            self._family = _as_enum(_socket_mod.AddressFamily, family)
            self._type = _as_enum(_socket_mod.SocketKind,
                                  type & ~(_socket_mod.SOCK_NONBLOCK | _socket_mod.SOCK_CLOEXEC))
            self._proto = proto

        # -- what CPython's socket.socket adds to _socket.socket
        family = property(lambda self: self._family, doc="the socket family")
        type = property(lambda self: self._type, doc="the socket type")
        proto = property(lambda self: self._proto, doc="the socket protocol")
        timeout = property(lambda self: self._timeout, doc="the socket timeout")

        def fileno(self):
            """A real descriptor of this process, readable and writable when the
            node socket is (see emu.client.shimfd), made on the first call."""
            if self._closed:
                return -1
            m = self._mirror
            if m is None:
                if _cannot_wait():
                    return EMU_FD_BASE + self._fd
                try:
                    m = watcher.adopt(self)
                except OSError:
                    return EMU_FD_BASE + self._fd
            return m.fd

        def _wait_fileno(self):
            """The number the shim's select/poll/selectors wait on (in the node)."""
            return -1 if self._closed else EMU_FD_BASE + self._fd

        def __repr__(self):
            closed = self._closed
            fd = -1 if closed else self._mirror.fd if self._mirror is not None else \
                EMU_FD_BASE + self._fd
            s = "<socket.socket%s fd=%i, family=%s, type=%s, proto=%i" % (
                " [closed]" if closed else "", fd, self.family, self.type, self.proto)
            if not closed and not _cannot_wait():
                try:
                    laddr = self.getsockname()
                    if laddr:
                        s += ", laddr=%s" % str(laddr)
                except OSError:
                    pass
                try:
                    raddr = self.getpeername()
                    if raddr:
                        s += ", raddr=%s" % str(raddr)
                except OSError:
                    pass
            return s + ">"

        def __getstate__(self):
            raise TypeError(f"cannot pickle {self.__class__.__name__!r} object")

        # -- addresses: lab names resolve for AF_INET (AF_PACKET's are (ifname, proto, ...))
        def _address(self, address):
            if self._family == _socket_mod.AF_INET:
                return binding.resolver.address(address)
            return address

        def bind(self, address):
            super().bind(self._address(address))

        def connect(self, address):
            super().connect(self._address(address))

        def connect_ex(self, address):
            try:
                self.connect(address)
            except TimeoutError:
                return errno.EAGAIN
            except OSError as e:
                if e.errno is None:
                    raise
                return e.errno
            return 0

        def sendto(self, data, *args):
            if len(args) == 1:
                return super().sendto(data, self._address(args[0]))
            if len(args) != 2:
                raise TypeError("sendto() takes 2 or 3 arguments (%d given)" % (len(args) + 1))
            flags, address = args
            return super().sendto(data, flags, self._address(address))

        def recv_into(self, buffer, nbytes=0, flags=0):
            return self.recvfrom_into(buffer, nbytes, flags)[0]

        def recvfrom_into(self, buffer, nbytes=0, flags=0):
            view = memoryview(buffer).cast("B")
            if nbytes < 0:
                raise ValueError("negative buffersize in recvfrom_into")
            if nbytes > len(view):
                raise ValueError("nbytes is greater than the length of the buffer")
            nbytes = nbytes or len(view)
            data, addr = self.recvfrom(nbytes, flags)
            view[:len(data)] = data
            return len(data), addr

        def sendall(self, data, flags=0):
            # A stream send may take only part of the data, as in Linux.
            view = memoryview(data).cast("B")
            while view:
                view = view[self.send(view, flags):]

        def settimeout(self, value):
            if value is not None:
                value = float(value)          # CPython keeps seconds as a float
                if value != value:
                    raise ValueError("Invalid value NaN (not a number)")
            nonblock = value == 0
            base_sets_it = nonblock != (self._timeout == 0)
            super().settimeout(value)
            # As CPython's, it sets O_NONBLOCK even when only os.set_blocking changed it.
            # Emulation note: a timeout leaves the descriptor blocking (the node's call
            # waits with the timeout), where CPython makes it non-blocking and polls.
            if not base_sets_it and self._fd_nonblock != nonblock and not self._closed:
                self._sys.call("setblocking", self._fd, nonblock)
            self._fd_nonblock = nonblock

        def setsockopt(self, level, optname, value, optlen=None):
            if value is None:
                if optlen is None:
                    raise TypeError("setsockopt() takes 3 or 4 arguments; None needs optlen")
                # setsockopt(level, opt, None, optlen): a NULL optval, as for AF_ALG.
                raise OSError(errno.EFAULT, os.strerror(errno.EFAULT))
            if isinstance(value, bool):
                value = int(value)
            super().setsockopt(level, optname, value)

        # -- connections
        def listen(self, backlog=128):
            self._call("listen", max(0, int(backlog)))

        def _accept(self):
            """(descriptor, address) of the next connection, as _socket.socket._accept."""
            fd, addr = self._call("accept", 0, blocking=True)
            return EMU_FD_BASE + fd, tuple(addr)

        def accept(self):
            fd, addr = self._call("accept", 0, blocking=True)
            return self._adopt(fd), tuple(addr)

        def _adopt(self, fd):
            """A socket object for a descriptor the kernel made (accept)."""
            conn = object.__new__(type(self))
            conn._sys, conn._fd, conn._closed, conn._timeout = self._sys, fd, False, None
            conn._family, conn._type, conn._proto = self._family, self._type, self._proto
            # As in CPython: blocking unless a default timeout is set.
            conn.settimeout(_socket_mod.getdefaulttimeout())
            return conn

        # -- descriptors
        def dup(self):
            fd = self._call("dup")
            sock = type(self)(self._family, self._type, self._proto, fileno=EMU_FD_BASE + fd)
            sock.settimeout(self.gettimeout())
            return sock

        def detach(self):
            """Give up the descriptor without closing it (socket(fileno=...) takes it back)."""
            if self._closed:
                return -1
            fd = EMU_FD_BASE + self._fd
            watcher.drop(self)
            self._closed = True
            return fd

        def get_inheritable(self):
            if self._closed:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            return self._inheritable

        def set_inheritable(self, inheritable):
            """Emulation note: the flag is kept, but a child process is a new task
            of the node and inherits no emulated descriptors either way."""
            if self._closed:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            self._inheritable = bool(inheritable)

        # -- messages with ancillary data
        def sendmsg(self, buffers, ancdata=(), flags=0, address=None):
            data = _buffer_bytes(buffers)
            control = []
            for item in ancdata:
                try:
                    level, kind, cdata = item
                    control.append([int(level), int(kind), bytes(memoryview(cdata).cast("B"))])
                except (TypeError, ValueError):
                    raise TypeError("[sendmsg() ancillary data items]() argument must be "
                                    "sequence of length 3, not %s" % item.__class__.__name__) from None
            if address is not None:
                address = list(self._address(address))
            if not control:
                if address is None:
                    return self.send(data, flags)
                return super().sendto(data, flags, address)
            return self._call("sendmsg", data, flags, address, control, blocking=True)

        def sendmsg_afalg(self, msg=(), *, op, iv=None, assoclen=None, flags=0):
            # Linux: ALG control messages mean nothing to an inet socket, which
            # skips levels that are not its own; the data goes out as sent.
            return self.sendmsg(msg, (), flags)

        def recvmsg(self, bufsize, ancbufsize=0, flags=0):
            if bufsize < 0:
                raise ValueError("negative buffer size in recvmsg()")
            if ancbufsize < 0:
                raise ValueError("negative buffer size in recvmsg()")
            data, addr, msg_flags, control = self._call("recvmsg", bufsize, flags, ancbufsize,
                                                        blocking=True)
            ancdata = [(level, kind, cdata) for level, kind, cdata in control]
            return data, ancdata, msg_flags, tuple(addr) if addr is not None else None

        def recvmsg_into(self, buffers, ancbufsize=0, flags=0):
            views = [memoryview(b).cast("B") for b in buffers]
            data, ancdata, msg_flags, addr = self.recvmsg(sum(len(v) for v in views),
                                                          ancbufsize, flags)
            pos = 0
            for v in views:
                chunk = data[pos:pos + len(v)]
                v[:len(chunk)] = chunk
                pos += len(chunk)
                if pos >= len(data):
                    break
            return len(data), ancdata, msg_flags, addr

        # -- sendfile: the node's kernel cannot read the program's files, so
        # it is always send() in blocks (CPython's own fallback).
        _check_sendfile_params = _RealSocket._check_sendfile_params
        _sendfile_use_send = _RealSocket._sendfile_use_send

        def _sendfile_use_sendfile(self, file, offset=0, count=None):
            raise _socket_mod._GiveupOnSendfile("os.sendfile() needs a real descriptor")

        def sendfile(self, file, offset=0, count=None):
            return self._sendfile_use_send(file, offset, count)

        # -- files and closing. makefile() is CPython's own (SocketIO over
        # recv_into/send) and, as in CPython, close() leaves the socket open
        # until the files made from it are closed too.
        def makefile(self, mode="r", buffering=None, *, encoding=None, errors=None, newline=None):
            return _RealSocket.makefile(self, mode, buffering, encoding=encoding, errors=errors,
                                        newline=newline)

        def _decref_socketios(self):
            if self._io_refs > 0:
                self._io_refs -= 1
            if self._close_pending and self._io_refs <= 0:
                self._real_close()

        def close(self):
            if self._io_refs > 0:
                self._close_pending = True
                return
            self._real_close()

        def _real_close(self):
            if self._closed:
                return
            self._closed = True
            watcher.drop(self)
            if _cannot_wait():
                client.call_nowait("close", self._fd)
                return
            try:
                client.call("close", self._fd)
            except OSError:
                pass

        def __del__(self):
            # Like Python's own sockets: dropping the last reference closes it.
            # Without waiting: a finalizer may run on the reply reader thread.
            if not self._closed:
                self._closed = True
                watcher.drop(self)
                client.call_nowait("close", self._fd)

    # Calls after which the socket's readiness may have changed by the process's
    # own doing: its mirror (if fileno() made one) is brought up to date.
    for name in ("recv", "recvfrom", "recv_into", "recvfrom_into", "recvmsg", "recvmsg_into",
                 "send", "sendto", "sendall", "sendmsg", "sendfile", "accept", "_accept",
                 "sendmmsg", "recvmmsg"):
        setattr(socket, name, refreshing(getattr(socket, name), lazy=True))
    for name in ("connect", "connect_ex", "listen", "shutdown", "getsockopt"):
        setattr(socket, name, refreshing(getattr(socket, name), lazy=False))
    socket.__module__ = "socket"
    socket.__qualname__ = "socket"
    # Named as CPython names them (frameworks read __slots__ when they subclass);
    # set after the class is made, so it creates no slots here.
    socket.__slots__ = ("__weakref__", "_io_refs", "_closed")
    return socket


def fromfd(fd, family, type, proto=0):
    """socket.fromfd for emulated descriptors too (a dup in the node's kernel)."""
    if isinstance(fd, int) and fd < EMU_FD_BASE and fd in BY_REAL:
        return _socket_mod.socket(family, type, proto, fileno=fd)     # a dup already
    if isinstance(fd, int) and fd >= EMU_FD_BASE:
        sock = _socket_mod.socket(family, type, proto, fileno=fd)
        try:
            return sock.dup()
        finally:
            sock.detach()
    return _socket_mod.socket(family, type, proto, os.dup(fd))
