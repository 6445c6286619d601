"""`ip` and `bridge`, printed as iproute2 prints them.

Each reads and changes the node through the control endpoint, the same API
the orchestrator configures it with: link show/set, addr show/add/del,
route show/get/add/del, neigh show/flush.
"""
import argparse
import errno
import json
import os

def jsonw(value, pretty=False):
    """iproute2's lib/json_writer.c: its own pretty form ("[ {", "},{", "} ]")."""
    out = []
    st = {"depth": 0, "sep": ""}

    def eor():
        if st["sep"]:
            out.append(st["sep"])
        st["sep"] = ","

    def eol():
        if pretty:
            out.append("\n" + "    " * st["depth"])

    def begin(c):
        eor()
        out.append(c)
        st["depth"] += 1
        st["sep"] = ""

    def end(c):
        st["depth"] -= 1
        if st["sep"]:
            eol()
        out.append(c)
        st["sep"] = ","

    def val(v):
        if isinstance(v, dict):
            begin("{")
            for k, x in v.items():
                eor()
                eol()
                st["sep"] = ""
                out.append(json.dumps(k) + (": " if pretty else ":"))
                val(x)
            end("}")
        elif isinstance(v, (list, tuple)):
            begin("[")
            if pretty:
                out.append(" ")
            for x in v:
                val(x)
            if pretty and st["sep"]:
                out.append(" ")
            st["sep"] = ""
            end("]")
        else:
            eor()
            out.append(json.dumps(v))
    val(value)
    return "".join(out)


# Kernel-internal flags iproute2 does not print (it shows gflags, not these).
HIDDEN = {"PROMISC", "SLAVE", "MASTER"}


def _flags(row):
    flags = [f for f in row["flags"] if f not in HIDDEN]
    # iproute2 print_link_flags: administratively up but not running.
    if "UP" in row["flags"] and not row.get("running", True):
        flags.insert(0, "NO-CARRIER")
    return "<%s>" % ",".join(flags)


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
        if stats > 1:          # ip -s -s: the error breakdown (print_link_stats64)
            out.append("    RX errors:  length    crc   frame    fifo overrun")
            out.append("               %7d %6d %7d %7d %7d" % (
                s["rx_length_errors"], s["rx_crc_errors"], s["rx_frame_errors"],
                s["rx_fifo_errors"], s["rx_over_errors"]))
        out.append("    TX:  bytes packets errors dropped carrier collsns")
        out.append("    %10d %7d %6d %7d %7d %7d" % (s["tx_bytes"], s["tx_packets"], s["tx_errors"],
                                                     s["tx_dropped"], s["tx_carrier_errors"], s["collisions"]))
        if stats > 1:
            out.append("    TX errors: aborted   fifo  window heartbt transns")
            out.append("               %7d %6d %7d %7d %7d" % (
                s["tx_aborted_errors"], s["tx_fifo_errors"], s["tx_window_errors"],
                s["tx_heartbeat_errors"], row.get("carrier_changes", 0)))
    return out


SHOW = ("show", "list", "ls", "lst")
OBJECTS = {"link": "link", "l": "link", "addr": "addr", "address": "addr", "a": "addr",
           "route": "route", "r": "route", "ro": "route", "neigh": "neigh",
           "neighbour": "neigh", "neighbor": "neigh", "n": "neigh"}
VERBS = {"link": ("set",), "addr": ("add", "del", "delete"),
         "route": ("add", "del", "delete", "get", "flush"), "neigh": ("flush",)}


class Usage(Exception):
    """A command iproute2 would refuse before asking the kernel."""


class NoDevice(Exception):
    """iproute2's ll_name_to_index failed: 'Cannot find device "X"'."""


def _need_dev(ctl, name):
    if name not in {r["name"] for r in ctl.call("link_show", stats=False)}:
        raise NoDevice('Cannot find device "%s"' % name)


KEYS = {"dev", "local", "to", "via", "metric", "mtu", "master", "table", "proto", "scope", "src"}


def _kv(words, flags=()):
    """KEY VALUE pairs, bare flag words and one positional (key ""), as iproute2 reads them."""
    kv, i = {}, 0
    while i < len(words):
        w = words[i]
        if w in flags:
            kv[w] = True
            i += 1
        elif w in KEYS:
            if i + 1 >= len(words):
                raise Usage('Command line is not complete. Try option "help"')
            kv[w] = words[i + 1]
            i += 2
        elif "" in kv:
            raise Usage('Error: either "%s" is duplicate, or "%s" is a garbage.' % (kv[""], w))
        else:
            kv[""] = w
            i += 1
    return kv


