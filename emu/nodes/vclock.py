"""Virtual time for a lab: the timekeeper process, its page and its protocol.

`emu up --clock virtual` starts one timekeeper per lab. Every node of the lab
runs a VirtualRuntime (vruntime.py): one thread, no clock of its own, work
only when the timekeeper says "step". Time is conservative and lock-step
(bulk-synchronous rounds):

* Time stands while anything can still act at the current instant: a node
  stepping, a frame in flight on a wire, a system call not yet run, or a
  registered program running (between two of its system calls).
* A round: the nodes with work get `step(T, expect)`, expect being how many
  wire messages each of their wires has carried so far. A node reads exactly
  those, runs them in a fixed order (wires by name, timers due, softirqs CPU
  by CPU, the system calls that had arrived before the round, by task) and
  reports: messages sent per wire, its next event, the programs it holds.
* When nothing is left at T and every registered program waits in a system
  call, T jumps to the earliest next event in the lab (kernel timers, netem
  release times, sleeps and timeouts of parked calls, NIC interrupts).

Which rounds run, and what each node reads in each, depends only on what
the nodes report, never on when a report arrives: the same inputs and seed
replay the same packets.

Who waits on the lab: a registered program (a launcher holds a connection
to clock.sock for it: `emu exec`) or any call parked in a node. With
neither, the lab is paused: an idle lab does not race through its timers,
and a program started later starts where the last one left time.

The page (<run_dir>/clock.page, PAGE) holds the lab's time for programs to
read without a round trip: it changes only while no program runs.
"""
import json
import logging
import mmap
import os
import select
import socket
import struct
import sys
import time

import msgpack
import zmq

log = logging.getLogger("emu.vclock")

# now_ns (virtual monotonic), epoch_ns (the wall clock at virtual 0),
# wall_start_ns (the host's time.time_ns() when the clock started), rounds, jumps.
PAGE = struct.Struct("<qqqqq")
DEFAULT_START = 946684800
DEBUG = bool(os.environ.get("EMU_VCLOCK_DEBUG"))      # 2000-01-01T00:00:00Z: the wall clock at virtual time 0


def page_path(run_dir):
    return os.path.join(run_dir, "clock.page")


def ctl_endpoint(run_dir):
    return "ipc://%s/clock.ctl" % run_dir


def sock_path(run_dir):
    return os.path.join(run_dir, "clock.sock")


def ns_of(t):
    """A kernel deadline (float seconds) as the first nanosecond at or after it."""
    ns = int(t * 1e9)
    return ns if ns / 1e9 >= t else ns + 1


class ClockPage:
    """The shared page: the timekeeper writes it, nodes' programs read it."""

    def __init__(self, path, create=False, epoch_ns=0):
        flags = os.O_RDWR | os.O_CREAT if create else os.O_RDONLY
        fd = os.open(path, flags, 0o644)
        try:
            if create:
                os.ftruncate(fd, mmap.PAGESIZE)
            self.map = mmap.mmap(fd, mmap.PAGESIZE,
                                 access=mmap.ACCESS_WRITE if create else mmap.ACCESS_READ)
        finally:
            os.close(fd)
        if create:
            PAGE.pack_into(self.map, 0, 0, epoch_ns, time.time_ns(), 0, 0)

    def read(self):
        """(now_ns, epoch_ns, wall_start_ns, rounds, jumps)."""
        return PAGE.unpack_from(self.map, 0)

    def now_ns(self):
        return struct.unpack_from("<q", self.map, 0)[0]

    def write(self, now_ns, rounds, jumps):
        _, epoch, wall, _, _ = self.read()
        PAGE.pack_into(self.map, 0, now_ns, epoch, wall, rounds, jumps)


def read_page(run_dir):
    """The lab's virtual time for `emu status`: {now, epoch, ratio, rounds, jumps} or None."""
    try:
        page = ClockPage(page_path(run_dir))
    except OSError:
        return None
    now, epoch, wall, rounds, jumps = page.read()
    page.map.close()
    elapsed = max(1e-9, (time.time_ns() - wall) / 1e9)
    return {"now": now / 1e9, "epoch": epoch / 1e9, "ratio": (now / 1e9) / elapsed,
            "rounds": rounds, "jumps": jumps}


