"""Ethernet: the link-layer header and receive classification.

Linux: net/ethernet/eth.c (eth_type_trans, eth_header, eth_gro_receive,
eth_gro_complete), include/linux/etherdevice.h (compare_ether_header);
IEEE 802.3.
"""
import hashlib

from ..core.netdevice import IFF_BROADCAST, IFF_MULTICAST, IFF_PROMISC, HeaderOps
from ..core.skbuff import (
    PACKET_BROADCAST, PACKET_HOST, PACKET_MULTICAST, PACKET_OTHERHOST,
    skb_push,
)
from ..hdr.if_arp import ARPHRD_ETHER
from ..hdr.if_ether import (
    BROADCAST, ETH_DATA_LEN, ETH_HLEN, ETH_P_802_2, ETH_P_802_3_MIN, ethhdr,
)


def eth_header(skb, dev, type, daddr, saddr, length):
    """header_ops.create: push the 14-byte Ethernet header."""
    off = skb_push(skb, ETH_HLEN)
    ethhdr.pack_into(skb.buf, off, daddr if daddr is not None else BROADCAST,
                     saddr if saddr is not None else dev.dev_addr, type)
    return ETH_HLEN


def eth_header_parse(skb):
    """header_ops.parse: the source address of a received frame."""
    off = skb.mac_header + 6
    return bytes(skb.buf[off:off + 6])


def eth_header_cache(neigh, hh, type):
    """header_ops.cache: build the header of every frame to neigh once, into hh."""
    dev = neigh.dev
    hh.hh_data = ethhdr.pack(neigh.ha, dev.dev_addr, type)
    hh.hh_len = ETH_HLEN
    return 0


def eth_header_cache_update(hh, dev, haddr):
    """header_ops.cache_update: the neighbour's address changed."""
    hh.hh_data = haddr + hh.hh_data[6:]


eth_header_ops = HeaderOps(create=eth_header, parse=eth_header_parse,
                           cache=eth_header_cache, cache_update=eth_header_cache_update)


def eth_type_trans(skb, dev):
    """Classify a received frame (pkt_type), pull the header, return the protocol.

    The caller has checked that skb.len >= ETH_HLEN.
    """
    skb.dev = dev
    buf = skb.buf
    off = skb.mac_header = skb.data           # skb_reset_mac_header
    skb.data = off + ETH_HLEN
    skb.len -= ETH_HLEN
    dest = buf[off:off + 6]
    if dest[0] & 1:
        skb.pkt_type = PACKET_BROADCAST if dest == BROADCAST else PACKET_MULTICAST
    elif dest != dev.dev_addr:
        skb.pkt_type = PACKET_OTHERHOST
    else:
        skb.pkt_type = PACKET_HOST
    proto = (buf[off + 12] << 8) | buf[off + 13]
    if proto >= ETH_P_802_3_MIN:
        return proto
    # An 802.3 length field: Linux hands these to 802.2 LLC.
    return ETH_P_802_2


def eth_hw_addr_derive(*names):
    """A stable, locally administered unicast MAC from names (node, interface)."""
    digest = hashlib.blake2s("/".join(names).encode(), digest_size=6).digest()
    return bytes([(digest[0] & 0xFC) | 0x02]) + digest[1:]


def ether_setup(dev):
    """Fill in the Ethernet defaults of a net_device (drivers call this)."""
    dev.header_ops = eth_header_ops
    dev.type = ARPHRD_ETHER
    dev.hard_header_len = ETH_HLEN
    dev.mtu = ETH_DATA_LEN
    dev.addr_len = 6
    dev.broadcast = BROADCAST
    dev.flags = IFF_BROADCAST | IFF_MULTICAST


def dev_set_promiscuity(dev, on):
    if on:
        dev.flags |= IFF_PROMISC
    else:
        dev.flags &= ~IFF_PROMISC


# ---------------------------------------------------------------- GRO

ETH_P_TEB = 0x6558       # Transparent Ethernet Bridging: an inner Ethernet frame (tunnels)


def compare_ether_header(buf_a, off_a, buf_b, off_b):
    """Non-zero when two 14-byte Ethernet headers differ (destination, source, type)."""
    return buf_a[off_a:off_a + ETH_HLEN] != buf_b[off_b:off_b + ETH_HLEN]


def eth_gro_receive(head, skb):
    """gro_receive for an inner Ethernet header (ETH_P_TEB, below a tunnel).

    Held packets whose inner Ethernet header differs are other flows; the
    packet goes on to the gro_receive of its inner EtherType.
    """
    cb = skb.cb
    off_eth = cb.data_offset
    start = skb.data + off_eth
    pp = None
    flush = 1
    if skb.tail - start >= ETH_HLEN:
        flush = 0
        buf = skb.buf
        for p in head:
            pcb = p.cb
            if pcb.same_flow and compare_ether_header(buf, start, p.buf, p.data + off_eth):
                pcb.same_flow = 0
        etype = (buf[start + 12] << 8) | buf[start + 13]
        ptype = skb.dev.net.proto["offload_base"].get(etype)
        if ptype is None or ptype.gro_receive is None:
            flush = 1
        else:
            cb.data_offset = off_eth + ETH_HLEN
            pp = ptype.gro_receive(head, skb)
    cb.flush |= flush
    return pp


def eth_gro_complete(skb, nhoff):
    buf = skb.buf
    eh = skb.data + nhoff
    ptype = skb.dev.net.proto["offload_base"].get((buf[eh + 12] << 8) | buf[eh + 13])
    if ptype is None or ptype.gro_complete is None:
        return -38                                   # -ENOSYS
    return ptype.gro_complete(skb, nhoff + ETH_HLEN)
