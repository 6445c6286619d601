"""TCP: the socket side (state, send and receive queues, options, close).

Linux: net/ipv4/tcp.c, include/net/tcp.h, include/linux/tcp.h; RFC 9293.

The protocol machinery is split as in Linux: tcp_input.py (segments in),
tcp_output.py (segments out), tcp_timer.py, tcp_ipv4.py (lookup, connect,
RST), tcp_minisocks.py (SYN-RECV and TIME-WAIT), inet_connection_sock.py
(listen, accept, ports), tcp_cong.py and tcp_cubic.py (congestion control).
"""
import errno
import struct
from collections import deque

from ..core.dev import KernelError
from ..core.entry import SyscallBlock
from ..core.sock import (
    EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLRDNORM, EPOLLWRNORM,
    MSG_DONTWAIT, MSG_PEEK, MSG_WAITALL, RCV_SHUTDOWN, SEND_SHUTDOWN, IovIter, sk_wait_data,
    skb_copy_datagram_iter,
)
from ..core.skbuff import consume_skb

# include/net/tcp_states.h
TCP_ESTABLISHED = 1
TCP_SYN_SENT = 2
TCP_SYN_RECV = 3
TCP_FIN_WAIT1 = 4
TCP_FIN_WAIT2 = 5
TCP_TIME_WAIT = 6
TCP_CLOSE = 7
TCP_CLOSE_WAIT = 8
TCP_LAST_ACK = 9
TCP_LISTEN = 10
TCP_CLOSING = 11
TCP_NEW_SYN_RECV = 12
TCP_STATE_NAMES = {1: "ESTABLISHED", 2: "SYN-SENT", 3: "SYN-RECV", 4: "FIN-WAIT-1",
                   5: "FIN-WAIT-2", 6: "TIME-WAIT", 7: "CLOSE", 8: "CLOSE-WAIT",
                   9: "LAST-ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW-SYN-RECV"}

TCPHDR_FIN = 0x01
TCPHDR_SYN = 0x02
TCPHDR_RST = 0x04
TCPHDR_PSH = 0x08
TCPHDR_ACK = 0x10
TCPHDR_URG = 0x20
TCPHDR_ECE = 0x40
TCPHDR_CWR = 0x80

TCPOPT_EOL = 0
TCPOPT_NOP = 1
TCPOPT_MSS = 2
TCPOPT_WINDOW = 3
TCPOPT_SACK_PERM = 4
TCPOPT_SACK = 5
TCPOPT_TIMESTAMP = 8

# sport dport seq ack doff/res flags window check urg_ptr
tcphdr = struct.Struct("!HHIIBBHHH")
TCP_HLEN = 20
MAX_TCP_HEADER = 160 + 128      # options + IP + link layer, as MAX_TCP_HEADER

TCP_MSS_DEFAULT = 536           # RFC 1122 default when the peer sends no MSS
TCP_MIN_MSS = 88
TCP_INIT_CWND = 10              # RFC 6928, Linux's TCP_INIT_CWND
TCP_TIMEOUT_INIT = 1.0          # RFC 6298 2.1
TCP_RTO_MIN = 0.2               # Linux's 200 ms floor
TCP_RTO_MAX = 120.0
TCP_DELACK_MIN = 0.04           # 40 ms
TCP_DELACK_MAX = 0.2
TCP_ATO_MIN = 0.04
TCP_MAX_QUICKACKS = 16
TCP_TIMEWAIT_LEN = 60.0
TCP_KEEPALIVE_TIME = 7200.0
TCP_KEEPALIVE_INTVL = 75.0
TCP_KEEPALIVE_PROBES = 9
TCP_MAX_WSCALE = 14
# include/net/tcp.h: window bytes per buffer byte, as scaling_ratio / 2**8
TCP_RMEM_TO_WIN_SCALE = 8
TCP_DEFAULT_SCALING_RATIO = 1 << (TCP_RMEM_TO_WIN_SCALE - 1)     # 50 % until measured
TCP_PAWS_24DAYS = 60 * 60 * 24 * 24

# socket options (include/uapi/linux/tcp.h)
SOL_TCP = 6
TCP_NODELAY = 1
TCP_MAXSEG = 2
TCP_CORK = 3
TCP_KEEPIDLE = 4
TCP_KEEPINTVL = 5
TCP_KEEPCNT = 6
TCP_SYNCNT = 7
TCP_LINGER2 = 8
TCP_DEFER_ACCEPT = 9
TCP_WINDOW_CLAMP = 10
TCP_INFO = 11
TCP_QUICKACK = 12
TCP_CONGESTION = 13
TCP_USER_TIMEOUT = 18

# tp->nonagle (include/linux/tcp.h)
TCP_NAGLE_OFF = 1               # TCP_NODELAY
TCP_NAGLE_CORK = 2              # TCP_CORK (or MSG_MORE for one push)
TCP_NAGLE_PUSH = 4              # push what is queued now, once

