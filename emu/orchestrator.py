"""Topology -> running lab: spawn the node processes, wire and configure them,
watch them, and tear them down by PID.

The orchestrator ends only the processes it started (recorded with their
create times, so a recycled PID is never hit) and removes only the run
directory it made.
"""
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import msgpack
import psutil
import zmq

from .client.rpc import ControlClient, NodeUnreachable
from .labclock import LabClock, with_clock  # noqa: F401 (with_clock: emu.orchestrator's API)
from .labconfig import LabConfig
from .labd import run_base
# Run directories and the labs under a run base (emu.orchestrator's API too).
from .rundir import (STATE_FILE, LabError, check_run_base, find_lab, list_labs,  # noqa: F401
                     make_sock_dir, match_labs, remove_run_dir, stop_lab)
from .rundir import _same_process  # noqa: F401  (supervisor.py)
from .spawner import ForkServer, ForkServerError, NodeProc
from .labwires import wire_bound, wire_connect
from .wire.curve import lab_keys
from .topology import Topology, load_topology

PHASES = ("spawn", "ready", "configure")


def _raise_limits(nodes):
    """A lab holds a control socket, a pidfd and more per node: room for 1000s."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, max(soft, 8 * nodes + 256))
        if want > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


def _lab_context(nodes):
    """The lab's own ZeroMQ context for its control sockets: the default one
    holds 1023 sockets, fixed when its first socket opens."""
    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, 2 * nodes + 1024)
    return ctx


def _package_parent():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _node_env():
    """The environment of a lab's fork server and nodes: this one, with the
    directory that holds this emu package on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = _package_parent() + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def prestart_forkserver(base=None):
    """Start a lab's fork server now, before its topology is read: its start
    (an interpreter, the kernel's imports, the warm-up lab: about 0.15 s on
    one core) overlaps with what the caller does meanwhile (emu.launch reads
    the file, about 20 ms for 100 nodes) instead of following it; the lab
    tells it its run directory when it has made it (ForkServer.hello).
    Returns a ForkServer for Lab(zygote=...), or None where a lab starts its
    own (EMU_FORKSERVER=0; a thread other than the main one, where
    PR_SET_PDEATHSIG would follow that thread). A virtual-time lab does not
    use it (its nodes need a fixed hash seed); Lab closes it then."""
    if os.environ.get("EMU_FORKSERVER", "1") == "0" or \
            threading.current_thread() is not threading.main_thread():
        return None
    # Its command line names the run base (not yet the run directory), as
    # `emu up -d`'s does: `pgrep -f RUN_BASE` finds the server and its nodes.
    try:
        return ForkServer(base or run_base(), _node_env(), True)
    except OSError:
        return None


