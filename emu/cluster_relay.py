"""A node's syscall socket reached from another host (emu/cluster.py).

A program attached to a node (`emu exec`, `emu shell`, the Python API's
sockets, lab.node(..).run()) talks to the node's kernel over its syscall
socket: a Unix socket in the run directory of the node's machine. On another
host that path does not exist, so each machine's actor runs a relay
(SysRelay): a ZeroMQ ROUTER on tcp:// with the lab's CURVE keys, checked by
ZAP as the wires are (wire/curve.py), that opens the node's Unix socket for
each stream a client asks for and pumps bytes both ways. Nothing is opened
without the lab's key: no unauthenticated port.

On the program's side, the process runs a ClientRelay thread that listens on
a Unix socket of its own (in a 0700 directory) for each remote node and
carries every connection made to it as one stream over one DEALER to the
node's machine. The program then uses that local path as it would the node's:
the syscall protocol is unchanged, and so are exit statuses, signals and
Ctrl-C (the program runs here). What differs: the node's shared epoch page
(sysproto.py) is not mapped across hosts, so a send there is a round trip
(no send credit) and every call pays the network's round trip.

Which path a client takes: the node's own when its machine is this host
(the machine's token file, written in its run directory, is readable here
and matches lab.json), else the relay's. EMU_CLUSTER_REMOTE=1 treats every
cluster node as on another host: the tests use it to take the relay path on
one machine.

Frames, both ways: [stream id (8 bytes), op, payload]; ops: o (open the node
socket named by payload), d (bytes), c (closed; payload an errno, or
empty), p (a client relay's keep-alive, stream 0). A client relay that is
not heard from for SILENT seconds is gone, and its streams are closed, so
a node never keeps the tasks of a program that vanished.
"""
import atexit
import functools
import itertools
import os
import re
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time

import zmq

from .wire.curve import (HANDSHAKE_FAILED, RX_EVENTS, ZapHandler, curve_client, curve_server,
                         monitor_events)

FORCE_ENV = "EMU_CLUSTER_REMOTE"
TOKEN_FILE = "machine"
DOMAIN = "sysrelay"
OPEN, DATA, CLOSE, PING = b"o", b"d", b"c", b"p"
CID = struct.Struct(">Q")
CHUNK = 262144
PING_EVERY = 2.0             # seconds between a client relay's keep-alives
SILENT = 15.0                # a client relay not heard from for this long is gone
BATCH = 256                  # messages taken from a ZeroMQ socket per turn
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.sys")


# --------------------------------------------------------------- which path


