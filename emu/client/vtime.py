"""A program in a virtual-time lab: the lab's time and a seeded world.

`emu exec NODE -- python ...` in a `--clock virtual` lab starts the program
with EMU_VT (the lab's clock page, the program's id and slot, the lab seed);
pyboot/sitecustomize.py calls install() after binding the socket module to
the node. What it pins, and how:

* Time: time.time/time_ns/monotonic/perf_counter (and their _ns forms),
  clock_gettime for the realtime, monotonic and boot clocks, localtime,
  gmtime, ctime, strftime without a time, datetime.now/utcnow/today and
  date.today read the lab's time from its page (nodes/vclock.py). It only
  moves while the program waits in a system call, so a read costs no round
  trip. time.sleep is the node's nanosleep; socket, select and selectors
  timeouts are the node's already; threading waits with a timeout
  (Condition, Event, Queue, Semaphore...) look every WAIT_SLICE of lab time.
  asyncio's clock is time.monotonic.
* Randomness: PYTHONHASHSEED (set by the launcher), random's global
  generator, os.urandom, random.SystemRandom and secrets, uuid1/uuid4 all
  come from the lab seed, the node's name and the program's slot (the n-th
  program started on that node).
* Identity: os.getpid() is 1000 + the program's id; the task keys it gives
  its node start with "vt<ID>-", which is how the node tells the lab's
  clock that this program waits in a call.

* Threads: they take turns, one at a time, in an order the lab decides
  (vsched.py).

Not covered: time read outside Python (C extensions calling clock_gettime,
subprocesses that are not Python programs of the lab), real files and real
sockets (AF_UNIX stays real), a thread blocked outside the node (a
terminal, a pipe) holding its turn meanwhile (vsched.py).
"""
import hashlib
import os
import random
import struct
import sys
import threading
import time

WAIT_SLICE = 0.01            # seconds of lab time between looks of a timed thread wait
REAL_SLICE = 0.05            # ... and of a timed wait on real descriptors only

_state: dict = {}


def program_seed(seed, node, slot, what=""):
    """A 64-bit seed for one program (and one use: what) from the lab seed."""
    h = hashlib.sha256(("%d/%s/%d/%s" % (seed, node, slot, what)).encode()).digest()
    return int.from_bytes(h[:8], "little")


def hash_seed(seed, node, slot):
    """PYTHONHASHSEED for a program (0..4294967295)."""
    return program_seed(seed, node, slot, "hash") & 0xFFFFFFFF


def active():
    return bool(_state)


def install(spec, binding=None):
    """Pin this process's time, randomness and pid to the lab (spec: EMU_VT)."""
    if _state:
        return
    from ..nodes.vclock import ClockPage
    page = ClockPage(spec["page"])
    epoch = page.read()[1]
    _state.update(page=page, epoch=epoch, binding=binding, spec=spec, warned=False)
    _pin_time(page, epoch, binding)
    _pin_random(int(spec["seed"]), spec["node"], int(spec["slot"]))
    pid = [1000 + int(spec["id"]), 0]

    def forked():
        # A child is a process of its own to the node (its own connection,
        # chosen by pid): a pid of its own, from its parent's and a count.
        pid[1] += 1
        pid[0] = pid[0] * 100 + pid[1]
    os.register_at_fork(after_in_child=forked)
    os.getpid = lambda: pid[0]
    from . import rpc
    rpc.TASK_KEY_PREFIX[0] = "vt%d-" % int(spec["id"])
    if binding is not None:
        _take_turns(binding.client)


def _take_turns(client):
    """The program's threads take turns (vsched.py)."""
    from . import vsched
    vsched.install(client.send_idle)


def _pin_time(page, epoch, binding):
    unpack = struct.unpack_from
    m = page.map

    def monotonic_ns():
        return unpack("<q", m, 0)[0]

    def monotonic():
        return unpack("<q", m, 0)[0] / 1e9

    def time_ns():
        return epoch + unpack("<q", m, 0)[0]

    def time_():
        return (epoch + unpack("<q", m, 0)[0]) / 1e9

    real_clock_gettime = time.clock_gettime
    real_clock_gettime_ns = time.clock_gettime_ns
    wall_ids = {time.CLOCK_REALTIME}
    mono_ids = {time.CLOCK_MONOTONIC, getattr(time, "CLOCK_MONOTONIC_RAW", -1),
                getattr(time, "CLOCK_BOOTTIME", -1)}

    def clock_gettime(clk):
        if clk in wall_ids:
            return time_()
        if clk in mono_ids:
            return monotonic()
        return real_clock_gettime(clk)

    def clock_gettime_ns(clk):
        if clk in wall_ids:
            return time_ns()
        if clk in mono_ids:
            return monotonic_ns()
        return real_clock_gettime_ns(clk)

    def sleep(secs):
        if secs != secs or secs < 0:
            raise ValueError("sleep length must be non-negative")
        if binding is None:
            raise RuntimeError("virtual time: no node to sleep on")
        binding.client.call("nanosleep", float(secs))

    real_localtime, real_gmtime, real_ctime = time.localtime, time.gmtime, time.ctime
    real_strftime, real_asctime = time.strftime, time.asctime
    time.monotonic, time.monotonic_ns = monotonic, monotonic_ns
    time.perf_counter, time.perf_counter_ns = monotonic, monotonic_ns
    time.time, time.time_ns = time_, time_ns
    time.clock_gettime, time.clock_gettime_ns = clock_gettime, clock_gettime_ns
    time.sleep = sleep
    time.localtime = lambda secs=None: real_localtime(time_() if secs is None else secs)
    time.gmtime = lambda secs=None: real_gmtime(time_() if secs is None else secs)
    time.ctime = lambda secs=None: real_ctime(time_() if secs is None else secs)
    time.asctime = lambda t=None: real_asctime(real_localtime(time_()) if t is None else t)
    time.strftime = lambda fmt, t=None: real_strftime(fmt, real_localtime(time_()) if t is None else t)
    # Modules that took their own reference before we ran.
    threading._time = monotonic  # type: ignore[attr-defined]
    for name in ("queue", "sched", "subprocess", "selectors", "asyncio.base_events"):
        mod = sys.modules.get(name)
        if mod is not None and getattr(mod, "_time", None) is not None:
            mod._time = monotonic
    _pin_datetime(time_)
    _pin_waits(monotonic, sleep)


