"""IPv4: ip_rcv's checks, routing (longest prefix match), ICMP echo, fragmentation.

Linux: net/ipv4/ip_input.c, route.c, fib_frontend.c, icmp.c, ip_output.c
(ip_do_fragment); RFC 791, RFC 792, RFC 1122 3.2.1, RFC 1812 5.3.7.
"""
import errno
import random
import socket
import struct

import dpkt
import pytest

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError
from emu.kernel.hdr.checksum import ip_compute_csum
from emu.kernel.hdr.ip import inet_aton
from emu.kernel.ipv4.route import RTN_LOCAL, RTN_UNICAST, ip_route_output_key

from .harness import PING_DATA, bridge_lab, icmp_echo_bytes, ping


def ip_packet(src="10.0.0.1", dst="10.0.0.2", proto=1, payload=None, ident=77):
    """A valid IPv4 packet (bytearray) carrying payload (default: an echo request)."""
    payload = icmp_echo_bytes(seq=9) if payload is None else payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    pkt = bytearray(hdr + payload)
    fix_csum(pkt)
    return pkt


def fix_csum(pkt, ihl=20):
    pkt[10:12] = b"\x00\x00"
    struct.pack_into("!H", pkt, 10, ip_compute_csum(pkt, 0, ihl))


def to_h2(lab, ip, dst_mac=None):
    """Wrap an IP packet in an Ethernet frame from h1's MAC to h2's."""
    dst_mac = dst_mac or lab.dev("h2", "eth0").dev_addr
    return dst_mac + lab.dev("h1", "eth0").dev_addr + b"\x08\x00" + bytes(ip)


def snmp(lab, node):
    return rtnetlink.counters(lab.nets[node])["snmp"]


def ip_frames(frames):
    out = []
    for f in frames:
        eth = dpkt.ethernet.Ethernet(f)
        if eth.type == dpkt.ethernet.ETH_TYPE_IP:
            out.append((eth, eth.data))
    return out


def assert_valid_ip(f):
    """dpkt's own reading and checksums of an IPv4 frame agree with the bytes."""
    eth = dpkt.ethernet.Ethernet(f)
    ip = eth.data
    assert isinstance(ip, dpkt.ip.IP) and ip.v == 4 and ip.hl == 5
    assert ip.len == len(f) - 14
    assert dpkt.in_cksum(f[14:34]) == 0
    sent = ip.sum
    ip.sum = 0
    assert struct.unpack_from("!H", bytes(ip), 10)[0] == sent     # dpkt recomputes it
    return eth, dpkt.ip.IP(f[14:])


# ---------------------------------------------------------------- ICMP echo

def test_echo_round_trip():
    lab = bridge_lab()
    [reply] = ping(lab, "h1", "10.0.0.2", seq=7, ident=0x77)
    ip = dpkt.ip.IP(reply)
    assert ip.src == socket.inet_aton("10.0.0.2") and ip.dst == socket.inet_aton("10.0.0.1")
    assert ip.p == 1 and ip.ttl == 64
    icmp = ip.data
    assert icmp.type == 0 and icmp.code == 0
    assert (icmp.data.id, icmp.data.seq, icmp.data.data) == (0x77, 7, PING_DATA)
    s2, s1 = snmp(lab, "h2"), snmp(lab, "h1")
    assert s2["Icmp"]["InEchos"] == 1 and s2["Icmp"]["OutEchoReps"] == 1
    assert s2["IcmpMsg"] == {"InType8": 1, "OutType0": 1}
    assert s1["Icmp"]["OutEchos"] == 1 and s1["Icmp"]["InEchoReps"] == 1
    assert s2["Ip"]["InReceives"] == 1 and s2["Ip"]["InDelivers"] == 1
    assert s2["Ip"]["OutRequests"] == 1


