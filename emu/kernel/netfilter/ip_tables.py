"""A filter table on the netfilter hooks: match, then ACCEPT, DROP or REJECT.

Linux: net/ipv4/netfilter/ip_tables.c, iptable_filter.c, ipt_REJECT.c,
net/ipv4/netfilter/nf_reject_ipv4.c

Emulation note: one table whose chains are named after the hooks
(PREROUTING, INPUT, FORWARD, OUTPUT, POSTROUTING), with the matches iptables
users reach for first: -s, -d, -p, --sport, --dport, -i, -o. A chain's
function is registered on its hook only once it has rules or a DROP policy,
so an unused firewall costs nothing.
"""
import errno

from ..core.dev import KernelError
from ..hdr.icmp import ICMP_DEST_UNREACH
from ..hdr.ip import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, inet_aton, inet_make_mask, inet_ntoa
from .core import (
    NF_ACCEPT, NF_DROP, NF_INET_FORWARD, NF_INET_LOCAL_IN, NF_INET_LOCAL_OUT,
    NF_INET_POST_ROUTING, NF_INET_PRE_ROUTING, nf_register_net_hook, nf_unregister_net_hook,
)

CHAINS = {"PREROUTING": NF_INET_PRE_ROUTING, "INPUT": NF_INET_LOCAL_IN,
          "FORWARD": NF_INET_FORWARD, "OUTPUT": NF_INET_LOCAL_OUT,
          "POSTROUTING": NF_INET_POST_ROUTING}
PROTOS = {"icmp": IPPROTO_ICMP, "tcp": IPPROTO_TCP, "udp": IPPROTO_UDP}
# --reject-with -> ICMP destination unreachable code
REJECT_CODES = {"icmp-net-unreachable": 0, "icmp-host-unreachable": 1,
                "icmp-proto-unreachable": 2, "icmp-port-unreachable": 3,
                "icmp-net-prohibited": 9, "icmp-host-prohibited": 10,
                "icmp-admin-prohibited": 13}
TARGETS = ("ACCEPT", "DROP", "REJECT")


