"""The small TCP states: listening (SYN queue, request socks, SYN cookies),
TIME-WAIT and orphaned FIN-WAIT-2.

Linux: net/ipv4/tcp_minisocks.c, net/ipv4/tcp_input.c (tcp_conn_request),
net/ipv4/syncookies.c, net/ipv4/tcp_ipv4.c (tcp_v4_syn_recv_sock); RFC 4987.
"""
import hashlib
import struct

from ..core.skbuff import consume_skb, kfree_skb
from ..core.sock import EPOLLIN, Sock, sk_data_ready
from ..core.timer import TimerList
from ..hdr.ip import IPPROTO_TCP
from .inet_connection_sock import inet_ehash_insert
from .route import RTN_BROADCAST
from .tcp import (
    TCP_ESTABLISHED, TCP_FIN_WAIT2, TCP_MSS_DEFAULT, TCP_NEW_SYN_RECV, TCP_TIME_WAIT,
    TCPHDR_ACK, TCPHDR_FIN, TCPHDR_RST, TCPHDR_SYN, after, before, seq_add, tcp_set_state,
    tcp_sysctl,
)
from .tcp_ipv4 import secure_tcp_seq, tcp_v4_do_rcv, tcp_v4_send_raw, tcp_v4_send_reset_for
from .tcp_output import IPV4_MAX_PMTU, tcp_syn_options, tcp_time_stamp

MSSTAB = (536, 1300, 1440, 1460)      # syncookies.c msstab
COOKIEBITS = 24
COOKIEMASK = (1 << COOKIEBITS) - 1
MAX_SYNCOOKIE_AGE = 2


class ReqSock:
    """struct request_sock (tcp_request_sock): a connection in SYN-RECEIVED."""

    __slots__ = ("listener", "net", "laddr", "lport", "raddr", "rport", "rcv_isn", "snt_isn",
                 "mss", "wscale_ok", "snd_wscale", "rcv_wscale", "tstamp_ok", "sack_ok",
                 "ts_recent", "rcv_wnd", "num_retrans", "timer", "sk_state", "window", "ts_off",
                 "window_clamp", "snt_synack")

    def __init__(self, listener, laddr, lport, raddr, rport):
        self.listener = listener
        self.net = listener.net
        self.laddr, self.lport, self.raddr, self.rport = laddr, lport, raddr, rport
        self.sk_state = TCP_NEW_SYN_RECV
        self.num_retrans = 0
        self.timer = None
        self.ts_off = 0
        self.window_clamp = 0
        self.snt_synack = None    # when the first SYN-ACK left (tcp_synack_rtt_meas)

    def key(self):
        return (self.laddr, self.lport, self.raddr, self.rport)

    def drop(self):
        net = self.net
        if self.timer is not None:
            net.del_timer(self.timer)
        eh = net.proto["tcp_ehash"]
        if eh.get(self.key()) is self:
            del eh[self.key()]
        q = self.listener.proto_data.syn_queue
        if q is not None and q.get(self.key()) is self:
            del q[self.key()]


# ------------------------------------------------------------------ SYN cookies

def _cookie_secret(net):
    s = net.proto.get("syncookie_secret")
    if s is None:
        s = net.proto["syncookie_secret"] = net.rng.get_random_bytes(16)
    return s


def _cookie_hash(net, saddr, daddr, sport, dport, count, c):
    h = hashlib.blake2s(struct.pack("!IIHHIB", saddr, daddr, sport, dport, count, c),
                        key=_cookie_secret(net), digest_size=4).digest()
    return int.from_bytes(h, "big")


def _cookie_count(net):
    return int(net.clock() / 60) & 0xFF


def cookie_v4_init_sequence(net, saddr, daddr, sport, dport, sseq, mss):
    """secure_tcp_syn_cookie: the ISN carries a time counter and the MSS index."""
    mssind = 0
    for i, m in enumerate(MSSTAB):
        if mss >= m:
            mssind = i
    count = _cookie_count(net)
    cookie = (_cookie_hash(net, saddr, daddr, sport, dport, 0, 0) + sseq + (count << COOKIEBITS)
              + ((_cookie_hash(net, saddr, daddr, sport, dport, count, 1) + mssind) & COOKIEMASK))
    return cookie & 0xFFFFFFFF, MSSTAB[mssind]


