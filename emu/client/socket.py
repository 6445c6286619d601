"""A socket.socket look-alike whose kernel is an emu node.

    from emu.client.socket import socket
    s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP, node="ipc:///tmp/emu-0/lab-x/h1.sys")

Methods, timeouts and exceptions follow Python's socket.socket: a timeout
raises TimeoutError (socket.timeout), errors are OSError subclasses chosen
by errno (ConnectionRefusedError, ...).
"""
import socket as _pysocket

from .hotcalls import send_each
from .rpc import SyscallClient

AF_INET = _pysocket.AF_INET
SOCK_STREAM = _pysocket.SOCK_STREAM
SOCK_DGRAM = _pysocket.SOCK_DGRAM
SOCK_RAW = _pysocket.SOCK_RAW
IPPROTO_ICMP = _pysocket.IPPROTO_ICMP
IPPROTO_UDP = _pysocket.IPPROTO_UDP
IPPROTO_TCP = _pysocket.IPPROTO_TCP

MSG_DONTWAIT = 0x40
SEND_CHUNK = 1 << 20       # bytes per stream send() call

_clients = {}


def _client(endpoint):
    """One syscall connection (one task) per node endpoint per process."""
    c = _clients.get(endpoint)
    if c is None:
        from . import vtime
        # A program of a virtual-time lab (a tool run by vtool): its own
        # node's calls go through the shim's one connection, whose threads
        # take turns with the lab (vsched.py).
        own = vtime.client_for(endpoint)
        c = _clients[endpoint] = own if own is not None else SyscallClient(endpoint)
    return c


def _buffer(data):
    """A bytes-like object as bytes or a flat byte view (no copy)."""
    if type(data) is bytes:
        return data
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


