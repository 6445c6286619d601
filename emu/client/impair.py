"""lab.netem(...): impair what one end of a link sends, and put it back.

    with lab.netem("h1:eth0", delay="20ms", loss="5%"):
        ...                      # h1's eth0 sends through netem
    # back to what it was (the topology's netem, or no qdisc)

The keys are the topology file's `netem:` keys (emu/netem.py SPEC_KEYS);
bad values raise ValueError naming the key.
"""
from ..netem import NetemError, parse_netem, spec_to_args

_DEFAULT_KINDS = ("noqueue", "pfifo_fast", "mq", "noop")


def _split(end):
    if not isinstance(end, str) or end.count(":") != 1:
        raise ValueError("expected node:ifname, got %r" % (end,))
    return end.split(":")


class Impairment:
    """A netem applied to node:ifname; a context manager that restores the old root qdisc."""

    def __init__(self, lab, end, spec):
        self.end = end
        self.spec = dict(spec)
        node, ifname = _split(end)
        self.node = lab.node(node)
        self.ifname = ifname
        try:
            self.options = parse_netem(spec_to_args(self.spec))
        except NetemError as e:
            raise ValueError("netem %s: %s" % (end, e)) from None
        rows = self.node.call("qdisc_show", dev=ifname)
        self.saved = next((r for r in rows if r["root"]), None)
        self.node.call("qdisc_add", dev=ifname, kind="netem", replace=True, **self.options)
        self.restored = False

    def show(self):
        """The root qdisc row now (kind, options, stats)."""
        return next(r for r in self.node.call("qdisc_show", dev=self.ifname) if r["root"])

    def restore(self):
        """Put back the root qdisc that was there before."""
        if self.restored:
            return
        self.restored = True
        old = self.saved
        if old is None or old["kind"] in _DEFAULT_KINDS or old["handle"] == "0:":
            try:
                self.node.call("qdisc_del", dev=self.ifname)
            except OSError:
                pass
            return
        self.node.call("qdisc_del", dev=self.ifname)
        self.node.call("qdisc_add", dev=self.ifname, kind=old["kind"], **old["options"])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.restore()

    def __repr__(self):
        return "<Impairment %s %s>" % (self.end, self.spec)


def netem_show(lab):
    """Every device's root qdisc row whose kind is netem or tbf, keyed by node:ifname (a list: a tbf and its netem child)."""
    out = {}
    for node in lab.nodes():
        for r in node.call("qdisc_show"):
            if r["kind"] in ("netem", "tbf"):
                out.setdefault("%s:%s" % (node.name, r["dev"]), []).append(r)
    return out
