"""struct sock, struct socket, wait queues and the generic datagram helpers.

Linux: net/core/sock.c, net/core/datagram.c, include/net/sock.h,
include/linux/net.h, include/linux/wait.h
"""
import errno

from .dev import KernelError
from .entry import SyscallBlock
from .skbuff import SKB_DROP_REASON_SOCKET_RCVBUFF, SkBuffHead, kfree_skb, skb_put

# include/uapi/linux/eventpoll.h
EPOLLIN = 0x001
EPOLLPRI = 0x002
EPOLLOUT = 0x004
EPOLLERR = 0x008
EPOLLHUP = 0x010
EPOLLRDNORM = 0x040
EPOLLWRNORM = 0x100
EPOLLRDHUP = 0x2000

# socket states (struct socket)
SS_FREE = 0
SS_UNCONNECTED = 1
SS_CONNECTING = 2
SS_CONNECTED = 3
SS_DISCONNECTING = 4

# sk_shutdown bits
RCV_SHUTDOWN = 1
SEND_SHUTDOWN = 2

SOCK_MIN_RCVBUF = 2304
SOCK_MIN_SNDBUF = 4608


class WaitQueueHead:
    """wait_queue_head_t: callbacks run by wake_up (the runtime parks tasks here)."""

    __slots__ = ("entries",)

    def __init__(self):
        self.entries = []

    def add(self, func):
        self.entries.append(func)

    def remove(self, func):
        try:
            self.entries.remove(func)
        except ValueError:
            pass

    def wake_up(self, mask):
        for func in list(self.entries):
            func(mask)


class ProtoOps:
    """struct proto_ops: the socket-level (BSD) operations of a family and type."""

    __slots__ = ("family", "release", "bind", "connect", "accept", "getname", "poll",
                 "listen", "shutdown", "setsockopt", "getsockopt", "sendmsg", "recvmsg")

    def __init__(self, **ops):
        for name in self.__slots__:
            setattr(self, name, ops.pop(name, None))
        if ops:
            raise TypeError("unknown proto_ops: %s" % ", ".join(ops))


class Proto:
    """struct proto: the transport protocol's operations (raw_prot, udp_prot...)."""

    __slots__ = ("name", "close", "connect", "disconnect", "init", "destroy",
                 "setsockopt", "getsockopt", "sendmsg", "recvmsg", "bind", "hash",
                 "unhash", "get_port", "poll")

    def __init__(self, name, **ops):
        self.name = name
        for n in self.__slots__[1:]:
            setattr(self, n, ops.pop(n, None))
        if ops:
            raise TypeError("unknown proto ops: %s" % ", ".join(ops))


class Sock:
    """struct sock with struct inet_sock folded in."""

    __slots__ = (
        "net", "sk_family", "sk_type", "sk_protocol", "sk_prot", "sk_socket",
        "sk_state", "sk_receive_queue", "sk_rmem_alloc", "sk_rcvbuf", "sk_sndbuf",
        "sk_wmem_alloc", "sk_err", "sk_err_soft", "sk_shutdown", "sk_wq",
        "sk_rcvtimeo", "sk_sndtimeo", "sk_reuse", "sk_reuseport", "sk_broadcast",
        "sk_bound_dev_if", "sk_drops", "sk_userlocks", "sk_priority", "sk_mark",
        "sk_dst_cache", "dst_genid", "sk_keepalive",
        "inet_saddr", "inet_rcv_saddr", "inet_num", "inet_sport", "inet_daddr",
        "inet_dport", "inet_id", "uc_ttl", "tos", "hdrincl", "recverr", "pmtudisc",
        "cmsg_flags", "proto_data",
    )

    def __init__(self, net, family, type, protocol, prot):
        self.net = net
        self.sk_family = family
        self.sk_type = type
        self.sk_protocol = protocol
        self.sk_prot = prot
        self.sk_socket = None
        self.sk_state = 7                  # TCP_CLOSE, as Linux uses for every type
        self.sk_receive_queue = SkBuffHead()
        self.sk_rmem_alloc = 0
        self.sk_rcvbuf = net.sysctl["net.core.rmem_default"]
        self.sk_sndbuf = net.sysctl["net.core.wmem_default"]
        self.sk_wmem_alloc = 0
        self.sk_err = 0
        self.sk_err_soft = 0
        self.sk_shutdown = 0
        self.sk_wq = WaitQueueHead()
        self.sk_rcvtimeo = None            # None: block forever (MAX_SCHEDULE_TIMEOUT)
        self.sk_sndtimeo = None
        self.sk_reuse = 0
        self.sk_reuseport = 0
        self.sk_broadcast = 0
        self.sk_bound_dev_if = 0
        self.sk_drops = 0
        self.sk_userlocks = 0
        self.sk_priority = 0
        self.sk_mark = 0
        self.sk_dst_cache = None
        self.dst_genid = -1
        self.sk_keepalive = 0
        self.inet_saddr = 0
        self.inet_rcv_saddr = 0
        self.inet_num = 0
        self.inet_sport = 0
        self.inet_daddr = 0
        self.inet_dport = 0
        self.inet_id = 0                   # a connected socket's IP ID counter
        self.uc_ttl = -1                   # -1: use net.ipv4.ip_default_ttl
        self.tos = 0
        self.hdrincl = 0
        self.recverr = 0
        self.pmtudisc = 1                  # IP_PMTUDISC_WANT
        self.cmsg_flags = 0                # IP_CMSG_*: control messages recvmsg returns
        self.proto_data = None             # protocol-private state (icmp filter...)


