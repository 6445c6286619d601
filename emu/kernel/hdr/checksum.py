"""Internet checksum (RFC 1071, RFC 1624).

Linux: lib/checksum.c, include/net/checksum.h, arch/x86/include/asm/checksum_64.h

The ones' complement sum of 16-bit big-endian words equals the whole buffer,
read as one big integer, modulo 0xffff (because 2**16 == 1 mod 0xffff). This
runs at C speed: ~6 us for 1460 bytes instead of ~130 us for a word loop.
"""


def csum_partial(data, start=0, end=None, csum=0):
    """Ones' complement sum of data[start:end] plus csum, as a 16-bit value.

    Returns 0xffff rather than 0 for a non-zero buffer whose sum is
    'negative zero', so that folding and verification stay RFC 1071 exact.
    """
    if end is None:
        end = len(data)
    mv = memoryview(data)[start:end]
    n = end - start
    x = int.from_bytes(mv, "big")
    if n & 1:
        x <<= 8          # pad the odd byte on the right with a zero byte
    s = x % 0xFFFF
    if s == 0 and x:
        s = 0xFFFF       # a non-zero buffer summing to 'negative zero'
    if csum:
        s += csum
        s = (s & 0xFFFF) + (s >> 16)
    return s


def csum_fold(csum):
    """Fold a 16-bit ones' complement sum into the value stored in a header."""
    return ~csum & 0xFFFF


def ip_compute_csum(data, start=0, end=None):
    """The checksum field value for data[start:end] (checksum field zeroed)."""
    return csum_fold(csum_partial(data, start, end))


def csum_valid(data, start=0, end=None, csum=0):
    """True if the sum over a region that includes its checksum field is 0xffff."""
    return csum_partial(data, start, end, csum) == 0xFFFF


def csum_tcpudp_nofold(saddr, daddr, length, proto):
    """Sum of the IPv4 pseudo-header (RFC 768, RFC 9293 3.1); saddr/daddr are ints."""
    s = (saddr >> 16) + (saddr & 0xFFFF) + (daddr >> 16) + (daddr & 0xFFFF) + proto + length
    s = (s & 0xFFFF) + (s >> 16)
    return (s & 0xFFFF) + (s >> 16)


def csum_replace2(check, old, new):
    """RFC 1624 eqn. 3 incremental update of a checksum field for one 16-bit word."""
    s = (~check & 0xFFFF) + (~old & 0xFFFF) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
