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


def render(topo, path):
    """Write path by its extension: .dot, .mmd/.mermaid, or .svg/.png (needs graphviz's dot)."""
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else "dot"
    if ext in ("mmd", "mermaid"):
        text = to_mermaid(topo)
    else:
        text = to_dot(topo)
    if ext in ("svg", "png", "pdf"):
        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError("rendering %s needs graphviz's `dot` (apt-get install graphviz); "
                               "write a .dot or .mmd file instead" % ext.upper())
        subprocess.run([dot, "-T" + ext, "-o", path], input=text.encode(), check=True)
        return
    with open(path, "w") as f:
        f.write(text)
