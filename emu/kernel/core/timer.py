"""Kernel timers on an explicit clock.

Linux: kernel/time/timer.c (timer_list, mod_timer, del_timer)

Emulation note: one heap per Net rather than a wheel per CPU. The runtime asks
next_timer() how long it may sleep and calls run_timers(now); tests call
run_timers with a fake clock. Nothing here reads a clock.
"""
import heapq
import itertools


class TimerList:
    """struct timer_list: a callback due at ``expires`` (seconds)."""

    __slots__ = ("function", "data", "expires", "pending", "_seq")

    def __init__(self, function, data=None):
        self.function = function
        self.data = data
        self.expires = 0.0
        self.pending = False
        self._seq = 0


class TimerBase:
    """All timers of one Net, ordered by expiry."""

    def __init__(self):
        self.heap = []
        self.counter = itertools.count(1)

    def mod_timer(self, timer, expires):
        """(Re)arm timer; an earlier arming is superseded, not duplicated."""
        timer.expires = expires
        timer.pending = True
        timer._seq = next(self.counter)
        heapq.heappush(self.heap, (expires, timer._seq, timer))

    def del_timer(self, timer):
        """Disarm; returns True if it was pending. The heap entry dies lazily."""
        was = timer.pending
        timer.pending = False
        timer._seq = 0
        return was

    def next_timer(self):
        """Expiry of the earliest pending timer, or None."""
        heap = self.heap
        while heap:
            expires, seq, timer = heap[0]
            if timer.pending and timer._seq == seq:
                return expires
            heapq.heappop(heap)
        return None

    def run_timers(self, now):
        """Run every timer due at or before now; returns how many ran."""
        heap = self.heap
        ran = 0
        while heap and heap[0][0] <= now:
            expires, seq, timer = heapq.heappop(heap)
            if not timer.pending or timer._seq != seq:
                continue
            timer.pending = False
            timer.function(timer.data)
            ran += 1
        return ran
