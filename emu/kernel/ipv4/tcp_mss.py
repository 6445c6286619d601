"""TCP output, split out of tcp_output.py: the MSS, the window we advertise,
and the options we send.

Linux: net/ipv4/tcp_output.c (tcp_mtu_to_mss, tcp_sync_mss, tcp_current_mss,
tcp_select_initial_window, __tcp_select_window, tcp_select_window,
tcp_syn_options, tcp_established_options), net/ipv4/tcp.c
(tcp_xmit_size_goal); RFC 7323, RFC 2018, RFC 1122 4.2.3.3.
"""
import struct

from ..core.netdevice import NETIF_F_GSO, NETIF_F_TSO
from .tcp import (
    MAX_TCP_HEADER, TCP_HLEN, TCP_MAX_WSCALE, TCP_MIN_MSS, TCPOPT_MSS, TCPOPT_NOP, TCPOPT_SACK,
    TCP_RMEM_TO_WIN_SCALE, TCPOPT_SACK_PERM, TCPOPT_TIMESTAMP, TCPOPT_WINDOW, tcp_sysctl,
)

GSO_MAX_SIZE = 65536
IPV4_MAX_PMTU = 65535  # the largest IPv4 datagram: caps the MSS we advertise


def tcp_time_stamp(sk):
    """The TSval clock: milliseconds (Linux: tcp_time_stamp_raw, 1 kHz)."""
    return (int(sk.net.clock() * 1000) + sk.proto_data.ts_offset) & 0xFFFFFFFF


# ------------------------------------------------------------------ MSS and windows

def tcp_mtu_to_mss(sk, pmtu):
    tp = sk.proto_data
    mss = pmtu - 20 - TCP_HLEN
    mss = min(mss, tp.mss_clamp)
    if tp.user_mss:
        mss = min(mss, tp.user_mss)
    if tp.tstamp_ok:
        mss -= 12
    return max(mss, TCP_MIN_MSS - 40 if pmtu < 128 else TCP_MIN_MSS - 40)


def tcp_sync_mss(sk, pmtu):
    tp = sk.proto_data
    tp.pmtu_cookie = pmtu
    tp.mss_cache = tcp_mtu_to_mss(sk, pmtu)
    return tp.mss_cache


def tcp_current_mss(sk):
    """The MSS for the next segment, less the SACK blocks we will carry."""
    tp = sk.proto_data
    mss = tp.mss_cache
    if tp.selective_acks:
        mss -= 4 + 8 * min(len(tp.selective_acks), 3 if tp.tstamp_ok else 4)
    return max(mss, 1)


def tcp_size_goal(sk, mss):
    """How big a skb to build: one MSS, or a GSO super-segment when the route allows."""
    dst = sk.sk_dst_cache
    # sk_can_gso: the device segments in hardware (TSO), or the stack does it
    # in software just before the driver (NETIF_F_GSO): either way TCP builds
    # super-segments and crosses its own layers once per 64 KiB, not per MSS.
    if dst is None or not dst.dev.features & (NETIF_F_TSO | NETIF_F_GSO) or sk.sk_socket is None:
        return mss
    goal = min(GSO_MAX_SIZE - MAX_TCP_HEADER, dst.dev.gso_max_size - MAX_TCP_HEADER)
    return max(mss, goal - goal % mss)


def tcp_select_initial_window(sk, space, mss, window_clamp, wscale_ok, init_rcv_wnd=0):
    """RFC 7323 2.3: the window for the SYN (a multiple of mss, at most 64 KiB
    unscaled) and the shift sized for the largest buffer we may grow to.
    Returns (rcv_wnd, window_clamp, rcv_wscale) (tcp_select_initial_window)."""
    net = sk.net
    space = max(space, 0)
    if window_clamp == 0:
        window_clamp = 65535 << TCP_MAX_WSCALE
    space = min(window_clamp, space)
    if space > mss:
        space -= space % mss                  # rounddown(space, mss)
    if tcp_sysctl(net, "tcp_workaround_signed_windows"):
        rcv_wnd = min(space, 32767)
    else:
        rcv_wnd = min(space, 65535)
    if init_rcv_wnd:
        rcv_wnd = min(rcv_wnd, init_rcv_wnd * mss)
    rcv_wscale = 0
    if wscale_ok:
        space = max(space, tcp_sysctl(net, "tcp_rmem")[2], net.sysctl["net.core.rmem_max"])
        space = min(space, window_clamp)
        rcv_wscale = max(0, min(space.bit_length() - 1 - 15, TCP_MAX_WSCALE))
    return rcv_wnd, min(65535 << rcv_wscale, window_clamp), rcv_wscale


