"""The Python API for labs:

    import emu
    with emu.launch("topologies/veth-bridge.yaml") as lab:
        r = lab.node("h1").ping("h2", count=3, interval=0.2)
        assert r.received == 3
        print(lab.node("br0").fdb())
        fut = lab.node("h1").run(my_module.client, "h2")   # a function in a process on h1
        lab.link_down("h1:eth0")                           # cut the cable (both ends)
        with lab.partition(["h1"], ["h2"]): ...            # frames between groups vanish
        lab.node("h2").kill(); lab.node("h2").start()       # a crash, a fresh kernel
"""
import concurrent.futures
import contextlib
import itertools
import os
import threading

from ..cluster_relay import node_sys
from ..orchestrator import Lab as _Lab
from .rpc import ControlClient, NodeUnreachable
from .socket import socket as _socket
from .tools import ping as _ping


class Node:
    """A handle on one node of a running lab."""

    def __init__(self, lab, name, info):
        self.lab = lab
        self.name = name
        self.info = info
        self.ctl = ControlClient(info["ctl"], curve=info.get("curve"))

    @property
    def sys_endpoint(self):
        """The node's syscall socket, or this process's relay to the node's
        machine when that is another host (emu/cluster_relay.py)."""
        return node_sys(self.info)

    def __repr__(self):
        return "<emu.Node %s pid=%s>" % (self.name, self.info.get("pid"))

    @property
    def pid(self):
        return self.info["pid"]

    def call(self, op, **args):
        """A control request (the same API `ip`, `bridge`, `sysctl` use).

        A node that is not running answers at once: NodeUnreachable (an
        OSError) saying how it ended.
        """
        self.lab._check_running(self.name)
        return self.ctl.call(op, **args)

    # -- lifecycle (the lab's supervisor does it)
    @property
    def state(self):
        """running, crashed, killed, stopped or exited."""
        return self.info.get("state", "running")

    def kill(self):
        """SIGKILL the node (a crash): its restart policy applies."""
        return self.lab._sup.kill_node(self.name)

    def stop(self):
        """Shut the node down; it stays down until start()."""
        return self.lab._sup.stop_node(self.name)

    def start(self):
        """Boot a fresh kernel from the topology: configured addresses, routes and
        sysctls again; learned state (ARP, sockets) gone; wires reattached."""
        return self.lab._sup.start_node(self.name)

    def restart(self):
        return self.lab._sup.restart_node(self.name)

    def resolve(self, host):
        """A lab node name -> its first address; an address stays itself."""
        return self.lab.resolve(host)

    def socket(self, family=2, type=1, proto=0):
        """A socket in this node's kernel, with Python's socket.socket methods."""
        self.lab._check_running(self.name)
        return _socket(family, type, proto, node=self.sys_endpoint)

    # -- code on the node
    def run(self, func, *args, **kwargs):
        """Call func(*args, **kwargs) in a new process attached to this node; returns a Future.

        In that process `import socket` gives sockets in this node's kernel
        (emu.client.shim). The result is a NodeProcess (a concurrent.futures
        Future with stdout, stderr, stop(), ...): see emu.client.run.
        """
        return self.lab._start_process(self, func, args, kwargs)

    def spawn(self, func, *args, **kwargs):
        """Start a long-running func (a server) on this node; returns its NodeProcess.

        Like run(), but returns only once the function has been called (its
        module imported, socket bound to the node), so import and pickling
        errors raise here. Use handle.wait_ready() to wait for emu.ready().
        """
        return self.lab._start_process(self, func, args, kwargs).wait_started()

    def ping(self, host, count=3, interval=0.2, size=56, timeout=None, ttl=None, out=None):
        """Run ping from this node; returns a PingResult (replies, rtts, loss, lines)."""
        self.lab._check_running(self.name)
        address = self.resolve(host)
        if address is None:
            raise ValueError("unknown host %r" % host)
        if self.lab._lab.virtual:
            # A program of the node: its intervals and RTTs on the lab's time.
            res = self.run(_ping.ping, self.sys_endpoint, host, address, count=count,
                           interval=interval, size=size, timeout=timeout, ttl=ttl).result()
            for line in res.lines if out is not None else ():
                out(line)
            return res
        return _ping.ping(self.sys_endpoint, host, address, count=count, interval=interval,
                          size=size, timeout=timeout, ttl=ttl, out=out)

    # -- kernel state
    def counters(self):
        return self.call("counters")

    def links(self, stats=True):
        return self.call("link_show", stats=stats)

    def addrs(self):
        return self.call("addr_show")

    def routes(self, table="main"):
        return self.call("route_show", table=table)

    def neigh(self):
        return self.call("neigh_show")

    def fdb(self, br=None):
        return self.call("fdb_show", br=br)

    def sockets(self, info=False):
        """Every TCP, UDP and raw socket in this node's kernel, as `ss -a` lists them.

        Rows of proto, state, local, peer, recv_q, send_q (and tcp_info when
        info is true), from the node's sock_diag control op (Linux: inet_diag).
        """
        return self.call("sock_diag", info=info)

    def tcp_info(self, local=None, remote=None):
        """struct tcp_info of this node's TCP connections (what `ss -ti` shows).

        local, remote: (host, port) to match, either may be None, and so may
        host or port within one; hosts may be lab names. Returns one dict per
        connection: tcp_info's fields (state, rtt, snd_cwnd, bytes_acked, ...)
        plus its local and peer addresses. Listening sockets have no tcp_info.
        """
        want = [None if a is None else (None if a[0] is None else self.resolve(a[0]), a[1])
                for a in (local, remote)]
        out = []
        for row in self.sockets(info=True):
            if row["proto"] != "tcp" or not row.get("info"):
                continue
            ends = (tuple(row["local"]), tuple(row["peer"]))
            if all(w is None or ((w[0] is None or w[0] == e[0]) and (w[1] is None or w[1] == e[1]))
                   for w, e in zip(want, ends, strict=False)):
                out.append(dict(row["info"], local=ends[0], peer=ends[1]))
        return out

    def sysctl(self, name, value=None):
        if value is None:
            return self.call("sysctl_get", name=name)
        return self.call("sysctl_set", name=name, value=value)

    def info_(self):
        return self.call("info")

    def log_tail(self, lines=20):
        return self.lab.log_tail(self.name, lines)


