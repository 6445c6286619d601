"""ARP: IPv4 address resolution on Ethernet.

Linux: net/ipv4/arp.c; RFC 826, RFC 5227 (gratuitous ARP).
"""
from ..core.dev import dev_queue_xmit
from ..core.neighbour import (
    NEIGH_UPDATE_F_OVERRIDE, NUD_NOARP, NUD_REACHABLE, NUD_STALE, NUD_VALID, NeighOps,
    NeighTable, __neigh_lookup, neigh_update,
)
from ..core.netdevice import IFF_LOOPBACK, IFF_NOARP, PacketType
from ..core.skbuff import (
    LL_MAX_HEADER, PACKET_HOST, PACKET_LOOPBACK, PACKET_OTHERHOST,
    SKB_DROP_REASON_ARP_MALFORMED, SKB_DROP_REASON_NOT_SPECIFIED,
    alloc_skb, consume_skb, kfree_skb, pskb_may_pull, skb_put, skb_reserve,
    skb_reset_network_header,
)
from ..hdr.if_arp import ARP_HLEN, ARPHRD_ETHER, ARPOP_REPLY, ARPOP_REQUEST, arphdr_eth_ip
from ..hdr.if_ether import BROADCAST, ETH_P_ARP, ETH_P_IP
from ..hdr.ip import ipv4_is_loopback, ipv4_is_multicast
from .devinet import IN_DEV_MAXCONF, IN_DEV_ORCONF, inet_select_addr
from .route import RTN_BROADCAST, RTN_LOCAL, RTN_UNICAST, inet_addr_type, ip_route_input_noref

ARPHRD_IEEE802 = 6      # accepted on Ethernet too (arp_process)


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
    """Receive one ARP packet: validate, then arp_process.

    As Linux's arp_rcv, an ARP the device will ignore (NOARP device, a frame for
    another host) is consumed, not dropped. A truncated packet, or hardware /
    protocol address lengths that do not fit the device, are dropped.
    Emulation note: emu counts those in its own Arp InErrors (Linux has no ARP
    MIB) under reason ARP_MALFORMED (Linux: PKT_TOO_SMALL / NOT_SPECIFIED).
    """
    if skb.trace is not None:
        skb.trace.hit("arp_rcv")
    net = dev.net
    if dev.flags & IFF_NOARP or skb.pkt_type in (PACKET_OTHERHOST, PACKET_LOOPBACK):
        consume_skb(skb)
        return 0
    if not pskb_may_pull(skb, ARP_HLEN):
        net.mib["Arp"]["InErrors"] += 1
        kfree_skb(skb, SKB_DROP_REASON_ARP_MALFORMED)
        return 1
    hrd, pro, hln, pln, op, sha, sip, tha, tip = arphdr_eth_ip.unpack_from(skb.buf, skb.data)
    if hln != 6 or pln != 4:
        net.mib["Arp"]["InErrors"] += 1
        kfree_skb(skb, SKB_DROP_REASON_ARP_MALFORMED)
        return 1
    return arp_process(skb, dev, hrd, pro, op, sha, int.from_bytes(sip, "big"), tha,
                       int.from_bytes(tip, "big"))


