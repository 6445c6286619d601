"""The advertised receive window as Linux 6.x computes it: rcv_ssthresh
(tcp_init_buffer_space, tcp_grow_window), scaling_ratio (tcp_win_from_space,
tcp_measure_rcv_mss), receive-buffer autotuning (tcp_rcv_space_adjust).
Inline kernels under the fake clock."""
import os

from emu.kernel.core.dev import KernelError
from emu.kernel.socket import sys_sendto
from tests.kernel.test_tcp import Pair, recv_all


def test_handshake_windows_and_the_initial_clamp():
    p = Pair().connect()
    syn, ack = p.frames("h1")[0], p.frames("h1")[1]
    synack = p.frames("h2")[0]
    # 131072-byte rcvbuf at the default 50 % ratio: 65536, rounded down to
    # the MSS (1460 in the SYN, 1448 with timestamps in the SYN-ACK).
    assert syn.win == 64240 and synack.win == 65160
    tp = p.sk("c").proto_data
    # tcp_init_buffer_space: clamp 65536 less one advmss (tcp_app_win), and
    # rcv_ssthresh starts there, below the SYN's window.
    assert tp.window_clamp == 65536 - 1460 and tp.rcv_ssthresh == 64076
    # The ACK may not shrink what the SYN offered: 64240 aligned up to 2**7.
    assert ack.win == 502 and ack.win << 7 >= 64240


def test_window_grows_during_a_bulk_transfer():
    p = Pair(tso=False).connect()
    s = p.sk("s")
    tp = s.proto_data
    assert tp.rcv_ssthresh == 65536 - 1460       # the server's advmss is 1460 too
    data = os.urandom(3_000_000)
    sent, got = 0, bytearray()
    for _ in range(20000):
        if len(got) >= len(data):
            break
        if sent < len(data):
            try:
                sent += sys_sendto(p.t1, p.c, data[sent:sent + 65536], 0, None)
            except KernelError:
                pass
        p.lab.run()
        got += recv_all(p.t2, p.s)
        p.lab.advance(0.001, tick=0.001)          # a reader that keeps up, 1 ms RTT
    assert bytes(got) == data
    wins = [f.win << 7 for f in p.frames("h2")[1:]]
    # It starts near the initial window and ends many times larger: each
    # full segment opens rcv_ssthresh by two (tcp_grow_window) and the
    # autotuned buffer lets the clamp follow (tcp_rcv_space_adjust).
    assert 60000 <= wins[0] <= 80000
    assert wins[-1] > 10 * wins[0]
    half = len(wins) // 2
    assert max(wins[:half]) < max(wins[half:])
    assert s.sk_rcvbuf > 131072
    # The payload/truesize ratio was measured from full segments (not 50 %).
    assert tp.scaling_ratio != 128
    assert tp.rcv_rtt > 0


def test_window_is_limited_by_rcv_ssthresh_not_free_space():
    p = Pair(tso=False).connect()
    tp = p.sk("s").proto_data
    sys_sendto(p.t1, p.c, b"x" * 1448, 0, None)
    p.lab.run()
    recv_all(p.t2, p.s)
    # Free space is the whole buffer, but the window offered is rcv_ssthresh
    # (grown once by this segment), aligned to the scale.
    from emu.kernel.ipv4.tcp_output import __tcp_select_window
    from emu.kernel.ipv4.tcp import tcp_space
    assert tcp_space(p.sk("s")) > tp.rcv_ssthresh
    assert __tcp_select_window(p.sk("s")) == (tp.rcv_ssthresh + 127) & ~127
