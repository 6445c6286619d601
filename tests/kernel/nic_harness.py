"""Inline labs with wirenic ("phys") links: the NIC hardware steps run inline too.

PhysLab.step does what the node runtime's NIC thread and kernel exit do:
frames from a wire go through wirenic_hw_rx (RSS, RX ring) and
wirenic_hw_irq (the queue's interrupt on its CPU); frames a wirenic was
asked to send go out in wirenic_hw_tx. Then pending softirqs run.
"""
import struct

from emu.kernel.core import rtnetlink
from emu.kernel.core.napi import do_softirq
from emu.kernel.drivers.veth import veth_forward_skb
from emu.kernel.drivers.wirenic import (
    wirenic_hw_irq, wirenic_hw_rx, wirenic_hw_tx, wirenic_register,
)
from emu.kernel.ethernet.eth import eth_hw_addr_derive
from emu.kernel.hdr.checksum import csum_partial, csum_tcpudp_nofold, ip_compute_csum

from .harness import InlineLab, MemPort


class PhysLab(InlineLab):
    """InlineLab plus `phys` links (wirenic at both ends)."""

    def __init__(self, ncpus=1):
        super().__init__(ncpus)
        self.kicked = []

    def _kick(self, dev):
        if dev not in self.kicked:
            self.kicked.append(dev)

    def phys_link(self, a, a_if, b, b_if, queues=1):
        pa, pb = MemPort(), MemPort()
        pa.peer, pb.peer = pb, pa
        for name, ifname, port in ((a, a_if, pa), (b, b_if, pb)):
            net = self.nets[name]
            dev = wirenic_register(net, ifname, eth_hw_addr_derive(name, ifname), port,
                                   queues=queues)
            dev.priv.kick = self._kick
            port.dev = dev
            self.ports.append(port)
        return pa, pb

    def hw_tx(self):
        busy = False
        while self.kicked:
            dev = self.kicked.pop(0)
            now = dev.net.clock()
            if wirenic_hw_tx(dev, now):
                busy = True
            wirenic_hw_irq(dev, now)
        return busy

    def step(self):
        busy = self.hw_tx()
        for port in self.ports:
            dev = port.dev
            if dev.kind != "wirenic":
                continue
            net = dev.net
            if port.inbox:
                busy = True
                while port.inbox:
                    frame, flags, gso_type, gso_size, tid = port.inbox[0]
                    if wirenic_hw_rx(dev, frame, flags, gso_type, gso_size, tid,
                                     net.clock()) == -2:
                        break                # paused: the rest waits on the wire
                    port.inbox.popleft()
            if wirenic_hw_irq(dev, net.clock()):
                busy = True
        # veth ports and softirqs as InlineLab does
        for port in self.ports:
            if port.dev.kind == "wirenic":
                continue
            while port.inbox:
                frame, flags, gso_type, gso_size, tid = port.inbox.popleft()
                net = port.dev.net
                net.cur_cpu = port.dev.rx_cpu
                veth_forward_skb(port.dev, frame, flags, gso_type, gso_size, tid)
                busy = True
        for net in self.nets.values():
            for sd in net.cpus:
                if sd.pending:
                    do_softirq(net, sd.cpu)
                    busy = True
        if self.hw_tx():
            busy = True
        return busy


def phys_pair(ncpus=4, queues=4):
    """h1:eth0 -- h2:eth0 over a phys link, 10.0.0.1/24 and 10.0.0.2/24, both up."""
    lab = PhysLab(ncpus)
    lab.node("h1")
    lab.node("h2")
    lab.phys_link("h1", "eth0", "h2", "eth0", queues=queues)
    for h, ip in (("h1", "10.0.0.1/24"), ("h2", "10.0.0.2/24")):
        rtnetlink.inet_rtm_newaddr(lab.nets[h], "eth0", ip)
        rtnetlink.rtnl_setlink(lab.nets[h], "eth0", up=True)
    lab.run()
    return lab


# ---------------------------------------------------------------- frame builders

def ip4(addr):
    return bytes(int(x) for x in addr.split("."))


def ipv4_header(src, dst, proto, payload_len, ident=1, ttl=64, tos=0, df=True, frag=0,
                options=b""):
    ihl = 5 + len(options) // 4
    h = bytearray(struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, tos, ihl * 4 + payload_len,
                              ident, (0x4000 if df else 0) | frag, ttl, proto, 0,
                              ip4(src), ip4(dst)) + options)
    struct.pack_into("!H", h, 10, ip_compute_csum(h))
    return bytes(h)


def l4_checksum(src, dst, proto, seg):
    s = csum_tcpudp_nofold(int.from_bytes(ip4(src), "big"), int.from_bytes(ip4(dst), "big"),
                           len(seg), proto)
    return ~csum_partial(seg, 0, len(seg), s) & 0xFFFF


def tcp_segment(src, dst, sport, dport, seq, payload, flags=0x10, ack=1, window=502,
                options=b"", bad_csum=False):
    doff = (20 + len(options)) // 4
    th = bytearray(struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags,
                               window, 0, 0) + options) + payload
    c = l4_checksum(src, dst, 6, th)
    struct.pack_into("!H", th, 16, c ^ (0xFFFF if bad_csum else 0))
    return bytes(th)


def udp_datagram(src, dst, sport, dport, payload, csum=True):
    uh = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)) + payload
    if csum:
        c = l4_checksum(src, dst, 17, uh) or 0xFFFF
        struct.pack_into("!H", uh, 6, c)
    return bytes(uh)


def eth_frame(dst_mac, src_mac, l3, ethertype=0x0800):
    f = dst_mac + src_mac + struct.pack("!H", ethertype) + l3
    if len(f) < 60:
        f += bytes(60 - len(f))            # Ethernet padding to the minimum frame
    return f


def tcp_frame(dst_mac, src, dst, sport, dport, seq, payload, ident=1, src_mac=b"\x02" * 6,
              ttl=64, tos=0, df=True, **kw):
    seg = tcp_segment(src, dst, sport, dport, seq, payload, **kw)
    return eth_frame(dst_mac, src_mac, ipv4_header(src, dst, 6, len(seg), ident, ttl, tos, df) + seg)


def udp_frame(dst_mac, src, dst, sport, dport, payload, ident=1, src_mac=b"\x02" * 6, **kw):
    dg = udp_datagram(src, dst, sport, dport, payload, **kw)
    return eth_frame(dst_mac, src_mac, ipv4_header(src, dst, 17, len(dg), ident) + dg)
