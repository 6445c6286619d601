"""What a lab's nodes are told to do, and when (a mixin of orchestrator.Lab):
as they boot (_boot_ops: a forked node's configuration in its fork
request) or in the configuration phases (_config_phases: each sent to every
node at once by Lab._configure)."""
from typing import Any

from .labwires import wire_is_tcp


class LabConfig:
    """Lab's configuration plans (a mixin of orchestrator.Lab)."""

    # Lab's, used here:
    topo: Any
    virtual: bool
    cluster_address: Any
    sock_dir: "str | None"
    machines: list
    placement: dict
    curve: Any
    wire_eps: dict
    boot: dict
    _attach_phases: int

    def _boot_ops(self, order=None):
        """({node: [[op, args], ...]}, {node: plan}): what each node does as it
        boots, before it says it is ready, instead of in the configuration
        phases: one request and reply less per op, and the work (a bridge's
        hundred binds) overlaps with the other nodes' forks and boots rather
        than waiting behind the slowest boot of each phase.

        Every node binds its ipc wires' inboxes. A node whose every link is
        an ipc wire also connects the wires whose other end was forked
        before it (order: {node: position}; None: every other node runs
        already, a restart), brings its devices up (a bridge: its ports and
        itself) and adds its addresses, routes, sysctls and netem qdiscs:
        nothing is sent until a program runs (adding an address sends
        nothing; a gratuitous ARP goes only at device up, with arp_notify,
        devinet.c), and a connect whose inbox is not bound yet is retried by
        ZeroMQ every 5 ms, the frames queued. The other ends connect in the
        one configuration phase left.

        None where this does not apply: a virtual-time node (its own user
        loop, vruntime.py) or a lab over a cluster."""
        if self.virtual or self.cluster_address is not None:
            return None
        iface = {(n.name, i.name): i for n in self.topo.nodes for i in n.interfaces}
        attach: dict[str, list] = {}
        connect: dict[str, list] = {}
        other: set[str] = set()      # nodes with a tap or tcp link: configured in phases
        for link in self.topo.links:
            if link.type == "tap" or wire_is_tcp(self, link):
                other.update(e.node for e in link.ends())
                continue
            assert link.b is not None
            for me, peer, mine, theirs in ((link.a, link.b, "a", "b"), (link.b, link.a, "b", "a")):
                args = self._wire_attach_args(link, me, peer, mine, iface)
                attach.setdefault(me.node, []).append(["wire_attach", args])
                if order is None or order.get(peer.node, -1) < order.get(me.node, -1):
                    connect.setdefault(me.node, []).append(
                        ["wire_connect", {"ifname": me.ifname, "tx": args["rx"][:-1] + theirs}])
        linked = {(e.node, e.ifname) for l in self.topo.links for e in l.ends()}
        netem = self._netem_ops()
        ops: dict[str, list] = {}
        plan: dict[str, dict] = {}
        for node in self.topo.nodes:
            todo = ops[node.name] = list(attach.get(node.name, []))
            if node.name in other:
                plan[node.name] = {"up": False, "connected": set()}
                continue
            conns = connect.get(node.name, [])
            todo += conns
            todo += [[op, args] for op, args in self._link_up_ops(node, linked)]
            todo += [[op, args] for op, args in self._conf_ops(node, linked)]
            todo += [[op, args] for op, args in netem.get(node.name, [])]
            plan[node.name] = {"up": True, "connected": {a["ifname"] for _, a in conns}}
        return ops, plan

    def _wire_attach_args(self, link, me, peer, mine, iface):
        """An ipc wire end's wire_attach: its inbox in the lab's socket directory."""
        i = iface.get((me.node, me.ifname))
        run_dir = self.sock_dir
        if self.machines:        # both ends on one machine: its run directory
            run_dir = self.machines[self.placement[me.node]].info["run_dir"]
        return {"ifname": me.ifname, "rx": "ipc://%s/w%d%s" % (run_dir, link.index, mine),
                "tx": None, "mac": i.mac if i is not None else None,
                "mtu": i.mtu if i is not None else None, "peer": str(peer), "kind": link.type,
                "queues": (i.queues or 1) if i is not None else 1}

    def _config_phases(self):
        topo = self.topo
        iface = {(n.name, i.name): i for n in topo.nodes for i in n.interfaces}
        attach: dict[str, list] = {}
        connect: dict[str, list] = {}
        up: dict[str, list] = {}
        hosts: dict[str, list] = {}
        netem: dict[str, list] = {}

        def call(batch, node, op, **args):
            batch.setdefault(node, []).append((op, args))

        for link in topo.links:
            if link.type == "tap":
                i = iface.get((link.a.node, link.a.ifname))
                call(attach, link.a.node, "tap_attach", ifname=link.a.ifname, tap=link.tap,
                     netns=link.netns, mac=i.mac if i is not None else None,
                     mtu=i.mtu if i is not None else None)
                continue
            assert link.b is not None            # only a tap link has one end
            ends = ((link.a, link.b, "a", "b"), (link.b, link.a, "b", "a"))
            for me, peer, mine, theirs in ends:
                i = iface.get((me.node, me.ifname))
                if wire_is_tcp(self, link):
                    # Bound on the machine's address (loopback here), any port;
                    # connected once the peer's port is known.
                    assert self.curve is not None
                    ip = "127.0.0.1"
                    if self.machines:
                        ip = self.machines[self.placement[me.node]].ip
                    wire = {"rx": self.wire_eps.get((me.node, me.ifname), "tcp://%s:*" % ip),
                            "tx": None, "curve_public": self.curve[0],
                            "curve_secret": self.curve[1]}
                    call(attach, me.node, "wire_attach", ifname=me.ifname, **wire,
                         mac=i.mac if i is not None else None,
                         mtu=i.mtu if i is not None else None, peer=str(peer),
                         kind=link.type,
                         queues=(i.queues or 1) if i is not None else 1)
                    continue
                # Bound first (at the node's boot, or in the first phase),
                # connected in the next phase, once every inbox exists: a
                # PUSH connecting to an inbox not yet bound retries every 5 ms
                # (socket, connect, close), and in a 1000-node start those
                # retries were a fifth of all the CPU the start took.
                args = self._wire_attach_args(link, me, peer, mine, iface)
                booted = self.boot.get(me.node)
                if booted is None:
                    call(attach, me.node, "wire_attach", **args)
                if booted is None or me.ifname not in booted["connected"]:
                    call(connect, me.node, "wire_connect", ifname=me.ifname,
                         tx=args["rx"][:-1] + theirs)
        linked = {(e.node, e.ifname) for l in topo.links for e in l.ends()}
        # Every linked device is up before any address is added: adding one sends a
        # gratuitous ARP, which a peer still down would drop (DEV_READY) and count.
        # A node's ipc wires are connected first, in the same batch.
        for name, ops in connect.items():
            up.setdefault(name, []).extend(ops)
        netem_ops = self._netem_ops()
        for node in topo.nodes:
            if node.name in self.boot and self.boot[node.name]["up"]:
                continue                 # done as it booted (_boot_ops)
            for op, args in self._link_up_ops(node, linked):
                call(up, node.name, op, **args)
            for op, args in self._conf_ops(node, linked):
                call(hosts, node.name, op, **args)
            for op, args in netem_ops.get(node.name, []):
                call(netem, node.name, op, **args)
        self._attach_phases = 1 if attach else 0
        return [p for p in (attach, up, hosts, netem) if p]

    @staticmethod
    def _conf_ops(node, linked):
        """A node's addresses (a bridge's on itself), routes and sysctls."""
        out = []
        for i in node.interfaces:
            if node.kind == "bridge":
                out += [("addr_add", {"dev": node.name, "address": str(a)}) for a in i.addresses]
            elif (node.name, i.name) in linked:
                out += [("addr_add", {"dev": i.name, "address": str(a)}) for a in i.addresses]
        if node.kind == "bridge":
            return out
        out += [("route_add", {"dst": r.dst, "via": r.via, "dev": r.dev, "metric": r.metric})
                for r in node.routes]
        out += [("sysctl_set", {"name": k, "value": v}) for k, v in node.sysctls]
        return out

    def _netem_ops(self):
        """Link `netem:` keys: a netem root qdisc on each impaired end (what it sends)."""
        from .netem import parse_netem, spec_to_args
        out: dict[str, list] = {}
        for link in self.topo.links:
            for end, spec in link.netem:
                opts = parse_netem(spec_to_args(dict(spec)))
                out.setdefault(end.node, []).append(
                    ("qdisc_add", dict(dev=end.ifname, kind="netem", replace=True, **opts)))
        return out

    @staticmethod
    def _link_up_ops(node, linked):
        """A node's linked devices up; a bridge's ports enslaved and the bridge
        up. The bridge's are in the links-up phase or at its boot, with or
        before its wires' connects: no host sends before it has an address,
        in the next phase."""
        names = [i.name for i in node.interfaces if (node.name, i.name) in linked]
        if node.kind != "bridge":
            return [("link_set", {"name": n, "up": True}) for n in names]
        return ([("link_add", {"name": node.name, "kind": "bridge"})]
                + [("link_set", {"name": n, "master": node.name, "up": True}) for n in names]
                + [("link_set", {"name": node.name, "up": True})])