# inet_connection_sock ca_state (include/net/tcp.h)
TCP_CA_Open = 0
TCP_CA_Disorder = 1
TCP_CA_CWR = 2
TCP_CA_Recovery = 3
TCP_CA_Loss = 4
CA_STATE_NAMES = ("open", "disorder", "cwr", "recovery", "loss")

# TCP_SKB_CB(skb)->sacked
TCPCB_SACKED_ACKED = 0x01
TCPCB_SACKED_RETRANS = 0x02
TCPCB_LOST = 0x04

TCP_DEFAULT_SYSCTLS = {
    "net.ipv4.tcp_rmem": (4096, 131072, 6291456),
    "net.ipv4.tcp_wmem": (4096, 16384, 4194304),
    "net.ipv4.tcp_window_scaling": 1,
    "net.ipv4.tcp_timestamps": 1,
    "net.ipv4.tcp_sack": 1,
    "net.ipv4.tcp_dsack": 1,
    "net.ipv4.tcp_slow_start_after_idle": 1,
    "net.ipv4.tcp_syncookies": 1,
    "net.ipv4.tcp_early_demux": 1,
    "net.ipv4.tcp_syn_retries": 6,
    "net.ipv4.tcp_synack_retries": 5,
    "net.ipv4.tcp_retries1": 3,
    "net.ipv4.tcp_retries2": 15,
    "net.ipv4.tcp_fin_timeout": 60,
    "net.ipv4.tcp_timewait_len": 60,        # emu: TIME_WAIT length (Linux: TCP_TIMEWAIT_LEN)
    "net.ipv4.tcp_max_syn_backlog": 1024,
    "net.ipv4.tcp_congestion_control": "cubic",
    "net.ipv4.tcp_keepalive_time": 7200,
    "net.ipv4.tcp_keepalive_intvl": 75,
    "net.ipv4.tcp_keepalive_probes": 9,
    "net.ipv4.tcp_challenge_ack_limit": 1000,
    "net.ipv4.tcp_invalid_ratelimit": 500,      # ms between out-of-window ACKs per socket
    "net.ipv4.tcp_app_win": 31,
    "net.ipv4.tcp_moderate_rcvbuf": 1,
    "net.ipv4.tcp_workaround_signed_windows": 0,
    "net.ipv4.tcp_autocorking": 1,
    "net.ipv4.tcp_min_tso_segs": 2,
    "net.ipv4.tcp_tso_rtt_log": 9,
    "net.ipv4.tcp_tso_win_divisor": 3,
    "net.core.somaxconn": 4096,
}


def before(a, b):
    """Sequence number a is before b (mod 2**32)."""
    return ((a - b) & 0xFFFFFFFF) > 0x7FFFFFFF


def after(a, b):
    return ((b - a) & 0xFFFFFFFF) > 0x7FFFFFFF


def seq_add(a, n):
    return (a + n) & 0xFFFFFFFF


def seq_sub(a, b):
    """a - b as a signed distance."""
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d > 0x7FFFFFFF else d


class TcpSkbCb:
    """TCP_SKB_CB: what TCP keeps about a queued segment."""

    __slots__ = ("seq", "end_seq", "tcp_flags", "sacked", "when", "retrans", "first_tx",
                 "ack_seq", "tsval", "tsecr", "has_ts", "window", "sack_blocks", "pcount",
                 "mss")

    def __init__(self, seq, end_seq, flags):
        self.seq = seq
        self.end_seq = end_seq
        self.tcp_flags = flags
        self.sacked = 0
        self.when = 0.0
        self.retrans = 0
        self.first_tx = 0.0
        self.ack_seq = 0
        self.tsval = 0
        self.tsecr = 0
        self.has_ts = False
        self.window = 0
        self.sack_blocks = ()
        self.pcount = 1          # segments this skb counts for (tcp_gso_segs), set when sent
        self.mss = 0             # ... and the MSS they were counted with


