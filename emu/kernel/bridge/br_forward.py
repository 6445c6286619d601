"""Forwarding and flooding frames out of bridge ports.

Linux: net/bridge/br_forward.c
"""
from ..core.dev import dev_queue_xmit
from ..core.skbuff import consume_skb, skb_clone, skb_push
from ..hdr.if_ether import ETH_HLEN
from .br_private import BR_STATE_FORWARDING


def should_deliver(p, skb):
    """Not back out of the port it came in on, and only on forwarding ports."""
    return p.state == BR_STATE_FORWARDING and p.dev.ifindex != skb.skb_iif \
        and p.dev.flags & 1


def br_dev_queue_push_xmit(skb):
    if skb.trace is not None:
        skb.trace.hit("br_dev_queue_push_xmit", skb.dev.name)
    skb_push(skb, ETH_HLEN)        # data back to the Ethernet header
    return dev_queue_xmit(skb)


def br_forward_finish(skb):
    if skb.trace is not None:
        skb.trace.hit("br_forward_finish")
    return br_dev_queue_push_xmit(skb)


def __br_forward(to, skb):
    if skb.trace is not None:
        skb.trace.hit("__br_forward", to.dev.name)
    skb.dev = to.dev
    return br_forward_finish(skb)


def br_forward(to, skb, local_rcv):
    """Send skb out of port to; keep the original if it must also go up."""
    tr = skb.trace
    if tr is not None:
        tr.hit("br_forward", to.dev.name if to is not None else "-")
    if to is None:
        if not local_rcv:
            consume_skb(skb)
        return
    dev = to.dev
    if to.state == BR_STATE_FORWARDING and dev.ifindex != skb.skb_iif and dev.flags & 1:
        # should_deliver; then __br_forward, br_forward_finish and
        # br_dev_queue_push_xmit written out (their hits in order).
        to.br.counters["forwarded"] += 1
        if local_rcv:
            skb = skb_clone(skb)
            tr = skb.trace
        if tr is not None:
            tr.hit("__br_forward", dev.name)
            tr.hit("br_forward_finish")
            tr.hit("br_dev_queue_push_xmit", dev.name)
        skb.dev = dev
        data = skb.data - ETH_HLEN                 # skb_push: back to the Ethernet header
        if data < skb.head:
            skb_push(skb, ETH_HLEN)                # raises skb_under_panic
        skb.data = data
        skb.len += ETH_HLEN
        dev_queue_xmit(skb)
        return
    if not local_rcv:
        consume_skb(skb)


def br_flood(br, skb, local_rcv):
    """Send skb out of every forwarding port but the one it came in on."""
    if skb.trace is not None:
        skb.trace.hit("br_flood")
    br.counters["flooded"] += 1
    targets = [p for p in br.port_list if p.flood and should_deliver(p, skb)]
    if not targets:
        if not local_rcv:
            consume_skb(skb)
        return
    for p in targets[:-1]:
        __br_forward(p, skb_clone(skb))
    __br_forward(targets[-1], skb_clone(skb) if local_rcv else skb)
