"""UDP sockets across inline kernels: data, ports, errors, broadcast, limits."""
import errno

import dpkt
import pytest

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError
from emu.kernel.socket import (
    SO_BROADCAST, SO_RCVBUF, SO_REUSEADDR, SOCK_NONBLOCK, SOL_SOCKET, SyscallBlock,
    sys_bind, sys_close, sys_connect, sys_getpeername, sys_getsockname, sys_recvfrom,
    sys_sendto, sys_setsockopt, sys_socket,
)
from tests.kernel.harness import bridge_lab

AF_INET, SOCK_DGRAM = 2, 2
MSG_PEEK, MSG_TRUNC, MSG_DONTWAIT = 2, 0x20, 0x40


@pytest.fixture
def lab():
    return bridge_lab()


def udp(task, port=None, addr="0.0.0.0", nonblock=False):
    fd = sys_socket(task, AF_INET, SOCK_DGRAM | (SOCK_NONBLOCK if nonblock else 0), 0)
    if port is not None:
        sys_bind(task, fd, (addr, port))
    return fd


def errno_of(fn, *args):
    with pytest.raises(KernelError) as e:
        fn(*args)
    return e.value.errno


def test_datagram_crosses_the_bridge_with_ephemeral_source_port(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv = udp(t2, 5000)
    cli = udp(t1)
    assert sys_sendto(t1, cli, b"hello", 0, ("10.0.0.2", 5000)) == 5
    lab.run()
    data, addr, flags = sys_recvfrom(t2, srv, 100)
    _, sport = sys_getsockname(t1, cli)
    assert data == b"hello" and addr == ("10.0.0.1", sport) and flags == 0
    low, high = lab.nets["h1"].sysctl["net.ipv4.ip_local_port_range"]
    assert low <= sport <= high
    assert lab.nets["h2"].mib["Udp"]["InDatagrams"] == 1
    assert lab.nets["h1"].mib["Udp"]["OutDatagrams"] == 1


def test_wire_frame_is_valid_udp_with_correct_checksum(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    udp(t2, 5001)
    cli = udp(t1)
    sys_sendto(t1, cli, b"payload-123", 0, ("10.0.0.2", 5001))
    lab.run()
    frames = [dpkt.ethernet.Ethernet(f) for f in lab.port("h1", "eth0").sent]
    ip = next(e.data for e in frames if isinstance(e.data, dpkt.ip.IP) and e.data.p == 17)
    u = ip.data
    assert (u.dport, u.data, u.ulen) == (5001, b"payload-123", 8 + 11)
    raw = bytearray(bytes(u))
    raw[6:8] = b"\0\0"
    pseudo = ip.src + ip.dst + bytes([0, 17]) + len(raw).to_bytes(2, "big")
    assert dpkt.in_cksum(pseudo + bytes(raw)) == u.sum   # dpkt's own checksum
    assert ip.df == 1                                    # IP_PMTUDISC_WANT and it fits


def test_bad_udp_checksum_is_counted_and_dropped(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv = udp(t2, 5002, nonblock=True)
    cli = udp(t1)
    sys_sendto(t1, cli, b"x" * 10, 0, ("10.0.0.2", 5002))
    lab.run()
    frame = bytearray(next(f for f in lab.port("h1", "eth0").sent if f[12:14] == b"\x08\x00"))
    sys_recvfrom(t2, srv, 100)
    frame[-1] ^= 0xFF                                    # corrupt the payload
    lab.inject("h2", "eth0", bytes(frame))
    lab.run()
    mib = lab.nets["h2"].mib["Udp"]
    assert mib["InCsumErrors"] == 1 and mib["InErrors"] == 1
    assert errno_of(sys_recvfrom, t2, srv, 100) == errno.EAGAIN


def test_bind_errors(lab):
    t = lab.task("h1")
    a = udp(t, 6000)
    b = udp(t)
    assert errno_of(sys_bind, t, b, ("0.0.0.0", 6000)) == errno.EADDRINUSE
    assert errno_of(sys_bind, t, b, ("10.0.0.99", 6001)) == errno.EADDRNOTAVAIL
    assert errno_of(sys_bind, t, a, ("0.0.0.0", 6002)) == errno.EINVAL   # already bound
    # SO_REUSEADDR on both sockets lets them share the port
    c, d = udp(t), udp(t)
    for fd in (c, d):
        sys_setsockopt(t, fd, SOL_SOCKET, SO_REUSEADDR, 1)
    sys_bind(t, c, ("0.0.0.0", 6003))
    sys_bind(t, d, ("0.0.0.0", 6003))
    # a specific address does not conflict with another specific address
    e, f = udp(t), udp(t)
    sys_bind(t, e, ("10.0.0.1", 6004))
    sys_bind(t, f, ("127.0.0.1", 6004))
    assert errno_of(sys_bind, t, udp(t), ("0.0.0.0", 6004)) == errno.EADDRINUSE


def test_send_errors(lab):
    t = lab.task("h1")
    fd = udp(t)
    assert errno_of(sys_sendto, t, fd, b"x" * 65508, 0, ("10.0.0.2", 9)) == errno.EMSGSIZE
    assert errno_of(sys_sendto, t, fd, b"x", 0, None) == errno.EDESTADDRREQ
    assert errno_of(sys_sendto, t, fd, b"x", 0, ("192.168.7.1", 9)) == errno.ENETUNREACH
    assert errno_of(sys_sendto, t, fd, b"x", 0, ("10.0.0.255", 9)) == errno.EACCES
    assert errno_of(sys_sendto, t, fd, b"x", 0, ("10.0.0.2", 0)) == errno.EINVAL
    assert errno_of(sys_sendto, t, 99, b"x", 0, ("10.0.0.2", 9)) == errno.EBADF
    assert errno_of(sys_connect, t, fd, ("192.168.7.1", 9)) == errno.ENETUNREACH
    assert errno_of(sys_getpeername, t, fd) == errno.ENOTCONN
    assert errno_of(sys_socket, t, 10, SOCK_DGRAM, 0) == errno.EAFNOSUPPORT
    assert errno_of(sys_socket, t, AF_INET, SOCK_DGRAM, 6) == errno.EPROTONOSUPPORT


def test_port_unreachable_is_econnrefused_on_a_connected_socket_only(lab):
    t1 = lab.task("h1")
    conn = udp(t1, nonblock=True)
    sys_connect(t1, conn, ("10.0.0.2", 7777))
    unconn = udp(t1, nonblock=True)
    sys_sendto(t1, conn, b"x", 0, None)
    sys_sendto(t1, unconn, b"x", 0, ("10.0.0.2", 7777))
    lab.run()
    assert lab.nets["h2"].mib["Udp"]["NoPorts"] == 2
    assert lab.nets["h1"].mib["Icmp"]["InDestUnreachs"] == 2
    assert errno_of(sys_recvfrom, t1, conn, 10) == errno.ECONNREFUSED
    assert errno_of(sys_recvfrom, t1, conn, 10) == errno.EAGAIN     # reported once
    assert errno_of(sys_recvfrom, t1, unconn, 10) == errno.EAGAIN


def test_unresolvable_neighbour_reports_ehostunreach(lab):
    t1 = lab.task("h1")
    fd = udp(t1, nonblock=True)
    sys_connect(t1, fd, ("10.0.0.77", 9))
    sys_sendto(t1, fd, b"x", 0, None)
    lab.advance(4.0)              # 3 ARP probes, 1 s apart, then FAILED
    assert errno_of(sys_recvfrom, t1, fd, 10) == errno.EHOSTUNREACH


def test_connected_socket_filters_other_senders(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv = udp(t2, 5100, nonblock=True)
    sys_connect(t2, srv, ("10.0.0.1", 5200))
    other = udp(t1, 5300)
    peer = udp(t1, 5200)
    sys_sendto(t1, other, b"no", 0, ("10.0.0.2", 5100))
    sys_sendto(t1, peer, b"yes", 0, ("10.0.0.2", 5100))
    lab.run()
    assert sys_recvfrom(t2, srv, 10)[0] == b"yes"
    assert errno_of(sys_recvfrom, t2, srv, 10) == errno.EAGAIN
    assert sys_getpeername(t2, srv) == ("10.0.0.1", 5200)


def test_peek_and_truncation(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv = udp(t2, 5400)
    sys_sendto(t1, udp(t1), b"0123456789", 0, ("10.0.0.2", 5400))
    lab.run()
    assert sys_recvfrom(t2, srv, 100, MSG_PEEK)[0] == b"0123456789"
    data, _, flags = sys_recvfrom(t2, srv, 4)
    assert data == b"0123" and flags & MSG_TRUNC
    with pytest.raises(SyscallBlock) as b:
        sys_recvfrom(t2, srv, 4)
    assert b.value.timeout is None and b.value.wqs


def test_broadcast_needs_so_broadcast_and_reaches_every_host(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv = udp(t2, 5500, nonblock=True)
    cli = udp(t1)
    sys_setsockopt(t1, cli, SOL_SOCKET, SO_BROADCAST, 1)
    sys_sendto(t1, cli, b"all", 0, ("10.0.0.255", 5500))
    # Limited broadcast follows a route, as in Linux: none -> ENETUNREACH.
    assert errno_of(sys_sendto, t1, cli, b"x", 0, ("255.255.255.255", 5500)) == errno.ENETUNREACH
    rtnetlink.inet_rtm_newroute(lab.nets["h1"], "default", via="10.0.0.2")
    sys_sendto(t1, cli, b"all2", 0, ("255.255.255.255", 5500))
    lab.run()
    assert sys_recvfrom(t2, srv, 10)[0] == b"all"
    assert sys_recvfrom(t2, srv, 10)[0] == b"all2"
    eth = dpkt.ethernet.Ethernet(lab.port("h1", "eth0").sent[-1])
    assert eth.dst == b"\xff" * 6
    assert lab.nets["h2"].mib["Icmp"]["OutDestUnreachs"] == 0


def test_receive_buffer_limit_drops_and_counts(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv = udp(t2, 5600, nonblock=True)
    sys_setsockopt(t2, srv, SOL_SOCKET, SO_RCVBUF, 4096)   # Linux doubles: 8192
    cli = udp(t1)
    for _ in range(20):
        sys_sendto(t1, cli, b"x" * 1000, 0, ("10.0.0.2", 5600))
    lab.run()
    mib = lab.nets["h2"].mib["Udp"]
    got = 0
    while True:
        try:
            sys_recvfrom(t2, srv, 2000)
            got += 1
        except KernelError:
            break
    assert 0 < got < 20
    assert mib["RcvbufErrors"] == 20 - got
    assert lab.nets["h2"].drop_reasons["SOCKET_RCVBUFF"] == 20 - got


def test_loopback_datagram_to_self(lab):
    t = lab.task("h1")
    srv = udp(t, 5700, addr="127.0.0.1")
    sys_sendto(t, udp(t), b"me", 0, ("127.0.0.1", 5700))
    lab.run()
    data, addr, _ = sys_recvfrom(t, srv, 10)
    assert data == b"me" and addr[0] == "127.0.0.1"
    sys_close(t, srv)
    assert errno_of(sys_close, t, srv) == errno.EBADF


def test_icmp_errors_are_rate_limited_per_host(lab):
    t1 = lab.task("h1")
    fd = udp(t1)
    for _ in range(10):
        sys_sendto(t1, fd, b"x", 0, ("10.0.0.2", 9999))
    lab.run()
    icmp = lab.nets["h2"].mib["Icmp"]
    assert icmp["OutDestUnreachs"] == 6              # the burst (XRLIM_BURST_FACTOR)
    assert icmp["OutRateLimitHost"] == 4
    lab.advance(1.0, tick=0.5)                        # one more token per second
    sys_sendto(t1, fd, b"x", 0, ("10.0.0.2", 9999))
    sys_sendto(t1, fd, b"x", 0, ("10.0.0.2", 9999))
    lab.run()
    assert icmp["OutDestUnreachs"] == 7 and icmp["OutRateLimitHost"] == 5


def _frag_needed_about(lab, inner_dst, mtu, sport=5001):
    """An ICMP frag-needed to h2 quoting a UDP datagram h2 sent from sport to inner_dst."""
    import struct
    from emu.kernel.hdr.checksum import ip_compute_csum

    def ip(src, dst, proto, pl):
        h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(pl), 1, 0, 64, proto, 0,
                                  src, dst))
        h[10:12] = ip_compute_csum(bytes(h)).to_bytes(2, "big")
        return bytes(h) + pl
    inner = ip(b"\x0a\0\0\x02", inner_dst, 17, struct.pack("!HHHH", sport, 53, 8, 0))
    icmp = bytearray(struct.pack("!BBHHH", 3, 4, 0, 0, mtu) + inner)
    icmp[2:4] = ip_compute_csum(bytes(icmp)).to_bytes(2, "big")
    h1, h2 = lab.dev("h1", "eth0").dev_addr, lab.dev("h2", "eth0").dev_addr
    return h2 + h1 + b"\x08\x00" + ip(b"\x0a\0\0\x01", b"\x0a\0\0\x02", 1, bytes(icmp))


def test_path_mtu_exceptions_never_grow_the_mtu_and_stay_bounded():
    from emu.kernel.ipv4.route import ip_route_output_key
    from emu.kernel.ipv4.route import FNHE_MAX, ip_dst_mtu
    lab = bridge_lab()
    net = lab.nets["h2"]
    rtnetlink.inet_rtm_newroute(net, "0.0.0.0/0", via="10.0.0.1")
    t = lab.task("h2")
    fd = sys_socket(t, 2, 2 | SOCK_NONBLOCK, 0)
    sys_bind(t, fd, ("0.0.0.0", 5001))
    far = b"\x0b\0\0\x01"
    lab.inject("h2", "eth0", _frag_needed_about(lab, far, 1200))
    lab.run()
    rt = ip_route_output_key(net, 0x0B000001)
    assert ip_dst_mtu(net, rt, 0x0B000001) == 1200
    lab.inject("h2", "eth0", _frag_needed_about(lab, far, 1400))     # forged: bigger
    lab.run()
    assert ip_dst_mtu(net, rt, 0x0B000001) == 1200
    for i in range(FNHE_MAX + 300):                # spoofed inner destinations
        lab.inject("h2", "eth0", _frag_needed_about(lab, (0x0C000000 + i).to_bytes(4, "big"), 600))
    lab.run()
    assert len(net.proto["fnhe"]) == FNHE_MAX


def test_broadcast_to_a_closed_port_counts_ignored_multi_and_sends_nothing():
    import struct
    from emu.kernel.hdr.checksum import ip_compute_csum
    lab = bridge_lab()
    h1 = lab.dev("h1", "eth0").dev_addr
    h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0,
                              b"\x0a\0\0\x01", b"\x0a\0\0\xff"))
    h[10:12] = ip_compute_csum(bytes(h)).to_bytes(2, "big")
    port = lab.port("h2", "eth0")
    start = len(port.sent)
    lab.inject("h2", "eth0", b"\xff" * 6 + h1 + b"\x08\x00" + bytes(h) +
               struct.pack("!HHHH", 1, 9999, 8, 0))
    lab.run()
    u = lab.nets["h2"].mib["Udp"]
    assert u["IgnoredMulti"] == 1 and u["NoPorts"] == 0
    assert port.sent[start:] == []
