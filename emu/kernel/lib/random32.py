"""The kernel's pseudo-random numbers, seeded by the runtime.

Linux: lib/random32.c (prandom_u32_state: the Tausworthe generator of
L'Ecuyer, "Maximally equidistributed combined Tausworthe generators", 1996),
include/linux/prandom.h, include/linux/random.h (get_random_u32_below).

Emulation note: Linux's get_random_u32() is a CSPRNG fed by hardware
entropy. emu is deterministic instead: every Net owns one RndState seeded by
the runtime (the lab seed, the node's name), and every draw the kernel makes
(ISNs, timestamp offsets, SYN-cookie secrets, ephemeral ports, hash keys)
comes from it, so the same inputs and seed give the same packets. Each netem
qdisc owns its own RndState (sch_netem.c's q->prng), seeded by its `seed`.
"""
import hashlib

_M32 = 0xFFFFFFFF


def _seed(x, m):
    """__seed: each Tausworthe component needs a state word >= m."""
    return x + m if x < m else x


def derive_seed(*parts):
    """A 64-bit seed from any parts (lab seed, node name, device...): stable across runs."""
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little")


class RndState:
    """struct rnd_state: four 32-bit Tausworthe components."""

    __slots__ = ("s1", "s2", "s3", "s4", "seed")

    def __init__(self, seed=0):
        self.prandom_seed_state(seed)

    def prandom_seed_state(self, seed):
        """prandom_seed_state, then prandom_warmup as prandom_seed_full_state does."""
        seed &= 0xFFFFFFFFFFFFFFFF
        self.seed = seed
        i = ((seed >> 32) ^ (seed << 10) ^ seed) & _M32
        self.s1 = _seed(i, 2)
        self.s2 = _seed(i, 8)
        self.s3 = _seed(i, 16)
        self.s4 = _seed(i, 128)
        for _ in range(10):
            self.prandom_u32_state()

    def prandom_u32_state(self):
        """One 32-bit draw."""
        s1, s2, s3, s4 = self.s1, self.s2, self.s3, self.s4
        s1 = (((s1 & 4294967294) << 18) & _M32) ^ ((((s1 << 6) & _M32) ^ s1) >> 13)
        s2 = (((s2 & 4294967288) << 2) & _M32) ^ ((((s2 << 2) & _M32) ^ s2) >> 27)
        s3 = (((s3 & 4294967280) << 7) & _M32) ^ ((((s3 << 13) & _M32) ^ s3) >> 21)
        s4 = (((s4 & 4294967168) << 13) & _M32) ^ ((((s4 << 3) & _M32) ^ s4) >> 12)
        self.s1, self.s2, self.s3, self.s4 = s1, s2, s3, s4
        return s1 ^ s2 ^ s3 ^ s4

    # The get_random_* family, all from this state.
    get_random_u32 = prandom_u32_state

    def get_random_u32_below(self, ceil):
        """A uniform draw in [0, ceil) (the multiply-shift of get_random_u32_below)."""
        if ceil <= 0:
            return 0
        if ceil <= 1 << 32:
            return (self.prandom_u32_state() * ceil) >> 32
        return self.get_random_u64() % ceil

    def get_random_u64(self):
        return (self.prandom_u32_state() << 32) | self.prandom_u32_state()

    def get_random_bytes(self, n):
        out = bytearray()
        while len(out) < n:
            out += self.prandom_u32_state().to_bytes(4, "little")
        return bytes(out[:n])

    def random(self):
        """A float in [0, 1) (for models that think in probabilities)."""
        return self.prandom_u32_state() / 4294967296.0

    def getstate(self):
        return (self.s1, self.s2, self.s3, self.s4)

    def setstate(self, st):
        self.s1, self.s2, self.s3, self.s4 = st
