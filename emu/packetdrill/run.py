"""Running a packetdrill script against a fresh emulated kernel.

packetdrill: run.c (the event loop, relative times, verify_time),
run_packet.c (socket under test, sequence number mapping, sniffing),
run_system_call.c (system calls and their checks). Messages and exit codes
are packetdrill's: nothing on success; `SCRIPT:LINE: error handling packet:
...`, `SCRIPT:LINE: runtime error in CALL call: ...`, `SCRIPT:LINE: timing
error: ...` on failure.

Emulation note: packetdrill runs blocking system calls in a second thread
and sleeps in real time between events; here the kernel's fake clock jumps
from event to event and from timer to timer, and a call that would block
is parked on its wait queues until the kernel wakes it (as emu's node
runtime parks it), so a run is deterministic and takes milliseconds.
"""
import os
import struct

from ..kernel.core import rtnetlink
from ..kernel.core.dev import KernelError, dev_open, register_netdevice
from ..kernel.core.entry import KernelOops, SyscallBlock, kernel_entry
from ..kernel.core.napi import do_softirq
from ..kernel.core.net import FakeClock
from ..kernel.drivers.tun import tun_get_user, tun_setup
from ..kernel.hdr.ip import inet_aton
from ..kernel.init import start_kernel
from ..kernel.socket import Task
from .packet import (
    FLAG_BITS, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, TCPOPT_SACK, TCPOPT_TIMESTAMP,
    LivePacket, build_icmp, build_tcp, build_udp, encode_tcp_options,
)
from .parse import (
    ABSOLUTE_RANGE_TIME, ANY_TIME, RELATIVE_RANGE_TIME, RELATIVE_TIME, ParseError, parse_script,
)

SOCKET_INIT, PASSIVE_LISTENING, PASSIVE_PACKET_RECEIVED, PASSIVE_SYNACK_SENT, \
    PASSIVE_SYNACK_ACKED, ACTIVE_CONNECTING, ACTIVE_SYN_SENT, ACTIVE_SYN_ACKED = range(8)

SNIFF_HORIZON = 600.0        # seconds of fake time to wait for an expected packet
REMOTE_PORT = 49153          # the "ephemeral" port of the remote end (fixed: deterministic)


class ScriptFailure(Exception):
    """The script failed: str() is packetdrill's message (with script:line)."""


class Config:
    """packetdrill's command-line options that matter here (config.c defaults)."""

    def __init__(self, **kw):
        self.tolerance_usecs = 4000
        self.tolerance_percent = 12.5     # packetdrill's Linux default (timer wheel slack)
        self.mss = 1460                   # the device MTU is mss + 40 (--mtu sets it directly)
        self.ip_version = "ipv4"
        self.local_ip = "192.168.0.1"
        self.remote_ip = "192.0.2.1"
        self.gateway_ip = "192.168.0.2"
        self.netmask_ip = "255.255.0.0"
        self.bind_port = 8080
        self.connect_port = 8080
        self.tcp_ts_tick_usecs = 0
        self.verbose = False
        self.trace = False
        self.out = print
        for k, v in kw.items():
            if not hasattr(self, k):
                raise ValueError("unknown option %s" % k)
            setattr(self, k, v)

    def set_option(self, name, value):
        """--name=value from the command line or the script's head."""
        # config.c's ranges: a value outside them is "bad --NAME: VALUE"
        ints = {"tolerance_usecs": (1, 1 << 40), "mss": (88, 65495), "mtu": (128, 65535),
                "bind_port": (1, 65535), "connect_port": (1, 65535),
                "tcp_ts_tick_usecs": (0, 1000000)}
        strs = ("local_ip", "remote_ip", "gateway_ip", "netmask_ip")
        if name in ints:
            lo, hi = ints[name]
            try:
                v = int(value)
            except (TypeError, ValueError):
                v = None
            if v is None or not lo <= v <= hi:
                raise ValueError("bad --%s: %s" % (name, value))
            if name == "mtu":
                name, v = "mss", v - 40
            setattr(self, name, v)
        elif name == "tolerance_percent":
            try:
                v = float(value)
            except (TypeError, ValueError):
                v = -1.0
            if not 0.0 <= v <= 100.0:
                raise ValueError("bad --tolerance_percent: %s" % value)
            self.tolerance_percent = v
        elif name in strs:
            try:
                inet_aton(value)
            except (OSError, TypeError, ValueError):
                raise ValueError("bad IPv4 address for --%s: %r" % (name, value)) from None
            setattr(self, name, value)
        elif name == "ip_version":
            if value not in ("ipv4",):
                raise ValueError("--ip_version=%s: emu's packetdrill supports ipv4 only" % value)
        elif name in ("verbose", "trace"):
            setattr(self, name, value in (None, "", "1", "true", True))
        else:
            raise ValueError("unknown option --%s" % name)


