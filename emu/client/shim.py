"""Bind a process's standard `socket` module to an emu node's kernel.

    from emu.client import shim
    shim.install("/tmp/emu-1000/lab-x/h1.sys", hosts={"h1": "10.0.0.1", ...}, hostname="h1")
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # a socket in h1's kernel

Node.run() and Node.spawn() do this in the process they start, before the
function is unpickled, so code written against the standard library runs on a
node unchanged. What is patched, and how it behaves:

* socket.socket: AF_INET (and any family but AF_UNIX) goes to the node's
  kernel; AF_UNIX stays a real socket (local IPC, not the network), so
  socketpair() and the process's own plumbing keep working.
  isinstance(x, socket.socket) is true for both.
* getaddrinfo, gethostbyname(_ex), gethostbyaddr, gethostname, getfqdn:
  lab node names resolve to their first address, dotted quads to
  themselves, "localhost" to 127.0.0.1; anything else is socket.gaierror
  (there is no DNS in a lab). IPv4 only: the emulated kernel has no IPv6.
  create_connection and create_server work through these (the standard
  library looks them up in the socket module at call time).
* Timeouts: settimeout/setdefaulttimeout as in Python; a timeout raises
  socket.timeout (TimeoutError). accept() gives sockets of the same class;
  makefile() is CPython's own. getsockopt(IPPROTO_TCP, TCP_INFO, buflen)
  returns the bytes of Linux's struct tcp_info (6.x layout, cut to buflen),
  as on Linux; emu's extension: without buflen it returns tcp_info as a dict.
* select.select, select.poll and the selectors classes (DefaultSelector,
  PollSelector, SelectSelector, EpollSelector, and socketserver's) accept
  emulated sockets and wait in the node's `poll` system call. An emulated
  socket's fileno() is a real descriptor kept ready as the node socket is
  (emu.client.shimfd), for what waits on it without these (select.epoll,
  trio, twisted); its number from EMU_FD_BASE up (the node's descriptor +
  EMU_FD_BASE) names it too. Emulation note: a wait on emulated and real
  descriptors at once alternates between the two in POLL_SLICE steps
  (Linux waits on both at once).
* The class is complete (emu.client.shimsock): sendmsg/recvmsg with
  ancillary data, sendfile, dup, detach, fromfd, inheritable flags.

One connection to the node carries every thread's system calls (a reply
finds its caller by request id), so a thread blocked in recvfrom does not
hold up another thread's sendto on the same socket. Descriptors belong to
the process (one task on the node): a forked child starts a new task and
does not share its parent's emulated sockets.
"""
import _thread
import errno
import itertools
import os
import select as _select_mod
import selectors as _selectors_mod
import socket as _socket_mod
import sys
import threading
import time

from .rpc import (
    POST_BYTES, POST_FRAMES, TASK_KEY_PREFIX, EpochPage, HotCalls, NodeUnreachable, Poster, _Conn,
    decode_reply, encode_call, on_virtual_time, read_frame, write_parts,
)
from .. import sysproto as P
from . import vsched, vtime
from .shimfd import Watcher, os_functions, socket_of_real
from .shimsock import EMU_FD_BASE, _SocketMeta, fromfd, make_socket_class
POLL_SLICE = 0.02            # seconds: how often a mixed real/emulated wait looks at each side

# include/uapi/asm-generic/poll.h (the same bits as EPOLL*)
POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
# fs/select.c: what makes a descriptor readable / writable / exceptional for select()
_POLLIN_SET = POLLIN | 0x40 | 0x80 | POLLHUP | POLLERR
_POLLOUT_SET = POLLOUT | 0x100 | 0x200 | POLLERR
_POLLEX_SET = POLLPRI

# The originals, taken when this module is first imported (before any install()).
_RealSocket = _socket_mod.socket
_real_select = _select_mod.select
_real_poll = _select_mod.poll
_REAL_SELECTORS = {n: getattr(_selectors_mod, n) for n in
                   ("DefaultSelector", "SelectSelector", "PollSelector", "EpollSelector")
                   if hasattr(_selectors_mod, n)}
