"""The Python API for labs:

    import emu
    with emu.launch("topologies/veth-bridge.yaml") as lab:
        r = lab.node("h1").ping("h2", count=3, interval=0.2)
        assert r.received == 3
        print(lab.node("br0").fdb())
"""
import os

from ..orchestrator import Lab as _Lab
from .rpc import ControlClient
from .socket import socket as _socket
from .tools import ping as _ping


class Node:
    """A handle on one node of a running lab."""

    def __init__(self, lab, name, info):
        self.lab = lab
        self.name = name
        self.info = info
        self.ctl = ControlClient(info["ctl"])
        self.sys_endpoint = info["sys"]

    def __repr__(self):
        return "<emu.Node %s pid=%s>" % (self.name, self.info.get("pid"))

    @property
    def pid(self):
        return self.info["pid"]

    def call(self, op, **args):
        """A control request (the same API `ip`, `bridge`, `sysctl` use)."""
        return self.ctl.call(op, **args)

    def resolve(self, host):
        """A lab node name -> its first address; an address stays itself."""
        return self.lab.resolve(host)

    def socket(self, family=2, type=1, proto=0):
        """A socket in this node's kernel, with Python's socket.socket methods."""
        return _socket(family, type, proto, node=self.sys_endpoint)

    def ping(self, host, count=3, interval=0.2, size=56, timeout=None, ttl=None, out=None):
        """Run ping from this node; returns a PingResult (replies, rtts, loss, lines)."""
        address = self.resolve(host)
        if address is None:
            raise ValueError("unknown host %r" % host)
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
        self._nodes = {}

    @property
    def run_dir(self):
        return self._lab.run_dir

    @property
    def topology(self):
        return self._lab.topo

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

    def close(self):
        for n in self._nodes.values():
            n.ctl.close()
        self._lab.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def launch(topology, base=None, timeout=30.0):
    """Start the lab described by a topology file; returns a LabHandle (a context manager)."""
    lab = _Lab(os.fspath(topology) if not hasattr(topology, "nodes") else topology, base)
    lab.start(timeout)
    return LabHandle(lab)
