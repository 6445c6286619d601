"""iperf3 on a node: iperf3's command line, output and wire protocol.

The protocol is iperf3's own, so emu's iperf3 talks to a real one (through a
TAP link) and the other way round: a control TCP connection that carries a
37-byte cookie, one-byte states (PARAM_EXCHANGE, CREATE_STREAMS, TEST_START,
TEST_RUNNING, TEST_END, EXCHANGE_RESULTS, DISPLAY_RESULTS, IPERF_DONE) and
length-prefixed JSON (the parameters, then each side's results); data
streams are TCP connections that begin with the cookie, or a UDP socket
"connected" with iperf3's 4-byte hello, whose datagrams start with
(sec, usec, packet count) for the receiver's jitter and loss.

Client: -c HOST [-p PORT] [-t SEC] [-P N] [-R] [-u [-b RATE]] [-l LEN] [-J].
Server: -s [-1] [-p PORT]. Output: the interval table, the separator, the
sender/receiver summary ([SUM] rows with -P), "iperf Done.", or -J's JSON.
Each stream runs in a thread of its own (its own connection to the node).
"""
import json
import random
import struct
import threading
import time

from ..socket import AF_INET, SOCK_DGRAM, SOCK_STREAM, socket
from . import ToolParser, ToolUsage

SEP = "- " * 24 + "-"
COOKIE_SIZE = 37
(TEST_START, TEST_RUNNING, TEST_END, PARAM_EXCHANGE, CREATE_STREAMS, SERVER_TERMINATE,
 CLIENT_TERMINATE, EXCHANGE_RESULTS, DISPLAY_RESULTS, IPERF_DONE) = 1, 2, 4, 9, 10, 11, 12, 13, 14, 16
ACCESS_DENIED, SERVER_ERROR = -1, -2
# iperf3 writes these 32-bit words in host order (x86: little-endian) on the wire.
UDP_CONNECT_MSG, UDP_CONNECT_REPLY = 0x36373839, 0x39383736
UDP_WORD = struct.Struct("<I")
VERSION = "iperf 3.12"
IPPROTO_TCP, TCP_INFO = 6, 11


class IperfError(Exception):
    pass


# ------------------------------------------------------------------ formatting

def unit(value, kind):
    """units.c unit_snprintf 'a'/'A': 1024 steps for bytes, 1000 for bits."""
    labels = ("Byte", "KByte", "MByte", "GByte", "TByte") if kind == "B" else \
        ("bit", "Kbit", "Mbit", "Gbit", "Tbit")
    step = 1024.0 if kind == "B" else 1000.0
    n, i = float(value), 0
    while n >= step and i < 4:
        n /= step
        i += 1
    fmt = "%4.2f %s" if n < 9.995 else "%4.1f %s" if n < 99.95 else "%4.0f %s"
    return fmt % (n, labels[i])


def _xfer(nbytes, secs):
    return "%ss  %ss/sec" % (unit(nbytes, "B"), unit(nbytes * 8 / secs if secs > 0 else 0, "b"))


def _id(sid):
    return "[%3d]" % sid if isinstance(sid, int) else "[SUM]"


def line_bw(sid, t0, t1, nbytes, tail=""):
    return "%s %6.2f-%-6.2f sec  %s                  %s" % (_id(sid), t0, t1, _xfer(nbytes, t1 - t0), tail)


def line_retr(sid, t0, t1, nbytes, retr, tail=""):
    return "%s %6.2f-%-6.2f sec  %s  %3d             %s" % (_id(sid), t0, t1, _xfer(nbytes, t1 - t0), retr,
                                                          tail)


def line_cwnd(sid, t0, t1, nbytes, retr, cwnd):
    return "%s %6.2f-%-6.2f sec  %s  %3d   %ss       " % (_id(sid), t0, t1, _xfer(nbytes, t1 - t0), retr,
                                                        unit(cwnd, "B"))