_SOCKET_FUNCS = ("socket", "getaddrinfo", "gethostbyname", "gethostbyname_ex",
                 "gethostbyaddr", "gethostname", "getfqdn")


# ----------------------------------------------------------------- syscalls

class _Signal:
    """A one-shot event on a bare lock, so that it waits on the host's clock:
    in a virtual-time lab the program's threading waits are on the lab's
    (vtime.py), and a call's reply must not be looked for that way."""
    __slots__ = ("lock",)

    def __init__(self):
        self.lock = _thread.allocate_lock()
        self.lock.acquire()

    def set(self):
        try:
            self.lock.release()
        except RuntimeError:
            pass                 # set already

    def wait(self, timeout=None):
        return self.lock.acquire(True, -1 if timeout is None else timeout)


class _Slot:
    __slots__ = ("event", "reply", "t")

    def __init__(self, t=None):
        # A thread that takes turns (vsched.py) waits for its turn, not on an event.
        self.event = _Signal() if t is None else None
        self.reply = None
        self.t = t


class MuxSyscallClient(HotCalls):
    """A process's connection to a node's syscall socket, shared by its threads.

    Same call() (and sendto/recvfrom) as rpc.SyscallClient, but calls from
    different threads are in flight together: a reader thread hands each
    reply to the caller waiting for its id. The node already serves a
    connection's requests concurrently.
    """

    def __init__(self, path):
        self.path = path
        self.virtual = on_virtual_time(path)
        self.ids = itertools.count(1)
        self.lock = threading.Lock()      # guards pending, sock, pid
        self.send_lock = threading.Lock()
        self.pending = {}
        self.sock = None
        self.pid = None
        self.credits = {}
        self.rbufs = {}
        self.epoch_page = None
        self.pend = []            # credited sends held back (see rpc.Poster)
        self.pend_bytes = 0
        self.poster = None

    def _epoch(self):
        page = self.epoch_page
        return 0 if page is None else page.read()

    def _connect(self):
        """(Re)connect: first use, or first use in a forked child (a new task)."""
        with self.lock:
            if self.sock is not None and self.pid == os.getpid():
                return self.sock
            s = _RealSocket(_socket_mod.AF_UNIX, _socket_mod.SOCK_STREAM)
            try:
                s.connect(self.path)
            except OSError as e:
                s.close()
                raise NodeUnreachable(e.errno or errno.ECONNREFUSED,
                                      "node at %s: %s" % (self.path, e.strerror)) from None
            self._attach(s)
            self.sock, self.pid, self.pending, self.credits, self.rbufs = s, os.getpid(), {}, {}, {}
            self.pend, self.pend_bytes = [], 0
            self.epoch_page = EpochPage(self.path)    # (a restarted node has a new one)
            threading.Thread(target=self._read_loop, args=(s,), daemon=True,
                             name="emu-syscall-reader").start()
            return s

    def _attach(self, s):
        """Name this process's task (pid-random), as rpc.SyscallClient does, so the
        node can tell `ss -p` which pid holds each socket. Done before the reader runs."""
        key = "%s%d-%s" % (TASK_KEY_PREFIX[0], os.getpid(), os.urandom(6).hex())
        c = _Conn(s)
        try:
            s.settimeout(10.0)
            c.wait = 10.0
            s.sendall(encode_call(0, "_attach", [key]))
            read_frame(c, 10.0)
        except (OSError, EOFError) as e:
            s.close()
            if isinstance(e, NodeUnreachable):
                raise
            raise NodeUnreachable(getattr(e, "errno", None) or errno.ECONNRESET,
                                  "node at %s: %s" % (self.path, e)) from None
        finally:
            if s.fileno() >= 0:
                s.settimeout(None)

    def _read_loop(self, s):
        c = _Conn(s)
        c.wait = None
        woken = []                       # threads answered in this batch (vsched)
        try:
            while True:
                kind, rid, body = read_frame(c, None)
                if kind == P.R_EOB:
                    # The node's batch of replies is over: their threads take
                    # their turns in its order (and the node counts us running).
                    if vsched.SCHED[0] is not None:
                        vsched.SCHED[0].batch(woken)
                    woken = []
                    continue
                with self.lock:
                    slot = self.pending.pop(rid, None)
                if slot is not None:
                    slot.reply = (kind, body)
                    if slot.t is None:
                        slot.event.set()
                    else:
                        woken.append(slot.t)
        except (OSError, EOFError):
            pass
        with self.lock:
            if self.sock is s:
                self.sock = None
            pending, self.pending = self.pending, {}
        turns = woken + [slot.t for slot in pending.values() if slot.t is not None]
        for slot in pending.values():
            if slot.t is None:
                slot.event.set()         # reply None: the node went away
        if turns:
            vsched.SCHED[0].lost(turns)
        s.close()

    def call(self, name, *args, timeout=None, liveness=5.0):
        """Run a system call in the node; timeout (seconds) bounds a blocking call."""
        if name == "close" or name == "poll":
            local = self._local_call(name, args)
            if local is not None:
                return local
        rid = next(self.ids)
        # A blocking call may take its timeout; poll's own timeout is its last argument.
        bound = args[-1] if name == "poll" and args else timeout
        kind, body = self._exchange(rid, (encode_call(rid, name, args, timeout),), name, bound,
                                    liveness)
        return decode_reply(kind, body, name)

    def _exchange(self, rid, parts, name, bound, liveness=5.0, big=False):
        s = self._connect()
        sched, t = vsched.current()
        slot = _Slot(t)
        with self.lock:
            if self.sock is not s:       # the reader saw the node go after we connected
                raise NodeUnreachable(errno.ECONNRESET, "node at %s went away" % self.path)
            self.pending[rid] = slot
            if t is None and len(self.pending) > 1 and vtime.active():
                vtime.warn_threads()
        if t is not None:
            return self._exchange_turn(s, sched, slot, rid, parts, name)
        try:
            with self.send_lock:
                self._flush_locked(s)         # held-back sends came first
                write_parts(s, parts)
            # The node's liveness is checked on the host's clock: not in a
            # virtual-time lab, where a call may wait while time stands still.
            if self.virtual:
                bound = None
            if not slot.event.wait(None if bound is None else bound + liveness):
                raise NodeUnreachable(errno.ETIMEDOUT, "node at %s did not answer %s" % (self.path, name))
        except OSError as e:
            if isinstance(e, NodeUnreachable):
                raise
            raise NodeUnreachable(e.errno or errno.ECONNRESET,
                                  "node at %s went away during %s" % (self.path, name)) from None
        finally:
            # Interrupted (a signal, a timeout): a late reply finds nobody.
            with self.lock:
                self.pending.pop(rid, None)
        reply = slot.reply
        if reply is None:
            raise NodeUnreachable(errno.ECONNRESET, "node at %s went away during %s" % (self.path, name))
        return reply

    def _exchange_turn(self, s, sched, slot, rid, parts, name):
        """A call of a thread that takes turns (vsched.py): written while it
        holds the turn (F_IDLE if no other thread can run), then the turn goes
        on and comes back with the reply's batch."""
        try:
            with self.send_lock:
                if sched.before_call():
                    first = bytearray(parts[0])
                    first[5] |= P.F_IDLE          # REQ's flags byte
                    parts = (first,) + tuple(parts[1:])
                write_parts(s, parts)
        except OSError as e:
            with self.lock:
                self.pending.pop(rid, None)
            raise NodeUnreachable(e.errno or errno.ECONNRESET,
                                  "node at %s went away during %s" % (self.path, name)) from None
        sched.after_call(slot.t)
        with self.lock:
            self.pending.pop(rid, None)
        if slot.reply is None:
            raise NodeUnreachable(errno.ECONNRESET, "node at %s went away during %s" % (self.path, name))
        return slot.reply

    def send_idle(self):
        """OP_IDLE: the program's last runnable thread waits on a lock, not a call."""
        try:
            s = self._connect()      # the node must know the program, to count it waiting
            with self.send_lock:
                s.sendall(P.REQ.pack(P.REQ_LEN, P.OP_IDLE, 0, 0, 0, 0))
        except OSError:
            pass

    def _post(self, hdr, data):
        """A credited send: held back briefly, so that one write takes a burst."""
        s = self._connect()
        with self.send_lock:
            self.pend.append(hdr + bytes(data))
            self.pend_bytes += len(hdr) + len(data)
            full = len(self.pend) >= POST_FRAMES or self.pend_bytes >= POST_BYTES
            if full:
                try:
                    self._flush_locked(s)
                except OSError as e:
                    raise NodeUnreachable(e.errno or errno.ECONNRESET,
                                          "node at %s went away during sendto" % self.path) from None
        if full:
            time.sleep(0)          # let a waiting reader in (rpc.SyscallClient._post)
        else:
            if self.poster is None or self.poster.pid != os.getpid():
                self.poster = Poster(self._flush_pending)
            self.poster.kick()

    def _post_batch(self, parts):
        """sendmmsg's credited sends (headers and data, in order): written now,
        after the held-back ones, in one write."""
        s = self._connect()
        try:
            with self.send_lock:
                if self.pend:
                    parts = self.pend + parts
                    self.pend, self.pend_bytes = [], 0
                s.sendall(b"".join(parts))
        except OSError as e:
            raise NodeUnreachable(e.errno or errno.ECONNRESET,
                                  "node at %s went away during sendmmsg" % self.path) from None
        time.sleep(0)            # as _post: a reader waiting for the GIL gets in

    def _flush_locked(self, s):
        if self.pend:
            out, self.pend, self.pend_bytes = self.pend, [], 0
            s.sendall(b"".join(out))

    def _flush_pending(self):
        with self.lock:
            s = self.sock
        if s is not None:
            with self.send_lock:
                self._flush_locked(s)

    def call_nowait(self, name, *args):
        """Send a call and forget its reply (close from a finalizer must not wait)."""
        self._local_call(name, args)
        try:
            s = self._connect()
            with self.send_lock:
                self._flush_locked(s)
                frame = bytearray(encode_call(next(self.ids), name, args))
                frame[5] |= P.F_NOREPLY       # no reply: nobody would read it
                s.sendall(frame)
        except OSError:
            pass

    def close(self):
        with self.lock:
            s, self.sock = self.sock, None
        if s is not None:
            try:
                s.shutdown(_socket_mod.SHUT_RDWR)
            except OSError:
                pass


