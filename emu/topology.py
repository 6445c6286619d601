"""Topology files (YAML) -> validated, frozen dataclasses.

A topology file is data, never code: it is read with a SafeLoader and every
field is checked here, so the orchestrator and the node processes can trust
what they get. Every error is a TopologyError whose text is one line naming
the file, the node or link, and the field.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import yaml

KINDS = ("host", "bridge", "router")
LINK_TYPES = ("veth", "phys", "tap")
CLOCKS = ("real", "virtual")
DEFAULT_START_TIME = 946684800       # 2000-01-01T00:00:00Z


def parse_start_time(v):
    """A virtual lab's start: seconds since 1970, or an ISO 8601 date and time
    (UTC unless it says otherwise); None when it is neither."""
    if v is None:
        return DEFAULT_START_TIME
    if _is_int(v) and 0 <= v < 1 << 40:
        return int(v)
    import datetime
    if isinstance(v, datetime.datetime):
        dt = v
    elif isinstance(v, str):
        try:
            dt = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    t = int(dt.timestamp())
    return t if t >= 0 else None
DEFAULT_CPUS = 2
DEFAULT_MTU = 1500

RESTART_POLICIES = ("no", "on-failure", "always")
_TOP_KEYS = {"name", "nodes", "links", "seed", "faults", "cluster", "clock", "start_time"}
_NODE_KEYS = {"kind", "cpus", "interfaces", "routes", "sysctls", "restart", "machine"}
_IFACE_KEYS = {"address", "addresses", "mtu", "mac", "queues"}
MAX_QUEUES = 64
_ROUTE_KEYS = {"dst", "via", "dev", "metric"}
_LINK_KEYS = {"endpoints", "type", "tap", "netns", "netem", "transport"}
# How a wire's frames travel: an ipc:// path (one machine), or TCP with CURVE
# (what a wire between machines uses; wire/curve.py), here on loopback.
TRANSPORTS = ("ipc", "tcp")
_TAP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$")

_LAB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NODE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
# IFNAMSIZ is 16 including the NUL, so at most 15 characters.
_IFNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_SYSCTL_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
_SYSCTL_TABLE: dict = {}
_CONF_DEV = re.compile(r"net\.ipv4\.conf\.([^.]+)\.(.+)")


def _sysctl_problem(name: str, value: object) -> str:
    """Why a node's kernel would refuse `sysctl -w name=value` ("" if it would
    not): checked against a booted kernel's table, as the node will set it, so
    that a bad file fails here and not in the node's boot. A device's own
    net.ipv4.conf.DEV.X is checked as conf.default.X (the devices a link adds
    are not known yet)."""
    if not _SYSCTL_TABLE:
        from .kernel.init import start_kernel     # the kernel only when a file sets sysctls
        _SYSCTL_TABLE.update(start_kernel("check", 1).sysctl)
    from .kernel.core.dev import KernelError
    from .kernel.core.rtnetlink import sysctl_parse
    m = _CONF_DEV.fullmatch(name)
    check = name if m is None or m.group(1) in ("all", "default") else \
        "net.ipv4.conf.default." + m.group(2)
    try:
        sysctl_parse(_SYSCTL_TABLE, check, value)
    except KernelError as e:
        if check not in _SYSCTL_TABLE:
            return f"{name}: no such sysctl"
        if e.errno == 2:                 # tcp_congestion_control: no such algorithm
            return f"{name}: {value!r} is not available"
        return f"{name}: invalid value {value!r}"
    return ""


class TopologyError(ValueError):
    """An invalid topology; str() is one line: "<file>: <where>: <problem>"."""

    def __init__(self, path: str, where: str, problem: str):
        self.path, self.where, self.problem = path, where, problem
        # Values from the file may hold line breaks; the message must stay one line.
        super().__init__("\\n".join(f"{path}: {where}: {problem}".splitlines()))


@dataclass(frozen=True)
class Address:
    """An IPv4 address with its prefix length, as on an interface."""
    ip: str
    prefixlen: int

    def __str__(self) -> str:
        return f"{self.ip}/{self.prefixlen}"

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(str(self), strict=False)


@dataclass(frozen=True)
class Route:
    """A static route; dst is always CIDR ("default" becomes 0.0.0.0/0)."""
    dst: str
    via: str | None
    dev: str | None
    metric: int = 0


@dataclass(frozen=True)
class Interface:
    """A network interface of a node."""
    name: str
    addresses: tuple[Address, ...]
    mtu: int = DEFAULT_MTU
    mac: str | None = None
    queues: int | None = None     # RX/TX queue pairs of a `phys` link's NIC (default 1)


@dataclass(frozen=True)
class Node:
    """A host, bridge or router; one OS process in a running lab."""
    name: str
    kind: str
    cpus: int
    interfaces: tuple[Interface, ...]
    routes: tuple[Route, ...]
    sysctls: tuple[tuple[str, object], ...]
    restart: str = "no"           # supervision: no | on-failure | always
    # A placement hint for a lab over a cluster (emu/cluster.py): a Ray
    # resource label of the machine to run on, or its index. None: anywhere.
    machine: str | int | None = None


@dataclass(frozen=True)
class LinkEnd:
    """One end of a link: an interface on a node."""
    node: str
    ifname: str

    def __str__(self) -> str:
        return f"{self.node}:{self.ifname}"


@dataclass(frozen=True)
class Link:
    """A cable between two interfaces; index is its position in the file.

    A `tap` link has one end (b is None): the interface faces a Linux TAP
    device named tap, created in network namespace netns (or the caller's).
    """
    index: int
    a: LinkEnd
    b: LinkEnd | None
    type: str = "veth"
    tap: str | None = None
    netns: str | None = None
    # Impairments on what each end sends: ((end, ((key, value), ...)), ...); see emu/netem.py.
    netem: tuple = ()
    transport: str = "ipc"

    def ends(self) -> tuple[LinkEnd, ...]:
        return (self.a,) if self.b is None else (self.a, self.b)

    def netem_of(self, end: LinkEnd) -> dict:
        """The netem keys applied to what end sends ({} when none)."""
        for e, spec in self.netem:
            if e == end:
                return dict(spec)
        return {}


@dataclass(frozen=True)
class Topology:
    """A whole lab: nodes and the links between them."""
    name: str
    path: str
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    seed: int = 0              # the lab seed: every node's RNG (and netem's) derive from it
    faults: tuple = ()            # a fault schedule: see emu/faults.py
    notes: tuple = ()             # what a containerlab file asked for that emu ignored (emu/clab.py)
    cluster: str | None = None    # a Ray cluster's address to run on (emu/cluster.py), or None
    clock: str = "real"           # "virtual": the lab's own time (emu/nodes/vclock.py)
    start_time: int = DEFAULT_START_TIME   # a virtual lab's wall clock at its time 0

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def first_address(self, node: str | Node) -> str | None:
        """First IPv4 address of the node's first interface that has one."""
        if isinstance(node, str):
            node = self.node(node)
        for iface in node.interfaces:
            if iface.addresses:
                return iface.addresses[0].ip
        return None

    def hosts(self) -> dict[str, str]:
        """Node name -> first address, for name resolution (nodes without one are left out)."""
        found = {n.name: self.first_address(n) for n in self.nodes}
        return {name: ip for name, ip in found.items() if ip is not None}


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (safe_load silently keeps the last one)."""


# libyaml's parser when PyYAML has it: a generated 1000-node file loads in 0.25 s
# instead of 0.9 s. A file it refuses is read again by _Loader, whose messages
# name the offending character.
class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """_Loader on libyaml's parser."""


def _construct_map(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # "<<: *defaults" may legitimately be overridden by later keys
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            continue  # unhashable key: construct_mapping reports it
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r}", key_node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_FastLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def load_topology(path) -> Topology:
    """Read and validate a topology file; every failure is a TopologyError."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TopologyError(path, "file", f"cannot read: {e}") from None
    try:
        try:
            data = yaml.load(text, Loader=_FastLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError:
            data = yaml.load(text, Loader=_Loader)  # noqa: S506 - the same, for its message
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "YAML"
        problem = getattr(e, "problem", None) or (str(e).splitlines() or ["syntax error"])[0]
        raise TopologyError(path, where, f"invalid YAML: {problem}") from None
    return parse_topology(data, path)


def parse_topology(data: object, path: str = "<string>") -> Topology:
    """Validate already-loaded YAML data; pure, no I/O."""
    return _Parser(str(path)).topology(data)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _iface_where(node: str, ifname: str, field: str) -> str:
    return f"node {node!r} interface {ifname!r} field {field!r}"


class _Parser:
    """Holds the file name and the lab-wide indexes while one topology is checked."""

    def __init__(self, path: str):
        self.path = path
        self.addr_owner: dict[str, str] = {}  # ip -> "node 'h1' interface 'eth0'"
        self.mac_owner: dict[str, str] = {}

    def fail(self, where: str, problem: str) -> NoReturn:
        raise TopologyError(self.path, where, problem)

    def check_keys(self, where: str, data: dict, allowed: set[str]) -> None:
        unknown = [k for k in data if k not in allowed]
        if unknown:
            self.fail(where, f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")

    def topology(self, data: object) -> Topology:
        notes: tuple[str, ...] = ()
        from .clab import is_clab, to_native
        if is_clab(data):                    # containerlab's layout: emu/clab.py translates it
            assert isinstance(data, dict)
            data, notes = to_native(data, self.fail)
        if not isinstance(data, dict):
            self.fail("top level", f"must be a mapping with 'nodes' (or containerlab's "
                      f"'topology'), got {type(data).__name__}")
        self.check_keys("top level", data, _TOP_KEYS)
        name = data.get("name", Path(self.path).stem)
        if "name" in data and (not isinstance(name, str) or not _LAB_NAME.fullmatch(name)):
            self.fail("top level field 'name'", f"must match {_LAB_NAME.pattern}, got {name!r}")
        raw_nodes = data.get("nodes")
        if not isinstance(raw_nodes, dict) or not raw_nodes:
            self.fail("top level field 'nodes'", "must be a non-empty mapping name -> settings")
        # Interfaces are kept in dicts (insertion order) so links can append to them.
        nodes = {n: self.node(n, s) for n, s in raw_nodes.items()}
        links = self.links(data.get("links"), nodes)
        built = tuple(self.finish_node(n, nodes[n]) for n in nodes)
        seed = data.get("seed", 0)
        if not _is_int(seed) or not 0 <= seed < 1 << 64:
            self.fail("top level field 'seed'", f"must be an integer 0..2^64-1, got {seed!r}")
        from .faults import parse_schedule
        faults = parse_schedule(data.get("faults"), self.fail, list(nodes),
                                {str(e) for l in links for e in l.ends()})
        cluster = data.get("cluster")
        if cluster is not None and not (isinstance(cluster, str) and 0 < len(cluster) <= 200):
            self.fail("top level field 'cluster'",
                      f"must be a Ray cluster's address (auto, ray://HOST:PORT, HOST:PORT), got "
                      f"{cluster!r}")
        clock = data.get("clock", "real")
        if clock not in CLOCKS:
            self.fail("top level field 'clock'", f"must be one of {', '.join(CLOCKS)}, got {clock!r}")
        start_time = parse_start_time(data.get("start_time"))
        if start_time is None:
            self.fail("top level field 'start_time'",
                      "must be seconds since 1970 or an ISO 8601 date and time, got "
                      f"{data.get('start_time')!r}")
        return Topology(name=name, path=self.path, nodes=built, links=links, seed=seed,
                        faults=faults, notes=notes, cluster=cluster, clock=clock,
                        start_time=start_time)

    def node(self, name: object, data: object) -> dict:
        where = f"node {name!r}"
        if not isinstance(name, str) or not _NODE_NAME.fullmatch(name):
            self.fail(where, f"bad node name: must match {_NODE_NAME.pattern}")
        if not isinstance(data, dict):
            self.fail(where, "must be a mapping with at least 'kind'")
        self.check_keys(where, data, _NODE_KEYS)
        kind = data.get("kind")
        if kind not in KINDS:
            self.fail(f"{where} field 'kind'", f"must be one of {', '.join(KINDS)}, got {kind!r}")
        cpus = data.get("cpus", DEFAULT_CPUS)
        if not _is_int(cpus) or not 1 <= cpus <= 64:
            self.fail(f"{where} field 'cpus'", f"must be an integer 1..64, got {cpus!r}")
        raw_ifaces = {} if data.get("interfaces") is None else data["interfaces"]
        if not isinstance(raw_ifaces, dict):
            self.fail(f"{where} field 'interfaces'", "must be a mapping of ifname -> settings")
        ifaces = {}
        for ifname, settings in raw_ifaces.items():
            self.check_ifname(name, ifname, f"{where} interface {ifname!r}")
            ifaces[ifname] = self.interface(name, ifname, settings)
        raw_routes = [] if data.get("routes") is None else data["routes"]
        if not isinstance(raw_routes, list):
            self.fail(f"{where} field 'routes'", "must be a list")
        if raw_routes and kind == "bridge":
            self.fail(f"{where} field 'routes'", "a bridge has no IP layer, so no routes")
        restart = data.get("restart", "no")
        restart = "no" if restart is False else restart      # YAML reads a bare `no` as false
        if restart not in RESTART_POLICIES:
            self.fail(f"{where} field 'restart'",
                      f"must be one of {', '.join(RESTART_POLICIES)}, got {restart!r}")
        machine = data.get("machine")
        if machine is not None and not (
                (isinstance(machine, str) and 0 < len(machine) <= 64)
                or (_is_int(machine) and 0 <= machine < 100000)):
            self.fail(f"{where} field 'machine'",
                      f"must be a machine's Ray resource label or its index, got {machine!r}")
        return {"kind": kind, "cpus": cpus, "ifaces": ifaces, "routes": raw_routes,
                "sysctls": self.sysctls(where, data.get("sysctls")), "restart": restart,
                "machine": machine}

    def check_ifname(self, node: str, ifname: object, where: str) -> None:
        if not isinstance(ifname, str) or not _IFNAME.fullmatch(ifname):
            self.fail(where, f"bad interface name on node {node!r}: must match {_IFNAME.pattern}")
        if ifname == "lo":
            self.fail(where, "'lo' is reserved for the loopback device every node has")

    def interface(self, node: str, ifname: str, data: object) -> Interface:
        data = {} if data is None else data
        if not isinstance(data, dict):
            self.fail(f"node {node!r} interface {ifname!r}", "settings must be a mapping or empty")
        self.check_keys(f"node {node!r} interface {ifname!r}", data, _IFACE_KEYS)
        if "address" in data and "addresses" in data:
            self.fail(_iface_where(node, ifname, "addresses"), "give 'address' or 'addresses'")
        if "address" in data:
            field, raw = "address", [data["address"]]
        else:
            field, raw = "addresses", [] if data.get("addresses") is None else data["addresses"]
            if not isinstance(raw, list):
                self.fail(_iface_where(node, ifname, field), "must be a list of CIDR strings")
        addresses = tuple(self.address(node, ifname, field, a) for a in raw)
        mtu = data.get("mtu", DEFAULT_MTU)
        if not _is_int(mtu) or not 68 <= mtu <= 65535:
            self.fail(_iface_where(node, ifname, "mtu"), f"must be an int 68..65535, got {mtu!r}")
        mac = self.mac(node, ifname, data.get("mac"))
        queues = data.get("queues")
        if queues is not None and (not _is_int(queues) or not 1 <= queues <= MAX_QUEUES):
            self.fail(_iface_where(node, ifname, "queues"),
                      f"must be an integer 1..{MAX_QUEUES}, got {queues!r}")
        return Interface(name=ifname, addresses=addresses, mtu=mtu, mac=mac, queues=queues)

    def address(self, node: str, ifname: str, field: str, value: object) -> Address:
        where = _iface_where(node, ifname, field)
        if not isinstance(value, str) or "/" not in value:
            self.fail(where, f"must be IPv4 CIDR like 10.0.0.1/24, got {value!r}")
        try:
            iface = ipaddress.IPv4Interface(value)
        except ValueError as e:
            self.fail(where, f"bad IPv4 address {value!r}: {e}")
        ip, net = iface.ip, iface.network
        if net.prefixlen == 0:
            self.fail(where, f"prefix length 0 is not allowed on an interface: {value!r}")
        if net.prefixlen <= 30 and ip in (net.network_address, net.broadcast_address):
            self.fail(where, f"{value!r} is the network or broadcast address of {net}")
        if ip.is_multicast or ip.is_unspecified or ip.is_reserved or ip.is_loopback:
            self.fail(where, f"{value!r} is not a unicast address usable on an interface")
        owner = f"node {node!r} interface {ifname!r}"
        if str(ip) in self.addr_owner:
            self.fail(where, f"address {ip} is already used by {self.addr_owner[str(ip)]}")
        self.addr_owner[str(ip)] = owner
        return Address(ip=str(ip), prefixlen=net.prefixlen)

    def mac(self, node: str, ifname: str, value: object) -> str | None:
        if value is None:
            return None
        where = _iface_where(node, ifname, "mac")
        # Unquoted MACs like 10:20:30:40:50:01 load as YAML 1.1 base-60 integers.
        if not isinstance(value, str) or not _MAC.fullmatch(value.lower()):
            self.fail(where, f"must be a quoted string like \"02:00:00:00:00:01\", got {value!r}")
        mac = value.lower()
        if int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
            self.fail(where, f"{value!r} is not a unicast MAC (first octet's low bit must be 0)")
        if mac in self.mac_owner:
            self.fail(where, f"MAC {mac} is already used by {self.mac_owner[mac]}")
        self.mac_owner[mac] = f"node {node!r} interface {ifname!r}"
        return mac

    def sysctls(self, where: str, data: object) -> tuple[tuple[str, object], ...]:
        data = {} if data is None else data
        if not isinstance(data, dict):
            self.fail(f"{where} field 'sysctls'", "must be a mapping of name -> value")
        for key, value in data.items():
            if not isinstance(key, str) or not _SYSCTL_KEY.fullmatch(key):
                self.fail(f"{where} field 'sysctls'", f"bad sysctl name {key!r}")
            if not isinstance(value, (str, int, float)):  # bool is an int
                self.fail(f"{where} field 'sysctls'", f"{key}: value must be scalar, got {value!r}")
            problem = _sysctl_problem(key, value)
            if problem:
                self.fail(f"{where} field 'sysctls'", problem)
        return tuple(data.items())

    def links(self, data: object, nodes: dict[str, dict]) -> tuple[Link, ...]:
        if data is None:
            return ()
        if not isinstance(data, list):
            self.fail("top level field 'links'", "must be a list")
        used: dict[LinkEnd, str] = {}  # interface -> the link that uses it
        links = []
        for index, raw in enumerate(data):
            link = self.link(index, raw, nodes)
            label = f"link {index} [{', '.join(str(e) for e in link.ends())}]"
            for end in link.ends():
                if end in used:
                    self.fail(label, f"interface {str(end)!r} is already used by {used[end]}")
                used[end] = label
                # An interface named only in links is created with no address.
                iface = nodes[end.node]["ifaces"].setdefault(end.ifname, Interface(end.ifname, ()))
                if iface.queues is not None and link.type != "phys":
                    self.fail(f"{label} field 'type'",
                              f"interface {str(end)!r} sets 'queues': that needs type: phys "
                              f"(a veth has one queue)")
            links.append(link)
        return tuple(links)

    def link(self, index: int, raw: object, nodes: dict[str, dict]) -> Link:
        where, ltype = f"link {index}", "veth"
        extra = {}
        if isinstance(raw, dict):
            self.check_keys(where, raw, _LINK_KEYS)
            endpoints, ltype = raw.get("endpoints"), raw.get("type", "veth")
            extra = {k: raw[k] for k in ("tap", "netns") if k in raw}
            if "netem" in raw:
                link = self.link(index, {k: v for k, v in raw.items() if k != "netem"}, nodes)
                return self.link_netem(link, raw["netem"])
            if "transport" in raw:
                link = self.link(index, {k: v for k, v in raw.items() if k != "transport"}, nodes)
                return self.link_transport(link, raw["transport"])
        elif isinstance(raw, list):
            endpoints = raw
        else:
            self.fail(where, "must be a list of two node:ifname or a mapping with 'endpoints'")
        if ltype not in LINK_TYPES:
            label = where
            if isinstance(endpoints, list) and endpoints and all(isinstance(e, str) for e in endpoints):
                label = f"link {index} [{', '.join(endpoints)}]"
            self.fail(f"{label} field 'type'", f"must be veth, phys or tap, got {ltype!r}")
        if ltype == "tap":
            return self.tap_link(index, where, endpoints, extra, nodes)
        if extra:
            self.fail(f"{where} field {sorted(extra)[0]!r}", "only a link of type: tap has it")
        if not isinstance(endpoints, list) or len(endpoints) != 2:
            self.fail(f"{where} field 'endpoints'",
                      f"must be a list of two node:ifname strings, got {endpoints!r}")
        if all(isinstance(e, str) for e in endpoints):
            where = f"link {index} [{endpoints[0]}, {endpoints[1]}]"
        ends = tuple(self.link_end(where, e, nodes) for e in endpoints)
        if ends[0] == ends[1]:
            self.fail(f"{where} field 'endpoints'", "a link cannot join an interface to itself")
        return Link(index=index, a=ends[0], b=ends[1], type=ltype)

    def link_transport(self, link: Link, raw: object) -> Link:
        """transport: ipc (the default) or tcp (CURVE-authenticated, on loopback)."""
        if link.b is None or raw not in TRANSPORTS:
            label = f"link {link.index} [{', '.join(str(e) for e in link.ends())}]"
            why = ("a tap link has no wire" if link.b is None
                   else f"must be {' or '.join(TRANSPORTS)}, got {raw!r}")
            self.fail(f"{label} field 'transport'", why)
        return dataclasses.replace(link, transport=str(raw))

    def link_netem(self, link: Link, raw: object) -> Link:
        """netem: {delay: 20ms, ...} (both directions) or {node:ifname: {...}, ...} (per end)."""

        from .netem import NetemError, spec_to_args
        label = f"link {link.index} [{', '.join(str(e) for e in link.ends())}]"
        names = {str(e): e for e in link.ends()}
        if not isinstance(raw, dict) or not raw:
            self.fail(f"{label} field 'netem'", "must be a mapping like {delay: 20ms, loss: 1%} "
                      "or one per end {node:ifname: {...}}")
        if all(isinstance(k, str) and ":" in k for k in raw):
            per_end = []
            for k, spec in raw.items():
                if k not in names:
                    self.fail(f"{label} field 'netem'", f"{k!r} is not an end of this link")
                per_end.append((names[k], spec, f"{label} field 'netem.{k}"))
        else:
            per_end = [(e, raw, f"{label} field 'netem") for e in link.ends()]
        out = []
        for end, spec, where in per_end:
            try:
                spec_to_args(spec)
            except NetemError as e:
                msg = str(e)
                field = msg.split(":", 1)[0] if ":" in msg and not msg.startswith("netem") else ""
                self.fail(f"{where}{'.' + field if field else ''}'",
                          msg.split(": ", 1)[1] if field or msg.startswith("netem: ") else msg)
            out.append((end, tuple((k, spec[k]) for k in spec)))
        return dataclasses.replace(link, netem=tuple(out))

    def tap_link(self, index, where, endpoints, extra, nodes) -> Link:
        """{endpoints: [node:ifname], type: tap, tap: NAME, netns: NS}: the real kernel's side."""
        if not isinstance(endpoints, list) or len(endpoints) != 1:
            self.fail(f"{where} field 'endpoints'",
                      f"a tap link has one endpoint (node:ifname), got {endpoints!r}")
        if isinstance(endpoints[0], str):
            where = f"link {index} [{endpoints[0]}]"
        end = self.link_end(where, endpoints[0], nodes)
        tap = extra.get("tap")
        if not isinstance(tap, str) or not _TAP_NAME.fullmatch(tap):
            self.fail(f"{where} field 'tap'", f"must be a Linux interface name, got {tap!r}")
        netns = extra.get("netns")
        if netns is not None and (not isinstance(netns, str) or not netns or "/" in netns):
            self.fail(f"{where} field 'netns'", f"must be a network namespace name, got {netns!r}")
        return Link(index=index, a=end, b=None, type="tap", tap=tap, netns=netns)

    def link_end(self, where: str, raw: object, nodes: dict[str, dict]) -> LinkEnd:
        if not isinstance(raw, str) or raw.count(":") != 1:
            self.fail(f"{where} field 'endpoints'", f"endpoint must be 'node:ifname', got {raw!r}")
        node, ifname = raw.split(":")
        if node not in nodes:
            self.fail(where, f"unknown node {node!r}")
        self.check_ifname(node, ifname, f"{where} field 'endpoints'")
        return LinkEnd(node=node, ifname=ifname)

    def finish_node(self, name: str, spec: dict) -> Node:
        # Routes are checked last: 'dev' may name an interface that only a link created.
        routes = tuple(self.route(name, i, r, spec["ifaces"]) for i, r in enumerate(spec["routes"]))
        return Node(name=name, kind=spec["kind"], cpus=spec["cpus"],
                    interfaces=tuple(spec["ifaces"].values()), routes=routes,
                    sysctls=spec["sysctls"], restart=spec["restart"],
                    machine=spec["machine"])

    def route(self, node: str, i: int, raw: object, ifaces: dict) -> Route:
        where = f"node {node!r} route {i}"
        if not isinstance(raw, dict):
            self.fail(where, "must be a mapping with 'dst' and 'via' and/or 'dev'")
        self.check_keys(where, raw, _ROUTE_KEYS)
        dst = raw.get("dst")
        if dst == "default":
            dst = "0.0.0.0/0"
        try:
            if not isinstance(dst, str):
                raise ValueError("must be 'default' or an IPv4 network like 10.9.0.0/16")
            dst = str(ipaddress.IPv4Network(dst))  # strict: host bits set is an error
        except ValueError as e:
            self.fail(f"{where} field 'dst'", f"bad destination {raw.get('dst')!r}: {e}")
        via, dev, metric = raw.get("via"), raw.get("dev"), raw.get("metric", 0)
        if via is None and dev is None:
            self.fail(where, "needs 'via', 'dev' or both")
        if via is not None:
            try:
                via = str(ipaddress.IPv4Address(via if isinstance(via, str) else ""))
            except ValueError:
                self.fail(f"{where} field 'via'", f"must be an IPv4 address, got {via!r}")
        if dev is not None and (not isinstance(dev, str) or dev not in ifaces):
            self.fail(f"{where} field 'dev'", f"{dev!r} is not an interface of node {node!r}")
        if not _is_int(metric) or metric < 0:
            self.fail(f"{where} field 'metric'", f"must be an integer >= 0, got {metric!r}")
        return Route(dst=dst, via=via, dev=dev, metric=metric)
