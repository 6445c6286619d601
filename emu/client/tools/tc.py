"""tc qdisc and ethtool, printed as iproute2's tc and ethtool print them."""
import argparse

from ...netem import QDISC_FORMATTERS, QDISC_PARSERS, NetemError


def _opts(o):
    parts = []
    for k, v in o.items():
        if k == "priomap":
            parts.append("bands %d priomap %s" % (o.get("bands", 3), " ".join(str(x) for x in v)))
        elif k == "bands" or isinstance(v, (list, dict)):
            continue
        else:
            parts.append("%s %s" % (k, v))
    return " ".join(parts)


def main(argv, ctl, out=print):
    """tc [-s] qdisc {show [dev DEV] | add|change|replace dev DEV [parent P|root] [handle H] KIND [opts] | del dev DEV [root|parent P]}"""
    stats = False
    while argv and argv[0].startswith("-"):
        if argv[0] in ("-s", "-stats", "-statistics"):
            stats = True
        argv = argv[1:]
    if not argv or argv[0] not in ("qdisc", "q"):
        out("Usage: tc [-s] qdisc { show | add | replace | del } [ dev DEV ] ...")
        return 0 if not argv else 255
    argv = argv[1:]
    action = argv[0] if argv else "show"
    rest = argv[1:] if argv else []
    kw = {}
    i = 0
    kind = None
    opts = {}
    while i < len(rest):
        w = rest[i]
        if w == "dev":
            kw["dev"] = rest[i + 1]
            i += 2
        elif w == "root":
            kw["parent"] = "root"
            i += 1
        elif w == "parent":
            kw["parent"] = rest[i + 1]
            i += 2
        elif w == "handle":
            kw["handle"] = rest[i + 1]
            i += 2
        elif kind is None and action in ("add", "replace", "change"):
            kind = w
            i += 1
            if kind in QDISC_PARSERS:
                # As tc: everything after KIND is the qdisc's own options.
                try:
                    opts = QDISC_PARSERS[kind](rest[i:])
                except NetemError as e:
                    out(str(e))
                    return 1
                break
        else:
            # KIND's options: "limit 100", "bands 3", ...
            if i + 1 < len(rest):
                v = rest[i + 1]
                opts[w] = int(v) if v.isdigit() else v
                i += 2
            else:
                i += 1
    try:
        if action in ("show", "list", "ls"):
            for q in ctl.call("qdisc_show", **({"dev": kw["dev"]} if "dev" in kw else {})):
                parent = "root" if q["root"] else "parent %s" % q["parent"]
                fmt = QDISC_FORMATTERS.get(q["kind"])
                text = fmt(q["options"]) if fmt else _opts(q.get("options", {}))
                line = "qdisc %s %s dev %s %s %s" % (q["kind"], q["handle"], q["dev"], parent, text)
                out(line.rstrip())
                if stats:
                    s = q["stats"]
                    out(" Sent %d bytes %d pkt (dropped %d, overlimits %d requeues %d)" % (
                        s["bytes"], s["packets"], s["drops"], s["overlimits"], s["requeues"]))
                    out(" backlog %db %dp requeues %d" % (s["backlog"], s["qlen"], s["requeues"]))
            return 0
        if action in ("add", "replace", "change"):
            if "dev" not in kw or kind is None:
                out("tc: usage: tc qdisc add dev DEV [root|parent P] [handle H] KIND [options]")
                return 255
            if action == "change":
                kw["change"] = True
            ctl.call("qdisc_add", kind=kind, replace=action != "add", **kw, **opts)
            return 0
        if action in ("del", "delete"):
            if "dev" not in kw:
                out("tc: usage: tc qdisc del dev DEV [root|parent P]")
                return 255
            ctl.call("qdisc_del", **kw)
            return 0
    except OSError as e:
        out("Error: %s" % (e.strerror or e))
        return 2
    out('Command "%s" is unknown, try "tc qdisc help".' % action)
    return 255


