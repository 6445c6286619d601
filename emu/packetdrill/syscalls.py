"""System calls of a script, made on the emulated kernel.

packetdrill: run_system_call.c (syscall_socket, syscall_bind, ... and
end_syscall's checks: `Expected result %d but got %d with errno %d (%s)`,
`Expected errno %d (%s) but got %d (%s)`). Script file descriptors map to
live ones; `...` addresses are the configured local/remote address and port;
buffers are zeros, as packetdrill's are.
"""
import errno as _errno
import os

from ..kernel.core.dev import KernelError
from ..kernel.core.entry import SyscallBlock, kernel_entry
from ..kernel.hdr.ip import inet_aton, inet_ntoa
from ..kernel.socket import (
    sys_accept, sys_bind, sys_close, sys_connect, sys_getsockopt, sys_listen, sys_poll,
    sys_recvfrom, sys_sendto, sys_setblocking, sys_setsockopt, sys_shutdown, sys_socket,
)
from .packet import IPPROTO_TCP, IPPROTO_UDP
from .parse import BitOr, Call, Struct, Symbol

SYMBOLS = {
    "AF_INET": 2, "PF_INET": 2, "AF_UNSPEC": 0,
    "SOCK_STREAM": 1, "SOCK_DGRAM": 2, "SOCK_RAW": 3, "SOCK_NONBLOCK": 0o4000,
    "SOCK_CLOEXEC": 0o2000000,
    "IPPROTO_IP": 0, "IPPROTO_TCP": 6, "IPPROTO_UDP": 17, "IPPROTO_ICMP": 1,
    "SOL_SOCKET": 1, "SOL_TCP": 6, "SOL_IP": 0, "SOL_UDP": 17,
    "SO_DEBUG": 1, "SO_REUSEADDR": 2, "SO_TYPE": 3, "SO_ERROR": 4, "SO_DONTROUTE": 5,
    "SO_BROADCAST": 6, "SO_SNDBUF": 7, "SO_RCVBUF": 8, "SO_KEEPALIVE": 9, "SO_LINGER": 13,
    "SO_PRIORITY": 12, "SO_REUSEPORT": 15, "SO_RCVLOWAT": 18, "SO_RCVTIMEO": 20,
    "SO_SNDTIMEO": 21, "SO_MARK": 36, "SO_PROTOCOL": 38, "SO_DOMAIN": 39,
    "TCP_NODELAY": 1, "TCP_MAXSEG": 2, "TCP_CORK": 3, "TCP_KEEPIDLE": 4, "TCP_KEEPINTVL": 5,
    "TCP_KEEPCNT": 6, "TCP_SYNCNT": 7, "TCP_LINGER2": 8, "TCP_DEFER_ACCEPT": 9,
    "TCP_WINDOW_CLAMP": 10, "TCP_INFO": 11, "TCP_QUICKACK": 12, "TCP_CONGESTION": 13,
    "TCP_USER_TIMEOUT": 18,
    "IP_TOS": 1, "IP_TTL": 2, "IP_MTU_DISCOVER": 10, "IP_PMTUDISC_DONT": 0,
    "IP_PMTUDISC_DO": 2,
    "O_RDONLY": 0, "O_WRONLY": 1, "O_RDWR": 2, "O_NONBLOCK": 0o4000,
    "F_GETFL": 3, "F_SETFL": 4,
    "SHUT_RD": 0, "SHUT_WR": 1, "SHUT_RDWR": 2,
    "MSG_OOB": 1, "MSG_PEEK": 2, "MSG_DONTROUTE": 4, "MSG_TRUNC": 0x20, "MSG_DONTWAIT": 0x40,
    "MSG_EOR": 0x80, "MSG_WAITALL": 0x100, "MSG_NOSIGNAL": 0x4000, "MSG_MORE": 0x8000,
    "POLLIN": 0x1, "POLLPRI": 0x2, "POLLOUT": 0x4, "POLLERR": 0x8, "POLLHUP": 0x10,
    "POLLNVAL": 0x20, "POLLRDNORM": 0x40, "POLLRDBAND": 0x80, "POLLWRNORM": 0x100,
    "POLLWRBAND": 0x200, "POLLRDHUP": 0x2000,
}


