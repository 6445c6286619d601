"""The system call layer: descriptors, tasks, and sys_* entry points.

Linux: net/socket.c

A Task is one user-space client of the node (a process attached to it): it
has its own descriptor table, and task_exit closes what it left open, as
process exit does. Kernel calls never sleep: a call that would block raises
SyscallBlock naming the wait queues and the timeout, and the runtime parks
the request there and calls again when woken (Linux: sk_wait_data and
schedule_timeout in the middle of the call).
"""
import errno
import socket as _pysocket

from .core.dev import KernelError
from .core.scm import MsgHdr, SockcmCookie, sock_cmsg_send
from .core.entry import SyscallBlock  # noqa: F401  (re-exported: the calls raise it)
from .core.sock import (
    EPOLLERR, EPOLLHUP, MSG_DONTWAIT, SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF, Socket,
)
from .hdr.ip import inet_aton, inet_ntoa
from .ipv4.af_inet import AF_INET, inet_create
from .ipv4.ip_sockglue import ip_cmsg_send

SOL_SOCKET = 1
SO_DEBUG = 1
SO_REUSEADDR = 2
SO_TYPE = 3
SO_ERROR = 4
SO_DONTROUTE = 5
SO_BROADCAST = 6
SO_SNDBUF = 7
SO_RCVBUF = 8
SO_KEEPALIVE = 9
SO_LINGER = 13
SO_PRIORITY = 12
SO_REUSEPORT = 15
SO_RCVTIMEO = 20
SO_SNDTIMEO = 21
SO_BINDTODEVICE = 25
SO_PROTOCOL = 38
SO_DOMAIN = 39
SO_MARK = 36

SOCK_NONBLOCK = 0o4000
SOCK_CLOEXEC = 0o2000000
SOCK_TYPE_MASK = 0xF

SOCK_RCVBUF_LOCK = 2
SOCK_SNDBUF_LOCK = 1


class Task:
    """A user-space process attached to the node: its descriptor table."""

    def __init__(self, net, tid, name=""):
        self.net = net
        self.tid = tid
        self.name = name
        self.conns = 1        # runtime: connections (threads) attached to this task
        self.key = None       # runtime: the client process's key
        self.fds = {}
        self.next_fd = 3      # 0, 1, 2 are the client's own stdio

    def alloc_fd(self, sock):
        fd = self.next_fd
        while fd in self.fds:
            fd += 1
        self.fds[fd] = sock
        self.next_fd = fd + 1
        return fd


def _families(net):
    return net.proto.setdefault("net_families", {AF_INET: inet_create})


def sock_register(net, family, create):
    _families(net)[family] = create


def sockfd_lookup(task, fd):
    sock = task.fds.get(fd)
    if sock is None:
        raise KernelError(errno.EBADF)
    return sock


# Text addresses already parsed (a pure function; bounded), with the two
# names _addr gives a meaning of its own.
_ATON_CACHE = {"": 0, "0.0.0.0": 0, "<broadcast>": 0xFFFFFFFF}
_ATON_CACHE_MAX = 4096


def _addr(addr):
    """A (host, port) tuple from the client -> (ip int, port)."""
    if type(addr) is tuple and len(addr) == 2:
        host, port = addr
        if type(host) is str and type(port) is int and 0 <= port <= 65535:
            ip = _ATON_CACHE.get(host)
            if ip is None:
                try:
                    ip = inet_aton(host)
                except (OSError, TypeError):
                    raise KernelError(errno.EINVAL, "bad IPv4 address %r" % (host,)) from None
                if len(_ATON_CACHE) < _ATON_CACHE_MAX:
                    _ATON_CACHE[host] = ip
            return ip, port
    if not isinstance(addr, (tuple, list)) or len(addr) != 2:
        raise KernelError(errno.EINVAL, "address must be (host, port)")
    host, port = addr
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise KernelError(errno.EINVAL, "port must be 0-65535")
    if host in ("", "0.0.0.0"):
        return 0, port
    if host == "<broadcast>":
        return 0xFFFFFFFF, port
    try:
        return inet_aton(host), port
    except (OSError, TypeError):
        raise KernelError(errno.EINVAL, "bad IPv4 address %r" % (host,)) from None


