"""A node's malloc keeps big buffers on a heap that stays (runtime.tune_malloc)."""
import ctypes
import platform

import pytest

from emu.nodes import runtime


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_tune_malloc_sets_both_thresholds(monkeypatch):
    calls = []
    libc = ctypes.CDLL(None)
    real = libc.mallopt

    class Spy:
        def mallopt(self, param, value):
            calls.append((param, value))
            return real(param, value)

    monkeypatch.setattr(runtime.ctypes, "CDLL", lambda _name: Spy())
    assert runtime.tune_malloc() is True
    assert calls == [(runtime.M_MMAP_THRESHOLD, runtime.MALLOC_MMAP_THRESHOLD),
                     (runtime.M_TRIM_THRESHOLD, runtime.MALLOC_TRIM_THRESHOLD)]
    assert runtime.MALLOC_MMAP_THRESHOLD >= 1 << 20      # above a 1 MiB system call's payload
