"""What `emu up` shows while a lab starts: the phase (spawn, ready,
configure) and counts, as a rich progress bar on a terminal and as plain log
lines otherwise, so a 1000-node start never looks frozen.
"""
import sys
import time

LABELS = {"spawn": "spawning nodes", "ready": "nodes ready", "configure": "configuring"}


class StartProgress:
    """progress(phase, done, total) for Lab.progress; use as a context manager."""

    def __init__(self, name, stream=None, interval=1.0):
        self.name = name
        self.stream = stream or sys.stderr
        self.interval = interval
        self.bar = None
        self.tasks: dict = {}
        self.last = (None, 0.0)
        self.t0 = time.monotonic()
        if self.stream.isatty():
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                )
            except ImportError:
                return
            self.bar = Progress(TextColumn("[bold]{task.description:<16}"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(),
                                console=Console(file=self.stream), transient=True)

    def __enter__(self):
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, phase, done, total):
        if self.bar is not None:
            task = self.tasks.get(phase)
            if task is None:
                task = self.tasks[phase] = self.bar.add_task(LABELS.get(phase, phase), total=total)
            self.bar.update(task, completed=done, total=total)
            return
        # Plain lines: each phase's start and end, and at most one a second between.
        now = time.monotonic()
        if done in (0, total) or phase != self.last[0] or now - self.last[1] >= self.interval:
            if done == 0 and phase == self.last[0]:
                return
            self.last = (phase, now)
            print("emu: %s: %s %d/%d (%.1f s)" % (self.name, LABELS.get(phase, phase), done,
                                                  total, now - self.t0),
                  file=self.stream, flush=True)


class PipeProgress:
    """The detached orchestrator's progress, as lines on its ready pipe
    ("P phase done total"), for `emu up -d` to show."""

    def __init__(self, fd, interval=0.1):
        self.fd = fd
        self.interval = interval
        self.last = (None, 0.0)

    def __call__(self, phase, done, total):
        now = time.monotonic()
        if done in (0, total) or phase != self.last[0] or now - self.last[1] >= self.interval:
            self.last = (phase, now)
            import os
            os.write(self.fd, b"P %s %d %d\n" % (phase.encode(), done, total))


def relay(line, progress):
    """One "P phase done total" line from the pipe into a StartProgress; False if not one."""
    parts = line.split()
    if len(parts) != 4 or parts[0] != "P" or not (parts[2].isdigit() and parts[3].isdigit()):
        return False
    progress(parts[1], int(parts[2]), int(parts[3]))
    return True