def _sockaddr(sock, addr):
    """AF_INET addresses become (ip int, port); other families check their own."""
    if sock.family == AF_INET:
        return _addr(addr)
    if not isinstance(addr, (tuple, list)):
        raise KernelError(errno.EINVAL)
    return addr


def sys_socket(task, family, type, protocol):
    create = _families(task.net).get(family)
    if create is None:
        raise KernelError(errno.EAFNOSUPPORT)
    base_type = type & SOCK_TYPE_MASK
    if type & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise KernelError(errno.EINVAL)
    sock = Socket(family, base_type)
    sock.nonblock = bool(type & SOCK_NONBLOCK)
    create(task.net, sock, protocol)
    return task.alloc_fd(sock)


def sys_close(task, fd):
    sock = task.fds.pop(fd, None)
    if sock is None:
        raise KernelError(errno.EBADF)
    # fput: the socket goes when its last descriptor does.
    sock.f_count -= 1
    if sock.f_count <= 0:
        sock_release(sock)
    return 0


def sys_dup(task, fd):
    """dup(): a new descriptor, the lowest free one, for the same open socket."""
    sock = sockfd_lookup(task, fd)
    sock.f_count += 1
    new = 0
    while new in task.fds or new < 3:
        new += 1
    task.fds[new] = sock
    return new


def sock_release(sock):
    if sock.ops is not None and sock.sk is not None:
        sk = sock.sk
        sock.ops.release(sock)
        # Whoever still waits on this socket wakes and sees EBADF.
        sk.sk_wq.wake_up(EPOLLHUP | EPOLLERR)


def task_exit(task):
    """The client went away: close every descriptor it held (do_exit)."""
    for fd in list(task.fds):
        try:
            sys_close(task, fd)
        except KernelError:
            pass


def sys_bind(task, fd, addr):
    sock = sockfd_lookup(task, fd)
    return sock.ops.bind(sock, _sockaddr(sock, addr))


def sys_connect(task, fd, addr):
    sock = sockfd_lookup(task, fd)
    return sock.ops.connect(sock, _sockaddr(sock, addr))


def sys_listen(task, fd, backlog):
    sock = sockfd_lookup(task, fd)
    if sock.ops.listen is None:
        raise KernelError(errno.EOPNOTSUPP)
    return sock.ops.listen(sock, backlog)


def sys_accept(task, fd, flags=0):
    """accept4(): a new descriptor for the next connection; returns (fd, peer address)."""
    sock = sockfd_lookup(task, fd)
    if sock.ops.accept is None:
        raise KernelError(errno.EOPNOTSUPP)
    new_sock = Socket(sock.family, sock.type)
    new_sock.nonblock = bool(flags & SOCK_NONBLOCK)

    def attempt():
        # Every wait resumes here, so whoever wins the connection gets a descriptor
        # (several tasks may sleep in accept() on one listener).
        try:
            sock.ops.accept(sock, new_sock)
        except SyscallBlock as b:
            b.resume = attempt
            raise
        return _accepted(task, new_sock)
    return attempt()


def _accepted(task, new_sock):
    fd = task.alloc_fd(new_sock)
    return [fd, list(new_sock.ops.getname(new_sock, True))]


def sys_shutdown(task, fd, how):
    sock = sockfd_lookup(task, fd)
    return sock.ops.shutdown(sock, how)


def sys_getsockname(task, fd):
    sock = sockfd_lookup(task, fd)
    return sock.ops.getname(sock, False)


def sys_getpeername(task, fd):
    sock = sockfd_lookup(task, fd)
    return sock.ops.getname(sock, True)


