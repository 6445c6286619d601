"""AF_PACKET sockets: see every frame both ways, send raw frames."""
import errno

import dpkt
import pytest

from emu.kernel.core.dev import KernelError
from emu.kernel.socket import (
    SOCK_NONBLOCK, sys_bind, sys_getsockopt, sys_recvfrom, sys_sendto, sys_socket,
)
from tests.kernel.harness import bridge_lab, ping

AF_PACKET, SOCK_RAW, SOCK_DGRAM = 17, 3, 2
ETH_P_ALL_N = 0x0300          # htons(ETH_P_ALL)
ETH_P_ARP_N = 0x0608          # htons(ETH_P_ARP)


def drain(task, fd):
    out = []
    while True:
        try:
            out.append(sys_recvfrom(task, fd, 65535))
        except KernelError as e:
            assert e.errno == errno.EAGAIN
            return out


def test_raw_packet_socket_sees_both_directions():
    lab = bridge_lab()
    t = lab.task("h1")
    fd = sys_socket(t, AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, ETH_P_ALL_N)
    assert len(ping(lab, "h1", "10.0.0.2")) == 1
    frames = drain(t, fd)
    kinds = []
    for data, addr, _ in frames:
        eth = dpkt.ethernet.Ethernet(data)
        assert addr[0] == "eth0"
        if isinstance(eth.data, dpkt.ip.IP) and isinstance(eth.data.data, dpkt.icmp.ICMP):
            kinds.append((eth.data.data.type, addr[2]))
    assert (8, 4) in kinds        # echo request, PACKET_OUTGOING
    assert (0, 0) in kinds        # echo reply, PACKET_HOST


def test_protocol_and_device_binding_filter():
    lab = bridge_lab()
    t = lab.task("h1")
    arp_only = sys_socket(t, AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, ETH_P_ARP_N)
    lo_only = sys_socket(t, AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, ETH_P_ALL_N)
    sys_bind(t, lo_only, ("lo", 0))
    ping(lab, "h1", "10.0.0.2")
    arps = drain(t, arp_only)
    assert arps and all(d[12:14] == b"\x08\x06" for d, _, _ in arps)
    assert drain(t, lo_only) == []
    ping(lab, "h1", "127.0.0.1")
    assert drain(t, lo_only)


def test_send_a_raw_frame_and_cooked_receive():
    lab = bridge_lab()
    t1, t2 = lab.task("h1"), lab.task("h2")
    rx = sys_socket(t2, AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK, 0xB588)   # htons(0x88b5)
    tx = sys_socket(t1, AF_PACKET, SOCK_RAW, ETH_P_ALL_N)
    h2mac = lab.dev("h2", "eth0").dev_addr
    frame = h2mac + lab.dev("h1", "eth0").dev_addr + b"\x88\xb5" + b"experimental" + bytes(34)
    assert sys_sendto(t1, tx, frame, 0, ("eth0", 0)) == len(frame)
    lab.run()
    (data, addr, _), = drain(t2, rx)
    assert data.startswith(b"experimental")             # cooked: no Ethernet header
    assert addr[1] == 0x88B5 and addr[4] == lab.dev("h1", "eth0").dev_addr
    stats = sys_getsockopt(t2, rx, 263, 6)              # PACKET_STATISTICS
    assert stats == [1, 0]


def test_packet_socket_errors():
    lab = bridge_lab()
    t = lab.task("h1")
    fd = sys_socket(t, AF_PACKET, SOCK_RAW, ETH_P_ALL_N)
    with pytest.raises(KernelError) as e:
        sys_sendto(t, fd, b"x" * 60, 0, None)
    assert e.value.errno == errno.ENXIO
    with pytest.raises(KernelError) as e:
        sys_bind(t, fd, ("nope0", 0))
    assert e.value.errno == errno.ENODEV
    with pytest.raises(KernelError) as e:
        sys_sendto(t, fd, b"x" * 3000, 0, ("eth0", 0))
    assert e.value.errno == errno.EMSGSIZE
