"""GSO: software segmentation before a device that cannot take a large skb.

Linux: net/core/gso.c, net/core/skbuff.c (skb_segment), net/ipv4/af_inet.c
(inet_gso_segment), net/ipv4/tcp_offload.c (tcp_gso_segment),
net/ipv4/udp_offload.c (__udp_gso_segment, udp4_ufo_fragment),
include/linux/virtio_net.h (the GSO metadata a veth wire carries)
"""
import struct

import dpkt

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import dev_queue_xmit
from emu.kernel.core.gso import skb_gso_segment
from emu.kernel.core.netdevice import (
    NETIF_F_HW_CSUM, NETIF_F_TSO, SKB_GSO_DODGY, SKB_GSO_TCPV4, SKB_GSO_UDP, SKB_GSO_UDP_L4,
)
from emu.kernel.core.skbuff import (
    CHECKSUM_NONE, CHECKSUM_PARTIAL, build_skb_from_frame, skb_checksum_help,
)
from emu.kernel.hdr.checksum import csum_tcpudp_nofold
from emu.kernel.hdr.if_ether import ETH_P_IP
from emu.kernel.hdr.virtio_net import VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4

from .harness import InlineLab
from .nic_harness import ipv4_header, phys_pair, tcp_frame
from .test_gro import MAC, Rig, l4_valid, rfc1071

SRC, DST = "10.0.0.1", "10.0.0.2"
MSS = 1448


