"""pytest plugin: labs as fixtures, torn down whatever happens to the test.

Registered through the `pytest11` entry point, so installing emu is enough:

    def test_ping(emu_lab):                       # a factory: any number of labs
        lab = emu_lab("topologies/veth-bridge.yaml")
        assert lab.node("h1").ping("h2").received == 3

    @pytest.mark.topology("topologies/star4.yaml")
    def test_kv(lab):                             # one lab from the marker
        fut = lab.node("c1").run(client, "kv")

A relative topology path is looked up next to the test file, then in the
rootdir, then in the current directory. Options (timeout=, base=, clock=,
seed=) go to emu.launch; --emu-clock and --emu-seed on the command line
override every lab's (a failing virtual-time test prints the command that
replays it).

Teardown is guaranteed in layers: the fixture closes its labs after the test
whatever its outcome (with SIGALRM and SIGINT held back until the close is
done, so pytest-timeout's signal method cannot cut a teardown in half: its
timeout then fires right after); labs still open at the end of the session
are closed; and a reaper process (emu.client.reaper) removes the labs of a
test process that died without any teardown (pytest-timeout's thread method
calls os._exit; a worker may be SIGKILLed), while the nodes and the
processes on them end by themselves when their parent dies.

A test whose lab lost a node it did not kill itself (through the lab's
API: node.kill(), a fault schedule) fails, showing that node's log.

A test that fails in setup or call gets a report section per lab: each
node's non-zero counters, drop reasons and log tail, and the output of the
processes it ran on the nodes. Lab names carry the xdist worker id
(veth-bridge.gw3), and each lab has its own run directory, which holds all
of its endpoints, so labs in different workers never collide.
"""
import contextlib
import dataclasses
import os
import signal
import threading
from pathlib import Path

import pytest

_LABS = pytest.StashKey[list]()          # item -> the LabHandles it started
_PLUGIN_NAME = "emu-lab-manager"


def pytest_addoption(parser):
    group = parser.getgroup("emu")
    group.addoption("--emu-clock", choices=("real", "virtual"), default=None,
                    help="run every lab on this clock (default: each lab's file or marker)")
    group.addoption("--emu-seed", type=int, default=None,
                    help="the seed of every lab (replays a virtual-time test)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "topology(path, **options): the lab the `lab` fixture starts for this test "
        "(options go to emu.launch: timeout, base, clock, seed)")
    config.addinivalue_line(
        "markers", "real_time(reason): the test needs labs on the host's clock (the real "
        "network, frames from outside the lab): skipped under --emu-clock virtual")
    config.pluginmanager.register(LabManager(config), _PLUGIN_NAME)
    # --emu-clock/--emu-seed reach every emu.launch of the session, fixtures of
    # the project's own included (`make test-virtual` runs a suite that way).
    from .client import lab as _lab
    _lab.FORCED["clock"] = config.getoption("emu_clock", None)
    _lab.FORCED["seed"] = config.getoption("emu_seed", None)


def pytest_collection_modifyitems(config, items):
    if config.getoption("emu_clock", None) != "virtual":
        return
    for item in items:
        m = item.get_closest_marker("real_time")
        if m is not None:
            item.add_marker(pytest.mark.skip(reason="real time only: %s" % (
                m.args[0] if m.args else "needs the host's clock")))


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGALRM and SIGINT until the block is done, then deliver them.

    Blocking the signal in this thread is not enough (another thread may take
    it and Python still runs the handler here); swapping the Python-level
    handler is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    saved = {}
    for sig in (signal.SIGALRM, signal.SIGINT):
        if signal.getsignal(sig) is None:
            continue                         # set outside Python: cannot be put back
        saved[sig] = signal.signal(sig, lambda s, f: pending.append((s, f)))
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        for sig, frame in pending:
            handler = saved.get(sig)
            if callable(handler):
                handler(sig, frame)          # e.g. pytest-timeout's: fails the test now
            elif handler == signal.SIG_DFL and sig == signal.SIGINT:
                raise KeyboardInterrupt