class TcpSock:
    """struct tcp_sock (with inet_connection_sock) for one connection."""

    __slots__ = (
        "sk", "snd_una", "snd_nxt", "snd_wnd", "max_window", "snd_wl1", "write_seq",
        "pushed_seq", "rcv_nxt", "rcv_wnd", "rcv_wup", "copied_seq", "window_clamp",
        "rcv_wscale", "snd_wscale", "wscale_ok", "tstamp_ok", "sack_ok", "ts_recent",
        "ts_recent_stamp", "ts_offset", "mss_cache", "advmss", "mss_clamp", "user_mss",
        "srtt", "mdev", "mdev_max", "rttvar", "rtt_seq", "rto", "backoff", "retransmits",
        "probes_out", "snd_cwnd", "snd_ssthresh", "snd_cwnd_cnt", "prior_cwnd",
        "prior_ssthresh", "ca_state", "high_seq", "undo_marker", "packets_out",
        "sacked_out", "lost_out", "retrans_out", "dupacks", "ca_ops", "ca_priv",
        "nonagle", "write_queue", "rtx_queue", "out_of_order_queue",
        "recv_sack_cache", "highest_sack", "lost_hint", "rtx_hint", "selective_acks",
        "ack_pending", "ack_quick", "ack_pingpong",
        "ack_ato", "ack_lrcvtime", "ack_rcv_mss", "ack_rcvd_since", "ack_timer",
        "retransmit_timer", "keepalive_timer", "timer_kind", "keepalive_time",
        "keepalive_intvl", "keepalive_probes", "syn_retries", "linger2", "user_timeout",
        "fin_sent", "bytes_acked", "bytes_received", "bytes_sent", "bytes_retrans",
        "segs_in", "segs_out", "data_segs_in", "data_segs_out", "total_retrans",
        "lost", "reordering", "rcv_space", "rcv_space_seq", "rcv_space_time",
        "last_data_recv", "last_data_sent", "last_ack_recv", "retrans_stamp",
        "tlp_high_seq", "accept_queue", "syn_queue", "max_ack_backlog", "listener",
        "tw_timer", "tw_substate", "delivered", "app_limited", "rcv_mss", "isn",
        "challenge_count", "challenge_stamp", "urg_data", "linger",
        "max_packets_out", "cwnd_usage_seq", "is_cwnd_limited", "last_oow_ack_time",
        "sk_rx_dst", "sk_rx_dst_ifindex", "duplicate_sack", "prr_delivered", "prr_out",
        "rcv_ssthresh", "scaling_ratio",
        "rcv_rtt", "rcv_rtt_last_tsecr", "snd_sml", "tcp_wstamp", "min_rtt", "tsq_bytes",
        "tsq_throttled", "in_write_xmit", "pmtu_cookie",
    )

    def __init__(self, sk):
        self.sk = sk
        # struct sock's sk_rx_dst (Emulation note: kept here, where only TCP uses it):
        # the input route of this connection's segments, for early demux.
        self.sk_rx_dst = None
        self.sk_rx_dst_ifindex = 0
        self.snd_una = self.snd_nxt = self.write_seq = self.pushed_seq = 0
        self.snd_wnd = 0
        self.max_window = 0
        self.snd_wl1 = 0
        self.rcv_nxt = self.rcv_wup = self.copied_seq = 0
        self.rcv_wnd = 0
        self.rcv_ssthresh = 0          # the window we are willing to offer now (tcp_grow_window)
        self.scaling_ratio = TCP_DEFAULT_SCALING_RATIO
        self.rcv_rtt = 0.0             # the receiver's RTT estimate (rcv_rtt_est), seconds
        self.rcv_rtt_last_tsecr = 0
        self.window_clamp = 0          # 0: not set yet (tcp_select_initial_window picks it)
        self.rcv_wscale = self.snd_wscale = 0
        self.wscale_ok = self.tstamp_ok = self.sack_ok = False
        self.ts_recent = 0
        self.ts_recent_stamp = 0.0
        self.ts_offset = 0
        self.mss_cache = TCP_MSS_DEFAULT
        self.advmss = 1460
        self.mss_clamp = 65535
        self.user_mss = 0
        self.srtt = 0.0            # smoothed RTT, seconds (0: no sample yet)
        self.mdev = 0.0
        self.mdev_max = 0.0
        self.rttvar = 0.0
        self.rtt_seq = 0
        self.rto = TCP_TIMEOUT_INIT
        self.backoff = 0
        self.retransmits = 0
        self.probes_out = 0
        self.snd_cwnd = TCP_INIT_CWND
        self.snd_ssthresh = 0x7FFFFFFF
        self.snd_cwnd_cnt = 0
        self.prior_cwnd = 0
        self.prr_delivered = 0             # PRR (RFC 6937): delivered and sent in recovery
        self.prr_out = 0
        self.prior_ssthresh = 0
        self.ca_state = TCP_CA_Open
        self.high_seq = 0
        self.undo_marker = 0
        self.packets_out = self.sacked_out = self.lost_out = self.retrans_out = 0
        self.dupacks = 0
        self.ca_ops = None
        self.ca_priv = None
        self.nonagle = 0               # TCP_NAGLE_OFF | TCP_NAGLE_CORK | TCP_NAGLE_PUSH
        self.snd_sml = 0               # end of the last small segment sent (Minshall)
        self.tcp_wstamp = 0.0          # when TCP last handed a segment to IP
        self.min_rtt = 0.0
        self.tsq_bytes = 0             # sent segments not yet freed below TCP (TSQ)
        self.tsq_throttled = False     # a push was autocorked
        self.in_write_xmit = False
        self.pmtu_cookie = 0           # the path MTU the MSS was computed for
        self.write_queue = deque()         # not yet sent
        self.rtx_queue = deque()           # sent, not yet acknowledged
        self.out_of_order_queue = []       # skbs past rcv_nxt, sorted by seq
        # The scoreboard's hints (Linux: recv_sack_cache, highest_sack,
        # lost_skb_hint, retransmit_skb_hint), so that an ACK in recovery costs
        # what it changes, not a walk of the window (tcp_recovery.py).
        self.recv_sack_cache = ()          # the previous ACK's SACK blocks, all marked
        self.highest_sack = None           # end_seq of the highest SACKed skb
        self.lost_hint = None              # skbs ending by it are SACKed, lost or retransmitted
        self.rtx_hint = None               # skbs ending by it need no retransmission
        self.selective_acks = []           # SACK blocks we advertise, newest first
        self.duplicate_sack = None         # a D-SACK block for the next segment (RFC 2883)
        self.ack_pending = False
        self.ack_quick = 0             # set by the first data segment (tcp_incr_quickack)
        self.ack_pingpong = False
        self.ack_ato = 0.0             # set to TCP_ATO_MIN by the first data (tcp_event_data_recv)
        self.ack_lrcvtime = 0.0
        self.ack_rcv_mss = TCP_MSS_DEFAULT
        self.ack_rcvd_since = 0
        self.ack_timer = None
        self.retransmit_timer = None
        self.keepalive_timer = None
        self.timer_kind = 0                # what retransmit_timer runs: ICSK_TIME_*
        self.keepalive_time = None
        self.keepalive_intvl = None
        self.keepalive_probes = None
        self.syn_retries = None
        self.linger2 = None
        self.user_timeout = 0
        self.fin_sent = False
        self.bytes_acked = self.bytes_received = self.bytes_sent = self.bytes_retrans = 0
        self.segs_in = self.segs_out = self.data_segs_in = self.data_segs_out = 0
        self.total_retrans = 0
        self.lost = 0
        self.reordering = 3
        self.rcv_space = 0
        self.rcv_space_seq = 0
        self.rcv_space_time = 0.0
        self.last_data_recv = self.last_data_sent = self.last_ack_recv = 0.0
        self.retrans_stamp = 0.0
        self.tlp_high_seq = 0
        self.accept_queue = None
        self.syn_queue = None
        self.max_ack_backlog = 0
        self.listener = None
        self.tw_timer = None
        self.tw_substate = 0
        self.delivered = 0
        self.app_limited = False
        self.rcv_mss = TCP_MSS_DEFAULT
        self.isn = 0
        self.challenge_count = 0
        self.challenge_stamp = 0.0
        self.urg_data = 0
        self.linger = None
        self.max_packets_out = 0       # tcp_cwnd_validate's record of how full cwnd got
        self.cwnd_usage_seq = 0
        self.is_cwnd_limited = False
        self.last_oow_ack_time = -1.0   # tcp_oow_rate_limited


