"""The control API: links, addresses, routes, neighbours, FDB, sysctls, counters.

Linux: net/core/rtnetlink.c, net/ipv4/devinet.c (inet_rtm_newaddr),
net/ipv4/fib_frontend.c (inet_rtm_newroute), net/bridge/br_netlink.c

Every request is a dict and every answer is plain data (msgpack-able): the
node's control endpoint, the orchestrator and the shell tools (ip, bridge,
sysctl, ...) all configure a node through these functions and nothing else.
"""
import errno
from typing import Any, Callable

from ..bridge.br_device import br_dev_setup
from ..bridge.br_fdb import br_fdb_dump
from ..drivers.veth import veth_newlink
from ..ethernet.eth import eth_hw_addr_derive
from ..hdr.if_ether import mac_from_str, mac_to_str
from ..hdr.ip import inet_aton, inet_ntoa
from ..ipv4.devinet import inet_addr_add, inet_addr_del, inet_dump_ifaddr
from ..ipv4.inet_diag import inet_diag_dump
from ..netfilter.ip_tables import ipt_flush, ipt_policy, ipt_rule_add, ipt_rule_del, ipt_show
from ..ipv4.route import RT_TABLE_LOCAL, RT_TABLE_MAIN, fib_route_add, fib_route_del
from .dev import KernelError, dev_close, dev_open, dev_set_mtu, register_netdevice, unregister_netdevice
from .neighbour import NUD_NOARP, NUD_PERMANENT, neigh_delete, neigh_dump
from .link_watch import netif_carrier_off, netif_carrier_on
from .netdevice import IFF_NAMES, IFF_RUNNING
from .trace import TraceFilter, Tracer


def _dev(net, name):
    dev = net.dev_by_name.get(name)
    if dev is None:
        raise KernelError(errno.ENODEV, "Cannot find device \"%s\"" % name)
    return dev


def _cidr(text):
    try:
        ip, _, plen = text.partition("/")
        return inet_aton(ip), int(plen) if plen else 32
    except (OSError, ValueError):
        raise KernelError(errno.EINVAL, "invalid prefix %r" % text) from None


def rtnl_newlink(net, name, kind, mac=None, mtu=None, port=None, peer=""):
    """ip link add NAME type veth|bridge."""
    mac_b = mac_from_str(mac) if mac else eth_hw_addr_derive(net.name, name)
    if kind == "veth":
        dev = veth_newlink(net, name, mac_b, mtu, port, peer)      # the kind's ops->newlink
    elif kind == "bridge":
        dev = br_dev_setup(name, mac_b)
        if mtu is not None:
            dev.mtu = mtu
        dev.rx_cpu = len(net.dev_by_name) % len(net.cpus)
        register_netdevice(net, dev)
    else:
        raise KernelError(errno.EOPNOTSUPP, "unknown link kind %r" % kind)
    return {"ifindex": dev.ifindex, "name": dev.name}


def rtnl_dellink(net, name):
    unregister_netdevice(_dev(net, name))
    return {}


def rtnl_setlink(net, name, up=None, mtu=None, master=None, rx_cpu=None):
    """ip link set NAME [up|down] [mtu N] [master BR | nomaster]."""
    dev = _dev(net, name)
    if mtu is not None:
        dev_set_mtu(dev, int(mtu))
    if master is not None:
        if dev.master is not None:
            dev.master.netdev_ops.ndo_del_slave(dev.master, dev)
        if master:
            br = _dev(net, master)
            if br.netdev_ops.ndo_add_slave is None:
                raise KernelError(errno.EOPNOTSUPP, "%s is not a master device" % master)
            br.netdev_ops.ndo_add_slave(br, dev)
    if rx_cpu is not None:
        if not 0 <= rx_cpu < len(net.cpus):
            raise KernelError(errno.EINVAL, "no cpu %d" % rx_cpu)
        dev.rx_cpu = rx_cpu
    if up is True:
        dev_open(dev)
    elif up is False:
        dev_close(dev)
    return {}


def rtnl_carrier(net, name, up):
    """The driver reports its link partner gone or back (netif_carrier_off/on).

    Emulation note: no rtnetlink message does this in Linux (IFLA_CARRIER
    only exists for some drivers); emu's wires report carrier through it.
    """
    dev = _dev(net, name)
    (netif_carrier_on if up else netif_carrier_off)(dev)
    return {"carrier": dev.carrier, "operstate": dev.operstate}


def _flags(dev):
    return [n for bit, n in IFF_NAMES if dev.flags & bit]