def write_token(run_dir):
    """A machine's token in its run directory (mode 0600): who can read it
    and finds it equal to lab.json's shares the machine's files."""
    token = os.urandom(16).hex()
    fd = os.open(os.path.join(run_dir, TOKEN_FILE), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return token


def forced_remote():
    return os.environ.get(FORCE_ENV) == "1"


def on_this_host(info):
    """Whether a node's machine is this host (a node of a lab without cluster: yes)."""
    token = info.get("machine_token")
    if token is None:
        return True
    if forced_remote():
        return False
    return _token_here(os.path.dirname(info.get("sys", "")), token)


@functools.lru_cache(maxsize=64)
def _token_here(run_dir, token):
    try:
        with open(os.path.join(run_dir, TOKEN_FILE)) as f:
            return f.read().strip() == token
    except OSError:
        return False


def node_sys(info):
    """The Unix socket a program here uses for the node of info (lab.json's
    entry): the node's own, or this process's relay to its machine."""
    if not info.get("relay") or on_this_host(info):
        return info["sys"]
    return client_relay().path(info["relay"], info["curve"], os.path.basename(info["sys"]))


# --------------------------------------------------------------- streams


class _Stream:
    """One Unix stream socket, non-blocking, and what waits to be written to it."""

    __slots__ = ("sock", "fd", "out", "key")

    def __init__(self, sock, key):
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.out = bytearray()
        self.key = key

    def write(self, data):
        """Write or queue data; OSError when the other end is gone."""
        if not self.out:
            try:
                n = self.sock.send(data, socket.MSG_NOSIGNAL)
            except BlockingIOError:
                n = 0
            if n == len(data):
                return
            data = memoryview(data)[n:]
        self.out += data

    def flush(self):
        try:
            n = self.sock.send(self.out, socket.MSG_NOSIGNAL)
        except BlockingIOError:
            return
        del self.out[:n]

    def read(self):
        """Bytes read, b"" at the end (or on an error), None if nothing now."""
        try:
            return self.sock.recv(CHUNK)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _watch(poller, s):
    poller.register(s.fd, zmq.POLLIN | (zmq.POLLOUT if s.out else 0))


# --------------------------------------------------------------- the machine's side


class SysRelay:
    """The machine's relay (a thread of its MachineHost): streams to the
    syscall sockets in run_dir for the holders of the lab's key."""

    def __init__(self, run_dir, ip, keys, nodes=None):
        self.run_dir = run_dir
        self.nodes = nodes                   # the machine's node names (a live view), or None: any
        self.ctx = zmq.Context()
        # ZAP first: without a handler ZeroMQ lets any CURVE key in.
        self.zap = ZapHandler(self.ctx, keys[0])
        s = self.sock = self.ctx.socket(zmq.ROUTER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)          # a stream's bytes are never dropped
        s.setsockopt(zmq.RCVHWM, 0)
        s.setsockopt(zmq.ROUTER_MANDATORY, 1)
        s.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 6000)
        curve_server(s, keys, DOMAIN)
        # A refused handshake (another key, or not this lab's server key) is counted.
        self.mon = s.get_monitor_socket(RX_EVENTS)
        self.auth_failures = 0
        s.bind("tcp://%s:*" % ip)
        self.endpoint = s.getsockopt_string(zmq.LAST_ENDPOINT)
        self.streams: dict = {}              # (client id, stream id) -> _Stream
        self.by_fd: dict = {}
        self.seen: dict = {}                 # client id -> when last heard
        self.opened = 0
        self.stop_r, self.stop_w = os.pipe()
        self.thread = threading.Thread(target=self._run, daemon=True, name="emu-sysrelay")
        self.thread.start()

    def stats(self):
        return {"endpoint": self.endpoint, "opened": self.opened, "open": len(self.streams),
                "clients": len(self.seen), "auth_failures": self.auth_failures}

    def close(self):
        if self.stop_w < 0:
            return
        os.write(self.stop_w, b"x")
        self.thread.join(5)
        os.close(self.stop_w)
        self.stop_w = -1

    def _run(self):
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.zap.sock, zmq.POLLIN)
        poller.register(self.mon, zmq.POLLIN)
        poller.register(self.stop_r, zmq.POLLIN)
        sweep = time.monotonic() + 1.0
        try:
            while True:
                for what, ev in poller.poll(1000):
                    if what is self.sock:
                        self._from_clients(poller)
                    elif what is self.zap.sock:
                        self.zap.handle()
                    elif what is self.mon:
                        self.auth_failures += len(monitor_events(self.mon))
                    elif what == self.stop_r:
                        return
                    else:
                        self._from_node(poller, what, ev)
                now = time.monotonic()
                if now >= sweep:
                    sweep = now + 1.0
                    for ident in [i for i, t in self.seen.items() if now - t > SILENT]:
                        self._drop_client(poller, ident)
        finally:
            for s in list(self.streams.values()):
                s.close()
            self.streams.clear()
            self.sock.disable_monitor()
            self.mon.close(0)
            self.sock.close(0)
            self.zap.close()
            self.ctx.term()
            os.close(self.stop_r)

    def _send(self, poller, ident, cid, op, payload=b""):
        try:
            self.sock.send_multipart([ident, cid, op, payload])
        except zmq.ZMQError:
            self._drop_client(poller, ident)         # gone (ROUTER_MANDATORY says so)

    def _drop_client(self, poller, ident):
        self.seen.pop(ident, None)
        for key in [k for k in self.streams if k[0] == ident]:
            self._close(poller, key)

    def _close(self, poller, key):
        s = self.streams.pop(key, None)
        if s is not None:
            self.by_fd.pop(s.fd, None)
            poller.unregister(s.fd)
            s.close()

    def _from_clients(self, poller):
        now = time.monotonic()
        for _ in range(BATCH):
            try:
                msg = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(msg) != 4 or len(msg[1]) != CID.size:
                continue
            ident, cid, op, payload = msg
            self.seen[ident] = now
            key = (ident, cid)
            if op == DATA:
                s = self.streams.get(key)
                if s is None:
                    continue                          # closed here; the client was told
                try:
                    s.write(payload)
                except OSError:
                    self._close(poller, key)
                    self._send(poller, ident, cid, CLOSE)
                    continue
                _watch(poller, s)
            elif op == OPEN:
                self._close(poller, key)
                self._open(poller, key, payload)
            elif op == CLOSE:
                self._close(poller, key)

    def _open(self, poller, key, payload):
        ident, cid = key
        name = payload.decode(errors="replace")
        if not _NAME.fullmatch(name) or (self.nodes is not None and name[:-4] not in self.nodes):
            self._send(poller, ident, cid, CLOSE, b"2")       # ENOENT: no such node socket
            return
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.settimeout(2.0)                  # a node's full backlog must not stall the relay
        try:
            u.connect(os.path.join(self.run_dir, name))
        except OSError as e:
            u.close()
            self._send(poller, ident, cid, CLOSE, str(e.errno or 111).encode())
            return
        s = self.streams[key] = _Stream(u, key)
        self.by_fd[s.fd] = s
        self.opened += 1
        _watch(poller, s)

    def _from_node(self, poller, fd, ev):
        s = self.by_fd.get(fd)
        if s is None:
            return
        if ev & zmq.POLLOUT:
            try:
                s.flush()
            except OSError:
                ev |= zmq.POLLERR
        if ev & zmq.POLLIN or ev & zmq.POLLERR:
            data = s.read() if not ev & zmq.POLLERR else b""
            if data is None:
                pass
            elif data:
                self._send(poller, s.key[0], s.key[1], DATA, data)
            else:
                self._close(poller, s.key)
                self._send(poller, s.key[0], s.key[1], CLOSE)
                return
        if s.key in self.streams:
            _watch(poller, s)


