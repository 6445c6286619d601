"""The node runtime: the threads, clock and endpoints around one kernel.

Threads of a node process:
  cpuN      one per emulated CPU: sleeps until its softirqs are raised (the
            IPI is an Event), then runs do_softirq; cpu0 also runs timers.
  nic       the "hardware": reads every wire and delivers frames to the
            device: a veth gets veth_forward_skb -> netif_rx on its rx_cpu;
            a wirenic (a `phys` link) gets wirenic_hw_rx (RSS into the
            queue's RX ring) and wirenic_hw_irq (that queue's interrupt on the
            CPU its IRQ is affine to: napi_schedule wakes that CPU, whose
            NET_RX runs wirenic_poll). Batches, then one wake-up per CPU
            (nicrx.py).
  user      the control and syscall endpoints (ZeroMQ ROUTER sockets).

Every entry into the kernel goes through one function, kernel_entry
(kernel/core/entry.py): it takes the kernel lock, sets the current CPU, runs,
does the exit work (kernel_exit below) and turns an unexpected exception into
an oops: logged, counted, EIO or an error reply to the caller, and the node
keeps running. Nothing else calls kernel code from a thread.

The user thread (control and system calls) is served ahead of wire traffic:
while it waits for the kernel, the NIC and CPU threads do not start another
entry (need_resched), so a flood cannot starve `emu exec` or the sockets.

Emulation note: every entry into the kernel holds one lock (a big kernel
lock). The GIL serialises Python threads anyway; the lock makes each kernel
entry atomic, which Linux gets from its finer locks.
"""
import ctypes
import logging
import mmap
import os
import socket as _socket
import sys
import threading
import time
from collections import deque

import msgpack
import zmq

from ..kernel.core.rtnl_policy import (
    FLAG, MAC, NESTED, OpPolicy, Policy, ifname, one_of, optional, rtnl_validate, string, u32,
)

from ..kernel.core import rtnetlink
from ..kernel.core.dev import KernelError
from ..kernel.core.entry import KernelOops, kernel_entry
from ..kernel.core.napi import do_softirq, local_bh_enable
from ..kernel.drivers.wirenic import (
    wirenic_hw_irq, wirenic_hw_tx,
)
from ..kernel.init import start_kernel
from ..wire.curve import (
    ZapHandler, curve_server, is_key, tcp_endpoint,
)
from .. import sysproto
from .syscalls import EIO, Park, SyscallServer
from .nicrx import NicRx
from .upoll import UserPoller
from .wires import WireOps

log = logging.getLogger("emu.node")

_POLLIN, _POLLOUT = int(zmq.POLLIN), int(zmq.POLLOUT)    # plain ints: enum Flag ops are slow
SWITCH_INTERVAL = 0.001  # seconds (sys.setswitchinterval) in a node process
# glibc malloc (mallopt): a node allocates and frees 64 KiB frames, 256 KiB wire
# batches and 1 MiB system call payloads all the time. By default blocks above
# 128 KiB come from mmap, and the heaps of threads shrink (madvise) as soon as
# their free top passes the trim threshold: each such buffer then costs its
# pages' faults and zeroing again (a fifth of a bridge's CPU in a TCP transfer).
# These keep a node's heap at its high-water mark instead (a few MiB).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MALLOC_MMAP_THRESHOLD = 16 << 20
MALLOC_TRIM_THRESHOLD = 64 << 20
# After it has served a task's call, the user thread polls without sleeping
# for this long (seconds) before it waits in epoll_wait: a program making calls
# back to back sends the next one a few microseconds after its reply, and a
# sleeping thread costs a wake-up each time (Linux's net.core.busy_poll is the
# same trade for sockets). 0 turns it off.
USER_BUSY_POLL = 30e-6


class BootError(Exception):
    """A boot op the node was forked with failed: the node exits, and its log's
    last line (this message) is what the orchestrator reports."""


def _endpoint_check(v, bind=False):
    """An ipc:// path, or tcp://A.B.C.D:PORT (only with the lab's CURVE keys:
    wire_attach checks that; a bind may ask for any port, :*)."""
    if isinstance(v, str) and len(v) <= 200 and (
            v.startswith("ipc://") or tcp_endpoint(v, bind) is not None):
        return v
    raise ValueError("an ipc:// or tcp://A.B.C.D:PORT endpoint")


