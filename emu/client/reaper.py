"""A guardian process that cleans up a test process's labs if it dies.

Teardown code cannot run in a process that is gone: pytest-timeout's thread
method ends the process with os._exit(1), and a worker can be SIGKILLed or
run out of memory. The nodes and user processes of its labs die by
themselves (PR_SET_PDEATHSIG and their parent watchdogs), but their run
directories stay. The reaper is started once per test process, in its own
session (Ctrl-C does not reach it); the test process registers each lab
(run dir, node PIDs with their create times) on a pipe and unregisters it
after a normal teardown. When the pipe reaches EOF, the test process has
exited, however it ended: the reaper kills what is left of each registered
lab (only the recorded processes, checked by create time, so a recycled PID
is never hit), removes its run directory, and exits.

Protocol, one line each: "+ {json: run_dir, pids: [[pid, create_time], ...]}",
"- run_dir".
"""
import json
import os
import signal
import subprocess
import sys
import threading


class Reaper:
    """The test process's side: start the guardian, register and unregister labs."""

    def __init__(self):
        self.proc = None
        self.lock = threading.Lock()

    def _start(self):
        if self.proc is None or self.proc.poll() is not None:
            parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            env = dict(os.environ)
            env["PYTHONPATH"] = parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "emu.client.reaper"], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                env=env)
        return self.proc

    def _send(self, line):
        with self.lock:
            p = self._start()
            try:
                p.stdin.write(line.encode() + b"\n")
                p.stdin.flush()
            except OSError:
                pass              # the reaper is gone: nothing more we can do here

    def register(self, run_dir, pids):
        self._send("+ " + json.dumps({"run_dir": run_dir, "pids": pids}))

    def unregister(self, run_dir):
        self._send("- " + run_dir)

    def close(self):
        """End the reaper after a normal session (nothing left to clean)."""
        with self.lock:
            if self.proc is not None:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                self.proc = None


def _same_process(pid, create_time):
    import psutil
    try:
        p = psutil.Process(pid)
        return create_time is None or abs(p.create_time() - create_time) < 0.01
    except psutil.Error:
        return False


def clean(lab):
    """Kill the lab's recorded processes that still live; remove its run directory."""
    for pid, create_time in lab.get("pids", []):
        if _same_process(pid, create_time):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    run_dir = lab.get("run_dir")
    if run_dir and os.path.isdir(run_dir):
        from ..rundir import remove_run_dir
        remove_run_dir(run_dir)          # and the socket directory it links to


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    labs = {}
    for raw in sys.stdin.buffer:
        line = raw.decode(errors="replace").rstrip("\n")
        if line.startswith("+ "):
            try:
                lab = json.loads(line[2:])
                labs[lab["run_dir"]] = lab
            except (ValueError, KeyError, TypeError):
                continue
        elif line.startswith("- "):
            labs.pop(line[2:], None)
    # EOF: the test process has exited.
    for lab in labs.values():
        clean(lab)
    return 0


if __name__ == "__main__":
    sys.exit(main())
