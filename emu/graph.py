"""`emu graph FILE`: a picture of a topology (dot, mermaid, or SVG/PNG through graphviz)."""
import shutil
import subprocess

SHAPES = {"host": "box", "router": "diamond", "bridge": "ellipse"}


def _label(node):
    lines = ["%s (%s)" % (node.name, node.kind)]
    for i in node.interfaces:
        addrs = ", ".join(str(a) for a in i.addresses)
        lines.append("%s%s" % (i.name, " " + addrs if addrs else ""))
    return lines


def _netem_label(link):
    """"netem delay 20ms loss 1%" for an impaired link (per end: "h1:eth0 delay 5ms; ...")."""
    from .netem import describe
    if not link.netem:
        return ""
    specs = [(str(e), describe(dict(spec))) for e, spec in link.netem]
    if len(specs) == len(link.ends()) and len({d for _, d in specs}) == 1:
        return "netem " + specs[0][1]
    return "netem " + "; ".join("%s %s" % (e, d) for e, d in specs)


def _edge_label(link, base):
    extra = _netem_label(link)
    return "%s\\n%s" % (base, extra) if extra else base


def to_dot(topo):
    out = ["graph %s {" % _id(topo.name), '  graph [rankdir=LR, fontname="Helvetica"];',
           '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];']
    for n in topo.nodes:
        label = "\\n".join(_label(n)).replace('"', '\\"')
        out.append('  %s [shape=%s, label="%s"];' % (_id(n.name), SHAPES.get(n.kind, "box"), label))
    for link in topo.links:
        if link.b is None:      # a TAP: the real Linux kernel on the other side
            out.append('  %s [shape=note, label="Linux %s%s"];' % (
                _id("tap_" + link.tap), link.tap, (" (netns %s)" % link.netns) if link.netns else ""))
            out.append('  %s -- %s [taillabel="%s", label="tap"];' % (
                _id(link.a.node), _id("tap_" + link.tap), link.a.ifname))
            continue
        impaired = ', color="red", style=dashed' if link.netem else ""
        out.append('  %s -- %s [taillabel="%s", headlabel="%s", label="%s"%s];' % (
            _id(link.a.node), _id(link.b.node), link.a.ifname, link.b.ifname,
            _edge_label(link, link.type).replace('"', '\\"'), impaired))
    out.append("}")
    return "\n".join(out) + "\n"


def to_mermaid(topo):
    out = ["graph LR"]
    for n in topo.nodes:
        label = "<br/>".join(_label(n))
        shape = {"router": ("{", "}"), "bridge": ("((", "))")}.get(n.kind, ("[", "]"))
        out.append('  %s%s"%s"%s' % (_id(n.name), shape[0], label, shape[1]))
    for link in topo.links:
        if link.b is None:
            out.append('  %s[/"Linux %s"/]' % (_id("tap_" + link.tap), link.tap))
            out.append('  %s ---|"%s - tap"| %s' % (_id(link.a.node), link.a.ifname,
                                                     _id("tap_" + link.tap)))
            continue
        extra = _netem_label(link)
        out.append('  %s ---|"%s - %s%s"| %s' % (_id(link.a.node), link.a.ifname, link.b.ifname,
                                                  ("<br/>" + extra) if extra else "",
                                                  _id(link.b.node)))
    return "\n".join(out) + "\n"


def _id(name):
    return "n_" + "".join(c if c.isalnum() else "_" for c in name)


def _run_dot(dot, ext, path, text):
    r = subprocess.run([dot, "-T" + ext, "-o", path], input=text.encode(), capture_output=True,
                       check=False)
    if r.returncode:                     # e.g. a directory that does not exist: one line
        msg = r.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError("dot: %s" % (msg[0] if msg else "exit status %d" % r.returncode))


OUTPUT_EXTS = ("dot", "gv", "mmd", "mermaid", "json", "svg", "png", "pdf")


