"""ARP: IPv4 address resolution on Ethernet.

Linux: net/ipv4/arp.c; RFC 826, RFC 5227 (gratuitous ARP).
"""
from ..core.dev import dev_queue_xmit
from ..core.neighbour import (
    NUD_NOARP, NUD_REACHABLE, NUD_STALE, NeighOps, NeighTable, __neigh_lookup,
    neigh_update,
)
from ..core.netdevice import IFF_LOOPBACK, IFF_NOARP, PacketType
from ..core.skbuff import (
    LL_MAX_HEADER, PACKET_HOST, PACKET_OTHERHOST, SKB_DROP_REASON_ARP_MALFORMED,
    alloc_skb, consume_skb, kfree_skb, pskb_may_pull, skb_put, skb_reserve,
    skb_reset_network_header,
)
from ..hdr.if_arp import ARP_HLEN, ARPHRD_ETHER, ARPOP_REPLY, ARPOP_REQUEST, arphdr_eth_ip
from ..hdr.if_ether import BROADCAST, ETH_P_ARP, ETH_P_IP
from ..hdr.ip import ipv4_is_loopback, ipv4_is_multicast
from .devinet import inet_select_addr
from .route import RTN_BROADCAST, RTN_LOCAL, inet_addr_type


def arp_create(op, dip, dev, sip, dest_hw, src_hw, target_hw):
    """Build an ARP packet with its Ethernet header (addresses are ints / bytes)."""
    skb = alloc_skb(LL_MAX_HEADER + ARP_HLEN)
    skb_reserve(skb, LL_MAX_HEADER)
    skb_reset_network_header(skb)
    off = skb_put(skb, ARP_HLEN)
    src_hw = src_hw or dev.dev_addr
    dest_hw = dest_hw or BROADCAST
    arphdr_eth_ip.pack_into(skb.buf, off, ARPHRD_ETHER, ETH_P_IP, 6, 4, op, src_hw,
                            sip.to_bytes(4, "big"), target_hw or b"\x00" * 6,
                            dip.to_bytes(4, "big"))
    skb.dev = dev
    skb.protocol = ETH_P_ARP
    dev.header_ops.create(skb, dev, ETH_P_ARP, dest_hw, src_hw, skb.len)
    return skb


def arp_send(op, dip, dev, sip, dest_hw=None, src_hw=None, target_hw=None):
    if dev.flags & IFF_NOARP:
        return
    mib = dev.net.mib["Arp"]
    mib["OutRequests" if op == ARPOP_REQUEST else "OutReplies"] += 1
    dev_queue_xmit(arp_create(op, dip, dev, sip, dest_hw, src_hw, target_hw))


def arp_solicit(neigh, skb):
    """Ask who has neigh's address: broadcast while INCOMPLETE, unicast when probing."""
    dev = neigh.dev
    saddr = 0
    if skb is not None and skb.network_header >= 0:
        saddr = int.from_bytes(skb.buf[skb.network_header + 12:skb.network_header + 16], "big")
        if inet_addr_type(dev.net, saddr) != RTN_LOCAL:
            saddr = 0
    if not saddr:
        saddr = inet_select_addr(dev, neigh.primary_key)
    dest_hw = neigh.ha if neigh.nud_state & 0x10 else None   # NUD_PROBE: unicast
    arp_send(ARPOP_REQUEST, neigh.primary_key, dev, saddr, dest_hw, None, None)


def arp_error_report(neigh, skb):
    """Resolution failed: tell the sender (ICMP host unreachable, as Linux does)."""
    from .icmp import icmp_send_host_unreach   # icmp imports arp's users
    neigh.tbl.net.mib["Arp"]["Unresolved"] += 1
    icmp_send_host_unreach(skb)