def line_udp(sid, t0, t1, nbytes, jitter_ms, lost, total, tail=""):
    pct = 100.0 * lost / total if total else 0.0
    return "%s %6.2f-%-6.2f sec  %s  %5.3f ms  %d/%d (%.2g%%)  %s" % (
        _id(sid), t0, t1, _xfer(nbytes, t1 - t0), jitter_ms, lost, total, pct, tail)


def line_udp_sent(sid, t0, t1, nbytes, packets):
    return "%s %6.2f-%-6.2f sec  %s  %d  " % (_id(sid), t0, t1, _xfer(nbytes, t1 - t0), packets)


HDR = "[ ID] Interval           Transfer     Bitrate"
HDR_RETR = HDR + "         Retr"
HDR_CWND = HDR_RETR + "  Cwnd"
HDR_UDP = HDR + "         Jitter    Lost/Total Datagrams"
HDR_UDP_SENT = HDR + "         Total Datagrams"


def parse_rate(text):
    """-b 10M: bits per second with K/M/G (1000 steps, as iperf3's unit_atof_rate)."""
    mult = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
    t = text.strip()
    f = mult.get(t[-1:].lower())
    return int(float(t[:-1]) * f) if f else int(float(t))


def parse_size(text):
    mult = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
    t = text.strip()
    f = mult.get(t[-1:].lower())
    return int(float(t[:-1]) * f) if f else int(t)


# ------------------------------------------------------------------ control channel

def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise IperfError("the control connection closed")
        buf += chunk
    return buf


def send_state(s, state):
    s.sendall(struct.pack("b", state))


def recv_state(s):
    return struct.unpack("b", _recv_exact(s, 1))[0]


def _state_or_error(s):
    try:
        return recv_state(s)
    except (IperfError, OSError):
        return CLIENT_TERMINATE


