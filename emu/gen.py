"""Generated topologies for large labs: star, line, tree, fat-tree, campus.

No one writes a 1000-node topology by hand. Each generator here is a pure
function that returns a topology as a dict in the topology-file format (the
same data emu/topology.py checks in any file), and to_yaml() writes it in
the style of topologies/*.yaml. `emu gen SHAPE ...` is the command.

Addressing is chosen so that every host reaches every other host and every
router address (all-pairs ping works):

* star: one L2 subnet, 10.0.0.0/24 (or a larger prefix for more hosts), on
  one bridge or on leaf bridges under a core bridge. No routers.
* line, tree, campus: the routers form a tree. Subnets come from
  10.0.0.0/8 in depth-first order, so each router's subtree owns one
  contiguous range of addresses: a router routes that range (summarized,
  ipaddress.summarize_address_range) via the child, and everything else via
  its default route to its parent. A host's default route is its router.
  On a link to a parent, the parent is .1 and the child .2; on a LAN the
  router is .1 and the hosts follow.
* fat-tree (Al-Fares et al., SIGCOMM 2008): pods p = 0..k-1 with k/2 edge
  and k/2 aggregation routers, (k/2)^2 core routers, k/2 hosts per edge
  router. Edge e of pod p owns 10.p.e.0/24 (its hosts' /30 links in the low
  half, its uplinks in the high half); aggregation router a owns
  10.p.(k/2+a).0/24 (its core links). Edges default to one aggregation
  router, aggregation routers to one core; cores route 10.p.0.0/16 down.
  Emulation note: static routes, one path per destination, no ECMP.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

import yaml

MAX_NODES = 100_000           # a larger file would take longer to write than to regret
DEFAULT_TTL, MAX_TTL = 64, 255  # net.ipv4.ip_default_ttl; an IPv4 TTL is 8 bits
_SPACE = ipaddress.IPv4Network("10.0.0.0/8")


class GenError(ValueError):
    """A bad generator argument; str() is one line."""


def _check_int(what: str, value: object, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise GenError("%s must be an integer %d..%d, got %r" % (what, lo, hi, value))
    return value


def _lan_prefix(hosts: int) -> int:
    """The longest prefix (at most /24) whose subnet holds `hosts` addresses."""
    prefix = 24
    while (1 << (32 - prefix)) - 2 < hosts:
        prefix -= 1
    return prefix


class _Builder:
    """Nodes, links and a sequential, aligned subnet allocator for one lab."""

    def __init__(self, name: str, cpus: int):
        from .topology import _LAB_NAME
        if not isinstance(name, str) or not _LAB_NAME.fullmatch(name):
            raise GenError("name must match %s, got %r" % (_LAB_NAME.pattern, name))
        self.name = name
        self.cpus = _check_int("cpus", cpus, 1, 64)
        self.nodes: dict[str, dict] = {}
        self.links: list[list[str]] = []
        self.next = int(_SPACE.network_address)
        self.ports: dict[str, int] = {}    # bridge -> ports used

    def check_size(self, nodes: int) -> None:
        if nodes > MAX_NODES:
            raise GenError("that is %d nodes; at most %d" % (nodes, MAX_NODES))

    def subnet(self, prefixlen: int) -> ipaddress.IPv4Network:
        size = 1 << (32 - prefixlen)
        start = -(-self.next // size) * size            # aligned up
        if start + size > int(_SPACE.broadcast_address) + 1:
            raise GenError("the lab needs more addresses than %s holds" % _SPACE)
        self.next = start + size
        return ipaddress.IPv4Network((start, prefixlen))

    def node(self, name: str, kind: str) -> dict:
        node: dict = {"kind": kind, "cpus": self.cpus}
        if kind != "bridge":
            node["interfaces"] = {}
        self.nodes[name] = node
        return node

    def iface(self, node: str, address: str) -> str:
        """A new interface eth<N> on node with address; returns its name."""
        ifaces = self.nodes[node]["interfaces"]
        ifname = "eth%d" % len(ifaces)
        ifaces[ifname] = {"address": address}
        return ifname

    def port(self, bridge: str, ifname: str | None = None) -> str:
        """The next port p1, p2, ... of a bridge (or a named one such as p0)."""
        if ifname is None:
            self.ports[bridge] = self.ports.get(bridge, 0) + 1
            ifname = "p%d" % self.ports[bridge]
        return ifname

    def route(self, node: str, dst: str, via: str) -> None:
        self.nodes[node].setdefault("routes", []).append({"dst": dst, "via": via})

    def link(self, a: str, a_if: str, b: str, b_if: str) -> None:
        self.links.append(["%s:%s" % (a, a_if), "%s:%s" % (b, b_if)])

    def p2p(self, a: str, b: str, net: ipaddress.IPv4Network, a_host: int = 1,
            b_host: int = 2) -> tuple[str, str]:
        """Link a and b on net (a is .a_host, b is .b_host); returns their addresses."""
        base, plen = int(net.network_address), net.prefixlen
        ip_a, ip_b = str(ipaddress.IPv4Address(base + a_host)), str(ipaddress.IPv4Address(base + b_host))
        self.link(a, self.iface(a, "%s/%d" % (ip_a, plen)), b, self.iface(b, "%s/%d" % (ip_b, plen)))
        return ip_a, ip_b

    def lan(self, bridge: str, members: list[str], net: ipaddress.IPv4Network,
            gateway: str | None = None) -> None:
        """A bridge with gateway (port p0, address .1) and members (p1.., addresses after it)."""
        addrs = net.hosts()
        if gateway is not None:
            gw_ip = str(next(addrs))
            self.link(gateway, self.iface(gateway, "%s/%d" % (gw_ip, net.prefixlen)), bridge, "p0")
        for member in members:
            ip = "%s/%d" % (next(addrs), net.prefixlen)
            self.link(member, self.iface(member, ip), bridge, self.port(bridge))
            if gateway is not None:
                self.route(member, "default", gw_ip)

    def result(self) -> dict:
        return {"name": self.name, "nodes": self.nodes, "links": self.links}


def _router_tree(b: _Builder, root: str, children: dict[str, list[str]], attach) -> None:
    """Address and route a tree of routers (already added as nodes).

    Visits the routers depth first: each gets its uplink subnet (a /24 to its
    parent), then attach(router) adds what hangs off it (hosts, LANs). Then
    every router routes each child's address range via that child and
    everything else via its parent.
    """
    order: list[str] = []
    parent: dict[str, str] = {}
    up_ip: dict[str, tuple[str, str]] = {}        # router -> (parent's ip, its own ip)
    start: dict[str, int] = {}
    end: dict[str, int] = {}
    stack = [root]
    while stack:
        r = stack.pop()
        order.append(r)
        start[r] = b.next
        if r in parent:
            up_ip[r] = b.p2p(parent[r], r, b.subnet(24))      # the child's eth0
        attach(r)
        end[r] = b.next
        for c in reversed(children.get(r, [])):
            parent[c] = r
            stack.append(c)
    for r in reversed(order):                        # children before parents
        for c in children.get(r, []):
            end[r] = max(end[r], end[c])
    for r in order:
        connected = {ipaddress.IPv4Interface(i["address"]).network
                     for i in b.nodes[r]["interfaces"].values()}
        if r in parent:
            b.route(r, "default", up_ip[r][0])
        for c in children.get(r, []):
            first = ipaddress.IPv4Address(start[c])
            last = ipaddress.IPv4Address(end[c] - 1)
            for net in ipaddress.summarize_address_range(first, last):
                if net not in connected:
                    b.route(r, str(net), up_ip[c][1])


def _host_on(b: _Builder, router: str, host: str) -> None:
    """A host on its own /24 with router: router .1, host .2, default route via .1."""
    b.node(host, "host")
    gw, _ = b.p2p(router, host, b.subnet(24))
    b.route(host, "default", gw)


# ---------------------------------------------------------------- generators

def star(hosts: int, bridges: int = 1, cpus: int = 1, name: str | None = None) -> dict:
    """hosts h1..hN on one subnet: on bridge br0, or spread over leaf bridges
    br1..brB whose port p0 joins core bridge br0."""
    _check_int("hosts", hosts, 1, MAX_NODES)
    _check_int("bridges", bridges, 1, hosts)
    b = _Builder(name or "star%d" % hosts, cpus)
    b.check_size(hosts + bridges + (bridges > 1))
    net = ipaddress.IPv4Network(("10.0.0.0", _lan_prefix(hosts)))
    names = ["h%d" % i for i in range(1, hosts + 1)]
    for h in names:
        b.node(h, "host")
    addrs = net.hosts()
    if bridges == 1:
        b.node("br0", "bridge")
        leaves = [("br0", names)]
    else:
        b.node("br0", "bridge")
        per, extra = divmod(hosts, bridges)
        leaves, i = [], 0
        for n in range(1, bridges + 1):
            count = per + (n <= extra)
            leaves.append(("br%d" % n, names[i:i + count]))
            i += count
            b.node("br%d" % n, "bridge")
            b.link("br%d" % n, "p0", "br0", b.port("br0"))
    for bridge, members in leaves:
        for h in members:
            ip = "%s/%d" % (next(addrs), net.prefixlen)
            b.link(h, b.iface(h, ip), bridge, b.port(bridge))
    return b.result()


def line(routers: int, cpus: int = 1, name: str | None = None) -> dict:
    """h1 -- r1 -- r2 -- ... -- rN -- h2."""
    _check_int("routers", routers, 1, MAX_TTL - 1)
    b = _Builder(name or "line%d" % routers, cpus)
    b.check_size(routers + 2)
    names = ["r%d" % i for i in range(1, routers + 1)]
    for r in names:
        b.node(r, "router")
    children = {names[i]: [names[i + 1]] for i in range(routers - 1)}

    def attach(r):
        if r == names[0]:
            _host_on(b, r, "h1")
        if r == names[-1]:
            _host_on(b, r, "h2")
    _router_tree(b, names[0], children, attach)
    if routers >= DEFAULT_TTL:
        # A packet crosses every router: the default TTL of 64 would not reach the far end.
        for node in b.nodes.values():
            node["sysctls"] = {"net.ipv4.ip_default_ttl": MAX_TTL}
    return b.result()


def tree(depth: int, fanout: int, cpus: int = 1, name: str | None = None) -> dict:
    """depth levels of routers, each with fanout children; fanout hosts on each
    router of the last level (as Mininet's TreeTopo). Routers r1.. are numbered
    level by level, hosts h1.. left to right."""
    _check_int("depth", depth, 1, 32)
    _check_int("fanout", fanout, 1, 1000)
    routers = sum(fanout ** d for d in range(depth))
    hosts = fanout ** depth
    if routers + hosts > MAX_NODES:
        raise GenError("depth %d fanout %d is %d nodes; at most %d"
                       % (depth, fanout, routers + hosts, MAX_NODES))
    b = _Builder(name or "tree-%dx%d" % (depth, fanout), cpus)
    names = ["r%d" % i for i in range(1, routers + 1)]
    for r in names:
        b.node(r, "router")
    # Level by level: router i's children are fanout*i+1 .. fanout*i+fanout (0-based).
    children = {names[i]: names[fanout * i + 1:fanout * i + fanout + 1]
                for i in range(routers) if fanout * i + 1 < routers}
    leaves = {r for r in names if r not in children}
    seq = iter(range(1, hosts + 1))

    def attach(r):
        if r in leaves:
            for _ in range(fanout):
                _host_on(b, r, "h%d" % next(seq))
    _router_tree(b, names[0], children, attach)
    return b.result()


def fat_tree(k: int, cpus: int = 1, name: str | None = None) -> dict:
    """A k-ary fat-tree of routers: core0.., agg<p>-<a>, edge<p>-<e> and hosts
    h<p>-<e>-<i> (all numbered from 0; see the module docstring for addresses)."""
    _check_int("k", k, 2, 64)
    if k % 2:
        raise GenError("k must be even, got %d" % k)
    half = k // 2
    b = _Builder(name or "fat-tree-%d" % k, cpus)
    b.check_size(5 * k * k // 4 + k ** 3 // 4)
    cores = ["core%d" % c for c in range(half * half)]
    for core in cores:
        b.node(core, "router")
    for p in range(k):
        for a in range(half):
            b.node("agg%d-%d" % (p, a), "router")
        for e in range(half):
            b.node("edge%d-%d" % (p, e), "router")

    for p in range(k):
        for e in range(half):
            edge = "edge%d-%d" % (p, e)
            for i in range(half):
                host = "h%d-%d-%d" % (p, e, i)
                b.node(host, "host")
                gw = "10.%d.%d.%d" % (p, e, 4 * i + 1)
                b.link(edge, b.iface(edge, gw + "/30"),
                       host, b.iface(host, "10.%d.%d.%d/30" % (p, e, 4 * i + 2)))
                b.route(host, "default", gw)
            for a in range(half):
                agg = "agg%d-%d" % (p, a)
                b.link(edge, b.iface(edge, "10.%d.%d.%d/30" % (p, e, 128 + 4 * a + 1)),
                       agg, b.iface(agg, "10.%d.%d.%d/30" % (p, e, 128 + 4 * a + 2)))
        for a in range(half):
            agg = "agg%d-%d" % (p, a)
            for j in range(half):
                core = cores[a * half + j]
                b.link(agg, b.iface(agg, "10.%d.%d.%d/30" % (p, half + a, 4 * j + 1)),
                       core, b.iface(core, "10.%d.%d.%d/30" % (p, half + a, 4 * j + 2)))
    for p in range(k):
        for e in range(half):
            edge = "edge%d-%d" % (p, e)
            for a in range(half):       # each aggregation router's block, straight up
                b.route(edge, "10.%d.%d.0/24" % (p, half + a), "10.%d.%d.%d" % (p, e, 128 + 4 * a + 2))
            up = e % half               # spread the edges' default routes over the aggs
            b.route(edge, "default", "10.%d.%d.%d" % (p, e, 128 + 4 * up + 2))
        for a in range(half):
            agg = "agg%d-%d" % (p, a)
            for e in range(half):
                b.route(agg, "10.%d.%d.0/24" % (p, e), "10.%d.%d.%d" % (p, e, 128 + 4 * a + 1))
            for other in range(half):   # another agg's block: via an edge, which has a link to it
                if other != a:
                    b.route(agg, "10.%d.%d.0/24" % (p, half + other),
                            "10.%d.%d.%d" % (p, 0, 128 + 4 * a + 1))
            j = p % half                # spread the pods' default routes over the cores
            b.route(agg, "default", "10.%d.%d.%d" % (p, half + a, 4 * j + 2))
    for c, core in enumerate(cores):
        group, j = divmod(c, half)      # core c hangs off aggregation router `group` of each pod
        for p in range(k):
            b.route(core, "10.%d.0.0/16" % p, "10.%d.%d.%d" % (p, half + group, 4 * j + 1))
    return b.result()


def campus(bridges: int, hosts_per_bridge: int, bridges_per_router: int = 4,
           cpus: int = 1, name: str | None = None) -> dict:
    """bridges br1..brB of hosts h1..hN, each bridge a LAN behind one of the
    routers r1..rR (bridges_per_router each); the routers hang off router
    `core` when there are several. Hosts are numbered bridge by bridge."""
    _check_int("bridges", bridges, 1, MAX_NODES)
    _check_int("hosts_per_bridge", hosts_per_bridge, 1, MAX_NODES)
    _check_int("bridges_per_router", bridges_per_router, 1, MAX_NODES)
    nrouters = -(-bridges // bridges_per_router)
    total = bridges * (hosts_per_bridge + 1) + nrouters + (nrouters > 1)
    b = _Builder(name or "campus-%dx%d" % (bridges, hosts_per_bridge), cpus)
    b.check_size(total)
    routers = ["r%d" % i for i in range(1, nrouters + 1)]
    root = "core" if nrouters > 1 else routers[0]
    if nrouters > 1:
        b.node("core", "router")
    for r in routers:
        b.node(r, "router")
    children = {"core": routers} if nrouters > 1 else {}
    prefix = _lan_prefix(hosts_per_bridge + 1)
    nbr, nhost = iter(range(1, bridges + 1)), iter(range(1, bridges * hosts_per_bridge + 1))

    def attach(r):
        if r == "core":
            return
        first = (int(r[1:]) - 1) * bridges_per_router
        for _ in range(min(bridges_per_router, bridges - first)):
            br = "br%d" % next(nbr)
            b.node(br, "bridge")
            members = ["h%d" % next(nhost) for _ in range(hosts_per_bridge)]
            for h in members:
                b.node(h, "host")
            b.lan(br, members, b.subnet(prefix), gateway=r)
    _router_tree(b, root, children, attach)
    return b.result()


SHAPES: dict[str, Callable[..., dict]] = {"star": star, "line": line, "tree": tree, "fat-tree": fat_tree, "campus": campus}


# ---------------------------------------------------------------- YAML

_PLAIN = re.compile(r"^[A-Za-z0-9_./-][A-Za-z0-9_./:-]*$")
_RESOLVER = yaml.resolver.Resolver()


def _scalar(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int):
        return str(value)
    text = str(value)
    # Plain only when YAML reads it back as a string (not 'no', '1.5', '10:20').
    if _PLAIN.fullmatch(text) and \
            _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str":
        return text
    import json
    return json.dumps(text)


def _flow(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join("%s: %s" % (_scalar(k), _flow(v)) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def to_yaml(data: dict, comment: str = "") -> str:
    """A generated topology as YAML in the style of topologies/*.yaml."""
    out = ["# " + line for line in comment.splitlines()]
    for key, value in data.items():
        if key == "nodes":
            out.append("nodes:")
            for name, node in value.items():
                if not any(isinstance(v, (dict, list)) for v in node.values()):
                    out.append("  %s: %s" % (_scalar(name), _flow(node)))
                    continue
                out.append("  %s:" % _scalar(name))
                for k, v in node.items():
                    if isinstance(v, dict):
                        out.append("    %s:" % k)
                        out.extend("      %s: %s" % (_scalar(ik), _flow(iv)) for ik, iv in v.items())
                    elif isinstance(v, list):
                        out.append("    %s:" % k)
                        out.extend("      - %s" % _flow(item) for item in v)
                    else:
                        out.append("    %s: %s" % (k, _scalar(v)))
        elif isinstance(value, list):
            out.append("%s:" % key)
            out.extend("  - %s" % _flow(item) for item in value)
        else:
            out.append("%s: %s" % (key, _flow(value)))
    return "\n".join(out) + "\n"


def describe(data: dict) -> str:
    """'1051 nodes (1000 hosts, 40 bridges, 11 routers), 1050 links'."""
    kinds: dict[str, int] = {}
    for node in data["nodes"].values():
        kinds[node["kind"]] = kinds.get(node["kind"], 0) + 1
    parts = ", ".join("%d %ss" % (n, k) if n != 1 else "1 %s" % k
                      for k, n in sorted(kinds.items()))
    return "%d nodes (%s), %d links" % (len(data["nodes"]), parts, len(data["links"]))