def _would_block(sock, flags, timeo):
    if sock.nonblock or flags & MSG_DONTWAIT:
        raise KernelError(errno.EAGAIN)
    raise SyscallBlock([sock.sk.sk_wq], timeo)


def sock_sendmsg(sock, data, flags, addr):
    """Send a message on a socket: the entry of every send (sendto, sendmsg, write).

    Emulation note: Linux runs the LSM hook (security_socket_sendmsg) here;
    emu has no LSM. Tracing starts here: the hits wait until the skb exists.
    """
    tracer = sock.sk.net.tracer
    if tracer is None:
        return sock.ops.sendmsg(sock, data, flags, addr)      # sock_sendmsg_nosec
    tracer.begin_send("sock_sendmsg")
    try:
        return sock_sendmsg_nosec(sock, data, flags, addr)
    finally:
        tracer.end_send()


def sock_sendmsg_nosec(sock, data, flags, addr):
    """Hand a message to the socket's family (sock->ops->sendmsg: inet_sendmsg)."""
    tracer = sock.sk.net.tracer
    if tracer is not None:
        tracer.send_hit("sock_sendmsg_nosec")
    return sock.ops.sendmsg(sock, data, flags, addr)


def sock_recvmsg(sock, size, flags):
    return sock.ops.recvmsg(sock, size, flags)


def sys_sendto(task, fd, data, flags=0, addr=None):
    sock = task.fds.get(fd)                  # sockfd_lookup
    if sock is None:
        raise KernelError(errno.EBADF)
    if addr is not None:
        addr = _addr(addr) if sock.family == AF_INET else _sockaddr(sock, addr)
    try:
        return sock_sendmsg(sock, data, flags, addr)
    except KernelError as e:
        if e.errno == errno.EAGAIN:
            _would_block(sock, flags, sock.sk.sk_sndtimeo)
        raise


def sys_sendto_in(task, fd, data, flags, daddr, dport):
    """sendto with an IPv4 address the syscall layer has already parsed (the
    runtime's binary call): what sys_sendto does, without the text round trip."""
    sock = task.fds.get(fd)                  # sockfd_lookup
    if sock is None:
        raise KernelError(errno.EBADF)
    if sock.family != AF_INET:
        return sys_sendto(task, fd, data, flags, (inet_ntoa(daddr), dport))
    try:
        return sock_sendmsg(sock, data, flags, (daddr, dport))
    except KernelError as e:
        if e.errno == errno.EAGAIN:
            _would_block(sock, flags, sock.sk.sk_sndtimeo)
        raise


def _sendmsg_cookie(sock, control):
    """Check a sendmsg's control messages as the protocol would (ip_cmsg_send for
    datagrams, sock_cmsg_send for streams and other families)."""
    ipc = SockcmCookie()
    if not control:
        return ipc
    try:
        if sock.family == AF_INET and sock.type != _pysocket.SOCK_STREAM:
            ip_cmsg_send(control, ipc)
        else:
            sock_cmsg_send(control, ipc)
    except KernelError:
        if sock.type == _pysocket.SOCK_STREAM:
            raise KernelError(errno.EINVAL) from None     # tcp_sendmsg_locked
        raise
    return ipc


# Sock fields a sendmsg's control messages override for that one call.
_IPC_FIELDS = (("ttl", "uc_ttl"), ("tos", "tos"), ("mark", "sk_mark"),
               ("oif", "sk_bound_dev_if"), ("addr", "inet_saddr"))


def sys_sendmsg(task, fd, data, flags=0, addr=None, control=()):
    """sendmsg() with control messages: control is [[level, type, data], ...].

    Emulation note: Linux carries the per-call TTL, TOS, mark, interface and
    source (IP_TTL, IP_TOS, SO_MARK, IP_PKTINFO) in an ipcm_cookie; emu sets
    them on the sock for the length of the call and puts the socket's own back.
    """
    sock = sockfd_lookup(task, fd)
    ipc = _sendmsg_cookie(sock, control)
    sk = sock.sk
    fields = [(f, getattr(ipc, c)) for c, f in _IPC_FIELDS if getattr(ipc, c) is not None]
    if fields and sock.type == _pysocket.SOCK_RAW:
        fields = [("inet_rcv_saddr" if f == "inet_saddr" else f, v) for f, v in fields]
    saved = [(f, getattr(sk, f)) for f, _ in fields]
    for f, v in fields:
        setattr(sk, f, v)
    try:
        return sys_sendto(task, fd, data, flags, addr)
    finally:
        for f, v in saved:
            setattr(sk, f, v)


