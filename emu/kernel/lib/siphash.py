"""SipHash-2-4 over a few 32-bit words, as the kernel keys its hash tables.

Linux: lib/siphash.c (siphash_3u32), include/linux/siphash.h. The key is two
64-bit words (siphash_key_t); emu draws it from the net's seeded RndState, so
hashes are unguessable to a lab's programs yet replay with the seed.
"""
_M64 = 0xFFFFFFFFFFFFFFFF


def _rol64(x, b):
    return ((x << b) | (x >> (64 - b))) & _M64


def _sipround(v0, v1, v2, v3):
    v0 = (v0 + v1) & _M64
    v1 = _rol64(v1, 13) ^ v0
    v0 = _rol64(v0, 32)
    v2 = (v2 + v3) & _M64
    v3 = _rol64(v3, 16) ^ v2
    v0 = (v0 + v3) & _M64
    v3 = _rol64(v3, 21) ^ v0
    v2 = (v2 + v1) & _M64
    v1 = _rol64(v1, 17) ^ v2
    v2 = _rol64(v2, 32)
    return v0, v1, v2, v3


def siphash_3u32(first, second, third, key):
    """siphash_3u32: the 64-bit SipHash-2-4 of three u32 (12 bytes, little-endian)."""
    k0, k1 = key
    v0 = 0x736F6D6570736575 ^ k0
    v1 = 0x646F72616E646F6D ^ k1
    v2 = 0x6C7967656E657261 ^ k0
    v3 = 0x7465646279746573 ^ k1
    b = 12 << 56
    combined = ((second & 0xFFFFFFFF) << 32) | (first & 0xFFFFFFFF)
    v3 ^= combined
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    v0 ^= combined
    b |= third & 0xFFFFFFFF
    v3 ^= b
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    v0 ^= b
    v2 ^= 0xFF
    for _ in range(4):
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3
