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

    def __init__(self, endpoint, timeout=10.0):
        self.endpoint = endpoint
        self.timeout = timeout
        self.lock = threading.Lock()
        self.sock = None
        self.pid = os.getpid()

    def _socket(self):
        if self.sock is None or self.pid != os.getpid():
            s = _context().socket(zmq.DEALER)
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
    """A task's connection to a node's syscall socket (one per process).

    The node sees one task per connection; when this process exits the
    connection closes and the node closes the task's descriptors. Calls are
    msgpack maps with an id; a call that blocks in the node (recvfrom, poll)
    is answered when it completes. Emulation note: one call at a time per
    connection; threads that need concurrent blocking calls each make their own.
    """

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.sock = None
        self.pid = None
        self.unpacker = None

    def _socket(self):
        if self.sock is None or self.pid != os.getpid():
            s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                s.connect(self.path)
            except OSError as e:
                s.close()
                raise NodeUnreachable(e.errno or 111, "node at %s: %s" % (self.path, e.strerror))
            self.sock = s
            self.pid = os.getpid()
            self.unpacker = msgpack.Unpacker(raw=False)
        return self.sock

    def call(self, name, *args, timeout=None, liveness=5.0):
        """Run a system call in the node; timeout (seconds) bounds a blocking call."""
        rid = next(self.ids)
        req = {"id": rid, "call": name, "args": list(args)}
        if timeout is not None:
            req["timeout"] = timeout
        with self.lock:
            s = self._socket()
            try:
                s.sendall(msgpack.packb(req, use_bin_type=True))
                reply = self._read(s, rid, None if timeout is None else timeout + liveness)
            except (OSError, EOFError) as e:
                self.close()
                if isinstance(e, NodeUnreachable):
                    raise
                raise NodeUnreachable(getattr(e, "errno", None) or 104,
                                      "node at %s went away during %s" % (self.path, name))
        if "ok" in reply:
            return reply["ok"]
        if reply.get("timeout"):
            raise TimeoutError("timed out")
        err = reply.get("err", 22)
        raise OSError(err, os.strerror(err))

    def _read(self, s, rid, wait):
        s.settimeout(wait)
        while True:
            for reply in self.unpacker:
                if reply.get("id") == rid:
                    return reply
            try:
                data = s.recv(262144)
            except _socket.timeout:
                raise NodeUnreachable(110, "node at %s did not answer" % self.path)
            if not data:
                raise EOFError()
            self.unpacker.feed(data)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