class TunPort:
    """The packetdrill side of the tun device: what the kernel sent, when."""

    def __init__(self, clock):
        self.clock = clock
        self.queue = []

    def send(self, buf, start, end, flags, gso_type, gso_size, trace_id):
        self.queue.append((bytes(buf[start:end]), self.clock.now, trace_id))
        return True


class SocketState:
    """packetdrill's struct socket: the connection under test, script and live."""

    def __init__(self):
        self.state = SOCKET_INIT
        self.protocol = IPPROTO_TCP
        self.local_ip = self.remote_ip = 0
        self.local_port = self.remote_port = 0
        self.script_local_isn = self.live_local_isn = 0
        self.script_remote_isn = self.live_remote_isn = 0
        self.found_first_ts = False
        self.first_script_ts_val = self.first_actual_ts_val = 0
        self.ts_val_map = {}
        self.live_fd = None


class Parked:
    """A system call waiting in the kernel (packetdrill's syscall thread)."""

    def __init__(self, event, block, finish, call):
        self.event = event
        self.block = block
        self.call = call               # the whole call again when the block has no resume
        self.finish = finish           # finish(result, errno) checks the outcome
        self.ready = False
        self.deadline = None

    def wake(self, mask):
        self.ready = True


class Runner:
    """One script against one fresh kernel (packetdrill's struct state)."""

    def __init__(self, path, events, config):
        self.path = path
        self.name = os.path.basename(path)
        self.events = events
        self.config = config
        self.clock = FakeClock()
        self.net = start_kernel("packetdrill", 1, self.clock, 0)
        self.port = TunPort(self.clock)
        self.dev = None
        self.task = Task(self.net, 1, "packetdrill")
        self.fds = {}                  # script fd -> live fd
        self.sock = None               # the socket under test
        self.parked = None
        self.live_start = self.clock.now
        self.last_event = None
        self.event = None
        self.trace_lines = []
        self._setup_netdev()

    # ------------------------------------------------------------ setup
    def _setup_netdev(self):
        """netdev.c local mode: tun0 with the local address, a route to the remote."""
        cfg = self.config
        dev = tun_setup("tun0", self.port)
        dev.mtu = cfg.mss + 40
        self.dev = dev

        def setup():
            register_netdevice(self.net, dev)
            dev_open(dev)
            mask = inet_aton(cfg.netmask_ip)
            plen = bin(mask).count("1")
            rtnetlink.inet_rtm_newaddr(self.net, "tun0", "%s/%d" % (cfg.local_ip, plen))
            rtnetlink.inet_rtm_newroute(self.net, "%s/32" % cfg.remote_ip, via=cfg.gateway_ip,
                                        dev="tun0")
            if cfg.trace:
                rtnetlink.trace_start(self.net, ring=1 << 16)
        kernel_entry(self.net, 0, setup)
        self.settle()
        self.port.queue.clear()

    # ------------------------------------------------------------ time
    def now_usecs(self):
        return int(round((self.clock.now - self.live_start) * 1e6))

    def settle(self):
        """Run softirqs until nothing is pending, then wake parked calls."""
        self.settle_quiet()
        self._check_parked()

    def _next_wakeup(self):
        t = self.net.next_timer()
        p = self.parked
        if p is not None and p.deadline is not None:
            t = p.deadline if t is None else min(t, p.deadline)
        return t

    def advance_to(self, usecs, until=None):
        """Move the fake clock to script time usecs, firing every timer on the way.

        until(): stop early (at a timer's time) once it returns True.
        """
        target = self.live_start + usecs / 1e6
        while True:
            if until is not None and until():
                return True
            t = self._next_wakeup()
            if t is None or t > target + 1e-9:
                break
            self.clock.now = max(self.clock.now, t)
            kernel_entry(self.net, 0, self.net.run_timers, self.clock.now)
            self.settle()
        if self.clock.now < target:
            self.clock.now = target
            kernel_entry(self.net, 0, self.net.run_timers, self.clock.now)
            self.settle()
        return until() if until is not None else False

    # ------------------------------------------------------------ errors
    def fail(self, event, msg):
        raise ScriptFailure("%s:%d: %s" % (self.name, event.line, msg))

    def verify_time(self, event, ttype, script_usecs, script_end, live_usecs, description,
                    last_usecs=None):
        """run.c verify_time: None when on time, else packetdrill's message."""
        tol = self.config.tolerance_usecs
        if ttype == ANY_TIME:
            return None
        if last_usecs is not None and self.config.tolerance_percent:
            dyn = int(self.config.tolerance_percent / 100.0 * (script_usecs - last_usecs))
            tol = max(tol, dyn)
        if ttype in (ABSOLUTE_RANGE_TIME, RELATIVE_RANGE_TIME):
            if live_usecs < script_usecs - tol or live_usecs > script_end + tol:
                if ttype == ABSOLUTE_RANGE_TIME:
                    return ("timing error: expected %s in time range %.6f~%.6f sec but "
                            "happened at %.6f sec" % (description, script_usecs / 1e6,
                                                      script_end / 1e6, live_usecs / 1e6))
                off = event.offset
                return ("timing error: expected %s in relative time range +%.6f~+%.6f sec "
                        "but happened at %+.6f sec" % (
                            description, (script_usecs - off) / 1e6, (script_end - off) / 1e6,
                            (live_usecs - off) / 1e6))
            return None
        if live_usecs < script_usecs - tol or live_usecs > script_usecs + tol:
            return ("timing error: expected %s at %.6f sec but happened at %.6f sec; "
                    "tolerance %.6f sec" % (description, script_usecs / 1e6, live_usecs / 1e6,
                                            tol / 1e6))
        return None

    def wait_for_event(self, event, description):
        self.advance_to(event.abs_time)
        err = self.verify_time(event, event.time_type, event.abs_time, event.abs_end,
                               self.now_usecs(), description, self._last_time())
        if err:
            self.fail(event, err)

    def _last_time(self):
        return self.last_event.abs_time if self.last_event is not None else None

    # ------------------------------------------------------------ the loop
    def run(self):
        from .syscalls import run_syscall_event
        first = True
        for event in self.events:
            self.event = event
            if first and event.time_type not in (RELATIVE_TIME, ANY_TIME) and event.time != 0:
                raise ScriptFailure("%s:%d: first event should be at time 0" % (
                    self.name, event.line))
            if self.last_event is not None and not self.last_event.is_relative() and \
                    not event.is_relative() and event.time < self.last_event.time:
                raise ScriptFailure("%s:%d: time goes backward in script from %d usec to %d "
                                    "usec" % (self.name, event.line, self.last_event.time,
                                              event.time))
            first = False
            self.adjust_relative_event_times(event)
            if event.kind == "syscall":
                run_syscall_event(self, event)
            elif event.kind == "packet":
                self.run_packet_event(event)
            elif event.kind == "command":
                self.wait_for_event(event, "command")
                self.run_command(event)
            elif event.kind == "code":
                self.wait_for_event(event, "data collection for code")
                self.run_code(event)
            self.last_event = event
        if self.parked is not None:
            ev = self.parked.event
            end = ev.abs_end_call if ev.abs_end_call is not None else ev.abs_time
            self.advance_to(max(end, self.now_usecs()) + self.config.tolerance_usecs,
                            until=lambda: self.parked is None)
            if self.parked is not None:
                self.fail(ev, "runtime error in %s call: blocking system call was still "
                              "in progress at the end of the script" % ev.body.name)
        self.flush_trace()

    def adjust_relative_event_times(self, event):
        """run.c adjust_relative_event_times: anchor relative times, fill abs_*."""
        event.abs_end = event.time_end
        event.abs_end_call = None
        event.offset = 0
        if event.time_type in (ANY_TIME, RELATIVE_TIME, RELATIVE_RANGE_TIME):
            last = self.last_event
            if last is not None and _anchored(last) and _anchored(event):
                offset = last.abs_time
            else:
                offset = self.now_usecs()
            event.offset = offset
            event.abs_time = offset + event.time
            if event.time_type == RELATIVE_RANGE_TIME:
                event.abs_end = offset + event.time_end
        else:
            event.abs_time = event.time
        if event.kind == "syscall" and event.end_time is not None:
            if event.end_relative:
                event.abs_end_call = event.abs_time + event.end_time
            elif event.time_type == RELATIVE_TIME:
                event.abs_end_call = event.offset + event.end_time
            else:
                event.abs_end_call = event.end_time

    # ------------------------------------------------------------ parked calls
    def park(self, event, block, finish, call):
        p = Parked(event, block, finish, call)
        if block.timeout is not None:
            p.deadline = self.clock.now + block.timeout
        for wq in block.wqs:
            wq.add(p.wake)
        self.parked = p

    def _unpark(self, p):
        for wq in p.block.wqs:
            wq.remove(p.wake)
        self.parked = None

    def _check_parked(self):
        p = self.parked
        if p is None:
            return
        if p.ready:
            self._unpark(p)
            fn = p.block.resume or p.call
            try:
                result = kernel_entry(self.net, 0, fn)
                err = 0
            except SyscallBlock as b:
                self.park(p.event, b, p.finish, p.call)
                self.parked.deadline = p.deadline
                return
            except KernelError as e:
                result, err = -1, e.errno
            self.settle_quiet()
            p.finish(result, err)
        elif p.deadline is not None and self.clock.now >= p.deadline - 1e-9:
            self._unpark(p)
            done = None
            if p.block.partial is not None:
                done = kernel_entry(self.net, 0, p.block.partial)
            if done:
                p.finish(done, 0)
            elif p.block.on_timeout:
                p.finish(-1, p.block.on_timeout)
            else:
                p.finish([], 0)

    def settle_quiet(self):
        """Run softirqs until nothing is pending."""
        net = self.net
        for _ in range(100000):
            busy = False
            for sd in net.cpus:
                if sd.pending:
                    kernel_entry(net, sd.cpu, do_softirq, net, sd.cpu)
                    busy = True
            if not busy:
                break

    # ------------------------------------------------------------ packets
    def run_packet_event(self, event):
        pkt = event.body
        try:
            if pkt.direction == ">":
                self.do_outbound(event, pkt)
            else:
                self.wait_for_event(event, "inbound packet")
                self.do_inbound(event, pkt)
        except _PacketError as e:
            self.fail(event, "error handling packet: %s" % e)

    def _socket_for(self, pkt, direction):
        """find_or_create_socket_for_script_packet."""
        s = self.sock
        if pkt.proto == IPPROTO_TCP:
            if direction == "<" and (s is None or s.state == PASSIVE_LISTENING):
                child = SocketState()
                child.state = PASSIVE_PACKET_RECEIVED
                child.local_ip = inet_aton(self.config.local_ip)
                child.local_port = s.local_port if s is not None else self.config.bind_port
                child.remote_ip = inet_aton(self.config.remote_ip)
                child.remote_port = REMOTE_PORT
                child.script_remote_isn = child.live_remote_isn = pkt.seq
                child.listener_fd = s.live_fd if s is not None else None
                self.sock = child
                return child
            if direction == ">" and pkt.has("S") and not pkt.has(".") and s is not None and \
                    s.state == ACTIVE_CONNECTING:
                s.state = ACTIVE_SYN_SENT
                s.script_local_isn = pkt.seq
                return s
        if s is not None:
            return s
        raise _PacketError("no matching socket for script packet")

    def do_inbound(self, event, pkt):
        s = self._socket_for(pkt, "<")
        if pkt.proto == IPPROTO_TCP:
            if s.state == PASSIVE_SYNACK_SENT and pkt.has("."):
                s.state = PASSIVE_SYNACK_ACKED
            elif s.state == ACTIVE_SYN_SENT and pkt.has("S") and pkt.has("."):
                s.state = ACTIVE_SYN_ACKED
                s.script_remote_isn = s.live_remote_isn = pkt.seq
            ack_off = s.live_local_isn - s.script_local_isn
            opts = []
            for kind, val in pkt.options:
                if kind == TCPOPT_SACK:
                    val = [((a + ack_off) & 0xFFFFFFFF, (b + ack_off) & 0xFFFFFFFF)  # noqa: PLW2901
                           for a, b in val]
                elif kind == TCPOPT_TIMESTAMP:
                    val = (val[0], self._map_ecr(s, val[1]))  # noqa: PLW2901
                opts.append((kind, val))
            ack = (pkt.ack + ack_off) if pkt.ack is not None else 0
            raw = build_tcp(s.remote_ip, s.local_ip, s.remote_port, s.local_port,
                            pkt.seq + s.live_remote_isn - s.script_remote_isn, ack, pkt.flags,
                            pkt.win, pkt.urg, encode_tcp_options(opts),
                            bytes(pkt.payload_len))
        elif pkt.proto == IPPROTO_UDP:
            raw = build_udp(s.remote_ip, s.local_ip, s.remote_port, s.local_port,
                            bytes(pkt.udp_len))
        else:
            raw = self._icmp_packet(s, pkt.icmp)
        self.inject(raw, event)

    def _icmp_packet(self, s, spec):
        """An ICMP error from the remote side quoting a packet the kernel sent
        (map_inbound_icmp_packet: the quoted TCP sequence is mapped to live)."""
        import struct as _struct
        rest = _struct.pack("!HH", 0, spec.mtu) if spec.mtu else bytes(4)
        quoted = b""
        if spec.echo_proto == IPPROTO_TCP:
            seq = (spec.echo_seq + s.live_local_isn - s.script_local_isn) & 0xFFFFFFFF
            inner = build_tcp(s.local_ip, s.remote_ip, s.local_port, s.remote_port, seq, 0,
                              FLAG_BITS["."], 0, 0, b"", bytes(spec.echo_len))
            quoted = inner[:28]
        elif spec.echo_proto == IPPROTO_UDP:
            inner = build_udp(s.local_ip, s.remote_ip, s.local_port, s.remote_port,
                              bytes(spec.echo_len))
            quoted = inner[:28]
        return build_icmp(s.remote_ip, s.local_ip, spec.type, spec.code, rest, quoted)

    def _map_ecr(self, s, script_ecr):
        if script_ecr in s.ts_val_map:
            return s.ts_val_map[script_ecr]
        if s.found_first_ts:
            return (s.first_actual_ts_val + script_ecr - s.first_script_ts_val) & 0xFFFFFFFF
        return script_ecr

    def inject(self, raw, event=None):
        if self.config.verbose and event is not None:
            self.config.out("inbound injected packet: %9.6f %s" % (
                self.now_usecs() / 1e6, event.text[1:].strip()))
        tid = kernel_entry(self.net, self.dev.rx_cpu, tun_get_user, self.dev, raw)
        if self.config.trace and event is not None:
            self.trace_lines.append((tid, event, "<", event.text[1:].strip()))
        self.settle()

    def _live_match(self, s, lp):
        """find_socket_for_live_packet / find_connect_for_live_packet."""
        if lp.proto not in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP):
            return False
        if lp.proto == IPPROTO_ICMP:
            return True
        if s.protocol != lp.proto:
            return False
        if s.local_port and (lp.saddr, lp.sport, lp.daddr, lp.dport) == (
                s.local_ip, s.local_port, s.remote_ip, s.remote_port):
            return True
        if lp.proto == IPPROTO_TCP and s.state == ACTIVE_SYN_SENT and \
                lp.flags & FLAG_BITS["S"] and not lp.flags & FLAG_BITS["."] and \
                (lp.daddr, lp.dport) == (s.remote_ip, s.remote_port):
            s.local_ip, s.local_port = lp.saddr, lp.sport
            s.live_local_isn = lp.seq
            return True
        if lp.proto == IPPROTO_UDP and s.state == ACTIVE_CONNECTING and \
                (lp.daddr, lp.dport) == (s.remote_ip, s.remote_port):
            s.local_ip, s.local_port = lp.saddr, lp.sport
            return True
        return False

    def sniff(self, event, s):
        """The next outbound packet of the socket under test: (LivePacket, usecs)."""
        expected_end = event.abs_end if event.abs_end is not None else event.abs_time
        horizon = max(expected_end, self.now_usecs()) + self.config.tolerance_usecs + \
            int(SNIFF_HORIZON * 1e6)

        def found():
            q = self.port.queue
            while q:
                raw, t, tid = q[0]
                try:
                    lp = LivePacket(raw)
                except (ValueError, IndexError):
                    q.pop(0)
                    continue
                if self._live_match(s, lp):
                    return True
                q.pop(0)
            return False
        if not self.advance_to(horizon, until=found):
            raise _PacketError(
                "timing error: expected outbound packet at %.6f sec but none was sent by "
                "%.6f sec" % (event.abs_time / 1e6, horizon / 1e6))
        raw, t, tid = self.port.queue.pop(0)
        lp = LivePacket(raw)
        usecs = int(round((t - self.live_start) * 1e6))
        if s.state == PASSIVE_PACKET_RECEIVED and lp.proto == IPPROTO_TCP and \
                lp.flags & FLAG_BITS["S"] and lp.flags & FLAG_BITS["."]:
            s.state = PASSIVE_SYNACK_SENT       # the kernel's SYN-ACK: its ISN is the live one
            s.live_local_isn = lp.seq
        if self.config.trace or self.config.verbose:
            text = _script_space(s, lp)
            if self.config.verbose:
                self.config.out("outbound sniffed packet: %9.6f %s" % (usecs / 1e6, text))
            if self.config.trace:
                self.trace_lines.append((tid, event, ">", text))
        return lp, usecs

    def do_outbound(self, event, pkt):
        s = self._socket_for(pkt, ">")
        if s.state == PASSIVE_PACKET_RECEIVED and pkt.has("S") and pkt.has("."):
            s.script_local_isn = pkt.seq
        lp, t = self.sniff(event, s)
        from .verify import verify_outbound
        err = verify_outbound(self, s, pkt, lp, event, t)
        if err:
            raise _PacketError(err)

    # ------------------------------------------------------------ commands and code
    def run_command(self, event):
        from .commands import run_command
        run_command(self, event)

    def run_code(self, event):
        from .code import run_code
        run_code(self, event)

    # ------------------------------------------------------------ --trace
    def flush_trace(self):
        if not self.config.trace or self.net.tracer is None:
            return
        from .trace import print_trace
        print_trace(self)


