"""What a control request may carry: a declared policy per operation.

Linux: lib/nlattr.c (nla_parse, validate_nla), include/net/netlink.h
(struct nla_policy: NLA_U32 with a range, NLA_STRING with a maximum length,
NLA_FLAG, NLA_NESTED).

Every control request is checked here before the kernel sees it: a field the
operation does not declare, a wrong type or a value out of range is EINVAL
with the field named (as extack names the attribute), and nothing changes.
Parameters that exist only for the runtime (a veth's wire port, the node id
a trace starts from) are not declared, so the control API cannot reach them.
"""
import errno
import inspect

from .dev import KernelError

NAME_MAX = 15            # IFNAMSIZ - 1
STR_MAX = 4096
LIST_MAX = 4096


class Policy:
    """One field's rule: check(value) -> value, or raise ValueError(why)."""

    __slots__ = ("check", "why")

    def __init__(self, check, why):
        self.check = check
        self.why = why


def _typed(types, why, test=None):
    def check(v):
        if isinstance(v, bool) and bool not in types:
            raise ValueError(why)
        if not isinstance(v, types) or (test is not None and not test(v)):
            raise ValueError(why)
        return v
    return Policy(check, why)


def u32(lo=0, hi=0xFFFFFFFF):
    return _typed((int,), "an integer in %d..%d" % (lo, hi), lambda v: lo <= v <= hi)


def string(maxlen=STR_MAX):
    return _typed((str,), "a string of at most %d characters" % maxlen, lambda v: len(v) <= maxlen)


def ifname():
    return _typed((str,), "an interface name (1-15 characters, no '/' or spaces)",
                  lambda v: 0 < len(v) <= NAME_MAX and "/" not in v and not any(
                      c.isspace() for c in v))


def _is_ipv4(v):
    parts = v.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts)


def _is_prefix(v, default_ok):
    if default_ok and v == "default":
        return True
    ip, _, plen = v.partition("/")
    return _is_ipv4(ip) and (not plen or plen.isdigit() and int(plen) <= 32)


IPV4 = _typed((str,), "an IPv4 address (a.b.c.d)", _is_ipv4)
PREFIX = _typed((str,), "an IPv4 prefix (a.b.c.d/n)", lambda v: _is_prefix(v, False))
ROUTE_DST = _typed((str,), "'default' or an IPv4 prefix (a.b.c.d/n)",
                   lambda v: _is_prefix(v, True))
MAC = _typed((str,), "a MAC address (xx:xx:xx:xx:xx:xx)", lambda v: len(v) == 17 and all(
    len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in v.split(":"))
    and v.count(":") == 5)
FLAG = _typed((bool,), "true or false")
SCALAR = _typed((str, int, float, bool), "a string, number or boolean",
                lambda v: not isinstance(v, str) or len(v) <= STR_MAX)