def cookie_v4_check(net, saddr, daddr, sport, dport, sseq, cookie):
    """The MSS the cookie encodes, or None if it is forged or too old."""
    count = _cookie_count(net)
    cookie = (cookie - _cookie_hash(net, saddr, daddr, sport, dport, 0, 0) - sseq) & 0xFFFFFFFF
    diff = (count - (cookie >> COOKIEBITS)) & 0xFF
    if diff >= MAX_SYNCOOKIE_AGE:
        return None
    mssind = (cookie - _cookie_hash(net, saddr, daddr, sport, dport, (count - diff) & 0xFF, 1)) \
        & COOKIEMASK
    return MSSTAB[mssind] if mssind < len(MSSTAB) else None


# ------------------------------------------------------------------ listening

def tcp_listen_rcv(lsk, skb, flags, opt, saddr, sport, daddr, dport):
    """A segment for a listener: a SYN opens, a cookie ACK completes, anything else resets."""
    net = lsk.net
    if flags & TCPHDR_RST:
        kfree_skb(skb, "TCP_RESET")
        return 0
    if flags & TCPHDR_ACK:
        if not flags & TCPHDR_SYN and tcp_sysctl(net, "tcp_syncookies"):
            child = cookie_v4_check_ack(lsk, skb, opt, saddr, sport, daddr, dport)
            if child is not None:
                return tcp_v4_do_rcv(child, skb, flags, opt)
        tcp_v4_send_reset_for(net, skb)
        kfree_skb(skb, "TCP_FLAGS")
        return 0
    if not flags & TCPHDR_SYN or flags & TCPHDR_FIN:
        kfree_skb(skb, "TCP_FLAGS")          # SYN+FIN is discarded, as in Linux
        return 0
    # tcp_v4_conn_request: never answer a SYN sent to a broadcast (or multicast)
    # address; tcp_listendrop counts it, and the SYN is consumed, not dropped.
    rt = skb.dst
    if rt is not None and rt.rt_type == RTN_BROADCAST:
        lsk.sk_drops += 1                     # tcp_listendrop
        net.mib["TcpExt"]["ListenDrops"] += 1
        consume_skb(skb)
        return 0
    tcp_conn_request(lsk, skb, opt, saddr, sport, daddr, dport)
    consume_skb(skb)
    return 0


def tcp_conn_request(lsk, skb, opt, saddr, sport, daddr, dport):
    """A SYN for a listener (tcp_conn_request): a request sock and a SYN-ACK, or a cookie."""
    net = lsk.net
    ltp = lsk.proto_data
    mib = net.mib["TcpExt"]
    cb = skb.cb
    want_cookie = False
    syncookies = tcp_sysctl(net, "tcp_syncookies")
    if syncookies == 2 or len(ltp.syn_queue) >= max(ltp.max_ack_backlog, 1):
        # tcp_syncookies=2 sends cookies unconditionally (tcp_conn_request).
        if syncookies:
            want_cookie = True
            mib["SyncookiesSent"] += 1
        else:
            mib["TCPReqQFullDrop"] += 1
            mib["ListenDrops"] += 1
            return
    if len(ltp.accept_queue) > ltp.max_ack_backlog:
        mib["ListenOverflows"] += 1
        mib["ListenDrops"] += 1
        return
    req = ReqSock(lsk, daddr, dport, saddr, sport)
    req.rcv_isn = cb.seq
    req.mss = opt.mss or TCP_MSS_DEFAULT
    req.tstamp_ok = opt.saw_tstamp and bool(tcp_sysctl(net, "tcp_timestamps")) and not want_cookie
    req.sack_ok = opt.sack_ok and bool(tcp_sysctl(net, "tcp_sack")) and not want_cookie
    req.wscale_ok = opt.wscale is not None and bool(tcp_sysctl(net, "tcp_window_scaling")) \
        and not want_cookie
    req.snd_wscale = opt.wscale if req.wscale_ok else 0
    req.ts_recent = opt.tsval if req.tstamp_ok else 0
    req.window = cb.window
    req.ts_off = net.rng.get_random_u32()
    advmss = _advmss(net, saddr)
    tcp_openreq_init_rwin(req, lsk, advmss)
    if want_cookie:
        req.snt_isn, req.mss = cookie_v4_init_sequence(net, saddr, daddr, sport, dport,
                                                       cb.seq, req.mss)
    else:
        req.snt_isn = secure_tcp_seq(net, daddr, saddr, dport, sport)
        ltp.syn_queue[req.key()] = req
        net.proto["tcp_ehash"][req.key()] = req
        req.timer = TimerList(reqsk_timer_handler, req)
        net.mod_timer(req.timer, net.clock() + 1.0)
    tcp_v4_send_synack(req, advmss)