def rtnl_getlink(net, name=None, stats=False):
    """ip [-s] link show."""
    out = []
    for dev in net.devices():
        if name is not None and dev.name != name:
            continue
        row = {"ifindex": dev.ifindex, "name": dev.name, "kind": dev.kind,
               "flags": _flags(dev), "mtu": dev.mtu, "operstate": dev.operstate,
               "mac": mac_to_str(dev.dev_addr), "brd": mac_to_str(dev.broadcast),
               "master": dev.master.name if dev.master is not None else None,
               "qdisc": dev.qdisc.kind if dev.qdisc is not None else "noqueue",
               "txqlen": dev.tx_queue_len, "link_type": "loopback" if dev.kind == "loopback" else "ether",
               "peer": getattr(dev.priv, "peer_name", None) if dev.kind == "veth" else None,
               "running": bool(dev.flags & IFF_RUNNING), "carrier": bool(dev.carrier),
               "carrier_changes": dev.carrier_up_count + dev.carrier_down_count}
        if stats:
            row["stats"] = dev.stats.as_dict()
        out.append(row)
    if name is not None and not out:
        raise KernelError(errno.ENODEV, "Device \"%s\" does not exist." % name)
    return out


def inet_rtm_newaddr(net, dev, address):
    d = _dev(net, dev)
    ip, plen = _cidr(address)
    inet_addr_add(d, ip, plen)
    return {}


def inet_rtm_deladdr(net, dev, address):
    d = _dev(net, dev)
    ip, plen = _cidr(address)
    inet_addr_del(d, ip, plen)
    return {}


def inet_dump_addr(net, dev=None):
    return [{"ifindex": d.ifindex, "name": d.name, "flags": _flags(d), "mtu": d.mtu,
             "operstate": d.operstate, "mac": mac_to_str(d.dev_addr),
             "addrs": inet_dump_ifaddr(d)}
            for d in net.devices() if dev is None or d.name == dev]


def inet_rtm_newroute(net, dst, via=None, dev=None, metric=0):
    """ip route add DST [via GW] [dev DEV] [metric N]."""
    ip, plen = (0, 0) if dst == "default" else _cidr(dst)
    gw = inet_aton(via) if via else 0
    fib_route_add(net, ip, plen, dev=_dev(net, dev) if dev else None, gw=gw,
                  priority=int(metric))
    return {}


def inet_rtm_delroute(net, dst, via=None, dev=None):
    ip, plen = (0, 0) if dst == "default" else _cidr(dst)
    fib_route_del(net, ip, plen, gw=inet_aton(via) if via else None,
                  dev=_dev(net, dev) if dev else None)
    return {}


def inet_dump_fib(net, table="main"):
    tables = net.proto["fib"]
    ids = {"main": [RT_TABLE_MAIN], "local": [RT_TABLE_LOCAL],
           "all": [RT_TABLE_LOCAL, RT_TABLE_MAIN]}.get(table)
    if ids is None:
        raise KernelError(errno.EINVAL, "table %r" % table)
    return [fa.describe() for tb in ids for fa in tables[tb].routes()]


def neigh_show(net):
    return neigh_dump(net.proto["arp_tbl"])


def neigh_flush(net, dev=None):
    """ip neigh flush [dev DEV]: forget the dynamic entries (not PERMANENT/NOARP)."""
    tbl = net.proto["arp_tbl"]
    d = _dev(net, dev) if dev else None
    gone = [n for n in tbl.hash.values() if (d is None or n.dev is d)
            and not n.nud_state & (NUD_PERMANENT | NUD_NOARP)]
    for n in gone:
        neigh_delete(tbl, n)
    return {"flushed": len(gone)}


def inet_rtm_getroute(net, dst):
    """ip route get ADDR: the route this node's own traffic to ADDR takes."""
    from ..ipv4.devinet import inet_select_addr
    from ..ipv4.route import RTN_BROADCAST, RTN_LOCAL, ip_route_output_key
    daddr = inet_aton(dst)
    rt = ip_route_output_key(net, daddr)
    kind = {RTN_LOCAL: "local", RTN_BROADCAST: "broadcast"}.get(rt.rt_type, "unicast")
    src = rt.prefsrc or inet_select_addr(rt.dev, daddr)
    return {"type": kind, "dst": dst, "via": inet_ntoa(rt.rt_gw4) if rt.rt_gw4 else None,
            "dev": "lo" if kind == "local" else rt.dev.name,
            "src": inet_ntoa(src) if src else None}


def br_fdb_show(net, br=None):
    rows = []
    for dev in net.devices():
        if dev.kind == "bridge" and (br is None or dev.name == br):
            rows.extend(br_fdb_dump(dev.priv))
    return rows


