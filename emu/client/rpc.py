"""Request/response over a node's ZeroMQ endpoints (control and syscalls).

Errors come back as the same OSError subclasses Python's own socket module
raises: OSError(errno, msg) picks ConnectionRefusedError, TimeoutError, ...
"""
import itertools
import os
import socket as _socket
import threading

import msgpack
import zmq


class NodeUnreachable(OSError):
    """The node did not answer (it is down, or not started yet)."""


def _context():
    return zmq.Context.instance()


class ControlClient:
    """A connection to one node's control endpoint."""

    def __init__(self, endpoint, timeout=10.0, ctx=None):
        self.endpoint = endpoint
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


class SyscallClient:
    """A process's connection(s) to a node's syscall socket.

    Each thread gets its own connection, and all of a process's connections
    join one task (one descriptor table) by sending the process's key first:
    one thread can block in recv() while another sends on the same socket.
    When the process exits its connections close and the node closes the
    task's descriptors.
    """

    def __init__(self, path):
        self.path = path
        self.local = threading.local()
        self.ids = itertools.count(1)
        self.pid = None
        self.key = None
        self.all = []

    def _conn(self):
        if self.pid != os.getpid():
            # A new process (fork): a task of its own, as Linux gives a child... a copy.
            self.pid = os.getpid()
            self.key = "%d-%s" % (self.pid, os.urandom(6).hex())
            self.local = threading.local()
            self.all = []
        c = getattr(self.local, "conn", None)
        if c is None:
            s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                s.connect(self.path)
            except OSError as e:
                s.close()
                raise NodeUnreachable(e.errno or 111, "node at %s: %s" % (self.path, e.strerror)) from None
            c = self.local.conn = (s, msgpack.Unpacker(raw=False))
            self.all.append(s)
            self._roundtrip(c, {"id": 0, "call": "_attach", "args": [self.key]}, 0, 10.0)
        return c

    def call(self, name, *args, timeout=None, liveness=5.0):
        """Run a system call in the node; timeout (seconds) bounds a blocking call."""
        rid = next(self.ids)
        req = {"id": rid, "call": name, "args": list(args)}
        if timeout is not None:
            req["timeout"] = timeout
        c = self._conn()
        try:
            reply = self._roundtrip(c, req, rid, None if timeout is None else timeout + liveness)
        except (OSError, EOFError) as e:
            self._drop(c)
            if isinstance(e, NodeUnreachable):
                raise
            raise NodeUnreachable(getattr(e, "errno", None) or 104,
                                  "node at %s went away during %s" % (self.path, name)) from None
        if "ok" in reply:
            return reply["ok"]
        if reply.get("timeout"):
            raise TimeoutError("timed out")
        err = reply.get("err", 22)
        raise OSError(err, os.strerror(err))

    def _roundtrip(self, c, req, rid, wait):
        s, unpacker = c
        s.sendall(msgpack.packb(req, use_bin_type=True))
        s.settimeout(wait)
        while True:
            for reply in unpacker:
                if reply.get("id") == rid:
                    return reply
            try:
                data = s.recv(262144)
            except _socket.timeout:
                raise NodeUnreachable(110, "node at %s did not answer" % self.path) from None
            if not data:
                raise EOFError()
            unpacker.feed(data)

    def _drop(self, c):
        try:
            c[0].close()
        except OSError:
            pass
        if getattr(self.local, "conn", None) is c:
            self.local.conn = None

    def close(self):
        for s in self.all:
            try:
                s.close()
            except OSError:
                pass
        self.all = []
        self.local = threading.local()