def _advmss(net, raddr):
    from .route import ip_dst_mtu
    try:
        rt = ip_route_output_key_cached(net, raddr)
        # ipv4_default_advmss: never more than an IP datagram can carry (lo's MTU is 65536).
        return min(ip_dst_mtu(net, rt, raddr), IPV4_MAX_PMTU) - 40
    except OSError:
        return 1460


def ip_route_output_key_cached(net, daddr):
    from .route import ip_route_output_key
    return ip_route_output_key(net, daddr)


def tcp_v4_send_synack(req, advmss):
    net = req.net
    if req.snt_synack is None:
        req.snt_synack = net.clock()
    tsval = (int(net.clock() * 1000) + req.ts_off) & 0xFFFFFFFF
    opts = tcp_syn_options(None, advmss, req.rcv_wscale if req.wscale_ok else None,
                           req.tstamp_ok, req.sack_ok, tsval, req.ts_recent)
    if len(opts) % 4:
        opts += bytes(4 - len(opts) % 4)
    tcp_v4_send_raw(net, req.laddr, req.raddr, req.lport, req.rport, req.snt_isn,
                    seq_add(req.rcv_isn, 1), TCPHDR_SYN | TCPHDR_ACK, min(req.rcv_wnd, 65535), opts)


def reqsk_timer_handler(req):
    """SYN-ACK retransmission (1 s, doubling) until tcp_synack_retries."""
    net = req.net
    if req.num_retrans >= tcp_sysctl(net, "tcp_synack_retries"):
        req.drop()
        return
    req.num_retrans += 1
    net.mib["TcpExt"]["TCPSynRetrans"] += 1
    net.mib["Tcp"]["RetransSegs"] += 1
    tcp_v4_send_synack(req, _advmss(net, req.raddr))
    net.mod_timer(req.timer, net.clock() + min(1.0 * (1 << req.num_retrans), 120.0))


def tcp_check_req(req, skb, flags, opt):
    """A segment for a request sock (tcp_check_req): the handshake's last ACK, or not."""
    net = req.net
    cb = skb.cb
    if flags & TCPHDR_SYN and not flags & TCPHDR_ACK and cb.seq == req.rcv_isn:
        # Our SYN-ACK was lost: answer the retransmitted SYN again.
        tcp_v4_send_synack(req, _advmss(net, req.raddr))
        consume_skb(skb)
        return 0
    if flags & TCPHDR_ACK and cb.ack_seq != seq_add(req.snt_isn, 1):
        tcp_v4_send_reset_for(net, skb)
        kfree_skb(skb, "TCP_INVALID_ACK")
        return 0
    if flags & TCPHDR_RST:
        # Only a RST inside the window we offered resets (tcp_check_req).
        rcv_nxt = seq_add(req.rcv_isn, 1)
        if not before(cb.seq, rcv_nxt) and before(cb.seq, seq_add(rcv_nxt, max(req.rcv_wnd, 1))):
            req.drop()
            net.mib["Tcp"]["AttemptFails"] += 1
        kfree_skb(skb, "TCP_RESET")
        return 0
    if not flags & TCPHDR_ACK:
        kfree_skb(skb, "TCP_FLAGS")
        return 0
    lsk = req.listener
    ltp = lsk.proto_data
    if len(ltp.accept_queue) > ltp.max_ack_backlog:
        # Accept queue full: ignore the ACK; the client retransmits (tcp_abort_on_overflow 0).
        net.mib["TcpExt"]["ListenOverflows"] += 1
        net.mib["TcpExt"]["ListenDrops"] += 1
        kfree_skb(skb, "TCP_LISTEN_OVERFLOW")
        return 0
    req.drop()
    child = tcp_create_openreq_child(lsk, req, opt)
    if opt.saw_tstamp and child.proto_data.tstamp_ok:
        child.proto_data.ts_recent = opt.tsval
        child.proto_data.ts_recent_stamp = net.clock()
    return tcp_v4_do_rcv(child, skb, flags, opt)


