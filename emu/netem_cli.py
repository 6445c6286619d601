"""`emu netem`: impair a running lab's links from the shell (in the spirit of
containerlab's `tools netem`).

    emu netem set h1:eth0 --delay 20ms --jitter 5ms --loss 5%
    emu netem show [NODE[:IFNAME]]
    emu netem reset h1:eth0

`set` puts a netem root qdisc on the device (what that end sends), as
`tc qdisc replace dev eth0 root netem ...` on the node would.
"""
import errno
import sys

from .netem import SPEC_KEYS, NetemError, format_netem, format_tbf, parse_netem, spec_to_args


def _err(msg):
    print("emu: netem: %s" % msg, file=sys.stderr)
    return 1


def add_netem_parser(sub):
    """The `emu netem` subcommand and its set/show/reset actions."""
    p = sub.add_parser("netem", help="impair a link end: emu netem set h1:eth0 --delay 20ms --loss 5%%")
    acts = p.add_subparsers(dest="action", required=True)
    s = acts.add_parser("set", help="netem on what NODE:IFNAME sends (replaces its root qdisc)")
    s.add_argument("--lab")
    s.add_argument("end", metavar="NODE:IFNAME")
    for k in SPEC_KEYS:
        if k == "ecn":
            s.add_argument("--ecn", action="store_true", help="mark ECN-capable packets instead of dropping")
        else:
            s.add_argument("--" + k, metavar=k.upper())
    sh = acts.add_parser("show", help="the netem/tbf qdiscs of the lab, with their counters")
    sh.add_argument("--lab")
    sh.add_argument("end", nargs="?", metavar="NODE[:IFNAME]")
    sh.add_argument("--format", choices=("text", "json"), default="text")
    sh.add_argument("-j", "--json", dest="format", action="store_const", const="json",
                    help="the same as --format json (schema emu.netem/1)")
    r = acts.add_parser("reset", help="remove the impairment (back to the default qdisc)")
    r.add_argument("--lab")
    r.add_argument("end", metavar="NODE:IFNAME")
    p.set_defaults(func=cmd_netem)


def _ctl(st, node):
    from .client.rpc import ControlClient
    return ControlClient(st["nodes"][node]["ctl"], curve=st["nodes"][node].get("curve"))


def _end(st, end):
    if end.count(":") != 1:
        return None, None, "expected NODE:IFNAME, got %r" % end
    node, ifname = end.split(":")
    if node not in st["nodes"]:
        return None, None, "lab %s has no node %r" % (st["name"], node)
    return node, ifname, None


def cmd_netem(a):
    from .orchestrator import LabError, find_lab
    try:
        st = find_lab(a.lab)
    except LabError as e:
        return _err(str(e))
    try:
        if a.action == "show":
            return _show(st, a.end, a.format == "json")
        node, ifname, err = _end(st, a.end)
        if err:
            return _err(err)
        from .supervisor import dead_node_message
        if dead_node_message(st, node):
            return _err(dead_node_message(st, node))
        ctl = _ctl(st, node)
        if a.action == "reset":
            try:
                ctl.call("qdisc_del", dev=ifname)
            except OSError as e:
                # ENOENT is tc's "Cannot delete qdisc with handle of zero.": the link has
                # only its default qdisc, which is what reset asks for (idempotent, like
                # `emu down` twice). `tc qdisc del` itself keeps tc's error.
                if e.errno != errno.ENOENT:
                    raise
            return 0
        spec = {k: getattr(a, k) for k in SPEC_KEYS if getattr(a, k) not in (None, False)}
        if not spec:
            return _err("set: give at least one of %s" % ", ".join("--" + k for k in SPEC_KEYS))
        try:
            opts = parse_netem(spec_to_args(spec))
        except NetemError as e:
            return _err("--%s" % e if ":" in str(e) and not str(e).startswith("netem") else str(e))
        ctl.call("qdisc_add", dev=ifname, kind="netem", replace=True, **opts)
        return 0
    except OSError as e:
        return _err("%s: %s" % (a.end, e.strerror or e))


def _show(st, which, as_json=False):
    from .supervisor import dead_node_message
    node_f, if_f = (which.split(":", 1) + [None])[:2] if which else (None, None)
    if node_f is not None and node_f not in st["nodes"]:
        return _err("lab %s has no node %r" % (st["name"], node_f))
    if node_f is not None and dead_node_message(st, node_f):
        return _err(dead_node_message(st, node_f))
    if if_f and not any(r["name"] == if_f for r in _ctl(st, node_f).call("link_show", stats=False)):
        return _err("%s: Cannot find device \"%s\"" % (which, if_f))     # as `netem set` says
    found = 0
    qdiscs = []
    for node in st["nodes"]:
        if node_f is not None and node != node_f or dead_node_message(st, node):
            continue
        rows = _ctl(st, node).call("qdisc_show")
        for r in rows:
            if r["kind"] not in ("netem", "tbf") or (if_f and r["dev"] != if_f):
                continue
            found += 1
            text = (format_netem if r["kind"] == "netem" else format_tbf)(r["options"])
            s = r["stats"]
            where = "root" if r["root"] else "parent " + r["parent"]
            if as_json:
                qdiscs.append({"node": node, "dev": r["dev"], "kind": r["kind"], "parent": where,
                               "text": text, "options": r["options"],
                               "stats": {k: s[k] for k in ("bytes", "packets", "drops", "overlimits",
                                                           "requeues", "backlog", "qlen")}})
                continue
            print("%s:%s %s %s %s" % (node, r["dev"], r["kind"], where, text))
            print("  sent %d bytes %d pkt (dropped %d, overlimits %d requeues %d) backlog %db %dp"
                  % (s["bytes"], s["packets"], s["drops"], s["overlimits"], s["requeues"],
                     s["backlog"], s["qlen"]))
    if as_json:
        import json
        print(json.dumps({"schema": "emu.netem/1", "lab": st["name"], "qdiscs": qdiscs}, indent=1,
                         default=str))
        return 0
    if not found:
        print("no impairment on %s in lab %s" % (which, st["name"]) if which
              else "no impaired link in lab %s" % st["name"])
    return 0