class Socket:
    """struct socket: the user-visible side (state, ops, file flags)."""

    __slots__ = ("type", "state", "ops", "sk", "nonblock", "family", "f_count")

    def __init__(self, family, type):
        # Emulation note: struct file is folded in: f_count counts the
        # descriptors (dup) that share this socket and its O_NONBLOCK.
        self.f_count = 1
        self.family = family
        self.type = type
        self.state = SS_UNCONNECTED
        self.ops = None
        self.sk = None
        self.nonblock = False


def sock_rmem_free(skb):
    sk = skb.sk
    if sk is not None:
        sk.sk_rmem_alloc -= skb.truesize
        skb.sk = None


def sock_queue_rcv_skb(sk, skb):
    """Queue skb on sk's receive queue if the receive buffer has room."""
    if sk.sk_rmem_alloc + skb.truesize > sk.sk_rcvbuf:
        sk.sk_drops += 1
        kfree_skb(skb, SKB_DROP_REASON_SOCKET_RCVBUFF)
        return -errno.ENOMEM
    skb.sk = sk
    skb.destructor = sock_rmem_free
    sk.sk_rmem_alloc += skb.truesize
    skb.dev = None       # the socket owns it now; drops no longer count per device
    sk.sk_receive_queue.q.append(skb)
    # sk_data_ready -> sock_def_readable, written out.
    if skb.trace is not None:
        skb.trace.hit("sock_def_readable")
    if sk.sk_wq.entries:
        sk.sk_wq.wake_up(EPOLLIN | EPOLLRDNORM)
    return 0


def sk_data_ready(sk, skb=None):
    """sk->sk_data_ready: new data to read (skb, when given, carries the trace).

    Emulation note: Linux calls through the per-socket pointer; every emu
    socket has the default, sock_def_readable, so this calls it directly.
    """
    sock_def_readable(sk, skb)


def sock_def_readable(sk, skb=None):
    """The default sk_data_ready: wake whoever waits on the socket's wait queue to read."""
    if skb is not None and skb.trace is not None:
        skb.trace.hit("sock_def_readable")
    if sk.sk_wq.entries:
        sk.sk_wq.wake_up(EPOLLIN | EPOLLRDNORM)


def skb_add_data_nocache(sk, skb, data):
    """Append user bytes to skb's linear data (include/net/sock.h; the copy of a
    send path's getfrag: __ip_append_data for UDP, tcp_sendmsg_locked for TCP).

    Emulation note: Linux copies from an iov_iter, bypassing the cache when the
    route allows (NETIF_F_NOCACHE_COPY); emu copies a bytes-like object.
    """
    net = sk.net
    if net.tracer is not None:
        net.tracer.send_hit("skb_add_data_nocache")
    n = len(data)
    off = skb_put(skb, n)
    skb.buf[off:off + n] = data
    return 0


def sk_error_report(sk):
    sk.net.send_epoch += 1     # sk_err set: the next send reports it (no send credit holds)
    if sk.sk_wq.entries:
        sk.sk_wq.wake_up(EPOLLERR)


def sock_error(sk):
    """Take and clear the pending error (SO_ERROR semantics): 0 or an errno."""
    err = sk.sk_err
    sk.sk_err = 0
    return err


def __skb_try_recv_datagram(sk, flags):
    """Take (or peek at) the next queued datagram, or None (net/core/datagram.c).

    A pending error (ICMP port unreachable...) is reported before data, once.
    """
    err = sock_error(sk)
    if err:
        raise KernelError(err)
    q = sk.sk_receive_queue.q
    if q:
        return q[0] if flags & MSG_PEEK else q.popleft()
    return None


