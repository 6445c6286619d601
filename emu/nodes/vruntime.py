"""A node in a virtual-time lab: one thread, stepped by the lab's timekeeper.

The real-time runtime (runtime.py) runs its emulated CPUs, its NIC and its
system calls on free threads that interleave as the host schedules them: a
run cannot be replayed. Here the same kernel, CPUs and softnet_data are
driven by one thread, in an order fixed by the runtime, and only inside a
step the timekeeper (vclock.py) gives:

    step(T, expect):
      1. the wires, by name: exactly `expect` messages each (waited for), the
         frames into the device as the NIC thread would put them
      2. until nothing is left at T: timers due, softirqs CPU by CPU, the
         system calls that had arrived before the step (by task key, then in
         order), parked calls woken or out of time
      3. the frames out (one wire message per port), the replies out
      4. report: messages per wire, the next event, the programs held

Between steps the thread serves control requests (as a machine's
management plane would) and notes system calls arriving: they run in the
next step, never at the instant they happen to arrive. Programs run between
steps, and a program between two calls holds the lab's time (vclock.py).
"""
import logging
import os
import select
import threading

import msgpack
import zmq

from ..kernel.core.entry import KernelOops
from ..kernel.core.napi import do_softirq
from ..kernel.drivers.veth import veth_hw_rx
from ..kernel.drivers.wirenic import wirenic_hw_next_event
from ..wire import zwire
from .. import sysproto as P
from . import sysframes
from .syscalls import BadFrame
from .runtime import MALLOC, NodeRuntime, tune_malloc
from .vclock import ns_of

log = logging.getLogger("emu.node")

EOB = P.REP.pack(P.REP_LEN, P.R_EOB, 0, 0, 0)


def _turns(conn):
    """A program's connection whose threads take turns (client/vsched.py)."""
    key = conn.task.key
    return type(key) is str and key.startswith("vt")

WIRE_WAIT = 30.0         # seconds a step waits for a message its peer has sent
INPUT_WAIT = 10.0        # seconds a step waits for the rest of a call being written