# ----------------------------------------------------------------- names

class Resolver:
    """Lab names -> addresses: the lab's /etc/hosts (there is no DNS)."""

    def __init__(self, hosts, hostname):
        self.hosts = dict(hosts)
        self.hostname = hostname
        self.hosts.setdefault("localhost", "127.0.0.1")

    @staticmethod
    def is_dotted_quad(host):
        parts = host.split(".")
        return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts)

    def resolve(self, host):
        """A host name or address -> dotted quad; socket.gaierror if unknown."""
        if isinstance(host, (bytes, bytearray)):
            host = host.decode("idna")
        if not isinstance(host, str):
            raise TypeError("host must be str, not %s" % type(host).__name__)
        if host in ("", "0.0.0.0", "<broadcast>") or self.is_dotted_quad(host):
            return host
        ip = self.hosts.get(host)
        if ip is None:
            ip = self.hosts.get(host.rstrip(".").lower())
        if ip is None:
            raise _socket_mod.gaierror(_socket_mod.EAI_NONAME, "Name or service not known")
        return ip

    def address(self, addr):
        """A (host, port) socket address with its host resolved."""
        if isinstance(addr, (tuple, list)) and len(addr) == 2:
            return (self.resolve(addr[0]), addr[1])
        return addr

    # -- the socket module's resolver functions
    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        if family not in (0, _socket_mod.AF_INET):
            raise _socket_mod.gaierror(_socket_mod.EAI_FAMILY, "ai_family not supported")
        if host is None:
            ip = "0.0.0.0" if flags & _socket_mod.AI_PASSIVE else "127.0.0.1"
        else:
            ip = self.resolve(host) or ("0.0.0.0" if flags & _socket_mod.AI_PASSIVE else "127.0.0.1")
        if port is None:
            port = 0
        elif isinstance(port, (bytes, bytearray)):
            port = port.decode()
        if isinstance(port, str):
            if port.isdigit():
                port = int(port)
            else:
                try:    # /etc/services is a local file, not the network
                    port = _socket_mod.getservbyname(port, "udp" if type == _socket_mod.SOCK_DGRAM else "tcp")
                except OSError:
                    raise _socket_mod.gaierror(_socket_mod.EAI_SERVICE,
                                               "Servname not supported for ai_socktype") from None
        if type:
            kinds = [(type, proto or {_socket_mod.SOCK_STREAM: 6, _socket_mod.SOCK_DGRAM: 17}.get(type, 0))]
        else:     # glibc: one entry per socket type
            kinds = [(_socket_mod.SOCK_STREAM, 6), (_socket_mod.SOCK_DGRAM, 17), (_socket_mod.SOCK_RAW, 0)]
            if proto:
                kinds = [k for k in kinds if k[1] == proto] or [(_socket_mod.SOCK_RAW, proto)]
        canon = host if flags & _socket_mod.AI_CANONNAME and isinstance(host, str) else ""
        return [(_socket_mod.AF_INET, _socket_mod.SocketKind(t), p, canon, (ip, int(port)))
                for t, p in kinds]

    def gethostbyname(self, host):
        return self.resolve(host) or "0.0.0.0"

    def gethostbyname_ex(self, host):
        return (host, [], [self.resolve(host) or "0.0.0.0"])

    def gethostbyaddr(self, ip):
        ip = self.resolve(ip)
        for name, addr in self.hosts.items():
            if addr == ip and name != "localhost":
                return (name, [], [ip])
        if ip.startswith("127."):
            return ("localhost", [], [ip])
        raise _socket_mod.herror(1, "Unknown host")

    def gethostname(self):
        return self.hostname

    def getfqdn(self, name=""):
        return name.strip() or self.hostname