class LabManager:
    """Per pytest process: starts labs, closes them, registers them with the reaper."""

    def __init__(self, config):
        self.config = config
        self.reaper = None
        self.open = []
        self.lock = threading.Lock()

    def find_topology(self, topology, test_path):
        if not isinstance(topology, (str, os.PathLike)):
            return topology                  # a Topology object
        path = Path(topology)
        if path.is_absolute():
            return path
        tried = []
        for base in (Path(test_path).parent if test_path else None, self.config.rootpath,
                     self.config.invocation_params.dir):
            if base is None:
                continue
            candidate = base / path
            if candidate.is_file():
                return candidate
            if str(candidate) not in tried:
                tried.append(str(candidate))
        raise FileNotFoundError("topology %s not found (looked at %s)" % (topology, ", ".join(tried)))

    def launch(self, topology, test_path=None, **options):
        from .client.lab import launch
        from .topology import load_topology
        found = self.find_topology(topology, test_path)
        topo = load_topology(str(found)) if isinstance(found, Path) else found
        # The xdist worker's id, from xdist itself: the environment variable is
        # also inherited by pytest sessions that a worker starts.
        worker = getattr(self.config, "workerinput", {}).get("workerid")
        if worker:
            topo = dataclasses.replace(topo, name="%s.%s" % (topo.name[:48], worker))
        lab = launch(topo, **options)        # --emu-clock/--emu-seed win: client/lab.py FORCED
        try:
            if self.reaper is None:
                from .client.reaper import Reaper
                self.reaper = Reaper()
            self.reaper.register(lab.run_dir, [[i["pid"], i.get("create_time")]
                                               for i in lab._lab.nodes.values()])
        except BaseException:
            lab.close()
            raise
        with self.lock:
            self.open.append(lab)
        return lab

    def close(self, lab):
        """Close one lab; SIGALRM/SIGINT wait until it is gone."""
        with self.lock:
            if lab not in self.open:
                return
            self.open.remove(lab)
        with _signals_deferred():
            try:
                lab.close()
            finally:
                if self.reaper is not None:
                    self.reaper.unregister(lab.run_dir)

    def close_all(self, labs):
        """Close labs in reverse order; every one is closed even if another fails."""
        errors = []
        for lab in reversed(labs):
            try:
                self.close(lab)
            except Exception as e:       # keep closing the others
                errors.append(e)
        if errors:
            raise errors[0]

    # ------------------------------------------------------------- hooks
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if call.when == "call":
            lost = _lost_nodes(item.stash.get(_LABS, []))
            if lost:
                # A node died that the test did not kill itself: that fails the test.
                report.outcome = "failed"
                report.longrepr = lost if report.longrepr is None else \
                    "%s\n\n%s" % (report.longrepr, lost)
        if report.failed and call.when in ("setup", "call"):
            for lab in item.stash.get(_LABS, []):
                if lab.clock == "virtual":
                    report.sections.append(("emu replay", "lab %s ran on virtual time, seed %d: "
                                            "replay with\n  pytest '%s' --emu-clock virtual "
                                            "--emu-seed %d" % (lab.name, lab.seed, item.nodeid,
                                                               lab.seed)))
                if lab in self.open and not lab.closed:
                    try:
                        text = lab.evidence()
                    except Exception as e:   # evidence must never hide the failure
                        text = "evidence unavailable: %r" % (e,)
                    report.sections.append(("emu lab %s" % lab.name, text))
        return report

    def pytest_unconfigure(self, config):
        with self.lock:
            left = list(self.open)
        try:
            self.close_all(left)
        finally:
            if self.reaper is not None:
                self.reaper.close()


def _lost_nodes(labs):
    """Text about every node of these labs that died unasked, with its log, or ''."""
    out = []
    for lab in labs:
        try:
            lost = lab.lost_nodes()
        except Exception:
            continue
        for name, ex in lost:
            how = ex.get("signal") or "exit status %s" % ex.get("code")
            out.append("emu lab %s lost node %s (%s), which the test did not kill; its log ends:\n  %s"
                       % (lab.name, name, how, "\n  ".join(ex.get("log") or ["(empty)"])))
    return "\n".join(out)


def _manager(config):
    return config.pluginmanager.get_plugin(_PLUGIN_NAME)


@pytest.fixture
def emu_lab(request):
    """A factory: emu_lab(topology, **options) starts a lab, closed after the test.

    topology is a file path (relative: next to the test, then the rootdir,
    then the current directory) or a Topology; options go to emu.launch
    (timeout=, base=). Returns an emu LabHandle.
    """
    mgr = _manager(request.config)
    started = []
    test_path = getattr(request, "path", None)

    def factory(topology, **options):
        lab = mgr.launch(topology, test_path, **options)
        started.append(lab)
        request.node.stash.setdefault(_LABS, []).append(lab)
        return lab

    yield factory
    mgr.close_all(started)


@pytest.fixture
def lab(request, emu_lab):
    """The lab named by the test's @pytest.mark.topology("file.yaml", **options)."""
    marker = request.node.get_closest_marker("topology")
    if marker is None or not marker.args:
        pytest.fail("the `lab` fixture needs @pytest.mark.topology(\"file.yaml\") on the test, "
                    "its class or its module", pytrace=False)
    return emu_lab(*marker.args, **marker.kwargs)
