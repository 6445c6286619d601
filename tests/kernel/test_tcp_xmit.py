"""What TCP sends and when, as Linux 6.x's tcp_write_xmit decides: TSO/GSO
skbs capped by tcp_cwnd_test (half of cwnd) and tcp_tso_segs, Nagle with
Minshall's rule and tcp_mss_split_point, autocorking (tcp_should_autocork),
and the quick-ACK count at the start of a connection (tcp_incr_quickack).
Inline kernels under the fake clock, segments read from the wire with dpkt."""
import collections

import dpkt

from emu import netem as unetem
from emu.kernel.core.dev import KernelError
from emu.kernel.core.rtnetlink import RTNL_OPS
from emu.kernel.socket import sys_sendto, sys_setsockopt
from tests.kernel.test_tcp import Pair, recv_all

SOL_TCP, TCP_NODELAY = 6, 1
MSS = 1448


def data_frames(p, node="h1"):
    return [f for f in p.frames(node) if f.data]


def segs(frame):
    return -(-len(frame.data) // MSS)


def test_first_flights_are_5_5_then_10_10():
    p = Pair().connect()
    h1_in = p.lab.port("h1", "eth0").inbox
    sys_sendto(p.t1, p.c, bytes(200_000), 0, None)
    # cwnd 10: two GSO skbs of min(cwnd / 2, cwnd - in_flight) = 5 segments.
    assert [segs(f) for f in data_frames(p)] == [5, 5]
    # Let h2 ACK both, then keep only the last (cumulative) ACK, as a
    # receiver that GRO-merged the two trains sends.
    for _ in range(20):
        if sum(1 for fr in h1_in if dpkt.ethernet.Ethernet(fr[0]).data.p == 6) >= 2:
            break
        p.lab.step()
    acks = [fr for fr in h1_in if dpkt.ethernet.Ethernet(fr[0]).data.p == 6]
    assert len(acks) == 2
    h1_in.remove(acks[0])
    p.lab.step()
    # Slow start: cwnd 20, nothing in flight: 10 and 10.
    assert [segs(f) for f in data_frames(p)][:4] == [5, 5, 10, 10]
    assert p.sk("c").proto_data.snd_cwnd == 20


def test_small_writes_with_data_in_flight_become_full_segments():
    p = Pair(tso=False).connect()
    # 2,048 writes of 100 bytes, the ACKs coming back only when the send
    # buffer is full (a writer much faster than the RTT).
    got = bytearray()
    for _ in range(2048):
        left = 100
        while left:
            try:
                left -= sys_sendto(p.t1, p.c, b"z" * left, 0, None)
            except KernelError:
                p.lab.run()
                got += recv_all(p.t2, p.s)
    for _ in range(100):
        p.lab.run()
        got += recv_all(p.t2, p.s)
        if len(got) == 204_800:
            break
        p.lab.advance(0.05)
    assert len(got) == 204_800
    sizes = [len(f.data) for f in data_frames(p)]
    # The first write goes alone (nothing in flight); the rest wait for the
    # ACK (Nagle, Minshall) and leave full-sized, but for the last piece and
    # a tail sent when everything had been acknowledged (the writer blocked).
    assert sizes[0] == 100
    short = [n for n in sizes[1:-1] if n != MSS]
    assert len(short) <= 2, collections.Counter(sizes)
    assert len(sizes) <= 4 + 204_800 // MSS


def test_nagle_minshall_holds_a_sub_mss_tail_while_a_small_segment_is_unacked():
    p = Pair(tso=False).connect()
    p.lab.port("h2", "eth0").up = False             # no ACKs come back
    sys_sendto(p.t1, p.c, b"a" * 1000, 0, None)       # small, nothing in flight: goes
    sys_sendto(p.t1, p.c, b"b" * 2000, 0, None)       # 1448 goes, the 552 tail waits
    p.lab.run()
    assert [len(f.data) for f in data_frames(p)] == [1000, 1448]
    tp = p.sk("c").proto_data
    assert sum(s.len for s in tp.write_queue) == 552


def test_autocork_coalesces_small_writes_while_a_segment_sits_in_the_qdisc():
    p = Pair(tso=False).connect()
    sys_setsockopt(p.t1, p.c, SOL_TCP, TCP_NODELAY, 1)      # Nagle off: only autocork holds
    net = p.lab.nets["h1"]
    RTNL_OPS["qdisc_add"](net, "eth0", "netem", **unetem.parse_netem("delay 10ms".split()))
    for _ in range(10):
        sys_sendto(p.t1, p.c, b"q" * 100, 0, None)
    assert net.mib["TcpExt"]["TCPAutoCorking"] >= 1
    p.lab.advance(0.1, tick=0.001)
    assert len(recv_all(p.t2, p.s)) == 1000
    # The first write left at once, and so did the second skb (200 bytes by
    # then: no larger than what sat in the qdisc); the other seven waited in
    # it until a segment left the qdisc (TX completion), then went as one.
    assert [len(f.data) for f in data_frames(p)] == [100, 200, 700]


def test_quick_ack_count_follows_the_window_and_only_owed_acks_use_it():
    p = Pair(tso=False).connect()
    s = p.sk("s").proto_data
    # No data yet: the handshake spent no quick ACKs.
    assert s.ack_quick == 0
    sys_sendto(p.t1, p.c, b"d" * MSS, 0, None)
    p.lab.run()
    # tcp_incr_quickack: min(rcv_wnd / (2 * rcv_mss), 16) = min(65160 / 2896, 16);
    # the window growth asks for the next segments to be ACKed at once as
    # well (quick |= 1: 17); the ACK of this segment used one.
    assert s.ack_quick == 16
    # A receiver with a small buffer gets fewer quick ACKs.
    q = Pair(port=81, tso=False)
    sys_setsockopt(q.t2, q.ls, 1, 8, 4096)          # SO_RCVBUF on the listener
    q.connect()
    qs = q.sk("s").proto_data
    assert qs.rcv_wnd // (2 * 536) < 16
    sys_sendto(q.t1, q.c, b"d" * 100, 0, None)
    q.lab.run()
    assert qs.ack_quick < 15
