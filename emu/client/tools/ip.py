"""`ip` and `bridge` (show forms), printed as iproute2 prints them.

Each reads the node through the control endpoint, the same API the
orchestrator configures it with.
"""
import argparse

# Kernel-internal flags iproute2 does not print (it shows gflags, not these).
HIDDEN = {"PROMISC", "SLAVE", "MASTER"}


def _flags(row):
    return "<%s>" % ",".join(f for f in row["flags"] if f not in HIDDEN)


def _state(row):
    return "UNKNOWN" if row.get("kind") == "loopback" or row["name"] == "lo" else row["operstate"]


def _link_lines(row, stats):
    name = row["name"]
    master = " master %s" % row["master"] if row.get("master") else ""
    out = ["%d: %s: %s mtu %d qdisc %s%s state %s mode DEFAULT group default qlen %d" % (
        row["ifindex"], name, _flags(row), row["mtu"], row["qdisc"], master, _state(row),
        row["txqlen"])]
    lt = row.get("link_type", "ether")
    brd = "00:00:00:00:00:00" if lt == "loopback" else row["brd"]
    out.append("    link/%s %s brd %s" % (lt, row["mac"], brd))
    if stats and row.get("stats"):
        s = row["stats"]
        out.append("    RX:  bytes packets errors dropped  missed   mcast")
        out.append("    %10d %7d %6d %7d %7d %7d" % (s["rx_bytes"], s["rx_packets"], s["rx_errors"],
                                                     s["rx_dropped"], s["rx_missed_errors"], s["multicast"]))
        out.append("    TX:  bytes packets errors dropped carrier collsns")
        out.append("    %10d %7d %6d %7d %7d %7d" % (s["tx_bytes"], s["tx_packets"], s["tx_errors"],
                                                     s["tx_dropped"], s["tx_carrier_errors"], s["collisions"]))
    return out


def main(argv, ctl, out=print):
    p = argparse.ArgumentParser(prog="ip")
    p.add_argument("-s", "--stats", action="count", default=0)
    p.add_argument("-br", "--brief", action="store_true")
    p.add_argument("object", nargs="?", default="help")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    obj = a.object
    rest = [r for r in a.rest if r not in ("show", "list", "ls")]
    dev = rest[rest.index("dev") + 1] if "dev" in rest and rest.index("dev") + 1 < len(rest) else None
    if obj in ("link", "l"):
        rows = ctl.call("link_show", stats=bool(a.stats), name=dev)
        for row in rows:
            if a.brief:
                out("%-16s %-14s %s %s" % (row["name"], _state(row), row["mac"], _flags(row)))
            else:
                for line in _link_lines(row, a.stats):
                    out(line)
        return 0
    if obj in ("addr", "address", "a"):
        links = {r["name"]: r for r in ctl.call("link_show", stats=False)}
        for row in ctl.call("addr_show", dev=dev):
            if a.brief:
                out("%-16s %-14s %s" % (row["name"], _state(links[row["name"]]),
                                        " ".join("%s/%d" % (x["local"], x["prefixlen"]) for x in row["addrs"])))
                continue
            lrow = links[row["name"]]
            out("%d: %s: %s mtu %d qdisc %s state %s group default qlen %d" % (
                row["ifindex"], row["name"], _flags(lrow), lrow["mtu"], lrow["qdisc"],
                _state(lrow), lrow["txqlen"]))
            out(_link_lines(lrow, False)[1])
            for x in row["addrs"]:
                brd = " brd %s" % x["broadcast"] if x["broadcast"] and row["name"] != "lo" else ""
                out("    inet %s/%d%s scope %s %s" % (x["local"], x["prefixlen"], brd, x["scope"], x["label"]))
                out("       valid_lft forever preferred_lft forever")
        return 0
    if obj in ("route", "r", "ro"):
        table = rest[rest.index("table") + 1] if "table" in rest else "main"
        for r in ctl.call("route_show", table=table):
            parts = [r["dst"]] if r["type"] == "unicast" else [r["type"], r["dst"]]
            if r.get("via"):
                parts += ["via", r["via"]]
            parts += ["dev", r["dev"]]
            if table != "main":
                parts += ["table", r["table"]]
            if r["proto"] != "static" or r.get("src"):
                parts += ["proto", r["proto"]]
            if r["scope"] != "global":
                parts += ["scope", r["scope"]]
            if r.get("src"):
                parts += ["src", r["src"]]
            if r["metric"]:
                parts += ["metric", str(r["metric"])]
            out(" ".join(parts))
        return 0
    if obj in ("neigh", "neighbour", "n"):
        for n in ctl.call("neigh_show"):
            if n["lladdr"] and n["state"] not in ("INCOMPLETE", "FAILED"):
                out("%s dev %s lladdr %s %s" % (n["dst"], n["dev"], n["lladdr"], n["state"]))
            else:
                out("%s dev %s %s" % (n["dst"], n["dev"], n["state"]))
        return 0
    out("Usage: ip [ -s ] [ -br ] { link | addr | route | neigh } [ show ] [ dev DEV ]")
    return 0 if obj == "help" else 255


def bridge_main(argv, ctl, out=print):
    """`bridge fdb show` and `bridge link`."""
    obj = argv[0] if argv else "help"
    if obj == "fdb":
        for r in ctl.call("fdb_show"):
            if r["dev"] == r["master"]:
                out("%s dev %s master %s permanent" % (r["mac"], r["dev"], r["master"]))
            else:
                out("%s dev %s master %s%s" % (r["mac"], r["dev"], r["master"],
                                               " permanent" if r["permanent"] else ""))
        return 0
    if obj == "link":
        for row in ctl.call("link_show", stats=False):
            if row.get("master"):
                out("%d: %s: %s mtu %d master %s state forwarding priority 32 cost 2" % (
                    row["ifindex"], row["name"], _flags(row), row["mtu"], row["master"]))
        return 0
    out("Usage: bridge { fdb | link } [ show ]")
    return 0 if obj == "help" else 255
