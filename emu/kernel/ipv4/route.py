"""IPv4 routing: the FIB (longest-prefix match) and dst entries.

Linux: net/ipv4/route.c, net/ipv4/fib_frontend.c, net/ipv4/fib_trie.c,
include/net/route.h, include/net/dst.h

Emulation note: the FIB is a dict of prefixes per prefix length, searched
from the longest length present down, instead of an LC-trie. Each nexthop
caches its input and output rtable (as Linux caches nh_rth_input and
nhc_pcpu_rth_output), so the per-packet lookup allocates nothing. Each
rtable carries the routing generation it was made in (rt_genid): a cached
one from an older generation is made again (rt_cache_valid), and sockets
holding one see it fail dst_check (core/dst.py).

As Linux since 4.1 (fib_trie.c, fib_unmerge: with no policy rules the local
table's entries live in the main table's trie), fib_lookup searches one
merged table, local and main together, longest prefix first and, at equal
prefixes, the local table's entries before main's: one lookup per packet,
not two. The two tables are still kept apart for `ip route show table`.
"""
import errno

from ..core.dev import KernelError
from ..core.napi import jiffies
from ..core.dst import rt_genid_bump_ipv4
from ..core.netdevice import IFF_LOOPBACK
from ..hdr.ip import INADDR_BROADCAST, inet_make_mask, inet_ntoa
from ..lib.siphash import siphash_3u32

RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255

RTN_UNICAST = 1
RTN_LOCAL = 2
RTN_BROADCAST = 3
RTN_BLACKHOLE = 6
RTN_UNREACHABLE = 7
RTN_PROHIBIT = 8
RTN_NAMES = {1: "unicast", 2: "local", 3: "broadcast", 6: "blackhole",
             7: "unreachable", 8: "prohibit"}

RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RT_SCOPE_NAMES = {0: "global", 253: "link", 254: "host"}

RTPROT_KERNEL = "kernel"
RTPROT_BOOT = "boot"
RTPROT_STATIC = "static"

# include/uapi/linux/rtnetlink.h: nexthop flags
RTNH_F_DEAD = 1
RTNH_F_LINKDOWN = 16


class Rtable:
    """struct rtable (whose first member is struct dst_entry)."""

    __slots__ = ("rt_type", "dev", "rt_gw4", "input", "output", "pmtu", "prefsrc",
                 "obsolete", "rt_genid")

    def __init__(self, rt_type, dev, gw, input, output, prefsrc=0, genid=0):
        self.rt_type = rt_type
        self.dev = dev
        self.rt_gw4 = gw
        self.input = input           # dst.input: ip_local_deliver / ip_forward / ip_error
        self.output = output         # dst.output: ip_output / ip_rt_bug
        self.pmtu = 0
        self.prefsrc = prefsrc
        self.obsolete = False
        self.rt_genid = genid        # the routing generation it was made in (rt_genid)


def rt_nexthop(rt, daddr):
    return rt.rt_gw4 or daddr


def dst_mtu(rt):
    return rt.pmtu or rt.dev.mtu


class DstOps:
    """The dst functions inet_init plugs in (dst.input and dst.output choices)."""

    __slots__ = ("local_deliver", "forward", "output")

    def __init__(self, local_deliver, forward, output):
        self.local_deliver = local_deliver
        self.forward = forward
        self.output = output


class FibAlias:
    """One route: prefix, type, scope, nexthop, metric (fib_alias + fib_info)."""

    __slots__ = ("dst", "plen", "type", "scope", "protocol", "priority", "prefsrc",
                 "dev", "gw", "table", "rth_input", "rth_output", "nh_flags")

    def __init__(self, dst, plen, type, dev, gw=0, scope=RT_SCOPE_UNIVERSE,
                 protocol=RTPROT_STATIC, priority=0, prefsrc=0, table=RT_TABLE_MAIN):
        self.dst = dst
        self.plen = plen
        self.type = type
        self.scope = scope
        self.protocol = protocol
        self.priority = priority
        self.prefsrc = prefsrc
        self.dev = dev
        self.gw = gw
        self.table = table
        self.rth_input = None
        self.rth_output = None
        # fib_create_info: a nexthop on a device without carrier starts linkdown.
        self.nh_flags = RTNH_F_LINKDOWN if dev is not None and not dev.carrier else 0

    def describe(self):
        """A row of `ip route show`."""
        d = {"type": RTN_NAMES.get(self.type, str(self.type)),
             "dst": "default" if self.plen == 0 and self.type == RTN_UNICAST
             else inet_ntoa(self.dst) + ("" if self.plen == 32 else "/%d" % self.plen),
             "dev": self.dev.name if self.dev is not None else None,
             "proto": self.protocol, "scope": RT_SCOPE_NAMES.get(self.scope, str(self.scope)),
             "metric": self.priority, "table": "local" if self.table == RT_TABLE_LOCAL else "main"}
        if self.gw:
            d["via"] = inet_ntoa(self.gw)
        if self.prefsrc:
            d["src"] = inet_ntoa(self.prefsrc)
        if self.nh_flags & RTNH_F_LINKDOWN:
            d["flags"] = ["linkdown"]
        return d


