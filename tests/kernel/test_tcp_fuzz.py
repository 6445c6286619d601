"""Bad input never crashes a node: mutated TCP segments against live connections."""
import random

import dpkt

from emu.kernel.core.dev import KernelError
from emu.kernel.socket import sys_recvfrom, sys_sendto
from tests.kernel.test_tcp import MSG_DONTWAIT, Pair


def mutate(template, tp, rnd):
    """A segment near the connection's sequence space, with random flags, options and lengths."""
    eth = dpkt.ethernet.Ethernet(template)
    ip = eth.data
    t = ip.data
    t.seq = (tp.rcv_nxt + rnd.choice([0, 1, -1, rnd.randint(-70000, 70000), rnd.getrandbits(32)])) & 0xFFFFFFFF
    t.ack = (tp.snd_una + rnd.choice([0, 1, -1, rnd.randint(-70000, 70000), rnd.getrandbits(32)])) & 0xFFFFFFFF
    t.flags = rnd.choice([0x10, 0x18, 0x11, 0x04, 0x14, 0x02, 0x12, 0x01, rnd.getrandbits(8)])
    t.win = rnd.getrandbits(16)
    opts = b""
    for _ in range(rnd.randint(0, 4)):
        kind = rnd.choice([0, 1, 2, 3, 4, 5, 8, rnd.getrandbits(8)])
        if kind in (0, 1):
            opts += bytes([kind])
            continue
        n = rnd.choice([{2: 4, 3: 3, 4: 2, 5: 10, 8: 10}.get(kind, 2), rnd.randint(0, 12)])
        opts += bytes([kind, n]) + bytes(rnd.getrandbits(8) for _ in range(max(0, n - 2)))
    opts = opts[:40]
    opts += b"\x00" * (-len(opts) % 4)
    t.opts = opts
    t.off = 5 + len(opts) // 4 if rnd.random() > 0.1 else rnd.getrandbits(4)
    t.data = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([0, 1, 10, 1448, rnd.randint(0, 3000)])))
    t.sum = 0
    ip.data = t
    ip.len = 0
    ip.sum = 0
    raw = bytearray(bytes(eth))
    if rnd.random() < 0.05:
        raw = raw[:rnd.randint(14, len(raw))]
    if rnd.random() < 0.05 and len(raw) > 15:
        raw[rnd.randint(14, len(raw) - 1)] = rnd.getrandbits(8)
    return bytes(raw)


def check_invariants(p):
    for which in ("c", "s"):
        sk = p.sk(which)
        tp = sk.proto_data
        for name in ("packets_out", "sacked_out", "lost_out", "retrans_out"):
            assert getattr(tp, name) >= 0, (which, name)
        assert sk.sk_rmem_alloc == sum(s.truesize for s in sk.sk_receive_queue.q), which  # skb_set_owner_r


def test_thousand_mutated_segments_never_raise_and_keep_counters_sane():
    rnd = random.Random(20261122)
    for _round in range(3):
        p = Pair().connect()
        sys_sendto(p.t1, p.c, b"x" * 50000, 0, None)
        sys_sendto(p.t2, p.s, b"y" * 3000, 0, None)
        to_h2 = p.lab.port("h1", "eth0").sent[-1]
        to_h1 = p.lab.port("h2", "eth0").sent[-1]
        for i in range(350):
            node, template, which = rnd.choice([("h2", to_h2, "s"), ("h1", to_h1, "c")])
            p.lab.inject(node, "eth0", mutate(template, p.sk(which).proto_data, rnd), flags=1)
            if i % 5 == 0:
                p.lab.advance(0.05)
            if i % 3 == 0:
                for task, fd in ((p.t1, p.c), (p.t2, p.s)):
                    try:
                        sys_recvfrom(task, fd, 1 << 20, MSG_DONTWAIT)
                    except KernelError:
                        pass
            check_invariants(p)
    # and the node still makes new connections
    q = Pair(p.lab, port=81).connect()
    sys_sendto(q.t1, q.c, b"still fine", 0, None)
    q.lab.run()
    assert sys_recvfrom(q.t2, q.s, 100)[0] == b"still fine"
