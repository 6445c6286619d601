"""The stack's fast paths keep Linux's behaviour: cached routes on sockets
(sk_dst_cache) and early demux (sk_rx_dst) are dropped whenever the routing
state changes (rt_genid), the merged FIB answers as local-then-main, UDP
sends built from the socket's header template are what ip_build_header made.

Linux: net/core/dst.c, net/ipv4/route.c, net/ipv4/ip_input.c
(ip_rcv_finish_core), net/ipv4/tcp_ipv4.c (tcp_v4_early_demux).
"""
import errno

import dpkt
import pytest

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError
from emu.kernel.ipv4 import ip_input
from emu.kernel.socket import (
    SOCK_NONBLOCK, sys_bind, sys_connect, sys_recvfrom, sys_sendto, sys_socket,
)
from tests.kernel.harness import bridge_lab, ping
from tests.kernel.test_tcp import Pair, pump, recv_all

AF_INET, SOCK_DGRAM = 2, 2


@pytest.fixture
def route_inputs(monkeypatch):
    """Count the FIB input lookups per node (ip_route_input_noref calls)."""
    calls = {}
    real = ip_input.ip_route_input_noref

    def counting(skb, daddr, saddr, tos, dev):
        calls[dev.net.name] = calls.get(dev.net.name, 0) + 1
        return real(skb, daddr, saddr, tos, dev)
    monkeypatch.setattr(ip_input, "ip_route_input_noref", counting)
    return calls


def test_established_tcp_segments_skip_the_route_lookup(route_inputs):
    p = Pair(tso=False).connect()
    pump(p, (p.t1, p.c), (p.t2, p.s), b"a" * 5000)        # sk_rx_dst learned both ways
    route_inputs.clear()
    data = bytes(range(256)) * 200
    assert pump(p, (p.t1, p.c), (p.t2, p.s), data) == data
    assert route_inputs == {}                       # every data segment and ACK early-demuxed
    for net in (p.lab.nets["h1"], p.lab.nets["h2"]):
        net.sysctl["net.ipv4.tcp_early_demux"] = 0
    assert pump(p, (p.t1, p.c), (p.t2, p.s), data) == data
    assert route_inputs.get("h2", 0) > 10 and route_inputs.get("h1", 0) > 0


def test_early_demux_forgets_the_route_when_the_address_goes():
    """A removed address ends delivery at once: the cached input route is stale
    (rt_genid), so the segment is routed again and dropped as not ours."""
    p = Pair(tso=False).connect()
    pump(p, (p.t1, p.c), (p.t2, p.s), b"a" * 3000)
    h2 = p.lab.nets["h2"]
    assert p.sk("s").proto_data.sk_rx_dst is not None
    before = h2.mib["Ip"]["InAddrErrors"]
    rtnetlink.inet_rtm_deladdr(h2, "eth0", "10.0.0.2/24")
    sys_sendto(p.t1, p.c, b"after", 0, None)
    p.lab.run()
    assert recv_all(p.t2, p.s) == b""
    assert h2.mib["Ip"]["InAddrErrors"] > before