def test_every_frame_on_the_wire_is_valid():
    lab = bridge_lab()
    marks = {id(p): len(p.sent) for p in lab.ports}
    assert ping(lab, "h1", "10.0.0.2", seq=1)
    assert ping(lab, "h1", "10.0.0.2", seq=2)
    macs = {lab.dev(h, "eth0").dev_addr: h for h in ("h1", "h2")}
    ips = {"h1": socket.inet_aton("10.0.0.1"), "h2": socket.inet_aton("10.0.0.2")}
    seen = []
    for port in lab.ports:
        for f in port.sent[marks[id(port)]:]:
            eth = dpkt.ethernet.Ethernet(f)
            assert eth.type in (dpkt.ethernet.ETH_TYPE_IP, dpkt.ethernet.ETH_TYPE_ARP)
            src = macs[eth.src]                           # only the hosts originate frames
            if eth.type == dpkt.ethernet.ETH_TYPE_ARP:
                assert eth.data.sha == eth.src and eth.data.spa == ips[src]
                continue
            _, ip = assert_valid_ip(f)
            assert eth.dst in macs and macs[eth.dst] != src
            assert ip.src == ips[src] and ip.dst == ips[macs[eth.dst]]
            icmp = ip.data
            sent = icmp.sum
            icmp.sum = 0
            assert struct.unpack_from("!H", bytes(icmp), 2)[0] == sent
            assert dpkt.in_cksum(bytes(ip)[20:]) == 0
            assert icmp.data.data == PING_DATA
            seen.append((src, icmp.type, icmp.data.seq))
    # Each echo and reply crossed two wires (host -> bridge -> host).
    assert sorted(seen) == sorted([("h1", 8, 1), ("h1", 8, 2), ("h2", 0, 1), ("h2", 0, 2)] * 2)


def test_ping_own_addresses_through_loopback():
    lab = bridge_lab()
    sent = len(lab.port("h1", "eth0").sent)
    assert ping(lab, "h1", "10.0.0.1")
    assert ping(lab, "h1", "127.0.0.1")
    assert len(lab.port("h1", "eth0").sent) == sent       # nothing left the node
    assert lab.dev("h1", "lo").stats.tx_packets == 4


def test_icmp_echo_ignore_all():
    lab = bridge_lab()
    rtnetlink.sysctl_set(lab.nets["h2"], "net.ipv4.icmp_echo_ignore_all", 1)
    assert ping(lab, "h1", "10.0.0.2") == []
    assert snmp(lab, "h2")["Icmp"]["InEchos"] == 1
    assert snmp(lab, "h2")["Icmp"]["OutEchoReps"] == 0


def test_echo_to_a_broadcast_is_ignored_by_default():
    lab = bridge_lab()
    bcast = ip_packet(dst="10.0.0.255")
    lab.inject("h2", "eth0", to_h2(lab, bcast, dst_mac=b"\xff" * 6))
    s = snmp(lab, "h2")["Icmp"]
    assert s["InEchos"] == 1 and s["OutEchoReps"] == 0


@pytest.mark.parametrize("dst", ["10.0.0.255", "255.255.255.255"])
def test_echo_to_a_broadcast_in_a_unicast_frame_is_ignored_too(dst):
    # Linux decides on the route type (RTCF_BROADCAST), not the Ethernet address.
    lab = bridge_lab()
    lab.inject("h2", "eth0", to_h2(lab, ip_packet(dst=dst)))
    assert snmp(lab, "h2")["Icmp"]["OutEchoReps"] == 0
    lab.nets["h2"].sysctl["net.ipv4.icmp_echo_ignore_broadcasts"] = 0
    lab.inject("h2", "eth0", to_h2(lab, ip_packet(dst=dst)))
    assert snmp(lab, "h2")["Icmp"]["OutEchoReps"] == 1


def test_bad_icmp_checksum():
    lab = bridge_lab()
    echo = bytearray(icmp_echo_bytes())
    echo[-1] ^= 0xFF
    lab.inject("h2", "eth0", to_h2(lab, ip_packet(payload=bytes(echo))))
    s = snmp(lab, "h2")["Icmp"]
    assert s["InCsumErrors"] == 1 and s["InErrors"] == 1 and s["OutEchoReps"] == 0
    assert lab.nets["h2"].drop_reasons["ICMP_CSUM"] == 1


def test_ethernet_padding_is_trimmed():
    lab = bridge_lab()
    echo = icmp_echo_bytes(seq=3, data=b"abcd")          # 20 + 12 bytes of IP
    frame = to_h2(lab, ip_packet(payload=echo)) + b"\x00" * 14      # padded to 60
    port = lab.port("h2", "eth0")
    start = len(port.sent)
    lab.inject("h2", "eth0", frame)
    [(_, ip)] = ip_frames(port.sent[start:])
    assert ip.len == 32                                  # the reply carries no padding
    assert ip.data.type == 0 and ip.data.data.data == b"abcd"
    assert_valid_ip(port.sent[-1])