class LabHandle:
    """A running lab: nodes by name, name resolution, teardown."""

    def __init__(self, lab):
        self._lab = lab
        self._sup = lab.supervisor
        self._nodes = {}
        self._procs = []
        self._proc_seq = itertools.count(1)
        self._proc_lock = threading.Lock()
        self._closed = False

    @property
    def run_dir(self):
        return self._lab.run_dir

    @property
    def sock_dir(self):
        """Where the nodes' sockets and wire inboxes are (emu/rundir.py): a
        directory on tmpfs, or the run directory itself."""
        return self._lab.sock_dir

    @property
    def topology(self):
        return self._lab.topo

    @property
    def seed(self):
        """The lab seed (netem, the nodes' RNGs, a virtual lab's programs)."""
        return self._lab.topo.seed

    @property
    def clock(self):
        """"virtual" (the lab's own time) or "real"."""
        return self._lab.topo.clock

    @contextlib.contextmanager
    def hold(self):
        """A virtual-time lab's time stands still inside the with block: programs
        started in it (node.run, node.spawn) all start at the same instant, so a
        run replays whatever the host's timing. Make no calls to the nodes
        from inside it (they would wait for time that does not move)."""
        if not self._lab.virtual:
            yield
            return
        from ..nodes import vclock
        sock = vclock.hold(self.run_dir, "-")[0]
        try:
            yield
        finally:
            sock.close()

    def vtime(self):
        """A virtual-time lab's time now, in seconds since its start (None in real time)."""
        if not self._lab.virtual:
            return None
        from ..nodes.vclock import read_page
        page = read_page(self.run_dir)
        return None if page is None else page["now"]

    @property
    def name(self):
        return self._lab.topo.name

    def node(self, name):
        n = self._nodes.get(name)
        if n is None:
            if name not in self._lab.nodes:
                raise KeyError("no node %r in lab %s" % (name, self.name))
            n = self._nodes[name] = Node(self, name, self._lab.nodes[name])
        return n

    def nodes(self):
        return [self.node(n.name) for n in self._lab.topo.nodes]

    def pids(self):
        return {name: info["pid"] for name, info in self._lab.nodes.items()}

    def resolve(self, host):
        hosts = self._lab.topo.hosts()
        if host in hosts:
            return hosts[host]
        parts = host.split(".")
        if len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts):
            return host
        return None

    def log_tail(self, name, lines=20):
        return self._lab.log_tail(name, lines)

    def log_lines(self, name, lines=20):
        """The last lines of a node's log, as a list."""
        try:
            with open(self._lab.nodes[name]["log"], "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                return f.read().decode(errors="replace").splitlines()[-lines:]
        except (OSError, KeyError):
            return []

    # -- links
    def link(self, end):
        """The topology link with end "node:ifname" at either end."""
        node, _, ifname = str(end).partition(":")
        for link in self._lab.topo.links:
            for e in link.ends():
                if (e.node, e.ifname) == (node, ifname):
                    return link
        raise KeyError("no link at %r in lab %s" % (str(end), self.name))

    def link_down(self, end):
        """Cut the cable at end ("h1:eth0"): both ends lose carrier until link_up.

        Not `ip link set DEV down`: the devices stay administratively UP with
        their addresses, but the kernels see the carrier go (netif_carrier_off):
        `ip link` shows NO-CARRIER, operstate LOWERLAYERDOWN (veth) or DOWN
        (phys), routes through them are marked linkdown, a bridge port stops
        forwarding. Sockets see silence; TCP retransmits and carries on after
        link_up.
        """
        from ..faults import FaultError
        self.link(end)                   # KeyError for an end the lab does not have
        try:
            return self._sup.link_set(end, False)
        except FaultError as e:
            raise ValueError(str(e)) from None

    def link_up(self, end):
        """Mend the cable that link_down(end) cut."""
        from ..faults import FaultError
        self.link(end)                   # KeyError for an end the lab does not have
        try:
            return self._sup.link_set(end, True)
        except FaultError as e:
            raise ValueError(str(e)) from None

    def netem(self, end, **spec):
        """Impair what end ("h1:eth0") sends: netem with the topology's keys
        (delay="20ms", jitter="5ms", loss="5%", rate="10mbit", seed=7...).

        Returns an Impairment; as a context manager it restores the old qdisc.
        """
        from .impair import Impairment
        return Impairment(self, end, spec)

    # -- faults
    def partition(self, *groups, one_way=False):
        """Split the lab: frames between the groups of node names vanish.

            with lab.partition(["h1", "h2"], ["h3"]):
                ...                                   # healed on leaving the block

        The bridges and routers no group names stop forwarding between ports
        facing different groups; the kernels see only loss (no carrier
        change). one_way: only frames from the first group to the others are
        dropped. Returns a context manager that heals; heal() does too.
        """
        self._sup.set_partition([list(g) for g in groups], one_way)
        return _Partition(self)

    def heal(self):
        return self._sup.heal()

    def faults(self, events):
        """Run a fault schedule (a list of events as in the topology's `faults:`,
        or a YAML file); returns its FaultSchedule (.wait(), .record)."""
        from ..faults import load_schedule, parse_schedule
        from ..topology import TopologyError
        if isinstance(events, (str, os.PathLike)):
            parsed = load_schedule(os.fspath(events), self.topology)
        else:
            def fail(where, problem):
                raise TopologyError("<faults>", where, problem)
            parsed = parse_schedule(list(events), fail, list(self._lab.nodes),
                                    {str(e) for l in self.topology.links for e in l.ends()})
        return self._sup.run_schedule(parsed)

    def fault_log(self):
        """The supervisor's log: one timestamped line per fault, death and restart."""
        return [line for _, line in self._sup.events]

    def lost_nodes(self):
        """[(node, exit info)] of the nodes that died without being told to."""
        return list(self._sup.lost)

    def _check_running(self, name):
        info = self._lab.nodes.get(name, {})
        if info.get("state", "running") != "running":
            from ..supervisor import dead_node_message
            raise NodeUnreachable(113, dead_node_message({"nodes": self._lab.nodes}, name)
                                  or "%s is not running" % name)

    # -- processes on nodes
    def _start_process(self, node, func, args, kwargs):
        from .run import NodeProcess
        with self._proc_lock:
            if self._closed:
                raise RuntimeError("lab %s is closed" % self.name)
            p = NodeProcess(node, func, args, kwargs, next(self._proc_seq))
            self._procs.append(p)
        return p

    @property
    def closed(self):
        return self._closed

    def processes(self):
        """Every NodeProcess started in this lab (running or ended)."""
        with self._proc_lock:
            return list(self._procs)

    def _node_died(self, name):
        """Programs attached to a node end with it."""
        for p in self.processes():
            if p.node == name and not p.done():
                try:
                    p.kill()
                except OSError:
                    pass

    def stop_processes(self, grace=1.0):
        """Stop every process on the nodes: SIGTERM all, SIGKILL what is left after grace."""
        procs = [p for p in self.processes() if not p.done()]
        for p in procs:
            p.stop_async()
        concurrent.futures.wait(procs, grace)
        for p in procs:
            if not p.done():
                p.kill()
        concurrent.futures.wait(procs, 5.0)

    def evidence(self, log_lines=10, timeout=2.0):
        """A compact text of each node's non-zero counters, drops and log tail (for failures)."""
        from .evidence import lab_evidence
        return lab_evidence(self, log_lines=log_lines, timeout=timeout)

    def close(self):
        """Stop the processes on the nodes, then the nodes; remove the run directory."""
        with self._proc_lock:
            self._closed = True
        if self._sup is not None:
            self._sup.close()            # nothing restarts what we now stop
        try:
            self.stop_processes()
        finally:                         # Lab.stop tells every node at once and waits for all
            for n in self._nodes.values():
                n.ctl.close()
            self._lab.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


FORCED: dict = {"clock": None, "seed": None}


def launch(topology, base=None, timeout=30.0, cluster=None, clock=None, seed=None):
    """Start the lab described by a topology file; returns a LabHandle (a context manager).

    cluster: a Ray cluster's address ("auto", "ray://HEAD:10001") to place the
    nodes over its machines (emu/cluster.py); None runs them all here.
    clock: "virtual" runs the lab on its own time (README: deterministic
    labs), "real" on the host's; seed: the lab seed. Both default to the file's.
    """
    from ..orchestrator import prestart_forkserver, with_clock
    from ..supervisor import Supervisor
    from ..topology import load_topology
    from .run import importing_main
    if importing_main():
        # A node process of Node.run/spawn imports the parent's script to find
        # the function (as multiprocessing's spawn does): a script that
        # launches its lab at the top level would launch another one here.
        raise RuntimeError(
            "this script launches a lab when it is imported: a script that uses "
            "Node.run or Node.spawn must launch its lab under "
            "`if __name__ == \"__main__\":`, as with multiprocessing")
    # pytest --emu-clock/--emu-seed: every lab of the session (the plugin sets these).
    clock = FORCED["clock"] or clock
    seed = FORCED["seed"] if FORCED["seed"] is not None else seed
    # The fork server starts while the file is read (a virtual-time or
    # cluster lab does not use one started now).
    zygote = prestart_forkserver(base) if clock != "virtual" and cluster is None else None
    try:
        topo = topology if hasattr(topology, "nodes") else load_topology(os.fspath(topology))
        topo = with_clock(topo, clock, seed, cluster)
        lab = _Lab(topo, base, zygote=zygote, cluster=cluster)
    except BaseException:
        if zygote is not None:
            zygote.close()
        raise
    lab.start(timeout)
    try:
        sup = Supervisor(lab).start()
    except BaseException:
        lab.stop()
        raise
    handle = LabHandle(lab)
    sup.on_death = handle._node_died
    return handle


class _Partition:
    """What lab.partition() returns: heals when the with block ends."""

    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.heal()

    def heal(self):
        self.handle.heal()
