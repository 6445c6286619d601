"""Unmodified programs behave on an emu node as on the real host.

Each program in programs/ is plain Python (stdlib, or a framework from the
test extra): it serves and connects over loopback on ephemeral ports and
prints what it saw. It runs twice at once, on the host and on node h1
(`python PROG` as `emu exec h1 -- python PROG` runs it), and the test
compares exit status and output. Each run is bounded (RUN_TIMEOUT), so a
program that hangs at exit fails the test instead of stalling the suite.
"""
import importlib.util
import json
import os
import pathlib
import pty
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

import emu
from emu.client.exec import python_command
from tests.integration.conftest import TOPOLOGIES

PROGRAMS = pathlib.Path(__file__).parent / "programs"
RUN_TIMEOUT = 60
STDLIB = ["socketserver_makefile", "selectors_echo", "asyncio_all", "http_urllib",
          "xmlrpc_threads", "socket_api", "epoll_direct"]
# program -> the module it needs (from the test extra)
FRAMEWORKS = {"fw_trio": "trio", "fw_httpx": "httpx", "fw_requests": "requests",
              "fw_aiohttp": "aiohttp", "fw_tornado": "tornado", "fw_twisted": "twisted"}


@pytest.fixture(scope="module")
def lab():
    with emu.launch(TOPOLOGIES / "veth-bridge.yaml") as lab:
        yield lab


def lab_state(lab):
    """What `emu exec` reads from lab.json: the nodes' endpoints and the lab's names."""
    return {"nodes": {n: {"sys": lab.node(n).sys_endpoint} for n in ("h1", "h2")},
            "hosts": lab.topology.hosts()}


def on_node(lab, node, argv, **kw):
    cmd, env = python_command(lab_state(lab), node, argv)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def finish(proc, stdin=None):
    try:
        out, err = proc.communicate(stdin, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("did not end within %ds (a hang at exit?)\nstdout:\n%s\nstderr:\n%s"
                    % (RUN_TIMEOUT, out, err[-3000:]))
    return proc.returncode, out, err


def compare(lab, name):
    prog = str(PROGRAMS / (name + ".py"))
    host = subprocess.Popen([sys.executable, prog], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    node = on_node(lab, "h1", [prog])
    h_rc, h_out, h_err = finish(host)
    n_rc, n_out, n_err = finish(node)
    assert h_rc == 0, "the program fails on the host itself:\n" + h_err
    assert (n_rc, n_out) == (h_rc, h_out), "on the node:\n" + n_err[-3000:]
    assert h_out.rstrip().endswith("done")


@pytest.mark.parametrize("name", STDLIB)
def test_stdlib_program_runs_on_a_node_as_on_the_host(lab, name):
    compare(lab, name)


@pytest.mark.parametrize("name", sorted(FRAMEWORKS))
def test_framework_program_runs_on_a_node_as_on_the_host(lab, name):
    if importlib.util.find_spec(FRAMEWORKS[name]) is None:
        pytest.skip("%s is not installed (pip install -e '.[test]')" % FRAMEWORKS[name])
    compare(lab, name)


@pytest.mark.xfail(strict=True, reason="gevent's patched socket wraps _socket.socket, the C "
                   "class, so its sockets are the host's, not the node's")
def test_gevent_monkey_patched_sockets_are_the_nodes(lab):
    if importlib.util.find_spec("gevent") is None:
        pytest.skip("gevent is not installed")
    code = ("from gevent import monkey\nmonkey.patch_all()\nimport socket\n"
            "s = socket.socket()\ns.bind(('10.0.0.1', 0))\nprint(s.getsockname()[0])\n")
    rc, out, err = finish(on_node(lab, "h1", ["-c", code]))
    assert (rc, out) == (0, "10.0.0.1\n"), err


# ---------------------------------------------------------------- the class itself

DIR_CODE = "import socket, json; print(json.dumps(sorted(dir(socket.socket))))"


def test_node_socket_class_has_every_attribute_of_cpythons(lab):
    host = set(json.loads(subprocess.check_output([sys.executable, "-c", DIR_CODE], text=True)))
    rc, out, err = finish(on_node(lab, "h1", ["-c", DIR_CODE]))
    assert rc == 0, err
    assert host - set(json.loads(out)) == set()
    # A half-made socket (the kernel refused it) finalizes quietly: no
    # "Exception ignored in __del__" on stderr.
    rc, out, err = finish(on_node(lab, "h1", ["-c", (
        "import socket, gc\n"
        "try:\n    socket.socket(socket.AF_INET6)\nexcept OSError as e:\n    print(e.errno)\n"
        "gc.collect()\n")]))
    assert (rc, out.strip(), err) == (0, "97", "")


# ---------------------------------------------------------------- python's own forms

def test_python_dash_c_stdin_and_module_forms(lab):
    rc, out, _ = finish(on_node(lab, "h1", ["-c", "import socket, sys; print(socket.gethostname(), sys.argv)",
                                            "x", "y"]))
    assert (rc, out) == (0, "h1 ['-c', 'x', 'y']\n")
    prog = "import socket, sys\nprint(socket.gethostbyname('h2'), sys.argv)\nsys.exit(4)\n"
    rc, out, err = finish(on_node(lab, "h1", ["-", "arg"], stdin=subprocess.PIPE), prog)
    assert (rc, out) == (4, "10.0.0.2 ['-', 'arg']\n"), err
    # python -m http.server on h2, fetched from h1 across the bridge.
    port = 8000 + os.getpid() % 1000
    srv = on_node(lab, "h2", ["-m", "http.server", str(port), "--bind", "10.0.0.2",
                              "--directory", str(PROGRAMS)])
    try:
        fetch = ("import urllib.request, time\n"
                 "for i in range(100):\n"
                 "    try:\n"
                 "        r = urllib.request.urlopen('http://h2:%d/socket_api.py', timeout=5)\n"
                 "        break\n"
                 "    except OSError:\n"
                 "        time.sleep(0.1)\n"
                 "print(r.status, len(r.read()))\n" % port)
        rc, out, err = finish(on_node(lab, "h1", ["-c", fetch]))
        assert (rc, out) == (0, "200 %d\n" % (PROGRAMS / "socket_api.py").stat().st_size), err
    finally:
        srv.send_signal(signal.SIGINT)        # Ctrl-C: http.server's own exit
        rc, out, err = finish(srv)
    assert "Serving HTTP on 10.0.0.2 port %d" % port in out
    assert '"GET /socket_api.py HTTP/1.1" 200' in err


def test_interactive_repl_on_a_terminal(lab):
    # As `emu exec h1 -- python` runs it (exec.run_python), on a terminal:
    # Ctrl-C interrupts the statement, not the REPL.
    runner = ("import json, sys\nfrom emu.client.exec import run_python\n"
              "sys.exit(run_python(json.loads(sys.argv[1]), 'h1', []))\n")
    argv = [sys.executable, "-c", runner, json.dumps(lab_state(lab))]
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(__file__).resolve().parents[2]))
    pid, fd = pty.fork()
    if pid == 0:                                   # the child: on the terminal
        os.execve(argv[0], argv, env)
    out = b""

    def read_until(marker, limit=RUN_TIMEOUT):
        nonlocal out
        deadline = time.monotonic() + limit
        while marker not in out and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 1)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:                    # EIO: the terminal closed
                    return
                if not chunk:
                    return
                out += chunk

    try:
        read_until(b">>> ")
        os.write(fd, b"import socket, time\nsocket.gethostname(), socket.socket().family\n")
        read_until(b"AF_INET")
        os.write(fd, b"time.sleep(60)\n")
        time.sleep(1.0)
        os.write(fd, b"\x03")                        # Ctrl-C
        read_until(b"KeyboardInterrupt")
        os.write(fd, b"print(6 * 7)\nexit()\n")
        read_until(b"\n42")
        read_until(b"never", limit=10)             # to the end
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    text = out.decode(errors="replace")
    assert ">>> " in text and "(socket is bound to node h1's kernel)" in text
    assert "('h1', <AddressFamily.AF_INET: 2>)" in text
    assert "KeyboardInterrupt" in text and "\n42" in text
    assert os.waitstatus_to_exitcode(status) == 0


