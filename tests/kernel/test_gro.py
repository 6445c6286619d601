"""GRO: what merges, what flushes, and what a merged skb carries.

Linux: net/core/gro.c, net/ipv4/af_inet.c (inet_gro_receive),
net/ipv4/tcp_offload.c, net/ipv4/udp_offload.c

Frames enter a wirenic in a bare kernel (no IP stack: an ETH_P_IP handler
records what GRO passes up), through the NIC's RX ring, its IRQ and a NAPI
poll, as in the node runtime.
"""
import struct

import dpkt
import pytest

from emu.kernel.core.dev import dev_add_pack, dev_open, net_dev_init
from emu.kernel.core.napi import do_softirq
from emu.kernel.core.net import FakeClock, Net
from emu.kernel.core.netdevice import (
    NETIF_F_GRO, NETIF_F_GRO_UDP_FWD, SKB_GSO_TCP_FIXEDID, SKB_GSO_TCPV4, SKB_GSO_UDP_L4,
    PacketType,
)
from emu.kernel.core.skbuff import (
    CHECKSUM_NONE, CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, skb_checksum_help, skb_copy,
)
from emu.kernel.core import rtnetlink
from emu.kernel.drivers.wirenic import wirenic_hw_irq, wirenic_hw_rx, wirenic_register
from emu.kernel.hdr.if_ether import ETH_P_IP
from emu.kernel.hdr.virtio_net import VIRTIO_NET_HDR_F_DATA_VALID
from emu.kernel.ipv4.ip_offload import ipv4_offload_init

from .nic_harness import ipv4_header, tcp_frame, tcp_segment, udp_frame, eth_frame

MAC = b"\x02\x00\x00\x00\x00\x02"
A, B = "10.0.0.1", "10.0.0.2"
MSS = 1000


class Rig:
    """A kernel with one wirenic (eth0) whose ETH_P_IP receiver records skbs."""

    def __init__(self, queues=1, ncpus=1):
        self.clock = FakeClock()
        self.net = Net("g", ncpus, self.clock)
        net_dev_init(self.net)
        ipv4_offload_init(self.net)
        self.dev = wirenic_register(self.net, "eth0", MAC, None, queues=queues)
        dev_open(self.dev)
        self.got = []
        dev_add_pack(self.net, PacketType(ETH_P_IP, self._rcv))

    def _rcv(self, skb, dev, pt, orig_dev):
        self.got.append(skb)
        return 0

    def rx(self, frames, flags=VIRTIO_NET_HDR_F_DATA_VALID, run=True):
        for f in frames:
            wirenic_hw_rx(self.dev, f, flags, now=self.clock.now)
        wirenic_hw_irq(self.dev, self.clock.now)
        if run:
            self.run()

    def run(self):
        for _ in range(1000):
            busy = False
            for sd in self.net.cpus:
                if sd.pending:
                    do_softirq(self.net, sd.cpu)
                    busy = True
            if not busy:
                return

    def payloads(self):
        """The IP packets passed up (frags included), parsed by dpkt."""
        return [dpkt.ip.IP(s.payload()) for s in self.got]