def json_write(s, obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    s.sendall(struct.pack("!I", len(data)) + data)


def json_read(s):
    n = struct.unpack("!I", _recv_exact(s, 4))[0]
    if n > 1 << 20:
        raise IperfError("results too large")
    return json.loads(_recv_exact(s, n).decode())


def make_cookie():
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return ("".join(random.choice(alphabet) for _ in range(COOKIE_SIZE - 1))).encode() + b"\0"


def stream_ids(n):
    """iperf_add_stream's ids: 1, then 3, 4, 5... (both ends number them alike)."""
    return [1] + list(range(3, n + 2))


# ------------------------------------------------------------------ streams

class Stream:
    """One data stream: its socket, counters (updated by its thread), and interval marks."""

    def __init__(self, sid, sock, udp=False):
        self.id = sid
        self.sock = sock
        self.udp = udp
        self.bytes = 0
        self.packets = 0            # UDP: sent, or highest count seen (packet_count)
        self.errors = 0             # UDP receiver: lost (cnt_error)
        self.jitter = 0.0
        self.prev_transit = None
        self.outoforder = 0
        self.mark_bytes = self.mark_packets = self.mark_errors = 0
        self.retrans = 0
        self.prev_retrans = 0
        self.max_cwnd = 0
        self.max_wnd = 0
        self.rtts = []
        self.thread = None
        self.error = None
        self.local = self.peer = None

    def tcp_info(self):
        try:
            info = self.sock.getsockopt(IPPROTO_TCP, TCP_INFO)
            return info if isinstance(info, dict) else None
        except OSError:
            return None


def _sender(st, stop, length, rate=None):
    buf = bytes(length)
    t0 = time.monotonic()
    # A send that cannot go on within 0.1 s gives the loop a look at `stop`: the
    # test's end must not wait for a full send buffer to drain (iperf3 stops at once).
    st.sock.settimeout(0.1)
    try:
        while not stop.is_set():
            if st.udp:
                if rate:
                    ahead = st.bytes * 8 / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(min(ahead, 0.05))
                        continue
                st.packets += 1
                now = time.time()
                sec = int(now)
                hdr = struct.pack("!III", sec, int((now - sec) * 1e6), st.packets & 0xFFFFFFFF)
                try:
                    st.sock.send(hdr + buf[len(hdr):])
                except TimeoutError:
                    st.packets -= 1
                    continue
                st.bytes += length
            else:
                try:
                    st.bytes += st.sock.send(buf)
                except TimeoutError:
                    continue
    except OSError as e:
        if not stop.is_set():
            st.error = e


def _receiver(st, stop):
    try:
        st.sock.settimeout(0.25)
        while not stop.is_set():
            try:
                data = st.sock.recv(1 << 18)
            except TimeoutError:
                continue
            if not data:
                if st.udp:
                    continue
                return
            st.bytes += len(data)
            if st.udp and len(data) >= 12:
                sec, usec, pcount = struct.unpack_from("!III", data)
                # iperf_udp_recv: losses from gaps in the count, RFC 1889 jitter.
                if pcount >= st.packets + 1:
                    if pcount > st.packets + 1:
                        st.errors += pcount - 1 - st.packets
                    st.packets = pcount
                else:
                    st.outoforder += 1
                    if st.errors > 0:
                        st.errors -= 1
                transit = time.time() - (sec + usec / 1e6)
                if st.prev_transit is not None:
                    d = abs(transit - st.prev_transit)
                    st.jitter += (d - st.jitter) / 16.0
                st.prev_transit = transit
    except OSError as e:
        if not stop.is_set():
            st.error = e


def _start(streams, sending, stop, length, rate):
    for st in streams:
        fn = _sender if sending else _receiver
        args = (st, stop, length, rate) if sending else (st, stop)
        st.thread = threading.Thread(target=fn, args=args, daemon=True)
        st.thread.start()


class Reporter:
    """Interval rows every second, and the numbers the summary and -J need."""

    def __init__(self, streams, sending, udp, out, json_mode):
        self.streams = streams
        self.sending = sending
        self.udp = udp
        self.out = out
        self.json_mode = json_mode
        self.t0 = time.monotonic()
        self.mark = self.t0
        self.intervals = []
        self.printed_header = False

    def header(self):
        if self.json_mode:
            return
        if self.udp:
            self.out(HDR_UDP_SENT if self.sending else HDR_UDP)
        else:
            self.out(HDR_CWND if self.sending else HDR)

    def interval(self, now=None):
        now = time.monotonic() if now is None else now
        t0, t1 = self.mark - self.t0, now - self.t0
        if self.intervals and len(self.streams) > 1 and not self.json_mode:
            self.out(SEP)                   # between the groups of rows of several streams
        rows, sums = [], [0, 0, 0, 0]
        for st in self.streams:
            nbytes = st.bytes - st.mark_bytes
            npk = st.packets - st.mark_packets
            nerr = st.errors - st.mark_errors
            st.mark_bytes, st.mark_packets, st.mark_errors = st.bytes, st.packets, st.errors
            row = {"socket": st.id if isinstance(st.id, int) else 0, "start": t0, "end": t1,
                   "seconds": t1 - t0, "bytes": nbytes,
                   "bits_per_second": nbytes * 8 / (t1 - t0) if t1 > t0 else 0.0}
            retr = cwnd = 0
            if self.sending and not self.udp:
                info = st.tcp_info() or {}
                total = info.get("total_retrans", 0)
                retr, st.prev_retrans = total - st.prev_retrans, total
                st.retrans += retr
                cwnd = info.get("snd_cwnd", 0) * info.get("snd_mss", 0)
                st.max_cwnd = max(st.max_cwnd, cwnd)
                if info.get("rtt"):
                    st.rtts.append(info["rtt"])
                st.max_wnd = max(st.max_wnd, info.get("snd_wnd", 0))
                row.update(retransmits=retr, snd_cwnd=cwnd, snd_wnd=info.get("snd_wnd", 0),
                           rtt=info.get("rtt", 0),
                           rttvar=info.get("rttvar", 0), pmtu=1500)
            if self.udp:
                row["packets"] = npk
                if not self.sending:
                    row.update(jitter_ms=st.jitter * 1000, lost_packets=nerr,
                               lost_percent=100.0 * nerr / npk if npk else 0.0)
            row.update(omitted=False, sender=self.sending)
            rows.append(row)
            sums[0] += nbytes
            sums[1] += retr
            sums[2] += npk
            sums[3] += nerr
            if not self.json_mode:
                sid = self._sock_id(st)
                if self.udp:
                    self.out(line_udp_sent(sid, t0, t1, nbytes, npk) if self.sending else
                             line_udp(sid, t0, t1, nbytes, st.jitter * 1000, nerr, npk))
                elif self.sending:
                    self.out(line_cwnd(sid, t0, t1, nbytes, retr, cwnd))
                else:
                    self.out(line_bw(sid, t0, t1, nbytes))
        if len(self.streams) > 1 and not self.json_mode:
            if self.udp:
                self.out(line_udp_sent("SUM", t0, t1, sums[0], sums[2]) if self.sending else
                         line_udp("SUM", t0, t1, sums[0], 0.0, sums[3], sums[2]))
            elif self.sending:
                self.out(line_retr("SUM", t0, t1, sums[0], sums[1]).rstrip() + "             ")
            else:
                self.out(line_bw("SUM", t0, t1, sums[0]))
        s = {"start": t0, "end": t1, "seconds": t1 - t0, "bytes": sums[0],
             "bits_per_second": sums[0] * 8 / (t1 - t0) if t1 > t0 else 0.0}
        if self.sending and not self.udp:
            s["retransmits"] = sums[1]
        s.update(omitted=False, sender=self.sending)
        self.intervals.append({"streams": rows, "sum": s})
        self.mark = now

    @staticmethod
    def _sock_id(st):
        return st.sock_id

    def elapsed(self):
        return time.monotonic() - self.t0


# ------------------------------------------------------------------ client

def client(a, dst, endpoint, out):
    proto_udp = a.udp
    length = a.length or (1460 if proto_udp else 128 * 1024)
    rate = a.bandwidth if a.bandwidth is not None else (1_000_000 if proto_udp else 0)
    ctrl = socket(AF_INET, SOCK_STREAM, 0, node=endpoint)
    streams = []
    stop = threading.Event()
    try:
        try:
            ctrl.connect((dst, a.port))
        except OSError as e:
            raise IperfError("unable to connect to server: %s" % e.strerror) from None
        cookie = make_cookie()
        ctrl.sendall(cookie)
        if not a.json:
            out("Connecting to host %s, port %d" % (a.client, a.port))
            if a.reverse:
                out("Reverse mode, remote host %s is sending" % a.client)
        rep = None
        start_wall = time.time()
        while True:
            state = recv_state(ctrl)
            if state == PARAM_EXCHANGE:
                params = {"tcp": True} if not proto_udp else {"udp": True}
                params.update(omit=0, time=int(a.time), num=0, blockcount=0, parallel=a.parallel,
                              len=length, pacing_timer=1000, client_version="3.12")
                if a.reverse:
                    params["reverse"] = True
                if rate:
                    params["bandwidth"] = rate
                json_write(ctrl, params)
            elif state == CREATE_STREAMS:
                for i, sid in enumerate(stream_ids(a.parallel)):
                    st = _connect_stream(endpoint, dst, a.port, cookie, sid, proto_udp)
                    st.sock_id = 5 + 2 * i
                    streams.append(st)
                    if not a.json:
                        out("[%3d] local %s port %d connected to %s port %d" % (
                            st.sock_id, st.local[0], st.local[1], dst, a.port))
            elif state == TEST_START:
                rep = Reporter(streams, not a.reverse, proto_udp, out, a.json)
                rep.header()
            elif state == TEST_RUNNING:
                rep.t0 = rep.mark = time.monotonic()
                _start(streams, not a.reverse, stop, length, rate)
                _run_for(rep, a.time, streams)
                stop.set()
                for st in streams:
                    st.thread.join(5)
                send_state(ctrl, TEST_END)
            elif state == EXCHANGE_RESULTS:
                json_write(ctrl, _results(streams, not a.reverse, proto_udp, rep))
                remote = json_read(ctrl)
            elif state == DISPLAY_RESULTS:
                secs = rep.mark - rep.t0
                _summary(a, streams, remote, secs, not a.reverse, proto_udp, out, rep, dst,
                         start_wall, cookie, length)
                send_state(ctrl, IPERF_DONE)
                return 0
            elif state in (ACCESS_DENIED,):
                raise IperfError("the server is busy running a test. try again later")
            elif state in (SERVER_ERROR, SERVER_TERMINATE):
                raise IperfError("the server has terminated")
            else:
                raise IperfError("received an unknown control message (%d)" % state)
    finally:
        stop.set()
        for st in streams:
            st.sock.close()
        ctrl.close()


def _connect_stream(endpoint, dst, port, cookie, sid, udp):
    if udp:
        s = socket(AF_INET, SOCK_DGRAM, 0, node=endpoint)
        s.connect((dst, port))
        s.send(UDP_WORD.pack(UDP_CONNECT_MSG))
        s.settimeout(10)
        reply = s.recv(4)
        if len(reply) != 4 or UDP_CONNECT_REPLY not in (UDP_WORD.unpack(reply)[0],
                                                        struct.unpack("!I", reply)[0]):
            raise IperfError("unable to receive control message")
    else:
        s = socket(AF_INET, SOCK_STREAM, 0, node=endpoint)
        s.connect((dst, port))
        s.sendall(cookie)
    st = Stream(sid, s, udp)
    st.local = s.getsockname()
    return st


def _run_for(rep, duration, streams):
    """Let the streams run for duration seconds, an interval row each second."""
    end = rep.t0 + duration
    while True:
        nxt = min(end, rep.mark + 1.0)
        time.sleep(max(0.0, nxt - time.monotonic()))
        now = time.monotonic()
        if now >= rep.mark + 1.0 - 1e-3 or now >= end:
            rep.interval(now)
        if now >= end:
            return
        if any(st.error for st in streams):
            raise IperfError("the stream failed: %s" % next(st.error for st in streams if st.error))


def _results(streams, sending, udp, rep):
    secs = (rep.mark - rep.t0) if rep else 0.0
    return {"cpu_util_total": 0.0, "cpu_util_user": 0.0, "cpu_util_system": 0.0,
            "sender_has_retransmits": (1 if not udp else 0) if sending else -1,
            "congestion_used": "cubic",
            "streams": [{"id": st.id, "bytes": st.bytes,
                         "retransmits": st.retrans if sending and not udp else -1,
                         "jitter": st.jitter, "errors": st.errors, "omitted_errors": 0,
                         "packets": st.packets, "omitted_packets": 0,
                         "start_time": 0, "end_time": secs} for st in streams]}


def _summary(a, streams, remote, secs, sending, udp, out, rep, dst, start_wall, cookie, length):
    rstreams = {r["id"]: r for r in remote.get("streams", [])}
    rsecs = max([r.get("end_time", secs) for r in rstreams.values()] + [0]) or secs
    rows = []
    for st in streams:
        r = rstreams.get(st.id, {})
        if sending:
            sent, recv, retr = st.bytes, r.get("bytes", 0), st.retrans
        else:
            sent, recv, retr = r.get("bytes", 0), st.bytes, max(r.get("retransmits", 0), 0)
        rows.append((st, sent, recv, retr, r))
    if a.json:
        out(cjson(_json_doc(a, rows, rep, secs, rsecs, dst, start_wall, cookie, length, udp, sending)))
        return
    out(SEP)
    if udp:
        out(HDR_UDP)
        tot = [0, 0, 0]
        for st, sent, recv, _retr, r in rows:
            lost = st.errors if not sending else r.get("errors", 0)
            pk = st.packets if not sending else r.get("packets", 0)
            jit = (st.jitter if not sending else r.get("jitter", 0.0)) * 1000
            out(line_udp(st.sock_id, 0.0, secs, sent, 0.0, 0, st.packets if sending else pk,
                         "sender"))
            out(line_udp(st.sock_id, 0.0, rsecs if sending else secs, recv, jit, lost, pk, "receiver"))
            tot[0] += sent
            tot[1] += lost
            tot[2] += pk
    else:
        out(HDR_RETR)
        for st, sent, recv, retr, _r in rows:
            out(line_retr(st.sock_id, 0.0, secs, sent, retr, "sender"))
            out(line_bw(st.sock_id, 0.0, rsecs if sending else secs, recv, "receiver"))
        if len(rows) > 1:
            out(line_retr("SUM", 0.0, secs, sum(x[1] for x in rows), sum(x[3] for x in rows), "sender"))
            out(line_bw("SUM", 0.0, rsecs if sending else secs, sum(x[2] for x in rows), "receiver"))
    out("")
    out("iperf Done.")


def _json_doc(a, rows, rep, secs, rsecs, dst, start_wall, cookie, length, udp, sending):
    connected = [{"socket": st.sock_id, "local_host": st.local[0], "local_port": st.local[1],
                  "remote_host": dst, "remote_port": a.port} for st, *_ in rows]
    start = {"connected": connected, "version": VERSION,
             "system_info": "emu node (Linux network stack emulation)",
             "timestamp": {"time": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(start_wall)),
                           "timesecs": int(start_wall)},
             "connecting_to": {"host": a.client, "port": a.port},
             "cookie": cookie[:-1].decode(), "tcp_mss_default": 1448,
             "target_bitrate": a.bandwidth or 0, "sock_bufsize": 0,
             "sndbuf_actual": 0, "rcvbuf_actual": 0,
             "test_start": {"protocol": "UDP" if udp else "TCP", "num_streams": a.parallel,
                            "blksize": length, "omit": 0, "duration": int(a.time), "bytes": 0,
                            "blocks": 0, "reverse": int(a.reverse), "tos": 0,
                            "target_bitrate": a.bandwidth or 0}}
    end_streams = []
    for st, sent, recv, retr, r in rows:
        snd = {"socket": st.sock_id, "start": 0, "end": secs, "seconds": secs, "bytes": sent,
               "bits_per_second": sent * 8 / secs if secs else 0.0}
        if not udp:
            snd.update(retransmits=retr, max_snd_cwnd=st.max_cwnd, max_snd_wnd=st.max_wnd,
                       max_rtt=max(st.rtts or [0]), min_rtt=min(st.rtts or [0]),
                       mean_rtt=int(sum(st.rtts) / len(st.rtts)) if st.rtts else 0)
        snd["sender"] = sending
        rcv = {"socket": st.sock_id, "start": 0, "end": rsecs if sending else secs,
               "seconds": secs, "bytes": recv,
               "bits_per_second": recv * 8 / secs if secs else 0.0, "sender": sending}
        end_streams.append({"sender": snd, "receiver": rcv} if not udp else
                           {"udp": dict(snd, jitter_ms=(st.jitter if not sending else
                                                        r.get("jitter", 0.0)) * 1000,
                                        lost_packets=r.get("errors", 0) if sending else st.errors,
                                        packets=r.get("packets", 0) if sending else st.packets,
                                        lost_percent=0.0, out_of_order=0)})
    tot_s, tot_r = sum(x[1] for x in rows), sum(x[2] for x in rows)
    end = {"streams": end_streams,
           "sum_sent": {"start": 0, "end": secs, "seconds": secs, "bytes": tot_s,
                        "bits_per_second": tot_s * 8 / secs if secs else 0.0,
                        "retransmits": sum(x[3] for x in rows), "sender": sending},
           "sum_received": {"start": 0, "end": rsecs, "seconds": rsecs, "bytes": tot_r,
                            "bits_per_second": tot_r * 8 / rsecs if rsecs else 0.0,
                            "sender": sending},
           "cpu_utilization_percent": {"host_total": 0.0, "host_user": 0.0, "host_system": 0.0,
                                       "remote_total": 0.0, "remote_user": 0.0,
                                       "remote_system": 0.0},
           "sender_tcp_congestion": "cubic", "receiver_tcp_congestion": "cubic"}
    return {"start": start, "intervals": rep.intervals, "end": end}


