"""IPv4 reassembly: order, duplicates, overlaps, timeout, memory limit."""
import struct

import pytest

from emu.kernel.hdr.checksum import ip_compute_csum
from emu.kernel.socket import SOCK_NONBLOCK, sys_bind, sys_recvfrom, sys_socket
from tests.kernel.harness import bridge_lab


@pytest.fixture
def lab():
    lab = bridge_lab()
    lab.task_h2 = lab.task("h2")
    lab.srv = sys_socket(lab.task_h2, 2, 2 | SOCK_NONBLOCK, 0)
    sys_bind(lab.task_h2, lab.srv, ("0.0.0.0", 4000))
    return lab


def udp_datagram(payload, sport=1234, dport=4000):
    # checksum 0: "no checksum" (RFC 768), so fragments can be built by hand
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def fragment(lab, data, offset, more, ident=77, src=b"\x0a\x00\x00\x01"):
    h1 = lab.dev("h1", "eth0").dev_addr
    h2 = lab.dev("h2", "eth0").dev_addr
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(data), ident,
                                (offset // 8) | (0x2000 if more else 0), 64, 17, 0,
                                src, b"\x0a\x00\x00\x02"))
    hdr[10:12] = ip_compute_csum(hdr).to_bytes(2, "big")
    return h2 + h1 + b"\x08\x00" + bytes(hdr) + data


def recv(lab):
    try:
        return sys_recvfrom(lab.task_h2, lab.srv, 100000)[0]
    except OSError:
        return None


def test_out_of_order_fragments_reassemble(lab):
    dgram = udp_datagram(bytes(range(200)) * 10)       # 2008 bytes
    parts = [(0, dgram[:800], True), (800, dgram[800:1600], True), (1600, dgram[1600:], False)]
    for off, d, more in reversed(parts):
        lab.inject("h2", "eth0", fragment(lab, d, off, more))
    lab.run()
    assert recv(lab) == dgram[8:]
    ip = lab.nets["h2"].mib["Ip"]
    assert ip["ReasmReqds"] == 3 and ip["ReasmOKs"] == 1 and ip["ReasmFails"] == 0


def test_exact_duplicate_is_ignored(lab):
    dgram = udp_datagram(b"a" * 1592)
    lab.inject("h2", "eth0", fragment(lab, dgram[:800], 0, True))
    lab.inject("h2", "eth0", fragment(lab, dgram[:800], 0, True))
    lab.inject("h2", "eth0", fragment(lab, dgram[800:], 800, False))
    lab.run()
    assert recv(lab) == dgram[8:]


def test_overlap_discards_the_datagram(lab):
    dgram = udp_datagram(b"b" * 1592)
    lab.inject("h2", "eth0", fragment(lab, dgram[:800], 0, True))
    lab.inject("h2", "eth0", fragment(lab, b"X" * 400, 400, True))       # overlaps
    lab.inject("h2", "eth0", fragment(lab, dgram[800:], 800, False))
    lab.run()
    assert recv(lab) is None
    assert lab.nets["h2"].mib["IpExt"]["ReasmOverlaps"] == 1
    assert lab.nets["h2"].proto["ipq"] == {} or all(
        q.meat < 1600 for q in lab.nets["h2"].proto["ipq"].values())


def test_incomplete_datagram_times_out_with_icmp(lab):
    dgram = udp_datagram(b"c" * 1592)
    lab.inject("h2", "eth0", fragment(lab, dgram[:800], 0, True))
    lab.run()
    assert len(lab.nets["h2"].proto["ipq"]) == 1
    lab.advance(31.0, tick=1.0)
    ip = lab.nets["h2"].mib["Ip"]
    assert ip["ReasmTimeout"] == 1 and ip["ReasmFails"] == 1
    assert lab.nets["h2"].proto["ipq"] == {} and lab.nets["h2"].proto["ipfrag_mem"] == 0
    icmp = lab.nets["h2"].mib["Icmp"]
    assert icmp["OutTimeExcds"] == 1


def test_memory_limit_refuses_new_datagrams(lab):
    net = lab.nets["h2"]
    net.sysctl["net.ipv4.ipfrag_high_thresh"] = 3000
    for ident in range(10):
        lab.inject("h2", "eth0", fragment(lab, b"d" * 800, 0, True, ident=ident))
    lab.run()
    assert len(net.proto["ipq"]) < 10
    assert net.mib["Ip"]["ReasmFails"] >= 1
    assert net.proto["ipfrag_mem"] <= 3000 + 2000


def test_bad_fragment_lengths_are_refused(lab):
    # a non-last fragment whose payload is not a multiple of 8
    lab.inject("h2", "eth0", fragment(lab, b"e" * 801, 0, True))
    # a fragment past 64 KiB
    lab.inject("h2", "eth0", fragment(lab, b"f" * 800, 65000, False))
    lab.run()
    assert lab.nets["h2"].mib["Ip"]["ReasmFails"] == 2
    assert lab.nets["h2"].proto["ipq"] == {}


def test_memory_limit_holds_within_one_datagram(lab):
    # Fragments of one never-completed datagram must not grow past high_thresh either.
    net = lab.nets["h2"]
    net.sysctl["net.ipv4.ipfrag_high_thresh"] = 20_000
    for i in range(400):
        lab.inject("h2", "eth0", fragment(lab, b"g" * 8, 8 * (400 - i), True, ident=5))
    lab.run()
    assert net.proto["ipfrag_mem"] <= 20_000
    assert net.mib["Ip"]["ReasmFails"] >= 1
    assert len(net.proto["ipq"][next(iter(net.proto["ipq"]))].frags) < 400


def test_reassembly_longer_than_64k_with_header_options_is_dropped(lab):
    # Fragment 0 carries 40 bytes of options; the payload ends exactly at 65535:
    # header + payload would not fit the 16-bit total length.
    h1 = lab.dev("h1", "eth0").dev_addr
    h2 = lab.dev("h2", "eth0").dev_addr

    def frag(data, offset, more, ihl):
        hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(data), 99,
                                    (offset // 8) | (0x2000 if more else 0), 64, 17, 0,
                                    b"\x0a\0\0\x01", b"\x0a\0\0\x02") + b"\x01" * ((ihl - 5) * 4))
        hdr[10:12] = ip_compute_csum(bytes(hdr)).to_bytes(2, "big")
        return h2 + h1 + b"\x08\x00" + bytes(hdr) + data

    total, off = 65535 - 20, 0
    while off < total:
        n = min(1400, total - off)
        lab.inject("h2", "eth0", frag(b"\0" * n, off, off + n < total, 15 if off == 0 else 5))
        off += n
    lab.run()
    ip = lab.nets["h2"].mib["Ip"]
    assert ip["ReasmOKs"] == 0 and ip["ReasmFails"] == 1
    assert not lab.nets["h2"].proto["ipq"] and recv(lab) is None