def _key_check(v):
    if not is_key(v):
        raise ValueError("a Z85 CURVE key (40 characters)")
    return v


_ENDPOINT = Policy(_endpoint_check, "an ipc:// or tcp://A.B.C.D:PORT endpoint")
_BIND = Policy(lambda v: _endpoint_check(v, bind=True), "an ipc:// or tcp://A.B.C.D:PORT|* endpoint")
_KEY = Policy(_key_check, "a Z85 CURVE key (40 characters)")

# The runtime's own control ops (the kernel's are in rtnl_policy.py).
RUNTIME_POLICY = {
    "ping": OpPolicy(),
    "info": OpPolicy(),
    "oops": OpPolicy(),
    "shutdown": OpPolicy(),
    "sock_owners": OpPolicy(),
    "wire_carrier": OpPolicy({"ifname": ifname(), "up": FLAG}),
    "wire_filter": OpPolicy({"ifname": ifname(), "spec": NESTED}),
    "wire_attach": OpPolicy({"ifname": ifname(), "rx": _BIND, "tx": optional(_ENDPOINT),
                             "mac": optional(MAC), "mtu": optional(u32(68, 65535)),
                             "peer": string(64), "kind": one_of("veth", "phys"),
                             "queues": u32(1, 64), "curve_public": optional(_KEY),
                             "curve_secret": optional(_KEY)}),
    "wire_connect": OpPolicy({"ifname": ifname(), "tx": _ENDPOINT}),
    "tap_attach": OpPolicy({"ifname": ifname(), "tap": ifname(), "netns": optional(string(64)),
                            "mac": optional(MAC), "mtu": optional(u32(68, 65535))}),
}


MALLOC = {"tuned": False}   # set once in the fork server: its children inherit the settings


def task_pid(key):
    """The pid in a client's task key ("PID-random", "vt<ID>-PID-random" for a
    program of a virtual-time lab, "pv-PID-random" for a watcher), or None."""
    for part in str(key or "").split("-")[:3]:
        if part.isdigit():
            return int(part)
    return None