def sysctl_get(net, name=None):
    if name is None:
        return dict(net.sysctl)
    if name not in net.sysctl:
        raise KernelError(errno.ENOENT, "sysctl: cannot stat /proc/sys/%s" % name.replace(".", "/"))
    return net.sysctl[name]


# The bounds Linux's ctl_tables give (extra1, extra2 of proc_dointvec_minmax
# and proc_dou8vec_minmax; net/ipv4/sysctl_net_ipv4.c, net/core/sysctl_net_core.c),
# per value of a vector. Out of range is EINVAL and changes nothing: without
# them `sysctl -w net.ipv4.ip_default_ttl=999` was stored and every later send
# oopsed building its header. Any other integer is a C int (proc_dointvec).
INT_MAX = 2**31 - 1
SYSCTL_RANGES = {
    "net.ipv4.ip_default_ttl": (1, 255),            # ip_ttl_min, ip_ttl_max
    "net.ipv4.ip_local_port_range": (1, 65535),     # ipv4_local_port_range (and low <= high)
    "net.ipv4.tcp_rmem": (1, INT_MAX),              # SYSCTL_ONE
    "net.ipv4.tcp_wmem": (1, INT_MAX),
    "net.ipv4.tcp_syn_retries": (1, 127),           # tcp_syn_retries_min, MAX_TCP_SYNCNT
    "net.ipv4.tcp_synack_retries": (0, 255),        # u8
    "net.ipv4.tcp_retries1": (0, 255),              # tcp_retr1_max
    "net.ipv4.tcp_app_win": (0, 31),                # tcp_app_win_max
    "net.ipv4.tcp_min_tso_segs": (1, 255),          # u8, SYSCTL_ONE
    "net.core.dev_weight": (1, INT_MAX),            # proc_do_dev_weight
    "net.core.somaxconn": (0, INT_MAX),
    "net.ipv4.icmp_msgs_per_sec": (0, INT_MAX),
    "net.ipv4.icmp_msgs_burst": (0, INT_MAX),
}


def _sysctl_check(name, new):
    """proc_handler's checks: EINVAL out of range, ENOENT for an unknown algorithm."""
    lo, hi = SYSCTL_RANGES.get(name, (-INT_MAX - 1, INT_MAX))
    values = new if isinstance(new, tuple) else (new,)
    if any(isinstance(v, int) and not lo <= v <= hi for v in values):
        raise ValueError(new)
    if name == "net.ipv4.ip_local_port_range" and new[1] < new[0]:
        raise ValueError(new)
    if name == "net.ipv4.tcp_congestion_control":
        from ..ipv4.tcp_cong import tcp_available_congestion_control
        if new not in tcp_available_congestion_control():   # tcp_set_default_congestion_control
            raise KernelError(errno.ENOENT, 'sysctl: setting key "%s": No such file or directory'
                              % name)


def sysctl_parse(table, name, value):
    """What `sysctl -w name=value` would store, given the table of current
    values (a Net's sysctl): the value in its type, or KernelError as
    sysctl_set raises it. Stores nothing (topology files are checked with it)."""
    if name not in table:
        raise KernelError(errno.ENOENT, "sysctl: cannot stat /proc/sys/%s" % name.replace(".", "/"))
    old = table[name]
    try:
        if isinstance(old, tuple):
            parts = value.split() if isinstance(value, str) else list(value)
            if len(parts) != len(old):
                raise ValueError(value)
            new = tuple(int(p) for p in parts)
        else:
            new = type(old)(value)
        _sysctl_check(name, new)
    except (TypeError, ValueError):
        raise KernelError(errno.EINVAL, 'sysctl: setting key "%s": Invalid argument' % name) from None
    return new


def sysctl_set(net, name, value):
    new = net.sysctl[name] = sysctl_parse(net.sysctl, name, value)
    return new


def counters(net):
    """Everything countable: MIBs, softnet_stat, devices, drops, bridges, ARP."""
    bridges = {d.name: dict(d.priv.counters) for d in net.devices() if d.kind == "bridge"}
    snmp = {k: dict(v) for k, v in net.mib.items()}
    # As snmp_seq_show_ipstats, these two are read from the sysctls, not counted.
    snmp["Ip"]["Forwarding"] = 1 if net.sysctl["net.ipv4.ip_forward"] else 2
    snmp["Ip"]["DefaultTTL"] = net.sysctl["net.ipv4.ip_default_ttl"]
    return {"snmp": snmp,
            "softnet_stat": [sd.softnet_stat() for sd in net.cpus],
            "dev": {d.name: d.stats.as_dict() for d in net.devices()},
            "drop_reasons": dict(net.drop_reasons),
            "bridge": bridges,
            "neigh": dict(net.proto["arp_tbl"].stats),
            "oops": net.oops}