def cjson(v, depth=0):
    """cJSON_Print's layout (what iperf3 -J writes): tabs, "key":<TAB>value."""
    tab = "\t"
    if isinstance(v, dict):
        if not v:
            return "{\n" + tab * depth + "}"
        items = [tab * (depth + 1) + json.dumps(k) + ":\t" + cjson(x, depth + 1) for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + tab * depth + "}"
    if isinstance(v, list):
        return "[" + ", ".join(cjson(x, depth + 1) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e15:
            return "%d" % v
        return "%.17g" % v
    return json.dumps(v)


# ------------------------------------------------------------------ server

def server(a, endpoint, out):
    ls = socket(AF_INET, SOCK_STREAM, 0, node=endpoint)
    ls.setsockopt(1, 2, 1)                                  # SO_REUSEADDR
    try:
        ls.bind(("0.0.0.0", a.port))
    except OSError as e:
        ls.close()
        raise IperfError("unable to start listener for connections: %s" % e.strerror) from None
    ls.listen(5)
    test = 1
    try:
        while True:
            out("-----------------------------------------------------------")
            out("Server listening on %d (test #%d)" % (a.port, test))
            out("-----------------------------------------------------------")
            ctrl, peer = ls.accept()
            try:
                _serve_one(a, endpoint, ls, ctrl, peer, out)
            except (IperfError, OSError) as e:
                out("iperf3: error - %s" % (getattr(e, "strerror", None) or e))
            finally:
                ctrl.close()
            test += 1
            if a.one_off:
                return 0
    finally:
        ls.close()


def _serve_one(a, endpoint, ls, ctrl, peer, out):
    cookie = _recv_exact(ctrl, COOKIE_SIZE)
    out("Accepted connection from %s, port %d" % (peer[0], peer[1]))
    send_state(ctrl, PARAM_EXCHANGE)
    params = json_read(ctrl)
    udp = "udp" in params
    sending = "reverse" in params
    nstreams = int(params.get("parallel", 1))
    length = int(params.get("len", 1460 if udp else 128 * 1024))
    rate = int(params.get("bandwidth", 0))
    streams = []
    stop = threading.Event()
    udp_ls = None
    if udp:
        # The UDP "listener" exists before the client is told to create streams.
        udp_ls = socket(AF_INET, SOCK_DGRAM, 0, node=endpoint)
        udp_ls.setsockopt(1, 2, 1)
        udp_ls.bind(("0.0.0.0", a.port))
    send_state(ctrl, CREATE_STREAMS)
    try:
        for i, sid in enumerate(stream_ids(nstreams)):
            if udp:
                if udp_ls is None:
                    raise IperfError("emu's iperf3 server takes one UDP stream (-P 1)")
                s, udp_ls = udp_ls, None
                s.settimeout(30)
                hello, src = s.recvfrom(64)
                s.connect(src)
                s.send(UDP_WORD.pack(UDP_CONNECT_REPLY))
            else:
                ls.settimeout(30)
                s, src = ls.accept()
                got = _recv_exact(s, COOKIE_SIZE)
                if got != cookie:
                    s.close()
                    raise IperfError("a stream came with the wrong cookie")
            st = Stream(sid, s, udp)
            st.sock_id = 5 + 2 * i
            st.local = s.getsockname()
            streams.append(st)
            out("[%3d] local %s port %d connected to %s port %d" % (
                st.sock_id, st.local[0], st.local[1], src[0], src[1]))
        send_state(ctrl, TEST_START)
        rep = Reporter(streams, sending, udp, out, False)
        rep.header()
        send_state(ctrl, TEST_RUNNING)
        rep.t0 = rep.mark = time.monotonic()
        _start(streams, sending, stop, length, rate)
        # Until the client says TEST_END: an interval row each second. The
        # control read blocks in a thread of its own: a read given up on a
        # timeout could still take the client's next bytes.
        got = []
        reader = threading.Thread(target=lambda: got.append(_state_or_error(ctrl)), daemon=True)
        reader.start()
        while True:
            reader.join(max(0.0, min(0.1, rep.mark + 1.0 - time.monotonic())))
            if got:
                state = got[0]
                break
            if time.monotonic() >= rep.mark + 1.0:
                rep.interval()
        if state != TEST_END:
            raise IperfError("the client has terminated")
        stop.set()
        for st in streams:
            st.thread.join(5)
        rep.interval()
        # As iperf3's server at TEST_END: the data streams close now, so that a
        # receiving client sees their end before the results are exchanged.
        for st in streams:
            st.sock.close()
        secs = rep.mark - rep.t0
        send_state(ctrl, EXCHANGE_RESULTS)
        json_read(ctrl)                 # the peer's results: iperf3's client shows its own
        json_write(ctrl, _results(streams, sending, udp, rep))
        send_state(ctrl, DISPLAY_RESULTS)
        try:
            recv_state(ctrl)                            # IPERF_DONE
        except (IperfError, OSError):
            pass
        out(SEP)
        if udp:
            out(HDR_UDP)
            for st in streams:
                if sending:
                    out(line_udp(st.sock_id, 0.0, secs, st.bytes, 0.0, 0, st.packets, "sender"))
                else:
                    out(line_udp(st.sock_id, 0.0, secs, st.bytes, st.jitter * 1000, st.errors,
                                 st.packets, "receiver"))
        elif sending:
            out(HDR_RETR)
            for st in streams:
                out(line_retr(st.sock_id, 0.0, secs, st.bytes, st.retrans, "sender"))
            if len(streams) > 1:
                out(line_retr("SUM", 0.0, secs, sum(s.bytes for s in streams),
                              sum(s.retrans for s in streams), "sender"))
        else:
            out(HDR)
            for st in streams:
                out(line_bw(st.sock_id, 0.0, secs, st.bytes, "receiver"))
            if len(streams) > 1:
                out(line_bw("SUM", 0.0, secs, sum(s.bytes for s in streams), "receiver"))
    finally:
        stop.set()
        ls.settimeout(None)                 # the next test's control connection may take long
        for st in streams:
            st.sock.close()
        if udp_ls is not None:
            udp_ls.close()


# ------------------------------------------------------------------ command line

def main(argv, endpoint, resolve, out=print, err=None):
    err = err or out
    p = ToolParser(prog="iperf3", add_help=False)
    p.add_argument("-s", "--server", dest="server", action="store_true")
    p.add_argument("-1", "--one-off", dest="one_off", action="store_true")
    p.add_argument("-c", "--client", dest="client")
    p.add_argument("-p", "--port", dest="port", type=int, default=5201)
    p.add_argument("-t", "--time", dest="time", type=float, default=10.0)
    p.add_argument("-l", "--length", dest="length", type=parse_size)
    p.add_argument("-P", "--parallel", dest="parallel", type=int, default=1)
    p.add_argument("-R", "--reverse", dest="reverse", action="store_true")
    p.add_argument("-u", "--udp", dest="udp", action="store_true")
    p.add_argument("-b", "--bitrate", "--bandwidth", dest="bandwidth", type=parse_rate)
    p.add_argument("-J", "--json", dest="json", action="store_true")
    try:
        a = p.parse_args(argv)
    except ToolUsage as e:
        err("iperf3: parameter error - %s" % e)
        return 1
    try:
        if a.server and a.client:
            err("iperf3: parameter error - cannot be both server and client")
            return 1
        if a.server:
            return server(a, endpoint, out)
        if a.client:
            if not 1 <= a.parallel <= 128:
                err("iperf3: parameter error - number of parallel streams too large (maximum = 128)")
                return 1
            dst = resolve(a.client)
            if dst is None:
                err("iperf3: error - unable to resolve host: %s" % a.client)
                return 1
            return client(a, dst, endpoint, out)
    except IperfError as e:
        if a.json:
            out(cjson({"start": {}, "intervals": [], "end": {}, "error": str(e)}))
        else:
            err("iperf3: error - %s" % e)
        return 1
    except KeyboardInterrupt:
        err("iperf3: interrupt - the %s has terminated" % ("server" if a.server else "client"))
        return 1
    err("iperf3: parameter error - must either be a client (-c) or server (-s)")
    return 1

