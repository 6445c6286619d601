"""Cached routes (dst entries) and when they stop being valid.

Linux: net/core/dst.c, include/net/dst.h (dst_check), include/net/sock.h
(__sk_dst_check, sk_dst_set), net/ipv4/route.c (ipv4_dst_check, rt_is_expired,
rt_cache_valid), include/net/net_namespace.h (rt_genid_bump_ipv4).

A dst carries the generation (rt_genid) of the routing state it was made
from. Anything that can change a lookup's answer (a route added or deleted,
an address added or removed, a device going down, a carrier change) bumps
the namespace's generation (rt_cache_flush -> rt_genid_bump_ipv4), so every
cached dst (a socket's sk_dst_cache and sk_rx_dst, a nexthop's cached
input/output route) fails its next dst_check and is looked up again. A
learned path MTU (fnhe) is not a lookup change: it is read on each use.
"""


def rt_genid_bump_ipv4(net):
    """Invalidate every cached IPv4 dst of net."""
    net.rt_genid += 1
    net.send_epoch += 1        # the runtime's send credits were given under the old routes


def rt_is_expired(rt, net):
    return rt.rt_genid != net.rt_genid


def dst_check(dst, net):
    """The dst if still valid (ipv4_dst_check), else None."""
    if dst is not None and dst.rt_genid == net.rt_genid:
        return dst
    return None


def __sk_dst_check(sk):
    """The socket's cached output route if still valid; a stale one is dropped."""
    dst = sk.sk_dst_cache
    if dst is not None and dst.rt_genid != sk.net.rt_genid:
        sk.sk_dst_cache = None
        return None
    return dst


def sk_dst_set(sk, dst):
    sk.sk_dst_cache = dst


def sk_dst_reset(sk):
    sk.sk_dst_cache = None
