"""packetdrill scripts against emu's kernel, inline under a fake clock.

A script (the language of google/packetdrill: timed system calls, packets
injected into the stack with `<`, packets it must send with `>`, shell
commands in backticks, `%{ }%` Python assertions over tcp_info) runs
against a fresh emulated kernel whose only device is a TUN device, as
packetdrill's local mode runs it against Linux. Time is the kernel's fake
clock: a script with seconds of timers runs in milliseconds, and timing is
checked exactly, within packetdrill's tolerances.

parse.py reads a script into events; packet.py builds and checks packets;
run.py runs the events (run_script), cli.py is `emu packetdrill`.
"""
# Loaded on first use (PEP 562): `emu --help` and `emu up` build the
# packetdrill subcommand's parser, and importing run.py imports the whole
# kernel (about a third of the CLI's start-up time).
_LAZY = {"ParseError": "parse", "parse_script": "parse",
         "Config": "run", "ScriptFailure": "run", "run_script": "run"}


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    import importlib
    return getattr(importlib.import_module("." + mod, __name__), name)