MASKS = tuple(inet_make_mask(plen) for plen in range(33))   # plen -> netmask


class FibTable:
    """struct fib_table: routes by prefix length, then by prefix."""

    def __init__(self, tb_id, changed=None):
        self.tb_id = tb_id
        self.by_plen = {}          # plen -> {prefix: [FibAlias sorted by priority]}
        self.plens = []            # prefix lengths present, longest first
        self.changed = changed     # called after every insert or delete

    def insert(self, fa):
        bucket = self.by_plen.setdefault(fa.plen, {})
        if fa.plen not in self.plens:
            self.plens.append(fa.plen)
            self.plens.sort(reverse=True)
        lst = bucket.setdefault(fa.dst, [])
        for old in lst:
            if old.priority == fa.priority and old.type == fa.type and \
                    old.dev is fa.dev and old.gw == fa.gw:
                raise KernelError(errno.EEXIST, "route exists")
        lst.append(fa)
        lst.sort(key=lambda a: a.priority)
        if self.changed is not None:
            self.changed()

    def delete(self, match):
        """Remove routes for which match(fa) is true; returns how many."""
        n = 0
        for plen in list(self.by_plen):
            bucket = self.by_plen[plen]
            for prefix in list(bucket):
                keep = [fa for fa in bucket[prefix] if not match(fa)]
                n += len(bucket[prefix]) - len(keep)
                if keep:
                    bucket[prefix] = keep
                else:
                    del bucket[prefix]
            if not bucket:
                del self.by_plen[plen]
                self.plens.remove(plen)
        if n and self.changed is not None:
            self.changed()
        return n

    def lookup(self, daddr):
        """Longest-prefix match: the best usable route for daddr, or None."""
        by_plen = self.by_plen
        for plen in self.plens:
            lst = by_plen[plen].get(daddr & MASKS[plen])
            if lst:
                for fa in lst:
                    if fa.dev is None or fa.dev.flags & 1:   # IFF_UP
                        if fa.nh_flags and fib_ignore_linkdown(fa.dev):
                            continue
                        return fa
        return None

    def routes(self):
        out = []
        for plen in self.plens:
            for prefix in sorted(self.by_plen[plen]):
                out.extend(self.by_plen[plen][prefix])
        return out


def fib_init(net):
    def changed():
        net.proto["fib_merged"] = None
    net.proto["fib"] = {RT_TABLE_LOCAL: FibTable(RT_TABLE_LOCAL, changed),
                        RT_TABLE_MAIN: FibTable(RT_TABLE_MAIN, changed)}
    net.proto["fib_merged"] = None    # built on the next lookup after a change
    net.proto["fnhe"] = {}     # daddr -> (pmtu, expires): see ip_rt_update_pmtu
    net.notifiers.append(fib_netdev_event)


IGNORE_LINKDOWN = "net.ipv4.conf.%s.ignore_routes_with_linkdown"


def fib_ignore_linkdown(dev):
    """IN_DEV_IGNORE_ROUTES_WITH_LINKDOWN: conf/all or conf/DEV (IN_DEV_ORCONF)."""
    sysctl = dev.net.sysctl
    return bool(sysctl.get(IGNORE_LINKDOWN % "all") or sysctl.get(IGNORE_LINKDOWN % dev.name))


