"""Frames arriving on bridge ports.

Linux: net/bridge/br_input.c
"""
from ..core.dev import netif_receive_skb
from ..core.netdevice import RX_HANDLER_CONSUMED, RX_HANDLER_PASS
from ..core.skbuff import (
    PACKET_BROADCAST, PACKET_HOST, PACKET_LOOPBACK, PACKET_MULTICAST, kfree_skb,
)
from ..hdr.if_ether import BROADCAST
from .br_fdb import br_fdb_update
from .br_forward import br_flood, br_forward
from .br_private import BR_STATE_DISABLED, BR_STATE_FORWARDING, br_port_get_rcu


def br_pass_frame_up(skb):
    """Deliver a frame to the bridge device itself (its own stack above)."""
    if skb.trace is not None:
        skb.trace.hit("br_pass_frame_up")
    indev = skb.dev
    br = br_port_get_rcu(indev).br
    brdev = br.dev
    br.counters["local_in"] += 1
    brdev.stats.rx_packets += 1
    brdev.stats.rx_bytes += skb.len
    skb.dev = brdev
    # br_netif_receive_skb: up the bridge device's own receive path (RPS on it included).
    return netif_receive_skb(skb)


def br_handle_frame_finish(skb):
    """Learn the source, then forward, flood and/or pass the frame up."""
    if skb.trace is not None:
        skb.trace.hit("br_handle_frame_finish")
    p = skb.dev.rx_handler_data              # br_port_get_rcu
    br = p.br
    buf = skb.buf
    mac = skb.mac_header
    now = br.dev.net.clock()
    if p.learning:
        # br_fdb_update, written out for a known station on its own port.
        src = bytes(buf[mac + 6:mac + 12])
        fdb = br.fdb.get(src)
        if fdb is None or fdb.is_local:
            br_fdb_update(br, p, src)
        else:
            if fdb.dst is not p:
                fdb.dst = p                  # the station moved to another port
            fdb.updated = now
    if p.state != BR_STATE_FORWARDING:
        kfree_skb(skb, "BRIDGE_INGRESS_STP_STATE")
        return 0
    dest = bytes(buf[mac:mac + 6])
    local_rcv = bool(br.dev.flags & 0x100)   # IFF_PROMISC on the bridge device
    dst = None
    if dest[0] & 1:
        skb.pkt_type = PACKET_BROADCAST if dest == BROADCAST else PACKET_MULTICAST
        local_rcv = True
    else:
        # br_fdb_find, written out: an expired entry is as good as gone (has_expired).
        dst = br.fdb.get(dest)
        if dst is not None and not dst.is_static and not dst.is_local and \
                dst.updated + br.ageing_time <= now:
            dst = None
        if dst is not None and dst.is_local:
            skb.pkt_type = PACKET_HOST
            return br_pass_frame_up(skb)
    if dst is not None:
        dst.used = now
        br_forward(dst.dst, skb, local_rcv)
    else:
        br_flood(br, skb, local_rcv)
    if local_rcv:
        return br_pass_frame_up(skb)
    return 0


LINK_LOCAL_PREFIX = b"\x01\x80\xc2\x00\x00"
ZERO_ADDR = bytes(6)


def br_handle_frame(skb):
    """The rx_handler of every bridge port (registered by br_add_if)."""
    if skb.trace is not None:
        skb.trace.hit("br_handle_frame", skb.dev.name)
    if skb.pkt_type == PACKET_LOOPBACK:
        return RX_HANDLER_PASS
    p = skb.dev.rx_handler_data              # br_port_get_rcu
    p.br.counters["rx_frames"] += 1
    mac = skb.mac_header
    buf = skb.buf
    # is_valid_ether_addr, written out: not multicast, not all zeros.
    if buf[mac + 6] & 1 or buf[mac + 6:mac + 12] == ZERO_ADDR:
        p.br.counters["dropped_invalid_src"] += 1
        kfree_skb(skb, "MAC_INVALID_SOURCE")
        return RX_HANDLER_CONSUMED
    if p.state == BR_STATE_DISABLED:
        kfree_skb(skb, "BRIDGE_INGRESS_STP_STATE")
        return RX_HANDLER_CONSUMED
    if buf[mac:mac + 5] == LINK_LOCAL_PREFIX and not buf[mac + 5] & 0xF0:
        # IEEE 802.1D link-local groups are not for forwarding (Linux br_handle_frame).
        group = buf[mac + 5]
        p.br.counters["link_local"] += 1
        if group == 0x01:                     # MAC control (pause): never
            kfree_skb(skb, "MAC_CONTROL")
            return RX_HANDLER_CONSUMED
        # 0x00 (STP BPDUs) must be forwarded by a bridge that runs no STP, so
        # loops stay detectable; the others only if group_fwd_mask asks.
        if group != 0x00 and not p.br.group_fwd_mask & (1 << group):
            return RX_HANDLER_PASS            # to the port device's own stack
    br_handle_frame_finish(skb)
    return RX_HANDLER_CONSUMED