class NodeView:
    """What the timekeeper knows of one node: its last report."""

    __slots__ = ("tx", "rx", "next", "want", "blocked", "parked", "ext", "hello", "base", "down")

    def __init__(self):
        self.tx: dict = {}
        self.rx: dict = {}
        self.next = None
        self.want = False
        self.blocked: frozenset = frozenset()
        self.parked = 0
        self.ext = 0             # parked calls of clients that are not the lab's programs
        self.hello = False
        self.down = False        # its process is gone (killed, stopped) until it says hello
        self.base: dict = {}     # ifname -> the peer's tx count when this node (re)started


class Timekeeper:
    """The lab's clock: rounds and jumps (see the module docstring)."""

    def __init__(self, run_dir, spec):
        self.run_dir = run_dir
        self.t = 0
        self.rounds = 0
        self.jumps = 0
        self.page = ClockPage(page_path(run_dir), create=True,
                              epoch_ns=int(spec.get("epoch", DEFAULT_START)) * 10**9)
        self.nodes = {n: NodeView() for n in spec["nodes"]}
        self.peer: dict = {}
        self.ports: dict = {n: [] for n in spec["nodes"]}
        for (an, ai), (bn, bi) in spec["wires"]:
            self.peer[(an, ai)] = (bn, bi)
            self.peer[(bn, bi)] = (an, ai)
            self.ports[an].append(ai)
            self.ports[bn].append(bi)
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(ctl_endpoint(run_dir))
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(sock_path(run_dir))
        self.listener.listen(64)
        self.progs: dict = {}        # fd -> (socket, program id): registered programs
        self.alarms: dict = {}       # fd -> [socket, due ns or None, ringing]: fault schedules
        self.next_id = 1
        self.slots: dict = {}        # node -> programs started on it so far
        self.stepping: set = set()
        self.running = True
        self.anchor = None           # (lab ns, host ns) when outside calls began to wait
        self.wake_at = None          # host ns to look again (time paced by the host's)

    # ---------------------------------------------------------------- rounds
    def expect(self, name):
        """How many messages each wire of node `name` has carried to it so far."""
        nv = self.nodes[name]
        out = {}
        for ifname in self.ports[name]:
            pn, pi = self.peer[(name, ifname)]
            out[ifname] = self.nodes[pn].tx.get(pi, 0) - nv.base.get(ifname, 0)
        return out

    def schedule(self):
        """Start the next round, or jump, if the lab is quiet enough; else wait."""
        if DEBUG:
            log.info("t=%d stepping=%s progs=%s alarms=%s nodes=%s", self.t, sorted(self.stepping),
                     [p for _, p in self.progs.values()], [a[1:] for a in self.alarms.values()],
                     {n: (nv.next, nv.want, sorted(nv.blocked), nv.parked, nv.tx, nv.rx)
                      for n, nv in self.nodes.items()})
        self.wake_at = None
        if self.stepping or not all(nv.hello for nv in self.nodes.values() if not nv.down):
            return
        if any(a[2] for a in self.alarms.values()):
            return               # a fault schedule acts at this instant
        blocked: set = set()
        for nv in self.nodes.values():
            blocked |= nv.blocked
        if any(pid is not None and pid not in blocked for _, pid in self.progs.values()):
            return               # a program runs: it may still act at this instant
        for fd, a in sorted(self.alarms.items()):
            if a[1] is not None and a[1] <= self.t:
                self.ring(fd)    # its instant has come: it acts before the nodes do
                return
        targets = {}
        for name, nv in self.nodes.items():
            if nv.down:
                continue
            exp = self.expect(name)
            if nv.want or any(exp[i] > nv.rx.get(i, 0) for i in exp) or \
                    (nv.next is not None and nv.next <= self.t):
                targets[name] = exp
        if targets:
            self.step(targets)
            return
        if not any(pid is not None for _, pid in self.progs.values()) and \
                not any(nv.parked for nv in self.nodes.values()):
            return               # nobody waits on the lab: it is paused
        nexts = [nv.next for nv in self.nodes.values() if nv.next is not None and not nv.down]
        # A fault schedule's next event is an instant time stops at (it does
        # not make time move: only programs and calls waiting do).
        nexts += [a[1] for a in self.alarms.values() if a[1] is not None]
        if not nexts:
            return               # everyone waits forever: time has nothing to jump to
        nxt = min(nexts)
        if any(nv.ext for nv in self.nodes.values()):
            # A call from outside the lab's programs waits (the test process's
            # own sockets): it makes its calls at the host's pace, so time goes
            # no faster than the host's here, or its next call would come late.
            now = time.monotonic_ns()
            if self.anchor is None or self.anchor[0] > self.t:
                self.anchor = (self.t, now)
            limit = self.anchor[0] + (now - self.anchor[1])
            if nxt > limit:
                self.wake_at = now + (nxt - limit)
                return
        else:
            self.anchor = None
        self.t = max(self.t, nxt)
        self.jumps += 1
        self.page.write(self.t, self.rounds, self.jumps)
        for fd, a in sorted(self.alarms.items()):
            if a[1] is not None and a[1] <= self.t:
                self.ring(fd)
                return
        self.step({n: self.expect(n) for n, nv in self.nodes.items()
                   if nv.next is not None and nv.next <= self.t and not nv.down})

    def node_down(self, name):
        """A node's process is gone: no step waits for it, and its peers no
        longer wait for what it sent and they have not read (lost with it)."""
        nv = self.nodes[name]
        nv.down, nv.hello = True, False
        nv.want, nv.next, nv.blocked, nv.parked, nv.ext = False, None, frozenset(), 0, 0
        self.stepping.discard(name)
        for i in self.ports[name]:
            pn, pi = self.peer[(name, i)]
            self.nodes[pn].base[pi] = nv.tx.get(i, 0) - self.nodes[pn].rx.get(pi, 0)

    def ring(self, fd):
        """A fault schedule's instant: it acts (time stands) until it says its next."""
        a = self.alarms[fd]
        a[1], a[2] = None, True
        try:
            a[0].sendall(b"ring %d\n" % self.t)
        except OSError:
            a[2] = False

    def step(self, targets):
        self.rounds += 1
        self.page.write(self.t, self.rounds, self.jumps)
        for name in sorted(targets):
            self.stepping.add(name)
            self.router.send_multipart([name.encode(), msgpack.packb(
                {"op": "step", "t": self.t, "round": self.rounds, "expect": targets[name]})])

    def on_node(self, ident, msg):
        name = ident.decode(errors="replace")
        nv = self.nodes.get(name)
        if nv is None or not isinstance(msg, dict):
            return
        if msg.get("op") == "hello":
            # A (re)started node counts its wires from zero; what its peers
            # sent to the process before it is not its to read.
            nv.hello, nv.down = True, False
            nv.base = {i: self.nodes[self.peer[(name, i)][0]].tx.get(self.peer[(name, i)][1], 0)
                       for i in self.ports[name]}
            nv.tx, nv.rx = {}, {}
            for i in self.ports[name]:
                pn, pi = self.peer[(name, i)]
                self.nodes[pn].base[pi] = -self.nodes[pn].rx.get(pi, 0)
            self.stepping.discard(name)
            self.router.send_multipart([ident, msgpack.packb({"op": "time", "t": self.t})])
        nv.tx = msg.get("tx", nv.tx)
        nv.rx = msg.get("rx", nv.rx)
        nv.next = msg.get("next")
        nv.want = bool(msg.get("want"))
        nv.blocked = frozenset(msg.get("blocked", ()))
        nv.parked = int(msg.get("parked", 0))
        nv.ext = int(msg.get("ext", 0))
        if msg.get("op") == "done":
            self.stepping.discard(name)

    # ---------------------------------------------------------------- programs
    def on_accept(self, poller):
        conn, _ = self.listener.accept()
        poller.register(conn.fileno(), zmq.POLLIN)
        self.progs[conn.fileno()] = (conn, None)

    def on_prog(self, fd, poller):
        """A client's line: `hold NODE` -> `ok ID SLOT NOW_NS` (a program; EOF ends
        the hold), or `alarm NS` -> `ring NOW_NS` when the lab's time is NS (a
        fault schedule, which then acts while time stands, until its next line)."""
        conn, pid = self.progs[fd] if fd in self.progs else (self.alarms[fd][0], None)
        try:
            data = conn.recv(256)
        except OSError:
            data = b""
        if not data:
            poller.unregister(fd)
            self.progs.pop(fd, None)
            self.alarms.pop(fd, None)
            conn.close()
            return
        words = data.decode(errors="replace").split()
        if len(words) == 2 and words[0] == "alarm" and fd in self.alarms and words[1].isdigit():
            self.alarms[fd][1:] = [int(words[1]), False]
        elif len(words) == 2 and words[0] == "alarm" and pid is None and words[1].isdigit():
            del self.progs[fd]
            self.alarms[fd] = [conn, int(words[1]), False]
        elif len(words) == 2 and words[0] == "down" and words[1] in self.nodes:
            self.node_down(words[1])
        elif len(words) == 1 and words[0] == "done" and fd in self.alarms:
            self.alarms[fd][1:] = [None, False]
        elif len(words) == 2 and words[0] == "hold" and pid is None:
            node = words[1]
            slot = self.slots.get(node, 0)
            self.slots[node] = slot + 1
            pid = self.next_id
            self.next_id += 1
            self.progs[fd] = (conn, pid)
            conn.sendall(b"ok %d %d %d\n" % (pid, slot, self.t))
        else:
            conn.sendall(b"error\n")

    def run(self, lifeline=None):
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.listener.fileno(), zmq.POLLIN)
        if lifeline is not None:
            poller.register(lifeline, zmq.POLLIN)
        while self.running:
            timeout = None
            if self.wake_at is not None:
                timeout = max(0, (self.wake_at - time.monotonic_ns()) // 1000000 + 1)
            for what, _ in poller.poll(timeout):
                if what is self.router:
                    while True:
                        try:
                            ident, data = self.router.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        except ValueError:
                            continue
                        try:
                            msg = msgpack.unpackb(data, raw=False)
                        except Exception:
                            continue
                        self.on_node(ident, msg)
                elif what == self.listener.fileno():
                    self.on_accept(poller)
                elif what == lifeline:
                    return
                elif what in self.progs or what in self.alarms:
                    self.on_prog(what, poller)
            self.schedule()


def hold(run_dir, node, timeout=10.0):
    """Register a program about to start on node: (socket, id, slot, now_ns).

    Time stands until the program's first system call reaches the node, and
    the program counts as running between calls while the socket is open."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path(run_dir))
    s.sendall(b"hold %s\n" % node.encode())
    line = b""
    while not line.endswith(b"\n"):
        chunk = s.recv(256)
        if not chunk:
            raise OSError("the lab's clock went away")
        line += chunk
    words = line.split()
    if len(words) != 4 or words[0] != b"ok":
        raise OSError("the lab's clock refused the program")
    s.settimeout(None)
    return s, int(words[1]), int(words[2]), int(words[3])


class Alarm:
    """A fault schedule's view of the lab's time: wait(ns) returns when the lab
    is at that instant; the lab's time stands until the next wait or close."""

    def __init__(self, run_dir, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(sock_path(run_dir))
        self.sock.settimeout(None)
        self.buf = b""

    def wait(self, ns, stop=None):
        """Block until the lab's time is ns (True), or stop is set (False)."""
        self.sock.sendall(b"alarm %d\n" % ns)
        while b"\n" not in self.buf:
            if stop is not None and stop.is_set():
                return False
            r, _, _ = select.select([self.sock], [], [], 0.5)
            if r:
                chunk = self.sock.recv(256)
                if not chunk:
                    return False
                self.buf += chunk
        _, self.buf = self.buf.split(b"\n", 1)
        return True

    def close(self):
        self.sock.close()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    run_dir, parent = argv[0], int(argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s clock %(levelname)s %(message)s")
    from .node import set_pdeathsig
    set_pdeathsig()
    try:
        lifeline = os.pidfd_open(parent)
    except OSError:
        return 3
    if os.getppid() != parent:
        return 3
    with open(os.path.join(run_dir, "vclock.json")) as f:
        spec = json.load(f)
    tk = Timekeeper(run_dir, spec)
    tk.run(lifeline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