class VirtualRuntime(NodeRuntime):
    """NodeRuntime with the lab's time and one deterministic thread."""

    def __init__(self, *args, vclock=None, **kwargs):
        # Unbounded wire queues: every message sent is received, so that the
        # timekeeper's counts hold (a full queue would drop by host timing).
        zwire.SNDHWM = 0
        super().__init__(*args, **kwargs)
        self.vclock_ep = vclock
        self.t_ns = 0
        self.vnow = 0.0
        self.net.clock = self._vnow
        sysframes.clock = self._vnow     # call deadlines: Park's, and the server's
        self.net.need_resched = lambda: False
        self.stepping = False
        self.vt_input: list = []     # connections with calls for the next step
        self.last_report = None
        # Programs' connections (task keys "vt<ID>-", their threads taking
        # turns: client/vsched.py): what they wrote, read as it comes; the
        # part up to their last F_IDLE/OP_IDLE frame runs in the next step.
        self.vt_buf: dict = {}       # conn -> bytearray of frames not run yet
        self.vt_scan: dict = {}      # conn -> how far vt_buf was looked at
        self.vt_cut: dict = {}       # conn -> end of the last frame before it waited
        self.vt_eof: set = set()     # conns whose program closed its end
        self.vt_idle: set = set()    # conns whose program waits (no reply since it said so)
        self.vt_replied: set = set() # conns answered in this step

    def _vnow(self):
        return self.vnow

    def _epoch_open(self):
        """No send credits: every call waits for its reply, so a program is
        always either running or waiting in exactly one call."""
        self.epoch_map = None

    def run(self):
        if not MALLOC["tuned"]:
            MALLOC["tuned"] = tune_malloc()
        self.threads = []
        self.user_tid = threading.get_ident()
        ctl, listener = self._bind_endpoints()
        clk = self.ctx.socket(zmq.DEALER)
        clk.setsockopt(zmq.LINGER, 0)
        clk.setsockopt(zmq.IDENTITY, self.name.encode())
        clk.connect(self.vclock_ep)
        self.clk = clk
        poller = zmq.Poller()
        for s in (ctl, listener.fileno(), clk):
            poller.register(s, zmq.POLLIN)
        if self.lifeline_fd is not None:
            poller.register(self.lifeline_fd, zmq.POLLIN)
        self.poller = poller
        self.parks = []
        self._report("hello")
        if self.on_ready is not None:
            self.on_ready()
        try:
            while self.running:
                try:
                    self._vt_pass(ctl, listener, clk)
                except Exception:        # the node must never die of a client
                    log.exception("virtual runtime")
        finally:
            ctl.close(linger=500)
            listener.close()
            clk.close(0)

    def _vt_pass(self, ctl, listener, clk):
        for what, ev in self.poller.poll():
            if what is ctl:
                self._drain_ctl(ctl)
            elif what is clk:
                while True:
                    try:
                        msg = msgpack.unpackb(clk.recv(zmq.NOBLOCK), raw=False)
                    except zmq.Again:
                        break
                    if msg.get("op") == "step":
                        self._step(msg)
                    elif msg.get("op") == "time":
                        self._set_time(msg["t"])
            elif what == listener.fileno():
                self._accept(listener)
            elif what == self.lifeline_fd:
                os._exit(3)          # the orchestrator is gone: nothing outlives the lab
            else:
                conn = self.conns.get(what)
                if conn is not None and ev & zmq.POLLOUT:
                    self._flush_conn(conn)
                if conn is None or not ev & zmq.POLLIN or conn in self.vt_input:
                    continue
                if _turns(conn):
                    self._vt_gather(conn)
                elif conn.task.key is None:
                    # A new client names its task first (and waits for the
                    # answer): that touches no kernel state and is answered at
                    # once, so that its calls can be told apart by program.
                    self._conn_readable(conn)
                else:
                    # A call (or the end of the program): for the next step.
                    self.vt_input.append(conn)
                    self._poll_input(conn, False)
        if self.out_conns:
            self._flush_out()
        self._report("state")

    def _flush_conn(self, conn):
        try:
            super()._flush_conn(conn)
        except KeyError:
            # Its input waits for a step (not polled): poll for what it may write.
            conn.want_out = bool(conn.out)
            self._poll_input(conn, conn not in self.vt_input and conn not in self.vt_eof)

    def _out_now(self, conn, frame):
        # Every reply leaves at the end of its step, with the batch it belongs to.
        self._out(conn, frame)

    def _out(self, conn, frame):
        if self.stepping and _turns(conn):
            self.vt_replied.add(conn)     # its batch ends with this step (R_EOB)
        super()._out(conn, frame)

    # ------------------------------------------------------------- programs
    def _vt_gather(self, conn):
        """Read what a program wrote; note where its last idle frame ends.
        OP_IDLE frames are taken out and F_IDLE bits cleared here: the
        kernel's reader (sysframes.py) never sees them."""
        buf = self.vt_buf.get(conn)
        if buf is None:
            buf = self.vt_buf[conn] = bytearray()
        while True:
            try:
                data = conn.sock.recv(262144)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                self.vt_eof.add(conn)
                self._poll_input(conn, False)
                break
            buf += data
        off = self.vt_scan.get(conn, 0)
        while len(buf) - off >= P.REQ_LEN:
            flen, op, flags = P.REQ.unpack_from(buf, off)[:3]
            if flen < P.REQ_LEN or flen > P.MAX_FRAME:
                off = len(buf)   # garbage: the kernel's reader drops the task
                self.vt_cut[conn] = off
                break
            if len(buf) - off < flen:
                break
            if op == P.OP_IDLE:
                del buf[off:off + flen]
                self.vt_cut[conn] = off
                continue
            if flags & P.F_IDLE:
                buf[off + 5] = flags & ~P.F_IDLE
                self.vt_cut[conn] = off + flen
            off += flen
        self.vt_scan[conn] = off

    def _vt_take(self, conn):
        """In a step: run what the program wrote up to its last idle frame."""
        buf = self.vt_buf.get(conn)
        cut = self.vt_cut.pop(conn, 0)     # (0: an OP_IDLE came before any call)
        self.vt_idle.add(conn)
        if conn in self.vt_eof:
            cut = len(buf) if buf is not None else 0
        if cut:
            data = bytes(buf[:cut])  # type: ignore[index]
            del buf[:cut]  # type: ignore[union-attr]
            self.vt_scan[conn] -= cut
            self.defer_flush = True
            try:
                self._frames(conn, data)
            except BadFrame:
                self._task_gone(conn)
            finally:
                self.defer_flush = False
        if conn in self.vt_eof and not conn.dead:
            self._task_gone(conn)
        if conn.dead:
            for d in (self.vt_buf, self.vt_scan, self.vt_cut):
                d.pop(conn, None)
            self.vt_eof.discard(conn)
            self.vt_idle.discard(conn)

    def _poll_input(self, conn, on):
        fd = conn.sock.fileno()
        mask = (zmq.POLLIN if on else 0) | (zmq.POLLOUT if conn.want_out else 0)
        try:
            if mask:
                self.poller.modify(fd, mask)
            else:
                self.poller.unregister(fd)
        except KeyError:
            if mask:
                self.poller.register(fd, mask)

    # ------------------------------------------------------------- a step
    def _set_time(self, t_ns):
        self.t_ns = t_ns
        self.vnow = t_ns / 1e9

    def _step(self, msg):
        self._set_time(msg["t"])
        self.stepping = True
        try:
            self._step_wires(msg.get("expect") or {})
            turns = [c for c in self.vt_buf if c in self.vt_cut or c in self.vt_eof]
            inputs = sorted(self.vt_input + turns, key=lambda c: (str(c.task.key), c.task.tid))
            self.vt_input = []
            self._settle()
            for conn in inputs:
                if conn.dead:
                    continue
                if _turns(conn):
                    self._vt_take(conn)
                else:
                    self._poll_input(conn, True)
                    self._read_whole(conn)
                self._settle()
            self._settle()
            self._flush_wires()
            replied, self.vt_replied = self.vt_replied, set()
            for conn in sorted(replied, key=lambda c: c.task.tid):
                if not conn.dead:
                    # The batch's end: the program runs again (client/vsched.py).
                    super()._out(conn, EOB)
                    self.vt_idle.discard(conn)
            if self.out_conns:
                self._flush_out()
        finally:
            self.stepping = False
        self._report("done", msg.get("round"))

    def _step_wires(self, expect):
        for ifname in sorted(expect):
            port = self.ports.get(ifname)
            if port is None:
                continue
            while port.rx_msgs < expect[ifname]:
                if not port.rx.poll(int(WIRE_WAIT * 1000)):
                    log.error("virtual time: %s: message %d never came; the run may not replay",
                              ifname, port.rx_msgs + 1)
                    port.rx_msgs = expect[ifname]
                    break
                msg = port.rx.recv(copy=False).buffer
                self._deliver(port, msg)

    def _deliver(self, port, msg):
        dev = port.dev
        items = list(self._wire_frames(port, [msg]))
        if dev is None:
            return
        if dev.kind == "wirenic":
            state = [0]
            while state[0] < len(items):
                before = state[0]
                self._irq(0, self._wirenic_rx_work, dev, items, state)
                self._softirqs()
                if state[0] == before:
                    dev.stats.rx_missed_errors += len(items) - before
                    break
            return
        # Processing takes no virtual time: the ring is drained whenever it
        # fills (a host's speed must not decide which frames are missed).
        priv = dev.priv
        for item in items:
            if len(priv.rx_ring) >= priv.rx_ring_size:
                self._drain_ring(dev, port)
            veth_hw_rx(dev, item)
        self._drain_ring(dev, port)

    def _drain_ring(self, dev, port):
        for _ in range(10000):
            self._irq(dev.rx_cpu, self._veth_irq, dev, port)
            self._softirqs()
            if not dev.priv.rx_ring:
                return

    def _read_whole(self, conn):
        """Run what the connection brought, waiting for the rest of a call
        that is being written (its timing must not decide the round it runs in)."""
        self._conn_readable(conn)
        while not conn.dead and (conn.big is not None or conn.inbuf):
            r, _, _ = select.select([conn.sock], [], [], INPUT_WAIT)
            if not r:
                log.error("virtual time: a call was not finished in %.0f s", INPUT_WAIT)
                return
            self._conn_readable(conn)

    def _softirqs(self):
        """Every CPU's pending softirqs, CPU by CPU, until none is left."""
        net = self.net
        for _ in range(10000):
            busy = False
            for cpu, sd in enumerate(net.cpus):
                if sd.pending:
                    busy = True
                    try:
                        self.enter(cpu, do_softirq, net, cpu)
                    except KernelOops:
                        pass
            if not busy:
                return

    def _timers(self):
        nt = self.net.next_timer()
        if nt is not None and ns_of(nt) <= self.t_ns:
            # Due at this nanosecond: run it even when the float is a hair later.
            self.net.run_timers(max(self.vnow, nt))
            return True
        return False

    def _settle(self):
        """Everything due at this instant: timers, NIC events, softirqs, parked calls."""
        for _ in range(100000):
            did = False
            try:
                did = self.enter(0, self._timers)
            except KernelOops:
                pass
            nics = [p.dev for p in self.ports.values() if p.dev is not None and
                    p.dev.kind == "wirenic" and self._nic_due(p.dev)]
            if nics:
                self._irq(0, self._wirenic_irqs, nics)
                did = True
            self._softirqs()
            if self.ready_parks:
                self._run_ready_parks()
                did = True
            if self.parks and self._park_due() is not None and self._park_due() <= self.t_ns:
                self._expire_parks()
                did = True
            if not did:
                return

    def _nic_due(self, dev):
        t = wirenic_hw_next_event(dev)
        return t is not None and ns_of(t) <= self.t_ns

    def _park_due(self, watchers=True):
        """The nearest deadline of a parked call; watchers=False leaves out the
        calls of watchers (tcpdump: "pv-" task keys), whose timeouts do not move
        the lab's time (they expire at the first step at or after them)."""
        ds = [d for p in self.parks for d in (p.deadline, p.client_deadline) if d is not None
              and (watchers or not str(p.ident.task.key or "").startswith("pv-"))]
        return ns_of(min(ds)) if ds else None

    # ------------------------------------------------------------- reports
    def _next_event(self):
        ts = []
        nt = self.net.next_timer()
        if nt is not None:
            ts.append(ns_of(nt))
        pd = self._park_due(watchers=False)
        if pd is not None:
            ts.append(pd)
        for p in self.ports.values():
            if p.dev is not None and p.dev.kind == "wirenic":
                t = wirenic_hw_next_event(p.dev)
                if t is not None:
                    ts.append(ns_of(t))
        return max(min(ts), self.t_ns) if ts else None

    def _held(self):
        """The registered programs (vt<ID>-... task keys) waiting here: every
        connection of theirs said it waits (its last frame, and no reply since)."""
        state: dict = {}
        for conn in self.conns.values():
            if not _turns(conn):
                continue
            try:
                pid = int(str(conn.task.key)[2:].split("-", 1)[0])
            except ValueError:
                continue
            waits = conn in self.vt_idle or conn in self.vt_cut or conn in self.vt_eof
            state[pid] = state.get(pid, True) and waits
        return sorted(pid for pid, waits in state.items() if waits)

    def _report(self, op, rnd=None):
        with self.lock:
            state = {
                "tx": {n: p.tx_msgs for n, p in self.ports.items()},
                "rx": {n: p.rx_msgs for n, p in self.ports.items()},
                "next": self._next_event(),
                "want": bool(self.vt_input or self.ready_parks or self.vt_eof or self.vt_cut),
                "blocked": self._held(),
                # Who waits on the lab: not a watcher's calls (tcpdump: "pv-" keys).
                "parked": sum(1 for p in self.parks
                              if not str(p.ident.task.key or "").startswith("pv-")),
                # ... and those of clients that are not programs of the lab (the
                # test process's sockets): time keeps the host's pace for them.
                "ext": sum(1 for p in self.parks
                           if not str(p.ident.task.key or "").startswith(("pv-", "vt")))}
        if op == "state" and state == self.last_report:
            return
        self.last_report = state
        msg = dict(state, op=op)
        if rnd is not None:
            msg["round"] = rnd
        self.clk.send(msgpack.packb(msg))
