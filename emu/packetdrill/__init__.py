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
from .parse import ParseError, parse_script  # noqa: F401
from .run import Config, ScriptFailure, run_script  # noqa: F401
