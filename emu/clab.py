"""containerlab topology files: an alternative spelling of emu's own.

    name: lab1
    topology:
      nodes:
        r1: {kind: linux, exec: ["ip addr add 10.0.1.1/24 dev eth1",
                                 "sysctl -w net.ipv4.ip_forward=1"]}
        br0: {kind: bridge}
      links:
        - endpoints: ["r1:eth1", "br0:p1"]

is turned into the dict emu's own parser (emu/topology.py) checks, so every
error still names the file, the node or link and the field.

* `kind: linux` is a host, `kind: bridge` (and `ovs-bridge`) a bridge node;
  emu's own `host`, `router` and `bridge` are accepted too.
* containerlab has no address or route fields: its users configure a node
  with `exec:` lines. Each line is run through emu's own `ip` and `sysctl`
  tools (emu/client/tools/) at load time, against a recorder in place of a
  node's control endpoint; what they ask for (addr_add, route_add, link_set
  mtu, sysctl_set) becomes the node's configuration, which the orchestrator
  applies at start and again whenever the node restarts. A `linux` node
  that sets `net.ipv4.ip_forward=1` is a router (that is all emu's router
  kind is). Any other command is not run, and is reported.
* containerlab gives every container an eth0 on its management network:
  emu emulates no management network, so a node has only the interfaces its
  links name (data interfaces from eth1, as in containerlab).
* Fields emu cannot honour (image, mgmt, binds, env, ports, ...) are
  accepted and reported once, in Topology.notes, never silently dropped.

Emulation note: emu extensions allowed in a containerlab file: a link's
`type: phys` / `queues: N` / `netem:`, a node's `restart:`, and the top-level
`seed:` and `faults:`.
"""
from __future__ import annotations

import shlex
from typing import Callable, NoReturn

KIND_MAP = {"linux": "host", "bridge": "bridge", "ovs-bridge": "bridge",
            "host": "host", "router": "router"}
# Fields of a containerlab node emu accepts but cannot honour (there are no containers).
IGNORED_NODE_KEYS = {
    "image", "image-pull-policy", "mgmt-ipv4", "mgmt-ipv6", "mgmt-ip", "binds", "env",
    "env-files", "ports", "labels", "startup-config", "startup-delay", "enforce-startup-config",
    "suppress-startup-config", "group", "cmd", "entrypoint", "user", "network-mode", "memory",
    "cpu-set", "license", "type", "sandbox", "kernel", "runtime", "publish", "extras", "dns",
    "certificate", "healthcheck", "wait-for", "stages", "aliases", "auto-remove",
    "restart-policy", "components", "config", "devices", "cap-add", "shm-size", "sysctls",
    "exec-on-destroy", "dns-servers", "mgmt-net"}
HONOURED_NODE_KEYS = {"kind", "exec", "cpu", "restart"}
TOP_KEYS = {"name", "topology", "seed", "faults"}
IGNORED_TOP_KEYS = {"prefix", "mgmt", "settings", "debug"}
TOPO_KEYS = {"nodes", "links", "defaults", "kinds", "groups"}
LINK_KEYS = {"endpoints", "mtu", "type", "queues", "netem"}
IGNORED_LINK_KEYS = {"labels", "vars"}
FORWARD = "net.ipv4.ip_forward"

Fail = Callable[[str, str], NoReturn]


def is_clab(data: object) -> bool:
    """A containerlab file has its nodes under `topology:`."""
    return isinstance(data, dict) and "topology" in data