class SyscallError(Exception):
    """A script-side problem with a call (bad argument, unknown call)."""


def _strerror(e):
    return os.strerror(e) if e else "Success"


def value(runner, expr):
    """A script expression's integer value (symbols, |, htons...)."""
    if isinstance(expr, bool):
        return int(expr)
    if isinstance(expr, int):
        return expr
    if isinstance(expr, BitOr):
        v = 0
        for t in expr.terms:
            v |= value(runner, t)
        return v
    if isinstance(expr, Symbol):
        if expr in SYMBOLS:
            return SYMBOLS[expr]
        if hasattr(_errno, expr) and expr.startswith("E"):
            return getattr(_errno, expr)
        raise SyscallError("bad symbol: '%s'" % expr)
    if isinstance(expr, Call):
        if expr.name in ("htons", "ntohs", "htonl", "ntohl") and len(expr.args) == 1:
            return value(runner, expr.args[0])
        if expr.name == "inet_addr" and len(expr.args) == 1 and isinstance(expr.args[0], bytes):
            return inet_aton(expr.args[0].decode())
        raise SyscallError("bad function: '%s'" % expr.name)
    if isinstance(expr, list) and len(expr) == 1:
        return value(runner, expr[0])
    raise SyscallError("expected an integer, got %r" % (expr,))


def _arg(args, i, name):
    if i >= len(args):
        raise SyscallError("missing argument %d (%s)" % (i + 1, name))
    return args[i]


def _fd(runner, expr):
    script_fd = value(runner, expr)
    return runner.fds.get(script_fd, -1 - script_fd if script_fd >= 0 else script_fd)


def _sockaddr(runner, expr, local):
    cfg = runner.config
    if expr is Ellipsis:
        if local:
            return (cfg.local_ip, cfg.bind_port)
        return (cfg.remote_ip, cfg.connect_port)
    if isinstance(expr, Struct):
        port = value(runner, expr.get("sin_port", 0))
        addr = expr.get("sin_addr", 0)
        ip = inet_ntoa(value(runner, addr)) if addr not in (0, Ellipsis) else "0.0.0.0"
        return (ip, port)
    raise SyscallError("bad socket address")


def run_syscall_event(runner, event):
    """run_system_call_event: wait, make the call, check (now or when it returns)."""
    sc = event.body
    if runner.parked is not None:
        runner.advance_to(event.abs_time, until=lambda: runner.parked is None)
        if runner.parked is not None:
            prev = runner.parked.event
            runner.fail(event, "runtime error in %s call: blocking system call (line %d) "
                               "still in progress" % (sc.name, prev.line))
    runner.wait_for_event(event, "system call start")
    fn = CALLS.get(sc.name)
    if fn is None:
        runner.fail(event, "runtime error in %s call: Unknown system call: '%s'"
                    % (sc.name, sc.name))
    try:
        call, post = fn(runner, sc.args)
    except SyscallError as e:
        runner.fail(event, "runtime error in %s call: %s" % (sc.name, e))

    def finish(result, err):
        _end_syscall(runner, event, result, err, post)

    try:
        result = kernel_entry(runner.net, 0, call)
        err = 0
    except SyscallBlock as b:
        runner.park(event, b, finish, call)
        runner.settle()
        return
    except KernelError as e:
        result, err = -1, e.errno
    runner.settle()
    finish(result, err)


