"""The system call layer over raw IPv4 sockets: errnos, blocking, options.

Linux: net/socket.c, net/ipv4/af_inet.c (inet_create), net/ipv4/raw.c
"""
import errno
import socket
import struct

import dpkt
import pytest

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError
from emu.kernel.core.skbuff import NET_SKB_PAD, SKB_TRUESIZE_OVERHEAD
from emu.kernel.core.sock import EPOLLIN, MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC, SOCK_MIN_RCVBUF
from emu.kernel.ipv4.ip_sockglue import IP_TTL, SOL_IP
from emu.kernel.ipv4.raw import ICMP_FILTER, SOL_RAW
from emu.kernel.socket import (
    SO_BROADCAST, SO_RCVBUF, SO_RCVTIMEO, SOCK_NONBLOCK, SOL_SOCKET, SyscallBlock, sys_bind,
    sys_close, sys_connect, sys_getsockopt, sys_poll, sys_recvfrom, sys_sendto,
    sys_setblocking, sys_setsockopt, sys_socket, task_exit,
)

from .harness import AF_INET, IPPROTO_ICMP, SOCK_RAW, bridge_lab, icmp_echo_bytes

AF_INET6 = 10
SOCK_SEQPACKET = 5
IPPROTO_RAW = 255


def errno_of(fn, *args):
    with pytest.raises(KernelError) as e:
        fn(*args)
    return e.value.errno


@pytest.fixture
def lab():
    return bridge_lab()


@pytest.fixture
def h1(lab):
    return lab.task("h1")


def icmp_sock(task, nonblock=False):
    return sys_socket(task, AF_INET, SOCK_RAW | (SOCK_NONBLOCK if nonblock else 0), IPPROTO_ICMP)


# ---------------------------------------------------------------- socket() and descriptors

def test_socket_errnos(h1):
    assert errno_of(sys_socket, h1, AF_INET6, SOCK_RAW, IPPROTO_ICMP) == errno.EAFNOSUPPORT
    assert errno_of(sys_socket, h1, AF_INET, SOCK_SEQPACKET, 0) == errno.ESOCKTNOSUPPORT
    # SOCK_RAW has only the wildcard entry: protocol 0 is not a protocol.
    assert errno_of(sys_socket, h1, AF_INET, SOCK_RAW, 0) == errno.EPROTONOSUPPORT
    assert errno_of(sys_socket, h1, AF_INET, SOCK_RAW | 0x100, IPPROTO_ICMP) == errno.EINVAL
    assert h1.fds == {}


def test_descriptors_and_ebadf(h1):
    fd = icmp_sock(h1)
    assert fd == 3 and icmp_sock(h1) == 4
    assert errno_of(sys_sendto, h1, 99, b"x", 0, ("10.0.0.2", 0)) == errno.EBADF
    assert errno_of(sys_recvfrom, h1, 99, 100) == errno.EBADF
    assert errno_of(sys_bind, h1, 99, ("10.0.0.1", 0)) == errno.EBADF
    sys_close(h1, fd)
    assert errno_of(sys_close, h1, fd) == errno.EBADF
    assert errno_of(sys_recvfrom, h1, fd, 100) == errno.EBADF


def test_task_exit_closes_everything(lab, h1):
    icmp_sock(h1)
    icmp_sock(h1)
    raw_hash = lab.nets["h1"].proto["raw_hash"]
    assert len(raw_hash[IPPROTO_ICMP]) == 2
    task_exit(h1)
    assert h1.fds == {} and raw_hash[IPPROTO_ICMP] == []


# ---------------------------------------------------------------- sendto

def test_sendto_errnos(h1):
    fd = icmp_sock(h1)
    echo = icmp_echo_bytes()
    assert errno_of(sys_sendto, h1, fd, echo, 0, None) == errno.EDESTADDRREQ
    assert errno_of(sys_sendto, h1, fd, echo, 0, ("192.0.2.1", 0)) == errno.ENETUNREACH
    assert errno_of(sys_sendto, h1, fd, echo, 0, ("10.0.0.255", 0)) == errno.EACCES
    assert errno_of(sys_sendto, h1, fd, echo, 0, ("not an address", 0)) == errno.EINVAL
    assert errno_of(sys_sendto, h1, fd, b"x" * 65536, 0, ("10.0.0.2", 0)) == errno.EMSGSIZE


def test_connected_socket_needs_no_address(lab, h1):
    fd = icmp_sock(h1, nonblock=True)
    sys_connect(h1, fd, ("10.0.0.2", 0))
    assert sys_sendto(h1, fd, icmp_echo_bytes(), 0, None) == 64
    lab.run()
    pkt, addr, _ = sys_recvfrom(h1, fd, 2000)
    assert addr == ("10.0.0.2", 0) and pkt[20] == 0


