"""Run Python functions in user processes attached to lab nodes.

    fut = lab.node("h1").run(client, "h2", 7000)      # a concurrent.futures.Future
    srv = lab.node("h2").spawn(server, 7000)          # the same kind of handle
    srv.wait_ready()                                  # the server called emu.ready()
    print(fut.result(timeout=10), fut.stdout)
    srv.stop()

Each call starts a NEW process (`python -c ...`, never a fork of the test
process, which holds ZeroMQ contexts and threads). In it, before the function
is unpickled, the standard socket module is bound to the node's kernel
(emu.client.shim), so the function's own `import socket` makes emulated
sockets. The function and its arguments travel by pickle, functions BY
REFERENCE: define them at module level in an importable module (a test file
is fine; the child gets the parent's sys.path and working directory).
Lambdas, closures and nested functions cannot be pickled that way; emu does
not depend on cloudpickle, pass such code as a module-level function instead.

The return value comes back pickled; an exception comes back as itself when
it pickles (else as RemoteError), with the remote traceback text chained as
its __cause__ and in .remote_traceback. stdout and stderr go to files in the
lab's run directory, readable while the process runs (.stdout, .stderr).

The lab owns these processes: LabHandle.close() stops them (SIGTERM, which
raises Stopped inside the function, then SIGKILL) before the nodes, and each
dies with its parent (PR_SET_PDEATHSIG and a watchdog on its parent PID), so
none outlives the test. Each is the leader of its own process group, and
stop() signals that group, so what the function started goes too.
"""
import concurrent.futures
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import traceback

from ..nodes.node import set_pdeathsig, watchdog

_HDR = struct.Struct("!I")
_OUTPUT_KEEP = 1 << 20           # bytes of stdout/stderr kept after the run dir is gone
_FD_ENV = "EMU_RUN_FD"
_NODE_ENV = "EMU_NODE"
_write_lock = threading.Lock()    # ready() from any thread vs the final result


class Stopped(BaseException):
    """Raised inside a function on a node when its process is told to stop.

    A BaseException, like KeyboardInterrupt, so that `except Exception` in a
    server loop does not swallow it; catch it to clean up or to return a value
    that stop() hands back.
    """


class RemoteError(Exception):
    """An exception from a function on a node that could not come back as itself."""

    def __init__(self, type_name, message, remote_traceback="", node=None):
        super().__init__(type_name, message)
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback
        self.node = node

    def __str__(self):
        where = " (on node %s)" % self.node if self.node else ""
        return "%s: %s%s" % (self.type_name, self.message, where) if self.message else \
            "%s%s" % (self.type_name, where)


class RemoteTraceback(Exception):
    """The traceback text of an exception raised on a node (chained as __cause__)."""

    def __init__(self, tb):
        super().__init__(tb)
        self.tb = tb

    def __str__(self):
        return '\n"""\n%s"""' % self.tb


def ready(value=None):
    """Tell the test this function is ready (e.g. bound); handle.wait_ready() returns value.

    A no-op returning False outside a process started by Node.run/spawn, so the
    same function can also run locally.
    """
    fd = os.environ.get(_FD_ENV)
    if fd is None:
        return False
    _send(int(fd), {"kind": "ready", "value": pickle.dumps(value)})
    return True


def current_node():
    """The name of the node this process is attached to (None outside one)."""
    return os.environ.get(_NODE_ENV)


def _send(fd, msg):
    data = pickle.dumps(msg)
    with _write_lock:
        view = memoryview(_HDR.pack(len(data)) + data)
        while view:
            view = view[os.write(fd, view):]


def _recv_all(fd):
    """Yield messages from the child until EOF (a torn last message ends it too)."""
    buf = bytearray()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            return
        buf += chunk
        while len(buf) >= 4:
            (n,) = _HDR.unpack_from(buf)
            if len(buf) < 4 + n:
                break
            try:
                yield pickle.loads(bytes(buf[4:4 + n]))
            except Exception:
                pass              # a message we cannot read: treat as not sent
            del buf[:4 + n]


def _func_name(func):
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


