"""sendmsg/recvmsg with control messages, and dup (one socket, two descriptors)."""
import errno
import struct

import pytest

from emu.kernel.core.dev import KernelError
from emu.kernel.core.scm import MSG_CTRUNC
from emu.kernel.socket import (
    SOCK_NONBLOCK, SOL_SOCKET, syscall_lookup, sys_bind, sys_close, sys_dup, sys_getsockname,
    sys_recvfrom, sys_recvmsg, sys_sendmsg, sys_sendto, sys_setblocking, sys_setsockopt,
    sys_socket,
)
from tests.kernel.harness import bridge_lab

AF_INET, SOCK_STREAM, SOCK_DGRAM = 2, 1, 2
SOL_IP, IP_TOS, IP_TTL, IP_PKTINFO, IP_RECVTTL, IP_RECVTOS = 0, 1, 2, 8, 12, 13
SCM_RIGHTS, SO_MARK = 1, 36


@pytest.fixture
def lab():
    return bridge_lab()


def errno_of(fn, *args):
    with pytest.raises(KernelError) as e:
        fn(*args)
    return e.value.errno


def udp(task, port=None):
    fd = sys_socket(task, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    if port is not None:
        sys_bind(task, fd, ("0.0.0.0", port))
    return fd


def test_recvmsg_returns_ttl_tos_and_pktinfo_the_socket_asked_for(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv, cli = udp(t2, 5000), udp(t1)
    for opt in (IP_PKTINFO, IP_RECVTTL, IP_RECVTOS):
        sys_setsockopt(t2, srv, SOL_IP, opt, 1)
    sys_setsockopt(t1, cli, SOL_IP, IP_TOS, 0x10)
    sys_sendto(t1, cli, b"hello", 0, ("10.0.0.2", 5000))
    lab.run()
    data, addr, flags, cmsgs = sys_recvmsg(t2, srv, 100, 0, 1024)
    assert data == b"hello" and addr[0] == "10.0.0.1" and flags == 0
    ifindex = lab.dev("h2", "eth0").ifindex
    dst = bytes((10, 0, 0, 2))
    # ip_cmsg_recv_offset's order; TTL an int, TOS one byte, in_pktinfo 12 bytes.
    assert cmsgs == [[SOL_IP, IP_PKTINFO, struct.pack("=i", ifindex) + dst + dst],
                     [SOL_IP, IP_TTL, struct.pack("=i", 64)],
                     [SOL_IP, IP_TOS, b"\x10"]]


def test_recvmsg_truncates_control_messages_like_put_cmsg(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv, cli = udp(t2, 5001), udp(t1)
    sys_setsockopt(t2, srv, SOL_IP, IP_RECVTTL, 1)
    sys_setsockopt(t2, srv, SOL_IP, IP_RECVTOS, 1)
    for _ in range(3):
        sys_sendto(t1, cli, b"x", 0, ("10.0.0.2", 5001))
    lab.run()
    # Room for the TTL message only (CMSG_SPACE(4) == 24): the TOS one is cut.
    _, _, flags, cmsgs = sys_recvmsg(t2, srv, 10, 0, 24)
    assert flags & MSG_CTRUNC and [c[1] for c in cmsgs] == [IP_TTL]
    # No room at all: nothing, and MSG_CTRUNC.
    _, _, flags, cmsgs = sys_recvmsg(t2, srv, 10, 0, 0)
    assert flags & MSG_CTRUNC and cmsgs == []
    # Without the options a socket gets no control messages and no flag.
    sys_setsockopt(t2, srv, SOL_IP, IP_RECVTTL, 0)
    sys_setsockopt(t2, srv, SOL_IP, IP_RECVTOS, 0)
    assert sys_recvmsg(t2, srv, 10, 0, 1024)[2:] == (0, [])


def test_sendmsg_ttl_and_tos_apply_to_that_datagram_only(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv, cli = udp(t2, 5002), udp(t1)
    sys_setsockopt(t2, srv, SOL_IP, IP_RECVTTL, 1)
    sys_setsockopt(t2, srv, SOL_IP, IP_RECVTOS, 1)
    ctl = [[SOL_IP, IP_TTL, struct.pack("=i", 7)], [SOL_IP, IP_TOS, b"\x20"]]
    assert sys_sendmsg(t1, cli, b"a", 0, ("10.0.0.2", 5002), ctl) == 1
    sys_sendmsg(t1, cli, b"b", 0, ("10.0.0.2", 5002), [])
    lab.run()
    _, _, _, c1 = sys_recvmsg(t2, srv, 10, 0, 1024)
    _, _, _, c2 = sys_recvmsg(t2, srv, 10, 0, 1024)
    assert c1 == [[SOL_IP, IP_TTL, struct.pack("=i", 7)], [SOL_IP, IP_TOS, b"\x20"]]
    assert c2 == [[SOL_IP, IP_TTL, struct.pack("=i", 64)], [SOL_IP, IP_TOS, b"\x00"]]


def test_sendmsg_refuses_what_linux_refuses(lab):
    t = lab.task("h1")
    u = udp(t)
    dst = ("10.0.0.2", 9)
    assert errno_of(sys_sendmsg, t, u, b"x", 0, dst, [[SOL_IP, IP_TTL, struct.pack("=i", 0)]]) == errno.EINVAL
    assert errno_of(sys_sendmsg, t, u, b"x", 0, dst, [[SOL_IP, IP_TTL, b"\x05"]]) == errno.EINVAL
    assert errno_of(sys_sendmsg, t, u, b"x", 0, dst, [[SOL_IP, 99, b""]]) == errno.EINVAL
    assert errno_of(sys_sendmsg, t, u, b"x", 0, dst, [[SOL_SOCKET, 77, b""]]) == errno.EINVAL
    # Other levels are not IP's business, SCM_RIGHTS is AF_UNIX's: both skipped.
    assert sys_sendmsg(t, u, b"x", 0, dst, [[279, 3, b"abcd"], [SOL_SOCKET, SCM_RIGHTS, b"\0" * 4]]) == 1
    # The socket's own TTL is back after a per-call one.
    sys_sendmsg(t, u, b"x", 0, dst, [[SOL_IP, IP_TTL, struct.pack("=i", 3)]])
    assert t.fds[u].sk.uc_ttl == -1
    # A stream socket: SOL_IP messages ignored, a bad SOL_SOCKET one is EINVAL (tcp_sendmsg_locked).
    s = sys_socket(t, AF_INET, SOCK_STREAM, 0)
    assert errno_of(sys_sendmsg, t, s, b"x", 0, None, [[SOL_SOCKET, 77, b""]]) == errno.EINVAL
    # The argument policy: a malformed control list is EINVAL before the kernel runs.
    with pytest.raises(KernelError) as e:
        syscall_lookup("sendmsg", [u, b"x", 0, None, [[0, 2]]])
    assert e.value.errno == errno.EINVAL


def test_dup_shares_the_socket_until_the_last_descriptor_closes(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv, cli = udp(t2, 5003), udp(t1)
    twin = sys_dup(t2, srv)
    assert twin != srv and sys_getsockname(t2, twin) == sys_getsockname(t2, srv)
    # O_NONBLOCK is the open file's: shared between the two descriptors.
    sys_setblocking(t2, twin, False)
    assert t2.fds[srv].nonblock is False
    sys_setblocking(t2, twin, True)
    sys_close(t2, srv)
    sys_sendto(t1, cli, b"still here", 0, ("10.0.0.2", 5003))
    lab.run()
    assert sys_recvfrom(t2, twin, 100)[0] == b"still here"
    sys_close(t2, twin)
    assert errno_of(sys_dup, t2, twin) == errno.EBADF
    # Closed for good: the port is free again.
    sys_bind(t2, udp(t2), ("0.0.0.0", 5003))
