"""The JSON every `emu ... --format json` (or `-j`) prints, as JSON Schema.

Each document names its schema and version in "schema" ("emu.inspect/1");
a change that removes or retypes a field bumps the version, new fields may
be added within one. The README documents the same; tests/test_schema.py
checks real output against these with jsonschema.
"""
from __future__ import annotations

import time

_STR_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_NUM_OR_NULL = {"type": ["number", "null"]}
NODE_STATES = ["running", "crashed", "killed", "exited", "stopped", "starting", "gone",
               "sigstopped"]


def _obj(props: dict, required=None, extra=True) -> dict:
    return {"type": "object", "properties": props,
            "required": list(props) if required is None else required,
            "additionalProperties": extra}


def _doc(name: str, props: dict) -> dict:
    return _obj({"schema": {"const": name}, **props})


LINK = _obj({
    "a": {"type": "string"},                  # NODE:IFNAME
    "b": {"type": "string"},                  # NODE:IFNAME, or "tap NAME"
    "type": {"enum": ["veth", "phys", "tap"]},
    "state": {"type": "string"},              # "up", "down (cut)", "no carrier (h2 not running)"
    "impairments": {"type": "object", "additionalProperties": {"type": "string"}},
})

INTERFACE = _obj({
    "name": {"type": "string"}, "kind": _STR_OR_NULL, "mac": _STR_OR_NULL,
    "mtu": _INT_OR_NULL, "state": _STR_OR_NULL, "carrier": {"type": "boolean"},
    "master": _STR_OR_NULL, "peer": _STR_OR_NULL,
    "addresses": {"type": "array", "items": {"type": "string", "pattern": r"^[\d.]+/\d+$"}},
    "impairments": {"type": "array", "items": _obj({
        "kind": {"enum": ["netem", "tbf"]}, "parent": _STR_OR_NULL, "text": {"type": "string"},
        "drops": {"type": "integer"}})},
    "stats": _obj({k: {"type": "integer"} for k in (
        "rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped", "tx_dropped",
        "rx_missed_errors")}),
})

ROUTE = _obj({"dst": {"type": "string"}, "via": _STR_OR_NULL, "dev": {"type": "string"},
              "proto": _STR_OR_NULL, "scope": _STR_OR_NULL, "metric": {"type": "integer"}})

NODE = _obj({
    "name": {"type": "string"}, "kind": {"enum": ["host", "router", "bridge"]},
    "state": {"enum": NODE_STATES}, "pid": _INT_OR_NULL, "cpus": _INT_OR_NULL,
    "answered": {"type": "boolean"}, "oops": _INT_OR_NULL,
    "interfaces": {"type": "array", "items": INTERFACE},
    "routes": {"type": "array", "items": ROUTE},
})

PARTITION = {"type": ["object", "null"]}

INSPECT_LAB = _obj({
    "name": {"type": "string"}, "run_dir": {"type": "string"}, "topology": _STR_OR_NULL,
    "status": _STR_OR_NULL, "alive": {"type": "boolean"}, "orchestrator_pid": _INT_OR_NULL,
    "started_at": _NUM_OR_NULL,
    "nodes": {"type": "array", "items": NODE},
    "links": {"type": "array", "items": LINK},
    "partition": PARTITION,
})

INSPECT = _doc("emu.inspect/1", {"time": {"type": "number"},
                                 "labs": {"type": "array", "items": INSPECT_LAB}})

# `emu node -j` (the nodes of one lab) and `emu link -j` (its links).
NODES = _doc("emu.nodes/1", {"lab": {"type": "string"}, "nodes": {"type": "array", "items": NODE}})
LINKS = _doc("emu.links/1", {"lab": {"type": "string"}, "links": {"type": "array", "items": LINK}})

# `emu link down X -j`, `emu node kill X -j`: what was done.
ACTION = _obj({"schema": {"const": "emu.action/1"}, "command": {"type": "string"},
               "ok": {"type": "boolean"}, "message": {"type": "string"}},
              required=["schema", "command", "ok", "message"])

STATUS_NODE = _obj({
    "kind": _STR_OR_NULL, "pid": _INT_OR_NULL, "state": {"type": "string"},
    "state_text": {"type": "string"}, "cpu": _NUM_OR_NULL, "rss": _INT_OR_NULL,
    "threads": _INT_OR_NULL, "oops": _INT_OR_NULL, "process_status": _STR_OR_NULL,
    "machine": _STR_OR_NULL,
    "last_log": _STR_OR_NULL})

# A lab's clock: real, or virtual with its time (s), ratio to wall time, rounds and jumps.
CLOCK = _obj({"mode": {"enum": ["real", "virtual"]}, "now": _NUM_OR_NULL, "ratio": _NUM_OR_NULL,
              "rounds": _INT_OR_NULL, "jumps": _INT_OR_NULL, "seed": _INT_OR_NULL},
             required=["mode"])

STATUS = _doc("emu.status/1", {"labs": {"type": "array", "items": _obj({
    "name": {"type": "string"}, "run_dir": {"type": "string"}, "topology": _STR_OR_NULL,
    "orchestrator_pid": _INT_OR_NULL, "status": _STR_OR_NULL, "alive": {"type": "boolean"},
    "partition": PARTITION,
    "links": {"type": "array", "items": _obj({"a": {"type": "string"}, "b": {"type": "string"},
                                              "type": {"type": "string"},
                                              "state": {"type": "string"}})},
    "fault_log": {"type": "array", "items": {"type": "string"}},
    "summary": _obj({"nodes": {"type": "integer"},
                     "states": {"type": "object", "additionalProperties": {"type": "integer"}},
                     "rss": {"type": "integer"}, "cpu": {"type": "number"}}),
    "shown": {"type": "integer"},
    "clock": CLOCK, "seed": _INT_OR_NULL,
    "nodes": {"type": "object", "additionalProperties": STATUS_NODE}})}})