def _end_syscall(runner, event, result, err, post):
    """end_syscall: the end time of a blocking call, then result and errno."""
    sc = event.body
    now = runner.now_usecs()
    expected_end = event.abs_end_call if event.abs_end_call is not None else event.abs_time
    tol = runner.config.tolerance_usecs
    if event.time_type != 0 and (now < expected_end - tol or now > expected_end + tol):
        runner.fail(event, "timing error: expected system call return at %.6f sec but "
                           "happened at %.6f sec; tolerance %.6f sec"
                    % (expected_end / 1e6, now / 1e6, tol / 1e6))
    ret = -1 if err else result
    out = None
    if post is not None and not err:
        try:
            ret, out = post(result)
        except SyscallError as e:
            runner.fail(event, "runtime error in %s call: %s" % (sc.name, e))
    expected = sc.result
    if expected is not Ellipsis:
        if sc.name in ("socket", "accept") and expected >= 0:
            if ret < 0:
                runner.fail(event, "runtime error in %s call: Expected non-negative result "
                                   "but got %d with errno %d (%s)"
                            % (sc.name, ret, err, _strerror(err)))
            runner.fds[expected] = ret
        elif ret != expected:
            runner.fail(event, "runtime error in %s call: Expected result %d but got %d with "
                               "errno %d (%s)" % (sc.name, expected, ret, err, _strerror(err)))
    if sc.errno is not None:
        want = getattr(_errno, sc.errno, None)
        if want is None:
            runner.fail(event, "runtime error in %s call: bad errno symbol %s"
                        % (sc.name, sc.errno))
        if err != want:
            runner.fail(event, "runtime error in %s call: Expected errno %d (%s) but got %d (%s)"
                        % (sc.name, want, _strerror(want), err, _strerror(err)))
    if out is not None:
        msg = out()
        if msg:
            runner.fail(event, "runtime error in %s call: %s" % (sc.name, msg))


# ---------------------------------------------------------------- the calls
# Each returns (call, post): call() runs in the kernel; post(result) turns the
# kernel's result into the C return value (and an optional check of out-params).

def _socket(runner, args):
    from .run import SocketState
    domain = _arg(args, 0, "domain")
    dom = 2 if domain is Ellipsis else value(runner, domain)
    typ = value(runner, _arg(args, 1, "type"))
    proto = value(runner, _arg(args, 2, "protocol"))
    task = runner.task

    def post(fd):
        s = SocketState()
        s.protocol = IPPROTO_UDP if typ & 0xF == 2 else IPPROTO_TCP
        s.live_fd = fd
        s.local_ip = inet_aton(runner.config.local_ip)
        s.remote_ip = inet_aton(runner.config.remote_ip)
        runner.sock = s
        return fd, None
    return (lambda: sys_socket(task, dom, typ, proto)), post


def _bind(runner, args):
    fd = _fd(runner, _arg(args, 0, "fd"))
    addr = _sockaddr(runner, _arg(args, 1, "addr"), True)

    def post(r):
        s = runner.sock
        if s is not None and s.live_fd == fd:
            s.local_port = addr[1]
        return r, None
    return (lambda: sys_bind(runner.task, fd, addr)), post


def _listen(runner, args):
    from .run import PASSIVE_LISTENING
    fd = _fd(runner, _arg(args, 0, "fd"))
    backlog = value(runner, _arg(args, 1, "backlog"))

    def post(r):
        s = runner.sock
        if s is not None and s.live_fd == fd:
            s.state = PASSIVE_LISTENING
        return r, None
    return (lambda: sys_listen(runner.task, fd, backlog)), post


def _accept(runner, args):
    fd = _fd(runner, _arg(args, 0, "fd"))

    def post(r):
        newfd = r[0]
        s = runner.sock
        if s is not None and s.live_fd in (None, fd):
            s.live_fd = newfd
        return newfd, None
    return (lambda: sys_accept(runner.task, fd, 0)), post


def _connect(runner, args):
    from .run import ACTIVE_CONNECTING
    fd = _fd(runner, _arg(args, 0, "fd"))
    addr = _sockaddr(runner, _arg(args, 1, "addr"), False)
    s = runner.sock
    if s is not None and s.live_fd == fd:
        s.state = ACTIVE_CONNECTING
        s.remote_ip = inet_aton(addr[0])
        s.remote_port = addr[1]
    return (lambda: sys_connect(runner.task, fd, addr)), None