def output_ext(path):
    """The format a -o path asks for by its extension (none: DOT); RuntimeError
    for one that is none of them (DOT text in a .jpg helps nobody)."""
    name = path.rsplit("/", 1)[-1]
    if "." not in name:
        return "dot"
    ext = name.rsplit(".", 1)[-1].lower()
    if ext not in OUTPUT_EXTS:
        raise RuntimeError("unknown output format .%s (use %s)"
                           % (ext, ", ".join("." + e for e in OUTPUT_EXTS)))
    return ext


def render(topo, path):
    """Write path by its extension: .dot, .mmd/.mermaid, or .svg/.png (needs graphviz's dot)."""
    ext = output_ext(path)
    if ext in ("mmd", "mermaid"):
        text = to_mermaid(topo)
    elif ext == "json":
        text = to_json(topo)
    else:
        text = to_dot(topo)
    if ext in ("svg", "png", "pdf"):
        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError("rendering %s needs graphviz's `dot` (apt-get install graphviz); "
                               "write a .dot or .mmd file instead" % ext.upper())
        _run_dot(dot, ext, path, text)
        return
    with open(path, "w") as f:
        f.write(text)


# ------------------------------------------------------------- JSON and the running lab

def to_json(topo):
    """emu.graph/1 from a topology file: what would run (every state "configured")."""
    import json
    doc = {"schema": "emu.graph/1", "name": topo.name, "source": "file",
           "nodes": [{"name": n.name, "kind": n.kind, "state": "configured",
                      "addresses": [str(a) for i in n.interfaces for a in i.addresses]}
                     for n in topo.nodes],
           "links": [{"a": str(l.a), "b": str(l.b) if l.b else "tap " + str(l.tap),
                      "type": l.type, "state": "configured",
                      "impairments": {str(e): "netem " + _describe(spec) for e, spec in l.netem},
                      "tx_bytes": {}} for l in topo.links],
           "partition": None}
    return json.dumps(doc, indent=1) + "\n"


def _describe(spec):
    from .netem import describe
    return describe(dict(spec))


def lab_graph(st):
    """emu.graph/1 from a running lab: node states, link states, impairments, partition,
    and the bytes each end has sent since its node started."""
    from .inspect import inspect_lab
    lab = inspect_lab(st)
    tx = {"%s:%s" % (n["name"], i["name"]): i["stats"]["tx_bytes"]
          for n in lab["nodes"] for i in n["interfaces"]}
    return {"schema": "emu.graph/1", "name": lab["name"], "source": "lab",
            "nodes": [{"name": n["name"], "kind": n["kind"], "state": n["state"],
                       "addresses": [a for i in n["interfaces"] for a in i["addresses"]]}
                      for n in lab["nodes"]],
            "links": [dict(l, tx_bytes={e: tx[e] for e in (l["a"], l["b"]) if e in tx})
                      for l in lab["links"]],
            "partition": lab["partition"]}


def _bytes(n):
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return "%d %s" % (n, unit) if unit == "B" else "%.1f %s" % (n, unit)
        n /= 1000
    return "%.1f GB" % n


