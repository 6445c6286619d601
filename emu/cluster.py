"""Labs over a Ray cluster: nodes placed on several machines, one lab to the user.

Ray places and supervises; emu runs the nodes. One long-lived actor per
machine (MachineHost) starts that machine's fork server as a fresh process
(never a fork of the multithreaded actor) and asks it for nodes; each node is
still one OS process with its own kernel. A node's control endpoint and its
wires to nodes on other machines are TCP with the lab's CURVE keys
(wire/curve.py); wires within a machine stay ipc:// in that machine's run
directory.

A "machine" is a Ray node: two Ray nodes on one host are two machines, and
the wires between them go over tcp://, so that path is what a one-host test
exercises.

Nothing outlives the lab: a node dies with its fork server (PDEATHSIG), the
fork server with its actor (its lifeline pipe, PDEATHSIG), and the actors
are ended by the lab's stop (or by Ray, when the driver that made them ends).

Programs on a node (`emu exec`, `emu shell`, the Python API's sockets) use
its syscall socket, a Unix socket on its machine; from another host they go
through that machine's syscall relay, a thread of its MachineHost on tcp://
with the lab's CURVE keys (cluster_relay.py). A trace's timestamps are put
on the orchestrator's time line by each machine's clock offset, measured at
start (_clock_offset).
"""
import os
import signal
import tempfile
import threading
from typing import Any

RAY_HINT = "a lab over a cluster needs Ray: pip install 'emu[cluster]' (or pip install ray)"


class ClusterError(RuntimeError):
    pass


def _ray():
    try:
        import ray
    except ImportError:
        raise ClusterError(RAY_HINT) from None
    return ray


class MachineHost:
    """The per-machine actor (made a Ray actor by Cluster): a fork server and its nodes."""

    def __init__(self, lab, base, env):
        import ray
        from .spawner import ForkServer
        self.ip = ray.util.get_node_ip_address()
        os.makedirs(base, mode=0o700, exist_ok=True)
        self.run_dir = tempfile.mkdtemp(prefix=lab[:24] + "-", dir=base)
        # PR_SET_PDEATHSIG follows the thread that forks: only from the main thread.
        pdeath = threading.current_thread() is threading.main_thread()
        self.server = ForkServer(self.run_dir, env, pdeath,
                                 log=os.path.join(self.run_dir, "forkserver.log"))
        self.procs: dict = {}
        from .cluster_relay import write_token
        self.token = write_token(self.run_dir)
        self.relay: Any = None           # cluster_relay.SysRelay, once the lab's keys are known

    def info(self):
        import ray
        return {"ip": self.ip, "run_dir": self.run_dir, "pid": os.getpid(),
                "forkserver": self.server.pid, "token": self.token,
                "ray_node": ray.get_runtime_context().get_node_id()}

    def spawn(self, reqs, curve, ip):
        """Fork the nodes; each binds its control endpoint on ip (any port)."""
        for r in reqs:
            r["log"] = os.path.join(self.run_dir, r["name"] + ".log")
            r["ctl"] = "tcp://%s:*" % ip
            r["curve"] = list(curve)
        for r in reqs:                   # a restart: wait for the new announcement
            self.server.ready.discard(r["name"])
            self.server.ctl_eps.pop(r["name"], None)
        procs = self.server.spawn(reqs)
        self.procs.update(procs)
        return {n: p.pid for n, p in procs.items()}

    def start_relay(self, curve, ip):
        """The syscall relay for programs on other hosts (cluster_relay.py); its endpoint."""
        if self.relay is None:
            from .cluster_relay import SysRelay
            self.relay = SysRelay(self.run_dir, ip, tuple(curve), nodes=self.procs)
        return self.relay.endpoint

    def relay_stats(self):
        return None if self.relay is None else self.relay.stats()

    def wait_ready(self, names, timeout):
        """({name: ctl endpoint}, what failed: None, [names late] or [name, returncode])."""
        left = self.server.wait_ready(names, timeout, self.procs)
        eps = {n: self.server.ctl_eps.get(n) for n in names}
        if isinstance(left, tuple):
            return eps, list(left)
        return eps, sorted(left) or None

    def exits(self):
        """{pid: returncode} of the nodes that ended (by PID: a restarted node is another)."""
        self.server.drain(force=True)
        return dict(self.server.status)

    def clock(self):
        import time
        return time.monotonic()

    def signal(self, name, sig):
        p = self.procs.get(name)
        if p is not None:
            p.send_signal(sig)

    def log_tail(self, name, lines):
        try:
            with open(os.path.join(self.run_dir, name + ".log"), errors="replace") as f:
                return " | ".join(f.read().strip().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout):
        """Wait for the nodes to end (they were told), cut the lifeline, clean up."""
        import shutil
        left = self.server.wait_all([p for p in self.procs.values() if p.returncode is None],
                                    timeout)
        self.server.close()
        for p in left:
            p.poll()
        if self.relay is not None:
            self.relay.close()
            self.relay = None
        shutil.rmtree(self.run_dir, ignore_errors=True)
        return len(left)