# ----------------------------------------------------------------- sockets

def _node_fd(fd):
    """The node's descriptor behind a process-side number (an EMU_FD_BASE one,
    or a socket's real mirror descriptor), or None for a real descriptor."""
    if fd >= EMU_FD_BASE:
        return fd - EMU_FD_BASE
    sock = socket_of_real(fd)
    return None if sock is None else sock._fd


def _is_emulated(fd):
    return _node_fd(fd) is not None


def _fd_of(obj, select=False):
    """obj's descriptor number, as poll and selectors report it (fileno()); for
    select(), which hands back the objects, an emulated socket's EMU_FD_BASE
    number (waiting in the node needs no mirror descriptor)."""
    if isinstance(obj, int):
        fd = obj
    else:
        wait_fileno = getattr(obj, "_wait_fileno", None) if select else None
        fd = wait_fileno() if wait_fileno is not None else obj.fileno()
    if not isinstance(fd, int):
        raise TypeError("fileno() returned a non-integer")
    if fd < 0:
        raise ValueError("file descriptor cannot be a negative integer (%d)" % fd)
    return fd


class Binding:
    """One installed shim: the node connection, the resolver, the saved originals."""

    def __init__(self, endpoint, hosts, hostname):
        self.endpoint = endpoint
        self.client = MuxSyscallClient(endpoint)
        self.resolver = Resolver(hosts, hostname)
        self.watcher = Watcher(self.client)
        self.socket_class = make_socket_class(self)
        self.saved = []

    # -- waiting on emulated descriptors
    def node_poll(self, wanted, timeout):
        """wanted: {emulated fd: events}; returns {fd: revents}. timeout None: forever."""
        by_node = {}
        for fd, ev in wanted.items():
            nfd = _node_fd(fd)
            if nfd is None:
                nfd = -1                 # closed since it was registered: POLLNVAL
            by_node.setdefault(nfd, [0, []])
            by_node[nfd][0] |= ev
            by_node[nfd][1].append(fd)
        ready = self.client.call("poll", [[nfd, ev] for nfd, (ev, _) in by_node.items()], timeout)
        return {fd: rev for nfd, rev in ready for fd in by_node.get(nfd, (0, ()))[1]}

    def wait(self, emu_wanted, real_wait, timeout):
        """Wait for emulated fds (node poll) and/or real ones (real_wait(timeout) -> result)."""
        if not emu_wanted:
            return {}, vtime.real_wait(real_wait, timeout)
        if real_wait is None:
            return self.node_poll(emu_wanted, timeout), None
        # Both kinds: look at the real ones, then wait a slice in the node.
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            real = real_wait(0)
            ready = any(real) if isinstance(real, tuple) else bool(real)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            step = POLL_SLICE if left is None else min(POLL_SLICE, left)
            emu = self.node_poll(emu_wanted, 0 if ready else step)
            if ready or emu or (deadline is not None and time.monotonic() >= deadline):
                return emu, real

    # -- select.select
    def select(self, rlist, wlist, xlist, timeout=None):
        if timeout is not None:
            if timeout < 0:
                raise ValueError("timeout must be non-negative")
        lists = [list(rlist), list(wlist), list(xlist)]
        bits = (_POLLIN_SET, _POLLOUT_SET, _POLLEX_SET)
        wanted = {}
        real_lists = [[], [], []]
        for i, objs in enumerate(lists):
            for obj in objs:
                fd = _fd_of(obj, select=True)
                if _is_emulated(fd):
                    wanted[fd] = wanted.get(fd, 0) | (POLLIN, POLLOUT, POLLPRI)[i]
                else:
                    real_lists[i].append(obj)
        has_real = any(real_lists)
        if not wanted:
            return vtime.real_wait(lambda t: _real_select(*lists, t), timeout)
        real_wait = (lambda t: _real_select(*real_lists, t)) if has_real else None
        emu, real = self.wait(wanted, real_wait, timeout)
        if any(rev & POLLNVAL for rev in emu.values()):
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        out = [[], [], []]
        for i, objs in enumerate(lists):
            for obj in objs:
                fd = _fd_of(obj, select=True)
                if _is_emulated(fd) and emu.get(fd, 0) & bits[i]:
                    out[i].append(obj)
        if real:
            for i in range(3):
                out[i].extend(real[i])
        return tuple(out)

    # -- install / uninstall
    def _patch(self, module, name, value):
        self.saved.append((module, name, module.__dict__.get(name, _MISSING)))
        setattr(module, name, value)

    def install(self):
        r = self.resolver
        self._patch(_socket_mod, "socket", self.socket_class)
        self._patch(_socket_mod, "SocketType", self.socket_class)
        for name in _SOCKET_FUNCS[1:]:
            self._patch(_socket_mod, name, getattr(r, name))
        self._patch(_socket_mod, "fromfd", fromfd)
        for name, fn in os_functions().items():
            self._patch(os, name, fn)
        self._patch(_select_mod, "select", self.select)
        binding = self

        def poll():
            return EmuPoll(binding)
        self._patch(_select_mod, "poll", poll)
        selector = _make_selector_class(self)
        for name in _REAL_SELECTORS:
            self._patch(_selectors_mod, name, selector)
        # Modules that chose a selector class when they were imported.
        ss = sys.modules.get("socketserver")
        if ss is not None and hasattr(ss, "_ServerSelector"):
            self._patch(ss, "_ServerSelector", selector)
        return self

    def uninstall(self):
        for module, name, value in reversed(self.saved):
            if value is _MISSING:
                delattr(module, name)
            else:
                setattr(module, name, value)
        self.saved.clear()
        self.client.close()