def tune_malloc():
    """Big buffers from a heap that stays (see MALLOC_MMAP_THRESHOLD); False if not glibc."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD))


class Doorbell:
    """What wakes the NIC thread (a new wire, a CURVE handler, shutdown): an
    eventfd in its poller. A ZeroMQ inproc PUSH/PULL pair did this before,
    at about 0.3 MB of each node's own memory (its sockets' and pipe's
    allocations) for a wake-up that carries no data: the NIC thread
    rescans every port when it rings."""

    __slots__ = ("fd",)

    def __init__(self):
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def send(self, _data=b""):
        os.eventfd_write(self.fd, 1)

    def recv(self):
        try:
            os.eventfd_read(self.fd)
        except BlockingIOError:
            pass

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class NodeRuntime(NicRx, WireOps, SyscallServer):
    """One node: its kernel, CPU threads, NIC thread and control endpoint
    (the syscall server is the SyscallServer half, syscalls.py)."""

    def __init__(self, name, kind, ncpus, run_dir, node_id=0, seed=0, net=None):
        self.name = name
        self.kind = kind
        self.run_dir = run_dir
        self.node_id = node_id
        # A forked node's kernel was booted by the fork server (forkserver.py:
        # boot_kernels), before the fork, as a machine's kernel is loaded
        # before it runs: the same start_kernel, for this node alone.
        self.net = net if net is not None else start_kernel(name, ncpus, clock=time.monotonic,
                                                            seed=seed)
        if kind == "router":
            self.net.sysctl["net.ipv4.ip_forward"] = 1
        self.lock = threading.Lock()
        self.net.kernel_lock = self.lock
        self.net.kernel_exit = self.kernel_exit
        self.urgent = 0                  # user-thread entries waiting (only it writes this)
        self.net.need_resched = self._need_resched
        self.user_tid = None             # the user thread's ident (set in user_loop)
        self.busy_until = 0.0            # the user thread busy-polls until (perf_counter; only it)
        self.cpu_events = [threading.Event() for _ in range(ncpus)]
        self.net.wake_cpu = self._ipi
        self.timer_deadline = float("inf")
        self.next_timer_at = 0.0         # the kernel's next timer, as of its last exit
        self.ctx = zmq.Context()
        self.ports = {}                  # ifname -> WirePort
        self.zap = None                  # ZapHandler, with the first tcp (CURVE) wire
        self.curve = None                # the lab's CURVE keys, for a tcp control endpoint
        self.taps = {}                   # ifname -> TapPort (read by their own threads)
        self.dirty = []                  # ports with frames to flush
        self.kicked = []                 # wirenics whose TX doorbell rang
        self.nic_xon = threading.Event() # a paused wirenic has ring room again
        self.running = True
        self.ready_parks: deque[Park] = deque()
        # The syscall server's state (connections, parks, replies) belongs to
        # whoever holds this: the user thread while it serves, or a NIC or CPU
        # thread completing the calls its kernel entry woke (complete_parks).
        self.sys_lock = threading.Lock()
        self.poll_changes = 0
        self.wake_fd = os.eventfd(0, os.EFD_NONBLOCK)
        self.nic_notify_rx = self.nic_notify_tx = Doorbell()
        self.conns = {}                  # fd -> Conn
        self.out_conns = []              # connections with replies to write (user thread)
        self.defer_flush = False         # the user thread runs a batch: it flushes the wires at its end
        # Send credits (syscalls.py), mirrored to epoch_map. It starts from the
        # wall clock, so a restarted node never meets a client's old credit.
        self.net.send_epoch = time.time_ns() // 1000
        self.epoch_seen = 0
        self.epoch_map = None
        self.tasks_by_key = {}           # a client process's key -> its Task
        self.next_tid = 100
        self.started = time.time()
        self.ctl_endpoint = "ipc://%s/%s.ctl" % (run_dir, name)
        self.sys_path = "%s/%s.sys" % (run_dir, name)
        self.lifeline_fd: int | None = None   # reads as closed when the orchestrator is gone
        self.on_ready = None                  # called once the endpoints are bound
        self.boot_ops: list | tuple = ()      # [op, args] served before on_ready (run_node)

    # ------------------------------------------------------------- kernel entry
    def enter(self, cpu, fn, *args, **kwargs):
        """kernel_entry on `cpu`; an oops is logged here and re-raised as KernelOops."""
        try:
            return kernel_entry(self.net, cpu, fn, *args, **kwargs)
        except KernelOops as e:
            log.error("%s", e.text)
            raise

    def enter_user(self, fn, *args, **kwargs):
        """An entry from the user thread: the NIC and CPU threads let it in first."""
        self.urgent += 1
        try:
            return self.enter(0, self._user_entry, fn, args, kwargs)
        finally:
            self.urgent -= 1

    def _user_entry(self, fn, args, kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            local_bh_enable(self.net)

    def _need_resched(self):
        """A system call waits for the kernel (not the one running now)."""
        return self.urgent > 0 and threading.get_ident() != self.user_tid

    def _yield_to_user(self):
        """need_resched: a control or system call waits for the kernel; let it in."""
        for _ in range(200):
            if not self.urgent or not self.running:
                return
            time.sleep(0.0002)

    def _ipi(self, cpu):
        self.cpu_events[cpu].set()

    def _mark_dirty(self, port):
        self.dirty.append(port)

    def _kick(self, dev):
        """wirenic's TX doorbell: its DMA engine runs when the kernel is left."""
        if dev not in self.kicked:
            self.kicked.append(dev)

    def _xon(self, dev):
        self.nic_xon.set()

    def kernel_exit(self):
        """Leaving the kernel: NIC TX DMA, flush batched frames, wake cpu0 for a timer."""
        kicked = self.kicked
        if kicked:
            now = self.net.clock()
            while kicked:
                dev = kicked.pop()
                wirenic_hw_tx(dev, now)
                wirenic_hw_irq(dev, now)      # TX completions interrupt
        dirty = self.dirty
        if not self.defer_flush:
            while dirty:
                dirty.pop().flush()
        epoch = self.net.send_epoch
        if epoch != self.epoch_seen and self.epoch_map is not None:
            self.epoch_seen = epoch
            sysproto.EPOCH.pack_into(self.epoch_map, 0, epoch)
        for i, sd in enumerate(self.net.cpus):
            if sd.pending:
                self.cpu_events[i].set()     # softirqs left pending: ksoftirqd runs them
        nt = self.net.next_timer()
        # Read by cpu0 outside the kernel: a float, written only here, under the lock.
        self.next_timer_at = float("inf") if nt is None else nt
        if nt is not None and nt < self.timer_deadline:
            self.cpu_events[0].set()

    def _flush_wires(self):
        """The end of a user-thread batch: its frames leave, one wire message per port."""
        with self.lock:
            dirty = self.dirty
            while dirty:
                dirty.pop().flush()

    def _bump_epoch(self):
        self.net.send_epoch += 1

    # ------------------------------------------------------------- CPU threads
    def cpu_loop(self, cpu):
        ev = self.cpu_events[cpu]
        net = self.net
        sd = net.cpus[cpu]
        while self.running:
            timeout = None
            if cpu == 0:
                # Any timer armed from here on wakes us (kernel_exit compares
                # against inf); then only a timer earlier than ours does. With
                # no timer, an idle cpu0 sleeps until it is woken.
                self.timer_deadline = float("inf")
                nt = self.timer_deadline = self.next_timer_at
                timeout = None if nt == float("inf") else max(0.0, nt - time.monotonic())
            ev.wait(timeout)
            ev.clear()
            if not self.running:
                break
            if self.urgent:
                self._yield_to_user()
            try:
                self.enter(cpu, self._cpu_work, cpu)
            except KernelOops:
                pass                # logged and counted; this CPU carries on
            if self.ready_parks:
                self.complete_parks()
            if sd.pending:
                ev.set()            # more work left (budget used up): go round again

    def _cpu_work(self, cpu):
        """One round of a CPU thread: timers (cpu0), then the pending softirqs."""
        net = self.net
        if cpu == 0:
            net.run_timers(net.clock())
        do_softirq(net, cpu)

    # ------------------------------------------------------------- NIC thread
    # ------------------------------------------------------------- user thread
    def user_loop(self):
        self.user_tid = threading.get_ident()
        ctl, listener = self._bind_endpoints()
        poller = UserPoller(ctl)         # epoll: a no-op call's poll in 1-2 us, not 3
        poller.register(listener.fileno(), zmq.POLLIN)
        poller.register(self.wake_fd, zmq.POLLIN)
        if self.lifeline_fd is not None:
            poller.register(self.lifeline_fd, zmq.POLLIN)
        self.poller = poller
        self.parks = []
        self._boot_ops()
        if self.on_ready is not None:
            self.on_ready()
        while self.running:
            try:
                self._user_pass(ctl, listener, poller)
            except Exception:        # the user thread must never die of a client
                log.exception("user thread")
                time.sleep(0.01)
        ctl.close(linger=500)     # let the reply to "shutdown" leave first
        listener.close()
        poller.close()

    def _boot_ops(self):
        """The control requests the node was forked with (its ipc wires'
        attach: orchestrator._boot_ops), served as the orchestrator's would be,
        before the node says it is ready. One that fails ends the boot: the
        orchestrator reports the node's exit with this line of its log."""
        for op, args in self.boot_ops:
            try:
                self.control(op, args)
            except Exception as e:
                raise BootError("boot: %s %s: %s" % (op, args, e)) from None
        self.boot_ops = ()

    def _bind_endpoints(self):
        """The control endpoint (ZeroMQ ROUTER) and the syscall listener, bound."""
        ctl = self.ctx.socket(zmq.ROUTER)
        ctl.setsockopt(zmq.LINGER, 0)
        if self.ctl_endpoint.startswith("tcp://"):
            # A node on another machine than its orchestrator: its control
            # endpoint is TCP with the lab's CURVE keys, as its wires are.
            assert self.curve is not None
            if self.zap is None:
                self.zap = ZapHandler(self.ctx, self.curve[0])
                self.nic_notify_tx.send(b"x")
            curve_server(ctl, self.curve, "ctl")
        ctl.bind(self.ctl_endpoint)
        self.ctl_endpoint = ctl.getsockopt_string(zmq.LAST_ENDPOINT)
        # Syscalls arrive on a Unix stream socket: one connection is one task,
        # and its end (the process exited) closes the task's descriptors.
        listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        listener.bind(self.sys_path)
        listener.listen(128)
        listener.setblocking(False)
        self._epoch_open()
        return ctl, listener

    def _user_pass(self, ctl, listener, poller):
        with self.sys_lock:
            timeout = self._next_park_timeout()
        events = None
        if self.busy_until and timeout != 0:
            # busy poll (USER_BUSY_POLL): epoll_wait(0) releases the GIL and the
            # kernel lock is not held, so the node's other threads run meanwhile.
            until, clock = self.busy_until, time.perf_counter
            while not events and clock() < until:
                events = poller.poll(0)
        self.busy_until = 0.0
        if not events:
            events = poller.poll(timeout)
        with self.sys_lock:
            self._user_events(ctl, listener, events)

    def _user_events(self, ctl, listener, events):
        for what, ev in events:
            if what is ctl:
                self._drain_ctl(ctl)
            elif what == listener.fileno():
                self._accept(listener)
            elif what == self.lifeline_fd:
                os._exit(3)          # the orchestrator is gone: nothing outlives the lab
            elif what == self.wake_fd:
                try:
                    os.eventfd_read(self.wake_fd)
                except BlockingIOError:
                    pass
            else:
                conn = self.conns.get(what)
                if conn is not None:
                    if ev & _POLLOUT:
                        self._flush_conn(conn)
                    if ev & _POLLIN and not conn.dead:
                        self._conn_readable(conn)
                        self.busy_until = time.perf_counter() + USER_BUSY_POLL
        self._run_ready_parks()
        self._expire_parks()
        if self.out_conns:
            self._flush_out()

    def _drain_ctl(self, ctl):
        """Every control request waiting on the endpoint, each answered."""
        while True:
            try:
                frames = ctl.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._handle_ctl(ctl, frames)

    def _epoch_open(self):
        """The shared page the send epoch is read from by clients (sysproto.py)."""
        path = sysproto.epoch_path(self.sys_path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.ftruncate(fd, mmap.PAGESIZE)
                self.epoch_map = mmap.mmap(fd, mmap.PAGESIZE)
            finally:
                os.close(fd)
        except OSError:
            log.exception("no send-epoch page: clients wait for every send's reply")
            return
        with self.lock:
            self.epoch_seen = self.net.send_epoch
            sysproto.EPOCH.pack_into(self.epoch_map, 0, self.epoch_seen)

    def _handle_ctl(self, sock, frames):
        ident, payload = frames[0], frames[-1]
        try:
            req = msgpack.unpackb(payload, raw=False)
            if not isinstance(req, dict):
                raise KernelError(22, "a control request is a map")
            result = self.control(req.get("op"), req.get("args") or {})
            reply = {"ok": True, "result": result}
        except KernelError as e:
            reply = {"ok": False, "errno": e.errno, "error": e.strerror}
        except KernelOops as e:
            reply = {"ok": False, "errno": EIO, "error": "kernel oops: %s" % e}
        except Exception as e:       # a bad request never takes the node down
            log.exception("control request failed")
            reply = {"ok": False, "errno": 22, "error": "%s: %s" % (type(e).__name__, e)}
        try:
            data = msgpack.packb(reply, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as e:
            log.exception("unpackable control reply")
            data = msgpack.packb({"ok": False, "errno": EIO, "error": "EIO: %s" % e})
        sock.send_multipart([ident, data])

    def control(self, op, args):
        """One control request: the runtime's own ops, else rtnetlink's; every
        one is checked against its declared policy first."""
        try:
            return self._control(op, args)
        finally:
            # Whatever it changed, a send credit given before it no longer holds.
            self.enter_user(self._bump_epoch)

    def _control(self, op, args):
        pol = RUNTIME_POLICY.get(op) if isinstance(op, str) else None
        if pol is None:
            if op == "trace_start":
                return self.enter_user(rtnetlink.rtnl_rcv, self.net, op, args,
                                       node_id=self.node_id)
            return self.enter_user(rtnetlink.rtnl_rcv, self.net, op, args)
        fn = getattr(self, "op_" + op)
        return fn(**rtnl_validate(op, pol, fn, args))

    def op_ping(self):
        return {"name": self.name, "pid": os.getpid()}

    def op_info(self):
        return {"name": self.name, "kind": self.kind, "pid": os.getpid(),
                "cpus": len(self.net.cpus), "uptime": time.time() - self.started,
                "tasks": len(self.conns), "oops": self.net.oops, "seed": self.net.seed,
                "wires": {n: {"tx_msgs": p.tx_msgs, "tx_dropped": p.tx_dropped,
                              "rx_msgs": p.rx_msgs, "rx_malformed": p.rx_malformed,
                              "carrier": p.carrier, "rx_filtered": p.rx_filtered,
                              "transport": "tcp" if p.curve is not None else "ipc",
                              "rx": p.rx_endpoint, "tx": p.tx_endpoint,
                              "link_up": p.link_up, "auth_failures": self._auth_failures(n, p)}
                          for n, p in list(self.ports.items())}}

    def op_oops(self):
        """The kept oops reports (the last few), oldest first."""
        return {"count": self.net.oops, "reports": list(self.net.oops_log or ())}

    def op_shutdown(self):
        self.running = False
        for ev in self.cpu_events:
            ev.set()
        return {}

    def op_sock_owners(self):
        return self.enter_user(self.sock_owners)

    def sock_owners(self):
        """Which process holds each socket (ss -p): id(sock) -> [pid, fd]."""
        out = {}
        seen = set()
        for conn in list(self.conns.values()):
            task = conn.task
            if id(task) in seen:
                continue
            seen.add(id(task))
            pid = task_pid(task.key)
            for fd, sock in list(task.fds.items()):
                if sock.sk is not None:
                    out[str(id(sock.sk))] = [pid, fd]
        return out

    # ------------------------------------------------------------- lifecycle
    def run(self):
        if not MALLOC["tuned"]:
            MALLOC["tuned"] = tune_malloc()
        prof_dir = os.environ.get("EMU_NODE_PROFILE")
        if prof_dir:
            self._profile_threads(prof_dir)
        # The user thread (system calls) waits for the GIL behind a busy NIC or
        # CPU thread for up to one switch interval: 5 ms by default, longer
        # than the whole call. A shorter one bounds that wait.
        sys.setswitchinterval(SWITCH_INTERVAL)
        threads = [threading.Thread(target=self.cpu_loop, args=(i,), name="cpu%d" % i, daemon=True)
                   for i in range(len(self.net.cpus))]
        threads.append(threading.Thread(target=self.nic_loop, name="nic", daemon=True))
        self.threads = threads
        for t in threads:
            t.start()
        try:
            self.user_loop()
        finally:
            self.running = False
            for ev in self.cpu_events:
                ev.set()
            self.dump_profiles()

    def _profile_threads(self, prof_dir):
        """EMU_NODE_PROFILE=DIR: cProfile every thread of this node; each one's
        table is written to DIR/<node>-<thread>.prof when the node shuts down
        (bench/ uses it to say where a call's or a packet's time goes)."""
        import cProfile
        profs: list = []
        self._prof = (prof_dir, profs)

        def wrap(fn, label):
            def run(*args):
                pr = cProfile.Profile()
                profs.append((label, pr))
                pr.enable()
                try:
                    return fn(*args)
                finally:
                    pr.disable()
            return run
        for name, label in (("cpu_loop", "cpu"), ("nic_loop", "nic"), ("user_loop", "user")):
            setattr(self, name, wrap(getattr(self, name), label))

    def dump_profiles(self):
        prof = getattr(self, "_prof", None)
        if prof is None:
            return
        prof_dir, profs = prof
        for i, (label, pr) in enumerate(profs):
            try:
                pr.dump_stats(os.path.join(prof_dir, "%s-%s%d.prof" % (self.name, label, i)))
            except Exception:
                log.exception("profile of %s", label)

    def close(self, timeout=2.0):
        """After run() returned: join the threads and free ZeroMQ (a node process
        just exits; a runtime hosted in another process, as in tests, must not
        leave a context for the garbage collector to block on)."""
        for t in getattr(self, "threads", ()):
            t.join(timeout)
        for port in list(self.ports.values()):
            port.close()
        self.ctx.destroy(linger=0)
        self.nic_notify_rx.close()