def _len_of(data):
    return len(data[0]) if isinstance(data, (list, tuple)) else len(data)


def _recv_common(runner, fd, size, flags):
    def post(r):
        return _len_of(r), None
    return (lambda: sys_recvfrom(runner.task, fd, size, flags)), post


def _read(runner, args):
    fd = _fd(runner, _arg(args, 0, "fd"))
    size = value(runner, _arg(args, 2, "count"))
    return _recv_common(runner, fd, size, 0)


def _recv(runner, args):
    fd = _fd(runner, _arg(args, 0, "fd"))
    size = value(runner, _arg(args, 2, "len"))
    flags = value(runner, args[3]) if len(args) > 3 else 0
    return _recv_common(runner, fd, size, flags)


def _send_common(runner, fd, size, flags, addr=None):
    data = bytes(size)
    return (lambda: sys_sendto(runner.task, fd, data, flags, addr)), None


def _write(runner, args):
    fd = _fd(runner, _arg(args, 0, "fd"))
    return _send_common(runner, fd, value(runner, _arg(args, 2, "count")), 0)


def _send(runner, args):
    fd = _fd(runner, _arg(args, 0, "fd"))
    flags = value(runner, args[3]) if len(args) > 3 else 0
    return _send_common(runner, fd, value(runner, _arg(args, 2, "len")), flags)


def _sendto(runner, args):
    fd = _fd(runner, _arg(args, 0, "fd"))
    flags = value(runner, args[3]) if len(args) > 3 else 0
    addr = None
    if len(args) > 4 and args[4] is not Ellipsis:
        addr = _sockaddr(runner, args[4], False)
    elif len(args) > 4:
        addr = _sockaddr(runner, Ellipsis, False)
        s = runner.sock
        if s is not None and s.live_fd == fd:
            from .run import ACTIVE_CONNECTING
            if not s.local_port:
                s.state = ACTIVE_CONNECTING
            s.remote_port = addr[1]
    return _send_common(runner, fd, value(runner, _arg(args, 2, "len")), flags, addr)


def _iov_len(runner, iov):
    """Total length of a script iovec array: [{..., 1000}, {iov_base=..., iov_len=500}]."""
    if not isinstance(iov, list):
        raise SyscallError("expected an array of struct iovec")
    total = 0
    for st in iov:
        if not isinstance(st, Struct):
            raise SyscallError("expected struct iovec")
        n = value(runner, st.get("iov_len", st.get(1, 0)))
        if n < 0:
            raise SyscallError("negative iov_len")
        total += n
    return total


def _writev(runner, args):
    fd = _fd(runner, _arg(args, 0, "fd"))
    return _send_common(runner, fd, _iov_len(runner, _arg(args, 1, "iov")), 0)


def _readv(runner, args):
    fd = _fd(runner, _arg(args, 0, "fd"))
    return _recv_common(runner, fd, _iov_len(runner, _arg(args, 1, "iov")), 0)


def _close(runner, args):
    script_fd = value(runner, _arg(args, 0, "fd"))
    fd = _fd(runner, script_fd)

    def post(r):
        runner.fds.pop(script_fd, None)
        return r, None
    return (lambda: sys_close(runner.task, fd)), post


def _shutdown(runner, args):
    fd = _fd(runner, _arg(args, 0, "fd"))
    how = value(runner, _arg(args, 1, "how"))
    return (lambda: sys_shutdown(runner.task, fd, how)), None


def _optval(runner, level, name, expr):
    if isinstance(expr, bytes):
        return expr
    if isinstance(expr, Struct):
        if "l_onoff" in expr:
            return [value(runner, expr["l_onoff"]), value(runner, expr.get("l_linger", 0))]
        if "tv_sec" in expr:
            return value(runner, expr["tv_sec"]) + value(runner, expr.get("tv_usec", 0)) / 1e6
        raise SyscallError("unsupported option value struct")
    return value(runner, expr)


