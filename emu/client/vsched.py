"""One thread of a program at a time, in an order the lab decides (virtual time).

Threads of a program that interleave as the host schedules them cannot be
replayed: which one sends first, which one takes a lock, depends on the
host. In a virtual-time lab (vtime.py) a program's threads therefore take
turns, as Shadow runs them: one thread holds the turn and runs until it
waits (in a system call, on a lock, a condition, an event, a queue, a join)
or ends; the turn then goes to the first thread in the run queue. Threads
join the queue in an order that does not depend on the host:

* a thread started by Thread.start: when start() is called;
* a thread a lock, condition or join wakes: when the waker releases it;
* threads whose system calls the node answered: in the order of the node's
  replies, one batch at a time (the node ends each batch with R_EOB).

When no thread can run, the program waits on its node. The node must know
that exactly: it runs a program's calls, and the lab's time moves, only
while the program waits (vruntime.py). So the last frame a program writes
before it waits carries F_IDLE (or is an OP_IDLE frame of its own when the
last thread waits on a lock, not in a call), and the node counts the
program as running again from the batch of replies it sends.

What takes part: every thread the program starts (threading or _thread),
and threading's Lock, RLock, Condition and what is built on them (Event,
Semaphore, Barrier, queue.Queue, concurrent.futures). emu's own threads
(the reply reader: names "emu-...") stay outside, on real locks. A thread
blocked outside the node (reading a terminal or a pipe, a real file lock,
a subprocess) keeps the turn until that returns; locks made before the
program started (by modules imported earlier) are the host's.
"""
import _thread
import threading
from collections import deque

_real_lock = _thread.allocate_lock
_real_start = _thread.start_new_thread

WAIT_SLICE = 0.01            # seconds of lab time between looks of a timed wait

SCHED = [None]               # the process's Scheduler, once installed


class _T:
    """A thread that takes turns: its gate opens when it gets the turn."""
    __slots__ = ("gate", "done", "joiners", "name")

    def __init__(self, name=""):
        self.gate = _real_lock()
        self.gate.acquire()
        self.done = False
        self.joiners: list = []
        self.name = name


class Scheduler:
    """The turn, the run queue, and what the node was last told.

    told_idle: the node counts the program as waiting (its last frame said so,
    and no batch of replies came since). When the last runnable thread stops
    and the node was not told, an OP_IDLE frame tells it (send_idle)."""

    def __init__(self, send_idle):
        self.mu = _real_lock()
        self.runq: deque = deque()
        self.by_ident: dict = {}
        self.send_idle = send_idle
        main = _T("main")
        self.by_ident[_thread.get_ident()] = main
        self.run = main              # the thread holding the turn (None: the program waits)
        self.told_idle = False

    def forked(self):
        """In a forked child: its one thread holds the turn."""
        self.mu = _real_lock()
        t = _T("main")
        self.by_ident = {_thread.get_ident(): t}
        self.runq = deque()
        self.run = t
        self.told_idle = False

    def me(self):
        return self.by_ident.get(_thread.get_ident())

    # -- the turn
    def _pass_locked(self):
        """Give the turn to the first runnable thread; True if there is none."""
        if self.runq:
            t = self.runq.popleft()
            self.run = t
            t.gate.release()
            return False
        self.run = None
        return True

    def _idle_now(self):
        """The program has just stopped: tell the node unless it knows (under mu)."""
        if not self.told_idle:
            self.told_idle = True
            self.send_idle()

    def wait(self, t):
        """t (holding the turn) waits to be woken: the turn goes on; back when woken."""
        with self.mu:
            if self._pass_locked():
                self._idle_now()
        t.gate.acquire()

    def wake(self, t):
        """t may run again: after those already runnable."""
        with self.mu:
            self.runq.append(t)
            if self.run is None:
                self._pass_locked()

    # -- system calls
    def before_call(self):
        """The caller holds the turn and is about to write a call it will wait
        for: whether it is the last runnable thread (the frame says F_IDLE)."""
        with self.mu:
            idle = not self.runq
            if idle:
                self.told_idle = True
            return idle

    def after_call(self, t):
        """The call is written: the turn goes on; back when its reply's batch came."""
        self.wait(t)

    def batch(self, ts):
        """The node's batch of replies (R_EOB): their threads run, in its order."""
        with self.mu:
            self.told_idle = False
            self.runq.extend(ts)
            if self.run is None and self._pass_locked():
                self._idle_now()     # the replies woke nobody: still waiting

    def lost(self, ts):
        """The node went away: threads waiting on it run (and see the error)."""
        with self.mu:
            self.runq.extend(ts)
            if self.run is None:
                self._pass_locked()

    # -- threads
    def spawn(self, name):
        t = _T(name)
        with self.mu:
            self.runq.append(t)
        return t

    def enter(self, t):
        """In the new thread: wait for its first turn."""
        with self.mu:
            self.by_ident[_thread.get_ident()] = t
        t.gate.acquire()

    def exit(self, t):
        with self.mu:
            t.done = True
            self.runq.extend(t.joiners)
            t.joiners = []
            self.by_ident.pop(_thread.get_ident(), None)
            if self._pass_locked():
                self._idle_now()