def tcp_sk(sk):
    return sk.proto_data


def tcp_sysctl(net, name):
    return net.sysctl["net.ipv4." + name]


def tcp_win_from_space(sk, space):
    """Window bytes a buffer of space bytes (truesize) holds (include/net/tcp.h)."""
    return (space * sk.proto_data.scaling_ratio) >> TCP_RMEM_TO_WIN_SCALE


def tcp_space_from_win(sk, win):
    """The buffer bytes a window of win bytes needs (inverse of tcp_win_from_space)."""
    return (win << TCP_RMEM_TO_WIN_SCALE) // sk.proto_data.scaling_ratio


def tcp_space(sk):
    """The window the free part of the receive buffer holds (may be negative)."""
    return tcp_win_from_space(sk, sk.sk_rcvbuf - sk.sk_rmem_alloc)


def tcp_full_space(sk):
    return tcp_win_from_space(sk, sk.sk_rcvbuf)


def tcp_set_state(sk, state):
    """Move sk to state, keeping CurrEstab and the hash tables right."""
    old = sk.sk_state
    net = sk.net
    mib = net.mib["Tcp"]
    if state == TCP_ESTABLISHED and old != TCP_ESTABLISHED:
        mib["CurrEstab"] += 1
    elif old in (TCP_ESTABLISHED, TCP_CLOSE_WAIT) and state not in (TCP_ESTABLISHED, TCP_CLOSE_WAIT):
        mib["CurrEstab"] -= 1
    sk.sk_state = state
    if state == TCP_CLOSE:
        from .inet_connection_sock import inet_unhash, inet_put_port
        inet_unhash(sk)
        inet_put_port(sk)