def _show_dev(words):
    words = [w for w in words if w not in SHOW]
    if "dev" in words:
        i = words.index("dev")
        return words[i + 1] if i + 1 < len(words) else None
    rest = [w for w in words if w not in ("table", "main", "local", "all", "up")]
    return rest[0] if rest else None


def main(argv, ctl, out=print, err=None):
    err = err or out
    p = argparse.ArgumentParser(prog="ip")
    p.add_argument("-s", "--stats", action="count", default=0)
    p.add_argument("-br", "--brief", action="store_true")
    p.add_argument("-j", "--json", action="store_true")
    p.add_argument("-p", "--pretty", action="store_true")
    p.add_argument("object", nargs="?", default="help")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    obj = OBJECTS.get(a.object)
    if obj is None:
        if a.object == "help":
            out("Usage: ip [ -s ] [ -br ] [ -j [ -p ] ] { link | addr | route | neigh } { COMMAND | help }")
            return 0
        err('Object "%s" is unknown, try "ip help".' % a.object)
        return 1
    verb = a.rest[0] if a.rest else "show"
    if verb == "help":
        out(HELP[obj])
        return 0
    if verb not in SHOW and verb not in VERBS[obj]:
        out('Command "%s" is unknown, try "ip %s help".' % (verb, obj))
        return 255
    words = a.rest[1:]
    try:
        if verb in SHOW and a.json:
            out(jsonw(_json_rows(obj, words, ctl), a.pretty))
            return 0
        if verb in SHOW:
            return SHOWS[obj](a, words, ctl, out)
        return CHANGES[obj](verb, words, ctl, out)
    except Usage as e:
        err(str(e))
        return 1
    except NoDevice as e:
        err(str(e))
        return 1
    except OSError as e:
        if e.errno == errno.ENODEV and obj == "link" and verb in SHOW:
            err('Device "%s" does not exist.' % _show_dev(words))
            return 1
        # iproute2 prints the C library's text for the netlink errno.
        err("RTNETLINK answers: %s" % (os.strerror(e.errno) if e.errno else e))
        return 2


def _link_show(a, words, ctl, out):
    rows = ctl.call("link_show", stats=bool(a.stats), name=_show_dev(words))
    for row in rows:
        if a.brief:
            out("%-16s %-14s %s %s" % (row["name"], _state(row), row["mac"], _flags(row)))
        else:
            for line in _link_lines(row, a.stats):
                out(line)
    return 0


def _link_set(verb, words, ctl, out):
    kv = _kv(words, flags=("up", "down", "nomaster"))
    name = kv.pop("dev", None) or kv.pop("", None)
    if name is None:
        raise Usage('Not enough information: "dev" argument is required.')
    args = {}
    if "up" in kv or "down" in kv:
        args["up"] = "up" in kv
    if "mtu" in kv:
        args["mtu"] = int(kv["mtu"])
    if "master" in kv:
        args["master"] = kv["master"]
    if "nomaster" in kv:
        args["master"] = ""
    unknown = set(kv) - {"up", "down", "mtu", "master", "nomaster"}
    if unknown or not args:
        raise Usage('Error: either "dev" is duplicate, or "%s" is a garbage.' %
                    (sorted(unknown)[0] if unknown else name))
    ctl.call("link_set", name=name, **args)
    return 0


def _addr_show(a, words, ctl, out):
    links = {r["name"]: r for r in ctl.call("link_show", stats=False)}
    for row in ctl.call("addr_show", dev=_show_dev(words)):
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


def _addr_change(verb, words, ctl, out):
    kv = _kv(words)
    prefix = kv.pop("local", None) or kv.pop("", None)
    dev = kv.pop("dev", None)
    if prefix is None or dev is None:
        raise Usage('Not enough information: "dev" argument is required.')
    if "/" not in prefix:
        prefix += "/32"             # iproute2's default prefix length for IPv4
    ctl.call("addr_add" if verb == "add" else "addr_del", dev=dev, address=prefix)
    return 0