def sys_recvmsg(task, fd, size, flags=0, controllen=0):
    """recvmsg(): (data, address or None, msg_flags, control messages)."""
    if size < 0 or controllen < 0:
        raise KernelError(errno.EINVAL)
    sock = sockfd_lookup(task, fd)
    msg = MsgHdr(controllen)
    try:
        data, addr, msg_flags = sock.ops.recvmsg(sock, size, flags, msg)
    except KernelError as e:
        if e.errno == errno.EAGAIN:
            _would_block(sock, flags, sock.sk.sk_rcvtimeo)
        raise
    return data, addr, msg_flags | msg.msg_flags, msg.msg_control


def sys_recvfrom(task, fd, size, flags=0):
    """Returns (data, address or None, msg_flags)."""
    if size < 0:
        raise KernelError(errno.EINVAL)
    sock = task.fds.get(fd)                  # sockfd_lookup
    if sock is None:
        raise KernelError(errno.EBADF)
    try:
        return sock.ops.recvmsg(sock, size, flags)           # sock_recvmsg
    except KernelError as e:
        if e.errno == errno.EAGAIN:
            _would_block(sock, flags, sock.sk.sk_rcvtimeo)
        raise


def sys_poll(task, fds, timeout):
    """fds: [(fd, events)]; returns [(fd, revents)] of the ready ones.

    timeout in seconds, None for forever, 0 to just look.
    """
    ready = []
    wqs = []
    for fd, events in fds:
        sock = task.fds.get(fd)
        if sock is None:
            ready.append((fd, 0x20))     # POLLNVAL
            continue
        mask = sock.ops.poll(sock) & (events | EPOLLERR | EPOLLHUP)
        if mask:
            ready.append((fd, mask))
        else:
            wqs.append(sock.sk.sk_wq)
    if ready or timeout == 0:
        return ready
    raise SyscallBlock(wqs, timeout, on_timeout=0)


def _optint(value):
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, bytearray)) and len(value) >= 4:
        return int.from_bytes(value[:4], "little", signed=True)
    raise KernelError(errno.EINVAL)


