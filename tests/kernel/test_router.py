"""Forwarding across a line of routers: TTL, fragmentation, PMTU, reassembly."""
import errno

import dpkt
import pytest

from emu.kernel.core.dev import KernelError
from emu.kernel.core import rtnetlink
from emu.kernel.socket import (
    SOCK_NONBLOCK, sys_bind, sys_connect, sys_recvfrom, sys_sendto, sys_setsockopt, sys_socket,
)
from tests.kernel.harness import ping, router_line_lab

DATA = bytes(range(256)) * 16          # 4096 bytes


@pytest.fixture
def lab():
    return router_line_lab()


def test_ping_across_three_routers_decrements_ttl(lab):
    replies = ping(lab, "h1", "10.0.3.10")
    assert len(replies) == 1
    assert replies[0][8] == 64 - 3          # the reply crossed three routers
    for r in ("r1", "r2", "r3"):
        assert lab.nets[r].mib["Ip"]["ForwDatagrams"] == 2


def test_forwarded_header_checksum_is_valid(lab):
    ping(lab, "h1", "10.0.3.10")
    for frame in lab.port("r2", "eth1").sent:
        eth = dpkt.ethernet.Ethernet(frame)
        if isinstance(eth.data, dpkt.ip.IP):
            ip = eth.data
            sent = ip.sum
            ip.sum = 0
            assert dpkt.ip.IP(bytes(ip)).sum == sent
            assert ip.ttl == 62


def test_ttl_expiry_sends_time_exceeded_from_the_router(lab):
    t = lab.task("h1")
    fd = sys_socket(t, 2, 3 | SOCK_NONBLOCK, 1)
    sys_setsockopt(t, fd, 0, 2, 2)           # IP_TTL 2: dies at r2
    from tests.kernel.harness import icmp_echo_bytes
    sys_sendto(t, fd, icmp_echo_bytes(), 0, ("10.0.3.10", 0))
    lab.run()
    pkt, addr, _ = sys_recvfrom(t, fd, 2000)
    assert addr[0] == "10.0.12.2" and pkt[20] == 11 and pkt[21] == 0
    assert lab.nets["r2"].mib["Icmp"]["OutTimeExcds"] == 1
    assert lab.nets["h2"].mib["Icmp"]["InEchos"] == 0