class _Recorder:
    """Stands in for a node's control endpoint: records what a tool asks for."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []

    def call(self, op, timeout=None, **args):
        if op in ("addr_add", "addr_del", "route_add", "route_del", "link_set", "sysctl_set"):
            self.calls.append((op, args))
            return args.get("value") if op == "sysctl_set" else None
        # A read (ip addr show, sysctl NAME): nothing to show before the node runs.
        return {} if op in ("sysctl_get", "route_get", "info") else []


def run_exec_line(line: str) -> tuple[list[tuple[str, dict]] | None, str]:
    """Run one exec line through emu's ip / sysctl tools against a recorder.

    Returns (calls, "") when the tool accepted it, (None, why) when it is not
    a command emu runs at load time, or raises ValueError with the tool's own
    error text when the tool refused it.
    """
    try:
        argv = shlex.split(line)
    except ValueError as e:
        raise ValueError("cannot split %r: %s" % (line, e)) from None
    if not argv:
        return [], ""
    if argv[0] in ("sudo",):
        argv = argv[1:]
    prog = argv[0].rsplit("/", 1)[-1] if argv else ""
    rec = _Recorder()
    said: list[str] = []
    if prog == "ip":
        from .client.tools import ip as tool
        if "-6" in argv[1:2]:
            return None, "not run: emu's stack is IPv4 only"
        argv = [w for i, w in enumerate(argv) if not (i == 1 and w == "-4")]  # IPv4 is all there is
    elif prog == "sysctl":
        from .client.tools import sysctl as tool
    else:
        return None, "not run (emu runs ip addr|route|link and sysctl -w from exec)"
    try:
        rc = tool.main(argv[1:], rec, out=said.append)
    except SystemExit:
        rc = 2
    except OSError as e:
        raise ValueError(e.strerror or str(e)) from None
    except (ValueError, IndexError) as e:
        raise ValueError("%s: %s" % (prog, e)) from None
    if rc not in (0, None):
        raise ValueError("%s exited %s%s" % (prog, rc, (": " + said[-1]) if said else ""))
    if not rec.calls:
        return None, "not run: it only reads the node (use emu exec once the lab is up)"
    return rec.calls, ""


def to_native(data: dict, fail: Fail) -> tuple[dict, tuple[str, ...]]:
    """containerlab data -> (emu topology data, notes to report once)."""
    notes: list[str] = []
    ignored: dict[str, list[str]] = {}         # field -> where
    for k in data:
        if k in IGNORED_TOP_KEYS:
            ignored.setdefault(k, [])
        elif k not in TOP_KEYS:
            fail("top level", "unknown key %r (containerlab file; allowed: %s)"
                 % (k, ", ".join(sorted(TOP_KEYS | IGNORED_TOP_KEYS))))
    topo = data["topology"]
    if not isinstance(topo, dict):
        fail("top level field 'topology'", "must be a mapping with 'nodes' and 'links'")
    for k in topo:
        if k not in TOPO_KEYS:
            fail("topology", "unknown key %r (allowed: %s)" % (k, ", ".join(sorted(TOPO_KEYS))))
    raw_nodes = topo.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        fail("topology field 'nodes'", "must be a non-empty mapping name -> settings")
    defaults = topo.get("defaults") or {}
    kinds = topo.get("kinds") or {}
    groups = topo.get("groups") or {}
    for where, v in (("topology field 'defaults'", defaults), ("topology field 'kinds'", kinds),
                     ("topology field 'groups'", groups)):
        if not isinstance(v, dict):
            fail(where, "must be a mapping")
    out: dict = {"name": data.get("name"), "nodes": {}, "links": []}
    if "name" not in data:
        del out["name"]
    for k in ("seed", "faults"):
        if k in data:
            out[k] = data[k]
    for name, given in raw_nodes.items():
        where = "node %r" % (name,)
        raw = {} if given is None else given
        if not isinstance(raw, dict):
            fail(where, "must be a mapping with at least 'kind'")
        # containerlab's inheritance: defaults, then the kind's, then the group's, then the node's.
        kind_name = raw.get("kind", defaults.get("kind") if isinstance(defaults, dict) else None)
        merged: dict = {}
        for layer in (defaults, kinds.get(kind_name) if isinstance(kind_name, str) else None,
                      groups.get(raw.get("group")) if isinstance(raw.get("group"), str) else None,
                      raw):
            if isinstance(layer, dict):
                merged.update(layer)
        out["nodes"][name] = _node(where, name, merged, fail, notes, ignored)
    links = topo.get("links")
    if links is not None and not isinstance(links, list):
        fail("topology field 'links'", "must be a list")
    for i, raw in enumerate(links or []):
        out["links"].append(_link(i, raw, out["nodes"], fail, ignored))
    notes.insert(0, "containerlab file: eth0 (containerlab's management interface) is not "
                    "emulated: a node has only the interfaces its links name")
    if ignored:
        notes.insert(1, "ignored (emu runs no containers and no management network): " +
                     ", ".join("%s%s" % (k, " (%s)" % ", ".join(w[:5]) + (" ..." if len(w) > 5 else "")
                                          if w else "") for k, w in sorted(ignored.items())))
    return out, tuple(notes)


def _node(where: str, name: str, raw: dict, fail: Fail, notes: list[str],
          ignored: dict[str, list[str]]) -> dict:
    for k in raw:
        if k in IGNORED_NODE_KEYS:
            ignored.setdefault(k, []).append(str(name))
        elif k not in HONOURED_NODE_KEYS:
            fail(where, "unknown key %r (containerlab node; emu honours %s)"
                 % (k, ", ".join(sorted(HONOURED_NODE_KEYS))))
    kind = raw.get("kind")
    if kind not in KIND_MAP:
        fail("%s field 'kind'" % where, "emu runs containerlab kinds linux (a host) and bridge, "
             "got %r (a network OS image cannot run in emu)" % (kind,))
    node: dict = {"kind": KIND_MAP[kind], "interfaces": {}, "routes": [], "sysctls": {}}
    if "cpu" in raw:
        cpu = raw["cpu"]
        if isinstance(cpu, float) and cpu.is_integer():
            cpu = int(cpu)
        node["cpus"] = cpu                     # containerlab's CPU limit: emu's emulated CPUs
    if "restart" in raw:
        node["restart"] = raw["restart"]
    lines = raw.get("exec") or []
    if isinstance(lines, str):
        lines = [lines]
    if not isinstance(lines, list):
        fail("%s field 'exec'" % where, "must be a list of command lines")
    for i, line in enumerate(lines):
        fwhere = "%s field 'exec[%d]'" % (where, i)
        if not isinstance(line, str):
            fail(fwhere, "must be a command line (a string), got %r" % (line,))
        try:
            calls, why = run_exec_line(line)
        except ValueError as e:
            fail(fwhere, "%r: %s" % (line, e))
        if calls is None:
            notes.append("node %r exec[%d] %r %s" % (name, i, line, why))
            continue
        for op, args in calls:
            _apply(fwhere, name, line, node, op, args, fail, notes, i)
    return node


def _iface(node: dict, dev: object, fwhere: str, fail: Fail) -> dict:
    if not isinstance(dev, str):
        fail(fwhere, "no device named")
    return node["interfaces"].setdefault(dev, {})


def _apply(fwhere, name, line, node, op, args, fail, notes, i) -> None:
    """One recorded control call -> the node's configuration."""
    if op in ("addr_add", "addr_del"):
        if node["kind"] == "bridge":
            fail(fwhere, "%r: an address on a containerlab bridge is on the host, not in the lab"
                 % line)
        addrs = _iface(node, args.get("dev"), fwhere, fail).setdefault("addresses", [])
        if op == "addr_add":
            addrs.append(args["address"])
        elif args["address"] in addrs:
            addrs.remove(args["address"])
    elif op in ("route_add", "route_del"):
        if node["kind"] == "bridge":
            fail(fwhere, "%r: a bridge has no IP layer, so no routes" % line)
        route = {"dst": args["dst"]}
        route.update({k: args[k] for k in ("via", "dev", "metric") if args.get(k) is not None})
        if op == "route_add":
            node["routes"].append(route)
        elif route in node["routes"]:
            node["routes"].remove(route)
    elif op == "link_set":
        dev = args.get("name")
        if "mtu" in args:
            _iface(node, dev, fwhere, fail)["mtu"] = args["mtu"]
        if args.get("up") is False:
            notes.append("node %r exec[%d] %r not run: a linked interface is up at start "
                         "(emu link down %s:%s cuts it)" % (name, i, line, name, dev))
        if "master" in args:
            notes.append("node %r exec[%d] %r not run: in emu a bridge is a node of kind bridge"
                         % (name, i, line))
    elif op == "sysctl_set":
        key, value = args["name"], args["value"]
        if key == FORWARD and node["kind"] in ("host", "router"):
            node["kind"] = "router" if str(value).strip() == "1" else "host"
        else:
            node["sysctls"][key] = value