_MISSING = object()


class EmuPoll:
    """select.poll() for emulated and real descriptors (timeouts in milliseconds)."""

    def __init__(self, binding):
        self.binding = binding
        self.emu = {}
        self.real = _real_poll()
        self.nreal = 0
        self.real_fds = set()

    def register(self, fd, eventmask=POLLIN | POLLPRI | POLLOUT):
        fd = _fd_of(fd)
        if _is_emulated(fd):
            self.emu[fd] = eventmask
        else:
            self.real.register(fd, eventmask)
            self.real_fds.add(fd)

    def modify(self, fd, eventmask):
        fd = _fd_of(fd)
        if _is_emulated(fd):
            if fd not in self.emu:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
            self.emu[fd] = eventmask
        else:
            self.real.modify(fd, eventmask)

    def unregister(self, fd):
        fd = _fd_of(fd)
        if _is_emulated(fd):
            del self.emu[fd]
        else:
            self.real.unregister(fd)
            self.real_fds.discard(fd)

    def poll(self, timeout=None):
        if timeout is not None and timeout < 0:
            timeout = None
        secs = None if timeout is None else timeout / 1000.0
        real_wait = (lambda t: self.real.poll(None if t is None else int(t * 1000))) \
            if self.real_fds or not self.emu else None
        emu, real = self.binding.wait(self.emu, real_wait, secs)
        return [(fd, rev) for fd, rev in emu.items()] + list(real or [])