def __skb_wait_for_more_packets(sk, timeo):
    """Sleep on sk's wait queue until a datagram, an error or a shutdown
    comes, or timeo runs out (EAGAIN) (net/core/datagram.c).

    Emulation note: the runtime parks the call and runs it again when
    sk_data_ready wakes the queue, as Linux's reader loops back to
    __skb_try_recv_datagram.
    """
    raise SyscallBlock([sk.sk_wq], timeo)


def skb_recv_datagram(sk, flags):
    """The next queued datagram, None at EOF; waits unless non-blocking
    (net/core/datagram.c: skb_recv_datagram -> __skb_recv_datagram)."""
    skb = __skb_try_recv_datagram(sk, flags)
    if skb is not None or sk.sk_shutdown & RCV_SHUTDOWN:
        return skb
    if flags & MSG_DONTWAIT or sk.sk_socket is None or sk.sk_socket.nonblock:
        raise KernelError(errno.EAGAIN)
    __skb_wait_for_more_packets(sk, sk.sk_rcvtimeo)


class IovIter:
    """The reader's buffer of a stream recvmsg (struct iov_iter): what
    skb_copy_datagram_iter copies into it, piece by piece.

    Emulation note: the pieces are kept as views of the skbs' buffers and
    copied once, into the bytes the call returns (done()): one copy to user
    space, as Linux makes, where copying each piece and joining them made two.
    A piece's skb is freed meanwhile, but nothing writes to a freed skb's buffer.
    """

    __slots__ = ("parts", "n")

    def __init__(self):
        self.parts = []
        self.n = 0

    def add(self, b):
        self.parts.append(b)
        self.n += len(b)

    def __bool__(self):
        return self.n > 0

    def done(self):
        parts = self.parts
        data = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
        for p in parts:
            if type(p) is memoryview:
                p.release()      # the skbs' buffers are theirs again (a closure may keep us)
        self.parts = [data]
        return data


def skb_copy_datagram_iter(skb, offset, length, to=None):
    """Copy length bytes of skb from offset (past skb.data) out to the reader
    (net/core/datagram.c; the notes' skb_copy_datagram_iovec, its name before
    Linux 3.19). The bytes returned are what recvmsg hands to user space; with
    `to` (an IovIter) they go there instead (TCP's reads of many skbs).

    Emulation note: Linux writes into the caller's iov_iter; emu returns bytes.
    """
    if skb.trace is not None:
        skb.trace.hit("skb_copy_datagram_iter", length)
    start = skb.data + offset
    if offset + length <= skb.len - skb.data_len:
        if to is not None:
            to.add(memoryview(skb.buf)[start:start + length])     # copied by to.done()
            return length
        return bytes(memoryview(skb.buf)[start:start + length])    # the linear part (one copy)
    from .skbuff import skb_copy_bits
    data = bytes(skb_copy_bits(skb, offset, length))
    if to is not None:
        to.add(data)
        return length
    return data


def sk_wait_data(sk, timeo, resume, partial=None):
    """Sleep until data arrives on sk's receive queue (sk_data_ready wakes it)
    or timeo runs out: TCP recvmsg's wait.

    Emulation note: the sleep is the runtime's, not ours: this raises
    SyscallBlock on the socket's wait queue and the runtime parks the call and
    runs resume on a wake-up; partial gives what to return on a timeout.
    """
    raise SyscallBlock([sk.sk_wq], timeo, resume=resume, partial=partial)


def datagram_poll(sock):
    """Readiness mask of a datagram socket (net/core/datagram.c)."""
    sk = sock.sk
    mask = 0
    if sk.sk_err or sk.sk_receive_queue.q:
        mask |= EPOLLERR if sk.sk_err else 0
    if sk.sk_receive_queue.q:
        mask |= EPOLLIN | EPOLLRDNORM
    if sk.sk_shutdown & RCV_SHUTDOWN:
        mask |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP
    if sk.sk_shutdown == RCV_SHUTDOWN | SEND_SHUTDOWN:
        mask |= EPOLLHUP
    if sk.sk_wmem_alloc < sk.sk_sndbuf:
        mask |= EPOLLOUT | EPOLLWRNORM
    return mask


# include/linux/socket.h
MSG_OOB = 0x1
MSG_PEEK = 0x2
MSG_DONTROUTE = 0x4
MSG_TRUNC = 0x20
MSG_DONTWAIT = 0x40
MSG_WAITALL = 0x100
MSG_NOSIGNAL = 0x4000
MSG_MORE = 0x8000
