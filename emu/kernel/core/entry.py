"""One way into the kernel: every system call, control request, interrupt,
softirq and timer enters through kernel_entry.

Linux: kernel/entry/common.c (syscall_enter_from_user_mode and its exit
work), kernel/softirq.c (irq_enter/irq_exit), arch/x86/kernel/dumpstack.c
(die -> oops_begin/oops_end), kernel/panic.c (panic_on_oops, taint).

An unexpected exception inside the kernel is an oops: Linux prints the
trace, kills the task that hit it and carries on (panic_on_oops=0). Here
the traceback is kept for the runtime to log, net.oops counts it, the
caller gets EIO (a system call) or an error reply (a control request), and
the node keeps running and forwarding.

Emulation note: Linux has fine-grained locks; emu has one kernel lock per
node (net.kernel_lock, a real lock in the runtime, a no-op inline). Entry
and exit work (taking it, setting the current CPU, kernel_exit's flush of
the wires) live here so that nothing else calls kernel code from a thread.
"""
import traceback
from collections import deque

from .dev import KernelError

OOPS_LOG_LEN = 16


class SyscallBlock(Exception):
    """The call must wait: for one of wqs to wake it, or for timeout seconds."""

    def __init__(self, wqs, timeout, on_timeout=11, resume=None, partial=None):
        super().__init__("would block")
        self.wqs = wqs
        self.timeout = timeout        # None: forever
        self.on_timeout = on_timeout  # errno when the timeout runs out (0: return [])
        # resume(): what to run when woken, instead of the whole call again
        # (a connect waits for the handshake; a send continues where it was).
        self.resume = resume
        # partial(): the result to return if the timeout ends a call that
        # already did some work (bytes sent so far), or None.
        self.partial = partial


class KernelOops(Exception):
    """The kernel raised where it must not; .text is the oops report."""

    def __init__(self, what, text):
        super().__init__(what)
        self.text = text


class _NoLock:
    """The inline kernel's lock: one thread, nothing to exclude."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


NO_LOCK = _NoLock()


def _no_exit():
    pass


def die(net, where, exc):
    """oops_begin/oops_end: count it, keep the report, return the exception to raise."""
    text = "Oops in %s on %s cpu%d: %s: %s\n%s" % (
        where, net.name, net.cur_cpu, type(exc).__name__, exc,
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    net.oops += 1
    log = net.oops_log
    if log is None:
        log = net.oops_log = deque(maxlen=OOPS_LOG_LEN)
    log.append(text)
    return KernelOops("%s: %s" % (type(exc).__name__, exc), text)


def kernel_entry(net, cpu, fn, *args, **kwargs):
    """Enter the kernel on `cpu`, run fn(*args, **kwargs), leave.

    KernelError (an errno) and SyscallBlock (the call sleeps) are the
    kernel's answers and pass through; any other exception becomes a
    KernelOops after die() has recorded it.
    """
    with net.kernel_lock:
        prev = net.cur_cpu
        net.cur_cpu = cpu
        try:
            return fn(*args, **kwargs)
        except (KernelError, SyscallBlock):
            raise
        except Exception as e:
            raise die(net, getattr(fn, "__name__", "kernel"), e) from e
        finally:
            try:
                net.kernel_exit()
            except Exception as e:       # leaving must not kill the caller either
                die(net, "kernel_exit", e)
            net.cur_cpu = prev