def test_a_connected_udp_socket_follows_route_changes():
    lab = bridge_lab()
    t1, t2 = lab.task("h1"), lab.task("h2")
    rx = sys_socket(t2, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    sys_bind(t2, rx, ("0.0.0.0", 9000))
    tx = sys_socket(t1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    sys_connect(t1, tx, ("10.0.0.2", 9000))
    sys_sendto(t1, tx, b"one", 0, None)
    lab.run()
    assert sys_recvfrom(t2, rx, 100)[0] == b"one"
    sk = t1.fds[tx].sk
    cached = sk.sk_dst_cache
    assert cached is not None
    # The device goes down: its routes go, the cached dst is stale, the send fails.
    rtnetlink.rtnl_setlink(lab.nets["h1"], "eth0", up=False)
    with pytest.raises(KernelError) as e:
        sys_sendto(t1, tx, b"two", 0, None)
    assert e.value.errno == errno.ENETUNREACH
    rtnetlink.rtnl_setlink(lab.nets["h1"], "eth0", up=True)
    lab.run()
    sys_sendto(t1, tx, b"three", 0, None)
    lab.run()
    assert sys_recvfrom(t2, rx, 100)[0] == b"three"
    assert sk.sk_dst_cache is not None and sk.sk_dst_cache is not cached


def test_a_cached_route_is_replaced_by_a_new_more_specific_one():
    """A route added after connect() is used by the next send (rt_genid bump)."""
    lab = bridge_lab()
    h1 = lab.nets["h1"]
    t1 = lab.task("h1")
    tx = sys_socket(t1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    sys_connect(t1, tx, ("10.0.0.77", 9000))
    sys_sendto(t1, tx, b"x", 0, None)
    lab.run()
    assert t1.fds[tx].sk.sk_dst_cache.rt_gw4 == 0
    rtnetlink.inet_rtm_newroute(h1, "10.0.0.77/32", via="10.0.0.2")
    sys_sendto(t1, tx, b"y", 0, None)
    lab.run()
    assert t1.fds[tx].sk.sk_dst_cache.rt_gw4 == 0x0A000002


def test_merged_fib_prefers_the_local_table_at_equal_prefixes():
    lab = bridge_lab()
    h2 = lab.nets["h2"]
    # A main-table host route to h2's own address does not make it remote.
    rtnetlink.inet_rtm_newroute(h2, "10.0.0.2/32", dev="eth0")
    assert len(ping(lab, "h1", "10.0.0.2")) == 1
    from emu.kernel.ipv4.route import RTN_LOCAL, fib_lookup
    assert fib_lookup(h2, 0x0A000002).type == RTN_LOCAL
    # Longest prefix across both tables: main's /24 for a neighbour.
    assert fib_lookup(h2, 0x0A000001).plen == 24


def test_udp_datagrams_from_the_template_are_well_formed():
    lab = bridge_lab()
    t1, t2 = lab.task("h1"), lab.task("h2")
    rx = sys_socket(t2, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    sys_bind(t2, rx, ("0.0.0.0", 9000))
    tx = sys_socket(t1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    for i, n in enumerate((0, 1, 17, 1000, 1472)):
        sys_sendto(t1, tx, bytes([i]) * n, 0, ("10.0.0.2", 9000))
    lab.run()
    ids = []
    for f in lab.port("h1", "eth0").sent:
        ip = dpkt.ethernet.Ethernet(f).data
        if not isinstance(ip, dpkt.ip.IP) or ip.p != 17:
            continue
        raw = bytes(ip)
        ip2 = dpkt.ip.IP(raw)
        ip2.sum = 0
        assert ip.sum == dpkt.ip.IP(bytes(ip2)).sum       # header checksum verifies
        assert ip.len == len(raw) and ip.ttl == 64 and ip.df and not ip.mf and ip.offset == 0
        ids.append(ip.id)
    # Unconnected, DF: ID 0, as Linux's ip_select_ident_segs gives them.
    assert ids == [0] * 5
    got = [sys_recvfrom(t2, rx, 2000)[0] for _ in range(5)]
    assert [len(g) for g in got] == [0, 1, 17, 1000, 1472]


def _rfc1071(data):
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def test_ip_send_check_matches_rfc1071_including_the_all_ones_sum():
    import random
    from emu.kernel.ipv4.ip_output import ip_send_check
    rng = random.Random(7)
    headers = [bytearray([0x45]) + bytearray(rng.randrange(256) for _ in range(19))
               for _ in range(2000)]
    # A header whose words sum to exactly 0xffff: its checksum is 0.
    h = bytearray(20)
    h[0], h[1] = 0x45, 0x00
    h[2:4] = (0xFFFF - 0x4500).to_bytes(2, "big")
    headers.append(h)
    for h in headers:
        buf = bytearray(b"\xee" * 6) + h
        ip_send_check(buf, 6)
        ref = bytearray(h)
        ref[10:12] = b"\x00\x00"
        assert (buf[16] << 8 | buf[17]) == _rfc1071(ref)
        assert _rfc1071(buf[6:26]) == 0                   # and it verifies
    assert buf[16:18] == b"\x00\x00"


def _udp_pair(lab):
    t1, t2 = lab.task("h1"), lab.task("h2")
    rx = sys_socket(t2, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    sys_bind(t2, rx, ("0.0.0.0", 9000))
    sys_connect(t2, rx, ("10.0.0.1", 9001))
    tx = sys_socket(t1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    sys_bind(t1, tx, ("0.0.0.0", 9001))
    sys_connect(t1, tx, ("10.0.0.2", 9000))
    return t1, tx, t2, rx


def test_connected_udp_datagrams_skip_the_route_lookup(route_inputs):
    lab = bridge_lab()
    t1, tx, t2, rx = _udp_pair(lab)
    sys_sendto(t1, tx, b"first", 0, None)           # routed; the socket learns its input route
    lab.run()
    assert sys_recvfrom(t2, rx, 100)[0] == b"first"
    route_inputs.clear()
    for i in range(5):
        sys_sendto(t1, tx, b"d%d" % i, 0, None)
    lab.run()
    assert [sys_recvfrom(t2, rx, 100)[0] for _ in range(5)] == [b"d%d" % i for i in range(5)]
    assert route_inputs.get("h2", 0) == 0
    # With udp_early_demux off, every datagram is routed again.
    lab.nets["h2"].sysctl["net.ipv4.udp_early_demux"] = 0
    sys_sendto(t1, tx, b"slow", 0, None)
    lab.run()
    assert sys_recvfrom(t2, rx, 100)[0] == b"slow"
    assert route_inputs.get("h2", 0) == 1


def test_udp_early_demux_forgets_the_route_when_the_address_goes():
    lab = bridge_lab()
    t1, tx, t2, rx = _udp_pair(lab)
    sys_sendto(t1, tx, b"first", 0, None)
    lab.run()
    assert sys_recvfrom(t2, rx, 100)[0] == b"first"
    h2 = lab.nets["h2"]
    before = h2.mib["Ip"]["InAddrErrors"]
    rtnetlink.inet_rtm_deladdr(h2, "eth0", "10.0.0.2/24")
    sys_sendto(t1, tx, b"after", 0, None)
    lab.run()
    with pytest.raises(KernelError) as e:
        sys_recvfrom(t2, rx, 100)
    assert e.value.errno == errno.EAGAIN
    assert h2.mib["Ip"]["InAddrErrors"] > before


def test_skb_clone_copies_every_header_field():
    from emu.kernel.core.skbuff import _HEADER_FIELDS, alloc_skb, skb_clone
    skb = alloc_skb(64)
    for i, name in enumerate(_HEADER_FIELDS):
        setattr(skb, name, ("v", i))
    c = skb_clone(skb)
    for i, name in enumerate(_HEADER_FIELDS):
        assert getattr(c, name) == (None if name == "sk" else ("v", i)), name