def _pin_datetime(time_):
    import datetime as dt
    real = dt.datetime

    class _Meta(type(real)):  # type: ignore[misc]
        def __instancecheck__(cls, obj):
            return isinstance(obj, real)

    class datetime(real, metaclass=_Meta):   # noqa: N801 (the name programs use)
        @classmethod
        def now(cls, tz=None):
            return real.fromtimestamp(time_(), tz)

        @classmethod
        def utcnow(cls):
            return real.utcfromtimestamp(time_())

        @classmethod
        def today(cls):
            return real.fromtimestamp(time_())

    real_date = dt.date

    class _DMeta(type(real_date)):  # type: ignore[misc]
        def __instancecheck__(cls, obj):
            return isinstance(obj, real_date)

    class date(real_date, metaclass=_DMeta):   # noqa: N801
        @classmethod
        def today(cls):
            return real_date.fromtimestamp(time_())

    dt.datetime = datetime  # type: ignore[misc]
    dt.date = date  # type: ignore[misc]


def client_for(endpoint):
    """The shim's syscall client of this program's node, if endpoint is it."""
    binding = _state.get("binding") if _state else None
    client = getattr(binding, "client", None)
    if client is None:
        return None
    try:
        same = os.path.realpath(client.path) == os.path.realpath(endpoint)
    except (TypeError, ValueError):
        return None
    return client if same else None


def alone():
    """Whether this thread is the program's only one (emu's own are named emu-*):
    then nothing inside the program can end a wait early, and a timed wait
    is one sleep on the node, not a look every slice."""
    me = threading.current_thread()
    return not any(t is not me and not t.name.startswith("emu-") for t in threading.enumerate())


def _pin_waits(monotonic, sleep):
    """threading's timed waits look every WAIT_SLICE of lab time (a timed lock
    acquire would wait on the host's clock)."""
    cond = threading.Condition
    real_wait = cond.wait

    def wait(self, timeout=None):
        if timeout is None:
            return real_wait(self, None)
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        waiter = threading._allocate_lock()  # type: ignore[attr-defined]
        waiter.acquire()
        self._waiters.append(waiter)
        saved = self._release_save()
        got = False
        try:
            deadline = monotonic() + max(0.0, timeout)
            while True:
                got = waiter.acquire(False)
                left = deadline - monotonic()
                if got or left <= 0:
                    break
                sleep(left if alone() else min(WAIT_SLICE, left))
            return got
        finally:
            self._acquire_restore(saved)
            if not got:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass

    cond.wait = wait


def real_wait(fn, timeout):
    """A wait on real descriptors only (select, selectors), on the lab's time:
    fn(0) looks; between looks the program sleeps on its node."""
    if timeout is None or timeout <= 0 or not _state:
        return fn(timeout)
    deadline = time.monotonic() + timeout
    while True:
        got = fn(0)
        left = deadline - time.monotonic()
        if got or left <= 0:
            return got
        time.sleep(left if alone() else min(REAL_SLICE, left))


def warn_threads():
    """Two threads in calls at once that do not take turns (the program
    replaced threading's own): their order is the host's."""
    if _state and not _state["warned"]:
        _state["warned"] = True
        print("emu: virtual time: several threads of this program wait in system calls at "
              "once; this run may not replay", file=sys.stderr, flush=True)


def _pin_random(seed, node, slot):
    random.seed(program_seed(seed, node, slot, "random"))
    gen = random.Random(program_seed(seed, node, slot, "urandom"))
    lock = threading.Lock()

    def urandom(n):
        with lock:
            return gen.randbytes(n)

    os.urandom = urandom
    random._urandom = urandom  # type: ignore[attr-defined]
    import uuid
    uuid._generate_time_safe = None  # type: ignore[attr-defined]
    node_id = program_seed(seed, node, slot, "uuid-node") & 0xFFFFFFFFFFFF | (1 << 40)
    uuid.getnode = lambda: node_id
    uuid._node = node_id  # type: ignore[attr-defined]
