"""IPv4 addresses on devices: in_device, in_ifaddr, and their routes.

Linux: net/ipv4/devinet.c, net/ipv4/fib_frontend.c (fib_add_ifaddr)
"""
import errno

from ..core.dev import KernelError
from ..core.netdevice import IFF_UP
from ..hdr.ip import inet_make_mask, inet_ntoa
from .route import (
    RT_SCOPE_HOST, RT_SCOPE_LINK, RT_TABLE_LOCAL, RT_TABLE_MAIN, RTN_BROADCAST,
    RTN_LOCAL, RTN_UNICAST, RTPROT_KERNEL, fib_route_add, rt_cache_flush,
)


class InIfaddr:
    """struct in_ifaddr: one address on a device."""

    __slots__ = ("local", "prefixlen", "mask", "broadcast", "label", "scope")

    def __init__(self, local, prefixlen, label, scope=0):
        self.local = local
        self.prefixlen = prefixlen
        self.mask = inet_make_mask(prefixlen)
        self.broadcast = (local | ~self.mask) & 0xFFFFFFFF if prefixlen < 31 else 0
        self.label = label
        self.scope = scope


class InDevice:
    """struct in_device: the IPv4 side of a net_device."""

    __slots__ = ("dev", "ifa_list")

    def __init__(self, dev):
        self.dev = dev
        self.ifa_list = []


def in_dev_get(dev, create=False):
    if dev.ip_ptr is None and create:
        dev.ip_ptr = InDevice(dev)
    return dev.ip_ptr


# ---------------------------------------------------------------- ipv4_devconf
# net.ipv4.conf.{all,default,<dev>}.<name>: the settings the header checks read.
DEVCONF_NAMES = ("accept_local", "accept_source_route", "arp_accept", "arp_ignore",
                 "drop_gratuitous_arp", "arp_notify")


def devinet_sysctl_register(dev):
    """A device gets its own conf entries, copied from default (devinet_sysctl_register)."""
    sysctl = dev.net.sysctl
    copied = dev.net.proto.setdefault("devconf_copied", {})
    for name in DEVCONF_NAMES:
        value = sysctl["net.ipv4.conf.default." + name]
        sysctl.setdefault("net.ipv4.conf.%s.%s" % (dev.name, name), value)
        copied[(dev.name, name)] = value


def devinet_sysctl_unregister(dev):
    sysctl = dev.net.sysctl
    copied = dev.net.proto.get("devconf_copied", {})
    for name in DEVCONF_NAMES:
        sysctl.pop("net.ipv4.conf.%s.%s" % (dev.name, name), None)
        copied.pop((dev.name, name), None)


def devinet_copy_dflt_conf(net, name):
    """conf.default.<name> was written: devices not set on their own follow it
    (devinet_copy_dflt_conf). Emulation note: 'set on their own' is judged by
    the value still being the copied default, not by Linux's per-entry state bit."""
    sysctl = net.sysctl
    value = sysctl["net.ipv4.conf.default." + name]
    copied = net.proto.setdefault("devconf_copied", {})
    for d in net.devices():
        key = "net.ipv4.conf.%s.%s" % (d.name, name)
        if key in sysctl and sysctl[key] == copied.get((d.name, name)):
            sysctl[key] = value
            copied[(d.name, name)] = value


# sysctl handlers (rtnetlink.SYSCTL_HANDLERS): writing a default propagates it.
DEVCONF_HANDLERS = {"net.ipv4.conf.default." + n:
                    (lambda net, n=n: devinet_copy_dflt_conf(net, n)) for n in DEVCONF_NAMES}


def ipv4_devconf(dev, name):
    """(all, dev) values of one conf setting; a device without entries reads default."""
    sysctl = dev.net.sysctl
    all_ = sysctl["net.ipv4.conf.all." + name]
    own = sysctl.get("net.ipv4.conf.%s.%s" % (dev.name, name))
    if own is None:
        own = sysctl["net.ipv4.conf.default." + name]
    return all_, own


def IN_DEV_ORCONF(dev, name):
    a, d = ipv4_devconf(dev, name)
    return a or d


def IN_DEV_ANDCONF(dev, name):
    a, d = ipv4_devconf(dev, name)
    return a and d


def IN_DEV_MAXCONF(dev, name):
    return max(ipv4_devconf(dev, name))


def inet_addr_add(dev, local, prefixlen, scope=0):
    """`ip addr add LOCAL/PREFIXLEN dev DEV`."""
    if not 0 <= prefixlen <= 32:
        raise KernelError(errno.EINVAL, "bad prefix length")
    net = dev.net
    for d in net.devices():
        for ifa in (d.ip_ptr.ifa_list if d.ip_ptr else ()):
            if ifa.local == local and d is dev:
                raise KernelError(errno.EEXIST, "address exists")
    in_dev = in_dev_get(dev, create=True)
    ifa = InIfaddr(local, prefixlen, dev.name, scope)
    in_dev.ifa_list.append(ifa)
    _ifa_hash(net, ifa)
    if dev.flags & IFF_UP:
        # No announcement here: Linux sends a gratuitous ARP only from
        # inetdev_event (a device coming up, or its address changing) and
        # only with arp_notify set; adding an address sends nothing.
        fib_add_ifaddr(dev, ifa)
    return ifa