def arp_rcv(skb, dev, pt, orig_dev):
    """Receive one ARP packet: validate, then arp_process."""
    if skb.trace is not None:
        skb.trace.hit("arp_rcv")
    net = dev.net
    if not pskb_may_pull(skb, ARP_HLEN):
        net.mib["Arp"]["InErrors"] += 1
        kfree_skb(skb, SKB_DROP_REASON_ARP_MALFORMED)
        return 1
    hrd, pro, hln, pln, op, sha, sip, tha, tip = arphdr_eth_ip.unpack_from(skb.buf, skb.data)
    if hrd != ARPHRD_ETHER or pro != ETH_P_IP or hln != 6 or pln != 4 or \
            op not in (ARPOP_REQUEST, ARPOP_REPLY) or skb.pkt_type == PACKET_OTHERHOST \
            or dev.flags & IFF_NOARP:
        net.mib["Arp"]["InErrors"] += 1
        kfree_skb(skb, SKB_DROP_REASON_ARP_MALFORMED)
        return 1
    return arp_process(skb, dev, op, sha, int.from_bytes(sip, "big"), tha,
                       int.from_bytes(tip, "big"))


def arp_process(skb, dev, op, sha, sip, tha, tip):
    if skb.trace is not None:
        skb.trace.hit("arp_process")
    net = dev.net
    tbl = net.proto["arp_tbl"]
    mib = net.mib["Arp"]
    mib["InRequests" if op == ARPOP_REQUEST else "InReplies"] += 1
    if ipv4_is_multicast(tip) or ipv4_is_loopback(tip) or sha[0] & 1:
        kfree_skb(skb, SKB_DROP_REASON_ARP_MALFORMED)
        return 1
    if sip == 0:
        # Duplicate address detection probe (RFC 5227): answer if it is ours.
        if op == ARPOP_REQUEST and inet_addr_type(net, tip) == RTN_LOCAL:
            arp_send(ARPOP_REPLY, sip, dev, tip, sha, dev.dev_addr, sha)
        consume_skb(skb)
        return 0
    for_us = inet_addr_type(net, tip) == RTN_LOCAL and _addr_on_dev(dev, tip)
    if op == ARPOP_REQUEST and for_us:
        n = __neigh_lookup(tbl, sip, dev, True)
        if n is not None:        # a full table still answers (arp_process)
            neigh_update(n, bytes(sha), NUD_STALE)
        arp_send(ARPOP_REPLY, sip, dev, tip, bytes(sha), dev.dev_addr, bytes(sha))
        consume_skb(skb)
        return 0
    n = __neigh_lookup(tbl, sip, dev, False)
    if n is not None:
        # A reply to us confirms reachability; anything else is only a hint.
        state = NUD_REACHABLE if op == ARPOP_REPLY and skb.pkt_type == PACKET_HOST \
            and for_us else NUD_STALE
        neigh_update(n, bytes(sha), state)
    consume_skb(skb)
    return 0


def _addr_on_dev(dev, addr):
    # Linux's default (arp_ignore=0) answers for any local address on any
    # interface; emu follows that but still requires an IPv4-enabled device.
    return dev.ip_ptr is not None


def arp_constructor(neigh):
    """A new neighbour: addresses that need no resolution start NUD_NOARP.

    Multicast maps to 01:00:5e + the low 23 bits (RFC 1112 6.4, ip_eth_mc_map);
    a broadcast address uses the device's broadcast MAC; NOARP and loopback
    devices use their own address (Linux: arp_constructor).
    """
    dev = neigh.dev
    addr = neigh.primary_key
    if ipv4_is_multicast(addr):
        neigh.nud_state = NUD_NOARP
        neigh.ha = b"\x01\x00\x5e" + (addr & 0x7FFFFF).to_bytes(3, "big")
    elif dev.flags & (IFF_NOARP | IFF_LOOPBACK):
        neigh.nud_state = NUD_NOARP
        neigh.ha = dev.dev_addr
    elif inet_addr_type(dev.net, addr) == RTN_BROADCAST:
        neigh.nud_state = NUD_NOARP
        neigh.ha = dev.broadcast


arp_neigh_ops = NeighOps(solicit=arp_solicit, error_report=arp_error_report)


def arp_init(net):
    net.proto["arp_tbl"] = NeighTable(net, arp_neigh_ops, constructor=arp_constructor)
    from ..core.dev import dev_add_pack
    dev_add_pack(net, PacketType(ETH_P_ARP, arp_rcv))


def arp_gratuitous(dev, addr):
    """Announce addr on dev (RFC 5227 2.4): a request with sender == target."""
    arp_send(ARPOP_REQUEST, addr, dev, addr, None, None, None)
