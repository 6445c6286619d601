"""nstat: the node's SNMP counters as iproute2's nstat prints them.

As nstat: the counters of /proc/net/snmp and /proc/net/netstat under the
names GroupField (IpInReceives, TcpExtTCPPureAcks, IcmpMsgInType8...), by
default the increments since the previous run, which a history file keeps
($NSTAT_HISTORY, else /tmp/.nstat.u<uid>.<node>: one per node, since each
node is its own kernel). Options: -a (absolute values, ignore history), -z
(zero counters too), -s (do not update history), -n (update history, print
nothing), -r (reset history), then optional name patterns (shell globs).

Emulation note: no nstat daemon, so the rate column is always 0.0, as nstat
prints it when it runs without one.
"""
import argparse
import fnmatch
import os

from .proc import netstat as _netstat, snmp as _snmp

# nstat.c useless_number(): configuration values, not counters.
USELESS = {"IpForwarding", "IpDefaultTTL", "TcpRtoAlgorithm", "TcpRtoMin", "TcpRtoMax",
           "TcpMaxConn"}


def counters(ctl):
    """[(name, value)] in /proc's order: snmp then netstat."""
    c = ctl.call("counters")
    res = []
    for lines in (_snmp(c), _netstat(c)):
        for i in range(0, len(lines) - 1, 2):
            group, names = lines[i].split(":", 1)
            _, values = lines[i + 1].split(":", 1)
            for n, v in zip(names.split(), values.split(), strict=False):
                res.append((group + n, int(v)))
    return res


def history_path(node):
    return os.environ.get("NSTAT_HISTORY") or "/tmp/.nstat.u%d.%s" % (os.getuid(), node)


def load(path):
    hist = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and not line.startswith("#"):
                    try:
                        hist[parts[0]] = int(parts[1])
                    except ValueError:
                        pass
    except OSError:
        pass
    return hist


def save(path, cur):
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write("#kernel\n")
        for n, v in cur:
            f.write("%-32s%-16d%6.1f\n" % (n, v, 0.0))
    os.replace(tmp, path)


def main(argv, ctl, out=print, err=None, node="node"):
    err = err or out
    p = argparse.ArgumentParser(prog="nstat", add_help=True)
    p.add_argument("-a", "--ignore", dest="absolute", action="store_true")
    p.add_argument("-z", "--zeros", dest="zeros", action="store_true")
    p.add_argument("-s", "--no-update", dest="noupdate", action="store_true")
    p.add_argument("-n", "--nooutput", dest="nooutput", action="store_true")
    p.add_argument("-r", "--reset", dest="reset", action="store_true")
    p.add_argument("patterns", nargs="*")
    # nstat takes combined flags: -az
    flat = []
    for a in argv:
        if a.startswith("-") and not a.startswith("--") and len(a) > 2:
            flat.extend("-" + c for c in a[1:])
        else:
            flat.append(a)
    try:
        a = p.parse_args(flat)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    path = history_path(node)
    cur = [(n, v) for n, v in counters(ctl) if n not in USELESS]
    hist = {} if a.reset else load(path)
    if not a.nooutput:
        out("#kernel")
        for n, v in cur:
            if a.patterns and not any(fnmatch.fnmatchcase(n, pat) for pat in a.patterns):
                continue
            shown = v if a.absolute else v - hist.get(n, 0)
            if shown < 0:                  # the node restarted: its counters began again
                shown = v
            if shown or a.zeros:
                out("%-32s%-16d%6.1f" % (n, shown, 0.0))
    if not a.noupdate:
        try:
            save(path, cur)
        except OSError as e:
            err("nstat: %s: %s" % (path, e.strerror))
            return 1
    return 0