def fib_sync_linkdown(dev, down):
    """fib_sync_down_dev(NETDEV_CHANGE) / fib_sync_up(RTNH_F_LINKDOWN): mark or
    clear `linkdown` on every nexthop through dev. The routes stay and are used
    unless ignore_routes_with_linkdown is set."""
    n = 0
    for tb in dev.net.proto["fib"].values():
        for fa in tb.routes():
            if fa.dev is dev and fa.type == RTN_UNICAST:
                fa.nh_flags = (fa.nh_flags | RTNH_F_LINKDOWN) if down else \
                    (fa.nh_flags & ~RTNH_F_LINKDOWN)
                n += 1
    return n


def fib_netdev_event(event, dev):
    """The FIB's part of the netdevice notifier (fib_frontend.c fib_netdev_event):
    per-device conf on register, `linkdown` nexthops on a carrier change."""
    net = dev.net
    if event == "NETDEV_REGISTER":
        net.sysctl.setdefault(IGNORE_LINKDOWN % dev.name,
                              net.sysctl.get(IGNORE_LINKDOWN % "default", 0))
    elif event == "NETDEV_UNREGISTER":
        net.sysctl.pop(IGNORE_LINKDOWN % dev.name, None)
    elif event == "NETDEV_CHANGE":
        fib_sync_linkdown(dev, not (dev.flags & (0x40 | 0x10000)))   # IFF_RUNNING | IFF_LOWER_UP
        rt_cache_flush(net)


def fib_lookup(net, daddr):
    """The best route for daddr in the merged local + main table (see the module note)."""
    merged = net.proto["fib_merged"]
    if merged is None:
        merged = net.proto["fib_merged"] = fib_merge(net.proto["fib"])
    return merged.lookup(daddr)


def fib_merge(tables):
    """One table holding local's and main's routes; at one prefix, local's come first
    (fib_find_alias orders a leaf's aliases by table id, local's 255 before main's 254)."""
    merged = FibTable(RT_TABLE_MAIN)
    for tb_id in (RT_TABLE_LOCAL, RT_TABLE_MAIN):
        for plen, bucket in tables[tb_id].by_plen.items():
            mb = merged.by_plen.setdefault(plen, {})
            for prefix, lst in bucket.items():
                mb.setdefault(prefix, []).extend(lst)
    merged.plens = sorted(merged.by_plen, reverse=True)
    return merged


def inet_addr_type(net, addr):
    """RTN_LOCAL, RTN_BROADCAST or RTN_UNICAST for addr, as this node sees it."""
    if addr == INADDR_BROADCAST:
        return RTN_BROADCAST
    fa = net.proto["fib"][RT_TABLE_LOCAL].lookup(addr)
    if fa is not None:
        return fa.type
    return RTN_UNICAST


def fib_route_add(net, dst, plen, dev=None, gw=0, type=RTN_UNICAST, scope=None,
                  protocol=RTPROT_STATIC, priority=0, prefsrc=0, table=RT_TABLE_MAIN):
    """`ip route add`: checks as fib_create_info does, then inserts."""
    if plen < 0 or plen > 32 or dst & ~inet_make_mask(plen) & 0xFFFFFFFF:
        raise KernelError(errno.EINVAL, "invalid prefix")
    if gw:
        # The gateway must be reachable on a connected (link-scope) route.
        via = net.proto["fib"][RT_TABLE_MAIN].lookup(gw)
        if via is None or via.gw or (dev is not None and via.dev is not dev):
            raise KernelError(errno.ENETUNREACH, "gateway %s unreachable" % inet_ntoa(gw))
        dev = via.dev
    if dev is None and type == RTN_UNICAST:
        raise KernelError(errno.ENODEV, "no device for route")
    if scope is None:
        scope = RT_SCOPE_UNIVERSE if gw else (RT_SCOPE_HOST if type == RTN_LOCAL else RT_SCOPE_LINK)
    fa = FibAlias(dst, plen, type, dev, gw, scope, protocol, priority, prefsrc, table)
    net.proto["fib"][table].insert(fa)
    rt_cache_flush(net)
    return fa


def fib_route_del(net, dst, plen, gw=None, dev=None, table=RT_TABLE_MAIN):
    n = net.proto["fib"][table].delete(
        lambda fa: fa.dst == dst and fa.plen == plen and (gw is None or fa.gw == gw)
        and (dev is None or fa.dev is dev))
    if not n:
        raise KernelError(errno.ESRCH, "no such route")
    rt_cache_flush(net)