def ethtool_main(argv, ctl, out=print):
    """ethtool DEV | -S | -i | -l | -k | -g DEV | -K DEV FEATURE on|off ... | -G DEV rx N [tx N]"""
    p = argparse.ArgumentParser(prog="ethtool", add_help=True)
    g = p.add_mutually_exclusive_group()
    for flag, dest in (("-S", "stats"), ("-i", "driver"), ("-l", "channels"), ("-k", "features"),
                       ("-K", "set_features"), ("-g", "rings"), ("-G", "set_rings")):
        g.add_argument(flag, dest=dest, action="store_true")
    p.add_argument("dev")
    p.add_argument("rest", nargs="*")
    a = p.parse_args(argv)
    try:
        if a.stats:
            s = ctl.call("ethtool_stats", dev=a.dev)
            out("NIC statistics:")
            for k, v in s.items():
                if isinstance(v, int):
                    out("     %s: %d" % (k, v))
            return 0
        if a.set_rings:
            pairs = dict(zip(a.rest[0::2], a.rest[1::2], strict=False))
            bad = [k for k in pairs if k not in ("rx", "tx")] or \
                [v for v in pairs.values() if not v.isdigit()]
            if bad or len(a.rest) % 2:
                out("ethtool: bad ring parameter %s" % (bad[0] if bad else a.rest[-1]))
                return 1
            want = {k: int(v) for k, v in pairs.items()}
            r = ctl.call("ethtool_show", dev=a.dev).get("rings")
            if r is None:
                out("netlink error: Operation not supported")
                return 1
            # ethnl_set_rings' own check and extack, then ethtool's errno line.
            if any(v > (r.get(k + "_max") or 0) for k, v in want.items()):
                out("netlink error: requested ring size exceeds maximum")
                out("netlink error: Invalid argument")
                return 1
            try:
                ctl.call("ring_set", dev=a.dev, **want)
            except OSError:
                out("netlink error: Invalid argument")      # the driver refused it
                return 1
            return 0
        info = ctl.call("ethtool_show", dev=a.dev)
        if a.rings:
            r = info.get("rings")
            if r is None:
                out("netlink error: Operation not supported")
                return 1
            out("Ring parameters for %s:" % a.dev)
            for title, sfx in (("Pre-set maximums:", "_max"), ("Current hardware settings:", "")):
                out(title)
                for k, label in (("rx", "RX"), ("", "RX Mini"), ("", "RX Jumbo"), ("tx", "TX")):
                    v = r.get(k + sfx) if k else None
                    out("%s:%s%s" % (label, "\t" * (3 if len(label) < 7 else 2),
                                      v if v else "n/a"))
            return 0
        if a.driver:
            out("driver: %s" % info["driver"])
            out("version: 1.0")
            out("firmware-version: ")
            out("bus-info: ")
            out("supports-statistics: yes")
            return 0
        if a.channels:
            ch = info.get("channels", {})
            out("Channel parameters for %s:" % a.dev)
            out("Current hardware settings:")
            for k in ("rx", "tx", "other", "combined"):
                out("%s:\t\t%s" % (k.upper() if k != "combined" else "Combined", ch.get(k, "n/a")))
            return 0
        if a.features:
            out("Features for %s:" % a.dev)
            for k, v in info["features"].items():
                fixed = " [fixed]" if k in info.get("fixed", []) else ""
                out("%s: %s%s" % (k, "on" if v else "off", fixed))
            return 0
        if a.set_features:
            pairs = dict(zip(a.rest[0::2], a.rest[1::2], strict=False))
            ctl.call("features_set", dev=a.dev, **{k: v == "on" for k, v in pairs.items()})
            return 0
        out("Settings for %s:" % a.dev)
        out("\tLink detected: yes")
        return 0
    except OSError as e:
        out("%s" % (e.strerror or e))
        return 1
