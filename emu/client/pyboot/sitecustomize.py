"""Bind a Python process started by `emu exec NODE -- python ...` to the node.

The interpreter imports this module at startup (its directory is first on
PYTHONPATH, and Python's site module imports `sitecustomize`), so the
interpreter's own command line works unchanged: `-c CODE`, `-` (the program
on stdin), `-m module`, a script, `-i`, `-u`, and the interactive REPL.
EMU_SHIM holds the node's syscall endpoint, the lab's names and the node's
name; a process without it (or with -S, -E, -I, which skip this) is left
alone. Processes the program starts inherit the variable and are bound to
the same node, each as a task of its own, as processes in a network
namespace stay in it.
"""
import json
import os
import sys


def _bind():
    spec = os.environ.get("EMU_SHIM")
    if not spec:
        return
    try:
        spec = json.loads(spec)
    except ValueError:
        return
    from emu.client import shim
    from emu.client.rpc import NodeUnreachable
    binding = shim.install(spec["sys"], hosts=spec.get("hosts", {}), hostname=spec.get("node", ""))
    vt = os.environ.get("EMU_VT")
    if vt:
        # A virtual-time lab: the program's time and randomness are the lab's.
        from emu.client import vtime
        vtime.install(json.loads(vt), binding)

    def gone(t, e, tb, hook=sys.excepthook):
        # The node died under the program: `emu exec` says so in one line.
        if issubclass(t, NodeUnreachable):
            os._exit(137)
        hook(t, e, tb)
    sys.excepthook = gone
    if sys.flags.interactive or (not sys.argv or sys.argv == [""]) and sys.stdin.isatty():
        sys.__interactivehook__ = _hook(spec.get("node", "?"), getattr(sys, "__interactivehook__", None))


def _hook(node, original):
    def hook():
        print("(socket is bound to node %s's kernel)" % node, file=sys.stderr)
        if original is not None:
            original()
    return hook


_bind()
