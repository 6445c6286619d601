"""TCP between inline kernels, in the spirit of packetdrill: drive one side,
watch the exact segments on the wire (dpkt), under a fake clock."""
import errno
import os
import struct

import dpkt
import pytest

from emu.kernel.core.dev import KernelError
from emu.kernel.ipv4.tcp import tcp_get_info
from emu.kernel.socket import (
    SOCK_NONBLOCK, SOL_SOCKET, SO_KEEPALIVE, SyscallBlock, sys_accept, sys_bind,
    sys_close, sys_connect, sys_getsockopt, sys_listen, sys_recvfrom, sys_sendto,
    sys_setblocking, sys_setsockopt, sys_shutdown, sys_socket,
)
from tests.kernel.harness import bridge_lab

AF_INET, SOCK_STREAM = 2, 1
SOL_TCP, TCP_NODELAY, TCP_INFO, TCP_CONGESTION = 6, 1, 11, 13
TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_SYNCNT = 4, 5, 6, 7
MSG_DONTWAIT, MSG_PEEK, MSG_WAITALL = 0x40, 2, 0x100


def tso_off(lab):
    """ethtool -K tso off on every veth of the lab: MSS-sized frames on the wire."""
    from emu.kernel.core.rtnetlink import RTNL_OPS
    for net in lab.nets.values():
        for dev in list(net.dev_by_name):
            if net.dev_by_name[dev].kind == "veth":
                RTNL_OPS["features_set"](net, dev=dev, **{"tx-tcp-segmentation": False})
    return lab