def _nested_ok(v, depth=0):
    if v is None or isinstance(v, (bool, int, float)):
        return True
    if isinstance(v, str):
        return len(v) <= STR_MAX
    if depth >= 4:
        return False
    if isinstance(v, (list, tuple)):
        return len(v) <= 16384 and all(_nested_ok(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return len(v) <= 64 and all(isinstance(k, str) and len(k) <= 64 and _nested_ok(x, depth + 1)
                                    for k, x in v.items())
    return False


def _nested(v):
    if not _nested_ok(v):
        raise ValueError("nested attributes (maps, lists, scalars; 4 levels at most)")
    return v


# NLA_NESTED: plain data a few levels deep; the owner (a qdisc's init) checks its fields.
NESTED = Policy(_nested, "nested attributes")


def optional(p):
    return Policy(lambda v: None if v is None else p.check(v), p.why + " (or null)")


def one_of(*choices):
    return _typed((str,), "one of %s" % ", ".join(choices), lambda v: v in choices)


def list_of(p, maxlen=LIST_MAX):
    def check(v):
        if not isinstance(v, (list, tuple)) or len(v) > maxlen:
            raise ValueError("a list of at most %d items" % maxlen)
        return [p.check(x) for x in v]
    return Policy(check, "a list of " + p.why)


def either(*ps):
    def check(v):
        for p in ps:
            try:
                return p.check(v)
            except ValueError:
                pass
        raise ValueError(" or ".join(p.why for p in ps))
    return Policy(check, " or ".join(p.why for p in ps))


class OpPolicy:
    """The fields of one operation; `extra` checks fields not named (None: refused)."""

    __slots__ = ("fields", "extra", "required")

    def __init__(self, fields=None, extra=None):
        self.fields = fields or {}
        self.extra = extra
        self.required = None


def rtnl_validate(op, pol, fn, args):
    """args checked against pol; returns the cleaned keyword arguments for fn."""
    if not isinstance(args, dict):
        raise KernelError(errno.EINVAL, "%s: arguments must be a map" % op)
    if pol.required is None:
        pol.required = [n for n, p in list(inspect.signature(fn).parameters.items())[1:]
                        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                               p.KEYWORD_ONLY)]
    out = {}
    for name, value in args.items():
        p = pol.fields.get(name) if isinstance(name, str) else None
        if p is None:
            p = pol.extra
            if p is None or not isinstance(name, str) or not 0 < len(name) <= 64 or \
                    not name.replace("-", "_").isidentifier():
                raise KernelError(errno.EINVAL, "%s: unknown field %r" % (op, name))
        try:
            out[name] = p.check(value)
        except ValueError as e:
            raise KernelError(errno.EINVAL, "%s: field '%s' must be %s" % (op, name, e)) from None
    for name in pol.required:
        if name not in out:
            raise KernelError(errno.EINVAL, "%s: field '%s' is required" % (op, name))
    return out


_DEV = {"dev": ifname()}
_OPT_DEV = {"dev": optional(ifname())}
_CPUMASK = either(u32(), string(64))

RTNL_POLICY = {
    "link_add": OpPolicy({"name": ifname(), "kind": one_of("bridge"),
                          "mac": optional(MAC), "mtu": optional(u32(68, 65535))}),
    "link_del": OpPolicy({"name": ifname()}),
    "link_set": OpPolicy({"name": ifname(), "up": optional(FLAG),
                          "mtu": optional(u32(68, 65535)), "master": optional(string(NAME_MAX)),
                          "rx_cpu": optional(u32(0, 4095))}),
    "link_show": OpPolicy({"name": optional(ifname()), "stats": FLAG}),
    "link_carrier": OpPolicy({"name": ifname(), "up": FLAG}),
    "addr_add": OpPolicy({"dev": ifname(), "address": PREFIX}),
    "addr_del": OpPolicy({"dev": ifname(), "address": PREFIX}),
    "addr_show": OpPolicy(_OPT_DEV),
    "route_add": OpPolicy({"dst": ROUTE_DST, "via": optional(IPV4), "dev": optional(ifname()),
                           "metric": u32()}),
    "route_del": OpPolicy({"dst": ROUTE_DST, "via": optional(IPV4), "dev": optional(ifname())}),
    "route_show": OpPolicy({"table": one_of("main", "local", "all")}),
    "route_get": OpPolicy({"dst": IPV4}),
    "neigh_show": OpPolicy(),
    "neigh_flush": OpPolicy(_OPT_DEV),
    "fdb_show": OpPolicy({"br": optional(ifname())}),
    "sysctl_get": OpPolicy({"name": optional(string(256))}),
    "sysctl_set": OpPolicy({"name": string(256),
                            "value": either(SCALAR, list_of(u32(0, 0x7FFFFFFF), 8))}),
    "counters": OpPolicy(),
    "trace_start": OpPolicy({"proto": optional(one_of("icmp", "udp", "tcp", "arp")),
                             "host": optional(IPV4), "port": optional(u32(0, 65535)),
                             "ring": u32(1, 1 << 20)}),
    "trace_stop": OpPolicy(),
    "trace_dump": OpPolicy({"clear": FLAG}),
    "nf_rule_add": OpPolicy({"chain": string(32), "position": optional(u32(0, 1 << 20)),
                             "src": optional(PREFIX), "dst": optional(PREFIX),
                             "proto": optional(one_of("tcp", "udp", "icmp")),
                             "sport": optional(u32(0, 65535)), "dport": optional(u32(0, 65535)),
                             "iif": optional(ifname()), "oif": optional(ifname()),
                             "target": string(32), "reject_with": string(48)}),
    "nf_rule_del": OpPolicy({"chain": string(32), "index": u32(0, 1 << 20)}),
    "nf_flush": OpPolicy({"chain": optional(string(32))}),
    "nf_policy": OpPolicy({"chain": string(32), "policy": string(32)}),
    "nf_show": OpPolicy(),
    "sock_diag": OpPolicy({"info": FLAG, "ext": FLAG}),
    "packet_diag": OpPolicy(),
    "sockstat": OpPolicy(),
    "ethtool_stats": OpPolicy(_DEV),
    "ethtool_show": OpPolicy(_DEV),
    "features_set": OpPolicy(_DEV, extra=either(FLAG, one_of("on", "off"))),
    "ring_set": OpPolicy({"dev": ifname(), "rx": optional(u32(1, 1 << 16)),
                          "tx": optional(u32(1, 1 << 16))}),
    "coalesce_set": OpPolicy(dict(_DEV, **{k: optional(u32(0, 1 << 24)) for k in (
        "rx_usecs", "rx_frames", "tx_usecs", "tx_frames")})),
    "rss_set": OpPolicy({"dev": ifname(), "equal": optional(u32(1, 4096)),
                         "indir": optional(list_of(u32(0, 4096), 4096)),
                         "key": optional(string(256))}),
    "pause_set": OpPolicy({"dev": ifname(), "rx": optional(FLAG), "tx": optional(FLAG)}),
    "queue_show": OpPolicy(_DEV),
    "queue_set": OpPolicy({"dev": ifname(), "queue": optional(u32(0, 4095)),
                           "rps_cpus": optional(_CPUMASK), "irq_cpu": optional(u32(0, 4095)),
                           "smp_affinity": optional(_CPUMASK)}),
    # tc: the qdisc's own init() parses its options (tc's argument grammar).
    "qdisc_show": OpPolicy(_OPT_DEV),
    "qdisc_add": OpPolicy({"dev": ifname(), "kind": string(32), "parent": optional(string(16)),
                           "handle": optional(either(string(16), u32())), "replace": FLAG,
                           "change": FLAG},
                          extra=NESTED),
    "qdisc_del": OpPolicy({"dev": ifname(), "parent": optional(string(16)),
                           "handle": optional(either(string(16), u32()))}),
}


def rtnl_policy_check(ops):
    """Every operation has a policy and every policy an operation (checked at import)."""
    missing = sorted(set(ops) - set(RTNL_POLICY))
    extra = sorted(set(RTNL_POLICY) - set(ops))
    if missing or extra:
        raise AssertionError("rtnl policy out of step: no policy for %s; no op for %s"
                             % (missing, extra))