def test_unknown_protocol_gets_protocol_unreachable():
    lab = bridge_lab()
    port = lab.port("h2", "eth0")
    assert ping(lab, "h1", "10.0.0.2")          # h2 knows h1's MAC
    start = len(port.sent)
    pkt = ip_packet(proto=253, payload=b"experimental")
    lab.inject("h2", "eth0", to_h2(lab, pkt))
    assert snmp(lab, "h2")["Ip"]["InUnknownProtos"] == 1
    [(_, ip)] = ip_frames(port.sent[start:])
    assert (ip.data.type, ip.data.code) == (3, 2)
    assert bytes(ip.data.data.data)[:20] == bytes(pkt[:20])       # quotes our header


# ---------------------------------------------------------------- ip_rcv: bad input

def _mutate(pkt, case):
    if case == "bad checksum":
        pkt[10] ^= 0xFF
    elif case == "ihl below 5":
        pkt[0] = 0x44
        fix_csum(pkt, 16)
    elif case == "version 6":
        pkt[0] = 0x65
        fix_csum(pkt)
    elif case == "total length beyond the frame":
        struct.pack_into("!H", pkt, 2, len(pkt) + 10)
        fix_csum(pkt)
    elif case == "total length below the header":
        struct.pack_into("!H", pkt, 2, 12)
        fix_csum(pkt)
    elif case == "shorter than a header":
        del pkt[16:]
    return pkt


@pytest.mark.parametrize("case, counters, reason", [
    ("bad checksum", {("Ip", "InHdrErrors"): 1, ("IpExt", "InCsumErrors"): 1}, "IP_CSUM"),
    ("ihl below 5", {("Ip", "InHdrErrors"): 1}, "IP_INHDR"),
    ("version 6", {("Ip", "InHdrErrors"): 1}, "IP_INHDR"),
    ("total length beyond the frame", {("IpExt", "InTruncatedPkts"): 1}, "PKT_TOO_SMALL"),
    ("total length below the header", {("Ip", "InHdrErrors"): 1}, "IP_INHDR"),
    # ip_rcv_core: pskb_may_pull(iphdr) fails -> inhdr_error, reason IP_INHDR
    ("shorter than a header", {("Ip", "InHdrErrors"): 1}, "IP_INHDR"),
])
def test_bad_ip_header_is_dropped_and_counted(case, counters, reason):
    lab = bridge_lab()
    net = lab.nets["h2"]
    before = snmp(lab, "h2")
    lab.inject("h2", "eth0", to_h2(lab, _mutate(ip_packet(), case)))
    after = snmp(lab, "h2")
    for (table, name), n in counters.items():
        assert after[table][name] - before[table][name] == n, (table, name)
    assert after["Ip"]["InReceives"] == before["Ip"]["InReceives"] + 1
    assert after["Ip"]["InDiscards"] == before["Ip"]["InDiscards"]
    assert after["Ip"]["InDelivers"] == before["Ip"]["InDelivers"]
    assert after["Icmp"]["InMsgs"] == before["Icmp"]["InMsgs"]
    assert net.drop_reasons[reason] == 1
    assert ping(lab, "h1", "10.0.0.2")


def test_frame_for_another_mac_is_dropped_before_ip_counts_it():
    lab = bridge_lab()
    lab.inject("h2", "eth0", to_h2(lab, ip_packet(), dst_mac=b"\x02\x00\x00\x00\x00\x01"))
    assert snmp(lab, "h2")["Ip"]["InReceives"] == 0
    assert lab.nets["h2"].drop_reasons["OTHERHOST"] == 1


@pytest.mark.parametrize("src, dst, side", [
    ("10.0.0.1", "127.0.0.1", "IP_LOCALNET"),        # martian destination (route_localnet=0)
    ("127.0.0.1", "10.0.0.2", "IP_LOCALNET"),        # martian source
    ("0.0.0.7", "10.0.0.2", "IP_INVALID_SOURCE"),    # 0/8 source
    ("224.0.0.1", "10.0.0.2", "IP_INVALID_SOURCE"),  # multicast source
    ("10.0.0.1", "0.0.0.9", "IP_INVALID_DEST"),      # 0/8 destination
    ("10.0.0.2", "10.0.0.2", "IP_LOCAL_SOURCE"),     # our own address (accept_local=0)
])
def test_martian_addresses_are_dropped(src, dst, side):
    lab = bridge_lab()
    port = lab.port("h2", "eth0")
    start = len(port.sent)
    lab.inject("h2", "eth0", to_h2(lab, ip_packet(src=src, dst=dst)))
    assert port.sent[start:] == []                       # in particular no reply from 127.0.0.1
    s = snmp(lab, "h2")
    assert s["Icmp"]["InMsgs"] == 0 and s["Ip"]["InDelivers"] == 0
    assert s["Ip"]["InAddrErrors"] == 0                  # Linux: no SNMP counter for martians
    assert lab.nets["h2"].drop_reasons[side] == 1