class IptRule:
    """One rule (struct ipt_entry with its matches and target)."""

    __slots__ = ("src", "smsk", "dst", "dmsk", "proto", "sport", "dport", "iif", "oif",
                 "target", "reject_code", "pcnt", "bcnt")

    def __init__(self, src=None, dst=None, proto=None, sport=None, dport=None,
                 iif=None, oif=None, target="DROP", reject_with="icmp-port-unreachable"):
        self.src, self.smsk = _net(src)
        self.dst, self.dmsk = _net(dst)
        if proto is not None and proto not in PROTOS:
            raise KernelError(errno.EINVAL, "unknown protocol %r" % proto)
        self.proto = PROTOS.get(proto) if proto else None
        if (sport is not None or dport is not None) and self.proto not in (IPPROTO_TCP, IPPROTO_UDP):
            raise KernelError(errno.EINVAL, "--sport/--dport need -p tcp or -p udp")
        self.sport = _port(sport)
        self.dport = _port(dport)
        self.iif = iif
        self.oif = oif
        if target not in TARGETS:
            raise KernelError(errno.EINVAL, "unknown target %r" % target)
        self.target = target
        if reject_with not in REJECT_CODES:
            raise KernelError(errno.EINVAL, "unknown --reject-with %r" % reject_with)
        self.reject_code = REJECT_CODES[reject_with]
        self.pcnt = 0
        self.bcnt = 0

    def describe(self):
        d = {"target": self.target, "pkts": self.pcnt, "bytes": self.bcnt}
        if self.smsk:
            d["src"] = "%s/%d" % (inet_ntoa(self.src), bin(self.smsk).count("1"))
        if self.dmsk:
            d["dst"] = "%s/%d" % (inet_ntoa(self.dst), bin(self.dmsk).count("1"))
        if self.proto is not None:
            d["proto"] = next(k for k, v in PROTOS.items() if v == self.proto)
        for k in ("sport", "dport", "iif", "oif"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        if self.target == "REJECT":
            d["reject_with"] = next(k for k, v in REJECT_CODES.items() if v == self.reject_code)
        return d


def _net(text):
    if text is None:
        return 0, 0
    try:
        ip, _, plen = str(text).partition("/")
        plen = int(plen) if plen else 32
        mask = inet_make_mask(plen)
        return inet_aton(ip) & mask, mask
    except (OSError, ValueError):
        raise KernelError(errno.EINVAL, "bad address %r" % text) from None


def _port(p):
    if p is None:
        return None
    p = int(p)
    if not 0 <= p <= 65535:
        raise KernelError(errno.EINVAL, "bad port %r" % p)
    return p


class Chain:
    __slots__ = ("name", "hook", "rules", "policy", "pcnt", "bcnt", "registered", "fn")

    def __init__(self, name, hook):
        self.name = name
        self.hook = hook
        self.rules = []
        self.policy = "ACCEPT"
        self.pcnt = 0
        self.bcnt = 0
        self.registered = False
        self.fn = None


def iptable_filter_init(net):
    net.proto["ipt_filter"] = {name: Chain(name, hook) for name, hook in CHAINS.items()}


_HOTDROP = object()     # a rule could not read the header it needs: drop (xt hotdrop)


def _match(r, buf, nh, tail, indev, outdev):
    saddr = int.from_bytes(buf[nh + 12:nh + 16], "big")
    daddr = int.from_bytes(buf[nh + 16:nh + 20], "big")
    if (saddr & r.smsk) != r.src or (daddr & r.dmsk) != r.dst:
        return False
    if r.iif is not None and (indev is None or indev.name != r.iif):
        return False
    if r.oif is not None and (outdev is None or outdev.name != r.oif):
        return False
    proto = buf[nh + 9]
    if r.proto is not None and proto != r.proto:
        return False
    if r.sport is not None or r.dport is not None:
        l4 = nh + (buf[nh] & 15) * 4
        if ((buf[nh + 6] << 8) | buf[nh + 7]) & 0x1FFF:
            return False       # a non-first fragment has no ports: no match (as Linux)
        if l4 + 4 > tail:
            return _HOTDROP    # truncated ports: tcp_mt/udp_mt set hotdrop
        sport = (buf[l4] << 8) | buf[l4 + 1]
        dport = (buf[l4 + 2] << 8) | buf[l4 + 3]
        if r.sport is not None and sport != r.sport:
            return False
        if r.dport is not None and dport != r.dport:
            return False
    return True


def ipt_do_table(chain, skb, indev, outdev):
    """Walk one chain: the first matching rule's target decides, else the policy."""
    buf = skb.buf
    nh = skb.network_header
    length = skb.tail - nh
    for r in chain.rules:
        m = _match(r, buf, nh, skb.tail, indev, outdev)
        if m is _HOTDROP:
            return NF_DROP
        if m:
            r.pcnt += 1
            r.bcnt += length
            if skb.trace is not None:
                skb.trace.hit("ipt_do_table", "%s %s" % (chain.name, r.target))
            if r.target == "ACCEPT":
                return NF_ACCEPT
            if r.target == "REJECT":
                reject_tg(skb, r.reject_code)
            return NF_DROP
    chain.pcnt += 1
    chain.bcnt += length
    return NF_ACCEPT if chain.policy == "ACCEPT" else NF_DROP


def reject_tg(skb, code):
    """ipt_REJECT: answer with an ICMP unreachable (never about ICMP errors: icmp_send checks)."""
    from ..ipv4.icmp import icmp_send
    icmp_send(skb, ICMP_DEST_UNREACH, code, 0)


def _sync_hook(net, chain):
    want = bool(chain.rules) or chain.policy != "ACCEPT"
    if want and not chain.registered:
        chain.fn = lambda hook, skb, indev, outdev, chain=chain: ipt_do_table(chain, skb, indev, outdev)
        nf_register_net_hook(net, chain.hook, chain.fn)
        chain.registered = True
    elif not want and chain.registered:
        nf_unregister_net_hook(net, chain.hook, chain.fn)
        chain.registered = False


def _chain(net, name):
    c = net.proto["ipt_filter"].get(name)
    if c is None:
        raise KernelError(errno.ENOENT, "no chain %r (chains: %s)" % (name, ", ".join(CHAINS)))
    return c


def ipt_rule_add(net, chain, position=None, **match):
    """iptables -A CHAIN (or -I CHAIN POSITION, 1-based)."""
    c = _chain(net, chain)
    r = IptRule(**match)
    if position is None:
        c.rules.append(r)
    else:
        if not 1 <= int(position) <= len(c.rules) + 1:
            raise KernelError(errno.EINVAL, "index of insertion too big")
        c.rules.insert(int(position) - 1, r)
    _sync_hook(net, c)
    return {"chain": chain, "index": c.rules.index(r) + 1}


def ipt_rule_del(net, chain, index):
    """iptables -D CHAIN INDEX (1-based)."""
    c = _chain(net, chain)
    if not 1 <= int(index) <= len(c.rules):
        raise KernelError(errno.ENOENT, "index of deletion too big")
    del c.rules[int(index) - 1]
    _sync_hook(net, c)
    return {}


def ipt_flush(net, chain=None):
    """iptables -F [CHAIN]."""
    for c in ([_chain(net, chain)] if chain else net.proto["ipt_filter"].values()):
        c.rules.clear()
        _sync_hook(net, c)
    return {}


def ipt_policy(net, chain, policy):
    """iptables -P CHAIN ACCEPT|DROP."""
    if policy not in ("ACCEPT", "DROP"):
        raise KernelError(errno.EINVAL, "policy must be ACCEPT or DROP")
    c = _chain(net, chain)
    c.policy = policy
    _sync_hook(net, c)
    return {}


def ipt_show(net):
    """iptables -L -v -n, as data."""
    return [{"chain": c.name, "policy": c.policy, "pkts": c.pcnt, "bytes": c.bcnt,
             "rules": [r.describe() for r in c.rules]}
            for c in net.proto["ipt_filter"].values()]