NETEM_SHOW = _doc("emu.netem/1", {"lab": {"type": "string"}, "qdiscs": {"type": "array", "items": _obj({
    "node": {"type": "string"}, "dev": {"type": "string"}, "kind": {"enum": ["netem", "tbf"]},
    "parent": {"type": "string"}, "text": {"type": "string"}, "options": {"type": "object"},
    "stats": _obj({k: {"type": "integer"} for k in (
        "bytes", "packets", "drops", "overlimits", "requeues", "backlog", "qlen")})})}})

TRACE = _doc("emu.trace/1", {"lab": {"type": "string"}, "packets": {"type": "array", "items": _obj({
    "trace_id": {"type": "integer"}, "nodes": {"type": "array", "items": {"type": "string"}},
    "steps": {"type": "array", "items": _obj({
        "node": {"type": "string"}, "cpu": {"type": ["integer", "string", "null"]},
        "t_ms": {"type": "number"}, "function": {"type": "string"},
        "info": _STR_OR_NULL})}})}})

GRAPH = _doc("emu.graph/1", {
    "name": {"type": "string"}, "source": {"enum": ["file", "lab"]},
    "nodes": {"type": "array", "items": _obj({
        "name": {"type": "string"}, "kind": {"type": "string"}, "state": {"type": "string"},
        "addresses": {"type": "array", "items": {"type": "string"}}})},
    "links": {"type": "array", "items": _obj({
        "a": {"type": "string"}, "b": {"type": "string"}, "type": {"type": "string"},
        "state": {"type": "string"},
        "impairments": {"type": "object", "additionalProperties": {"type": "string"}},
        "tx_bytes": {"type": "object", "additionalProperties": {"type": "integer"}}})},
    "partition": PARTITION})

PINGALL = _doc("emu.pingall/1", {
    "lab": {"type": "string"}, "hosts": {"type": "object", "additionalProperties": {"type": "string"}},
    "results": {"type": "array", "items": _obj({"src": {"type": "string"}, "dst": {"type": "string"},
                                                "ok": {"type": "boolean"},
                                                "rtt_ms": _NUM_OR_NULL})},
    "sent": {"type": "integer"}, "received": {"type": "integer"},
    "dropped_percent": {"type": "number"},
    "not_running": {"type": "object", "additionalProperties": {"type": "string"}}})

_RATE = {"type": ["object", "null"], "properties": {"bytes": {"type": "integer"},
                                                    "bits_per_second": {"type": "number"}}}
IPERF = _doc("emu.iperf/1", {
    "lab": {"type": "string"}, "client": {"type": "string"}, "server": {"type": "string"},
    "server_address": {"type": "string"}, "seconds": {"type": "number"}, "ok": {"type": "boolean"},
    "sender": _RATE, "receiver": _RATE, "error": _STR_OR_NULL})

TOP = _doc("emu.top/1", {
    "lab": {"type": "string"}, "interval": {"type": "number"},
    "nodes": {"type": "array", "items": _obj({
        "name": {"type": "string"}, "kind": _STR_OR_NULL, "state": {"type": "string"},
        "pid": _INT_OR_NULL, "cpu": _NUM_OR_NULL, "rss": _INT_OR_NULL,
        "rx_pps": _NUM_OR_NULL, "tx_pps": _NUM_OR_NULL, "drops": _INT_OR_NULL,
        "oops": _INT_OR_NULL})},
    "links": {"type": "array", "items": _obj({
        "a": {"type": "string"}, "b": {"type": "string"}, "state": {"type": "string"},
        "a_to_b_bps": _NUM_OR_NULL, "b_to_a_bps": _NUM_OR_NULL,
        "impairments": {"type": "object", "additionalProperties": {"type": "string"}}})},
    "clock": CLOCK})

SCHEMAS = {s["properties"]["schema"]["const"]: s for s in (
    INSPECT, NODES, LINKS, ACTION, STATUS, NETEM_SHOW, TRACE, GRAPH, PINGALL, IPERF, TOP)}


def links_doc(st: dict, links: list[dict]) -> dict:
    """`emu link -j`: the orchestrator's links with each end's impairments (live)."""
    from .inspect import lab_links, query_nodes, _interfaces
    views = query_nodes(st, stats=False)
    ifaces = {(n, i["name"]): i for n, v in views.items() for i in _interfaces(v)}
    return {"schema": "emu.links/1", "lab": st["name"],
            "links": lab_links(dict(st, links=links), ifaces)}


def trace_doc(st: dict, rows: list) -> dict:
    """`emu trace -j`: each packet's steps in time order."""
    by_id: dict = {}
    for r in rows:
        by_id.setdefault(r[0], []).append(r)
    packets = []
    for rs in sorted(by_id.values(), key=lambda rs: min(r[3] for r in rs)):
        rs.sort(key=lambda r: r[3])
        t0 = rs[0][3]
        packets.append({"trace_id": int(rs[0][0]), "nodes": list(dict.fromkeys(r[1] for r in rs)),
                        "steps": [{"node": r[1], "cpu": r[2], "t_ms": round((r[3] - t0) * 1e3, 3),
                                   "function": r[4], "info": r[5] or None} for r in rs]})
    return {"schema": "emu.trace/1", "lab": st["name"], "time": time.time(), "packets": packets}
