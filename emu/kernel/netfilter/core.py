"""Netfilter hook points: NF_HOOK between each function and its _finish.

Linux: net/netfilter/core.c, include/linux/netfilter.h

A hook function returns NF_ACCEPT, NF_DROP or NF_STOLEN. With no hooks
registered NF_HOOK costs a dict lookup and calls okfn directly.
"""
from ..core.skbuff import SKB_DROP_REASON_NETFILTER_DROP, kfree_skb

NF_DROP = 0
NF_ACCEPT = 1
NF_STOLEN = 2

NF_INET_PRE_ROUTING = 0
NF_INET_LOCAL_IN = 1
NF_INET_FORWARD = 2
NF_INET_LOCAL_OUT = 3
NF_INET_POST_ROUTING = 4
NF_INET_NUMHOOKS = 5
NF_HOOK_NAMES = ("NF_INET_PRE_ROUTING", "NF_INET_LOCAL_IN", "NF_INET_FORWARD",
                 "NF_INET_LOCAL_OUT", "NF_INET_POST_ROUTING")


def nf_hooks_init(net):
    net.proto["nf_hooks"] = [[] for _ in range(NF_INET_NUMHOOKS)]


def nf_register_net_hook(net, hooknum, fn, priority=0):
    hooks = net.proto["nf_hooks"][hooknum]
    hooks.append((priority, fn))
    hooks.sort(key=lambda h: h[0])


def nf_unregister_net_hook(net, hooknum, fn):
    hooks = net.proto["nf_hooks"][hooknum]
    hooks[:] = [h for h in hooks if h[1] is not fn]


def nf_hook_slow(hook, net, skb, indev, outdev):
    """Run the hooks of one point when there are some: 1 if they all accept
    (the caller goes on to okfn), else 0 (dropped and freed, or stolen).

    The hot paths call it only when the point has hooks (the test of
    nf_hook's static key) and record the point's trace hit themselves, so a
    packet's trace and the hooks' verdicts are those of NF_HOOK.
    """
    for _, fn in net.proto["nf_hooks"][hook]:
        verdict = fn(hook, skb, indev, outdev)
        if verdict == NF_ACCEPT:
            continue
        if verdict == NF_DROP:
            kfree_skb(skb, SKB_DROP_REASON_NETFILTER_DROP)
        return 0
    return 1


def NF_HOOK(hook, net, skb, indev, outdev, okfn):
    """Run the hooks of one point; call okfn(skb) if they all accept."""
    if skb.trace is not None:
        skb.trace.hit(NF_HOOK_NAMES[hook])
    hooks = net.proto["nf_hooks"][hook]
    for _, fn in hooks:
        verdict = fn(hook, skb, indev, outdev)
        if verdict == NF_ACCEPT:
            continue
        if verdict == NF_DROP:
            kfree_skb(skb, SKB_DROP_REASON_NETFILTER_DROP)
        return -1
    return okfn(skb)
