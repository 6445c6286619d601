"""IPv4 fragment reassembly.

Linux: net/ipv4/ip_fragment.c; RFC 791, RFC 5722 (overlaps).

Not implemented yet (the IPv4 issue brings it): a fragment is counted in
ReasmReqds and ReasmFails and dropped, never delivered in part.
"""
from ..core.skbuff import kfree_skb


def ip_defrag(net, skb):
    ip = net.mib["Ip"]
    ip["ReasmReqds"] += 1
    ip["ReasmFails"] += 1
    kfree_skb(skb, "IP_FRAG_REASM_UNSUPPORTED")
    return None