def tcp_init_sock(sk):
    """tcp_init_sock: defaults for a new socket."""
    from .tcp_cong import tcp_assign_congestion_control
    from .tcp_timer import tcp_init_xmit_timers
    tp = sk.proto_data = TcpSock(sk)
    net = sk.net
    sk.sk_state = TCP_CLOSE
    sk.sk_sndbuf = tcp_sysctl(net, "tcp_wmem")[1]
    sk.sk_rcvbuf = tcp_sysctl(net, "tcp_rmem")[1]
    sk.pmtudisc = 1
    tcp_init_xmit_timers(sk)
    tcp_assign_congestion_control(sk)
    return tp


# ------------------------------------------------------------------ send

def sk_stream_memory_free(sk):
    return sk.sk_wmem_alloc < sk.sk_sndbuf


def sk_stream_is_writeable(sk):
    """include/net/sock.h: room for a third of the send buffer, not one byte.

    poll reports EPOLLOUT only then (sk_stream_wspace >= sk_stream_min_wspace),
    so a program that saw EAGAIN is woken when a useful amount is free, not
    by every ACK.
    """
    queued = sk.sk_wmem_alloc
    return queued < sk.sk_sndbuf and sk.sk_sndbuf - queued >= queued >> 1


def tcp_send_mss(sk):
    """The segment size to build: the MSS, or a GSO super-segment if the route offloads."""
    from .tcp_output import tcp_current_mss, tcp_size_goal
    mss = tcp_current_mss(sk)
    return mss, tcp_size_goal(sk, mss)


def tcp_sendmsg(sk, data, flags, addr):
    """sk_prot->sendmsg: send with the socket locked (tcp_sendmsg_locked).

    Emulation note: the kernel lock is held for the whole call (entry.py), so
    lock_sock/release_sock have nothing to do. A send that has to wait
    resumes in tcp_sendmsg_locked with what it sent so far.
    """
    if sk.net.tracer is not None:
        sk.net.tracer.send_hit("tcp_sendmsg")
    # The caller's bytes are copied once here, as they may change after the
    # call; a read-only view (the runtime's own buffer, not reused before the
    # call is done) is not.
    view = data if type(data) is memoryview and data.readonly else memoryview(bytes(data))
    sent = [0]

    def attempt():
        return tcp_sendmsg_locked(sk, view, flags, sent, attempt)

    return attempt()


def tcp_sendmsg_locked(sk, view, flags, sent, resume):
    """Copy data into the write queue (as much as the send buffer takes) and
    push it (tcp_push); wait for room (SyscallBlock) unless non-blocking.

    sent[0] counts the bytes taken so far; resume is the call to retry with.
    """
    if sk.net.tracer is not None:
        sk.net.tracer.send_hit("tcp_sendmsg_locked")
    state = sk.sk_state
    if state not in (TCP_ESTABLISHED, TCP_CLOSE_WAIT):
        if sk.sk_err:
            err = sk.sk_err
            sk.sk_err = 0
            raise KernelError(err)
        if state in (TCP_SYN_SENT, TCP_SYN_RECV):
            if flags & MSG_DONTWAIT or sk.sk_socket.nonblock:
                raise KernelError(errno.EAGAIN)
            raise SyscallBlock([sk.sk_wq], sk.sk_sndtimeo, resume=resume,
                               partial=lambda: sent[0] or None)
        raise KernelError(errno.EPIPE)
    if sk.sk_err:
        err = sk.sk_err
        sk.sk_err = 0
        if sent[0]:
            return sent[0]
        raise KernelError(err)
    if sk.sk_shutdown & SEND_SHUTDOWN:
        if sent[0]:
            return sent[0]
        raise KernelError(errno.EPIPE)
    from .tcp_output import tcp_push, tcp_queue_data
    if not sent[0]:
        tcp_slow_start_after_idle_check(sk)
    mss, goal = tcp_send_mss(sk)
    while sent[0] < len(view):
        if not sk_stream_memory_free(sk):
            break
        room = sk.sk_sndbuf - sk.sk_wmem_alloc
        chunk = view[sent[0]:sent[0] + max(1, min(room, len(view) - sent[0]))]
        tcp_queue_data(sk, chunk, goal)
        sent[0] += len(chunk)
    tcp_push(sk, mss, flags, goal)
    if sent[0] == len(view):
        return sent[0]
    if flags & MSG_DONTWAIT or sk.sk_socket.nonblock:
        if sent[0]:
            return sent[0]
        raise KernelError(errno.EAGAIN)
    raise SyscallBlock([sk.sk_wq], sk.sk_sndtimeo, resume=resume,
                       partial=lambda: sent[0] or None)