def __tcp_select_window(sk):
    """The window we could offer now: the free buffer space, at most
    rcv_ssthresh, never a sliver (receiver-side SWS avoidance, RFC 1122
    4.2.3.3), aligned so the scaling does not round it away."""
    tp = sk.proto_data
    mss = tp.ack_rcv_mss
    # tcp_space and tcp_full_space (tcp_win_from_space of the free and of the
    # whole buffer), written out: this runs for every segment sent and every
    # ACK decision, and each Python call costs about as much as the arithmetic.
    ratio = tp.scaling_ratio
    rcvbuf = sk.sk_rcvbuf
    free_space = ((rcvbuf - sk.sk_rmem_alloc) * ratio) >> TCP_RMEM_TO_WIN_SCALE
    allowed_space = (rcvbuf * ratio) >> TCP_RMEM_TO_WIN_SCALE
    full_space = tp.window_clamp if tp.window_clamp < allowed_space else allowed_space
    if mss > full_space:
        mss = full_space
        if mss <= 0:
            return 0
    if free_space < full_space >> 1:
        tp.ack_quick = 0
        free_space &= ~((1 << tp.rcv_wscale) - 1)
        # Below 1/16 of the buffer or one segment: head for a zero window.
        if free_space < allowed_space >> 4 or free_space < mss:
            return 0
    if free_space > tp.rcv_ssthresh:
        free_space = tp.rcv_ssthresh
    if tp.rcv_wscale:
        unit = 1 << tp.rcv_wscale
        return (free_space + unit - 1) & ~(unit - 1)       # ALIGN
    window = tp.rcv_wnd
    if window <= free_space - mss or window > free_space:
        window = (free_space // mss) * mss
    elif mss == full_space and free_space > window + (full_space >> 1):
        window = free_space
    return window


def tcp_receive_window(tp):
    """What is left of the window we advertised: rcv_wup + rcv_wnd - rcv_nxt, at least 0."""
    win = (tp.rcv_wup + tp.rcv_wnd - tp.rcv_nxt) & 0xFFFFFFFF
    return 0 if win > 0x7FFFFFFF else win


def tcp_select_window(sk):
    """The window field of an outgoing segment: never shrinks what we offered."""
    tp = sk.proto_data
    cur_win = (tp.rcv_wup + tp.rcv_wnd - tp.rcv_nxt) & 0xFFFFFFFF     # tcp_receive_window
    if cur_win > 0x7FFFFFFF:
        cur_win = 0
    new_win = __tcp_select_window(sk)
    wscale = tp.rcv_wscale
    if new_win < cur_win:
        # RFC 9293 3.8.6.2.2: do not shrink the window (round up to the scale unit).
        unit = 1 << wscale
        new_win = (cur_win + unit - 1) // unit * unit
    tp.rcv_wnd = new_win
    tp.rcv_wup = tp.rcv_nxt
    limit = 65535 << wscale if tp.wscale_ok else 65535
    if new_win > limit:
        new_win = limit
    return new_win >> wscale


# ------------------------------------------------------------------ options

def tcp_syn_options(sk, mss, wscale, ts, sack, tsval, tsecr):
    """MSS, SACK-permitted, timestamps, window scale: Linux's order and NOP padding."""
    out = bytearray(struct.pack("!BBH", TCPOPT_MSS, 4, mss))
    if ts:
        if sack:
            out += bytes((TCPOPT_SACK_PERM, 2))
        else:
            out += bytes((TCPOPT_NOP, TCPOPT_NOP))
        out += struct.pack("!BBII", TCPOPT_TIMESTAMP, 10, tsval, tsecr)
    elif sack:
        out += bytes((TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK_PERM, 2))
    if wscale is not None:
        out += bytes((TCPOPT_NOP, TCPOPT_WINDOW, 3, wscale))
    return bytes(out)


_TS_OPTS = struct.Struct("!BBBBII")     # NOP, NOP, TIMESTAMP, 10, TSval, TSecr


def tcp_established_options(sk):
    tp = sk.proto_data
    dsack = tp.duplicate_sack
    sacks = tp.sack_ok and (tp.selective_acks or dsack)
    if tp.tstamp_ok:
        # tcp_time_stamp, written out (once per segment sent).
        tsval = (int(sk.net.clock() * 1000) + tp.ts_offset) & 0xFFFFFFFF
        ts = _TS_OPTS.pack(TCPOPT_NOP, TCPOPT_NOP, TCPOPT_TIMESTAMP, 10, tsval, tp.ts_recent)
        if not sacks:
            return ts
        out = bytearray(ts)
    elif not sacks:
        return b""
    else:
        out = bytearray()
    # A D-SACK block goes first, then the SACK blocks (tcp_established_options),
    # and is sent once (tcp_options_write clears rx_opt.dsack).
    blocks = ([dsack] if dsack else []) + tp.selective_acks
    blocks = blocks[:3 if tp.tstamp_ok else 4]
    tp.duplicate_sack = None
    out += bytes((TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK, 2 + 8 * len(blocks)))
    for start, end in blocks:
        out += struct.pack("!II", start, end)
    return bytes(out)