def seg(seq, data, sport=40000, dport=80, ident=None, flags=0x10, **kw):
    return tcp_frame(MAC, A, B, sport, dport, seq, data,
                     ident=ident if ident is not None else 100 + seq // MSS, flags=flags, **kw)


def chunks(n, size=MSS, seq0=1):
    return [(seq0 + i * size, bytes([i % 251]) * size) for i in range(n)]


def rfc1071(data):
    """An independent checksum (word loop): 0 when data with its check field is valid."""
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def l4_valid(ip_bytes):
    ip = dpkt.ip.IP(ip_bytes)
    l4 = bytes(ip_bytes[ip.hl * 4:ip.len])
    pseudo = ip.src + ip.dst + struct.pack("!BBH", 0, ip.p, len(l4))
    return rfc1071(pseudo + l4) == 0


def completed(skb):
    """The merged skb's bytes with the partial checksum completed (as a NIC would)."""
    c = skb_copy(skb)
    assert skb_checksum_help(c) == 0
    return c.payload()


# ---------------------------------------------------------------- TCP merges

def test_in_order_segments_of_one_flow_merge_into_one_skb():
    r = Rig()
    segs = chunks(8)
    r.rx([seg(s, d) for s, d in segs])
    assert len(r.got) == 1
    skb = r.got[0]
    sh = skb.shinfo
    assert sh.gso_size == MSS and sh.gso_segs == 8 and sh.gso_type & SKB_GSO_TCPV4
    assert sh.nr_frags == 7 and skb.data_len == 7 * MSS      # payloads 2..8 as page frags
    assert skb.ip_summed == CHECKSUM_PARTIAL
    ip = dpkt.ip.IP(skb.payload())
    assert ip.len == skb.len == 20 + 20 + 8 * MSS            # tot_len rewritten
    assert rfc1071(skb.payload()[:20]) == 0                  # header checksum updated
    assert ip.data.seq == 1 and bytes(ip.data.data) == b"".join(d for _, d in segs)
    assert l4_valid(completed(skb))
    assert r.net.cpus[0].softnet_stat()["processed"] == 1     # one packet up the stack


def test_different_flows_are_held_apart():
    r = Rig()
    frames = []
    for i, (s, d) in enumerate(chunks(4)):
        frames.append(seg(s, d, sport=40000))
        frames.append(seg(s, d, sport=40001))
        frames.append(tcp_frame(MAC, "10.0.0.3", B, 40000, 80, s, d, ident=100 + i))
    r.rx(frames)
    pkts = r.payloads()
    assert len(pkts) == 3
    assert sorted((socket_ntoa(p.src), p.data.sport) for p in pkts) == [
        ("10.0.0.1", 40000), ("10.0.0.1", 40001), ("10.0.0.3", 40000)]
    assert all(len(p.data.data) == 4 * MSS for p in pkts)


def socket_ntoa(b):
    return ".".join(str(x) for x in b)


def test_out_of_order_segment_flushes_and_order_is_kept():
    r = Rig()
    (s1, d1), (s2, d2), (s3, d3), (s4, d4) = chunks(4)
    r.rx([seg(s1, d1), seg(s2, d2), seg(s4, d4, ident=103), seg(s3, d3, ident=104)])
    pkts = r.payloads()
    # 1+2 merged; 4 does not continue them: they go up, 4 is held; 3 does not
    # continue 4: 4 goes up, 3 is held and flushed at the end.
    assert [(p.data.seq, len(p.data.data)) for p in pkts] == [
        (s1, 2 * MSS), (s4, MSS), (s3, MSS)]


@pytest.mark.parametrize("flag,name", [(0x02, "SYN"), (0x04, "RST"), (0x20, "URG")])
def test_syn_rst_urg_are_never_merged(flag, name):
    r = Rig()
    (s1, d1), (s2, d2), (s3, d3) = chunks(3)
    r.rx([seg(s1, d1), seg(s2, d2), seg(s3, d3, flags=0x10 | flag)])
    pkts = r.payloads()
    assert [len(p.data.data) for p in pkts] == [2 * MSS, MSS]
    assert pkts[1].data.flags & flag
    assert r.got[1].shinfo.gso_size == 0                   # not a GRO packet


def test_psh_is_merged_and_ends_the_packet():
    r = Rig()
    (s1, d1), (s2, d2), (s3, d3), (s4, d4) = chunks(4)
    r.rx([seg(s1, d1), seg(s2, d2, flags=0x18), seg(s3, d3), seg(s4, d4)])
    pkts = r.payloads()
    assert [(p.data.seq, len(p.data.data)) for p in pkts] == [(s1, 2 * MSS), (s3, 2 * MSS)]
    assert pkts[0].data.flags & 0x08                       # the merged packet carries PSH
    assert not pkts[1].data.flags & 0x08


def test_fin_is_merged_and_carried():
    r = Rig()
    (s1, d1), (s2, d2) = chunks(2)
    r.rx([seg(s1, d1), seg(s2, d2, flags=0x11)])
    pkts = r.payloads()
    assert len(pkts) == 1 and pkts[0].data.flags & 0x01 and len(pkts[0].data.data) == 2 * MSS


def test_a_short_segment_is_merged_last():
    r = Rig()
    (s1, d1), (s2, d2) = chunks(2)
    r.rx([seg(s1, d1), seg(s2, d2[:300]), seg(s2 + 300, d2[:MSS])])
    pkts = r.payloads()
    assert [len(p.data.data) for p in pkts] == [MSS + 300, MSS]


def test_a_segment_longer_than_the_first_is_not_merged():
    r = Rig()
    r.rx([seg(1, b"a" * 500), seg(501, b"b" * 800)])
    assert [len(p.data.data) for p in r.payloads()] == [500, 800]


@pytest.mark.parametrize("change", ["ttl", "tos", "ack", "window", "df"])
def test_header_fields_that_must_not_change(change):
    r = Rig()
    (s1, d1), (s2, d2) = chunks(2)
    kw = {"ttl": {"ttl": 63}, "tos": {"tos": 0x10}, "ack": {"ack": 999},
          "window": {"window": 100}, "df": {"df": False}}[change]
    r.rx([seg(s1, d1), seg(s2, d2, **kw)])
    assert [len(p.data.data) for p in r.payloads()] == [MSS, MSS]


def test_tcp_options_must_match():
    ts = lambda v: b"\x01\x01\x08\x0a" + struct.pack("!II", v, 7)      # NOP NOP TS
    r = Rig()
    r.rx([seg(1, b"a" * MSS, options=ts(5)), seg(1 + MSS, b"b" * MSS, options=ts(5)),
          seg(1 + 2 * MSS, b"c" * MSS, options=ts(6))])
    assert [len(p.data.data) for p in r.payloads()] == [2 * MSS, MSS]


def test_ip_id_must_increment_unless_fixed_with_df():
    r = Rig()
    r.rx([seg(1, b"a" * MSS, ident=10), seg(1 + MSS, b"b" * MSS, ident=12)])   # a gap
    assert [len(p.data.data) for p in r.payloads()] == [MSS, MSS]
    r = Rig()
    r.rx([seg(1 + i * MSS, b"x" * MSS, ident=77) for i in range(3)])           # fixed, DF
    assert len(r.got) == 1 and r.got[0].shinfo.gso_type & SKB_GSO_TCP_FIXEDID
    r = Rig()
    r.rx([seg(1 + i * MSS, b"x" * MSS, ident=77, df=False) for i in range(2)])  # fixed, no DF
    assert len(r.got) == 2


def test_ip_options_and_padding_go_up_unmerged():
    r = Rig()
    data = b"z" * 100
    opt = b"\x01\x01\x01\x00"                                   # NOPs, EOL
    frames = []
    for i in range(2):
        t = tcp_segment(A, B, 40000, 80, 1 + i * 100, data)
        frames.append(eth_frame(MAC, b"\x02" * 6,
                                ipv4_header(A, B, 6, len(t), 200 + i, options=opt) + t))
    r.rx(frames)
    assert len(r.got) == 2
    r = Rig()
    r.rx([seg(1, b"q"), seg(2, b"r")])                          # 55-byte frames: padded to 60
    assert len(r.got) == 2 and all(s.shinfo.gso_size == 0 for s in r.got)


def test_bad_tcp_checksum_is_verified_and_not_merged():
    r = Rig()
    (s1, d1), (s2, d2), (s3, d3) = chunks(3)
    frames = [seg(s1, d1), seg(s2, d2, bad_csum=True), seg(s3, d3)]
    r.rx(frames, flags=0)                      # no RX checksum offload: GRO verifies
    by_seq = {dpkt.ip.IP(s.payload()).data.seq: s for s in r.got}
    assert len(r.got) == 3 and sorted(by_seq) == [s1, s2, s3]
    assert by_seq[s1].ip_summed == by_seq[s3].ip_summed == CHECKSUM_UNNECESSARY  # verified
    assert by_seq[s2].ip_summed == CHECKSUM_NONE            # left for TCP to drop
    # The bad one went up at once (GRO_NORMAL), ahead of the held segment, as in Linux.
    assert r.got[0] is by_seq[s2]


def test_max_gro_skbs_per_bucket_flushes_the_oldest():
    r = Rig()
    r.dev.features &= ~(1 << 39)               # no RXHASH: every flow in bucket 0
    frames = [seg(1, b"a" * MSS, sport=41000 + i, ident=1) for i in range(9)]
    r.rx(frames, run=False)
    napi = r.dev.priv.vectors[0].napi
    # Poll by hand without completing, to look at the bucket.
    from emu.kernel.drivers.wirenic import wirenic_clean_rx_irq
    wirenic_clean_rx_irq(r.dev.priv.vectors[0], napi, 64)
    assert napi.gro_count[0] == 8 and len(napi.gro_hash[0]) == 8
    assert napi.rx_count == 1                  # the oldest flow went up (GRO_NORMAL batch)
    assert napi.rx_list[0].buf is not None


def test_gro_off_passes_everything_up_as_is():
    r = Rig()
    rtnetlink.RTNL_OPS["features_set"](r.net, "eth0", gro=False)
    assert not r.dev.features & NETIF_F_GRO
    r.rx([seg(s, d) for s, d in chunks(5)])
    assert len(r.got) == 5 and all(s.shinfo.gso_size == 0 for s in r.got)


def test_normal_packets_go_up_in_gro_normal_batches():
    r = Rig()
    napi = r.dev.priv.vectors[0].napi
    frames = [udp_frame(MAC, A, B, 5000 + i, 53, b"u" * 100, ident=i) for i in range(10)]
    r.rx(frames, run=False)
    from emu.kernel.drivers.wirenic import wirenic_clean_rx_irq
    wirenic_clean_rx_irq(r.dev.priv.vectors[0], napi, 64)
    # gro_normal_batch is 8: eight went up together, two wait for the poll's end.
    assert len(r.got) == 8 and napi.rx_count == 2


def test_held_packets_survive_a_full_weight_poll_until_a_jiffy_passes():
    r = Rig()
    napi = r.dev.priv.vectors[0].napi
    # 64 frames of other flows fill the weight; one TCP flow's segment is held.
    frames = [seg(1, b"a" * MSS)] + [udp_frame(MAC, A, B, 6000 + i, 53, b"u" * 100, ident=i)
                                     for i in range(70)]
    r.rx(frames, run=False)
    sd = r.net.cpus[0]
    sd.pending = 0
    from emu.kernel.core.napi import net_rx_action
    r.net.sysctl["net.core.netdev_budget"] = 64
    net_rx_action(sd)                          # one poll with the whole weight: repolled
    assert napi.gro_bitmask and not any(s.payload()[9] == 6 for s in r.got)
    r.clock.advance(0.002)                     # two jiffies later...
    net_rx_action(sd)                          # ...the rest is polled and all completes
    assert any(s.payload()[9] == 6 for s in r.got) and not napi.gro_bitmask


# ---------------------------------------------------------------- UDP

def udp_flow(n, size=500, sport=7000):
    return [udp_frame(MAC, A, B, sport, 53, bytes([i]) * size, ident=300 + i) for i in range(n)]


def test_udp_is_not_merged_unless_asked():
    r = Rig()
    r.rx(udp_flow(6))
    assert len(r.got) == 6 and all(s.shinfo.gso_size == 0 for s in r.got)


def test_udp_merges_with_rx_udp_gro_forwarding():
    r = Rig()
    rtnetlink.RTNL_OPS["features_set"](r.net, "eth0", **{"rx-udp-gro-forwarding": True})
    assert r.dev.features & NETIF_F_GRO_UDP_FWD
    frames = udp_flow(5) + [udp_frame(MAC, A, B, 7000, 53, b"\x09" * 200, ident=305)]
    r.rx(frames)
    assert len(r.got) == 1
    skb = r.got[0]
    sh = skb.shinfo
    assert sh.gso_type & SKB_GSO_UDP_L4 and sh.gso_size == 500 and sh.gso_segs == 6
    ip = dpkt.ip.IP(skb.payload())
    assert ip.data.ulen == 8 + 5 * 500 + 200
    assert bytes(ip.data.data) == b"".join(bytes([i]) * 500 for i in range(5)) + b"\x09" * 200
    assert l4_valid(completed(skb))


def test_udp_gro_socket_hook():
    r = Rig()

    class Sk:
        udp_gro_enabled = True
    seen = []

    def lookup(skb, saddr, sport, daddr, dport):
        seen.append(dport)
        return Sk() if dport == 53 else None
    r.net.proto["udp4_gro_lookup"] = lookup
    r.rx(udp_flow(4) + [udp_frame(MAC, A, B, 7000, 54, b"x" * 500, ident=400 + i)
                        for i in range(3)])
    sizes = sorted(len(dpkt.ip.IP(s.payload()).data.data) for s in r.got)
    assert sizes == [500, 500, 500, 2000] and 53 in seen and 54 in seen


# ---------------------------------------------------------------- GRO under a real stack

def test_a_tcp_stream_over_a_phys_link_arrives_merged_and_byte_exact():
    import errno
    import os
    from emu.kernel.core.dev import KernelError
    from emu.kernel.socket import (
        SOCK_NONBLOCK, sys_accept, sys_bind, sys_connect, sys_listen, sys_recvfrom,
        sys_sendto, sys_socket,
    )
    from .nic_harness import phys_pair
    lab = phys_pair(ncpus=2, queues=2)
    t1, t2 = lab.task("h1"), lab.task("h2")
    ls = sys_socket(t2, 2, 1 | SOCK_NONBLOCK, 0)
    sys_bind(t2, ls, ("0.0.0.0", 80))
    sys_listen(t2, ls, 4)
    c = sys_socket(t1, 2, 1 | SOCK_NONBLOCK, 0)
    with pytest.raises(KernelError):
        sys_connect(t1, c, ("10.0.0.2", 80))
    lab.run()
    s, _ = sys_accept(t2, ls, SOCK_NONBLOCK)
    data = os.urandom(300_000)
    sent, got = 0, bytearray()
    for _ in range(3000):
        if sent < len(data):
            try:
                sent += sys_sendto(t1, c, data[sent:sent + 65536], 0, None)
            except KernelError as e:
                assert e.errno == errno.EAGAIN
        lab.run()
        while True:
            try:
                d = sys_recvfrom(t2, s, 1 << 20, 0x40)[0]
            except KernelError:
                break
            if not d:
                break
            got += d
        if len(got) >= len(data):
            break
        if sent >= len(data):
            lab.advance(0.05)
    assert bytes(got) == data
    net = lab.nets["h2"]
    frames = rtnetlink.RTNL_OPS["ethtool_stats"](net, "eth0")["rx_packets"]
    assert net.mib["Tcp"]["InSegs"] * 4 < frames          # GRO merged the segments