def current():
    """(scheduler, this thread's _T) if this thread takes turns, else (None, None)."""
    s = SCHED[0]
    if s is None:
        return None, None
    return s, s.by_ident.get(_thread.get_ident())


class _RealEvent:
    """Thread._started of emu's own threads: they do not take turns."""
    __slots__ = ("lock", "flag")

    def __init__(self):
        self.lock = _real_lock()
        self.lock.acquire()
        self.flag = False

    def set(self):
        if not self.flag:
            self.flag = True
            self.lock.release()

    def is_set(self):
        return self.flag

    def wait(self, timeout=None):
        if self.flag:
            return True
        got = self.lock.acquire(True, -1 if timeout is None else timeout)
        if got:
            self.lock.release()
        return got

    def clear(self):
        if self.flag:
            self.lock.acquire()
            self.flag = False

    def _at_fork_reinit(self):
        self.lock = _real_lock()
        if not self.flag:
            self.lock.acquire()


# ------------------------------------------------------------------ locks

class Lock:
    """threading.Lock for threads that take turns: a waiter gives up the turn,
    and release hands the lock to the first waiter."""
    __slots__ = ("_locked", "_waiters", "__weakref__")

    def __init__(self):
        self._locked = False
        self._waiters: deque = deque()

    def acquire(self, blocking=True, timeout=-1):
        if not self._locked:
            self._locked = True
            return True
        if not blocking:
            if timeout != -1:
                raise ValueError("can't specify a timeout for a non-blocking call")
            return False
        s, t = current()
        if t is None:
            return _spin(self, timeout)
        if timeout is not None and timeout >= 0:
            return _timed(self, timeout)
        self._waiters.append(t)
        s.wait(t)                # release() handed it over: it is ours
        return True

    def release(self):
        if not self._locked:
            raise RuntimeError("release unlocked lock")
        if self._waiters:
            SCHED[0].wake(self._waiters.popleft())     # stays locked: now the waiter's
        else:
            self._locked = False

    def locked(self):
        return self._locked

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()

    def _at_fork_reinit(self):
        self._locked = False
        self._waiters = deque()

    def __repr__(self):
        return "<emu turn-taking %s lock>" % ("locked" if self._locked else "unlocked")


def _spin(lock, timeout):
    """A thread that does not take turns (emu's own) waits on the host's clock."""
    import time as _t
    sleep = getattr(_t, "_emu_real_sleep", None) or _real_sleep
    deadline = None if timeout is None or timeout < 0 else _t.perf_counter() + timeout
    while lock._locked:
        if deadline is not None and _t.perf_counter() >= deadline:
            return False
        sleep(0.0005)
    lock._locked = True
    return True


def _real_sleep(secs):
    lk = _real_lock()
    lk.acquire()
    lk.acquire(True, secs)


def _timed(lock, timeout):
    """A timed acquire: looks every WAIT_SLICE of lab time (a sleep is a call)."""
    import time as _t
    deadline = _t.monotonic() + timeout
    while True:
        if not lock._locked:
            lock._locked = True
            return True
        left = deadline - _t.monotonic()
        if left <= 0:
            return False
        _t.sleep(min(WAIT_SLICE, left))


