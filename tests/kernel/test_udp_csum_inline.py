"""The UDP checksum written out on the send and receive paths (one integer
read of addresses + datagram, issue 14) is RFC 768's: each datagram length,
odd and even, empty and all-zero payloads, is checked by dpkt's own sum, and
a datagram with one bit flipped is counted and dropped as before.

Linux: net/ipv4/udp.c (udp_send_skb, __udp_lib_checksum_complete)
"""
import dpkt

from emu.kernel.core.skbuff import skb_data_release
from emu.kernel.hdr.checksum import csum_partial, csum_tcpudp_nofold
from emu.kernel.socket import (
    SOCK_NONBLOCK, sys_bind, sys_recvfrom, sys_sendto, sys_socket,
)
from tests.kernel.harness import bridge_lab

AF_INET, SOCK_DGRAM = 2, 2
PAYLOADS = [b"", b"\x00", b"\x00" * 7, b"a", b"ab", bytes(range(255)), b"\xff" * 1001,
            b"\x00" * 1000]


def _udp_frames(lab):
    out = []
    for port in lab.ports:
        for frame in port.sent:
            ip = dpkt.ethernet.Ethernet(frame).data
            if isinstance(ip, dpkt.ip.IP) and ip.p == 17:
                out.append(ip)
    return out


def test_sent_checksums_are_rfc768_and_received_intact():
    lab = bridge_lab()
    t1, t2 = lab.task("h1"), lab.task("h2")
    rx = sys_socket(t2, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    sys_bind(t2, rx, ("0.0.0.0", 9000))
    tx = sys_socket(t1, AF_INET, SOCK_DGRAM, 0)
    for p in PAYLOADS:
        sys_sendto(t1, tx, p, 0, ("10.0.0.2", 9000))
        lab.run()
        assert sys_recvfrom(t2, rx, 4096)[0] == p
    seen = set()
    for ip in _udp_frames(lab):
        raw = bytes(ip.data)
        s = csum_tcpudp_nofold(int.from_bytes(ip.src, "big"), int.from_bytes(ip.dst, "big"),
                               len(raw), 17)
        assert raw[6:8] != b"\x00\x00"                        # 0 is sent as 0xffff
        assert csum_partial(raw, 0, len(raw), s) == 0xFFFF     # the sum checks
        seen.add(len(raw) - 8)
    assert {len(p) for p in PAYLOADS} <= seen
    assert lab.nets["h2"].mib["Udp"]["InCsumErrors"] == 0


def test_a_flipped_bit_is_a_checksum_error():
    lab = bridge_lab()
    t1, t2 = lab.task("h1"), lab.task("h2")
    rx = sys_socket(t2, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    sys_bind(t2, rx, ("0.0.0.0", 9000))
    tx = sys_socket(t1, AF_INET, SOCK_DGRAM, 0)
    sys_sendto(t1, tx, b"warm", 0, ("10.0.0.2", 9000))     # ARP and FDB
    lab.run()
    sys_recvfrom(t2, rx, 4096)
    port = lab.port("h1", "eth0")
    real_send = port.send

    def corrupting(buf, start, end, *rest):
        b = bytearray(buf[start:end])
        if len(b) > 45 and b[23] == 17:                     # a UDP datagram: flip a data bit
            b[44] ^= 0x10
        held = rest[-1] if rest else None
        if held is not None:
            skb_data_release(held)
        return real_send(b, 0, len(b), *rest[:-1], None)
    port.send = corrupting
    before = dict(lab.nets["h2"].mib["Udp"])
    sys_sendto(t1, tx, b"payload-odd", 0, ("10.0.0.2", 9000))
    lab.run()
    after = lab.nets["h2"].mib["Udp"]
    assert after["InCsumErrors"] == before["InCsumErrors"] + 1
    assert after["InErrors"] == before["InErrors"] + 1
    assert after["InDatagrams"] == before["InDatagrams"]