def inet_addr_del(dev, local, prefixlen):
    in_dev = dev.ip_ptr
    for ifa in list(in_dev.ifa_list if in_dev else ()):
        if ifa.local == local and ifa.prefixlen == prefixlen:
            in_dev.ifa_list.remove(ifa)
            _ifa_unhash(dev.net, ifa)
            fib_del_ifaddr(dev, ifa)
            return
    raise KernelError(errno.EADDRNOTAVAIL, "no such address")


def fib_add_ifaddr(dev, ifa):
    """The routes an address implies: local, broadcast, and its subnet."""
    net = dev.net
    _add_quiet(net, ifa.local, 32, dev, RTN_LOCAL, RT_SCOPE_HOST, ifa.local, RT_TABLE_LOCAL)
    if ifa.prefixlen < 31 and ifa.broadcast:
        _add_quiet(net, ifa.broadcast, 32, dev, RTN_BROADCAST, RT_SCOPE_LINK, ifa.local,
                   RT_TABLE_LOCAL)
    if ifa.prefixlen < 32 and dev.name != "lo":
        _add_quiet(net, ifa.local & ifa.mask, ifa.prefixlen, dev, RTN_UNICAST,
                   RT_SCOPE_LINK, ifa.local, RT_TABLE_MAIN)
    elif dev.name == "lo":
        _add_quiet(net, ifa.local & ifa.mask, ifa.prefixlen, dev, RTN_LOCAL,
                   RT_SCOPE_HOST, ifa.local, RT_TABLE_LOCAL)


def _add_quiet(net, dst, plen, dev, type, scope, prefsrc, table):
    try:
        fib_route_add(net, dst, plen, dev=dev, type=type, scope=scope,
                      protocol=RTPROT_KERNEL, prefsrc=prefsrc, table=table)
    except KernelError:
        pass


def fib_del_ifaddr(dev, ifa):
    net = dev.net
    for tb in net.proto["fib"].values():
        tb.delete(lambda fa: fa.dev is dev and fa.protocol == RTPROT_KERNEL
                  and fa.prefsrc == ifa.local)
    rt_cache_flush(net)


def inetdev_event(event, dev):
    """Netdevice notifier: routes follow the device up and down."""
    net = dev.net
    if event == "NETDEV_REGISTER":
        devinet_sysctl_register(dev)
    elif event == "NETDEV_UP" and dev.ip_ptr is not None:
        from .arp import arp_gratuitous
        # inetdev_event: NETDEV_UP falls through to NETDEV_CHANGEADDR, which
        # announces the addresses only if IN_DEV_ARP_NOTIFY (arp_notify).
        notify = dev.name != "lo" and IN_DEV_MAXCONF(dev, "arp_notify")
        for ifa in dev.ip_ptr.ifa_list:
            fib_add_ifaddr(dev, ifa)
            if notify:
                arp_gratuitous(dev, ifa.local)
    elif event in ("NETDEV_DOWN", "NETDEV_UNREGISTER"):
        if event == "NETDEV_UNREGISTER":
            devinet_sysctl_unregister(dev)
            for ifa in (dev.ip_ptr.ifa_list if dev.ip_ptr is not None else ()):
                _ifa_unhash(net, ifa)
            if dev.ip_ptr is not None:
                dev.ip_ptr.ifa_list = []
        for tb in net.proto["fib"].values():
            tb.delete(lambda fa: fa.dev is dev)
        rt_cache_flush(net)
        from ..core.neighbour import neigh_ifdown
        neigh_ifdown(net.proto["arp_tbl"], dev)


def inet_lookup_ifaddr(net, addr):
    """Is addr one of this node's addresses, on any device, up or down?
    (inet_lookup_ifaddr_rcu: the inet_addr_lst hash, kept by _ifa_hash/_ifa_unhash)."""
    return addr in net.proto.get("inet_addr_lst", ())


def _ifa_hash(net, ifa):
    lst = net.proto.setdefault("inet_addr_lst", {})
    lst[ifa.local] = lst.get(ifa.local, 0) + 1


def _ifa_unhash(net, ifa):
    lst = net.proto.get("inet_addr_lst", {})
    n = lst.get(ifa.local, 0) - 1
    if n > 0:
        lst[ifa.local] = n
    else:
        lst.pop(ifa.local, None)


def inet_select_addr(dev, dst=0):
    """A source address on dev, preferring one on dst's subnet (inet_select_addr)."""
    in_dev = dev.ip_ptr
    if in_dev is not None and in_dev.ifa_list:
        for ifa in in_dev.ifa_list:
            if dst and (dst & ifa.mask) == (ifa.local & ifa.mask):
                return ifa.local
        return in_dev.ifa_list[0].local
    # No address here: any global address of the node will do.
    for d in dev.net.devices():
        if d.ip_ptr is not None and d.name != "lo":
            for ifa in d.ip_ptr.ifa_list:
                return ifa.local
    return 0


def inet_dump_ifaddr(dev):
    in_dev = dev.ip_ptr
    return [{"local": inet_ntoa(ifa.local), "prefixlen": ifa.prefixlen,
             "broadcast": inet_ntoa(ifa.broadcast) if ifa.broadcast else None,
             "label": ifa.label,
             "scope": "host" if dev.name == "lo" else "global"}
            for ifa in (in_dev.ifa_list if in_dev else ())]