def test_broadcast_with_so_broadcast_goes_to_the_broadcast_mac(lab, h1):
    fd = icmp_sock(h1)
    sys_setsockopt(h1, fd, SOL_SOCKET, SO_BROADCAST, 1)
    assert sys_getsockopt(h1, fd, SOL_SOCKET, SO_BROADCAST) == 1
    port = lab.port("h1", "eth0")
    start = len(port.sent)
    sys_sendto(h1, fd, icmp_echo_bytes(), 0, ("10.0.0.255", 0))
    lab.run()
    [f] = port.sent[start:]                 # no ARP for a broadcast address
    eth = dpkt.ethernet.Ethernet(f)
    assert eth.dst == b"\xff" * 6 and eth.type == dpkt.ethernet.ETH_TYPE_IP
    assert eth.data.dst == socket.inet_aton("10.0.0.255")
    # h2 got it as a broadcast and, by default, does not answer broadcast echoes.
    assert lab.nets["h2"].mib["Icmp"]["InEchos"] == 1
    assert lab.nets["h2"].mib["Icmp"]["OutEchoReps"] == 0


def test_ip_ttl_option(lab, h1):
    fd = icmp_sock(h1)
    assert sys_getsockopt(h1, fd, SOL_IP, IP_TTL) == 64
    sys_setsockopt(h1, fd, SOL_IP, IP_TTL, 5)
    assert errno_of(sys_setsockopt, h1, fd, SOL_IP, IP_TTL, 256) == errno.EINVAL
    port = lab.port("h1", "eth0")
    start = len(port.sent)
    sys_sendto(h1, fd, icmp_echo_bytes(), 0, ("10.0.0.2", 0))
    lab.run()
    [ip] = [dpkt.ethernet.Ethernet(f).data for f in port.sent[start:]
            if dpkt.ethernet.Ethernet(f).type == dpkt.ethernet.ETH_TYPE_IP]
    assert ip.ttl == 5


def test_ip_hdrincl_fills_in_source_id_and_checksum(lab, h1):
    fd = sys_socket(h1, AF_INET, SOCK_RAW, IPPROTO_RAW)
    echo = icmp_echo_bytes(seq=4)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(echo), 0, 0, 33, IPPROTO_ICMP, 0,
                      b"\0" * 4, socket.inet_aton("10.0.0.2"))
    port = lab.port("h1", "eth0")
    start = len(port.sent)
    sys_sendto(h1, fd, hdr + echo, 0, ("10.0.0.2", 0))
    lab.run()
    [ip] = [dpkt.ethernet.Ethernet(f).data for f in port.sent[start:]
            if dpkt.ethernet.Ethernet(f).type == dpkt.ethernet.ETH_TYPE_IP]
    assert ip.src == socket.inet_aton("10.0.0.1") and ip.ttl == 33 and ip.id != 0
    assert dpkt.in_cksum(bytes(ip)[:20]) == 0
    assert lab.nets["h2"].mib["Icmp"]["OutEchoReps"] == 1
    # A complete datagram larger than the MTU is refused, not fragmented.
    big = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 2000, 0, 0, 64, 253, 0,
                      b"\0" * 4, socket.inet_aton("10.0.0.2")) + bytes(1980)
    assert errno_of(sys_sendto, h1, fd, big, 0, ("10.0.0.2", 0)) == errno.EMSGSIZE
    assert errno_of(sys_sendto, h1, fd, b"short", 0, ("10.0.0.2", 0)) == errno.EINVAL


# ---------------------------------------------------------------- recvfrom and blocking

def test_nonblocking_recv_on_an_empty_queue_is_eagain(h1):
    fd = icmp_sock(h1, nonblock=True)
    assert errno_of(sys_recvfrom, h1, fd, 100) == errno.EAGAIN
    fd2 = icmp_sock(h1)
    assert errno_of(sys_recvfrom, h1, fd2, 100, MSG_DONTWAIT) == errno.EAGAIN
    sys_setblocking(h1, fd2, True)
    assert errno_of(sys_recvfrom, h1, fd2, 100) == errno.EAGAIN


def test_blocking_recv_raises_syscall_block(h1):
    fd = icmp_sock(h1)
    sk = h1.fds[fd].sk
    with pytest.raises(SyscallBlock) as e:
        sys_recvfrom(h1, fd, 100)
    assert e.value.wqs == [sk.sk_wq] and e.value.timeout is None
    assert e.value.on_timeout == errno.EAGAIN
    sys_setsockopt(h1, fd, SOL_SOCKET, SO_RCVTIMEO, 2.5)
    with pytest.raises(SyscallBlock) as e:
        sys_recvfrom(h1, fd, 100)
    assert e.value.timeout == 2.5


def test_a_reply_wakes_the_waiter_and_is_read(lab, h1):
    fd = icmp_sock(h1)
    with pytest.raises(SyscallBlock) as e:
        sys_recvfrom(h1, fd, 100)
    woken = []
    e.value.wqs[0].add(woken.append)
    sys_sendto(h1, fd, icmp_echo_bytes(seq=3), 0, ("10.0.0.2", 0))
    lab.run()
    assert woken and woken[0] & EPOLLIN
    [(ready, mask)] = sys_poll(h1, [(fd, EPOLLIN)], 0)
    assert ready == fd and mask == EPOLLIN
    pkt, addr, flags = sys_recvfrom(h1, fd, 2000)
    assert addr == ("10.0.0.2", 0) and flags == 0
    assert (pkt[0] >> 4, pkt[9]) == (4, IPPROTO_ICMP)    # raw sockets read the IP header
    assert pkt[20] == 0 and struct.unpack_from("!H", pkt, 26)[0] == 3
    assert sys_poll(h1, [(fd, EPOLLIN)], 0) == []
    with pytest.raises(SyscallBlock) as e:
        sys_poll(h1, [(fd, EPOLLIN)], 1.0)
    assert e.value.on_timeout == 0 and e.value.timeout == 1.0