class Lab(LabClock, LabConfig):
    """One running lab: its node processes, run directory and state file."""

    def __init__(self, topology, base=None, zygote=None, cluster=None):
        self.topo = topology if isinstance(topology, Topology) else load_topology(topology)
        self.topo = with_clock(self.topo, cluster=cluster)
        self.virtual = self.topo.clock == "virtual"
        self.vclock_proc = None      # the timekeeper of a virtual-time lab (nodes/vclock.py)
        self.vclock_conn = None      # our line to it (node deaths: vclock_down)
        self.lock_vclock = threading.Lock()
        # A Ray cluster's address ("auto", "ray://HEAD:10001", HOST:PORT): the
        # nodes go to its machines (emu/cluster.py); None: this machine.
        self.cluster_address = cluster if cluster is not None else self.topo.cluster
        self.cluster = None
        self.machines: list = []             # cluster.Machine, the ones in use
        self.placement: dict[str, int] = {}  # node -> index in self.machines
        self.base = base or run_base()
        self.run_dir = None
        self.sock_dir = None     # the nodes' sockets (rundir.py): tmpfs, or the run dir
        # What each forked node did as it booted (_boot_ops): {"up": its devices
        # up and its configuration, "connected": {ifname}}; its ipc wires
        # attached, if it is here at all. The configuration phases skip it.
        self.boot: dict[str, dict] = {}
        self.procs = {}          # node name -> Popen
        self.nodes = {}          # node name -> state dict (pid, endpoints, ...)
        self.ctl = {}            # node name -> ControlClient
        self.started = False
        self.lock = threading.Lock()
        self.only = None         # set of node names _configure is limited to (restarts)
        self.supervisor = None   # emu.supervisor.Supervisor, once started
        # A fork server already started (spawner.prefork, `emu up -d`) is used
        # by the first start; otherwise each start starts its own.
        self.zygote: ForkServer | None = zygote
        self.prestarted = zygote is not None
        self.use_forkserver = os.environ.get("EMU_FORKSERVER", "1") != "0"
        # progress(phase, done, total): called as nodes are spawned, ready, configured
        self.progress = None
        _raise_limits(len(self.topo.nodes))
        self.zctx: zmq.Context | None = None
        self.stop_stats: dict = {}   # how the last stop went: nodes, late, terminated, killed
        # tcp wires (wire/curve.py): the lab's CURVE keys, made per lab, and the
        # endpoint each end bound (a restarted node binds the same one again).
        self.curve = lab_keys() if self.cluster_address is not None or any(
            l.transport == "tcp" for l in self.topo.links) else None
        self.wire_eps: dict[tuple[str, str], str] = {}

    def _progress(self, phase, done, total):
        if self.progress is not None:
            try:
                self.progress(phase, done, total)
            except Exception:
                pass             # a display never stops a lab

    # ------------------------------------------------------------- start
    def start(self, timeout=30.0):
        check_run_base(self.base, create=True)
        self.run_dir = tempfile.mkdtemp(prefix=self.topo.name[:24] + "-", dir=self.base)
        self.sock_dir = make_sock_dir(self.run_dir)
        self.zctx = _lab_context(len(self.topo.nodes))
        try:
            if self.virtual:
                self._start_vclock()
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
        env = _node_env()
        if self.cluster_address is not None and self.zygote is not None:
            self.zygote.close()              # prestarted (launch), not needed here
            self.zygote = None
            self.prestarted = False
        if self.virtual:
            # String hashes order sets and dicts: fixed, or runs would differ.
            env["PYTHONHASHSEED"] = "0"
            self.use_forkserver = True
            if self.zygote is not None:
                self.zygote.close()          # prestarted with the host's random hash seed
                self.zygote = None
                self.prestarted = False
        # PR_SET_PDEATHSIG follows the thread that forks: use it only from the main thread.
        pdeath = threading.current_thread() is threading.main_thread()
        total = len(self.topo.nodes)
        self._progress("spawn", 0, total)
        if self.cluster_address is not None:
            from .cluster_lab import spawn_cluster
            spawn_cluster(self, env)
            return
        if self.use_forkserver:
            assert self.run_dir is not None
            log = os.path.join(self.run_dir, "forkserver.log")
            if self.prestarted and self.zygote is not None and not self.zygote.dead:
                self.prestarted = False
                try:
                    self.zygote.hello(self.run_dir, log)
                except ForkServerError as e:
                    raise LabError(str(e)) from None
            else:
                self.zygote = ForkServer(self.run_dir, env, pdeath, log=log)
            self.write_state("starting")     # killed now, `emu down` still finds the dir
            # The busiest nodes first: a bridge of 100 ports binds 100 wire
            # inboxes as it boots, the longest boot of the lab; forked last
            # (a topology lists its bridges after their hosts), it was the
            # start's tail. A node connects as it boots the wires whose
            # other end was forked before it.
            ends = collections.Counter(e.node for l in self.topo.links for e in l.ends())
            order = sorted(self.topo.nodes, key=lambda n: -ends[n.name])
            boot = self._boot_ops({n.name: k for k, n in enumerate(order)})
            ids = {n.name: i + 1 for i, n in enumerate(self.topo.nodes)}
            reqs = [self._local_request(node, ids[node.name], boot) for node in order]
            try:
                procs = self.zygote.spawn(reqs, lambda n: self._progress("spawn", n, total))
            except ForkServerError as e:
                raise LabError(str(e)) from None
            for node in self.topo.nodes:
                self._record(node, procs[node.name], self.zygote.cmdline)
            return
        for i, node in enumerate(self.topo.nodes):
            self._spawn_one(node, i + 1, env, pdeath)
            self._progress("spawn", i + 1, total)

    def _fork_request(self, node, node_id):
        assert self.run_dir is not None
        req = {"op": "spawn", "name": node.name, "kind": node.kind, "cpus": node.cpus,
               "node_id": node_id, "seed": self.topo.seed,
               "log": os.path.join(self.run_dir, node.name + ".log")}
        if self.virtual:
            from .nodes.vclock import ctl_endpoint
            req["vclock"] = ctl_endpoint(self.run_dir)
        return req

    def _local_request(self, node, node_id, boot):
        """A fork request for this machine's fork server: the node's sockets and
        log go to the lab's socket directory, and it serves the requests _boot_ops
        made for it as it boots (boot: _boot_ops()'s, or None)."""
        req = self._fork_request(node, node_id)
        req["sock_dir"] = self.sock_dir
        req["log"] = os.path.join(str(self.sock_dir), node.name + ".log")
        self.boot.pop(node.name, None)
        if boot is not None:
            ops, plan = boot
            req["boot"] = ops.get(node.name, [])
            self.boot[node.name] = plan.get(node.name, {"up": False, "connected": set()})
        return req

    def _spawn_one(self, node, node_id, env, pdeath):
        """Start one node process (again, for a restart: its state dict is updated in place)."""
        assert self.run_dir is not None
        if self.cluster is not None:
            from .cluster_lab import respawn
            return respawn(self, node, node_id)
        if self.zygote is not None and not self.zygote.dead:
            try:
                req = self._local_request(node, node_id, self._boot_ops())
                proc = self.zygote.spawn([req])[node.name]
            except ForkServerError as e:
                raise LabError(str(e)) from None
            return self._record(node, proc, self.zygote.cmdline)
        self.boot.pop(node.name, None)            # configured in the phases
        logpath = os.path.join(str(self.sock_dir), node.name + ".log")
        cmd = [sys.executable, "-m", "emu.nodes.node", "--name", node.name,
               "--kind", node.kind, "--cpus", str(node.cpus), "--run-dir", self.sock_dir,
               "--parent-pid", str(os.getpid()), "--node-id", str(node_id),
               "--seed", str(self.topo.seed)]
        if pdeath:
            cmd.append("--pdeathsig")
        with open(logpath, "ab") as logf:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                    stderr=subprocess.STDOUT, env=env, close_fds=True)
        return self._record(node, proc, cmd)

    def _record(self, node, proc, cmdline):
        """Remember a started node: PID, start time and command line prove it is ours.

        A forked node's command line is its fork server's, which names this
        lab's run directory: pid + create time + that command line is as
        strong a proof as a node of its own interpreter gives.
        """
        self.procs[node.name] = proc
        try:
            ctime = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            ctime = None
        info = self.nodes.setdefault(node.name, {})
        info.update({
            "pid": proc.pid, "create_time": ctime, "cmdline": cmdline,
            "kind": node.kind, "cpus": node.cpus,
            "ctl": "ipc://%s/%s.ctl" % (self.sock_dir, node.name),
            "sys": "%s/%s.sys" % (self.sock_dir, node.name),
            "log": os.path.join(str(self.sock_dir), node.name + ".log")})
        if isinstance(proc, NodeProc):
            info["forkserver"] = self.zygote.pid if self.zygote is not None else None
        old = self.ctl.get(node.name)
        if old is not None:
            old.close()
        self.ctl[node.name] = ControlClient(info["ctl"], ctx=self.zctx)
        return proc

    def _wait_ready(self, timeout):
        total = len(self.nodes)
        if self.cluster is not None:
            from .cluster_lab import cluster_ready
            cluster_ready(self, list(self.nodes), timeout)
            self._progress("ready", total, total)
            return
        if self.zygote is not None:
            # Each forked node writes its name to a pipe once its endpoints are up.
            # Its control socket connects then, while others still boot: the
            # connections (ZeroMQ's, in its I/O threads) are made by the
            # first configuration phase, not during it.
            zy = self.zygote
            seen = [len(zy.ready_order)]

            def on_ready(n):
                self._progress("ready", n, total)
                order = zy.ready_order
                for name in order[seen[0]:]:
                    c = self.ctl.get(name)
                    if c is not None and (self.only is None or name in self.only):
                        with c.lock:
                            c._socket()
                seen[0] = len(order)

            left = zy.wait_ready(list(self.nodes), timeout, self.procs, on_ready)
            if isinstance(left, tuple):
                name, rc = left
                raise LabError(self._boot_failure(name, rc))
            if left:
                raise LabError("nodes did not start within %.0f s: %s"
                               % (timeout, ", ".join(sorted(left))))
            return
        deadline = time.monotonic() + timeout
        pending = set(self.nodes)
        while pending:
            for name in list(pending):
                proc = self.procs[name]
                if proc.poll() is not None:
                    raise LabError(self._boot_failure(name, proc.returncode))
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

    def _call_many(self, batches, timeout=30.0):
        """Send every node its list of requests at once and collect the replies
        ({node: [reply, ...]}, in request order).

        Each node answers its requests in order on its DEALER socket, so many
        can be in flight; all nodes work at the same time. The first failure
        (in topology order) is raised as a LabError naming node, op and args.
        """
        batches = {n: b for n, b in batches.items() if b and (self.only is None or n in self.only)}
        replies: dict[str, list] = {n: [] for n in batches}
        if not batches:
            return replies
        names = sorted(batches)
        socks = {}
        got = {n: 0 for n in names}
        errors = {}
        poller = zmq.Poller()
        for name in names:
            c = self.ctl[name]
            c.lock.acquire()
        try:
            for name in names:
                s = self.ctl[name]._socket()
                socks[s] = name
                poller.register(s, zmq.POLLIN)
                for op, args in batches[name]:
                    s.send(msgpack.packb({"op": op, "args": args}, use_bin_type=True))
            left = len(names)
            deadline = time.monotonic() + timeout
            while left:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    break
                for s, _ in poller.poll(int(wait * 1000) + 1):
                    name = socks[s]
                    while got[name] < len(batches[name]):
                        try:
                            reply = msgpack.unpackb(s.recv(zmq.NOBLOCK), raw=False)
                        except zmq.Again:
                            break
                        if not reply.get("ok") and name not in errors:
                            op, args = batches[name][got[name]]
                            errors[name] = (op, args, reply.get("error", "error"))
                        replies[name].append(reply.get("result"))
                        got[name] += 1
                        if got[name] == len(batches[name]):
                            left -= 1
                            poller.unregister(s)
        finally:
            late = [n for n in names if got[n] < len(batches[n])]
            for name in late:               # replies may still come: start afresh next time
                self.ctl[name].close()
            for name in names:
                self.ctl[name].lock.release()
        order = {n.name: i for i, n in enumerate(self.topo.nodes)}
        if errors:
            name = min(errors, key=lambda n: order.get(n, 0))
            op, args, err = errors[name]
            raise LabError("%s: configuring node %s: %s %s: %s"
                           % (self.topo.path, name, op, args, err))
        if late:
            raise LabError("%s: configuring: node%s %s did not answer within %.0f s"
                           % (self.topo.path, "s" if len(late) > 1 else "",
                              ", ".join(sorted(late, key=lambda n: order.get(n, 0))[:10]), timeout))
        return replies

    def _configure(self):
        """Configure in phases; in each, all nodes get their requests at once.

        The phases keep the order that matters across nodes: every wire is
        bound before any connects to it; every linked device is up, and every
        bridge forwarding, before any address is added (with arp_notify, a
        gratuitous ARP to a peer still down would be dropped). Each phase
        waits for its slowest node: four of them (attach; connect, links up
        and bridges; addresses and routes; netem) for nodes that did not do
        it all as they booted. A lab of forked nodes on ipc wires has one:
        the connects of the wire ends forked first (_boot_ops).
        """
        phases = self._config_phases()
        total = len(phases)
        attach = self._attach_phases
        for k, batch in enumerate(phases):
            replies = self._call_many(batch)
            if k < attach:
                wire_bound(self, batch, replies)
                if k == attach - 1 and self.curve is not None:
                    wire_connect(self)
            if self.only is None:
                self._progress("configure", k + 1, total)

    # ------------------------------------------------------------- state
    def state(self, status):
        return {"name": self.topo.name, "topology": os.path.abspath(self.topo.path)
                if os.path.exists(self.topo.path) else self.topo.path,
                "run_dir": self.run_dir, "orchestrator_pid": os.getpid(),
                "orchestrator_create_time": psutil.Process().create_time(),
                "orchestrator_cmdline": psutil.Process().cmdline(),
                "status": status, "nodes": self.nodes, "hosts": self.topo.hosts(),
                "forkserver": self.zygote.record() if self.zygote is not None else None,
                "started_at": time.time(), "seed": self.topo.seed, "clock": self.topo.clock,
                "start_time": self.topo.start_time if self.virtual else None}

    def write_state(self, status):
        assert self.run_dir is not None
        path = os.path.join(self.run_dir, STATE_FILE)
        tmp = path + ".tmp"
        # 0600: a cluster lab's state holds its CURVE keys.
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(self.state(status), f, indent=1)
        os.replace(tmp, path)

    def _boot_failure(self, name, rc):
        """The line that says why a node exited as it booted: a boot op it
        refused (its log's last line, runtime.BootError), else its log's end."""
        last = self.log_tail(name, 1)
        if " ERROR boot: " in last:
            return "node %s failed to boot: %s" % (name, last.split(" ERROR boot: ", 1)[1])
        return "node %s exited during boot (status %s): %s" % (name, rc, self.log_tail(name, 5))

    def log_tail(self, name, lines=20):
        try:
            with open(self.nodes[name]["log"], "rb") as f:
                data = f.read()[-8192:].decode(errors="replace")
            return " | ".join(data.strip().splitlines()[-lines:])
        except (OSError, KeyError):
            return ""

    # ------------------------------------------------------------- stop
    def stop(self, grace=2.0):
        """Shut every node down and remove the run dir.

        All nodes are asked at once and waited for together; then the fork
        server's lifeline is cut (a node still up exits by itself); SIGTERM
        and SIGKILL are only the last resort.
        """
        if self.supervisor is not None:
            self.supervisor.close()          # no restarts of what we now stop
        with self.lock:
            # Every node is told at once; its exit is the answer (a reply may
            # not leave before the node's os._exit, and is not waited for).
            packed = msgpack.packb({"op": "shutdown", "args": {}}, use_bin_type=True)
            for name in self.procs:
                if self.procs[name].poll() is None:
                    c = self.ctl[name]
                    with c.lock:
                        try:
                            c._socket().send(packed, zmq.NOBLOCK)
                        except zmq.ZMQError:
                            pass
            procs = list(self.procs.values())
            grace += 0.005 * len(procs)      # 1000 exits take a while on 2 busy cores
            left = self._wait_procs(procs, grace)
            stats = {"nodes": len(procs), "late": len(left), "terminated": 0, "killed": 0}
            if self.zygote is not None:
                self.zygote.close()          # the lifeline goes: stragglers exit on their own
                left = self._wait_procs(left, 1.0)
            if self.cluster is not None:
                # Each machine waits for its nodes, cuts its fork server's lifeline
                # and removes its run directory; then the actors end.
                late = self.cluster.stop(self.machines, 2.0)
                self.cluster = None
                stats["late"] = max(stats["late"], late)
                left = []                    # gone with their fork servers
            stats["terminated"] = len(left)
            for proc in left:
                proc.terminate()
            left = self._wait_procs(left, 1.0)
            stats["killed"] = len(left)
            for proc in left:
                proc.kill()
            self._wait_procs(left, 5.0)
            self.stop_stats = stats
            if self.vclock_conn is not None:
                self.vclock_conn.close()
                self.vclock_conn = None
            if self.vclock_proc is not None:
                self.vclock_proc.terminate()
                try:
                    self.vclock_proc.wait(2.0)
                except subprocess.TimeoutExpired:
                    self.vclock_proc.kill()
                    self.vclock_proc.wait(2.0)
                self.vclock_proc = None
            for c in self.ctl.values():
                c.close()
                c.ctx = None                 # a later call (there should be none) uses the default
            if self.zctx is not None:
                self.zctx.term()             # every socket is closed (LINGER 0): no wait
                self.zctx = None
            self.procs.clear()
            if self.run_dir and os.path.isdir(self.run_dir):
                remove_run_dir(self.run_dir)
            self.started = False

    def _wait_procs(self, procs, timeout):
        """Wait for all of procs together; returns those still running at the deadline."""
        deadline = time.monotonic() + timeout
        forked = [p for p in procs if isinstance(p, NodeProc)]
        if forked and self.zygote is not None:
            forked = self.zygote.wait_all(forked, timeout)
        other = [p for p in procs if not isinstance(p, NodeProc)]
        while True:
            other = [p for p in other if p.poll() is None]
            forked = [p for p in forked if p.poll() is None]
            if not other and not forked or time.monotonic() >= deadline:
                return other + forked
            time.sleep(0.02)

    def __enter__(self):
        if not self.started:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def serve(topology_path, ready_fd=None, faults_path=None, name=None, base=None, zygote=None,
          hold=None, cluster=None, clock=None, seed=None):
    """Detached mode (`emu up -d`): run a lab until SIGTERM/SIGINT.

    A supervisor watches the nodes (restart policies, fault schedules) and
    answers `emu link`, `emu partition`, `emu node` on the lab's orch.ctl.
    """
    from .supervisor import Supervisor
    try:
        topo = load_topology(topology_path)
        if name:                                 # emu up --name NAME
            import dataclasses
            topo = dataclasses.replace(topo, name=name)
        topo = with_clock(topo, clock, seed, cluster)
        lab = Lab(topo, base=base, zygote=zygote, cluster=cluster)
    except Exception as e:
        if zygote is not None:
            zygote.close()
        if ready_fd is not None:
            os.write(ready_fd, ("ERR %s\n" % e).encode())
        return 1
    if ready_fd is not None:
        from .progress import PipeProgress
        lab.progress = PipeProgress(ready_fd)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if hold is not None:
        # Started early by `emu up -d` (labd.early_start): the command line
        # says go once it has checked what it checks; end-of-file is a no.
        try:
            go = os.read(hold, 1)
        except OSError:
            go = b""
        os.close(hold)
        if go != b"g":
            if zygote is not None:
                zygote.close()
            return 0
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
        name = sys.argv[sys.argv.index("--name") + 1] if "--name" in sys.argv[:-1] else None
        cluster = sys.argv[sys.argv.index("--cluster") + 1] if "--cluster" in sys.argv[:-1] else None
        sys.exit(serve(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3].isdigit()
                       else None, faults, name, cluster=cluster))
    sys.exit("usage: python -m emu.orchestrator --serve TOPOLOGY [READY_FD]")
