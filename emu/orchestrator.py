"""Topology -> running lab: spawn the node processes, wire and configure them,
watch them, and tear them down by PID.

The orchestrator ends only the processes it started (recorded with their
create times, so a recycled PID is never hit) and removes only the run
directory it made.
"""
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

import psutil

from .client.rpc import ControlClient, NodeUnreachable
from .topology import Topology, load_topology

STATE_FILE = "lab.json"


class LabError(RuntimeError):
    """The lab could not start; the message names the node and what it said."""


def run_base():
    """Where labs keep their run directories (short: ipc paths have a 107-byte limit)."""
    return os.environ.get("EMU_RUN_BASE") or "/tmp/emu-%d" % os.getuid()


def check_run_base(base, create=False):
    """The run base must be a real directory of ours with mode 0700, or emu refuses it.

    Anyone who could write there could plant a lab.json naming processes for
    `emu down` to kill, or sockets for our nodes to talk to.
    """
    if create:
        try:
            os.makedirs(base, mode=0o700, exist_ok=True)
        except OSError as e:
            raise LabError("run base %s: %s" % (base, e.strerror or e)) from None
    try:
        st = os.lstat(base)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise LabError("run base %s: %s" % (base, e.strerror or e)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise LabError("run base %s is not a directory (a symlink?): emu refuses to use it" % base)
    if st.st_uid != os.getuid():
        raise LabError("run base %s is owned by uid %d, not you (uid %d): emu refuses to use it"
                       % (base, st.st_uid, os.getuid()))
    if st.st_mode & 0o077:
        raise LabError("run base %s has mode %04o, not 0700: emu refuses to use it "
                       "(chmod 700 %s)" % (base, stat.S_IMODE(st.st_mode), base))
    return True


def _owned_dir(path):
    """A real directory (not a symlink) owned by us."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()


def _package_parent():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Lab:
    """One running lab: its node processes, run directory and state file."""

    def __init__(self, topology, base=None):
        self.topo = topology if isinstance(topology, Topology) else load_topology(topology)
        self.base = base or run_base()
        self.run_dir = None
        self.procs = {}          # node name -> Popen
        self.nodes = {}          # node name -> state dict (pid, endpoints, ...)
        self.ctl = {}            # node name -> ControlClient
        self.started = False
        self.lock = threading.Lock()
        self.only = None         # set of node names _configure is limited to (restarts)
        self.supervisor = None   # emu.supervisor.Supervisor, once started

    # ------------------------------------------------------------- start
    def start(self, timeout=30.0):
        check_run_base(self.base, create=True)
        self.run_dir = tempfile.mkdtemp(prefix=self.topo.name[:24] + "-", dir=self.base)
        try:
            self._spawn()
            # Recorded at once: if we die while starting, `emu down` still
            # finds the run directory and the PIDs it holds.
            self.write_state("starting")
            self._wait_ready(timeout)
            self._configure()
            self.started = True
            self.write_state("running")
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = _package_parent() + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        # PR_SET_PDEATHSIG follows the thread that forks: use it only from the main thread.
        pdeath = threading.current_thread() is threading.main_thread()
        for i, node in enumerate(self.topo.nodes):
            self._spawn_one(node, i + 1, env, pdeath)

    def _spawn_one(self, node, node_id, env, pdeath):
        """Start one node process (again, for a restart: its state dict is updated in place)."""
        assert self.run_dir is not None
        logpath = os.path.join(self.run_dir, node.name + ".log")
        cmd = [sys.executable, "-m", "emu.nodes.node", "--name", node.name,
               "--kind", node.kind, "--cpus", str(node.cpus), "--run-dir", self.run_dir,
               "--parent-pid", str(os.getpid()), "--node-id", str(node_id),
               "--seed", str(self.topo.seed)]
        if pdeath:
            cmd.append("--pdeathsig")
        with open(logpath, "ab") as logf:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                    stderr=subprocess.STDOUT, env=env, close_fds=True)
        self.procs[node.name] = proc
        try:
            ctime = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            ctime = None
        info = self.nodes.setdefault(node.name, {})
        info.update({
            "pid": proc.pid, "create_time": ctime, "cmdline": cmd,
            "kind": node.kind, "cpus": node.cpus,
            "ctl": "ipc://%s/%s.ctl" % (self.run_dir, node.name),
            "sys": "%s/%s.sys" % (self.run_dir, node.name),
            "log": logpath})
        old = self.ctl.get(node.name)
        if old is not None:
            old.close()
        self.ctl[node.name] = ControlClient(info["ctl"])
        return proc

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        pending = set(self.nodes)
        while pending:
            for name in list(pending):
                proc = self.procs[name]
                if proc.poll() is not None:
                    raise LabError("node %s exited during boot (status %s): %s"
                                   % (name, proc.returncode, self.log_tail(name, 5)))
                try:
                    self.ctl[name].call("ping", timeout=0.2)
                    pending.discard(name)
                except NodeUnreachable:
                    pass
            if pending and time.monotonic() > deadline:
                raise LabError("nodes did not start within %.0f s: %s" % (timeout, ", ".join(sorted(pending))))

    def _call(self, node, op, **args):
        if self.only is not None and node not in self.only:
            return None              # configuring one node again (a restart)
        try:
            return self.ctl[node].call(op, **args)
        except OSError as e:
            raise LabError("%s: configuring node %s: %s %s: %s"
                           % (self.topo.path, node, op, args, e.strerror or e)) from None

    def _configure(self):
        topo = self.topo
        iface = {(n.name, i.name): i for n in topo.nodes for i in n.interfaces}
        for link in topo.links:
            if link.type == "tap":
                i = iface.get((link.a.node, link.a.ifname))
                self._call(link.a.node, "tap_attach", ifname=link.a.ifname, tap=link.tap,
                           netns=link.netns, mac=i.mac if i is not None else None,
                           mtu=i.mtu if i is not None else None)
                continue
            assert link.b is not None            # only a tap link has one end
            ends = ((link.a, link.b, "a", "b"), (link.b, link.a, "b", "a"))
            for me, peer, mine, theirs in ends:
                i = iface.get((me.node, me.ifname))
                self._call(me.node, "wire_attach", ifname=me.ifname,
                           rx="ipc://%s/w%d%s" % (self.run_dir, link.index, mine),
                           tx="ipc://%s/w%d%s" % (self.run_dir, link.index, theirs),
                           mac=i.mac if i is not None else None,
                           mtu=i.mtu if i is not None else None, peer=str(peer),
                           kind=link.type,
                           queues=(i.queues or 1) if i is not None else 1)
        linked = {(e.node, e.ifname) for l in topo.links for e in l.ends()}
        # Every linked device is up before any address is added: adding one sends a
        # gratuitous ARP, which a peer still down would drop (DEV_READY) and count.
        for node in topo.nodes:
            if node.kind != "bridge":
                for i in node.interfaces:
                    if (node.name, i.name) in linked:
                        self._call(node.name, "link_set", name=i.name, up=True)
        for node in sorted(topo.nodes, key=lambda n: n.kind != "bridge"):
            if node.kind == "bridge":
                self._call(node.name, "link_add", name=node.name, kind="bridge")
                for i in node.interfaces:
                    if (node.name, i.name) in linked:
                        self._call(node.name, "link_set", name=i.name, master=node.name, up=True)
                self._call(node.name, "link_set", name=node.name, up=True)
                for i in node.interfaces:
                    for a in i.addresses:
                        self._call(node.name, "addr_add", dev=node.name, address=str(a))
                continue
            for i in node.interfaces:
                if (node.name, i.name) not in linked:
                    continue
                for a in i.addresses:
                    self._call(node.name, "addr_add", dev=i.name, address=str(a))
            for r in node.routes:
                self._call(node.name, "route_add", dst=r.dst, via=r.via, dev=r.dev, metric=r.metric)
            for k, v in node.sysctls:
                self._call(node.name, "sysctl_set", name=k, value=v)
        self._configure_netem()

    def _configure_netem(self):
        """Link `netem:` keys: a netem root qdisc on each impaired end (what it sends)."""
        from .netem import parse_netem, spec_to_args
        for link in self.topo.links:
            for end, spec in link.netem:
                opts = parse_netem(spec_to_args(dict(spec)))
                self._call(end.node, "qdisc_add", dev=end.ifname, kind="netem", replace=True,
                           **opts)

    # ------------------------------------------------------------- state
    def state(self, status):
        return {"name": self.topo.name, "topology": os.path.abspath(self.topo.path)
                if os.path.exists(self.topo.path) else self.topo.path,
                "run_dir": self.run_dir, "orchestrator_pid": os.getpid(),
                "orchestrator_create_time": psutil.Process().create_time(),
                "orchestrator_cmdline": psutil.Process().cmdline(),
                "status": status, "nodes": self.nodes, "hosts": self.topo.hosts(),
                "started_at": time.time()}

    def write_state(self, status):
        assert self.run_dir is not None
        path = os.path.join(self.run_dir, STATE_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state(status), f, indent=1)
        os.replace(tmp, path)

    def log_tail(self, name, lines=20):
        try:
            with open(self.nodes[name]["log"], "rb") as f:
                data = f.read()[-8192:].decode(errors="replace")
            return " | ".join(data.strip().splitlines()[-lines:])
        except (OSError, KeyError):
            return ""

    # ------------------------------------------------------------- stop
    def stop(self, grace=2.0):
        """Shut every node down (ask, then SIGTERM, then SIGKILL) and remove the run dir."""
        if self.supervisor is not None:
            self.supervisor.close()          # no restarts of what we now stop
        with self.lock:
            for name in self.procs:
                if self.procs[name].poll() is None:
                    try:
                        self.ctl[name].call("shutdown", timeout=0.5)
                    except OSError:
                        pass
            deadline = time.monotonic() + grace
            for proc in self.procs.values():
                try:
                    proc.wait(max(0.05, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.terminate()
            for proc in self.procs.values():
                try:
                    proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for c in self.ctl.values():
                c.close()
            self.procs.clear()
            if self.run_dir and os.path.isdir(self.run_dir):
                shutil.rmtree(self.run_dir, ignore_errors=True)
            self.started = False

    def __enter__(self):
        if not self.started:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


# ----------------------------------------------------------------- other labs

def list_labs(base=None):
    """State of every lab under the run base (running or left behind).

    Only lab.json files in directories we own, under a run base we own with
    mode 0700, are read: a lab trusts only what it made.
    """
    base = base or run_base()
    labs: list[dict] = []
    if not check_run_base(base):
        return labs
    for entry in sorted(os.listdir(base)):
        d = os.path.join(base, entry)
        if not _owned_dir(d):
            continue
        path = os.path.join(d, STATE_FILE)
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
            with open(path) as f:
                st = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(st, dict) or not isinstance(st.get("run_dir"), str) or \
                os.path.realpath(st["run_dir"]) != os.path.realpath(d):
            continue             # a state file must describe the directory it is in
        st.setdefault("name", entry)
        st["alive"] = _same_process(st.get("orchestrator_pid"), st.get("orchestrator_create_time"),
                                    st.get("orchestrator_cmdline"))
        labs.append(st)
    return labs


def _same_process(pid, create_time, cmdline=None):
    """True only if pid is still the process we recorded: same start time and, when
    recorded, the same command line. Without a recorded start time nothing is
    trusted (a planted or recycled PID is never hit)."""
    if not isinstance(pid, int) or pid <= 1 or not isinstance(create_time, (int, float)):
        return False
    try:
        p = psutil.Process(pid)
        if abs(p.create_time() - create_time) >= 0.01:
            return False
        return cmdline is None or p.cmdline() == cmdline
    except psutil.Error:
        return False


def find_lab(name=None, base=None):
    """The lab called name (or whose run dir starts with it); the only one if name is None."""
    labs = list_labs(base)
    if name is not None:
        labs = [l for l in labs if l["name"] == name or
                os.path.basename(l["run_dir"]).startswith(name)]
    if not labs:
        raise LabError("no lab is running%s" % ("" if name is None else " called %r" % name))
    live = [l for l in labs if l["alive"]] or labs
    if len(live) > 1:
        raise LabError("several labs are running (%s): choose one with --lab"
                       % ", ".join(os.path.basename(l["run_dir"]) for l in live))
    return live[0]


def stop_lab(st, timeout=10.0):
    """Stop a lab started elsewhere: signal its orchestrator, or clean up after it.

    Returns the PIDs it refused to touch: named in the state file, alive, but
    not provably the processes emu started.
    """
    refused = []
    pid = st.get("orchestrator_pid")
    ident = (st.get("orchestrator_create_time"), st.get("orchestrator_cmdline"))
    if isinstance(pid, int) and pid != os.getpid() and psutil.pid_exists(pid) and \
            not _same_process(pid, *ident):
        refused.append(pid)
    elif _same_process(pid, *ident):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _same_process(pid, *ident):
            time.sleep(0.05)
    # The orchestrator is gone: end any node it left (recorded PIDs only).
    nodes = st.get("nodes")
    for node in (nodes.values() if isinstance(nodes, dict) else ()):
        if isinstance(node, dict) and _same_process(node.get("pid"), node.get("create_time"),
                                                    node.get("cmdline")):
            try:
                os.kill(node["pid"], signal.SIGKILL)
            except OSError:
                pass
        elif isinstance(node, dict) and isinstance(node.get("pid"), int) and \
                node["pid"] not in refused and psutil.pid_exists(node["pid"]) and \
                node.get("state", "running") == "running" and node.get("create_time") is None:
            refused.append(node["pid"])
    run_dir = st.get("run_dir")
    if run_dir and os.path.isfile(os.path.join(run_dir, STATE_FILE)):
        shutil.rmtree(run_dir, ignore_errors=True)
    return refused


def serve(topology_path, ready_fd=None, faults_path=None):
    """Detached mode (`emu up -d`): run a lab until SIGTERM/SIGINT.

    A supervisor watches the nodes (restart policies, fault schedules) and
    answers `emu link`, `emu partition`, `emu node` on the lab's orch.ctl.
    """
    from .supervisor import Supervisor
    lab = Lab(topology_path)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        lab.start()
    except Exception as e:
        if ready_fd is not None:
            os.write(ready_fd, ("ERR %s\n" % e).encode())
        return 1
    try:
        sup = Supervisor(lab).start(faults_path=faults_path)
    except Exception as e:
        lab.stop()
        if ready_fd is not None:
            os.write(ready_fd, ("ERR %s\n" % e).encode())
        return 1
    if ready_fd is not None:
        os.write(ready_fd, ("OK %s\n" % lab.run_dir).encode())
        os.close(ready_fd)
    try:
        while not stop.is_set():
            stop.wait(0.5)
    finally:
        sup.close()
        lab.stop()
    return 0


if __name__ == "__main__":
    # python -m emu.orchestrator --serve FILE READY_FD
    if len(sys.argv) >= 3 and sys.argv[1] == "--serve":
        faults = sys.argv[sys.argv.index("--faults") + 1] if "--faults" in sys.argv[:-1] else None
        sys.exit(serve(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3].isdigit()
                       else None, faults))
    sys.exit("usage: python -m emu.orchestrator --serve TOPOLOGY [READY_FD]")