def _make_selector_class(binding):
    RealSelector = _REAL_SELECTORS.get("PollSelector") or _REAL_SELECTORS["SelectSelector"]

    # _BaseSelectorImpl keeps the fileobj -> key map; every stdlib selector builds on it.
    class EmuSelector(_selectors_mod._BaseSelectorImpl):
        """A selector for emulated sockets (the node's poll) and real descriptors."""

        def __init__(self):
            super().__init__()
            self._real = RealSelector()
            self._emu = set()          # the fds that were emulated sockets when registered

        def register(self, fileobj, events, data=None):
            key = super().register(fileobj, events, data)
            if _is_emulated(key.fd):
                self._emu.add(key.fd)
                sock = socket_of_real(key.fd)
                if sock is not None:
                    sock._selectors += 1
            else:
                self._real.register(key.fd, events)
            return key

        def unregister(self, fileobj):
            key = super().unregister(fileobj)
            if key.fd in self._emu:
                self._emu.discard(key.fd)
                sock = socket_of_real(key.fd)
                if sock is not None and sock._selectors > 0:
                    sock._selectors -= 1
            else:
                self._real.unregister(key.fd)
            return key

        def select(self, timeout=None):
            if timeout is not None:
                timeout = max(0.0, timeout)
            wanted = {}
            has_real = False
            for key in self._fd_to_key.values():
                if key.fd in self._emu:
                    ev = 0
                    if key.events & _selectors_mod.EVENT_READ:
                        ev |= POLLIN
                    if key.events & _selectors_mod.EVENT_WRITE:
                        ev |= POLLOUT
                    wanted[key.fd] = ev
                else:
                    has_real = True
            real_wait = self._real.select if has_real or not wanted else None
            emu, real = binding.wait(wanted, real_wait, timeout)
            ready = []
            for fd, rev in emu.items():
                key = self._fd_to_key.get(fd)
                if key is None:
                    continue
                events = 0
                if rev & _POLLIN_SET:
                    events |= _selectors_mod.EVENT_READ
                if rev & _POLLOUT_SET:
                    events |= _selectors_mod.EVENT_WRITE
                events &= key.events
                if events:
                    ready.append((key, events))
            for rkey, events in real or ():
                key = self._fd_to_key.get(rkey.fd)
                if key is not None:
                    ready.append((key, events & key.events))
            return ready

        def close(self):
            for fd in self._emu:
                sock = socket_of_real(fd)
                if sock is not None and sock._selectors > 0:
                    sock._selectors -= 1
            self._emu.clear()
            self._real.close()
            super().close()

    return EmuSelector


def install(endpoint, hosts=None, hostname=""):
    """Bind this process's socket, select and selectors modules to the node at endpoint."""
    if isinstance(_socket_mod.socket, _SocketMeta):
        raise RuntimeError("the socket module is already bound to an emu node")
    return Binding(endpoint, hosts or {}, hostname).install()
