"""IP IDs as Linux picks them (include/net/ip.h ip_select_ident_segs,
net/ipv4/route.c __ip_select_ident): a connected socket's own counter, one ID
per segment of a GSO skb; 0 for other DF datagrams; hashed per-destination
counters for the rest. Inline kernels under the fake clock, frames read with dpkt."""
import dpkt

from emu.kernel.socket import (
    SOCK_NONBLOCK, sys_bind, sys_connect, sys_sendto, sys_setsockopt, sys_socket,
)
from tests.kernel.harness import bridge_lab, ping
from tests.kernel.test_tcp import Pair

AF_INET, SOCK_DGRAM = 2, 2
SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT = 0, 10, 0


def ip_frames(lab, node, proto):
    out = []
    for f in lab.port(node, "eth0").sent:
        ip = dpkt.ethernet.Ethernet(f).data
        if isinstance(ip, dpkt.ip.IP) and ip.p == proto:
            out.append(ip)
    return out


def test_tcp_uses_the_socket_counter_one_id_per_gso_segment_and_synack_gets_zero():
    p = Pair().connect()
    c = p.sk("c")
    syn = ip_frames(p.lab, "h1", 6)[0]
    synack = ip_frames(p.lab, "h2", 6)[0]
    assert syn.df and synack.df
    # ip_build_and_send_pkt: the SYN-ACK is DF from no connected socket: ID 0.
    assert synack.id == 0
    # SYN and the handshake's ACK: consecutive IDs of the client's own counter.
    first = [ip.id for ip in ip_frames(p.lab, "h1", 6)]
    assert first == [(syn.id + i) & 0xFFFF for i in range(len(first))]
    assert c.inet_id & 0xFFFF == (syn.id + len(first)) & 0xFFFF
    # A GSO skb of n segments takes n IDs: the next frame's ID is n further on.
    sys_sendto(p.t1, p.c, b"x" * 20000, 0, None)
    p.lab.run()
    frames = ip_frames(p.lab, "h1", 6)[len(first):]
    mss = c.proto_data.mss_cache
    nxt = frames[0].id
    gso_seen = False
    for ip in frames:
        assert ip.id == nxt
        segs = max(1, -(-len(ip.data.data) // mss))
        gso_seen |= segs > 1
        nxt = (nxt + segs) & 0xFFFF
    assert gso_seen
    # The server's established socket has its own counter too (not 0).
    s_ids = [ip.id for ip in ip_frames(p.lab, "h2", 6)[1:]]
    assert s_ids == [(s_ids[0] + i) & 0xFFFF for i in range(len(s_ids))]


def test_rst_from_no_socket_has_id_zero():
    lab = bridge_lab()
    t1 = lab.task("h1")
    fd = sys_socket(t1, AF_INET, 1 | SOCK_NONBLOCK, 0)
    try:
        sys_connect(t1, fd, ("10.0.0.2", 9))
    except Exception:
        pass
    lab.run()
    rst = ip_frames(lab, "h2", 6)[0]
    assert rst.data.flags & dpkt.tcp.TH_RST and rst.df and rst.id == 0


def test_udp_unconnected_df_gets_zero_connected_counts_from_its_seed():
    lab = bridge_lab()
    t1 = lab.task("h1")
    u = sys_socket(t1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    for _ in range(3):
        sys_sendto(t1, u, b"a" * 100, 0, ("10.0.0.2", 9000))
    lab.run()
    assert [ip.id for ip in ip_frames(lab, "h1", 17)] == [0, 0, 0]
    c = sys_socket(t1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    sys_connect(t1, c, ("10.0.0.2", 9001))
    seed = t1.fds[c].sk.inet_id
    for _ in range(3):
        sys_sendto(t1, c, b"b" * 100, 0, None)
    lab.run()
    # atomic_add_return: the first datagram carries seed + 1.
    assert [ip.id for ip in ip_frames(lab, "h1", 17)[3:]] == \
        [(seed + i) & 0xFFFF for i in (1, 2, 3)]


def _hashed_ids(seed):
    lab = bridge_lab(seed=seed)
    t1 = lab.task("h1")
    u = sys_socket(t1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    sys_bind(t1, u, ("0.0.0.0", 5555))
    sys_setsockopt(t1, u, SOL_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    for _ in range(3):
        sys_sendto(t1, u, b"c" * 100, 0, ("10.0.0.2", 9000))
    lab.run()
    ids = [ip.id for ip in ip_frames(lab, "h1", 17) if not ip.df]
    replies = ping(lab, "h2", "10.0.0.1")
    reply_id = dpkt.ip.IP(replies[0]).id
    return ids, reply_id


def test_no_df_and_icmp_use_the_hashed_per_destination_counters_deterministically():
    ids, reply_id = _hashed_ids(seed=1)
    assert len(ids) == 3
    # Same destination, same jiffy: consecutive IDs from its bucket.
    assert ids == [(ids[0] + i) & 0xFFFF for i in range(3)]
    # The echo reply (ICMP socket: no DF, no peer) is hashed too, not 0.
    assert reply_id != 0
    # Replayable: the same seed gives the same IDs; another seed other ones.
    assert _hashed_ids(seed=1) == (ids, reply_id)
    assert _hashed_ids(seed=2)[0] != ids


def test_the_flow_hash_is_remembered_and_equals_siphash_of_the_nets_key():
    """__ip_select_ident keeps each flow's SipHash (a pure function of the
    net's key): the bucket it picks is the one SipHash names, every time."""
    from emu.kernel.ipv4.route import IP_IDENTS_SZ, __ip_select_ident
    from emu.kernel.lib.siphash import siphash_3u32
    lab = bridge_lab()
    net = lab.nets["h1"]
    saddr, daddr = 0x0A000001, 0x0A000002
    ids = [__ip_select_ident(net, saddr, daddr, 17, 1) for _ in range(3)]
    key = net.proto["ip_id_key"]
    h = siphash_3u32(int.from_bytes(daddr.to_bytes(4, "big"), "little"),
                     int.from_bytes(saddr.to_bytes(4, "big"), "little"), 17, key) & 0xFFFFFFFF
    assert net.proto["ip_id_hashes"][(daddr, saddr, 17)] == h
    slot = net.proto["ip_idents"][h & (IP_IDENTS_SZ - 1)]
    assert ids[-1] == (slot[0] - 1) & 0xFFFF         # the bucket SipHash names gave the last ID
    assert len(set(ids)) == 3
