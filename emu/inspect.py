"""`emu inspect`: a running lab as containerlab's `inspect` shows one, and as JSON.

The data is read live from the nodes (their control endpoints: link_show,
addr_show, route_show, qdisc_show, info), all nodes at once, and from the
lab's state file (PIDs, node states, link states, partition). The same
snapshot feeds `emu top` (two snapshots give rates), `emu graph --lab` and
`emu pingall` (the hosts and their addresses). Its JSON form is the schema
in emu/schema.py ("emu.inspect/1"), documented in the README.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import psutil

from .supervisor import DEAD_STATES

CALL_TIMEOUT = 2.0          # seconds a node has to answer each query
WORKERS = 16


def _node_state(info: dict) -> str:
    """running, or the supervisor's dead state, or gone (recorded running, process vanished)."""
    state = info.get("state", "running")
    if state in DEAD_STATES:
        return state
    from .cluster_relay import on_this_host
    if not on_this_host(info):
        return state                 # on another host: as the lab's supervisor records it
    pid = info.get("pid")
    try:
        p = psutil.Process(pid)
        if info.get("create_time") and abs(p.create_time() - info["create_time"]) > 0.01:
            return "gone"
        if p.status() == psutil.STATUS_ZOMBIE:
            return "gone"
        if p.status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
            return "sigstopped"
    except (psutil.Error, TypeError, ValueError):
        return "gone"
    return "running"


def _query(info: dict, stats: bool = True) -> dict | None:
    """One node's live view (None when it does not answer)."""
    from .client.rpc import ControlClient
    c = ControlClient(info["ctl"], timeout=CALL_TIMEOUT, curve=info.get("curve"))
    try:
        return {"links": c.call("link_show", stats=stats), "addrs": c.call("addr_show"),
                "routes": c.call("route_show", table="main"), "qdiscs": c.call("qdisc_show"),
                "info": c.call("info")}
    except OSError:
        return None
    finally:
        c.close()


def query_nodes(st: dict, names=None, stats: bool = True) -> dict[str, dict | None]:
    """Live views of the lab's running nodes, asked concurrently."""
    nodes = st.get("nodes") or {}
    names = [n for n in (names if names is not None else nodes) if n in nodes]
    live = {n: _node_state(nodes[n]) for n in names}
    ask = [n for n in names if live[n] == "running" and nodes[n].get("ctl")]
    out: dict[str, dict | None] = dict.fromkeys(names)
    if ask:
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(ask))) as pool:
            for n, view in zip(ask, pool.map(lambda n: _query(nodes[n], stats), ask), strict=True):
                out[n] = view
    for n in names:
        if out[n] is not None:
            out[n]["state"] = live[n]
        else:
            out[n] = {"state": live[n]}
    return out


def _qdisc_text(q: dict) -> str:
    from .netem import format_netem, format_tbf
    try:
        return (format_netem if q["kind"] == "netem" else format_tbf)(q["options"])
    except Exception:            # a display never fails on an odd option set
        return q["kind"]


def _interfaces(view: dict) -> list[dict]:
    addrs = {r["name"]: r for r in view.get("addrs") or []}
    qdiscs: dict[str, list] = {}
    for q in view.get("qdiscs") or []:
        if q.get("kind") in ("netem", "tbf"):
            qdiscs.setdefault(q["dev"], []).append(q)
    out = []
    for row in view.get("links") or []:
        if row["name"] == "lo":
            continue
        st = row.get("stats") or {}
        out.append({
            "name": row["name"], "kind": row.get("kind"), "mac": row.get("mac"),
            "mtu": row.get("mtu"), "state": row.get("operstate"),
            "carrier": bool(row.get("carrier", True)), "master": row.get("master"),
            "peer": row.get("peer"),
            "addresses": ["%s/%d" % (a["local"], a["prefixlen"])
                          for a in (addrs.get(row["name"]) or {}).get("addrs", [])],
            "impairments": [{"kind": q["kind"], "parent": "root" if q.get("root") else q.get("parent"),
                             "text": _qdisc_text(q), "drops": q["stats"]["drops"]}
                            for q in qdiscs.get(row["name"], [])],
            "stats": {k: int(st.get(k, 0)) for k in ("rx_packets", "tx_packets", "rx_bytes",
                                                     "tx_bytes", "rx_dropped", "tx_dropped",
                                                     "rx_missed_errors")}})
    return out


def _routes(view: dict) -> list[dict]:
    return [{"dst": r["dst"], "via": r.get("via"), "dev": r["dev"], "proto": r.get("proto"),
             "scope": r.get("scope"), "metric": r.get("metric", 0)}
            for r in view.get("routes") or []]


def lab_links(st: dict, ifaces: dict[tuple[str, str], dict] | None = None) -> list[dict]:
    """The lab's links with both ends, their state, and each end's impairments.

    From the orchestrator's record (`links` in lab.json), else the topology.
    """
    rows = st.get("links")
    if not rows:
        rows = []
        try:
            from .topology import load_topology
            topo = load_topology(st["topology"])
            rows = [{"a": str(l.a), "b": str(l.b) if l.b else "tap " + str(l.tap),
                     "type": l.type, "state": "up"} for l in topo.links]
        except Exception:
            pass
    out = []
    for r in rows:
        link = {"a": r["a"], "b": r["b"], "type": r.get("type", "veth"), "state": r["state"],
                "impairments": {}}
        for end in (r["a"], r["b"]):
            i = (ifaces or {}).get(tuple(end.split(":", 1))) if ":" in end else None
            if i and i["impairments"]:
                link["impairments"][end] = " / ".join("%s %s" % (q["kind"], q["text"])
                                                      for q in i["impairments"])
        out.append(link)
    return out