def tcp_slow_start_after_idle_check(sk):
    """RFC 2861 / RFC 5681 4.1: after an idle period longer than the RTO,
    restart from the initial window (tcp_slow_start_after_idle_check)."""
    tp = sk.proto_data
    if not tcp_sysctl(sk.net, "tcp_slow_start_after_idle") or tp.packets_out or \
            not tp.last_data_sent:
        return
    delta = sk.net.clock() - tp.last_data_sent
    if delta > tp.rto:
        tcp_cwnd_restart(sk, delta)


def tcp_cwnd_restart(sk, delta):
    """Halve cwnd per RTO of idleness, down to the initial window (tcp_output.c);
    ssthresh keeps 3/4 of the old cwnd (tcp_current_ssthresh)."""
    tp = sk.proto_data
    cwnd = tp.snd_cwnd
    restart_cwnd = min(TCP_INIT_CWND, cwnd)
    if tp.ca_state not in (TCP_CA_CWR, TCP_CA_Recovery):
        tp.snd_ssthresh = max(tp.snd_ssthresh, (cwnd >> 1) + (cwnd >> 2))
    delta -= tp.rto
    while delta > 0 and cwnd > restart_cwnd:
        cwnd >>= 1
        delta -= tp.rto
    tp.snd_cwnd = max(cwnd, restart_cwnd)
    tp.snd_cwnd_cnt = 0


# ------------------------------------------------------------------ receive

def tcp_recvmsg(sk, size, flags):
    """Read up to size in-order bytes: lock the socket and copy
    (tcp_recvmsg -> tcp_recvmsg_locked, release_sock).

    Emulation note: the socket lock is the kernel's one lock (kernel_entry),
    already held here, so this only hands over.
    """
    return tcp_recvmsg_locked(sk, size, flags)


def tcp_recvmsg_locked(sk, size, flags):
    """Copy up to size in-order bytes out of the receive queue, sleeping in
    sk_wait_data until enough arrived (net/ipv4/tcp.c).

    A traced skb the reader copies from records the reader's path
    (tcp_recvmsg, tcp_recvmsg_locked, then skb_copy_datagram_iter).
    """
    tp = sk.proto_data
    out = IovIter()
    target = size if flags & MSG_WAITALL else 1
    peek = bool(flags & MSG_PEEK)

    def attempt():
        if sk.sk_state == TCP_LISTEN:
            raise KernelError(errno.ENOTCONN)
        peek_seq = tp.copied_seq
        q = sk.sk_receive_queue.q
        i = 0
        while out.n < size and i < len(q):
            skb = q[i]
            cb = skb.cb
            seq = peek_seq if peek else tp.copied_seq
            offset = seq_sub(seq, cb.seq)
            avail = skb.len - offset
            if avail <= 0:
                if peek:
                    i += 1
                    continue
                q.popleft()
                _free_rcv(sk, skb)
                continue
            n = min(avail, size - out.n)
            if skb.trace is not None:
                skb.trace.hit("tcp_recvmsg")
                skb.trace.hit("tcp_recvmsg_locked")
            skb_copy_datagram_iter(skb, offset, n, out)
            if peek:
                peek_seq = seq_add(peek_seq, n)
                i += 1
            else:
                tp.copied_seq = seq_add(tp.copied_seq, n)
                if n == avail:
                    q.popleft()
                    _free_rcv(sk, skb)
        if out and not peek:
            tcp_cleanup_rbuf(sk, out.n)
        if out.n >= target or (out.n and peek):
            return out.done(), None, 0
        if sk.sk_err and not out:
            err = sk.sk_err
            sk.sk_err = 0
            raise KernelError(err)
        if sk.sk_shutdown & RCV_SHUTDOWN or sk.sk_state == TCP_CLOSE:
            if sk.sk_state == TCP_CLOSE and not (sk.sk_shutdown & RCV_SHUTDOWN) and not out \
                    and not tp.fin_sent and tp.rcv_nxt == 0:
                raise KernelError(errno.ENOTCONN)       # never connected
            if not peek and not q and sk.sk_shutdown & RCV_SHUTDOWN:
                tp.copied_seq = tp.rcv_nxt      # found_fin_ok: reading EOF consumes the FIN
            return out.done(), None, 0
        if sk.sk_state in (TCP_SYN_SENT,) and sk.sk_socket.nonblock and not out:
            raise KernelError(errno.EAGAIN)
        if flags & MSG_DONTWAIT or sk.sk_socket.nonblock:
            if out:
                return out.done(), None, 0
            raise KernelError(errno.EAGAIN)
        sk_wait_data(sk, sk.sk_rcvtimeo, attempt,
                     partial=lambda: (out.done(), None, 0) if out else None)

    return attempt()


def _free_rcv(sk, skb):
    sk.sk_rmem_alloc -= skb.truesize
    skb.destructor = None
    consume_skb(skb)