class _PacketError(Exception):
    pass


def _script_space(s, lp):
    """A live packet as the script would write it (sequence numbers relative)."""
    from .packet import packet_to_string
    plen = len(lp.payload)
    if lp.proto != IPPROTO_TCP:
        return packet_to_string(lp.proto, 0, 0, 0, plen, 0, None, [], udp_len=plen)
    seq = (lp.seq - s.live_local_isn + s.script_local_isn) & 0xFFFFFFFF
    ack = (lp.ack - s.live_remote_isn + s.script_remote_isn) & 0xFFFFFFFF
    return packet_to_string(lp.proto, lp.flags, seq, seq + plen, plen, ack, lp.win, lp.options)


def _anchored(event):
    """Consecutive relative inbound packets are anchored to each other's times."""
    return event.kind == "packet" and event.body.direction == "<"


def _oops_message(e):
    return "kernel oops: %s" % e


def run_script(path, config=None, text=None):
    """Run one script file; None on success, else the failure message (one line first)."""
    config = config or Config()
    if text is None:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as e:
            return "%s: %s" % (path, e.strerror or e)
    try:
        options, events = parse_script(text, os.path.basename(path))
    except ParseError as e:
        return str(e)
    if not events:
        return "%s: no events in script" % os.path.basename(path)
    cfg = Config()
    cfg.__dict__.update(config.__dict__)
    for name, value, line in options:
        try:
            cfg.set_option(name, value)
        except ValueError as e:
            return "%s:%d: %s" % (os.path.basename(path), line, e)
    try:
        runner = Runner(path, events, cfg)
    except KernelError as e:
        return "%s: cannot set up tun0 (local %s, remote %s via %s): %s" % (
            os.path.basename(path), cfg.local_ip, cfg.remote_ip, cfg.gateway_ip,
            e.strerror or e)
    try:
        runner.run()
    except ScriptFailure as e:
        runner.flush_trace()
        return str(e)
    except KernelOops as e:
        ev = runner.event
        return "%s:%d: %s" % (runner.name, ev.line if ev else 0, _oops_message(e))
    except (ValueError, TypeError, OverflowError, KernelError, struct.error) as e:
        # A value the script gave that the call cannot take (a negative length...):
        # one line naming the script line, never a traceback.
        ev = runner.event
        return "%s:%d: runtime error: %s" % (runner.name, ev.line if ev else 0, e)
    return None


__all__ = ["Config", "ScriptFailure", "run_script", "IPPROTO_ICMP"]