def rt_cache_flush(net):
    """Routes changed: every cached dst (sockets, nexthops) must be made again."""
    rt_genid_bump_ipv4(net)


def ip_route_output_key(net, daddr, saddr=0, oif=0):
    """The output route to daddr (ip_route_output_flow): an Rtable or ENETUNREACH."""
    merged = net.proto["fib_merged"]          # fib_lookup, written out
    if merged is None:
        merged = net.proto["fib_merged"] = fib_merge(net.proto["fib"])
    fa = merged.lookup(daddr)
    if fa is None or fa.type not in (RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST):
        raise KernelError(errno.ENETUNREACH, "network unreachable")
    if oif and fa.dev is not None and fa.dev.ifindex != oif and fa.type == RTN_UNICAST:
        raise KernelError(errno.ENETUNREACH, "network unreachable via that device")
    if daddr == INADDR_BROADCAST:
        # Limited broadcast leaves on the device the route picks, never via a
        # gateway (ip_route_output_key_hash_rcu: RTN_BROADCAST for lbcast).
        cache = net.proto.setdefault("rt_lbcast_cache", {})
        rt = cache.get(fa.dev.ifindex)
        if rt is None or rt.rt_genid != net.rt_genid:
            ops = net.proto["ipv4_dst_ops"]
            rt = cache[fa.dev.ifindex] = Rtable(RTN_BROADCAST, fa.dev, 0, ops.local_deliver,
                                                ops.output, fa.prefsrc, net.rt_genid)
        return rt
    rt = fa.rth_output
    if rt is None or rt.rt_genid != net.rt_genid:     # rt_cache_valid
        dev = fa.dev
        if fa.type == RTN_LOCAL:
            # Traffic to our own addresses goes through lo, as in Linux.
            dev = net.dev_by_name.get("lo", dev)
        ops = net.proto["ipv4_dst_ops"]
        rt = Rtable(fa.type, dev, fa.gw, ops.local_deliver, ops.output, fa.prefsrc,
                    net.rt_genid)
        fa.rth_output = rt
    return rt


def ip_route_output_flow(net, daddr, saddr=0, oif=0):
    """The send path's route lookup (ip_route_output_flow -> ip_route_output_key)."""
    tracer = net.tracer
    if tracer is not None:
        tracer.send_hit("ip_route_output_flow")
    return ip_route_output_key(net, daddr, saddr, oif)


def ip_route_input_noref(skb, daddr, saddr, tos, dev):
    """Choose dst.input for a received packet; returns 0 or a negative errno
    (ip_route_input_slow; -EINVAL is a martian, see ip_input.ip_drop_martian)."""
    net = dev.net
    ops = net.proto["ipv4_dst_ops"]
    # Martian sources (RFC 1812 5.3.7): never valid as a source address.
    if saddr == INADDR_BROADCAST or (saddr & 0xF0000000) == 0xE0000000 or \
            ((saddr & 0xFF000000) == 0x7F000000 and dev.name != "lo"):
        return -errno.EINVAL
    if daddr == INADDR_BROADCAST or (saddr == 0 and daddr == 0):
        if saddr and fib_validate_source(net, saddr, dev):      # brd_input
            return -errno.EINVAL
        skb.dst = _local_rt(net, dev, RTN_BROADCAST, ops.local_deliver)
        return 0
    if (daddr & 0xF0000000) == 0xE0000000:
        return -errno.EINVAL         # multicast routing: not modelled
    # Martians that fib_lookup would not catch (ip_route_input_slow): 0/8 on
    # either side, and 127/8 as destination anywhere but lo (route_localnet=0).
    if (saddr & 0xFF000000) == 0 or (daddr & 0xFF000000) == 0 or \
            ((daddr & 0xFF000000) == 0x7F000000 and dev.name != "lo"):
        return -errno.EINVAL
    merged = net.proto["fib_merged"]          # fib_lookup, written out
    if merged is None:
        merged = net.proto["fib_merged"] = fib_merge(net.proto["fib"])
    fa = merged.lookup(daddr)
    if fa is None:
        return -errno.ENETUNREACH
    if fa.type in (RTN_LOCAL, RTN_BROADCAST):
        # fib_validate_source's common answer (a source not ours) and
        # _local_rt's cached route, written out.
        if saddr in net.proto.get("inet_addr_lst", ()) and fib_validate_source(net, saddr, dev):
            return -errno.EINVAL
        rt = net.proto.setdefault("rt_local_cache", {}).get((dev.ifindex, fa.type))
        if rt is None or rt.rt_genid != net.rt_genid:
            rt = _local_rt(net, dev, fa.type, ops.local_deliver)
        skb.dst = rt
        return 0
    if fa.type != RTN_UNICAST:
        return -errno.EHOSTUNREACH
    if not net.sysctl["net.ipv4.ip_forward"]:
        return -errno.EHOSTUNREACH    # not a router (ip_route_input_slow: !IN_DEV_FORWARD)
    if fib_validate_source(net, saddr, dev):                    # __mkroute_input
        return -errno.EINVAL
    rt = fa.rth_input
    if rt is None or rt.rt_genid != net.rt_genid:     # rt_cache_valid
        rt = Rtable(RTN_UNICAST, fa.dev, fa.gw, ops.forward, ops.output, 0, net.rt_genid)
        fa.rth_input = rt
    skb.dst = rt
    return 0