class RemoteProc:
    """A node on a cluster machine, with the part of Popen's interface the lab uses."""

    def __init__(self, machine, name, pid):
        self.machine = machine
        self.name = name
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            rc = self.machine.exits().get(self.pid)
            if rc is not None:
                self.returncode = rc
        return self.returncode

    def wait(self, timeout=None):
        import subprocess
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("node %s" % self.name, timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, sig):
        if self.returncode is None:
            self.machine.call("signal", self.name, int(sig))

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)


class Machine:
    """One Ray node of the lab and the MachineHost actor on it."""

    EXIT_POLL = 0.1              # seconds between two asks for the nodes' exits

    def __init__(self, index, ray_node):
        self.index = index
        self.ray_node = ray_node["NodeID"]
        self.ip = ray_node["NodeManagerAddress"]
        self.resources = {k: v for k, v in ray_node.get("Resources", {}).items()
                          if not k.startswith("node:") and k not in
                          ("CPU", "GPU", "memory", "object_store_memory")}
        self.actor = None
        self.relay: str | None = None  # its syscall relay's endpoint (cluster_relay.py)
        self.info: dict = {}
        self._exits: dict = {}
        self._asked = 0.0
        self.pids: set[int] = set()     # every node PID started here (the lab adds them)
        self.clock_offset = 0.0         # our monotonic clock minus the machine's
        self.lock = threading.Lock()

    def call(self, method, *args):
        ray = _ray()
        return ray.get(getattr(self.actor, method).remote(*args))

    def exits(self):
        import time
        with self.lock:
            now = time.monotonic()
            if now - self._asked >= self.EXIT_POLL and self.actor is not None:
                self._asked = now
                try:
                    self._exits = self.call("exits")
                except Exception:
                    # The actor (or its machine) is gone: so are its nodes.
                    self._exits = {p: -signal.SIGKILL for p in self.pids}
            return self._exits

    nodes: tuple = ()


def _clock_offset(ray, actor, rounds=5):
    """Our monotonic clock minus the machine's, from the round trip with the
    smallest delay (the midpoint of it); the same host gives about 0."""
    import time
    best = (float("inf"), 0.0)
    for _ in range(rounds):
        t0 = time.monotonic()
        there = ray.get(actor.clock.remote())
        t1 = time.monotonic()
        if t1 - t0 < best[0]:
            best = (t1 - t0, (t0 + t1) / 2 - there)
    return best[1]


def _reachable(address, timeout=3.0):
    """A HOST:PORT (or ray://HOST:PORT) that does not answer fails now, in one
    line, not after Ray's minute of retries."""
    import socket
    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError("bad cluster address %r: auto, ray://HOST:PORT or HOST:PORT" % address)
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ClusterError("cannot reach the Ray cluster at %s: %s"
                           % (address, e.strerror or e)) from None