class RLock:
    """threading.RLock for threads that take turns."""
    __slots__ = ("_lock", "_owner", "_count", "__weakref__")

    def __init__(self):
        self._lock = Lock()
        self._owner = None
        self._count = 0

    def acquire(self, blocking=True, timeout=-1):
        me = _thread.get_ident()
        if self._owner == me:
            self._count += 1
            return True
        if not self._lock.acquire(blocking, timeout):
            return False
        self._owner, self._count = me, 1
        return True

    __enter__ = acquire

    def release(self):
        if self._owner != _thread.get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._owner = None
            self._lock.release()

    def __exit__(self, *exc):
        self.release()

    def locked(self):
        return self._lock.locked()

    def _is_owned(self):
        return self._owner == _thread.get_ident()

    def _release_save(self):
        if self._owner != _thread.get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, self._owner)
        self._owner, self._count = None, 0
        self._lock.release()
        return state

    def _acquire_restore(self, state):
        self._lock.acquire()
        self._count, self._owner = state

    def _at_fork_reinit(self):
        self._lock._at_fork_reinit()
        self._owner, self._count = None, 0

    def __repr__(self):
        return "<emu turn-taking RLock owner=%r count=%d>" % (self._owner, self._count)


# ------------------------------------------------------------------ install

def _unscheduled(th):
    """emu's own threads (the reply reader, the watchdog) do not take turns;
    the descriptor watcher makes calls for the program, so it does."""
    return th.name.startswith("emu-") and th.name != "emu-fd-watcher"


def install(send_idle):
    """Threads of this process take turns from now on; send_idle() writes an
    OP_IDLE frame to the node. The caller is the only thread of the program."""
    if SCHED[0] is not None:
        return SCHED[0]
    sched = SCHED[0] = Scheduler(send_idle)
    import os
    os.register_at_fork(after_in_child=sched.forked)
    Thread = threading.Thread
    real_start, real_join = Thread.start, Thread.join

    def start(self):
        # A thread that will not take turns signals its start on a host lock.
        if (_unscheduled(self) or current()[1] is None) and \
                not isinstance(self._started, _RealEvent) and not self._started.is_set():
            self._started = _RealEvent()
        return real_start(self)

    def start_new_thread(fn, args, kwargs=None):
        s, me = current()
        owner = getattr(fn, "__self__", None)
        if me is None or (isinstance(owner, Thread) and _unscheduled(owner)):
            return _real_start(fn, args, kwargs or {})
        t = s.spawn(getattr(owner, "name", "thread"))
        if isinstance(owner, Thread):
            owner._emu_turns = t         # type: ignore[attr-defined]

        def boot():
            s.enter(t)
            try:
                fn(*args, **(kwargs or {}))
            finally:
                s.exit(t)
        return _real_start(boot, ())

    def join(self, timeout=None):
        s, me = current()
        t = getattr(self, "_emu_turns", None)
        if me is None or t is None:
            return real_join(self, timeout)
        if self is threading.current_thread():
            raise RuntimeError("cannot join current thread")
        if timeout is None:
            while not t.done:
                t.joiners.append(me)
                s.wait(me)
        else:
            import time as _t
            deadline = _t.monotonic() + max(0.0, timeout)
            while not t.done:
                left = deadline - _t.monotonic()
                if left <= 0:
                    break
                _t.sleep(min(WAIT_SLICE, left))
        if t.done:
            real_join(self)      # its last steps, which need no turn
        return None

    real_shutdown = threading._shutdown   # type: ignore[attr-defined]

    def shutdown():
        # At exit the main thread waits for the others: by turns, not on
        # their real locks (they could not run while it held the turn).
        if current()[1] is not None:
            for th in threading.enumerate():
                if th is not threading.current_thread() and not th.daemon and \
                        getattr(th, "_emu_turns", None) is not None:
                    th.join()
        real_shutdown()

    Thread.start = start
    Thread.join = join
    threading._start_new_thread = start_new_thread     # type: ignore[attr-defined]
    _thread.start_new_thread = start_new_thread
    threading._shutdown = shutdown                      # type: ignore[attr-defined]
    threading.Lock = Lock                               # type: ignore[misc]
    threading._allocate_lock = Lock                     # type: ignore[attr-defined]
    threading.RLock = RLock                             # type: ignore[misc,assignment]
    # queue.SimpleQueue is C and waits on the host's locks (a thread pool's
    # workers would keep the turn while they wait for work): the Python one.
    import queue
    queue.SimpleQueue = queue._PySimpleQueue            # type: ignore[attr-defined,misc]
    return sched