def test_4000_byte_datagram_is_fragmented_and_reassembled(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv = sys_socket(t2, 2, 2, 0)
    sys_bind(t2, srv, ("0.0.0.0", 9000))
    cli = sys_socket(t1, 2, 2, 0)
    sys_sendto(t1, cli, DATA, 0, ("10.0.3.10", 9000))
    lab.run()
    data, _, _ = sys_recvfrom(t2, srv, 10000)
    assert data == DATA
    assert lab.nets["h1"].mib["Ip"]["FragCreates"] == 3       # 1500-byte MTU
    assert lab.nets["r2"].mib["Ip"]["FragCreates"] == 4       # refragmented for 1280
    assert lab.nets["h2"].mib["Ip"]["ReasmOKs"] == 1
    for frame in lab.port("r2", "eth1").sent:
        assert len(frame) <= 1280 + 14


def test_df_datagram_too_big_for_next_hop_gives_emsgsize_then_fits(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv = sys_socket(t2, 2, 2 | SOCK_NONBLOCK, 0)
    sys_bind(t2, srv, ("0.0.0.0", 9001))
    cli = sys_socket(t1, 2, 2 | SOCK_NONBLOCK, 0)
    sys_connect(t1, cli, ("10.0.3.10", 9001))
    sys_sendto(t1, cli, b"y" * 1400, 0, None)   # fits h1's MTU: sent with DF
    lab.run()
    assert lab.nets["r2"].mib["Ip"]["FragFails"] == 1
    with pytest.raises(KernelError) as e:
        sys_recvfrom(t1, cli, 10)
    assert e.value.errno == errno.EMSGSIZE
    sys_sendto(t1, cli, b"y" * 1400, 0, None)   # now PMTU 1280: h1 fragments itself
    lab.run()
    assert sys_recvfrom(t2, srv, 2000)[0] == b"y" * 1400


def test_pmtudisc_do_refuses_locally(lab):
    t = lab.task("h1")
    cli = sys_socket(t, 2, 2, 0)
    sys_setsockopt(t, cli, 0, 10, 2)             # IP_MTU_DISCOVER = IP_PMTUDISC_DO
    with pytest.raises(KernelError) as e:
        sys_sendto(t, cli, b"z" * 1600, 0, ("10.0.3.10", 9))
    assert e.value.errno == errno.EMSGSIZE


def test_pmtudisc_probe_ignores_the_learned_path_mtu_and_do_honours_it(lab):
    """ip_sk_use_pmtu: with IP_PMTUDISC_PROBE (tracepath's) a datagram is
    built for the device's MTU even once a router has reported a smaller
    path MTU; with DO the learned one refuses it locally (EMSGSIZE)."""
    t = lab.task("h1")
    cli = sys_socket(t, 2, 2 | SOCK_NONBLOCK, 0)
    sys_connect(t, cli, ("10.0.3.10", 9002))
    sys_setsockopt(t, cli, 0, 10, 2)             # IP_PMTUDISC_DO
    sys_sendto(t, cli, b"p" * 1400, 0, None)     # r2's 1280 link: Frag Needed back
    lab.run()
    assert lab.nets["r2"].mib["Ip"]["FragFails"] == 1
    with pytest.raises(KernelError) as e:
        sys_sendto(t, cli, b"p" * 1400, 0, None)
    assert e.value.errno == errno.EMSGSIZE      # DO: the learned 1280
    sys_setsockopt(t, cli, 0, 10, 3)             # IP_PMTUDISC_PROBE
    assert sys_sendto(t, cli, b"p" * 1400, 0, None) == 1400
    lab.run()
    assert lab.nets["r2"].mib["Ip"]["FragFails"] == 2   # sent with DF at 1428 bytes again
    with pytest.raises(KernelError) as e:
        sys_sendto(t, cli, b"p" * 1473, 0, None)
    assert e.value.errno == errno.EMSGSIZE      # PROBE: still no more than the device's 1500


def test_no_route_on_a_router_sends_net_unreachable(lab):
    rtnetlink.inet_rtm_delroute(lab.nets["r1"], "10.0.3.0/24")
    t = lab.task("h1")
    fd = sys_socket(t, 2, 2 | SOCK_NONBLOCK, 0)
    sys_connect(t, fd, ("10.0.3.10", 9))
    sys_sendto(t, fd, b"x", 0, None)
    lab.run()
    with pytest.raises(KernelError) as e:
        sys_recvfrom(t, fd, 10)
    assert e.value.errno == errno.ENETUNREACH


def test_tcp_pmtu_discovery_through_a_router_with_tso_and_gro():
    """A TSO/GRO super-packet with DF is judged by its segments at the 1280 link:
    the router sends frag-needed, the sender shrinks its MSS, and no segment wider
    than the link ever crosses it (Linux ip_exceeds_mtu / ip_finish_output_gso)."""
    from emu.kernel.socket import sys_accept, sys_listen
    lab = router_line_lab()
    t1, t2 = lab.task("h1"), lab.task("h2")
    ls = sys_socket(t2, 2, 1 | SOCK_NONBLOCK, 0)
    sys_bind(t2, ls, ("0.0.0.0", 80))
    sys_listen(t2, ls, 8)
    c = sys_socket(t1, 2, 1 | SOCK_NONBLOCK, 0)
    with pytest.raises(KernelError):
        sys_connect(t1, c, ("10.0.3.10", 80))          # EINPROGRESS
    lab.run()
    lab.advance(0.1)
    s, _ = sys_accept(t2, ls, SOCK_NONBLOCK)
    port = lab.port("r2", "eth1")
    seglens = []
    orig = port.send

    def send(buf, start, end, flags, gso_type, gso_size, tid, held=None):
        frame = bytes(buf[start:end])
        ihl = (frame[14] & 15) * 4
        thl = (frame[14 + ihl + 12] >> 4) * 4 if frame[23] == 6 else 8
        seglens.append(ihl + thl + gso_size if gso_size else len(frame) - 14)
        return orig(buf, start, end, flags, gso_type, gso_size, tid, held)
    port.send = send
    data, sent, got = bytes(range(256)) * 800, 0, b""
    for _ in range(200):
        try:
            sent += sys_sendto(t1, c, data[sent:sent + 65536], 0, None)
        except KernelError:
            pass
        lab.run()
        lab.advance(0.05)
        while True:
            try:
                d = sys_recvfrom(t2, s, 1 << 20)[0]
            except KernelError:
                break
            got += d
        if len(got) >= len(data):
            break
    assert got == data
    assert seglens and max(seglens) <= 1280
    assert lab.nets["r2"].mib["Icmp"]["OutDestUnreachs"] >= 1


def test_a_checksum_offloaded_datagram_is_fragmented_with_a_valid_checksum(lab):
    """A NEEDS_CSUM datagram from a veth peer that must be fragmented gets its UDP
    checksum finished first (ip_do_fragment -> skb_checksum_help)."""
    import struct
    from emu.kernel.hdr.checksum import csum_fold, csum_tcpudp_nofold, ip_compute_csum
    from emu.kernel.hdr.virtio_net import VIRTIO_NET_HDR_F_NEEDS_CSUM
    t1, t2 = lab.task("h1"), lab.task("h2")
    fd = sys_socket(t2, 2, 2 | SOCK_NONBLOCK, 0)
    sys_bind(t2, fd, ("0.0.0.0", 4000))
    c = sys_socket(t1, 2, 2 | SOCK_NONBLOCK, 0)
    sys_sendto(t1, c, b"hi", 0, ("10.0.3.10", 4000))     # resolve ARP along the path
    lab.advance(1)
    assert sys_recvfrom(t2, fd, 9999)[0] == b"hi"
    src, dst = bytes([10, 0, 1, 10]), bytes([10, 0, 3, 10])
    payload = b"p" * 1400
    ulen = 8 + len(payload)
    pseudo = csum_tcpudp_nofold(int.from_bytes(src, "big"), int.from_bytes(dst, "big"), ulen, 17)
    udp = struct.pack("!HHHH", 1234, 4000, ulen, ~csum_fold(pseudo) & 0xFFFF) + payload
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 7, 0, 64, 17, 0, src, dst))
    hdr[10:12] = ip_compute_csum(bytes(hdr)).to_bytes(2, "big")
    r1, h1 = lab.dev("r1", "eth0").dev_addr, lab.dev("h1", "eth0").dev_addr
    lab.inject("r1", "eth0", r1 + h1 + b"\x08\x00" + bytes(hdr) + udp,
               flags=VIRTIO_NET_HDR_F_NEEDS_CSUM)
    lab.advance(1)
    assert lab.nets["r2"].mib["Ip"]["FragCreates"] == 2
    assert sys_recvfrom(t2, fd, 9999)[0] == payload
    assert lab.nets["h2"].mib["Udp"]["InCsumErrors"] == 0


