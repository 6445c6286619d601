"""AF_PACKET sockets: see every frame both ways, send raw frames."""
import errno

import dpkt
import pytest

from emu.kernel.core.dev import KernelError
from emu.kernel.socket import (
    SOCK_NONBLOCK, sys_bind, sys_getsockopt, sys_recvfrom, sys_sendto, sys_setsockopt, sys_socket,
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


def _ring(t, fd, frame_size=2048, frame_nr=4):
    import struct
    sys_setsockopt(t, fd, 263, 10, 1)                              # PACKET_VERSION = TPACKET_V2
    sys_setsockopt(t, fd, 263, 5, struct.pack("=IIII", frame_size * frame_nr, 1,
                                              frame_size, frame_nr))   # PACKET_RX_RING


def test_rx_ring_frames_carry_the_taps_kernel_timestamp():
    import struct
    lab = bridge_lab()
    t = lab.task("h1")
    fd = sys_socket(t, AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, ETH_P_ALL_N)
    _ring(t, fd, frame_nr=64)
    assert sys_getsockopt(t, fd, 263, 11) == 52                      # PACKET_HDRLEN
    lab.clock.now = 1000.25
    assert len(ping(lab, "h1", "10.0.0.2")) == 1
    frames = drain(t, fd)
    assert frames
    for data, _addr, _ in frames:
        status, length, snaplen, mac, net, sec, nsec = struct.unpack_from("=IIIHHII", data)
        assert status & 1 and snaplen == length and mac + 14 == net
        ts = sec + nsec / 1e9
        assert 1000.25 <= ts < 1000.25 + 5        # the kernel's clock at the tap, not the reader's
        eth = dpkt.ethernet.Ethernet(data[mac:mac + snaplen])
        assert eth.src in (lab.dev("h1", "eth0").dev_addr, lab.dev("h2", "eth0").dev_addr)
        family, proto, ifindex = struct.unpack_from("=HHi", data, 32)
        assert family == AF_PACKET and ifindex == lab.dev("h1", "eth0").ifindex


def test_a_full_ring_drops_and_counts_as_packet_statistics():
    lab = bridge_lab()
    t = lab.task("h1")
    fd = sys_socket(t, AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, ETH_P_ALL_N)
    _ring(t, fd, frame_nr=2)
    for _ in range(3):
        ping(lab, "h1", "10.0.0.2")
    got = drain(t, fd)
    assert len(got) == 2
    packets, drops = sys_getsockopt(t, fd, 263, 6)
    assert drops > 0 and packets == drops + 2
    assert got[1][0][0] & 4 == 0 and sys_getsockopt(t, fd, 263, 6) == [0, 0]   # reset on read
    with pytest.raises(KernelError) as e:
        sys_setsockopt(t, fd, 263, 10, 1)                          # version after the ring: EBUSY
    assert e.value.errno == errno.EBUSY