def _pickle_call(func, args, kwargs):
    try:
        return pickle.dumps((func, args, kwargs))
    except (pickle.PicklingError, AttributeError, TypeError) as e:
        raise TypeError(
            "cannot send %s to a node: %s. Functions are pickled by reference: define them "
            "at module level in an importable module (lambdas, closures and nested "
            "functions are not supported; emu does not use cloudpickle)" % (_func_name(func), e)) from None


def _preparation():
    """What the child needs to import what the parent can: sys.path, cwd, __main__."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    prep = {"sys_path": list(sys.path), "cwd": os.getcwd()}
    if spec is not None and spec.name not in ("__main__", None):
        prep["main_name"] = spec.name
    elif getattr(main, "__file__", None):
        prep["main_path"] = os.path.abspath(main.__file__)
    return prep


class NodeProcess(concurrent.futures.Future):
    """A function running in a user process on a node: a Future plus the process.

    result()/exception()/done() and concurrent.futures.wait() work as for any
    Future. Also: stop(), kill(), is_alive(), wait_ready(), stdout, stderr, pid.
    """

    def __init__(self, node, func, args, kwargs, seq):
        super().__init__()
        self.node = node.name
        self.name = _func_name(func)
        payload = _pickle_call(func, args, kwargs)
        self._ready = threading.Event()
        self._ready_value = None
        self._started = threading.Event()
        self._outcome = None
        self._reap_lock = threading.Lock()
        self._did_start = False
        self._final_out = self._final_err = None
        proc_dir = os.path.join(node.lab.run_dir, "proc")
        os.makedirs(proc_dir, exist_ok=True)
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in self.name)[:40]
        stem = os.path.join(proc_dir, "%s-%d-%s" % (node.name, seq, safe))
        self.stdout_path, self.stderr_path = stem + ".out", stem + ".err"
        hosts = node.lab.topology.hosts()
        spec = {"node": node.name, "sys": node.sys_endpoint, "hosts": hosts,
                "prep": _preparation(), "payload": payload,
                "main_needed": b"__main__" in payload}
        self._hold = None
        env = dict(os.environ)
        if node.lab._lab.virtual:
            # Registered with the lab's clock until it ends (exec.vt_hold).
            from .exec import vt_hold
            self._hold, spec["vt"] = vt_hold({"run_dir": node.lab.run_dir,
                                              "seed": node.lab._lab.topo.seed}, node.name)
            env["PYTHONHASHSEED"] = str(spec["vt"]["hashseed"])
        rfd, wfd = os.pipe()
        env[_FD_ENV] = str(wfd)
        env[_NODE_ENV] = node.name
        parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        # PR_SET_PDEATHSIG follows the thread that forks: only ask from the main thread.
        pdeath = threading.current_thread() is threading.main_thread()
        cmd = [sys.executable, "-c", "from emu.client.run import _child_main; _child_main()",
               str(os.getpid()), "1" if pdeath else "0"]
        try:
            with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
                self._popen = subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=out, stderr=err, env=env,
                    pass_fds=(wfd,), start_new_session=True, cwd=spec["prep"]["cwd"])
        except BaseException:
            os.close(rfd)
            if self._hold is not None:
                self._hold.close()
            raise
        finally:
            os.close(wfd)
        self.pid = self._popen.pid
        self.set_running_or_notify_cancel()
        threading.Thread(target=self._watch, args=(rfd, spec), daemon=True,
                         name="emu-run %s@%s" % (self.name, self.node)).start()

    def __repr__(self):
        state = "running" if self.is_alive() else "finished"
        return "<emu.NodeProcess %s on %s pid=%d %s>" % (self.name, self.node, self.pid, state)

    # ------------------------------------------------------------- watching
    def _watch(self, rfd, spec):
        try:
            try:
                self._popen.stdin.write(pickle.dumps(spec))
                self._popen.stdin.close()
            except OSError:
                pass              # it died before reading: its status tells why
            for msg in _recv_all(rfd):
                kind = msg.get("kind")
                if kind == "started":
                    self._did_start = True
                    self._started.set()
                elif kind == "ready":
                    self._ready_value = msg.get("value")
                    self._ready.set()
                elif kind in ("result", "error"):
                    self._outcome = msg
        finally:
            os.close(rfd)
            # Exited (EOF): wait without reaping, then reap under the lock that
            # stop() holds while signalling, so we never signal a recycled PID.
            try:
                os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                pass
            with self._reap_lock:
                self._popen.wait()
            if self._hold is not None:
                self._hold.close()           # the lab's time no longer waits for it
            self._keep_output()
            self._started.set()
            self._ready.set()
            self._finish()

    def _finish(self):
        o = self._outcome
        if o is not None and o["kind"] == "result":
            try:
                self.set_result(pickle.loads(o["value"]))
            except Exception as e:
                self.set_exception(RemoteError(type(e).__name__, "cannot unpickle the result of %s: %s"
                                               % (self.name, e), node=self.node))
            return
        if o is not None:
            self.set_exception(self._rebuild(o))
            return
        status = self._popen.returncode
        how = ("was killed by signal %d (%s)" % (-status, signal.Signals(-status).name)
               if status < 0 else "exited with status %d" % status)
        tail = "\n".join((self._final_err or "").splitlines()[-20:])
        self.set_exception(RemoteError(
            "ProcessDied", "the process running %s %s before returning%s"
            % (self.name, how, ("; stderr:\n" + tail) if tail else ""), node=self.node))

    def _rebuild(self, o):
        """The exception object if it survived pickling, else a RemoteError."""
        exc = None
        if o.get("exc") is not None:
            try:
                exc = pickle.loads(o["exc"])
            except Exception:
                exc = None
        tb = o.get("tb", "")
        if not isinstance(exc, Exception):
            exc = RemoteError(o.get("type", "Exception"), o.get("msg", ""), tb, self.node)
        exc.__cause__ = RemoteTraceback(tb)
        exc.remote_traceback = tb
        try:
            exc.add_note("(raised by %s on node %s, pid %d)" % (self.name, self.node, self.pid))
        except AttributeError:
            pass
        return exc

    def _keep_output(self):
        """Read what the process wrote: the files go with the run directory."""
        def tail(path):
            try:
                with open(path, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    f.seek(max(0, f.tell() - _OUTPUT_KEEP))
                    return f.read().decode(errors="replace")
            except OSError:
                return ""
        self._final_out = tail(self.stdout_path)
        self._final_err = tail(self.stderr_path)

    # ------------------------------------------------------------- the handle
    def is_alive(self):
        return self._popen.returncode is None and not self.done()

    @property
    def returncode(self):
        """The exit status once the process has ended (negative: a signal), else None."""
        return self._popen.returncode

    def _output(self, path, final):
        if final is not None:
            return final
        try:
            with open(path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    @property
    def stdout(self):
        """What the function printed so far (all of it once it has ended)."""
        return self._output(self.stdout_path, self._final_out)

    @property
    def stderr(self):
        return self._output(self.stderr_path, self._final_err)

    def wait_started(self, timeout=30.0):
        """Wait until the function has been called (imports done, socket bound)."""
        if not self._started.wait(timeout):
            raise TimeoutError("%s on %s did not start within %.1f s" % (self.name, self.node, timeout))
        if not self._did_start:
            self.result(0)            # it ended before the call: raises why
        return self

    def wait_ready(self, timeout=30.0):
        """Wait until the function calls emu.ready(value); returns value.

        Raises the function's exception (or RemoteError) if it ended first.
        """
        if not self._ready.wait(timeout):
            raise TimeoutError("%s on %s did not call emu.ready() within %.1f s"
                               % (self.name, self.node, timeout))
        if self._ready_value is None:
            # Ended without calling ready(): say how.
            if self.done():
                exc = self.exception(0)
                if exc is not None:
                    raise exc
            raise RuntimeError("%s on %s returned without calling emu.ready()" % (self.name, self.node))
        return pickle.loads(self._ready_value)

    def _signal(self, sig):
        with self._reap_lock:
            if self._popen.returncode is not None:
                return False
            try:
                os.killpg(self.pid, sig)      # its own group (start_new_session)
            except ProcessLookupError:
                return False
            return True

    def kill(self):
        """SIGKILL the process (and its process group) at once."""
        self._signal(signal.SIGKILL)

    def stop(self, timeout=2.0):
        """Stop the process: SIGTERM raises Stopped in the function; SIGKILL after timeout.

        Returns what the function returned if it caught Stopped and returned;
        None if it was stopped (or had already ended with an exception).
        """
        if self._signal(signal.SIGTERM):
            try:
                concurrent.futures.wait([self], timeout)
            finally:
                if not self.done():
                    self.kill()
        concurrent.futures.wait([self])
        if self.exception() is None:
            return self.result()
        return None

    def stop_async(self):
        """Send SIGTERM without waiting (LabHandle.close stops many at once)."""
        return self._signal(signal.SIGTERM)


def wait_all(futures, timeout=None):
    """Wait for every future; return their results in order.

    If any raised, the first (in list order) is raised once all have ended.
    TimeoutError if some are still running after timeout seconds.
    """
    futures = list(futures)
    done, not_done = concurrent.futures.wait(futures, timeout)
    if not_done:
        names = ", ".join(repr(f) for f in futures if f in not_done)
        raise TimeoutError("%d of %d still running after %s s: %s"
                           % (len(not_done), len(futures), timeout, names))
    return [f.result() for f in futures]


# ------------------------------------------------------------------ child side

def _on_sigterm(signum, frame):
    raise Stopped("stopped by the lab (SIGTERM)")


_IMPORTING_MAIN = [False]


def importing_main():
    """True while a node process runs the parent's script to find its function
    (emu.launch refuses to start a lab then: the script lacks a __main__ guard)."""
    return _IMPORTING_MAIN[0]


def _fixup_main(prep):
    """Make the parent's __main__ importable here, as multiprocessing's spawn does."""
    import runpy
    import types
    mod = types.ModuleType("__mp_main__")
    _IMPORTING_MAIN[0] = True
    try:
        if "main_name" in prep:
            mod.__dict__.update(runpy.run_module(prep["main_name"], run_name="__mp_main__",
                                                 alter_sys=True))
        elif "main_path" in prep:
            mod.__dict__.update(runpy.run_path(prep["main_path"], run_name="__mp_main__"))
        else:
            return
    finally:
        _IMPORTING_MAIN[0] = False
    sys.modules["__main__"] = sys.modules["__mp_main__"] = mod


def _child_main():
    """The user process: bind socket to the node, call the function, report back."""
    parent_pid, pdeath = int(sys.argv[1]), sys.argv[2] == "1"
    fd = int(os.environ[_FD_ENV])
    if pdeath:
        set_pdeathsig()
    if os.getppid() != parent_pid:
        os._exit(3)              # the parent died before we got here
    threading.Thread(target=watchdog, args=(parent_pid,), daemon=True, name="emu-watchdog").start()
    os.set_inheritable(fd, False)        # what the function starts must not hold it open
    signal.signal(signal.SIGTERM, _on_sigterm)
    phase = "load"
    try:
        spec = pickle.loads(sys.stdin.buffer.read())
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        prep = spec["prep"]
        sys.path[:] = prep["sys_path"]
        from . import shim
        binding = shim.install(spec["sys"], spec["hosts"], spec["node"])
        if spec.get("vt"):
            from . import vtime         # a virtual-time lab: its time and seeds
            vtime.install(spec["vt"], binding)
        if spec.get("main_needed"):
            _fixup_main(prep)
        func, args, kwargs = pickle.loads(spec["payload"])
        _send(fd, {"kind": "started"})
        phase = "call"
        value = func(*args, **kwargs)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)     # done: nothing left to interrupt
        try:
            msg = {"kind": "result", "value": pickle.dumps(value)}
        except Exception as e:
            raise TypeError("the return value of %s cannot be pickled: %s" % (_func_name(func), e)) from None
        _send(fd, msg)
        status = 0
    except BaseException as e:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _send(fd, _error_message(e, phase))
        status = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        # No interpreter teardown: threads the function left behind must not keep us.
        os._exit(status)


def _error_message(e, phase):
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    try:
        blob = pickle.dumps(e)
        pickle.loads(blob)            # some exceptions pickle but cannot be rebuilt
    except Exception:
        blob = None
    t = type(e)
    name = t.__qualname__ if t.__module__ in ("builtins", "__main__") else \
        "%s.%s" % (t.__module__, t.__qualname__)
    return {"kind": "error", "exc": blob, "type": name, "msg": str(e), "tb": tb, "phase": phase}

