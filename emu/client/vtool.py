"""`python -m emu.client.vtool NODE TOOL ARGS...`: a time-keeping tool (ping,
nc, iperf3, traceroute) as a program of a node of a virtual-time lab.

`emu exec` starts it like any Python program of the node (its socket module,
time and randomness are the lab's: pyboot/sitecustomize.py, vtime.py), so
its intervals, timeouts and round-trip times are the lab's time.
"""
import json
import os
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    node, tool = argv[0], argv[1:]
    spec = json.loads(os.environ["EMU_SHIM"])
    # The lab's time page (EMU_VT) is in its run directory; its sockets may
    # be elsewhere (emu/rundir.py).
    vt = json.loads(os.environ.get("EMU_VT") or "{}")
    run_dir = os.path.dirname(vt["page"]) if vt.get("page") else os.path.dirname(spec["sys"])
    from ..orchestrator import STATE_FILE
    with open(os.path.join(run_dir, STATE_FILE)) as f:
        st = json.load(f)
    st["clock"] = "real"            # this process is already on the lab's time
    from .exec import run_command
    return run_command(st, node, tool)


if __name__ == "__main__":
    sys.exit(main())