class socket:
    """An emulated socket; the descriptor lives in the node's kernel."""

    def __init__(self, family=AF_INET, type=SOCK_STREAM, proto=0, *, node, _fd=None):
        self._sys = _client(node) if isinstance(node, str) else node
        self._family = family
        self._type = type
        self._proto = proto
        self._timeout = None
        self._closed = True          # until the kernel gave a descriptor
        if _fd is None:
            self._fd = self._sys.call("socket", int(family), int(type), int(proto))
            self._closed = False
            self.settimeout(_pysocket.getdefaulttimeout())
        else:
            self._fd = _fd
            self._closed = False

    # Read-only, as socket.socket's (class-level descriptors frameworks look up).
    family = property(lambda self: self._family, doc="the socket family")
    type = property(lambda self: self._type, doc="the socket type")
    proto = property(lambda self: self._proto, doc="the socket protocol")

    # -- helpers
    def _call(self, name, *args, blocking=False):
        if self._closed:
            raise OSError(9, "Bad file descriptor")
        if blocking:
            return self._sys.call(name, self._fd, *args, timeout=self._timeout)
        return self._sys.call(name, self._fd, *args)

    def fileno(self):
        return -1 if self._closed else self._fd

    def settimeout(self, value):
        if value is not None and value < 0:
            raise ValueError("Timeout value out of range")
        was_nonblocking = self._timeout == 0
        self._timeout = value
        if (value == 0) != was_nonblocking:
            self._sys.call("setblocking", self._fd, value == 0)

    def gettimeout(self):
        return self._timeout

    def setblocking(self, flag):
        self.settimeout(None if flag else 0.0)

    def getblocking(self):
        return self._timeout != 0.0

    # -- the calls
    def bind(self, address):
        self._call("bind", list(address))

    def connect(self, address):
        self._call("connect", list(address), blocking=True)

    def _address(self, address):
        """An address as the node takes it (the shim's class resolves lab names here)."""
        return address

    # The hot calls go through the client's binary sendto/recvfrom (hotcalls.HotCalls).
    def sendto(self, data, *args):
        flags, address = (0, args[0]) if len(args) == 1 else args
        if self._closed:
            raise OSError(9, "Bad file descriptor")
        return self._sys.sendto(self._fd, _buffer(data), flags, address, self._timeout)

    def send(self, data, flags=0):
        if self._closed:
            raise OSError(9, "Bad file descriptor")
        data = _buffer(data)
        # A stream send may take part of the data, as in Linux: hand the
        # kernel at most SEND_CHUNK at a time (one system call's message).
        if self.type == SOCK_STREAM and len(data) > SEND_CHUNK:
            data = memoryview(data)[:SEND_CHUNK]
        return self._sys.sendto(self._fd, data, flags, None, self._timeout)

    def sendall(self, data, flags=0):
        """Send everything (a stream send may take only part, as in Linux)."""
        view = memoryview(_buffer(data))
        while view:
            n = self.send(view, flags)
            view = view[n:]

    def connect_ex(self, address):
        try:
            self.connect(address)
            return 0
        except TimeoutError:
            return 11
        except OSError as e:
            return e.errno

    def listen(self, backlog=128):
        self._call("listen", int(backlog))

    def accept(self):
        """A new connection: (socket, address), as socket.socket.accept returns."""
        fd, addr = self._call("accept", 0, blocking=True)
        conn = socket(self.family, self.type, self.proto, node=self._sys, _fd=fd)
        # Like CPython: the new socket is blocking unless a default timeout is set.
        conn.settimeout(_pysocket.getdefaulttimeout())
        return conn, tuple(addr)

    def recv_into(self, buffer, nbytes=0, flags=0):
        n = nbytes or len(buffer)
        data = self.recv(n, flags)
        buffer[:len(data)] = data
        return len(data)

    def recvfrom(self, bufsize, flags=0):
        if self._closed:
            raise OSError(9, "Bad file descriptor")
        data, addr, _ = self._sys.recvfrom(self._fd, bufsize, flags, self._timeout)
        return data, tuple(addr) if addr is not None else None

    def recv(self, bufsize, flags=0):
        return self.recvfrom(bufsize, flags)[0]

    # The batch forms, as Linux has them (Python's socket module has neither).
    def sendmmsg(self, msgs, flags=0):
        """sendmmsg(2): msgs is a list of (data, address or None); returns how
        many were sent. As in Linux, an error on the first raises it, an error
        on a later one ends the batch (the count so far is returned)."""
        if self._closed:
            raise OSError(9, "Bad file descriptor")
        batch = getattr(self._sys, "sendmmsg", None)
        out = []
        last = resolved = None
        for data, address in msgs:
            if address is not None and address is not last:
                last, resolved = address, self._address(address)
            out.append((_buffer(data), None if address is None else resolved))
        msgs = out
        if batch is not None and self.type != SOCK_STREAM:
            return batch(self._fd, msgs, flags, self._timeout)
        return send_each(lambda data, address: self.send(data, flags) if address is None
                         else self.sendto(data, flags, address), msgs)

    def recvmmsg(self, vlen, bufsize, flags=0):
        """recvmmsg(2) with MSG_WAITFORONE: waits (as recvfrom) for the first
        datagram, then takes up to vlen in all of those already queued;
        returns [(data, address)]. The ones the client read ahead are taken
        in one step (hotcalls.HotCalls.recv_ahead), the node asked only when none
        are left here."""
        if vlen <= 0:
            return []                    # Linux: vlen 0 returns 0 at once
        out = [self.recvfrom(bufsize, flags)]
        ahead = getattr(self._sys, "recv_ahead", None)
        while len(out) < vlen:
            if ahead is not None and not self._closed:
                recs = ahead(self._fd, vlen - len(out), bufsize, flags)
                if recs:
                    out.extend((d, tuple(a) if a is not None else None) for d, a, _ in recs)
                    continue
            try:
                out.append(self.recvfrom(bufsize, flags | MSG_DONTWAIT))
            except (BlockingIOError, TimeoutError):
                break
        return out

    def setsockopt(self, level, optname, value):
        self._call("setsockopt", level, optname, value)

    def getsockopt(self, level, optname, buflen=0):
        v = self._call("getsockopt", level, optname, buflen)
        if buflen and isinstance(v, int):
            return v.to_bytes(4, "little", signed=True)[:buflen]
        return v

    def getsockname(self):
        if self._closed:
            raise OSError(9, "Bad file descriptor")
        return tuple(self._sys.getname(self._fd, 0))

    def getpeername(self):
        if self._closed:
            raise OSError(9, "Bad file descriptor")
        return tuple(self._sys.getname(self._fd, 1))

    def shutdown(self, how):
        self._call("shutdown", how)

    def close(self):
        if not self._closed:
            self._closed = True
            try:
                self._sys.call("close", self._fd)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<emu.socket fd=%d family=%s type=%s proto=%d>" % (
            self.fileno(), self.family, self.type, self.proto)