def _route_show(a, words, ctl, out):
    table = words[words.index("table") + 1] if "table" in words and \
        words.index("table") + 1 < len(words) else "main"
    rows = ctl.call("route_show", table=table)
    # iproute2 lists the default route first (it sorts by prefix in the dump).
    rows.sort(key=lambda r: r["dst"] != "default")
    for r in rows:
        parts = [r["dst"]] if r["type"] == "unicast" else [r["type"], r["dst"]]
        if r.get("via"):
            parts += ["via", r["via"]]
        parts += ["dev", r["dev"]]
        if table not in ("main", "all") or (table == "all" and r["table"] != "main"):
            parts += ["table", r["table"]]
        if r["proto"] != "static" or r.get("src"):
            parts += ["proto", r["proto"]]
        if r["scope"] != "global":
            parts += ["scope", r["scope"]]
        if r.get("src"):
            parts += ["src", r["src"]]
        if r["metric"]:
            parts += ["metric", str(r["metric"])]
        parts += r.get("flags", [])
        out(" ".join(parts))
    return 0


def _route_change(verb, words, ctl, out):
    if verb == "flush":
        return _route_flush(words, ctl, out)
    kv = _kv(words)
    if verb == "get":
        dst = kv.pop("to", None) or kv.pop("", None)
        if dst is None:
            raise Usage("need at least a destination address")
        r = ctl.call("route_get", dst=dst)
        parts = ([r["type"]] if r["type"] != "unicast" else []) + [r["dst"]]
        if r["via"]:
            parts += ["via", r["via"]]
        parts += ["dev", r["dev"]]
        if r["src"]:
            parts += ["src", r["src"]]
        out(" ".join(parts) + " uid 0")
        out("    cache ")
        return 0
    dst = kv.pop("to", None) or kv.pop("", None)
    if dst is None:
        raise Usage("Error: a destination prefix is required.")
    if "/" not in dst and dst != "default":
        dst += "/32"
    args = {k: kv.pop(k) for k in ("via", "dev") if k in kv}
    if "metric" in kv and verb == "add":
        args["metric"] = int(kv.pop("metric"))
    if kv:
        raise Usage('Error: "%s" is not supported here.' % sorted(kv)[0])
    ctl.call("route_add" if verb == "add" else "route_del", dst=dst, **args)
    return 0


def _neigh_show(a, words, ctl, out):
    dev = _show_dev(words)
    for n in ctl.call("neigh_show"):
        if dev and n["dev"] != dev:
            continue
        if n["lladdr"] and n["state"] not in ("INCOMPLETE", "FAILED"):
            out("%s dev %s lladdr %s %s" % (n["dst"], n["dev"], n["lladdr"], n["state"]))
        else:
            out("%s dev %s %s" % (n["dst"], n["dev"], n["state"]))
    return 0


def _neigh_flush(verb, words, ctl, out):
    """ip neigh flush { all | dev DEV | PREFIX }: "all" is every device."""
    kv = _kv(words)
    dev = kv.get("dev")
    if kv.get("") not in (None, "all"):
        raise Usage('Error: "%s" is not supported here.' % kv[""])
    if dev is None and "" not in kv:
        raise Usage("Flush requires arguments.")
    if dev is not None:
        _need_dev(ctl, dev)
    ctl.call("neigh_flush", dev=dev)
    return 0


def _route_flush(words, ctl, out):
    """ip route flush cache: iproute2 writes /proc/sys/net/ipv4/route/flush."""
    if words[:1] != ["cache"]:
        raise Usage('Error: "%s" is not supported here; only "flush cache".' % " ".join(words))
    ctl.call("sysctl_set", name="net.ipv4.route.flush", value=1)
    return 0


SHOWS = {"link": _link_show, "addr": _addr_show, "route": _route_show, "neigh": _neigh_show}
CHANGES = {"link": _link_set, "addr": _addr_change, "route": _route_change, "neigh": _neigh_flush}
HELP = {
    "link": "Usage: ip link show [ [dev] DEV ]\n       ip link set [dev] DEV [ up | down ] "
            "[ mtu MTU ] [ master BR | nomaster ]",
    "addr": "Usage: ip addr show [ [dev] DEV ]\n       ip addr { add | del } IFADDR dev DEV",
    "route": "Usage: ip route [ show ] [ table { main | local | all } ]\n"
             "       ip route get ADDRESS\n"
             "       ip route { add | del } { PREFIX | default } [ via ADDRESS ] [ dev DEV ] "
             "[ metric N ]",
    "neigh": "Usage: ip neigh [ show ] [ dev DEV ]\n       ip neigh flush [ dev DEV ]",
}