def test_not_a_router():
    lab = bridge_lab()
    lab.inject("h2", "eth0", to_h2(lab, ip_packet(dst="10.0.0.9")))
    s = snmp(lab, "h2")
    assert s["Ip"]["ForwDatagrams"] == 0 and s["Ip"]["InDelivers"] == 0
    assert s["Ip"]["InAddrErrors"] == 1


def test_random_garbage_never_raises():
    lab = bridge_lab()
    rng = random.Random(791)
    good = ip_packet()
    for _ in range(400):
        pkt = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            pkt[rng.randrange(len(pkt))] = rng.getrandbits(8)
        if rng.random() < 0.3:
            del pkt[rng.randrange(len(pkt)):]
        if rng.random() < 0.7 and len(pkt) >= 20 and (pkt[0] & 15) * 4 <= len(pkt):
            fix_csum(pkt, max(20, (pkt[0] & 15) * 4))   # let the deeper layers see it
        ethertype = rng.choice([b"\x08\x00", b"\x08\x06"])
        lab.inject("h2", "eth0", lab.dev("h2", "eth0").dev_addr + b"\x02" * 6 + ethertype + pkt)
    lab.advance(5, tick=0.5)
    assert ping(lab, "h1", "10.0.0.2")


# ---------------------------------------------------------------- routing

def test_longest_prefix_match():
    lab = bridge_lab()
    net = lab.nets["h1"]
    rtnetlink.inet_rtm_newroute(net, "10.1.0.0/16", via="10.0.0.2")
    rtnetlink.inet_rtm_newroute(net, "10.1.2.0/24", via="10.0.0.3")
    rtnetlink.inet_rtm_newroute(net, "10.1.2.128/25", via="10.0.0.4")
    rtnetlink.inet_rtm_newroute(net, "default", via="10.0.0.254")

    def gw(dst):
        rt = ip_route_output_key(net, inet_aton(dst))
        return socket.inet_ntoa(rt.rt_gw4.to_bytes(4, "big")) if rt.rt_gw4 else None

    assert gw("10.1.2.200") == "10.0.0.4"
    assert gw("10.1.2.5") == "10.0.0.3"
    assert gw("10.1.3.5") == "10.0.0.2"
    assert gw("192.0.2.1") == "10.0.0.254"
    assert gw("10.0.0.7") is None                        # connected: no gateway
    rt = ip_route_output_key(net, inet_aton("10.0.0.1"))
    assert rt.rt_type == RTN_LOCAL and rt.dev.name == "lo"
    rtnetlink.inet_rtm_delroute(net, "10.1.2.0/24")
    assert gw("10.1.2.5") == "10.0.0.2"
    assert gw("10.1.2.200") == "10.0.0.4"


def test_lower_metric_wins():
    lab = bridge_lab()
    net = lab.nets["h1"]
    rtnetlink.inet_rtm_newroute(net, "default", via="10.0.0.254", metric=10)
    rtnetlink.inet_rtm_newroute(net, "default", via="10.0.0.253", metric=5)
    assert ip_route_output_key(net, inet_aton("198.51.100.1")).rt_gw4 == inet_aton("10.0.0.253")
    rows = [r for r in rtnetlink.inet_dump_fib(net) if r["dst"] == "default"]
    assert [(r["via"], r["metric"]) for r in rows] == [("10.0.0.253", 5), ("10.0.0.254", 10)]


def test_route_errors():
    lab = bridge_lab()
    net = lab.nets["h1"]
    with pytest.raises(KernelError) as e:
        ip_route_output_key(net, inet_aton("192.0.2.1"))
    assert e.value.errno == errno.ENETUNREACH
    with pytest.raises(KernelError) as e:
        rtnetlink.inet_rtm_newroute(net, "10.9.0.0/16", via="192.0.2.1")   # not on-link
    assert e.value.errno == errno.ENETUNREACH
    with pytest.raises(KernelError) as e:
        rtnetlink.inet_rtm_newroute(net, "10.9.0.1/16", via="10.0.0.2")    # host bits set
    assert e.value.errno == errno.EINVAL
    rtnetlink.inet_rtm_newroute(net, "10.9.0.0/16", via="10.0.0.2")
    with pytest.raises(KernelError) as e:
        rtnetlink.inet_rtm_newroute(net, "10.9.0.0/16", via="10.0.0.2")
    assert e.value.errno == errno.EEXIST