# --------------------------------------------------------------- the program's side


class _Dealer:
    """This process's connection to one machine's relay."""

    def __init__(self, ctx, endpoint, keys):
        self.endpoint = endpoint
        self.keys = keys
        s = self.sock = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 500)        # our last closes still leave at exit
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        s.setsockopt(zmq.HEARTBEAT_IVL, 2000)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 6000)
        curve_client(s, keys)
        self.mon = s.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                        | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                        | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        s.connect(endpoint)
        self.streams: set = set()            # stream ids
        self.pinged = 0.0

    def close(self):
        self.sock.disable_monitor()
        self.mon.close(0)
        self.sock.close()


class ClientRelay:
    """This process's end of the relays: a local Unix socket per remote node."""

    def __init__(self):
        self.pid = os.getpid()
        _sweep()
        self.dir = tempfile.mkdtemp(prefix="emu-relay-%d-" % self.pid)     # 0700: only us
        self.ctx = zmq.Context()
        self.lock = threading.Lock()
        self.paths: dict = {}                # (relay endpoint, node socket name) -> local path
        self.todo: list = []                 # listeners for the thread to take
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        self.closing = False
        self.warned: set = set()
        self.thread = threading.Thread(target=self._run, daemon=True, name="emu-relay")
        self.thread.start()

    def path(self, endpoint, keys, name):
        with self.lock:
            p = self.paths.get((endpoint, name))
            if p is not None:
                return p
            safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name[-60:])
            p = os.path.join(self.dir, "%d-%s" % (len(self.paths), safe))
            ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            ls.bind(p)
            ls.listen(256)
            ls.setblocking(False)
            self.todo.append((ls, endpoint, tuple(keys), name))
            self.paths[(endpoint, name)] = p
        os.write(self.wake_w, b"x")
        return p

    def close(self):
        if self.pid != os.getpid() or self.closing:
            return                   # a forked child's copy: the parent's to close
        self.closing = True
        try:
            os.write(self.wake_w, b"x")
        except OSError:
            pass
        self.thread.join(2)
        shutil.rmtree(self.dir, ignore_errors=True)

    # The thread: everything below runs on it alone.

    def _run(self):
        self.poller = zmq.Poller()
        self.poller.register(self.wake_r, zmq.POLLIN)
        self.listeners: dict = {}            # fd -> (socket, endpoint, keys, name)
        self.dealers: dict = {}              # endpoint -> _Dealer
        self.by_sock: dict = {}              # dealer or monitor socket -> _Dealer
        self.streams: dict = {}              # stream id -> (_Stream, _Dealer)
        self.by_fd: dict = {}
        self.ids = itertools.count(1)
        try:
            while not self.closing:
                for what, ev in self.poller.poll(1000):
                    if what == self.wake_r:
                        self._wake()
                    elif what in self.listeners:
                        self._accept(what)
                    elif isinstance(what, int):
                        self._from_program(what, ev)
                    else:
                        d = self.by_sock.get(what)
                        if d is None:
                            continue
                        if what is d.mon:
                            self._monitor(d)
                        else:
                            self._from_relay(d)
                now = time.monotonic()
                for d in list(self.dealers.values()):
                    if now - d.pinged >= PING_EVERY:
                        d.pinged = now
                        d.sock.send_multipart([CID.pack(0), PING, b""])
        finally:
            for sid in list(self.streams):
                self._close(sid, tell=True)
            for d in self.dealers.values():
                d.close()
            for ls, *_ in self.listeners.values():
                ls.close()
            self.ctx.term()

    def _wake(self):
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self.lock:
            todo, self.todo = self.todo, []
        for ls, endpoint, keys, name in todo:
            self.listeners[ls.fileno()] = (ls, endpoint, keys, name)
            self.poller.register(ls.fileno(), zmq.POLLIN)
            self._dealer(endpoint, keys)

    def _dealer(self, endpoint, keys):
        d = self.dealers.get(endpoint)
        if d is None:
            d = self.dealers[endpoint] = _Dealer(self.ctx, endpoint, keys)
            self.by_sock[d.sock] = self.by_sock[d.mon] = d
            self.poller.register(d.sock, zmq.POLLIN)
            self.poller.register(d.mon, zmq.POLLIN)
        return d

    def _accept(self, fd):
        ls, endpoint, keys, name = self.listeners[fd]
        d = self._dealer(endpoint, keys)
        while True:
            try:
                conn, _ = ls.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sid = next(self.ids)
            s = _Stream(conn, sid)
            self.streams[sid] = (s, d)
            self.by_fd[s.fd] = s
            d.streams.add(sid)
            d.sock.send_multipart([CID.pack(sid), OPEN, name.encode()])
            _watch(self.poller, s)

    def _close(self, sid, tell=False):
        got = self.streams.pop(sid, None)
        if got is None:
            return
        s, d = got
        d.streams.discard(sid)
        self.by_fd.pop(s.fd, None)
        self.poller.unregister(s.fd)
        s.close()                            # the program reads the end of its stream
        if tell:
            d.sock.send_multipart([CID.pack(sid), CLOSE, b""])

    def _from_program(self, fd, ev):
        s = self.by_fd.get(fd)
        if s is None:
            return
        d = self.streams[s.key][1]
        if ev & zmq.POLLOUT:
            try:
                s.flush()
            except OSError:
                ev |= zmq.POLLERR
        if ev & (zmq.POLLIN | zmq.POLLERR):
            data = s.read() if not ev & zmq.POLLERR else b""
            if data == b"":
                self._close(s.key, tell=True)
                return
            if data:
                d.sock.send_multipart([CID.pack(s.key), DATA, data])
        _watch(self.poller, s)

    def _from_relay(self, d):
        for _ in range(BATCH):
            try:
                msg = d.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(msg) != 3 or len(msg[0]) != CID.size:
                continue
            sid = CID.unpack(msg[0])[0]
            got = self.streams.get(sid)
            if got is None:
                continue
            s = got[0]
            if msg[1] == DATA:
                try:
                    s.write(msg[2])
                except OSError:
                    self._close(sid, tell=True)
                    continue
                _watch(self.poller, s)
            elif msg[1] == CLOSE:
                self._close(sid)

    def _monitor(self, d):
        events = monitor_events(d.mon)
        if not events:
            return
        if any(e & HANDSHAKE_FAILED for e in events) and d.endpoint not in self.warned:
            self.warned.add(d.endpoint)
            print("emu: the syscall relay at %s refused this lab's key" % d.endpoint,
                  file=sys.stderr, flush=True)
        # The connection, and what was in flight on it, is gone: its streams
        # end (their programs see the node go away). The relay sees the next
        # connection under a new identity, and closes the old one's streams.
        for sid in list(d.streams):
            self._close(sid, tell=True)


def _sweep():
    """Remove the directories of relays whose process ended without cleaning
    up (killed): ours (same owner), named by a PID that no longer runs."""
    tmp = tempfile.gettempdir()
    try:
        names = os.listdir(tmp)
    except OSError:
        return
    for name in names:
        m = re.fullmatch(r"emu-relay-(\d+)-\w+", name)
        if m is None:
            continue
        path = os.path.join(tmp, name)
        try:
            if os.stat(path).st_uid != os.getuid():
                continue
            os.kill(int(m.group(1)), 0)
            continue                     # its process runs
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


_client: dict = {}            # "relay": this process's ClientRelay
_client_lock = threading.Lock()


def client_relay():
    """This process's ClientRelay (a forked child starts its own)."""
    with _client_lock:
        c = _client.get("relay")
        if c is None or c.pid != os.getpid() or not c.thread.is_alive():
            c = _client["relay"] = ClientRelay()
            atexit.register(c.close)
        return c


def close_client_relay():
    """End this process's relay now (before an os._exit, which skips atexit)."""
    c = _client.get("relay")
    if c is not None:
        c.close()