def _setsockopt(runner, args):
    fd = _fd(runner, _arg(args, 0, "fd"))
    level = value(runner, _arg(args, 1, "level"))
    name = value(runner, _arg(args, 2, "optname"))
    val = _optval(runner, level, name, _arg(args, 3, "optval"))
    return (lambda: sys_setsockopt(runner.task, fd, level, name, val)), None


def _getsockopt(runner, args):
    fd = _fd(runner, _arg(args, 0, "fd"))
    level = value(runner, _arg(args, 1, "level"))
    name = value(runner, _arg(args, 2, "optname"))
    expect = _arg(args, 3, "optval")

    def post(r):
        def check():
            if expect is Ellipsis:
                return None
            if isinstance(expect, Struct) and "l_onoff" in expect:
                return None
            if isinstance(expect, bytes):
                got = r if isinstance(r, bytes) else str(r).encode()
                if got.rstrip(b"\0") != expect.rstrip(b"\0"):
                    return "Bad getsockopt optval: expected: '%s' actual: '%s'" % (
                        expect.decode(errors="replace"), got.decode(errors="replace"))
                return None
            want = value(runner, expect)
            got = r
            if isinstance(got, (bytes, bytearray)):
                got = int.from_bytes(got[:4], "little", signed=True)
            if got != want:
                return "Bad getsockopt optval: expected: %d actual: %d" % (want, got)
            return None
        return 0, check
    return (lambda: sys_getsockopt(runner.task, fd, level, name, 4)), post


def _fcntl(runner, args):
    fd = _fd(runner, _arg(args, 0, "fd"))
    cmd = value(runner, _arg(args, 1, "cmd"))
    if cmd == SYMBOLS["F_SETFL"]:
        flags = value(runner, _arg(args, 2, "flags"))
        return (lambda: sys_setblocking(runner.task, fd, flags & SYMBOLS["O_NONBLOCK"])), None
    if cmd == SYMBOLS["F_GETFL"]:
        def getfl():
            sock = runner.task.fds.get(fd)
            if sock is None:
                raise KernelError(_errno.EBADF)
            return SYMBOLS["O_RDWR"] | (SYMBOLS["O_NONBLOCK"] if sock.nonblock else 0)
        return getfl, None
    raise SyscallError("unsupported fcntl command %d" % cmd)


def _poll(runner, args):
    fds = _arg(args, 0, "fds")
    timeout_ms = value(runner, _arg(args, 2, "timeout"))
    if not isinstance(fds, list):
        raise SyscallError("poll: expected an array of struct pollfd")
    req = []
    want = []
    for st in fds:
        if not isinstance(st, Struct):
            raise SyscallError("poll: expected struct pollfd")
        req.append((_fd(runner, st.get("fd")), value(runner, st.get("events", 0))))
        want.append(value(runner, st.get("revents", 0)))
    timeout = None if timeout_ms < 0 else timeout_ms / 1000.0

    def post(r):
        got = dict(r) if isinstance(r, list) else {}

        def check():
            for (fd, _), w in zip(req, want, strict=True):
                g = got.get(fd, 0)
                if g != w:
                    return "Expected revents of 0x%x but got 0x%x" % (w, g)
            return None
        return len(got), check
    return (lambda: sys_poll(runner.task, req, timeout)), post


CALLS = {
    "socket": _socket, "bind": _bind, "listen": _listen, "accept": _accept,
    "connect": _connect, "read": _read, "recv": _recv, "recvfrom": _recv, "write": _write,
    "send": _send, "sendto": _sendto, "close": _close, "shutdown": _shutdown,
    "setsockopt": _setsockopt, "getsockopt": _getsockopt, "fcntl": _fcntl, "poll": _poll,
    "writev": _writev, "readv": _readv,
}