def test_routes_follow_the_device_down_and_up():
    lab = bridge_lab()
    net = lab.nets["h1"]
    assert ip_route_output_key(net, inet_aton("10.0.0.2")).rt_type == RTN_UNICAST
    rtnetlink.rtnl_setlink(net, "eth0", up=False)
    with pytest.raises(KernelError):
        ip_route_output_key(net, inet_aton("10.0.0.2"))
    rtnetlink.rtnl_setlink(net, "eth0", up=True)
    lab.run()
    assert ping(lab, "h1", "10.0.0.2")


# ---------------------------------------------------------------- fragmentation

@pytest.mark.parametrize("mtu, sizes", [(1500, [1480, 1480, 40]), (576, [552] * 5 + [240])])
def test_ip_do_fragment(mtu, sizes):
    lab = bridge_lab()
    rtnetlink.rtnl_setlink(lab.nets["h1"], "eth0", mtu=mtu)
    port = lab.port("h1", "eth0")
    start = len(port.sent)
    data = bytes(random.Random(3).getrandbits(8) for _ in range(3000 - 8))
    echo = icmp_echo_bytes(seq=5, data=data)
    ping(lab, "h1", "10.0.0.2", seq=5, data=data)      # the fragments waited for ARP
    frags = [assert_valid_ip(f)[1] for f in port.sent[start:]
             if dpkt.ethernet.Ethernet(f).type == dpkt.ethernet.ETH_TYPE_IP]
    assert [len(bytes(ip.data)) for ip in frags] == sizes
    assert all(20 + len(bytes(ip.data)) <= mtu for ip in frags)
    assert len({ip.id for ip in frags}) == 1
    assert [ip.offset * 8 for ip in frags] == [sum(sizes[:i]) for i in range(len(sizes))]
    assert [ip.mf for ip in frags] == [1] * (len(sizes) - 1) + [0]
    assert not any(ip.df for ip in frags)
    assert b"".join(bytes(ip.data) for ip in frags) == echo
    s = snmp(lab, "h1")["Ip"]
    assert s["FragOKs"] == 1 and s["FragCreates"] == len(sizes)


@pytest.mark.parametrize("name,value", [
    ("net.ipv4.ip_default_ttl", 999), ("net.ipv4.ip_default_ttl", "0"),
    ("net.ipv4.ip_local_port_range", "40000 30000"), ("net.ipv4.ip_local_port_range", "0 100"),
    ("net.ipv4.tcp_rmem", "0 131072 6291456"), ("net.ipv4.tcp_syn_retries", 128),
    ("net.ipv4.icmp_ratelimit", 2**31), ("net.ipv4.ip_forward", "abc")])
def test_a_sysctl_out_of_its_range_is_einval_and_changes_nothing(name, value):
    # Linux's ctl_table bounds: ip_default_ttl=999 was stored, and every send after
    # it oopsed building its IP header (ping: sendmsg: Input/output error).
    lab = bridge_lab()
    net = lab.nets["h1"]
    before = net.sysctl[name]
    with pytest.raises(KernelError) as e:
        rtnetlink.sysctl_set(net, name, value)
    assert e.value.errno == errno.EINVAL
    assert str(e.value.strerror) == 'sysctl: setting key "%s": Invalid argument' % name
    assert net.sysctl[name] == before
    assert ping(lab, "h1", "10.0.0.2")
    assert net.oops == 0


def test_sysctl_bounds_are_inclusive_and_an_unknown_congestion_control_is_enoent():
    lab = bridge_lab()
    net = lab.nets["h1"]
    assert rtnetlink.sysctl_set(net, "net.ipv4.ip_default_ttl", "255") == 255
    replies = ping(lab, "h2", "10.0.0.1")
    assert replies and replies[0][8] == 255          # h1's echo reply leaves with TTL 255
    assert rtnetlink.sysctl_set(net, "net.ipv4.ip_local_port_range", "5000 5000") == (5000, 5000)
    with pytest.raises(KernelError) as e:
        rtnetlink.sysctl_set(net, "net.ipv4.tcp_congestion_control", "foo")
    assert e.value.errno == errno.ENOENT
    assert net.sysctl["net.ipv4.tcp_congestion_control"] == "cubic"
    assert rtnetlink.sysctl_set(net, "net.ipv4.tcp_congestion_control", "reno") == "reno"