def graph_to_dot(g):
    """dot for an emu.graph/1 document: down links dashed grey, impaired links red and
    labelled, nodes not running grey, each partition group a cluster."""
    out = ["graph %s {" % _id(g["name"]), '  graph [rankdir=LR, fontname="Helvetica"];',
           '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];']
    groups = (g.get("partition") or {}).get("groups") or []
    for k, grp in enumerate(groups):
        out.append('  subgraph cluster_p%d { label="partition group %d"; style=dashed; color=red;'
                   % (k + 1, k + 1))
        out.extend("    %s;" % _id(n) for n in grp)
        out.append("  }")
    for n in g["nodes"]:
        label = "\\n".join(["%s (%s)" % (n["name"], n["kind"])] + n["addresses"] +
                           ([] if n["state"] in ("running", "configured") else [n["state"]]))
        style = "" if n["state"] in ("running", "configured") else \
            ', style=filled, fillcolor="grey85", fontcolor="grey40"'
        out.append('  %s [shape=%s, label="%s"%s];' % (_id(n["name"]), SHAPES.get(n["kind"], "box"),
                                                      label.replace('"', '\\"'), style))
    for l in g["links"]:
        if l["type"] == "tap":
            tap = l["b"].split(" ", 1)[-1]
            out.append('  %s [shape=note, label="Linux %s"];' % (_id("tap_" + tap), tap))
            out.append('  %s -- %s [label="tap"];' % (_id(l["a"].split(":")[0]), _id("tap_" + tap)))
            continue
        (an, ai), (bn, bi) = l["a"].split(":", 1), l["b"].split(":", 1)
        label = [l["type"]]
        if l["state"] not in ("up", "configured"):
            label.append(l["state"])
        for e, text in l["impairments"].items():
            label.append("%s %s" % (e, text))
        if l.get("tx_bytes"):
            label.append(" / ".join("%s sent %s" % (e, _bytes(v)) for e, v in l["tx_bytes"].items()))
        attrs = []
        if l["state"] not in ("up", "configured"):
            attrs.append('style=dashed, color="grey50"')
        elif l["impairments"]:
            attrs.append('color="red"')
        out.append('  %s -- %s [taillabel="%s", headlabel="%s", label="%s"%s];' % (
            _id(an), _id(bn), ai, bi, "\\n".join(label).replace('"', '\\"'),
            (", " + ", ".join(attrs)) if attrs else ""))
    out.append("}")
    return "\n".join(out) + "\n"


def graph_to_mermaid(g):
    out = ["graph LR"]
    for n in g["nodes"]:
        label = "<br/>".join(["%s (%s)" % (n["name"], n["kind"])] + n["addresses"] +
                             ([] if n["state"] in ("running", "configured") else [n["state"]]))
        shape = {"router": ("{", "}"), "bridge": ("((", "))")}.get(n["kind"], ("[", "]"))
        out.append('  %s%s"%s"%s' % (_id(n["name"]), shape[0], label, shape[1]))
    for l in g["links"]:
        if l["type"] == "tap":
            continue
        (an, ai), (bn, bi) = l["a"].split(":", 1), l["b"].split(":", 1)
        label = "%s - %s" % (ai, bi)
        if l["state"] not in ("up", "configured"):
            label += "<br/>" + l["state"]
        label += "".join("<br/>%s %s" % kv for kv in l["impairments"].items())
        arrow = "-.-" if l["state"] not in ("up", "configured") else "---"
        out.append('  %s %s|"%s"| %s' % (_id(an), arrow, label, _id(bn)))
    return "\n".join(out) + "\n"


def cmd_graph_lab(a):
    """`emu graph --lab NAME`: the running lab's picture."""
    import json
    import sys

    from .orchestrator import LabError, find_lab
    try:
        st = find_lab(a.lab)
    except LabError as e:
        print("emu: %s" % e, file=sys.stderr)
        return 1
    try:
        ext = output_ext(a.output) if a.output else None
    except RuntimeError as e:
        print("emu: graph: %s: %s" % (a.output, e), file=sys.stderr)
        return 1
    g = lab_graph(st)
    fmt = {"mmd": "mermaid", "mermaid": "mermaid", "json": "json"}.get(ext or "", a.format)
    text = json.dumps(g, indent=1) + "\n" if fmt == "json" else \
        graph_to_mermaid(g) if fmt == "mermaid" else graph_to_dot(g)
    if not a.output:
        print(text, end="")
        return 0
    try:
        if ext in ("svg", "png", "pdf"):
            dot = shutil.which("dot")
            if dot is None:
                print("emu: rendering %s needs graphviz's `dot` (apt-get install graphviz); "
                      "write a .dot or .mmd file instead" % ext.upper(), file=sys.stderr)
                return 1
            _run_dot(dot, ext, a.output, text)
        else:
            with open(a.output, "w") as f:
                f.write(text)
    except (OSError, RuntimeError) as e:
        print("emu: graph: %s: %s" % (a.output, getattr(e, "strerror", None) or e), file=sys.stderr)
        return 1
    print("wrote %s" % a.output)
    return 0
