"""getsockopt(IPPROTO_TCP, TCP_INFO, buflen) returns the bytes of Linux 6.x's
struct tcp_info (include/uapi/linux/tcp.h, 248 bytes), cut to buflen as
do_tcp_getsockopt does; without buflen, emu's dict (its own API)."""
import struct

from emu.kernel.socket import sys_getsockopt, sys_sendto
from tests.kernel.test_tcp import Pair, recv_all

SOL_TCP, TCP_INFO = 6, 11
# What a program written for Linux unpacks: the 104-byte prefix every kernel
# since 2.6 has, then the later fields at their offsets.
HEAD = struct.Struct("<8B24I")
FIELDS = ("rto", "ato", "snd_mss", "rcv_mss", "unacked", "sacked", "lost", "retrans",
          "fackets", "last_data_sent", "last_ack_sent", "last_data_recv", "last_ack_recv",
          "pmtu", "rcv_ssthresh", "rtt", "rttvar", "snd_ssthresh", "snd_cwnd", "advmss",
          "reordering", "rcv_rtt", "rcv_space", "total_retrans")


def test_tcp_info_bytes_in_linux_layout():
    p = Pair().connect()
    sys_sendto(p.t1, p.c, b"x" * 10_000, 0, None)
    p.lab.run()
    assert len(recv_all(p.t2, p.s)) == 10_000
    raw = sys_getsockopt(p.t1, p.c, SOL_TCP, TCP_INFO, 512)
    assert isinstance(raw, bytes) and len(raw) == 248          # sizeof(struct tcp_info)
    head = HEAD.unpack_from(raw)
    state, ca_state, _, _, _, options, wscale = head[:7]
    f = dict(zip(FIELDS, head[8:]))
    assert state == 1 and ca_state == 0                       # TCP_ESTABLISHED, Open
    assert options == 1 | 2 | 4                               # timestamps, SACK, wscale
    assert wscale & 15 == 7 and wscale >> 4 == 7               # snd_wscale, rcv_wscale nibbles
    assert f["snd_mss"] == 1448 and f["advmss"] == 1460 and f["pmtu"] == 1500
    assert f["snd_cwnd"] == p.sk("c").proto_data.snd_cwnd
    assert f["snd_ssthresh"] == 0x7FFFFFFF and f["unacked"] == 0 and f["reordering"] == 3
    assert f["rto"] >= 200_000                                 # microseconds
    assert f["rcv_ssthresh"] == p.sk("c").proto_data.rcv_ssthresh
    pacing, max_pacing, bytes_acked, bytes_received = struct.unpack_from("<4Q", raw, 104)
    assert bytes_acked == 10_000 + 1                           # the SYN counts (ss: bytes_acked:1)
    assert bytes_received == 0 and max_pacing == 2 ** 64 - 1
    segs_out, segs_in = struct.unpack_from("<2I", raw, 136)
    assert segs_out == p.sk("c").proto_data.segs_out and segs_in > 0
    notsent, min_rtt, data_segs_in, data_segs_out = struct.unpack_from("<4I", raw, 144)
    assert notsent == 0 and data_segs_out >= 7                 # 10,000 bytes / 1448
    bytes_sent, = struct.unpack_from("<Q", raw, 200)
    assert bytes_sent == 10_000
    snd_wnd, rcv_wnd = struct.unpack_from("<2I", raw, 228)
    assert snd_wnd == p.sk("c").proto_data.snd_wnd and rcv_wnd == p.sk("c").proto_data.rcv_wnd
    # The receiver's side: bytes_received.
    raw_s = sys_getsockopt(p.t2, p.s, SOL_TCP, TCP_INFO, 248)
    assert struct.unpack_from("<Q", raw_s, 128)[0] == 10_000


def test_tcp_info_is_cut_to_buflen_and_the_dict_stays():
    p = Pair().connect()
    full = sys_getsockopt(p.t1, p.c, SOL_TCP, TCP_INFO, 248)
    short = sys_getsockopt(p.t1, p.c, SOL_TCP, TCP_INFO, 104)     # an older program's struct
    assert len(short) == 104 and short[:8] == full[:8]
    assert len(sys_getsockopt(p.t1, p.c, SOL_TCP, TCP_INFO, 1)) == 1
    info = sys_getsockopt(p.t1, p.c, SOL_TCP, TCP_INFO)
    assert isinstance(info, dict) and info["state"] == "ESTABLISHED"
    assert info["snd_mss"] == 1448 and "rcv_ssthresh" in info


def test_tcp_info_of_a_listener_reports_its_queue():
    p = Pair(backlog=5)
    raw = sys_getsockopt(p.t2, p.ls, SOL_TCP, TCP_INFO, 248)
    head = HEAD.unpack_from(raw)
    assert head[0] == 10                                        # TCP_LISTEN
    f = dict(zip(FIELDS, head[8:]))
    assert f["unacked"] == 0 and f["sacked"] == 5               # accept queue, backlog