def arp_process(skb, dev, hrd, pro, op, sha, sip, tha, tip):
    """Decide as Linux's arp_process: which requests get a reply (a local target,
    a sender that passes the input route's martian checks, arp_ignore), which
    senders update or create a neighbour (existing entries, or arp_accept)."""
    if skb.trace is not None:
        skb.trace.hit("arp_process")
    net = dev.net
    tbl = net.proto["arp_tbl"]
    mib = net.mib["Arp"]
    if dev.ip_ptr is None:
        kfree_skb(skb, SKB_DROP_REASON_NOT_SPECIFIED)
        return 1
    # An Ethernet device takes hardware type Ethernet or IEEE 802 (RFC 1390, 2625).
    if hrd not in (ARPHRD_ETHER, ARPHRD_IEEE802) or pro != ETH_P_IP or \
            op not in (ARPOP_REQUEST, ARPOP_REPLY):
        mib["InErrors"] += 1
        kfree_skb(skb, SKB_DROP_REASON_ARP_MALFORMED)
        return 1
    mib["InRequests" if op == ARPOP_REQUEST else "InReplies"] += 1
    # Requests for 127.x.x.x (route_localnet=0) or a multicast address: ignored.
    if ipv4_is_multicast(tip) or ipv4_is_loopback(tip):
        kfree_skb(skb, SKB_DROP_REASON_NOT_SPECIFIED)
        return 1
    if sip == tip and IN_DEV_ORCONF(dev, "drop_gratuitous_arp"):
        kfree_skb(skb, SKB_DROP_REASON_NOT_SPECIFIED)
        return 1
    sha = bytes(sha)
    if sip == 0:
        # Duplicate address detection probe (RFC 5227, RFC 2131): answer if it is ours.
        if op == ARPOP_REQUEST and inet_addr_type(net, tip) == RTN_LOCAL and \
                not arp_ignore(dev, sip, tip):
            arp_send(ARPOP_REPLY, sip, dev, tip, sha, dev.dev_addr, sha)
        consume_skb(skb)
        return 0
    if op == ARPOP_REQUEST:
        # ip_route_input_noref(skb, tip, sip, 0, dev): the sender must pass the
        # martian checks (not multicast, broadcast, 0/8, 127/8 or one of our own
        # addresses) and the target must be local.
        skb.dst = None
        if ip_route_input_noref(skb, tip, sip, 0, dev) == 0 and skb.dst.rt_type == RTN_LOCAL:
            if not arp_ignore(dev, sip, tip):
                # neigh_event_ns: no entry (a full table), no reply.
                n = __neigh_lookup(tbl, sip, dev, True)
                if n is not None:
                    neigh_update(n, sha, NUD_STALE, NEIGH_UPDATE_F_OVERRIDE)
                    arp_send(ARPOP_REPLY, sip, dev, tip, sha, dev.dev_addr, sha)
            skb.dst = None
            consume_skb(skb)
            return 0
        skb.dst = None          # proxy ARP is not modelled
    # Update our ARP table: only entries we have, unless arp_accept.
    n = __neigh_lookup(tbl, sip, dev, False)
    accept = arp_accept(dev, sip)
    is_garp, addr_type = False, -1
    if n is not None or accept:
        is_garp, addr_type = arp_is_garp(net, op, sip, tip, sha, bytes(tha))
    if accept and n is None and (is_garp or (op == ARPOP_REPLY and (
            addr_type == RTN_UNICAST or
            (addr_type < 0 and inet_addr_type(net, sip) == RTN_UNICAST)))):
        n = __neigh_lookup(tbl, sip, dev, True)
    if n is not None:
        # Of several replies back to back the first wins (locktime), unless gratuitous.
        locktime = net.sysctl["net.ipv4.neigh.default.locktime"] / 100.0
        override = net.clock() > n.updated + locktime or is_garp
        # Broadcast replies and requests do not assert reachability.
        state = NUD_REACHABLE if op == ARPOP_REPLY and skb.pkt_type == PACKET_HOST \
            else NUD_STALE
        if override or not n.nud_state & NUD_VALID or sha == n.ha:
            neigh_update(n, sha, state, NEIGH_UPDATE_F_OVERRIDE if override else 0)
        # else: __neigh_update ignores a new address without OVERRIDE
    consume_skb(skb)
    return 0


def arp_is_garp(net, op, sip, tip, sha, tha):
    """(is it a gratuitous ARP, sip's address type or -1): sender == target, a
    reply's target hardware address its sender's, and sip a unicast address."""
    is_garp = sip == tip
    if is_garp and op == ARPOP_REPLY:
        is_garp = tha == sha
    addr_type = -1
    if is_garp:
        addr_type = inet_addr_type(net, sip)
        if addr_type != RTN_UNICAST:
            is_garp = False
    return is_garp, addr_type


def _ifa_on_dev(dev, local, dst):
    """Is local an address of dev (on dst's subnet when dst is given)? (inet_confirm_addr)"""
    for ifa in dev.ip_ptr.ifa_list if dev.ip_ptr is not None else ():
        if (not local or ifa.local == local) and \
                (not dst or (dst & ifa.mask) == (ifa.local & ifa.mask)):
            return True
    return False


def arp_ignore(dev, sip, tip):
    """net.ipv4.conf.*.arp_ignore: 0 answer for any local address, 1 only for
    addresses of the receiving device, 2 also only from their subnet, 3 not for
    host-scope addresses, 8 never (arp_ignore)."""
    mode = IN_DEV_MAXCONF(dev, "arp_ignore")
    if mode == 1:
        return not _ifa_on_dev(dev, tip, 0)
    if mode == 2:
        return not _ifa_on_dev(dev, tip, sip)
    if mode == 3:
        lo = dev.net.dev_by_name.get("lo")
        return lo is not None and _ifa_on_dev(lo, tip, 0)
    return mode == 8


def arp_accept(dev, sip):
    """net.ipv4.conf.*.arp_accept: may unsolicited ARP create entries? 0 no, 1 yes,
    2 only for senders on the receiving device's subnets (arp_accept)."""
    mode = IN_DEV_MAXCONF(dev, "arp_accept")
    if mode == 1:
        return True
    if mode == 2:
        return _ifa_on_dev(dev, 0, sip)
    return False


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