def gso_skb(dev, payload, proto=6, mss=MSS, flags=0x18 | 0x01 | 0x80, ident=1000,
            seq=5000, gso_type=None):
    """A locally built GSO skb as a TCP/UDP sender makes it: data at the MAC
    header, CHECKSUM_PARTIAL with the pseudo-header sum in the check field."""
    if proto == 6:
        l4 = bytearray(struct.pack("!HHIIBBHHH", 33000, 80, seq, 77, 5 << 4, flags, 1000, 0, 0))
        check_off = 16
    else:
        l4 = bytearray(struct.pack("!HHHH", 33000, 53, 8 + len(payload), 0))
        check_off = 6
    l4 += payload
    pseudo = csum_tcpudp_nofold(0x0A000001, 0x0A000002, len(l4), proto)
    struct.pack_into("!H", l4, check_off, pseudo)
    ip = ipv4_header(SRC, DST, proto, len(l4), ident)
    frame = MAC + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + bytes(l4)
    skb = build_skb_from_frame(frame)
    skb.dev = dev
    skb.protocol = ETH_P_IP
    skb.mac_header = skb.data
    skb.network_header = skb.data + 14
    skb.transport_header = skb.data + 34
    skb.ip_summed = CHECKSUM_PARTIAL
    skb.csum_start = skb.transport_header
    skb.csum_offset = check_off
    sh = skb.shinfo
    sh.gso_size = mss
    if gso_type is None:
        gso_type = SKB_GSO_TCPV4 if proto == 6 else SKB_GSO_UDP_L4
    sh.gso_type = gso_type
    sh.gso_segs = -(-len(payload) // mss)
    return skb


def frame_ok(f):
    """dpkt parse plus independent checks of the IPv4 header and L4 checksum."""
    eth = dpkt.ethernet.Ethernet(f)
    ip = eth.data
    raw = f[14:]
    assert ip.len == len(raw)
    assert rfc1071(raw[:20]) == 0
    assert l4_valid(raw)
    return ip


def test_tcp_gso_produces_valid_segments():
    lab = InlineLab()
    net = lab.node("a")
    payload = bytes(range(256)) * 40 + b"tail"                 # 10244 bytes: 8 segments
    skb = gso_skb(net.dev_by_name["lo"], payload)
    segs = skb_gso_segment(skb, 0)                             # no offloads at all
    assert len(segs) == 8
    ips = [frame_ok(s.payload()) for s in segs]
    assert [ip.id for ip in ips] == list(range(1000, 1008))   # IP IDs increment
    assert [ip.data.seq for ip in ips] == [5000 + i * MSS for i in range(8)]
    assert all(len(ip.data.data) == MSS for ip in ips[:-1]) and len(ips[-1].data.data) == 10244 - 7 * MSS
    assert b"".join(bytes(ip.data.data) for ip in ips) == payload
    flags = [ip.data.flags for ip in ips]
    assert flags[0] & 0x80 and not any(f & 0x80 for f in flags[1:])     # CWR only first
    assert not any(f & 0x09 for f in flags[:-1])                          # PSH/FIN only last
    assert flags[-1] & 0x09 == 0x09 and all(f & 0x10 for f in flags)      # ACK on all
    assert all(s.ip_summed == CHECKSUM_NONE for s in segs)
    assert all(s.shinfo.gso_size == 0 for s in segs)


def test_tcp_gso_leaves_checksums_to_an_offloading_device():
    lab = InlineLab()
    net = lab.node("a")
    skb = gso_skb(net.dev_by_name["lo"], b"x" * (3 * MSS))
    segs = skb_gso_segment(skb, NETIF_F_HW_CSUM)
    assert len(segs) == 3 and all(s.ip_summed == CHECKSUM_PARTIAL for s in segs)
    for s in segs:
        assert skb_checksum_help(s) == 0
        frame_ok(s.payload())


def test_udp_segmentation_gives_each_datagram_its_header():
    lab = InlineLab()
    net = lab.node("a")
    payload = b"".join(struct.pack("!H", i) * 500 for i in range(5))       # 5000 bytes
    segs = skb_gso_segment(gso_skb(net.dev_by_name["lo"], payload, proto=17, mss=1200), 0)
    ips = [frame_ok(s.payload()) for s in segs]
    assert [ip.data.ulen for ip in ips] == [1208, 1208, 1208, 1208, 208]
    assert [ip.id for ip in ips] == list(range(1000, 1005))
    assert b"".join(bytes(ip.data.data) for ip in ips) == payload


def test_ufo_makes_ip_fragments():
    lab = InlineLab()
    net = lab.node("a")
    payload = bytes(range(200)) * 20                                       # 4000 bytes
    skb = gso_skb(net.dev_by_name["lo"], payload, proto=17, mss=1480, gso_type=SKB_GSO_UDP)
    segs = skb_gso_segment(skb, 0)
    offs = [struct.unpack_from("!H", s.payload(), 14 + 6)[0] for s in segs]
    assert [(o & 0x1FFF) * 8 for o in offs] == [0, 1480, 2960]
    assert [bool(o & 0x2000) for o in offs] == [True, True, False]         # MF
    assert all(rfc1071(s.payload()[14:34]) == 0 for s in segs)
    whole = b"".join(s.payload()[34:] for s in segs)                      # UDP header + data
    assert whole[8:] == payload
    pseudo = bytes([10, 0, 0, 1, 10, 0, 0, 2, 0, 17]) + struct.pack("!H", len(whole))
    assert rfc1071(pseudo + whole) == 0                                     # checksum of the whole


def test_gro_then_gso_gives_back_the_original_frames():
    r = Rig()
    frames = [tcp_frame(MAC, SRC, DST, 40000, 80, 1 + i * 1000, bytes([i]) * 1000, ident=50 + i)
              for i in range(6)]
    r.rx(frames)
    assert len(r.got) == 1
    skb = r.got[0]
    skb.data = skb.mac_header                                  # back to the MAC header
    skb.len += 14
    segs = skb_gso_segment(skb, 0)
    assert [s.payload() for s in segs] == frames               # byte for byte


def test_a_device_without_tso_gets_segments_from_dev_queue_xmit():
    lab = phys_pair(ncpus=1, queues=1)
    dev = lab.dev("h1", "eth0")
    assert not dev.features & NETIF_F_TSO
    port = lab.port("h1", "eth0")
    port.sent.clear()
    tx0, rx0 = dev.stats.tx_packets, lab.dev("h2", "eth0").stats.rx_packets
    dev_queue_xmit(gso_skb(dev, b"y" * (5 * MSS)))
    lab.run()
    assert len(port.sent) == 5
    ips = [dpkt.ethernet.Ethernet(f).data for f in port.sent]
    assert all(len(f) <= 1514 and rfc1071(f[14:34]) == 0 for f in port.sent)
    assert [ip.data.seq for ip in ips] == [5000 + i * MSS for i in range(5)]
    assert dev.stats.tx_packets - tx0 == 5
    assert lab.dev("h2", "eth0").stats.rx_packets - rx0 == 5


def test_veth_with_tso_carries_the_gso_skb_and_its_metadata():
    lab = InlineLab()
    lab.node("a")
    lab.node("b")
    pa, pb = lab.link("a", "eth0", "b", "eth0")
    for n in ("a", "b"):
        rtnetlink.rtnl_setlink(lab.nets[n], "eth0", up=True)
    rtnetlink.RTNL_OPS["features_set"](lab.nets["a"], "eth0", tso=True)
    dev = lab.dev("a", "eth0")
    got = []
    from emu.kernel.core.dev import dev_add_pack
    from emu.kernel.core.netdevice import PacketType
    dev_add_pack(lab.nets["b"], PacketType(ETH_P_IP, lambda skb, d, pt, od: got.append(skb) or 0,
                                           lab.dev("b", "eth0")))
    dev_queue_xmit(gso_skb(dev, b"z" * (4 * MSS + 10)))
    assert len(pa.sent) == 1 and len(pa.sent[0]) == 14 + 20 + 20 + 4 * MSS + 10
    frame, flags, gso_type, gso_size, _ = pb.inbox[0]
    assert (flags, gso_type, gso_size) == (VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, MSS)
    lab.run()
    skb = got[0]
    sh = skb.shinfo
    assert sh.gso_type == SKB_GSO_TCPV4 | SKB_GSO_DODGY and sh.gso_size == MSS
    assert sh.gso_segs == 5 and skb.ip_summed == CHECKSUM_PARTIAL
    assert skb.csum_start == skb.data + 20 and skb.csum_offset == 16


def test_a_dodgy_gso_skb_to_a_tso_device_is_only_recounted():
    lab = InlineLab()
    net = lab.node("a")
    skb = gso_skb(net.dev_by_name["lo"], b"d" * (3 * MSS))
    skb.shinfo.gso_type |= SKB_GSO_DODGY
    skb.shinfo.gso_segs = 99                                   # a lie from the wire
    assert skb_gso_segment(skb, NETIF_F_TSO | NETIF_F_HW_CSUM) is None
    assert skb.shinfo.gso_segs == 3 and skb.data == skb.mac_header


def test_bad_gso_metadata_from_a_wire_is_dropped_and_counted():
    lab = InlineLab()
    lab.node("a")
    lab.node("b")
    lab.link("a", "eth0", "b", "eth0")
    rtnetlink.rtnl_setlink(lab.nets["b"], "eth0", up=True)
    dev = lab.dev("b", "eth0")
    from emu.kernel.drivers.veth import veth_forward_skb
    arp = dev.dev_addr + b"\x02" * 6 + b"\x08\x06" + bytes(28)
    veth_forward_skb(dev, arp, 0, VIRTIO_NET_HDR_GSO_TCPV4, 1000)          # GSO on ARP
    veth_forward_skb(dev, tcp_frame(dev.dev_addr, SRC, DST, 1, 2, 1, b"x" * 100),
                     0, VIRTIO_NET_HDR_GSO_TCPV4, 0)                        # gso_size 0
    assert dev.stats.rx_frame_errors == 2 and lab.nets["b"].drop_reasons["WIRE_MALFORMED"] == 2
