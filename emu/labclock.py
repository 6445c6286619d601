"""A virtual-time lab's side of the orchestrator: which labs may run on
virtual time (with_clock), and the lab's timekeeper process (nodes/vclock.py),
started with the lab, told of dead nodes, ended with it."""
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any


def _lab_error(msg):
    from .orchestrator import LabError
    return LabError(msg)


def with_clock(topo, clock=None, seed=None, cluster=None):
    """The topology with `emu up --clock/--seed` applied; LabError (one line) for
    what a virtual-time lab cannot do yet."""
    import dataclasses
    if clock is not None or seed is not None:
        topo = dataclasses.replace(topo, clock=clock or topo.clock,
                                   seed=topo.seed if seed is None else seed)
    if topo.clock != "virtual":
        return topo
    if cluster or topo.cluster:
        raise _lab_error("%s: --clock virtual with --cluster is not supported yet: "
                       "labs over several machines run in real time" % topo.path)
    for l in topo.links:
        if l.type == "tap":
            raise _lab_error("%s: link %d (%s): a tap link reaches the real network, which runs "
                           "in real time: not in a --clock virtual lab" % (topo.path, l.index, l.a))
        if l.transport == "tcp":
            raise _lab_error("%s: link %d (%s): transport tcp is for labs over several machines: "
                           "not in a --clock virtual lab" % (topo.path, l.index, l.a))
    return topo


class LabClock:
    """Lab's timekeeper methods (a mixin of orchestrator.Lab)."""

    # Lab's, used here:
    run_dir: "str | None"
    topo: Any
    virtual: bool
    lock_vclock: Any
    vclock_proc: "subprocess.Popen | None"     # the timekeeper process, once started
    vclock_conn: "socket.socket | None"        # our line to it (node deaths)

    def _start_vclock(self):
        """The timekeeper of a virtual-time lab: its own process, gone with us."""
        from .nodes import vclock
        assert self.run_dir is not None
        wires = [[[l.a.node, l.a.ifname], [l.b.node, l.b.ifname]]
                 for l in self.topo.links if l.b is not None]
        with open(os.path.join(self.run_dir, "vclock.json"), "w") as f:
            json.dump({"nodes": [n.name for n in self.topo.nodes], "wires": wires,
                       "epoch": self.topo.start_time}, f)
        env = dict(os.environ)
        from .orchestrator import _package_parent
        env["PYTHONPATH"] = _package_parent() + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(os.path.join(self.run_dir, "clock.log"), "ab") as logf:
            self.vclock_proc = subprocess.Popen(
                [sys.executable, "-m", "emu.nodes.vclock", self.run_dir, str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=env,
                close_fds=True)
        deadline = time.monotonic() + 10.0
        while not os.path.exists(vclock.sock_path(self.run_dir)):
            if self.vclock_proc.poll() is not None or time.monotonic() > deadline:
                raise _lab_error("the lab's clock did not start: %s" % self._clock_log())
            time.sleep(0.005)

    def vclock_down(self, name):
        """Tell a virtual-time lab's clock that node `name`'s process is gone."""
        if not self.virtual or self.run_dir is None:
            return
        from .nodes.vclock import sock_path
        with self.lock_vclock:
            try:
                if self.vclock_conn is None:
                    self.vclock_conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    self.vclock_conn.connect(sock_path(self.run_dir))
                self.vclock_conn.sendall(b"down %s\n" % name.encode())
            except OSError:
                self.vclock_conn = None

    def _clock_log(self):
        try:
            with open(os.path.join(str(self.run_dir), "clock.log")) as f:
                return " | ".join(f.read().strip().splitlines()[-3:])
        except OSError:
            return "(no log)"