def cookie_v4_check_ack(lsk, skb, opt, saddr, sport, daddr, dport):
    """An ACK that may complete a SYN-cookie handshake (cookie_v4_check)."""
    net = lsk.net
    cb = skb.cb
    cookie = (cb.ack_seq - 1) & 0xFFFFFFFF
    mss = cookie_v4_check(net, saddr, daddr, sport, dport, (cb.seq - 1) & 0xFFFFFFFF, cookie)
    if mss is None:
        net.mib["TcpExt"]["SyncookiesFailed"] += 1
        return None
    ltp = lsk.proto_data
    if len(ltp.accept_queue) > ltp.max_ack_backlog:
        net.mib["TcpExt"]["ListenOverflows"] += 1
        return None
    net.mib["TcpExt"]["SyncookiesRecv"] += 1
    req = ReqSock(lsk, daddr, dport, saddr, sport)
    req.rcv_isn = (cb.seq - 1) & 0xFFFFFFFF
    req.snt_isn = cookie
    req.mss = mss
    req.tstamp_ok = req.sack_ok = req.wscale_ok = False   # no TS to carry them in
    req.snd_wscale = req.rcv_wscale = 0
    req.ts_recent = 0
    req.window = cb.window
    tcp_openreq_init_rwin(req, lsk, _advmss(net, saddr))
    return tcp_create_openreq_child(lsk, req, opt)


def tcp_openreq_init_rwin(req, lsk, advmss):
    """The window and scale the SYN-ACK offers and the child keeps
    (tcp_openreq_init_rwin): a multiple of the MSS less timestamps (65160)."""
    from .tcp import tcp_full_space
    from .tcp_output import tcp_select_initial_window
    ltp = lsk.proto_data
    full_space = tcp_full_space(lsk)
    req.window_clamp = ltp.window_clamp
    if lsk.sk_userlocks & 2 and (req.window_clamp > full_space or not req.window_clamp):
        req.window_clamp = full_space           # SO_RCVBUF set: no larger window
    mss = min(advmss, ltp.user_mss or advmss) - (12 if req.tstamp_ok else 0)
    req.rcv_wnd, req.window_clamp, req.rcv_wscale = tcp_select_initial_window(
        lsk, full_space, mss, req.window_clamp, req.wscale_ok)