def bridge_main(argv, ctl, out=print, err=None):
    """`bridge [-j [-p]] fdb [show] [br BR]` and `bridge link`."""
    err = err or out
    js = pretty = False
    while argv and argv[0].startswith("-"):
        flag = argv.pop(0)
        if flag in ("-j", "-json"):
            js = True
        elif flag in ("-p", "-pretty"):
            pretty = True
        else:
            err('Option "%s" is unknown, try "bridge help".' % flag)
            return 1
    obj = argv[0] if argv else "help"
    if obj == "fdb":
        words = [w for w in argv[1:] if w not in SHOW]
        br = words[words.index("br") + 1] if "br" in words and words.index("br") + 1 < len(words) \
            else None
        rows = ctl.call("fdb_show", br=br)
        if js:
            out(jsonw([{"mac": r["mac"], "ifname": r["dev"], "flags": [], "master": r["master"],
                        "state": "permanent" if r["permanent"] or r["dev"] == r["master"] else ""}
                       for r in rows], pretty))
            return 0
        for r in rows:
            perm = r["permanent"] or r["dev"] == r["master"]
            out("%s dev %s master %s%s" % (r["mac"], r["dev"], r["master"],
                                           " permanent" if perm else " "))
        return 0
    if obj == "link":
        for row in ctl.call("link_show", stats=False):
            if row.get("master"):
                out("%d: %s: %s mtu %d master %s state forwarding priority 32 cost 2" % (
                    row["ifindex"], row["name"], _flags(row), row["mtu"], row["master"]))
        return 0
    if obj == "help":
        out("Usage: bridge [ -j [ -p ] ] { fdb | link } [ show ]")
        return 0
    err('Object "%s" is unknown, try "bridge help".' % obj)
    return 1


def _link_json(row):
    """iproute2's print_linkinfo keys."""
    d = {"ifindex": row.get("ifindex"), "ifname": row["name"],
         "flags": _flags(row)[1:-1].split(",") if row["flags"] else [],
         "mtu": row["mtu"], "qdisc": row["qdisc"], "operstate": _state(row),
         "linkmode": "DEFAULT", "group": "default", "txqlen": row.get("txqlen", 1000),
         "link_type": "loopback" if row["name"] == "lo" else "ether",
         "address": row.get("mac"), "broadcast": "00:00:00:00:00:00" if row["name"] == "lo"
         else "ff:ff:ff:ff:ff:ff"}
    if row.get("master"):
        d["master"] = row["master"]
    return d


def _json_rows(obj, words, ctl):
    """ip -j {link,addr,route} show: the objects iproute2 prints with its json writer."""
    if obj == "link":
        return [_link_json(r) for r in ctl.call("link_show", stats=False, name=_show_dev(words))]
    if obj == "addr":
        links = {r["name"]: r for r in ctl.call("link_show", stats=False)}
        res = []
        for row in ctl.call("addr_show", dev=_show_dev(words)):
            d = _link_json(links[row["name"]])
            d["addr_info"] = [dict({"family": "inet", "local": x["local"], "prefixlen": x["prefixlen"]},
                                   **({"broadcast": x["broadcast"]} if x["broadcast"]
                                      and row["name"] != "lo" else {}),
                                   scope=x["scope"], label=x["label"],
                                   valid_life_time=4294967295, preferred_life_time=4294967295)
                              for x in row["addrs"]]
            res.append(d)
        return res
    if obj == "neigh":
        dev = _show_dev(words)
        res = []
        for n in ctl.call("neigh_show"):
            if dev and n["dev"] != dev:
                continue
            d = {"dst": n["dst"], "dev": n["dev"]}
            if n["lladdr"] and n["state"] not in ("INCOMPLETE", "FAILED"):
                d["lladdr"] = n["lladdr"]
            d["state"] = [n["state"]]
            res.append(d)
        return res
    res = []
    for r in ctl.call("route_show", table="main"):
        d = {"dst": r["dst"]} if r["type"] == "unicast" else {"type": r["type"], "dst": r["dst"]}
        if r.get("via"):
            d["gateway"] = r["via"]
        d["dev"] = r["dev"]
        d["protocol"] = r["proto"]
        if r["scope"] != "global":
            d["scope"] = r["scope"]
        if r.get("src"):
            d["prefsrc"] = r["src"]
        if r["metric"]:
            d["metric"] = r["metric"]
        d["flags"] = list(r.get("flags", []))
        res.append(d)
    res.sort(key=lambda d: d["dst"] != "default")
    return res
