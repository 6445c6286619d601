"""`python -m emu.labd TOPOLOGY READY_FD [--faults F] [--name N] [--base DIR]`:
the orchestrator of a detached lab (`emu up -d`).

Its first act is to fork the lab's fork server (spawner.prefork), while it
has no thread and no ZeroMQ context and has imported almost nothing: the
server then imports the kernel on one core while this process imports the
orchestrator and reads the topology on the other, instead of one after the
other. The run base is on the command line, so `pgrep -f RUN_BASE` finds
the orchestrator, its fork server and every node (a fork keeps it).
"""
import os
import sys


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(prog="emu-labd")
    p.add_argument("topology")
    p.add_argument("ready_fd", type=int)
    p.add_argument("--faults")
    p.add_argument("--name")
    p.add_argument("--base")
    a = p.parse_args(argv)
    zygote = None
    if os.environ.get("EMU_FORKSERVER", "1") != "0":
        from .spawner import prefork
        zygote = prefork()
    from .orchestrator import serve
    return serve(a.topology, a.ready_fd, a.faults, a.name, base=a.base, zygote=zygote)


if __name__ == "__main__":
    sys.exit(main())