def _endpoint(where: str, raw: object, fail: Fail) -> str:
    if isinstance(raw, dict):
        node, iface = raw.get("node"), raw.get("interface")
        if not isinstance(node, str) or not isinstance(iface, str):
            fail("%s field 'endpoints'" % where, "an endpoint mapping needs 'node' and "
                 "'interface', got %r" % (raw,))
        return "%s:%s" % (node, iface)
    return raw  # type: ignore[return-value]      # a string: emu's parser checks it


def _link(i: int, raw: object, nodes: dict, fail: Fail, ignored: dict) -> dict:
    where = "link %d" % i
    if not isinstance(raw, dict):
        fail(where, "must be a mapping with 'endpoints' (containerlab file)")
    for k in raw:
        if k in IGNORED_LINK_KEYS:
            ignored.setdefault(k, []).append(where)
        elif k not in LINK_KEYS:
            fail(where, "unknown key %r (allowed: %s)" % (k, ", ".join(sorted(LINK_KEYS))))
    eps = raw.get("endpoints")
    if not isinstance(eps, list):
        fail("%s field 'endpoints'" % where, "must be a list of two node:ifname, got %r" % (eps,))
    eps = [_endpoint(where, e, fail) for e in eps]
    for ep in eps:
        special = ep.split(":", 1)[0] if isinstance(ep, str) and ":" in ep else None
        if special in ("host", "mgmt-net", "macvlan") and special not in nodes:
            fail("%s field 'endpoints'" % where,
                 "%r is containerlab's %s endpoint: emu has no management network and no "
                 "host side (a link of emu's own `type: tap` reaches the real kernel)" % (ep, special))
    link: dict = {"endpoints": eps}
    ltype = raw.get("type", "veth")
    if ltype not in ("veth", "phys"):
        fail("%s field 'type'" % where, "emu runs veth (and its own phys) links, got %r" % (ltype,))
    if ltype != "veth":
        link["type"] = ltype
    if "netem" in raw:
        link["netem"] = raw["netem"]
    for key in ("mtu", "queues"):
        if key not in raw:
            continue
        for ep in eps:
            if isinstance(ep, str) and ep.count(":") == 1 and ep.split(":")[0] in nodes:
                n, ifname = ep.split(":")
                nodes[n]["interfaces"].setdefault(ifname, {})[key] = raw[key]
    return link