def tcp_create_openreq_child(lsk, req, opt):
    """The new connection (tcp_v4_syn_recv_sock): a full socket, queued for accept()."""
    from .tcp import tcp_init_sock
    from .tcp_input import tcp_init_transfer
    from .tcp_rcvwin import tcp_initialize_rcv_mss
    from .tcp_output import tcp_route, tcp_sync_mss
    from .route import ip_dst_mtu
    net = lsk.net
    sk = Sock(net, lsk.sk_family, lsk.sk_type, IPPROTO_TCP, lsk.sk_prot)
    tp = tcp_init_sock(sk)
    ltp = lsk.proto_data
    # Socket options a child inherits from its listener.
    sk.sk_rcvbuf, sk.sk_sndbuf, sk.sk_userlocks = lsk.sk_rcvbuf, lsk.sk_sndbuf, lsk.sk_userlocks
    sk.sk_keepalive, sk.sk_priority, sk.sk_mark = lsk.sk_keepalive, lsk.sk_priority, lsk.sk_mark
    sk.sk_reuse, sk.sk_reuseport = lsk.sk_reuse, lsk.sk_reuseport     # sk_clone_lock copies them
    sk.uc_ttl, sk.tos, sk.sk_bound_dev_if = lsk.uc_ttl, lsk.tos, lsk.sk_bound_dev_if
    tp.nonagle, tp.user_mss = ltp.nonagle, ltp.user_mss
    tp.keepalive_time, tp.keepalive_intvl, tp.keepalive_probes = \
        ltp.keepalive_time, ltp.keepalive_intvl, ltp.keepalive_probes
    tp.linger = ltp.linger
    if ltp.ca_ops is not tp.ca_ops:
        from .tcp_cong import tcp_set_congestion_control
        tcp_set_congestion_control(sk, ltp.ca_ops.name)
    sk.inet_rcv_saddr = sk.inet_saddr = req.laddr
    sk.inet_num = sk.inet_sport = req.lport
    sk.inet_daddr, sk.inet_dport = req.raddr, req.rport
    sk.inet_id = net.rng.get_random_u32() & 0xFFFF          # tcp_v4_syn_recv_sock: get_random_u16()
    tp.listener = lsk
    tp.isn = req.snt_isn
    tp.snd_una = tp.snd_nxt = tp.write_seq = tp.pushed_seq = tp.snd_sml = seq_add(req.snt_isn, 1)
    tp.rcv_nxt = tp.rcv_wup = tp.copied_seq = seq_add(req.rcv_isn, 1)
    tp.snd_wl1 = req.rcv_isn
    tp.wscale_ok, tp.tstamp_ok, tp.sack_ok = req.wscale_ok, req.tstamp_ok, req.sack_ok
    tp.snd_wscale, tp.rcv_wscale = req.snd_wscale, req.rcv_wscale
    tp.snd_wnd = req.window
    tp.max_window = tp.snd_wnd
    tp.rcv_wnd = tp.rcv_ssthresh = req.rcv_wnd
    tp.window_clamp = req.window_clamp
    tp.ts_recent = req.ts_recent
    tp.ts_offset = req.ts_off
    tp.mss_clamp = req.mss
    rt = tcp_route(sk)
    mtu = ip_dst_mtu(net, rt, sk.inet_daddr)
    tp.advmss = min(mtu, IPV4_MAX_PMTU) - 40
    tcp_sync_mss(sk, mtu)
    tcp_initialize_rcv_mss(sk)
    tp.total_retrans = req.num_retrans
    bh = net.proto["tcp_bhash"]
    bh.setdefault(sk.inet_num, []).append(sk)        # inet_inherit_port
    tcp_set_state(sk, TCP_ESTABLISHED)
    inet_ehash_insert(sk)
    if not req.num_retrans and req.snt_synack is not None:
        # tcp_synack_rtt_meas: the handshake's RTT, so the server has an RTO
        # (and a delayed-ACK bound) from its first segment on (Karn: not
        # after a retransmitted SYN-ACK).
        from .tcp_input import tcp_rtt_estimator
        tcp_rtt_estimator(sk, net.clock() - req.snt_synack)
    tcp_init_transfer(sk)
    net.mib["Tcp"]["PassiveOpens"] += 1
    ltp.accept_queue.append(sk)
    sk_data_ready(lsk)
    return sk


# ------------------------------------------------------------------ TIME-WAIT

def tcp_time_wait(sk):
    """Enter TIME-WAIT for 2*MSL (Linux: 60 s; net.ipv4.tcp_timewait_len in emu)."""
    from .tcp_timer import tcp_clear_xmit_timers
    net = sk.net
    tp = sk.proto_data
    tcp_clear_xmit_timers(sk)
    tcp_set_state(sk, TCP_TIME_WAIT)
    inet_ehash_insert(sk)
    net.mib["TcpExt"]["TW"] += 1
    if tp.tw_timer is None:
        tp.tw_timer = TimerList(tcp_tw_expire, sk)
    net.mod_timer(tp.tw_timer, net.clock() + tcp_sysctl(net, "tcp_timewait_len"))
    if sk.sk_wq.entries:
        sk.sk_wq.wake_up(EPOLLIN)