def fib_validate_source(net, saddr, dev):
    """0, or -EINVAL for a packet from the wire claiming one of our own addresses
    as its source, unless accept_local (fib_validate_source with rp_filter=0: the
    inet_lookup_ifaddr_rcu check; drop reason IP_LOCAL_SOURCE, no SNMP counter).

    Emulation note: what a node sends itself comes back through lo without its
    dst (loopback_xmit), so lo is exempt, as Linux's loopback traffic never gets here.
    """
    if saddr not in net.proto.get("inet_addr_lst", ()) or dev.flags & IFF_LOOPBACK:
        return 0
    from .devinet import IN_DEV_ORCONF
    if IN_DEV_ORCONF(dev, "accept_local"):
        return 0
    return -errno.EINVAL


def _local_rt(net, dev, rt_type, input):
    cache = net.proto.setdefault("rt_local_cache", {})
    key = (dev.ifindex, rt_type)
    rt = cache.get(key)
    if rt is None or rt.rt_genid != net.rt_genid:
        rt = cache[key] = Rtable(rt_type, dev, 0, input, None, 0, net.rt_genid)
    return rt


# ------------------------------------------------------------------ PMTU exceptions
# (fib_nh_exception: a smaller path MTU learned from ICMP, per destination)

def ip_dst_mtu(net, rt, daddr):
    """The path MTU toward daddr: the device's, lowered by ICMP frag-needed (RFC 1191)."""
    mtu = dst_mtu(rt)
    exc = net.proto["fnhe"].get(daddr) if net.proto["fnhe"] else None
    if exc is not None:
        pmtu, expires = exc
        if expires > net.clock():
            return min(mtu, pmtu)
        del net.proto["fnhe"][daddr]
    return mtu


FNHE_MAX = 2048     # Linux bounds its exceptions too (FNHE_HASH_SIZE, FNHE_RECLAIM_DEPTH)


IP_PMTUDISC_DONT = 0      # IP_MTU_DISCOVER values (uapi linux/in.h)
IP_PMTUDISC_WANT = 1
IP_PMTUDISC_DO = 2
IP_PMTUDISC_PROBE = 3


def ip_skb_dst_mtu(skb):
    """The MTU an outgoing skb must fit: its route's, or a smaller learned PMTU;
    the device's for a socket with IP_PMTUDISC_PROBE or above (ip_sk_use_pmtu)."""
    rt = skb.dst
    sk = skb.sk
    if sk is not None and getattr(sk, "pmtudisc", 0) >= IP_PMTUDISC_PROBE:
        return rt.dev.mtu
    net = rt.dev.net
    if not net.proto["fnhe"]:     # the common case: nothing learned, no header read
        return dst_mtu(rt)
    nh = skb.network_header
    return ip_dst_mtu(net, rt, int.from_bytes(skb.buf[nh + 16:nh + 20], "big"))