def tcp_cleanup_rbuf(sk, copied):
    """After a read: send a window update if the window grew a lot (tcp_cleanup_rbuf)."""
    from .tcp_input import tcp_rcv_space_adjust
    from .tcp_output import __tcp_select_window, tcp_receive_window, tcp_send_ack
    tp = sk.proto_data
    tcp_rcv_space_adjust(sk)
    if sk.sk_state not in (TCP_ESTABLISHED, TCP_FIN_WAIT1, TCP_FIN_WAIT2):
        return
    # An ACK is owed and more than a segment came since the last one, or the
    # read emptied the queue: send it now (the once-per-two-segments ACK).
    if tp.ack_pending and (seq_sub(tp.rcv_nxt, tp.rcv_wup) > tp.ack_rcv_mss
                           or not sk.sk_rmem_alloc):
        tcp_send_ack(sk)
        return
    if copied <= 0 or sk.sk_shutdown & RCV_SHUTDOWN:
        return
    rcv_window_now = tcp_receive_window(tp)
    # Only when the offered window is at most half the largest: then update
    # if the window at least doubles (RFC 1122 4.2.3.3; tcp_cleanup_rbuf).
    if 2 * rcv_window_now <= tp.window_clamp:
        new_window = __tcp_select_window(sk)
        if new_window and new_window >= 2 * rcv_window_now:
            tcp_send_ack(sk)


# ------------------------------------------------------------------ close

def tcp_close_state(sk):
    """The state after close() on the states where a FIN must go out."""
    nxt = {TCP_ESTABLISHED: TCP_FIN_WAIT1, TCP_SYN_RECV: TCP_FIN_WAIT1,
           TCP_CLOSE_WAIT: TCP_LAST_ACK}.get(sk.sk_state)
    if nxt is None:
        return False
    tcp_set_state(sk, nxt)
    return True


def tcp_shutdown(sk, how):
    """shutdown(SHUT_WR): send our FIN, keep receiving."""
    from .tcp_output import tcp_send_fin
    if not (how + 1) & SEND_SHUTDOWN:
        return
    if sk.sk_state in (TCP_ESTABLISHED, TCP_SYN_SENT, TCP_SYN_RECV, TCP_CLOSE_WAIT):
        if tcp_close_state(sk):
            tcp_send_fin(sk)


def tcp_close(sk):
    """close(): abort if unread data remains (RFC 2525 2.17), else FIN and linger in state."""
    from .inet_connection_sock import inet_csk_listen_stop
    from .tcp_output import tcp_send_active_reset, tcp_send_fin
    from .tcp_timer import tcp_clear_xmit_timers, tcp_set_keepalive
    tp = sk.proto_data
    sk.sk_shutdown = RCV_SHUTDOWN | SEND_SHUTDOWN
    net = sk.net
    if sk.sk_state == TCP_LISTEN:
        tcp_set_state(sk, TCP_CLOSE)
        inet_csk_listen_stop(sk)
        return
    unread = 0
    q = sk.sk_receive_queue.q
    while q:
        skb = q.popleft()
        unread += max(0, seq_sub(skb.cb.end_seq, tp.copied_seq))
        _free_rcv(sk, skb)
    tp.out_of_order_queue.clear()
    tcp_set_keepalive(sk, False)
    if sk.sk_state == TCP_CLOSE:
        tcp_clear_xmit_timers(sk)
        _orphan(sk)
        return
    if unread and sk.sk_state != TCP_SYN_SENT:
        net.mib["TcpExt"]["TCPAbortOnClose"] += 1
        tcp_set_state(sk, TCP_CLOSE)
        tcp_send_active_reset(sk)
        tcp_clear_xmit_timers(sk)
    elif tp.linger is not None and tp.linger == 0:
        # SO_LINGER with a zero timeout: abort with RST (tcp_disconnect).
        net.mib["TcpExt"]["TCPAbortOnData"] += 1
        if sk.sk_state not in (TCP_SYN_SENT,):
            tcp_send_active_reset(sk)
        tcp_set_state(sk, TCP_CLOSE)
        tcp_clear_xmit_timers(sk)
    elif sk.sk_state == TCP_SYN_SENT:
        tcp_set_state(sk, TCP_CLOSE)
        tcp_clear_xmit_timers(sk)
    elif tcp_close_state(sk):
        tcp_send_fin(sk)
    _orphan(sk)


def _orphan(sk):
    """sock_orphan: the socket lives on in the kernel without a user."""
    sk.sk_socket = None
    sk.net.proto.setdefault("tcp_orphans", set()).add(sk) if sk.sk_state != TCP_CLOSE else \
        sk.net.proto.setdefault("tcp_orphans", set()).discard(sk)