def inspect_lab(st: dict, views: dict | None = None) -> dict:
    """One lab in the emu.inspect/1 shape."""
    nodes = st.get("nodes") or {}
    views = views if views is not None else query_nodes(st)
    out_nodes = []
    ifaces: dict[tuple[str, str], dict] = {}
    for name, info in nodes.items():
        view = views.get(name) or {"state": _node_state(info)}
        entry = {"name": name, "kind": info.get("kind"), "state": view["state"],
                 "pid": info.get("pid") if view["state"] not in DEAD_STATES else None,
                 "cpus": info.get("cpus"), "answered": "links" in view,
                 "oops": (view.get("info") or {}).get("oops"),
                 "interfaces": _interfaces(view), "routes": _routes(view)}
        for i in entry["interfaces"]:
            ifaces[(name, i["name"])] = i
        out_nodes.append(entry)
    return {"name": st.get("name"), "run_dir": st.get("run_dir"), "topology": st.get("topology"),
            "status": st.get("status"), "alive": bool(st.get("alive", True)),
            "orchestrator_pid": st.get("orchestrator_pid"), "started_at": st.get("started_at"),
            "nodes": out_nodes, "links": lab_links(st, ifaces),
            "partition": st.get("partition")}


def inspect(labs: list[dict]) -> dict:
    """{"schema": "emu.inspect/1", "labs": [...]}: the document `emu inspect -j` prints."""
    return {"schema": "emu.inspect/1", "time": time.time(), "labs": [inspect_lab(st) for st in labs]}


def to_json(doc: dict) -> str:
    return json.dumps(doc, indent=1)


def render(doc: dict, out=print) -> None:
    """containerlab's inspect table: one row per node, its addresses."""
    from rich.console import Console
    from rich.table import Table
    console = Console(highlight=False, width=_width())
    for lab in doc["labs"]:
        t = Table(title="lab %s  (%s)%s" % (lab["name"], os.path.basename(lab["run_dir"] or ""),
                                            "" if lab["alive"] else "  stale: orchestrator gone"),
                  title_justify="left")
        for col in ("#", "Name", "Kind", "State", "PID", "CPUs", "IPv4 Address", "Interfaces"):
            t.add_column(col, no_wrap=col != "IPv4 Address")
        for k, n in enumerate(lab["nodes"], 1):
            addrs = [a for i in n["interfaces"] for a in i["addresses"]]
            t.add_row(str(k), n["name"], n["kind"] or "-", n["state"],
                      str(n["pid"]) if n["pid"] else "-", str(n["cpus"] or "-"),
                      "\n".join(addrs) or "N/A",
                      ", ".join(i["name"] for i in n["interfaces"]) or "-")
        console.print(t)


def _err(msg):
    import sys
    print("emu: %s" % msg, file=sys.stderr)
    return 1


def add_parsers(sub) -> None:
    p = sub.add_parser("inspect", help="the running lab as containerlab shows it: node, kind, "
                                       "state, PID, addresses (-j: everything as JSON)")
    p.add_argument("--lab")
    p.add_argument("--all", action="store_true", help="every lab under the run base")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("-j", "--json", dest="format", action="store_const", const="json",
                   help="the same as --format json (schema emu.inspect/1: README)")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(a) -> int:
    from .orchestrator import LabError, find_lab, list_labs
    try:
        labs = list_labs() if a.all else [find_lab(a.lab)]
    except LabError as e:
        if a.format == "json" and not a.lab and "no lab" in str(e):
            print(to_json({"schema": "emu.inspect/1", "time": time.time(), "labs": []}))
            return 0
        return _err(str(e))
    doc = inspect(labs)
    if a.format == "json":
        print(to_json(doc))
    elif not doc["labs"]:
        print("no lab is running")
    else:
        render(doc)
    return 0


def cmd_nodes(a) -> int:
    """`emu node [list]`: the lab's nodes (emu.nodes/1 with -j)."""
    from .orchestrator import LabError, find_lab
    try:
        st = find_lab(a.lab)
    except LabError as e:
        return _err(str(e))
    if a.node and a.node not in (st.get("nodes") or {}):
        return _err("lab %s has no node %r (nodes: %s)" % (st["name"], a.node, ", ".join(st["nodes"])))
    lab = inspect_lab(st, query_nodes(st, [a.node] if a.node else None))
    nodes = [n for n in lab["nodes"] if not a.node or n["name"] == a.node]
    if a.format == "json":
        print(json.dumps({"schema": "emu.nodes/1", "lab": st["name"], "nodes": nodes}, indent=1))
        return 0
    render({"labs": [dict(lab, nodes=nodes)]})
    return 0


def _width():
    """A terminal's own width; 160 columns into a pipe or file (rich would assume 80)."""
    import sys
    return None if sys.stdout.isatty() else 160