def _timeval(value):
    """SO_RCVTIMEO takes a struct timeval (or seconds as a float from emu's client)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        secs = float(value)
    elif isinstance(value, (bytes, bytearray)) and len(value) >= 16:
        sec = int.from_bytes(value[:8], "little", signed=True)
        usec = int.from_bytes(value[8:16], "little", signed=True)
        if usec < 0 or usec >= 1000000:
            raise KernelError(errno.EDOM)
        secs = sec + usec / 1e6
    else:
        raise KernelError(errno.EINVAL)
    if secs < 0:
        return 0.0      # Linux: a negative timeout means "do not wait"
    return None if secs == 0 else secs


def sock_setbindtodevice(sk, value):
    """SO_BINDTODEVICE: an interface name (NUL-terminated or not); empty unbinds."""
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, (bytes, bytearray)) or len(value) > 16:
        raise KernelError(errno.EINVAL)
    name = bytes(value).split(b"\0", 1)[0].decode("ascii", "replace")
    if not name:
        sk.sk_bound_dev_if = 0
        return 0
    dev = sk.net.dev_by_name.get(name)
    if dev is None:
        raise KernelError(errno.ENODEV)
    sk.sk_bound_dev_if = dev.ifindex
    return 0


def sock_setsockopt(sock, optname, value):
    sk = sock.sk
    net = sk.net
    if optname in (SO_RCVTIMEO, SO_SNDTIMEO):
        t = _timeval(value)
        if optname == SO_RCVTIMEO:
            sk.sk_rcvtimeo = t
        else:
            sk.sk_sndtimeo = t
        return 0
    if optname == SO_LINGER:
        if isinstance(value, (bytes, bytearray)) and len(value) >= 8:
            onoff = int.from_bytes(value[:4], "little", signed=True)
            secs = int.from_bytes(value[4:8], "little", signed=True)
        elif isinstance(value, (list, tuple)) and len(value) == 2:
            onoff, secs = value
        else:
            raise KernelError(errno.EINVAL)
        if sk.sk_protocol == 6:
            sk.proto_data.linger = max(secs, 0) if onoff else None
        return 0
    if optname == SO_BINDTODEVICE:
        return sock_setbindtodevice(sk, value)
    v = _optint(value)
    if optname == SO_REUSEADDR:
        sk.sk_reuse = 1 if v else 0
    elif optname == SO_REUSEPORT:
        sk.sk_reuseport = 1 if v else 0
    elif optname == SO_BROADCAST:
        sk.sk_broadcast = 1 if v else 0
    elif optname == SO_KEEPALIVE:
        sk.sk_keepalive = 1 if v else 0
        if sk.sk_protocol == 6:
            from .ipv4.tcp_timer import tcp_set_keepalive
            tcp_set_keepalive(sk, bool(v))
    elif optname == SO_RCVBUF:
        # Linux doubles the value (bookkeeping overhead) within rmem_max.
        v = min(max(v, 0), net.sysctl["net.core.rmem_max"])
        sk.sk_userlocks |= SOCK_RCVBUF_LOCK
        sk.sk_rcvbuf = max(v * 2, SOCK_MIN_RCVBUF)
    elif optname == SO_SNDBUF:
        v = min(max(v, 0), net.sysctl["net.core.wmem_max"])
        sk.sk_userlocks |= SOCK_SNDBUF_LOCK
        sk.sk_sndbuf = max(v * 2, SOCK_MIN_SNDBUF)
    elif optname == SO_PRIORITY:
        sk.sk_priority = v
    elif optname == SO_MARK:
        sk.sk_mark = v
    elif optname == SO_DEBUG or optname == SO_DONTROUTE:
        pass
    else:
        raise KernelError(errno.ENOPROTOOPT)
    return 0


def sock_getsockopt(sock, optname):
    sk = sock.sk
    if optname == SO_RCVTIMEO or optname == SO_SNDTIMEO:
        t = sk.sk_rcvtimeo if optname == SO_RCVTIMEO else sk.sk_sndtimeo
        t = t or 0.0
        sec = int(t)
        return sec.to_bytes(8, "little", signed=True) + \
            int(round((t - sec) * 1e6)).to_bytes(8, "little", signed=True)
    table = {SO_REUSEADDR: sk.sk_reuse, SO_REUSEPORT: sk.sk_reuseport,
             SO_BROADCAST: sk.sk_broadcast, SO_KEEPALIVE: sk.sk_keepalive,
             SO_RCVBUF: sk.sk_rcvbuf, SO_SNDBUF: sk.sk_sndbuf,
             SO_TYPE: sock.type, SO_PROTOCOL: sk.sk_protocol, SO_DOMAIN: sk.sk_family,
             SO_PRIORITY: sk.sk_priority, SO_MARK: sk.sk_mark}
    if optname == SO_ERROR:
        err = sk.sk_err or sk.sk_err_soft
        sk.sk_err = 0
        return err
    if optname not in table:
        raise KernelError(errno.ENOPROTOOPT)
    return table[optname]


def sys_setsockopt(task, fd, level, optname, value):
    sock = sockfd_lookup(task, fd)
    # Seconds as a float (emu's client) only mean something to the timeouts,
    # and a pair only to SO_LINGER; elsewhere the value is an int or a buffer.
    if level != SOL_SOCKET or optname not in (SO_RCVTIMEO, SO_SNDTIMEO, SO_LINGER):
        if isinstance(value, (float, list, tuple)):
            raise KernelError(errno.EINVAL)
    if level == SOL_SOCKET:
        return sock_setsockopt(sock, optname, value)
    return sock.ops.setsockopt(sock, level, optname, value)


def sys_getsockopt(task, fd, level, optname, buflen=0):
    sock = sockfd_lookup(task, fd)
    if level == SOL_SOCKET:
        return sock_getsockopt(sock, optname)
    return sock.ops.getsockopt(sock, level, optname, buflen)


def sys_setblocking(task, fd, nonblock):
    """fcntl(F_SETFL, O_NONBLOCK)."""
    sockfd_lookup(task, fd).nonblock = bool(nonblock)
    return 0


def sys_nanosleep(task, seconds):
    """nanosleep (kernel/time/hrtimer.c: hrtimer_nanosleep): wait `seconds` on
    the node's clock (the lab's, in a virtual-time lab: how a program sleeps there)."""
    if seconds is None:
        raise KernelError(errno.EINVAL, "nanosleep needs a time")
    if seconds <= 0:
        return []
    raise SyscallBlock([], seconds, on_timeout=0)


SYSCALLS = {
    "socket": sys_socket, "bind": sys_bind, "connect": sys_connect,
    "listen": sys_listen, "accept": sys_accept, "sendto": sys_sendto, "recvfrom": sys_recvfrom,
    "close": sys_close, "shutdown": sys_shutdown, "getsockname": sys_getsockname,
    "getpeername": sys_getpeername, "setsockopt": sys_setsockopt,
    "getsockopt": sys_getsockopt, "poll": sys_poll, "setblocking": sys_setblocking,
    "dup": sys_dup, "sendmsg": sys_sendmsg, "recvmsg": sys_recvmsg, "nanosleep": sys_nanosleep,
}

# Keep the constants Python programs use in step with ours.
assert SOL_SOCKET == _pysocket.SOL_SOCKET and SO_RCVBUF == _pysocket.SO_RCVBUF


# ---------------------------------------------------------------- argument policy
# What crosses the system call boundary is checked here, before any kernel
# code runs, as copy_from_user and the syscall's own checks do in Linux: a
# wrong type or range is EINVAL (EFAULT for what could not be "copied in")
# and changes nothing. The kernel below may then trust the shapes it gets.

INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
POLL_MAX_FDS = 1024          # RLIMIT_NOFILE's default soft limit: poll() beyond it is EINVAL
OPTVAL_MAX = 65536
CMSG_MAX = 64                # control messages in one sendmsg


def _c_int(v):
    return isinstance(v, int) and INT_MIN <= v <= INT_MAX


def _a_int(v):
    if not isinstance(v, int):
        raise KernelError(errno.EFAULT, "expected an integer, got %s" % type(v).__name__)
    if not INT_MIN <= v <= INT_MAX:
        raise KernelError(errno.EINVAL, "integer out of range")


def _a_size(v):
    _a_int(v)
    if v < 0:
        raise KernelError(errno.EINVAL, "negative size")


def _a_buf(v):
    if not isinstance(v, (bytes, bytearray)):
        raise KernelError(errno.EFAULT, "expected bytes, got %s" % type(v).__name__)


def _a_addr(v):
    """A socket address: None, or a short list of scalars (the family checks the rest)."""
    if v is None:
        return
    if not isinstance(v, (list, tuple)) or not 1 <= len(v) <= 6 or not all(
            isinstance(x, (str, bytes)) and len(x) <= 256 or _c_int(x) for x in v):
        raise KernelError(errno.EINVAL, "bad socket address")


def _a_optval(v):
    """setsockopt's value: an int, a buffer, seconds (emu's client), or a pair."""
    if isinstance(v, int):
        if not INT_MIN <= v <= INT_MAX:
            raise KernelError(errno.EINVAL, "option value out of range")
    elif isinstance(v, (bytes, bytearray)):
        if len(v) > OPTVAL_MAX:
            raise KernelError(errno.EINVAL, "option value too long")
    elif isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise KernelError(errno.EINVAL, "option value not finite")
    elif isinstance(v, (list, tuple)):
        if len(v) != 2 or not all(_c_int(x) for x in v):
            raise KernelError(errno.EINVAL, "bad option value")
    else:
        raise KernelError(errno.EFAULT, "bad option value type %s" % type(v).__name__)


def _a_pollfds(v):
    if not isinstance(v, (list, tuple)) or len(v) > POLL_MAX_FDS:
        raise KernelError(errno.EINVAL, "bad poll set")
    for item in v:
        if not isinstance(item, (list, tuple)) or len(item) != 2 or \
                not all(_c_int(x) for x in item):
            raise KernelError(errno.EFAULT, "bad pollfd")


def _a_control(v):
    """sendmsg's control messages: [[level, type, data], ...] within OPTVAL_MAX bytes."""
    if not isinstance(v, (list, tuple)) or len(v) > CMSG_MAX:
        raise KernelError(errno.EINVAL, "bad control messages")
    total = 0
    for item in v:
        if not isinstance(item, (list, tuple)) or len(item) != 3 or not _c_int(item[0]) or \
                not _c_int(item[1]) or not isinstance(item[2], (bytes, bytearray)):
            raise KernelError(errno.EINVAL, "bad control message")
        total += len(item[2])
    if total > OPTVAL_MAX:
        raise KernelError(errno.ENOBUFS, "control messages too long")