def trace_start(net, proto=None, host=None, port=None, ring=4096, node_id=0):
    """Start tracing packets that match (proto, host, port) into a ring."""
    filt = TraceFilter(proto, inet_aton(host) if host else None, port)
    net.tracer = Tracer(net, filt, ring, id_base=(node_id & 0xFFFF) << 40)
    return {}


def trace_stop(net):
    net.tracer = None
    return {}


def trace_dump(net, clear=False):
    if net.tracer is None:
        return []
    return [list(r) for r in net.tracer.dump(clear)]


RTNL_OPS: dict[str, Callable[..., Any]] = {
    "link_add": rtnl_newlink, "link_del": rtnl_dellink, "link_set": rtnl_setlink,
    "link_show": rtnl_getlink, "addr_add": inet_rtm_newaddr, "addr_del": inet_rtm_deladdr,
    "addr_show": inet_dump_addr, "route_add": inet_rtm_newroute,
    "route_del": inet_rtm_delroute, "route_show": inet_dump_fib, "neigh_show": neigh_show,
    "route_get": inet_rtm_getroute, "neigh_flush": neigh_flush,
    "link_carrier": rtnl_carrier, "fdb_show": br_fdb_show, "sysctl_get": sysctl_get, "sysctl_set": sysctl_set,
    "counters": counters, "trace_start": trace_start, "trace_stop": trace_stop,
    "trace_dump": trace_dump,
    "nf_rule_add": ipt_rule_add, "nf_rule_del": ipt_rule_del, "nf_flush": ipt_flush,
    "nf_policy": ipt_policy, "nf_show": ipt_show,
    "sock_diag": lambda net, info=False, ext=False: inet_diag_dump(net, info, ext),
    "packet_diag": lambda net: _packet_diag(net),  # noqa: PLW0108 (defined below)
    "sockstat": lambda net: _sockstat(net),  # noqa: PLW0108
}


def _packet_diag(net):
    from ..packet.af_packet import packet_diag_dump
    return packet_diag_dump(net)


def _sockstat(net):
    from ..ipv4.inet_diag import sockstat_seq_show
    return sockstat_seq_show(net)


# ---------------------------------------------------------------- NIC, queue and qdisc ops
# (ethtool -S/-k/-K/-G/-C/-X, rps_cpus and IRQ affinity per queue, tc qdisc;
# see ethtool.py and sched/sch_api.py) and the sysctls that act when written
# (proc_handler). Kept together at the end of the file.
from .ethtool import ETHTOOL_OPS  # noqa: E402
from .napi import flow_limit_update  # noqa: E402
from ..ipv4.devinet import DEVCONF_HANDLERS  # noqa: E402
from ..sched.sch_api import TC_OPS  # noqa: E402

SYSCTL_HANDLERS = {
    "net.core.flow_limit_cpu_bitmap": flow_limit_update,
    "net.core.flow_limit_table_len": flow_limit_update,
}
SYSCTL_HANDLERS.update(DEVCONF_HANDLERS)


def ipv4_sysctl_rtcache_flush(net):
    """/proc/sys/net/ipv4/route/flush: what `ip route flush cache` writes."""
    from ..ipv4.route import rt_cache_flush
    rt_cache_flush(net)


SYSCTL_HANDLERS["net.ipv4.route.flush"] = ipv4_sysctl_rtcache_flush


def sysctl_set_handled(net, name, value):
    """sysctl -w: store the value, then run the sysctl's handler if it has one."""
    result = sysctl_set(net, name, value)
    handler = SYSCTL_HANDLERS.get(name)
    if handler is not None:
        handler(net)
    return result


RTNL_OPS.update(ETHTOOL_OPS)
RTNL_OPS.update(TC_OPS)
RTNL_OPS["sysctl_set"] = sysctl_set_handled

from .rtnl_policy import RTNL_POLICY, rtnl_policy_check, rtnl_validate  # noqa: E402

rtnl_policy_check(RTNL_OPS)


def rtnl_rcv(net, op, args, **runtime):
    """One control request: checked against its policy, then run (rtnetlink_rcv_msg).

    `runtime` carries what only the runtime may set (a trace's node id).
    """
    fn = RTNL_OPS.get(op) if isinstance(op, str) else None
    if fn is None:
        raise KernelError(errno.EOPNOTSUPP, "unknown control op %r" % (op,))
    kw = rtnl_validate(op, RTNL_POLICY[op], fn, args)
    kw.update(runtime)
    return fn(net, **kw)