def ip_sk_dont_fragment(sk, total, mtu):
    """DF for a datagram of total bytes (__ip_make_skb): always with PMTUDISC_DO/PROBE,
    which refuse what does not fit (EMSGSIZE); with WANT only when it fits. mtu is
    the path's, or with PROBE and above the device's (ip_sk_use_pmtu)."""
    if sk.pmtudisc >= IP_PMTUDISC_DO:
        if total > mtu:
            raise KernelError(errno.EMSGSIZE)
        return True
    return sk.pmtudisc == IP_PMTUDISC_WANT and total <= mtu


def ip_rt_update_pmtu(net, daddr, mtu):
    """Remember a smaller path MTU for daddr for 10 minutes (ip_rt_mtu_expires).

    As __ip_rt_update_pmtu, a report that would raise the path MTU is ignored, so
    a forged ICMP cannot undo what PMTU discovery learned.
    """
    if mtu < 552:
        mtu = 552         # ip_rt_min_pmtu
    table = net.proto["fnhe"]
    try:
        rt = ip_route_output_key(net, daddr)
    except KernelError:
        return
    if ip_dst_mtu(net, rt, daddr) <= mtu:
        return
    net.send_epoch += 1       # a smaller path MTU may make a send EMSGSIZE
    table.pop(daddr, None)
    if len(table) >= FNHE_MAX:
        now = net.clock()
        for key in [k for k, (_, exp) in table.items() if exp <= now]:
            del table[key]
        while len(table) >= FNHE_MAX:
            del table[next(iter(table))]        # the oldest exception goes first
    table[daddr] = (mtu, net.clock() + 600.0)


# ------------------------------------------------------------------ IP IDs

# Emulation note: Linux sizes ip_idents at boot from the memory size (at
# least 2048 buckets, shared by every net); emu gives each net the minimum,
# 2048, and fills a bucket's random start when it is first used.
IP_IDENTS_SZ = 2048
IP_ID_HASHES_MAX = 4096


def ip_idents_reserve(net, hash, segs):
    """Reserve segs consecutive IDs in hash's bucket (route.c ip_idents_reserve).

    A bucket idle for a while jumps by a random amount below the jiffies it
    was idle, so that a probe cannot count the packets sent between two of
    its own (Amit Klein's off-path attacks).
    """
    idents = net.proto.get("ip_idents")
    if idents is None:
        idents = net.proto["ip_idents"] = {}
    bucket = hash & (IP_IDENTS_SZ - 1)
    slot = idents.get(bucket)
    if slot is None:
        # prandom_bytes(ip_idents) at boot; ip_tstamps start zeroed (HASH_ZERO).
        slot = idents[bucket] = [net.rng.get_random_u32(), 0]
    now = jiffies(net) & 0xFFFFFFFF
    old = slot[1]
    delta = 0
    if old != now:
        slot[1] = now
        delta = net.rng.get_random_u32_below((now - old) & 0xFFFFFFFF)
    slot[0] = (slot[0] + segs + delta) & 0xFFFFFFFF
    return (slot[0] - segs) & 0xFFFFFFFF


def __ip_select_ident(net, saddr, daddr, protocol, segs):
    """The ID of a datagram no connected socket numbers (route.c __ip_select_ident):
    one of 2048 counters, picked by a keyed hash of (daddr, saddr, protocol)."""
    hashes = net.proto.get("ip_id_hashes")
    if hashes is None:
        hashes = net.proto["ip_id_hashes"] = {}
    h = hashes.get((daddr, saddr, protocol))
    if h is None:
        key = net.proto.get("ip_id_key")
        if key is None:
            key = net.proto["ip_id_key"] = (net.rng.get_random_u64(), net.rng.get_random_u64())
        # iph->daddr and saddr are big-endian words read as host (little-endian) u32s.
        h = siphash_3u32(int.from_bytes(daddr.to_bytes(4, "big"), "little"),
                         int.from_bytes(saddr.to_bytes(4, "big"), "little"), protocol, key) & 0xFFFFFFFF
        # Emulation note: the hash of a flow is remembered (it is a pure function
        # of the net's key and the three words): SipHash in Python costs about
        # as much as the rest of an ICMP echo's IP layer. Bounded, as a cache.
        if len(hashes) >= IP_ID_HASHES_MAX:
            hashes.clear()
        hashes[(daddr, saddr, protocol)] = h
    return ip_idents_reserve(net, h, segs) & 0xFFFF