def test_peek_and_trunc(lab, h1):
    fd = icmp_sock(h1, nonblock=True)
    sys_sendto(h1, fd, icmp_echo_bytes(), 0, ("10.0.0.2", 0))
    lab.run()
    first, _, flags = sys_recvfrom(h1, fd, 10, MSG_PEEK)
    assert len(first) == 10 and flags == MSG_TRUNC
    whole, _, flags = sys_recvfrom(h1, fd, 2000)
    assert whole[:10] == first and len(whole) == 84 and flags == 0
    assert errno_of(sys_recvfrom, h1, fd, 2000) == errno.EAGAIN


def test_close_wakes_waiters(h1):
    fd = icmp_sock(h1)
    with pytest.raises(SyscallBlock) as e:
        sys_recvfrom(h1, fd, 100)
    woken = []
    e.value.wqs[0].add(woken.append)
    sys_close(h1, fd)
    assert woken


# ---------------------------------------------------------------- receive side

def test_icmp_filter_hides_unwanted_types(lab, h1):
    fd = icmp_sock(h1, nonblock=True)
    sys_setsockopt(h1, fd, SOL_RAW, ICMP_FILTER, struct.pack("=I", 1 << 0))   # echo replies
    assert sys_getsockopt(h1, fd, SOL_RAW, ICMP_FILTER) == struct.pack("=I", 1)
    sys_sendto(h1, fd, icmp_echo_bytes(), 0, ("10.0.0.2", 0))
    lab.run()
    assert lab.nets["h1"].mib["Icmp"]["InEchoReps"] == 1
    assert errno_of(sys_recvfrom, h1, fd, 2000) == errno.EAGAIN


def test_raw_sockets_see_requests_the_kernel_answers(lab, h1):
    h2 = lab.task("h2")
    listener = icmp_sock(h2, nonblock=True)
    fd = icmp_sock(h1, nonblock=True)
    sys_sendto(h1, fd, icmp_echo_bytes(seq=8), 0, ("10.0.0.2", 0))
    lab.run()
    req, addr, _ = sys_recvfrom(h2, listener, 2000)
    assert addr == ("10.0.0.1", 0) and req[20] == 8
    rep, _, _ = sys_recvfrom(h1, fd, 2000)
    assert rep[20] == 0


def test_receive_buffer_limit_drops_and_counts(lab, h1):
    fd = icmp_sock(h1, nonblock=True)
    sys_setsockopt(h1, fd, SOL_SOCKET, SO_RCVBUF, 0)
    sk = h1.fds[fd].sk
    assert sys_getsockopt(h1, fd, SOL_SOCKET, SO_RCVBUF) == SOCK_MIN_RCVBUF == sk.sk_rcvbuf
    for seq in range(8):
        sys_sendto(h1, fd, icmp_echo_bytes(seq=seq), 0, ("10.0.0.2", 0))
    lab.run()
    # Each queued reply is charged its truesize: the frame's buffer plus overhead.
    truesize = NET_SKB_PAD + 14 + 84 + SKB_TRUESIZE_OVERHEAD
    fits = SOCK_MIN_RCVBUF // truesize
    assert sk.sk_rmem_alloc == fits * truesize
    got = 0
    while True:
        try:
            sys_recvfrom(h1, fd, 2000)
        except KernelError:
            break
        got += 1
    assert got == fits and sk.sk_drops == 8 - fits
    assert lab.nets["h1"].drop_reasons["SOCKET_RCVBUFF"] == 8 - fits
    assert sk.sk_rmem_alloc == 0


def test_bind_selects_the_source_and_filters_by_local_address(lab, h1):
    rtnetlink.inet_rtm_newaddr(lab.nets["h1"], "eth0", "10.0.0.11/24")
    lab.run()
    first, second = icmp_sock(h1, nonblock=True), icmp_sock(h1, nonblock=True)
    assert errno_of(sys_bind, h1, first, ("10.0.0.77", 0)) == errno.EADDRNOTAVAIL
    sys_bind(h1, first, ("10.0.0.1", 0))
    sys_bind(h1, second, ("10.0.0.11", 0))
    sys_sendto(h1, second, icmp_echo_bytes(), 0, ("10.0.0.2", 0))
    lab.run()
    pkt, _, _ = sys_recvfrom(h1, second, 2000)
    assert pkt[16:20] == socket.inet_aton("10.0.0.11")         # the reply came to .11
    assert errno_of(sys_recvfrom, h1, first, 2000) == errno.EAGAIN