def tcp_tw_expire(sk):
    from .tcp import tcp_done
    if sk.sk_state == TCP_TIME_WAIT:
        tcp_done(sk)


def tcp_timewait_state_process(sk, skb, flags, opt):
    """A segment for a TIME-WAIT socket (tcp_timewait_state_process)."""
    from .tcp import tcp_done
    from .tcp_input import tcp_oow_rate_limited
    net = sk.net
    tp = sk.proto_data
    cb = skb.cb
    twlen = tcp_sysctl(net, "tcp_timewait_len")
    if cb.seq == tp.rcv_nxt and (cb.seq == cb.end_seq or flags & TCPHDR_RST):
        # In window: only a RST or a bare ACK can be here.
        if flags & TCPHDR_RST:
            # TIME-WAIT assassination (RFC 1337 is off by default in Linux).
            tcp_done(sk)
            kfree_skb(skb, "TCP_RESET")
            return 0
        net.mod_timer(tp.tw_timer, net.clock() + twlen)
        consume_skb(skb)               # a bare ACK: nothing to answer
        return 0
    if flags & TCPHDR_SYN and not flags & (TCPHDR_RST | TCPHDR_ACK) and after(cb.seq, tp.rcv_nxt):
        # A new incarnation (RFC 9293 3.6.1): let the listener have it.
        tcp_done(sk)
        from .inet_connection_sock import inet_lookup_listener
        nh = skb.network_header
        buf = skb.buf
        saddr = int.from_bytes(buf[nh + 12:nh + 16], "big")
        daddr = int.from_bytes(buf[nh + 16:nh + 20], "big")
        lsk = inet_lookup_listener(net, daddr, sk.inet_num)
        if lsk is not None:
            return tcp_listen_rcv(lsk, skb, flags, opt, saddr, sk.inet_dport, daddr, sk.inet_num)
        kfree_skb(skb, "NO_SOCKET")
        return 0
    if not flags & TCPHDR_RST:
        # Out of window (the peer's FIN again, an old segment): ACK it, at most
        # once per tcp_invalid_ratelimit, and restart 2MSL if it carried an ACK.
        if flags & TCPHDR_ACK:
            net.mod_timer(tp.tw_timer, net.clock() + twlen)
        if not tcp_oow_rate_limited(sk):
            tcp_v4_send_tw_ack(sk)
    consume_skb(skb)
    return 0


def tcp_v4_send_tw_ack(sk):
    tp = sk.proto_data
    opts = b""
    if tp.tstamp_ok:
        opts = struct.pack("!BBBBII", 1, 1, 8, 10, tcp_time_stamp(sk), tp.ts_recent)
    window = min(tp.rcv_wnd >> tp.rcv_wscale, 65535)
    tcp_v4_send_raw(sk.net, sk.inet_saddr, sk.inet_daddr, sk.inet_sport, sk.inet_dport,
                    tp.snd_nxt, tp.rcv_nxt, TCPHDR_ACK, window, opts)


def tcp_arm_fin_wait2(sk):
    """An orphaned FIN-WAIT-2 waits tcp_fin_timeout for the peer's FIN, then goes."""
    net = sk.net
    tp = sk.proto_data
    if tp.tw_timer is None:
        tp.tw_timer = TimerList(tcp_fin_wait2_expire, sk)
    timeout = tp.linger2 if tp.linger2 is not None else tcp_sysctl(net, "tcp_fin_timeout")
    net.mod_timer(tp.tw_timer, net.clock() + max(timeout, 0))


def tcp_fin_wait2_expire(sk):
    from .tcp import tcp_done
    if sk.sk_state == TCP_FIN_WAIT2:
        tcp_done(sk)
    elif sk.sk_state == TCP_TIME_WAIT:
        tcp_done(sk)