def tcp_done(sk):
    """The connection is over (RST, timeout, or the last ACK of the close)."""
    from .tcp_timer import tcp_clear_xmit_timers
    tcp_set_state(sk, TCP_CLOSE)
    tcp_clear_xmit_timers(sk)
    sk.sk_shutdown = RCV_SHUTDOWN | SEND_SHUTDOWN
    sk.net.proto.setdefault("tcp_orphans", set()).discard(sk)
    tp = sk.proto_data
    for qname in ("write_queue", "rtx_queue"):
        q = getattr(tp, qname)
        while q:
            consume_skb(q.popleft())
    sk.sk_wmem_alloc = 0
    tp.packets_out = tp.sacked_out = tp.lost_out = tp.retrans_out = 0
    tp.highest_sack = tp.lost_hint = tp.rtx_hint = None      # tcp_clear_all_retrans_hints
    tp.recv_sack_cache = ()
    if sk.sk_socket is not None:
        sk.sk_wq.wake_up(EPOLLIN | EPOLLOUT | EPOLLHUP | EPOLLERR)


# ------------------------------------------------------------------ poll

def tcp_poll(sock):
    """Readiness as tcp_poll reports it."""
    sk = sock.sk
    tp = sk.proto_data
    state = sk.sk_state
    if state == TCP_LISTEN:
        return EPOLLIN | EPOLLRDNORM if tp.accept_queue else 0
    mask = 0
    if sk.sk_shutdown == RCV_SHUTDOWN | SEND_SHUTDOWN or state == TCP_CLOSE:
        mask |= EPOLLHUP
    if sk.sk_shutdown & RCV_SHUTDOWN:
        mask |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP
    if state not in (TCP_SYN_SENT, TCP_SYN_RECV):
        if sk.sk_receive_queue.q and tp.copied_seq != tp.rcv_nxt:
            mask |= EPOLLIN | EPOLLRDNORM
        if not sk.sk_shutdown & SEND_SHUTDOWN:
            # Linux: a closed socket (fresh, or after a reset) is writable too,
            # with EPOLLHUP: select() and a non-blocking connect see it at once.
            if sk_stream_is_writeable(sk):
                mask |= EPOLLOUT | EPOLLWRNORM
        else:
            mask |= EPOLLOUT | EPOLLWRNORM
    if sk.sk_err:
        mask |= EPOLLERR
    return mask


# ------------------------------------------------------------------ info

def tcp_get_info(sk):
    """struct tcp_info, as a dict: emu's own API (the two-argument getsockopt
    TCP_INFO, ss -i, Node.tcp_info()); with a buffer length getsockopt
    returns Linux's bytes instead (tcp_info.py)."""
    tp = sk.proto_data
    return {
        "state": TCP_STATE_NAMES.get(sk.sk_state, str(sk.sk_state)),
        "ca_state": CA_STATE_NAMES[tp.ca_state],
        "retransmits": tp.retransmits, "probes": tp.probes_out, "backoff": tp.backoff,
        "options": [o for o, on in (("ts", tp.tstamp_ok), ("sack", tp.sack_ok),
                                    ("wscale", tp.wscale_ok)) if on],
        "snd_wscale": tp.snd_wscale, "rcv_wscale": tp.rcv_wscale,
        "rto": int(tp.rto * 1e6), "ato": int(tp.ack_ato * 1e6),
        "snd_mss": tp.mss_cache, "rcv_mss": tp.ack_rcv_mss, "advmss": tp.advmss,
        "unacked": tp.packets_out, "sacked": tp.sacked_out, "lost": tp.lost_out,
        "retrans": tp.retrans_out, "rtt": int(tp.srtt * 1e6), "rttvar": int(tp.rttvar * 1e6),
        "snd_ssthresh": tp.snd_ssthresh, "snd_cwnd": tp.snd_cwnd, "reordering": tp.reordering,
        "rcv_space": tp.rcv_space, "total_retrans": tp.total_retrans,
        "bytes_acked": tp.bytes_acked, "bytes_received": tp.bytes_received,
        "bytes_sent": tp.bytes_sent, "bytes_retrans": tp.bytes_retrans,
        "segs_out": tp.segs_out, "segs_in": tp.segs_in, "data_segs_out": tp.data_segs_out,
        "data_segs_in": tp.data_segs_in, "snd_wnd": tp.snd_wnd, "rcv_wnd": tp.rcv_wnd,
        "congestion": tp.ca_ops.name if tp.ca_ops else None,
        "delivered": tp.delivered, "notsent_bytes": sum(s.len for s in tp.write_queue),
        "rcv_ssthresh": tp.rcv_ssthresh, "pmtu": tp.pmtu_cookie, "rcv_rtt": int(tp.rcv_rtt * 1e6),
        "min_rtt": int(tp.min_rtt * 1e6),
    }


def tcp_init_net(net):
    for k, v in TCP_DEFAULT_SYSCTLS.items():
        net.sysctl.setdefault(k, v)
