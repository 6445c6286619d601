"""struct tcp_info as getsockopt(IPPROTO_TCP, TCP_INFO, buflen) returns it:
the bytes of Linux 6.x's layout, so programs that struct.unpack it work.

Linux: net/ipv4/tcp.c (tcp_get_info, do_tcp_getsockopt), include/uapi/linux/tcp.h
(struct tcp_info as of 6.7: 248 bytes, ending with tcpi_total_rto_time).

emu's own API keeps the dict (tcp.tcp_get_info): the two-argument
getsockopt, `ss -i` and Node.tcp_info() use it.

Emulation note: the bytes are little-endian (x86-64, arm64). Fields emu does
not keep are 0: fackets, last_ack_sent (Linux: 0 too), the chrono times
(busy, rwnd/sndbuf limited), delivered_ce, dsack_dups, reord_seen,
rcv_ooopack, rehash, the RTO recovery counters, delivery_rate; lost is
lost_out, as Linux reports it.
"""
import struct

from .tcp import TCP_LISTEN, seq_sub

TCPI_OPT_TIMESTAMPS = 1
TCPI_OPT_SACK = 2
TCPI_OPT_WSCALE = 4

# include/uapi/linux/tcp.h, in field order (natural alignment, no padding needed).
TCP_INFO_STRUCT = struct.Struct(
    "<8B"          # state, ca_state, retransmits, probes, backoff, options, wscales, flags
    "24I"          # rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets,
                   # last_data_sent, last_ack_sent, last_data_recv, last_ack_recv, pmtu,
                   # rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss,
                   # reordering, rcv_rtt, rcv_space, total_retrans
    "4Q"           # pacing_rate, max_pacing_rate, bytes_acked, bytes_received
    "2I"           # segs_out, segs_in
    "4I"           # notsent_bytes, min_rtt, data_segs_in, data_segs_out
    "Q"            # delivery_rate
    "3Q"           # busy_time, rwnd_limited, sndbuf_limited
    "2I"           # delivered, delivered_ce
    "2Q"           # bytes_sent, bytes_retrans
    "2I"           # dsack_dups, reord_seen
    "4I"           # rcv_ooopack, snd_wnd, rcv_wnd, rehash
    "2H"           # total_rto, total_rto_recoveries
    "I"            # total_rto_time
)
TCP_INFO_SIZE = TCP_INFO_STRUCT.size          # 248
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF


def _us(seconds):
    return int(seconds * 1e6) & _U32


def _ms_since(now, t):
    return int((now - t) * 1000) & _U32


def tcp_get_info_bytes(sk):
    """tcp_get_info filling struct tcp_info, packed as the kernel copies it out."""
    from .tcp_output import tcp_pacing_rate
    tp = sk.proto_data
    state = sk.sk_state
    if state == TCP_LISTEN:
        # A listener reports its accept queue and backlog (tcp_get_info).
        u32 = [0] * 24
        u32[4] = len(tp.accept_queue or ())
        u32[5] = tp.max_ack_backlog
        u32[18] = tp.snd_cwnd
        u32[20] = tp.reordering
        vals = [state, 0, 0, 0, 0, 0, 0, 0] + u32 + [_U64, _U64, 0, 0] + [0] * 23
        return TCP_INFO_STRUCT.pack(*vals)
    now = sk.net.clock()
    options = (TCPI_OPT_TIMESTAMPS if tp.tstamp_ok else 0) | \
        (TCPI_OPT_SACK if tp.sack_ok else 0) | (TCPI_OPT_WSCALE if tp.wscale_ok else 0)
    wscales = (tp.snd_wscale & 15) | ((tp.rcv_wscale & 15) << 4) if tp.wscale_ok else 0
    flags = 1 if tp.app_limited else 0
    pacing = min(tcp_pacing_rate(sk), _U64) if tp.srtt else _U64
    u32 = [
        _us(tp.rto), _us(min(tp.ack_ato, 0.2)), tp.mss_cache, tp.ack_rcv_mss,
        tp.packets_out, tp.sacked_out, tp.lost_out, tp.retrans_out, 0,
        _ms_since(now, tp.last_data_sent), 0, _ms_since(now, tp.ack_lrcvtime),
        _ms_since(now, tp.last_ack_recv),
        tp.pmtu_cookie, tp.rcv_ssthresh & _U32, _us(tp.srtt), _us(tp.rttvar),
        tp.snd_ssthresh & _U32, tp.snd_cwnd, tp.advmss, tp.reordering,
        _us(tp.rcv_rtt), tp.rcv_space & _U32, tp.total_retrans & _U32,
    ]
    notsent = max(0, seq_sub(tp.write_seq, tp.snd_nxt))
    vals = [state, tp.ca_state, tp.retransmits & 0xFF, tp.probes_out & 0xFF, tp.backoff & 0xFF,
            options, wscales, flags] + u32 + [
        pacing, _U64, tp.bytes_acked & _U64, tp.bytes_received & _U64,
        tp.segs_out & _U32, tp.segs_in & _U32,
        notsent, _us(tp.min_rtt) if tp.min_rtt else _U32, tp.data_segs_in & _U32,
        tp.data_segs_out & _U32,
        0,
        0, 0, 0,
        tp.delivered & _U32, 0,
        tp.bytes_sent & _U64, tp.bytes_retrans & _U64,
        0, 0,
        0, tp.snd_wnd & _U32, tp.rcv_wnd & _U32, 0,
        0, 0,
        0,
    ]
    return TCP_INFO_STRUCT.pack(*vals)


def tcp_info_getsockopt(sk, buflen):
    """do_tcp_getsockopt(TCP_INFO): the struct, cut to the caller's buffer."""
    return tcp_get_info_bytes(sk)[:min(buflen, TCP_INFO_SIZE)]