def test_snmp_forwarding_follows_ip_forward(lab):
    # /proc/net/snmp "Ip: Forwarding" is 1 on a router, 2 on a host (RFC 1213 ipForwarding)
    assert rtnetlink.counters(lab.nets["r2"])["snmp"]["Ip"]["Forwarding"] == 1
    assert rtnetlink.counters(lab.nets["h1"])["snmp"]["Ip"]["Forwarding"] == 2
    lab.nets["h1"].sysctl["net.ipv4.ip_forward"] = 1
    lab.nets["h1"].sysctl["net.ipv4.ip_default_ttl"] = 30
    ip = rtnetlink.counters(lab.nets["h1"])["snmp"]["Ip"]
    assert ip["Forwarding"] == 1 and ip["DefaultTTL"] == 30


def test_a_big_ping_sets_df_learns_the_path_mtu_then_fragments(lab):
    """Raw sockets default to IP_PMTUDISC_WANT like any inet socket: a 1400-byte
    echo leaves with DF, r2 answers frag-needed (mtu 1280), h1 learns it, and the
    next echo is fragmented by h1 and answered (as `ping -s 1372` on Linux)."""
    import struct
    from tests.kernel.harness import SOCK_RAW, icmp_echo_bytes
    assert len(ping(lab, "h1", "10.0.3.10")) == 1            # resolve ARP along the path
    t = lab.task("h1")
    fd = sys_socket(t, 2, SOCK_RAW | SOCK_NONBLOCK, 1)
    got = []

    def drain():
        while True:
            try:
                pkt = sys_recvfrom(t, fd, 65535)[0]
            except KernelError:
                return
            icmp = pkt[(pkt[0] & 15) * 4:]
            got.append((icmp[0], icmp[1], struct.unpack_from("!H", icmp, 6)[0]))
    sys_sendto(t, fd, icmp_echo_bytes(7, 1, b"b" * 1372), 0, ("10.0.3.10", 0))
    lab.run()
    drain()
    assert got == [(3, 4, 1280)] and lab.nets["r2"].mib["Ip"]["FragFails"] == 1
    sys_sendto(t, fd, icmp_echo_bytes(7, 2, b"b" * 1372), 0, ("10.0.3.10", 0))
    lab.run()
    drain()
    assert got[1][:2] == (0, 0) and lab.nets["h1"].mib["Ip"]["FragCreates"] == 2
    sys_setsockopt(t, fd, 0, 10, 2)                           # IP_PMTUDISC_DO
    with pytest.raises(KernelError) as e:
        sys_sendto(t, fd, icmp_echo_bytes(7, 3, b"b" * 1372), 0, ("10.0.3.10", 0))
    assert e.value.errno == errno.EMSGSIZE