class Pair:
    """A connected TCP pair h1 (client) -> h2 (server) across the bridge lab."""

    def __init__(self, lab=None, port=80, backlog=8, nonblock=True, tso=True):
        self.lab = lab or bridge_lab()
        if not tso:
            tso_off(self.lab)
        self.t1, self.t2 = self.lab.task("h1"), self.lab.task("h2")
        self.ls = sys_socket(self.t2, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
        sys_bind(self.t2, self.ls, ("0.0.0.0", port))
        sys_listen(self.t2, self.ls, backlog)
        self.port = port
        self.c = None
        self.s = None

    def connect(self):
        self.c = sys_socket(self.t1, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
        with pytest.raises(KernelError) as e:
            sys_connect(self.t1, self.c, ("10.0.0.2", self.port))
        assert e.value.errno == errno.EINPROGRESS
        self.lab.run()
        assert sys_connect(self.t1, self.c, ("10.0.0.2", self.port)) == 0
        self.s, peer = sys_accept(self.t2, self.ls, SOCK_NONBLOCK)
        return self

    def sk(self, which):
        task, fd = (self.t1, self.c) if which == "c" else (self.t2, self.s)
        return task.fds[fd].sk

    def info(self, which):
        return tcp_get_info(self.sk(which))

    def frames(self, node="h1"):
        """TCP segments sent by node's eth0, parsed by dpkt."""
        out = []
        for f in self.lab.port(node, "eth0").sent:
            eth = dpkt.ethernet.Ethernet(f)
            if isinstance(eth.data, dpkt.ip.IP) and isinstance(eth.data.data, dpkt.tcp.TCP):
                out.append(eth.data.data)
        return out


def recv_all(task, fd, limit=1 << 24):
    out = bytearray()
    while len(out) < limit:
        try:
            d = sys_recvfrom(task, fd, 1 << 20, MSG_DONTWAIT)[0]
        except KernelError as e:
            assert e.errno == errno.EAGAIN
            break
        if not d:
            break
        out += d
    return bytes(out)


def pump(pair, src, dst, data, reader=None, max_rounds=5000):
    """Send data from src to dst with both sides non-blocking; returns what dst read."""
    t_src, fd_src = src
    t_dst, fd_dst = dst
    sent = 0
    got = bytearray()
    for _ in range(max_rounds):
        if sent < len(data):
            try:
                sent += sys_sendto(t_src, fd_src, data[sent:sent + 65536], 0, None)
            except KernelError as e:
                assert e.errno == errno.EAGAIN
        pair.lab.run()
        before = len(got)
        got += recv_all(t_dst, fd_dst)
        pair.lab.run()
        if len(got) >= len(data):
            break
        if sent >= len(data) or len(got) == before:
            pair.lab.advance(0.05)        # nothing moved: let timers (RTO, delayed ACK) run
    return bytes(got)


def opts(seg):
    return dict((k, v) for k, v in dpkt.tcp.parse_opts(seg.opts))


# ------------------------------------------------------------------ handshake

def test_three_way_handshake_negotiates_linux_options():
    p = Pair().connect()
    syn = None
    for seg in p.frames("h1"):
        if seg.flags & dpkt.tcp.TH_SYN:
            syn = seg
    synack = next(s for s in p.frames("h2") if s.flags & dpkt.tcp.TH_SYN)
    assert syn.flags == dpkt.tcp.TH_SYN and synack.flags == dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK
    o = opts(syn)
    assert struct.unpack("!H", o[dpkt.tcp.TCP_OPT_MSS])[0] == 1460
    assert dpkt.tcp.TCP_OPT_SACKOK in o and dpkt.tcp.TCP_OPT_TIMESTAMP in o
    assert o[dpkt.tcp.TCP_OPT_WSCALE] == b"\x07"
    assert syn.win == 64240 and synack.win == 65160   # what Linux puts in them
    assert synack.ack == syn.seq + 1
    for which in ("c", "s"):
        i = p.info(which)
        assert i["state"] == "ESTABLISHED"
        assert set(i["options"]) == {"ts", "sack", "wscale"}
        assert i["snd_mss"] == 1448 and i["snd_cwnd"] == 10
    assert p.lab.nets["h1"].mib["Tcp"]["ActiveOpens"] == 1
    assert p.lab.nets["h2"].mib["Tcp"]["PassiveOpens"] == 1
    assert p.lab.nets["h1"].mib["Tcp"]["CurrEstab"] == 1


def test_connect_to_closed_port_is_refused():
    lab = bridge_lab()
    t = lab.task("h1")
    c = sys_socket(t, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    with pytest.raises(KernelError):
        sys_connect(t, c, ("10.0.0.2", 81))
    lab.run()
    with pytest.raises(KernelError) as e:
        sys_connect(t, c, ("10.0.0.2", 81))
    assert e.value.errno == errno.ECONNREFUSED
    assert lab.nets["h2"].mib["Tcp"]["OutRsts"] == 1


def test_blocking_connect_parks_then_resumes():
    lab = bridge_lab()
    t2 = lab.task("h2")
    ls = sys_socket(t2, AF_INET, SOCK_STREAM, 0)
    sys_bind(t2, ls, ("0.0.0.0", 90))
    sys_listen(t2, ls, 4)
    t = lab.task("h1")
    c = sys_socket(t, AF_INET, SOCK_STREAM, 0)
    with pytest.raises(SyscallBlock) as b:
        sys_connect(t, c, ("10.0.0.2", 90))
    lab.run()
    assert b.value.resume() == 0
    fd, peer = sys_accept(t2, ls)                   # one is queued: no wait
    assert peer[0] == "10.0.0.1"
    with pytest.raises(SyscallBlock):               # the queue is empty now: accept waits
        sys_accept(t2, ls)


def test_syn_retransmits_with_backoff_then_etimedout():
    lab = bridge_lab()
    from tests.kernel.harness import ping
    assert ping(lab, "h1", "10.0.0.2")              # ARP resolved first
    lab.port("h1", "eth0").up = False               # now the cable drops what h1 sends
    t = lab.task("h1")
    c = sys_socket(t, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    sys_setsockopt(t, c, SOL_TCP, TCP_SYNCNT, 2)
    with pytest.raises(KernelError):
        sys_connect(t, c, ("10.0.0.2", 80))
    syn_times = []
    port = lab.port("h1", "eth0")
    start = lab.clock.now
    seen = 0
    for _ in range(800):
        lab.advance(0.01, tick=0.01)
        syns = [f for f in port.sent if f[12:14] == b"\x08\x00" and f[47] & 0x02]
        if len(syns) > seen:
            syn_times.append(round(lab.clock.now - start, 2))
            seen = len(syns)
    # SYN at 0 (plus ARP first), then 1 s and 2 s later (RFC 6298 backoff)
    assert len(syn_times) == 3
    assert syn_times[1] - syn_times[0] == pytest.approx(1.0, abs=0.05)
    assert syn_times[2] - syn_times[1] == pytest.approx(2.0, abs=0.05)
    with pytest.raises(KernelError) as e:
        sys_connect(t, c, ("10.0.0.2", 80))
    assert e.value.errno == errno.ETIMEDOUT


# ------------------------------------------------------------------ data

@pytest.mark.parametrize("tso", [True, False])
def test_bulk_transfer_both_directions_is_byte_exact(tso):
    p = Pair(tso=tso).connect()
    up = os.urandom(300_000)
    down = os.urandom(200_000)
    got_up = pump(p, (p.t1, p.c), (p.t2, p.s), up)
    got_down = pump(p, (p.t2, p.s), (p.t1, p.c), down)
    assert got_up == up and got_down == down
    biggest = max(len(seg.data) for seg in p.frames("h1"))
    if tso:
        assert biggest > 1448 and biggest % 1448 == 0   # super-segments cross the wire
    else:
        assert biggest <= 1448
    assert p.info("c")["bytes_acked"] == len(up) + 1  # + the SYN
    assert p.info("s")["bytes_received"] == len(up)


def test_a_read_across_many_segments_is_one_copy_that_keeps_nothing_of_the_skbs():
    p = Pair(tso=False).connect()
    data = os.urandom(20 * 1448)
    assert sys_sendto(p.t1, p.c, data, 0, None) == len(data)
    p.lab.run()
    queued = list(p.sk("s").sk_receive_queue.q)
    assert len(queued) > 1
    bufs = [skb.buf for skb in queued]
    got = sys_recvfrom(p.t2, p.s, len(data) - 100)[0] + sys_recvfrom(p.t2, p.s, 100)[0]
    assert type(got) is bytes and got == data
    for b in bufs:
        b.extend(b"x")           # no view of a buffer is left (BufferError if one were)
        b[:] = bytes(len(b))
    assert got == data


def test_slow_start_grows_cwnd():
    p = Pair().connect()
    pump(p, (p.t1, p.c), (p.t2, p.s), os.urandom(200_000))
    i = p.info("c")
    assert i["snd_cwnd"] > 10 and i["ca_state"] == "open"
    assert i["rtt"] > 0 and i["rto"] >= 200_000            # RTO floor 200 ms


def test_peek_and_waitall():
    p = Pair().connect()
    sys_sendto(p.t1, p.c, b"hello world", 0, None)
    p.lab.run()
    assert sys_recvfrom(p.t2, p.s, 5, MSG_PEEK)[0] == b"hello"
    assert sys_recvfrom(p.t2, p.s, 5)[0] == b"hello"
    sys_setblocking(p.t2, p.s, False)
    with pytest.raises(SyscallBlock) as b:          # WAITALL: 6 of 20 available, wait for more
        sys_recvfrom(p.t2, p.s, 20, MSG_WAITALL)
    assert b.value.partial() == (b" world", None, 0)


@pytest.mark.parametrize("tso", [False, True])
def test_fast_retransmit_with_sack_before_rto(tso):
    # With TSO the lost frame is a whole super-segment: SACK cuts the
    # retransmit queue at the block edges and recovery resends it per MSS.
    p = Pair(tso=tso).connect()
    port = p.lab.port("h1", "eth0")
    data_frames = []
    orig = port.send
    # Lose one data frame with others in flight behind it (the 3rd: the first
    # window of 10 MSS may be a single super-segment with TSO).
    victim = 3 if tso else 1

    def lossy(buf, start, end, *a):
        frame = bytes(buf[start:end])
        if len(frame) > 1000:
            data_frames.append(len(frame))
            if len(data_frames) == victim:
                return True                          # lost on the wire
        return orig(buf, start, end, *a)
    port.send = lossy
    data = os.urandom(300_000)
    got = pump(p, (p.t1, p.c), (p.t2, p.s), data)
    assert got == data
    mib = p.lab.nets["h1"].mib
    assert mib["TcpExt"]["TCPSackRecovery"] == 1
    assert mib["TcpExt"]["TCPTimeouts"] == 0        # recovered without waiting for the RTO
    assert mib["Tcp"]["RetransSegs"] >= 1
    receiver_frames = p.frames("h2")
    assert any(dpkt.tcp.TCP_OPT_SACK in opts(s) for s in receiver_frames)


def test_newreno_without_sack():
    lab = bridge_lab()
    lab.nets["h1"].sysctl["net.ipv4.tcp_sack"] = 0
    p = Pair(lab, tso=False).connect()
    assert "sack" not in p.info("c")["options"]
    port = p.lab.port("h1", "eth0")
    orig = port.send
    state = {"n": 0}

    def lossy(buf, start, end, *a):
        state["n"] += 1
        if state["n"] == 20:
            return True
        return orig(buf, start, end, *a)
    port.send = lossy
    data = os.urandom(150_000)
    assert pump(p, (p.t1, p.c), (p.t2, p.s), data) == data
    assert p.lab.nets["h1"].mib["TcpExt"]["TCPRenoRecovery"] == 1


def test_rto_retransmission_backs_off_and_doubles():
    p = Pair().connect()
    port = p.lab.port("h1", "eth0")
    sys_sendto(p.t1, p.c, b"x" * 100, 0, None)
    port.up = False                                 # nothing h1 sends arrives now
    sys_sendto(p.t1, p.c, b"y" * 100, 0, None)
    p.lab.run()
    before = len(port.sent)
    times = []
    for _ in range(300):
        p.lab.advance(0.01, tick=0.01)
        if len(port.sent) > before:
            times.append(p.lab.clock.now)
            before = len(port.sent)
    assert len(times) >= 2
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] == pytest.approx(2 * (times[0] - times[0] + gaps[0] / 2), rel=0.2)
    i = p.info("c")
    assert i["retransmits"] >= 2 and i["backoff"] >= 2
    assert p.lab.nets["h1"].mib["TcpExt"]["TCPTimeouts"] == 1
    port.up = True
    p.lab.advance(5.0, tick=0.05)
    assert recv_all(p.t2, p.s) == b"x" * 100 + b"y" * 100


def test_retries2_ends_the_connection_with_etimedout():
    p = Pair().connect()
    p.lab.nets["h1"].sysctl["net.ipv4.tcp_retries2"] = 3
    p.lab.port("h1", "eth0").up = False
    sys_sendto(p.t1, p.c, b"z", 0, None)
    p.lab.advance(5.0, tick=0.05)                    # 0.2+0.4+0.8+1.6 s: gone
    with pytest.raises(KernelError) as e:
        sys_recvfrom(p.t1, p.c, 10)
    assert e.value.errno == errno.ETIMEDOUT
    assert p.info("c")["state"] == "CLOSE"


def test_zero_window_persist_then_resume():
    lab = bridge_lab()
    p = Pair(lab)
    sk_ls = p.t2.fds[p.ls].sk
    sk_ls.sk_rcvbuf = 16384                         # a small receiver (children inherit)
    sk_ls.sk_userlocks |= 2
    p.connect()
    data = os.urandom(60_000)
    sent = 0
    for _ in range(50):
        try:
            sent += sys_sendto(p.t1, p.c, data[sent:], 0, None)
        except KernelError:
            pass
        lab.run()
        lab.advance(0.05)
    assert p.info("c")["snd_wnd"] == 0
    probes_before = len(p.frames("h1"))
    lab.advance(3.0, tick=0.05)                     # persist timer probes the window
    assert len(p.frames("h1")) > probes_before
    got = recv_all(p.t2, p.s)
    assert 0 < len(got) < len(data)
    for _ in range(100):                            # reading opens the window again
        if sent < len(data):
            try:
                sent += sys_sendto(p.t1, p.c, data[sent:], 0, None)
            except KernelError:
                pass
        lab.advance(0.05)
        got += recv_all(p.t2, p.s)
        if len(got) == len(data):
            break
    assert got == data


def test_delayed_ack_waits_for_timer_then_acks():
    p = Pair().connect()
    # leave quick-ack mode: several exchanges
    pump(p, (p.t1, p.c), (p.t2, p.s), os.urandom(40_000))
    p.lab.advance(0.5)
    # After a gap longer than the RTO the next segment is ACKed at once
    # (tcp_event_data_recv: the sender is restarting); the one after is not.
    sys_sendto(p.t1, p.c, b"a" * 100, 0, None)
    p.lab.run()
    sk = p.sk("s")
    sk.proto_data.ack_quick = 0
    n = len(p.frames("h2"))
    sys_sendto(p.t1, p.c, b"a" * 100, 0, None)
    p.lab.run()
    assert len(p.frames("h2")) == n                 # no ACK yet
    p.lab.advance(0.03, tick=0.01)
    assert len(p.frames("h2")) == n
    p.lab.advance(0.2, tick=0.01)
    assert len(p.frames("h2")) == n + 1             # the delayed ACK
    assert p.lab.nets["h2"].mib["TcpExt"]["DelayedACKs"] >= 1


def test_nagle_holds_small_segments_nodelay_does_not():
    p = Pair().connect()
    p.lab.port("h2", "eth0").up = False             # no ACKs come back
    sys_sendto(p.t1, p.c, b"a", 0, None)
    sys_sendto(p.t1, p.c, b"b", 0, None)
    sys_sendto(p.t1, p.c, b"c", 0, None)
    p.lab.run()
    data_segs = [s for s in p.frames("h1") if s.data]
    assert [s.data for s in data_segs] == [b"a"]     # the rest waits for the ACK
    sys_setsockopt(p.t1, p.c, SOL_TCP, TCP_NODELAY, 1)
    sys_sendto(p.t1, p.c, b"d", 0, None)
    p.lab.run()
    data_segs = [s.data for s in p.frames("h1") if s.data]
    assert data_segs[-1].endswith(b"d") and len(data_segs) >= 2


# ------------------------------------------------------------------ teardown

def test_active_close_goes_through_time_wait():
    p = Pair().connect()
    p.lab.nets["h1"].sysctl["net.ipv4.tcp_timewait_len"] = 2
    csk, ssk = p.sk("c"), p.sk("s")
    sys_close(p.t1, p.c)
    p.lab.run()
    assert csk.sk_state == 4 and ssk.sk_state == 8       # FIN_WAIT1, CLOSE_WAIT
    p.lab.advance(0.3)                                   # the FIN's ACK is delayed (pingpong)
    assert csk.sk_state == 5                             # FIN_WAIT2
    assert sys_recvfrom(p.t2, p.s, 10)[0] == b""        # EOF
    sys_close(p.t2, p.s)
    p.lab.run()
    assert csk.sk_state == 6 and ssk.sk_state == 7       # TIME_WAIT, CLOSE
    assert p.lab.nets["h1"].mib["TcpExt"]["TW"] == 1
    p.lab.advance(2.5, tick=0.5)
    assert csk.sk_state == 7
    assert p.lab.nets["h1"].mib["Tcp"]["CurrEstab"] == 0
    assert not p.lab.nets["h1"].proto["tcp_ehash"]


def test_ss_queues_count_the_fin_until_it_is_read_and_time_wait_holds_none():
    from emu.kernel.ipv4.inet_diag import inet_diag_dump
    p = Pair().connect()
    p.lab.nets["h1"].sysctl["net.ipv4.tcp_timewait_len"] = 2

    def queues(node, state):
        return [(r["recv_q"], r["send_q"]) for r in inet_diag_dump(p.lab.nets[node])
                if r["state"] == state]
    sys_close(p.t1, p.c)
    p.lab.run()
    p.lab.advance(0.3)
    assert queues("h2", "CLOSE-WAIT") == [(1, 0)]         # the FIN, unread (as Linux shows)
    assert sys_recvfrom(p.t2, p.s, 10)[0] == b""
    assert queues("h2", "CLOSE-WAIT") == [(0, 0)]         # reading EOF consumed it
    sys_close(p.t2, p.s)
    p.lab.run()
    assert queues("h1", "TIME-WAIT") == [(0, 0)]


def test_simultaneous_close_passes_closing():
    p = Pair().connect()
    csk, ssk = p.sk("c"), p.sk("s")
    sys_shutdown(p.t1, p.c, 1)
    sys_shutdown(p.t2, p.s, 1)
    states = set()
    for _ in range(10):
        p.lab.step()
        states |= {csk.sk_state, ssk.sk_state}
    assert 11 in states                                   # TCP_CLOSING
    assert csk.sk_state == 6 and ssk.sk_state == 6


def test_half_close_keeps_the_other_direction():
    p = Pair().connect()
    sys_sendto(p.t1, p.c, b"request", 0, None)
    sys_shutdown(p.t1, p.c, 1)                            # SHUT_WR
    p.lab.run()
    assert recv_all(p.t2, p.s) == b"request"
    assert sys_recvfrom(p.t2, p.s, 10)[0] == b""          # EOF after the data
    sys_sendto(p.t2, p.s, b"response", 0, None)
    p.lab.run()
    assert recv_all(p.t1, p.c) == b"response"
    with pytest.raises(KernelError) as e:
        sys_sendto(p.t1, p.c, b"more", 0, None)
    assert e.value.errno == errno.EPIPE


def test_close_with_unread_data_sends_rst():
    p = Pair().connect()
    sys_sendto(p.t1, p.c, b"unread", 0, None)
    p.lab.run()
    sys_close(p.t2, p.s)
    p.lab.run()
    assert p.lab.nets["h2"].mib["TcpExt"]["TCPAbortOnClose"] == 1
    with pytest.raises(KernelError) as e:
        sys_recvfrom(p.t1, p.c, 10)
    assert e.value.errno == errno.ECONNRESET


def test_rst_with_wrong_sequence_gets_a_challenge_ack():
    p = Pair().connect()
    ssk = p.sk("s")
    tp = ssk.proto_data
    h1mac, h2mac = p.lab.dev("h1", "eth0").dev_addr, p.lab.dev("h2", "eth0").dev_addr
    csk = p.sk("c")

    def rst(seq):
        tcp = dpkt.tcp.TCP(sport=csk.inet_sport, dport=80, seq=seq, flags=dpkt.tcp.TH_RST,
                           off=5)
        ip = dpkt.ip.IP(src=bytes([10, 0, 0, 1]), dst=bytes([10, 0, 0, 2]), p=6, data=tcp,
                        ttl=64)
        ip.len = 20 + len(bytes(tcp))
        return h2mac + h1mac + b"\x08\x00" + bytes(ip)
    p.lab.inject("h2", "eth0", rst((tp.rcv_nxt + 100) & 0xFFFFFFFF))   # in window, not exact
    p.lab.run()
    assert ssk.sk_state == 1
    assert p.lab.nets["h2"].mib["TcpExt"]["TCPChallengeACK"] == 1
    p.lab.inject("h2", "eth0", rst(tp.rcv_nxt))                        # exact: reset
    p.lab.run()
    assert ssk.sk_state == 7
    with pytest.raises(KernelError) as e:
        sys_recvfrom(p.t2, p.s, 10)
    assert e.value.errno == errno.ECONNRESET
    assert p.lab.nets["h2"].mib["Tcp"]["EstabResets"] == 1


# ------------------------------------------------------------------ listen

def test_syn_cookies_when_the_syn_queue_overflows():
    lab = bridge_lab()
    Pair(lab, backlog=1)                 # h2 listens with a SYN queue of one
    lab.port("h2", "eth0").up = True
    clients = []
    t1 = lab.task("h1")
    for _ in range(4):
        c = sys_socket(t1, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
        try:
            sys_connect(t1, c, ("10.0.0.2", 80))
        except KernelError:
            pass
        clients.append(c)
    lab.run()
    assert lab.nets["h2"].mib["TcpExt"]["SyncookiesSent"] >= 1
    assert lab.nets["h2"].mib["TcpExt"]["SyncookiesRecv"] >= 1


def test_accept_queue_limits_and_listener_errors():
    lab = bridge_lab()
    t2 = lab.task("h2")
    ls = sys_socket(t2, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    with pytest.raises(KernelError) as e:
        sys_accept(t2, ls)
    assert e.value.errno == errno.EINVAL                   # not listening
    sys_bind(t2, ls, ("0.0.0.0", 80))
    sys_listen(t2, ls, 0)
    other = sys_socket(t2, AF_INET, SOCK_STREAM, 0)
    with pytest.raises(KernelError) as e:
        sys_bind(t2, other, ("0.0.0.0", 80))
    assert e.value.errno == errno.EADDRINUSE
    with pytest.raises(KernelError) as e:
        sys_accept(t2, ls)
    assert e.value.errno == errno.EAGAIN


def test_keepalive_detects_a_dead_peer():
    p = Pair().connect()
    for opt, val in ((TCP_KEEPIDLE, 1), (TCP_KEEPINTVL, 1), (TCP_KEEPCNT, 2)):
        sys_setsockopt(p.t1, p.c, SOL_TCP, opt, val)
    sys_setsockopt(p.t1, p.c, SOL_SOCKET, SO_KEEPALIVE, 1)
    p.lab.advance(1.5, tick=0.1)
    assert p.info("c")["state"] == "ESTABLISHED"           # the peer answered the probe
    p.lab.port("h2", "eth0").up = False                     # now it goes silent
    p.lab.advance(5.0, tick=0.1)
    with pytest.raises(KernelError) as e:
        sys_recvfrom(p.t1, p.c, 10)
    assert e.value.errno == errno.ETIMEDOUT


def test_congestion_control_per_socket_and_tcp_info():
    p = Pair().connect()
    assert sys_getsockopt(p.t1, p.c, SOL_TCP, TCP_CONGESTION) == b"cubic"
    sys_setsockopt(p.t1, p.c, SOL_TCP, TCP_CONGESTION, b"reno")
    assert sys_getsockopt(p.t1, p.c, SOL_TCP, TCP_CONGESTION) == b"reno"
    with pytest.raises(KernelError):
        sys_setsockopt(p.t1, p.c, SOL_TCP, TCP_CONGESTION, b"nope")
    info = sys_getsockopt(p.t1, p.c, SOL_TCP, TCP_INFO)
    for k in ("state", "snd_cwnd", "snd_ssthresh", "rtt", "rttvar", "rto", "retransmits",
              "bytes_acked"):
        assert k in info


def test_syn_window_is_not_scaled():
    p = Pair().connect()
    # The SYN-ACK said 65160 unscaled; the client must not multiply it by 2**7.
    assert p.info("c")["snd_wnd"] <= 65535 * 2
    assert p.info("s")["snd_wnd"] <= 65535 * 2


def test_cork_holds_partial_segments_until_uncorked():
    p = Pair(tso=False).connect()
    sys_setsockopt(p.t1, p.c, SOL_TCP, 3, 1)                 # TCP_CORK
    n = len([s for s in p.frames("h1") if s.data])
    for piece in (b"a" * 100, b"b" * 100, b"c" * 100):
        sys_sendto(p.t1, p.c, piece, 0, None)
    p.lab.run()
    assert len([s for s in p.frames("h1") if s.data]) == n  # nothing left: corked
    sys_setsockopt(p.t1, p.c, SOL_TCP, 3, 0)
    p.lab.run()
    sent = [s.data for s in p.frames("h1") if s.data]
    assert sent[n:] == [b"a" * 100 + b"b" * 100 + b"c" * 100]  # one segment on uncork


def test_so_linger_zero_aborts_with_rst():
    p = Pair().connect()
    import struct as _s
    sys_setsockopt(p.t1, p.c, SOL_SOCKET, 13, _s.pack("ii", 1, 0))   # SO_LINGER {1, 0}
    sys_close(p.t1, p.c)
    p.lab.run()
    rsts = [s for s in p.frames("h1") if s.flags & dpkt.tcp.TH_RST]
    assert len(rsts) == 1
    with pytest.raises(KernelError) as e:
        sys_recvfrom(p.t2, p.s, 10)
    assert e.value.errno == errno.ECONNRESET
    assert not p.lab.nets["h1"].proto["tcp_ehash"]          # no TIME_WAIT after an abort


def test_simultaneous_open_goes_through_syn_received():
    lab = bridge_lab()
    t1, t2 = lab.task("h1"), lab.task("h2")
    a = sys_socket(t1, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    b = sys_socket(t2, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    sys_bind(t1, a, ("0.0.0.0", 7001))
    sys_bind(t2, b, ("0.0.0.0", 7002))
    for t, fd, peer in ((t1, a, ("10.0.0.2", 7002)), (t2, b, ("10.0.0.1", 7001))):
        with pytest.raises(KernelError):
            sys_connect(t, fd, peer)            # both SYNs are out before either arrives
    ska, skb_ = t1.fds[a].sk, t2.fds[b].sk
    seen = set()
    for _ in range(20):
        lab.step()
        seen |= {ska.sk_state, skb_.sk_state}
    assert 3 in seen                            # TCP_SYN_RECV (RFC 9293 figure 8)
    assert ska.sk_state == skb_.sk_state == 1
    sys_sendto(t1, a, b"crossed", 0, None)
    lab.run()
    assert sys_recvfrom(t2, b, 100)[0] == b"crossed"


def test_synack_is_retransmitted_when_the_ack_is_lost():
    lab = bridge_lab()
    p = Pair(lab)
    from tests.kernel.harness import ping
    assert ping(lab, "h1", "10.0.0.2")
    port = lab.port("h1", "eth0")
    orig = port.send
    dropped = []

    def lose_first_pure_ack(buf, start, end, *a):
        f = bytes(buf[start:end])
        if f[12:14] == b"\x08\x00" and f[23] == 6 and f[47] == 0x10 and not dropped:
            dropped.append(f)                   # the handshake's final ACK
            return True
        return orig(buf, start, end, *a)
    port.send = lose_first_pure_ack
    c = sys_socket(p.t1, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    with pytest.raises(KernelError):
        sys_connect(p.t1, c, ("10.0.0.2", 80))
    lab.run()
    assert dropped and p.t2.fds[p.ls].sk.proto_data.syn_queue    # the server still waits
    lab.advance(1.5, tick=0.1)                 # SYN-ACK again after 1 s; the client re-ACKs
    assert lab.nets["h2"].mib["TcpExt"]["TCPSynRetrans"] == 1
    fd, peer = sys_accept(p.t2, p.ls)
    assert peer[0] == "10.0.0.1"


def test_paws_drops_a_segment_with_an_old_timestamp():
    p = Pair(tso=False).connect()
    sys_sendto(p.t1, p.c, b"first", 0, None)
    p.lab.run()
    assert recv_all(p.t2, p.s) == b"first"
    frame = next(f for f in reversed(p.lab.port("h1", "eth0").sent)
                 if len(f) > 66 and f[23] == 6)         # the data segment, as sent
    p.lab.advance(0.5)
    sys_sendto(p.t1, p.c, b"second", 0, None)
    p.lab.run()
    assert recv_all(p.t2, p.s) == b"second"
    # Replay the first segment, with its old TSval, as if duplicated in the
    # network (flag 1: its checksum is still CHECKSUM_PARTIAL, as on veth).
    p.lab.inject("h2", "eth0", frame, flags=1)
    p.lab.run()
    assert p.lab.nets["h2"].mib["TcpExt"]["PAWSEstab"] == 1
    assert recv_all(p.t2, p.s) == b""


# ------------------------------------------------------------------ review regressions

def test_two_tasks_blocked_in_accept_both_get_descriptors():
    lab = bridge_lab()
    t2a, t2b = lab.task("h2"), lab.task("h2")
    t2a.fds = t2b.fds                          # two threads of one process: one table
    ls = sys_socket(t2a, AF_INET, SOCK_STREAM, 0)
    sys_bind(t2a, ls, ("0.0.0.0", 80))
    sys_listen(t2a, ls, 8)
    blocks = []
    for t in (t2a, t2b):
        with pytest.raises(SyscallBlock) as b:
            sys_accept(t, ls)
        blocks.append(b.value)
    t1 = lab.task("h1")

    def connect():
        c = sys_socket(t1, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
        with pytest.raises(KernelError):
            sys_connect(t1, c, ("10.0.0.2", 80))
        lab.run()
    connect()
    fd, peer = blocks[0].resume()              # the first waiter takes it
    with pytest.raises(SyscallBlock) as again:  # the second finds the queue empty again
        blocks[1].resume()
    connect()
    fd2, peer2 = again.value.resume()          # ... and still gets a descriptor
    assert isinstance(fd2, int) and fd2 != fd and peer2[0] == "10.0.0.1"


def test_time_wait_does_not_answer_a_bare_ack_and_survives_a_wrong_rst():
    p = Pair().connect()
    csk = p.sk("c")
    sys_shutdown(p.t1, p.c, 1)
    sys_shutdown(p.t2, p.s, 1)
    for _ in range(10):
        p.lab.step()
    assert csk.sk_state == 6 and p.sk("s").sk_state == 6      # both ends in TIME_WAIT
    last_ack = p.lab.port("h1", "eth0").sent[-1]
    n = len(p.lab.port("h2", "eth0").sent)
    p.lab.inject("h2", "eth0", last_ack, flags=1)   # a duplicate of h1's last bare ACK
    p.lab.run()
    assert len(p.lab.port("h2", "eth0").sent) == n  # no reply: no ACK ping-pong
    tp = p.sk("s").proto_data
    from emu.kernel.ipv4.tcp_ipv4 import tcp_v4_send_raw
    tcp_v4_send_raw(p.lab.nets["h1"], csk.inet_saddr, csk.inet_daddr, csk.inet_sport, 80,
                    (tp.rcv_nxt + 5000) & 0xFFFFFFFF, 0, 0x04, 0)      # RST, wrong sequence
    p.lab.run()
    assert p.sk("s").sk_state == 6                  # TIME_WAIT stays


def test_retransmitted_fin_in_close_wait_is_acked_again():
    p = Pair().connect()
    sys_shutdown(p.t1, p.c, 1)
    p.lab.advance(0.5)
    ssk = p.sk("s")
    assert ssk.sk_state == 8                        # CLOSE_WAIT
    fin = next(f for f in reversed(p.lab.port("h1", "eth0").sent) if f[47] & 0x01)
    n = len(p.lab.port("h2", "eth0").sent)
    p.lab.inject("h2", "eth0", fin, flags=1)        # our ACK was lost: the FIN comes again
    p.lab.run()
    assert len(p.lab.port("h2", "eth0").sent) == n + 1


def test_accepted_sockets_inherit_so_reuseaddr_so_a_server_can_restart():
    from emu.kernel.socket import SO_REUSEADDR
    lab = bridge_lab()
    t2 = lab.task("h2")
    ls = sys_socket(t2, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    sys_setsockopt(t2, ls, SOL_SOCKET, SO_REUSEADDR, 1)
    p = Pair(lab, port=81)                          # (its own listener on 81)
    sys_bind(t2, ls, ("0.0.0.0", 80))
    sys_listen(t2, ls, 4)
    p.port, p.ls, p.t2 = 80, ls, t2
    p.connect()
    sys_close(t2, p.s)                              # the server closes first: TIME_WAIT on h2
    p.lab.run()
    sys_close(p.t1, p.c)
    sys_close(t2, ls)
    p.lab.run()
    again = sys_socket(t2, AF_INET, SOCK_STREAM, 0)
    sys_setsockopt(t2, again, SOL_SOCKET, SO_REUSEADDR, 1)
    sys_bind(t2, again, ("0.0.0.0", 80))            # Linux allows it; so must we


def test_closing_a_listener_resets_connections_never_accepted():
    p = Pair()
    c = sys_socket(p.t1, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    with pytest.raises(KernelError):
        sys_connect(p.t1, c, ("10.0.0.2", 80))
    p.lab.run()
    assert sys_connect(p.t1, c, ("10.0.0.2", 80)) == 0
    sys_close(p.t2, p.ls)                            # the connection waits in the accept queue
    p.lab.run()
    with pytest.raises(KernelError) as e:
        sys_recvfrom(p.t1, c, 10)
    assert e.value.errno == errno.ECONNRESET


def test_loopback_mss_keeps_every_datagram_within_65535_bytes():
    # lo's MTU is 65536: the advertised MSS must leave the IP total length at
    # most 65535 (ipv4_default_advmss), or a full segment cannot be built.
    # With 64 KiB segments the receive window is one or two segments: a read
    # that reopens it must send the window update itself (tcp_cleanup_rbuf),
    # not leave the sender to its persist timer.
    lab = bridge_lab()
    t = lab.task("h1")
    ls = sys_socket(t, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    sys_bind(t, ls, ("127.0.0.1", 8000))
    sys_listen(t, ls, 8)
    c = sys_socket(t, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    with pytest.raises(KernelError):
        sys_connect(t, c, ("127.0.0.1", 8000))
    lab.run()
    s, _ = sys_accept(t, ls, SOCK_NONBLOCK)
    assert tcp_get_info(t.fds[c].sk)["advmss"] == 65495
    data = os.urandom(300000)
    sent, got = 0, bytearray()
    for _ in range(200):
        if len(got) == len(data):
            break
        if sent < len(data):
            try:
                sent += sys_sendto(t, c, data[sent:sent + 100000], 0, None)
            except (KernelError, SyscallBlock):
                pass
        lab.run()             # no clock: only the reads' window updates move the data
        try:
            got += sys_recvfrom(t, s, 1 << 20)[0]
        except (KernelError, SyscallBlock):
            pass
    assert bytes(got) == data


def test_poll_of_a_closed_socket_is_writable_and_hung_up_as_linux():
    # tcp_poll: TCP_CLOSE gives EPOLLHUP, and EPOLLOUT (the send side is not
    # shut down): select() finds a fresh socket writable, and a refused
    # non-blocking connect shows up as writable with an error.
    from emu.kernel.socket import sys_poll
    POLLIN, POLLOUT, POLLERR, POLLHUP = 0x1, 0x4, 0x8, 0x10
    lab = bridge_lab()
    t = lab.task("h1")
    fresh = sys_socket(t, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    assert sys_poll(t, [(fresh, POLLIN | POLLOUT)], 0) == [(fresh, POLLOUT | POLLHUP)]
    c = sys_socket(t, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    with pytest.raises(KernelError):
        sys_connect(t, c, ("10.0.0.2", 9))          # nobody listens: RST
    assert sys_poll(t, [(c, POLLOUT)], 0) == []        # SYN_SENT: not yet
    lab.run()
    [(_, mask)] = sys_poll(t, [(c, POLLOUT)], 0)
    assert mask & (POLLOUT | POLLERR | POLLHUP) == POLLOUT | POLLERR | POLLHUP
    assert sys_getsockopt(t, c, SOL_SOCKET, 4) == errno.ECONNREFUSED


def test_poll_reports_writable_only_when_a_third_of_the_send_buffer_is_free():
    # include/net/sock.h: sk_stream_is_writeable, wspace >= wmem_queued / 2.
    # After EAGAIN, an ACK that frees a little must not wake a poller.
    from emu.kernel.socket import sys_poll
    POLLOUT = 0x4
    p = Pair().connect()
    sk = p.sk("c")
    sndbuf = sk.sk_sndbuf
    for queued, writable in ((0, True), (sndbuf * 2 // 3, True), (sndbuf * 2 // 3 + 8, False),
                             (sndbuf - 1, False), (sndbuf, False)):
        sk.sk_wmem_alloc = queued
        got = sys_poll(p.t1, [(p.c, POLLOUT)], 0)
        assert bool(got) == writable, (queued, sndbuf, got)
    sk.sk_wmem_alloc = 0
