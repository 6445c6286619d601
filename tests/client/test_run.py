"""Functions run on nodes: in parallel, with results, exceptions, output, and an end."""
import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

import emu
from emu.client.run import RemoteError, RemoteTraceback
from tests.integration.conftest import TOPOLOGIES


@pytest.fixture(scope="module")
def star():
    with emu.launch(TOPOLOGIES / "star4.yaml") as lab:
        yield lab


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# ------------------------------------------------------------------ in parallel

def barrier_server(port, parties):
    """Answer "go" to everyone once `parties` distinct clients have arrived."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", port))
    emu.ready()
    arrived = set()
    while True:
        _, addr = s.recvfrom(100)
        arrived.add(addr)
        if len(arrived) >= parties:
            for a in arrived:
                s.sendto(b"go", a)
            # Latecomers retrying after a lost "go" still get one.
            parties = 1


def barrier_client(server, port):
    start = time.monotonic()
    print("arriving from", socket.gethostname())
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.1)
    while True:
        s.sendto(b"here", (server, port))
        try:
            if s.recv(10) == b"go":
                return socket.gethostname(), os.getpid(), start, time.monotonic()
        except socket.timeout:
            pass


def test_functions_on_three_nodes_run_at_the_same_time(star):
    barrier = star.node("kv").spawn(barrier_server, 7100, 3)
    barrier.wait_ready(30)
    futures = [star.node(n).run(barrier_client, "kv", 7100) for n in ("c1", "c2", "c3")]
    # The barrier answers only when all three are there at once.
    done, not_done = concurrent.futures.wait(futures, timeout=30)
    assert not not_done
    results = emu.wait_all(futures)
    assert [r[0] for r in results] == ["c1", "c2", "c3"]
    assert len({r[1] for r in results} | {os.getpid()}) == 4    # 3 processes, none is us
    assert max(r[2] for r in results) < min(r[3] for r in results)  # lifetimes overlap
    assert [f.stdout for f in futures] == ["arriving from %s\n" % n for n in ("c1", "c2", "c3")]
    barrier.stop()


def test_wait_all_raises_the_first_exception_after_all_have_ended(star):
    futures = [star.node("c1").run(time.sleep, 0.3), star.node("c2").run(fail, "second"),
               star.node("c3").run(fail, "third")]
    with pytest.raises(ValueError, match="second"):
        emu.wait_all(futures, timeout=30)
    assert all(f.done() for f in futures)
    slow = star.node("c1").run(time.sleep, 5)
    with pytest.raises(TimeoutError, match="1 of 1 still running"):
        emu.wait_all([slow], timeout=0.1)
    slow.stop()


# ------------------------------------------------------------------ what comes back

class Unpicklable(Exception):
    def __init__(self, msg):
        super().__init__(msg)
        self.lock = threading.Lock()


def fail(msg):
    print("about to fail", file=sys.stderr)
    raise ValueError(msg)


def fail_unpicklably():
    raise Unpicklable("has a lock")


def exit_3():
    sys.exit(3)


def die_by_sigkill():
    os.kill(os.getpid(), signal.SIGKILL)


def return_a_lock():
    return threading.Lock()


def test_an_exception_comes_back_as_itself_with_the_remote_traceback(star):
    fut = star.node("c1").run(fail, "boom")
    with pytest.raises(ValueError) as e:
        fut.result(30)
    assert str(e.value) == "boom"
    assert isinstance(e.value.__cause__, RemoteTraceback)
    tb = e.value.remote_traceback
    assert 'in fail\n    raise ValueError(msg)' in tb and tb.rstrip().endswith("ValueError: boom")
    assert "on node c1" in e.value.__notes__[0]
    assert fut.stderr == "about to fail\n"


def test_what_cannot_come_back_as_itself_comes_back_as_remote_error(star):
    c1 = star.node("c1")
    with pytest.raises(RemoteError) as e:
        c1.run(fail_unpicklably).result(30)
    assert e.value.type_name == "tests.client.test_run.Unpicklable"
    assert e.value.message == "has a lock" and e.value.node == "c1"
    assert "raise Unpicklable" in e.value.remote_traceback
    with pytest.raises(RemoteError, match="SystemExit: 3"):
        c1.run(exit_3).result(30)
    died = c1.run(die_by_sigkill)
    with pytest.raises(RemoteError, match=r"killed by signal 9 \(SIGKILL\) before returning"):
        died.result(30)
    assert died.returncode == -signal.SIGKILL
    with pytest.raises(TypeError, match="cannot be pickled"):
        c1.run(return_a_lock).result(30)


def test_lambdas_and_closures_are_refused_before_anything_starts(star):
    with pytest.raises(TypeError, match="pickled by reference"):
        star.node("c1").run(lambda: 1)

    def nested():
        return 1
    with pytest.raises(TypeError, match="lambdas, closures and nested functions"):
        star.node("c1").spawn(nested)


# ------------------------------------------------------------------ servers: spawn, stop

def serve_until_stopped(tag):
    print("serving", tag, flush=True)
    try:
        while True:
            time.sleep(0.05)
    except emu.Stopped:
        return "clean stop " + tag


def ignore_stop():
    while True:
        try:
            emu.ready()
            time.sleep(10)
        except emu.Stopped:
            print("ignoring stop", flush=True)


def start_grandchild():
    child = subprocess.Popen(["sleep", "60"])
    emu.ready(child.pid)
    child.wait()


def test_spawn_shows_output_so_far_and_stop_returns_what_the_function_returned(star):
    srv = star.node("c2").spawn(serve_until_stopped, "A")
    assert srv.is_alive()
    deadline = time.monotonic() + 10
    while "serving" not in srv.stdout and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.stdout == "serving A\n"
    assert srv.stop() == "clean stop A"
    assert not srv.is_alive() and srv.returncode == 0 and srv.result() == "clean stop A"


def test_stop_kills_a_function_that_ignores_it_and_its_children(star):
    stubborn = star.node("c3").spawn(ignore_stop)
    stubborn.wait_ready(30)
    assert stubborn.stop(timeout=0.3) is None
    assert stubborn.returncode == -signal.SIGKILL and "ignoring stop" in stubborn.stdout
    parent = star.node("c3").spawn(start_grandchild)
    grandchild = parent.wait_ready(30)
    assert _alive(grandchild)
    parent.stop()
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(grandchild)       # stop() signals the whole process group


def test_processes_on_nodes_end_with_the_lab():
    lab = emu.launch(TOPOLOGIES / "veth-bridge.yaml")
    try:
        server = lab.node("h1").spawn(serve_until_stopped, "B")
        sleeper = lab.node("h2").run(time.sleep, 60)
        run_dir = lab.run_dir
        pids = [server.pid, sleeper.pid]
        assert all(_alive(p) for p in pids)
    finally:
        lab.close()
    assert not any(_alive(p) for p in pids)
    assert not os.path.exists(run_dir)
    assert server.result(0) == "clean stop B"          # told to stop, not killed
    assert server.stdout == "serving B\n"               # kept after the run dir went
    with pytest.raises(RemoteError):
        sleeper.result(0)
    with pytest.raises(RuntimeError, match="closed"):
        lab.node("h1").run(time.sleep, 0)


def test_a_script_without_a_main_guard_gets_an_error_that_says_so(tmp_path):
    """The node process imports the parent's script to find the function (as
    multiprocessing's spawn does): a script launching its lab at the top level
    must not launch a second lab there, and its author is told why."""
    script = tmp_path / "noguard.py"
    script.write_text(
        "import emu\n\n"
        "def f(x):\n    return 2 * x\n\n"
        "with emu.launch(%r) as lab:\n"
        "    print(lab.node('h1').run(f, 21).result(30))\n" % str(TOPOLOGIES / "veth-bridge.yaml"))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert r.returncode != 0
    assert 'must launch its lab under `if __name__ == "__main__":`' in r.stderr, r.stderr[-2000:]
    guarded = tmp_path / "guarded.py"
    guarded.write_text(script.read_text().replace(
        "with emu.launch", "if __name__ == '__main__':\n  with emu.launch").replace(
        "    print(", "      print("))
    r = subprocess.run([sys.executable, str(guarded)], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert r.returncode == 0 and r.stdout.strip() == "42", r.stderr[-2000:]
