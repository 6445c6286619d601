"""The Internet checksum (RFC 1071, RFC 1624), checked against a word loop and dpkt.

Linux: lib/checksum.c, include/net/checksum.h
"""
import random
import struct

import dpkt

from emu.kernel.hdr.checksum import (
    csum_fold, csum_partial, csum_replace2, csum_tcpudp_nofold, csum_valid,
    ip_compute_csum,
)


def ref_sum(data):
    """RFC 1071 section 4.1, literally: add 16-bit words with end-around carry."""
    if len(data) & 1:
        data = data + b"\x00"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return s


def test_rfc1071_example():
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert csum_partial(data) == 0xDDF2
    assert ip_compute_csum(data) == 0x220D


def test_matches_the_word_loop_on_random_buffers():
    rng = random.Random(1071)
    for n in list(range(0, 70)) + [1459, 1460, 1500]:
        data = bytes(rng.getrandbits(8) for _ in range(n))
        assert csum_partial(data) == ref_sum(data), n
        assert ip_compute_csum(data) == (~ref_sum(data) & 0xFFFF) == dpkt.in_cksum(data), n


def test_negative_zero_and_zero():
    assert csum_partial(b"") == 0
    assert csum_partial(b"\x00" * 8) == 0
    # Non-zero data never sums to +0 in ones' complement: it is 0xffff.
    assert csum_partial(b"\xff\xff") == 0xFFFF
    assert csum_partial(b"\x00\x01\xff\xfe") == 0xFFFF == ref_sum(b"\x00\x01\xff\xfe")


def test_region_and_carried_sum():
    rng = random.Random(7)
    data = bytes(rng.getrandbits(8) for _ in range(101))
    assert csum_partial(data, 10, 50) == ref_sum(data[10:50])
    # Summing in two pieces (even split) equals summing at once.
    assert csum_partial(data, 40, 101, csum_partial(data, 0, 40)) == ref_sum(data)


def test_a_header_with_its_checksum_verifies():
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 84, 7, 0, 64, 1, 0,
                                b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"))
    c = ip_compute_csum(hdr)
    struct.pack_into("!H", hdr, 10, c)
    assert csum_valid(hdr)
    assert csum_partial(hdr) == 0xFFFF
    ip = dpkt.ip.IP(bytes(hdr) + bytes(64))
    ip.sum = 0
    assert bytes(ip)[10:12] == struct.pack("!H", c)   # dpkt computes its own when 0
    hdr[8] ^= 1              # any flipped bit is caught
    assert not csum_valid(hdr)


def test_pseudo_header_sum():
    saddr, daddr, length, proto = 0x0A000001, 0xC0A80102, 1234, 17
    words = struct.pack("!IIBBH", saddr, daddr, 0, proto, length)
    assert csum_tcpudp_nofold(saddr, daddr, length, proto) == ref_sum(words)


def test_incremental_update_equals_recompute():
    # RFC 1624: update a header checksum for one changed word (TTL decrement).
    rng = random.Random(1624)
    for _ in range(200):
        hdr = bytearray(rng.getrandbits(8) for _ in range(20))
        hdr[8] = rng.randint(1, 255)
        hdr[10:12] = b"\x00\x00"
        struct.pack_into("!H", hdr, 10, ip_compute_csum(hdr))
        old = (hdr[8] << 8) | hdr[9]
        hdr[8] -= 1
        check = csum_replace2((hdr[10] << 8) | hdr[11], old, old - 0x100)
        struct.pack_into("!H", hdr, 10, check)
        assert csum_valid(hdr)
        recomputed = csum_fold(ref_sum(hdr[:10] + b"\x00\x00" + hdr[12:]))
        # Equal, but for the two ones' complement zeros (RFC 1624 section 3).
        assert check == recomputed or {check, recomputed} == {0, 0xFFFF}