def _a_timeout(v):
    """Seconds (float or int), None for forever; NaN and infinities are refused."""
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or \
            abs(v) == float("inf") or abs(v) > 1e9:
        raise KernelError(errno.EINVAL, "bad timeout")


# call -> (required argument checks, optional argument checks)
SYSCALL_POLICY = {
    "socket": ((_a_int, _a_int, _a_int), ()),
    "bind": ((_a_int, _a_addr), ()),
    "connect": ((_a_int, _a_addr), ()),
    "listen": ((_a_int, _a_int), ()),
    "accept": ((_a_int,), (_a_int,)),
    "sendto": ((_a_int, _a_buf), (_a_int, _a_addr)),
    "recvfrom": ((_a_int, _a_size), (_a_int,)),
    "close": ((_a_int,), ()),
    "shutdown": ((_a_int, _a_int), ()),
    "getsockname": ((_a_int,), ()),
    "getpeername": ((_a_int,), ()),
    "setsockopt": ((_a_int, _a_int, _a_int, _a_optval), ()),
    "getsockopt": ((_a_int, _a_int, _a_int), (_a_size,)),
    "poll": ((_a_pollfds, _a_timeout), ()),
    "setblocking": ((_a_int, _a_int), ()),
    "dup": ((_a_int,), ()),
    "sendmsg": ((_a_int, _a_buf), (_a_int, _a_addr, _a_control)),
    "recvmsg": ((_a_int, _a_size), (_a_int, _a_size)),
    "nanosleep": ((_a_timeout,), ()),
}
assert SYSCALL_POLICY.keys() == SYSCALLS.keys()


def syscall_lookup(call, args):
    """The sys_* function for a request after checking its arguments (ENOSYS, EINVAL...)."""
    fn = SYSCALLS.get(call) if isinstance(call, str) else None
    if fn is None:
        raise KernelError(errno.ENOSYS, "ENOSYS")
    if not isinstance(args, (list, tuple)):
        raise KernelError(errno.EFAULT, "arguments must be a list")
    required, optional = SYSCALL_POLICY[call]
    if not len(required) <= len(args) <= len(required) + len(optional):
        raise KernelError(errno.EINVAL, "%s takes %d to %d arguments" % (
            call, len(required), len(required) + len(optional)))
    for check, value in zip(required + optional, args, strict=False):   # optional ones may be left out
        check(value)
    return fn