class Cluster:
    """A connection to a Ray cluster, and the machines a lab uses on it."""

    def __init__(self, address):
        ray = _ray()
        self.ray = ray
        self.owned = False
        if not ray.is_initialized():
            _reachable(address)
            try:
                ray.init(address=address or "auto", namespace="emu", log_to_driver=False,
                         logging_level="ERROR")
            except Exception as e:
                raise ClusterError("cannot join the Ray cluster at %s: %s"
                                   % (address or "auto", str(e).splitlines()[0] if str(e) else e)) \
                    from None
            self.owned = True
        alive = [n for n in ray.nodes() if n.get("Alive")]
        if not alive:
            raise ClusterError("the Ray cluster has no live node")
        alive.sort(key=lambda n: (not n.get("Resources", {}).get("node:__internal_head__"),
                                  n["NodeID"]))
        self.machines = [Machine(i, n) for i, n in enumerate(alive)]

    def start_hosts(self, machines, lab, base, env):
        """One MachineHost actor on each machine, pinned to it."""
        ray = self.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        cls = ray.remote(num_cpus=0, max_restarts=0)(MachineHost)
        for m in machines:
            m.actor = cls.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                node_id=m.ray_node, soft=False)).remote(lab, base, env)
        infos = ray.get([m.actor.info.remote() for m in machines])
        here = ray.util.get_node_ip_address()
        for m, info in zip(machines, infos, strict=True):
            m.info = info
            m.clock_offset = _clock_offset(ray, m.actor)
            # Machines that are Ray nodes of this very host talk over loopback;
            # another host is reached at the address Ray knows it by.
            m.ip = "127.0.0.1" if info["ip"] == here else info["ip"]

    def stop(self, machines, timeout):
        ray = self.ray
        left = 0
        refs = [m.actor.stop.remote(timeout) for m in machines if m.actor is not None]
        for r in refs:
            try:
                left += ray.get(r, timeout=timeout + 10)
            except Exception:
                pass
        for m in machines:
            if m.actor is not None:
                try:
                    ray.kill(m.actor)
                except Exception:
                    pass
                m.actor = None
        if self.owned:
            ray.shutdown()
        return left


def place(topo, machines):
    """{node name: machine index}: densely linked groups (a bridge and its
    hosts, a host and its neighbour) stay together, a router's links are cut;
    groups go, largest first, to the least loaded machine. A node's `machine:`
    pins it, and its group, to a machine (a Ray resource label it has, or its
    index)."""
    parent = {n.name: n.name for n in topo.nodes}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    kinds = {n.name: n.kind for n in topo.nodes}
    for link in topo.links:
        if link.b is None:
            continue
        a, b = link.a.node, link.b.node
        # A host stays with what it hangs on, bridges joined together stay together;
        # the links a router makes are where a lab may be cut.
        if "host" in (kinds[a], kinds[b]) or kinds[a] == kinds[b] == "bridge":
            parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for n in topo.nodes:
        groups.setdefault(find(n.name), []).append(n.name)
    hints = {n.name: n.machine for n in topo.nodes if n.machine is not None}
    load = [0] * len(machines)
    out = {}
    pinned: list[tuple[list[str], int]] = []
    free: list[tuple[list[str], None]] = []
    for members in groups.values():
        want = {}
        for name in members:
            if name in hints:
                want[name] = _machine_of(topo, name, hints[name], machines)
        if len(set(want.values())) > 1:
            a, b = sorted(want)[:2]
            raise ClusterError("%s: nodes %s and %s are linked through a bridge or a host, "
                               "so they share a machine, but their 'machine' fields differ"
                               % (topo.path, a, b))
        if want:
            pinned.append((members, next(iter(want.values()))))
        else:
            free.append((members, None))
    for members, i in pinned:
        for name in members:
            out[name] = i
        load[i] += len(members)
    for members, _ in sorted(free, key=lambda g: (-len(g[0]), g[0][0])):
        i = min(range(len(machines)), key=lambda k: (load[k], k))
        for name in members:
            out[name] = i
        load[i] += len(members)
    return out


def _machine_of(topo, node, hint, machines):
    """The machine a node's `machine:` names: its index, or the one with that Ray resource."""
    if isinstance(hint, int) and not isinstance(hint, bool):
        if hint >= len(machines):
            raise ClusterError("%s: node %r field 'machine': machine %d does not exist "
                               "(the cluster has %d)" % (topo.path, node, hint, len(machines)))
        return hint
    for m in machines:
        if hint in m.resources:
            return m.index
    raise ClusterError("%s: node %r field 'machine': no machine of the cluster has the "
                       "resource label %r (labels: %s)" % (
                           topo.path, node, hint,
                           ", ".join(sorted({r for m in machines for r in m.resources})) or "none"))