def test_closing_a_file_in_a_finalizer_at_exit_does_not_hang(lab):
    # The socket is closed while a file made from it is open, and the file is
    # left in a reference cycle: the interpreter's last collection closes it
    # at shutdown, when the thread that reads the node's replies is gone.
    code = ("import socket, threading, gc\n"
            "gc.disable()\n"
            "srv = socket.create_server(('127.0.0.1', 0))\n"
            "c = socket.create_connection(srv.getsockname())\n"
            "conn, _ = srv.accept()\n"
            "class Holder: pass\n"
            "h = Holder(); h.me = h; h.f = c.makefile('rwb'); h.g = conn.makefile('rb')\n"
            "h.f.write(b'hi\\n'); h.f.flush(); print(h.g.readline())\n"
            "c.close(); conn.close(); srv.close()\n"
            "del h\n")
    t = time.monotonic()
    rc, out, err = finish(on_node(lab, "h1", ["-c", code]))
    assert (rc, out, err) == (0, "b'hi\\n'\n", "")
    assert time.monotonic() - t < RUN_TIMEOUT


def test_socket_module_stays_real_for_unix_sockets(lab):
    code = ("import socket\n"
            "a, b = socket.socketpair()\n"
            "a.sendall(b'x'); print(b.recv(1), a.fileno() < 1 << 30, isinstance(a, socket.socket))\n")
    rc, out, err = finish(on_node(lab, "h1", ["-c", code]))
    assert (rc, out) == (0, "b'x' True True\n"), err
    assert socket.socket.__module__ == "socket"      # the test process's own is untouched


def test_python_options_that_skip_the_binding_are_refused(capsys):
    # -I, -E and -S skip sitecustomize: the program would use the host's network.
    from emu.client.exec import run_python
    for argv in (["-I", "app.py"], ["-uE", "-c", "pass"], ["-X", "dev", "-S", "app.py"]):
        assert run_python({}, "h1", argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "skips the startup hook that binds the program to h1" in err
