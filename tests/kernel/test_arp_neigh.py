"""ARP and the neighbour state machine (NUD), on the wire and in the table.

Linux: net/ipv4/arp.c, net/core/neighbour.c; RFC 826, RFC 1122 2.3.2, RFC 5227.
"""
import socket

import dpkt

from emu.kernel.core import rtnetlink
from emu.kernel.core.neighbour import (
    NUD_INCOMPLETE, NUD_NOARP, NUD_STALE, __neigh_lookup, neigh_event_send, neigh_update,
)
from emu.kernel.hdr.if_ether import mac_to_str
from emu.kernel.hdr.ip import inet_aton
from emu.kernel.socket import sys_recvfrom, sys_sendto, sys_socket

from .harness import (
    AF_INET, IPPROTO_ICMP, SOCK_RAW, bridge_lab, icmp_echo_bytes, ping,
)

STRANGER_MAC = b"\x02\x00\x00\x00\x00\x33"
BCAST = b"\xff" * 6


def neigh(lab, node, dst):
    rows = [r for r in rtnetlink.neigh_show(lab.nets[node]) if r["dst"] == dst]
    return rows[0] if rows else None


def arps(frames):
    """The ARP packets among raw Ethernet frames, parsed by dpkt, with their frame."""
    out = []
    for f in frames:
        eth = dpkt.ethernet.Ethernet(f)
        if eth.type == dpkt.ethernet.ETH_TYPE_ARP:
            out.append((eth, eth.data))
    return out


def arp_frame(op, sha, spa, tha, tpa, dst=BCAST):
    a = dpkt.arp.ARP(op=op, sha=sha, spa=socket.inet_aton(spa), tha=tha,
                     tpa=socket.inet_aton(tpa))
    return bytes(dpkt.ethernet.Ethernet(dst=dst, src=sha, type=dpkt.ethernet.ETH_TYPE_ARP,
                                        data=a))


def send_echo(lab, node, dst, seq=1):
    t = lab.task(node)
    fd = sys_socket(t, AF_INET, SOCK_RAW, IPPROTO_ICMP)
    sys_sendto(t, fd, icmp_echo_bytes(seq=seq), 0, (dst, 0))
    return t, fd


# ---------------------------------------------------------------- resolution

def test_arp_resolves_and_neighbour_is_reachable():
    lab = bridge_lab()
    h1, h2 = lab.dev("h1", "eth0"), lab.dev("h2", "eth0")
    assert ping(lab, "h1", "10.0.0.2")
    n = neigh(lab, "h1", "10.0.0.2")
    assert n["state"] == "REACHABLE" and n["lladdr"] == mac_to_str(h2.dev_addr)
    # h2 learned h1 from the request (STALE), then used it for the reply (DELAY).
    n = neigh(lab, "h2", "10.0.0.1")
    assert n["state"] in ("STALE", "DELAY") and n["lladdr"] == mac_to_str(h1.dev_addr)
    assert lab.nets["h2"].mib["Arp"]["InRequests"] >= 1
    assert lab.nets["h2"].mib["Arp"]["OutReplies"] == 1
    assert lab.nets["h1"].mib["Arp"]["InReplies"] == 1


def test_arp_on_the_wire_is_valid():
    lab = bridge_lab()
    h1, h2 = lab.dev("h1", "eth0").dev_addr, lab.dev("h2", "eth0").dev_addr
    start1, start2 = len(lab.port("h1", "eth0").sent), len(lab.port("h2", "eth0").sent)
    assert ping(lab, "h1", "10.0.0.2")
    [(eth, req)] = arps(lab.port("h1", "eth0").sent[start1:])
    assert eth.dst == BCAST and eth.src == h1
    assert (req.hrd, req.pro, req.hln, req.pln, req.op) == (1, 0x0800, 6, 4, dpkt.arp.ARP_OP_REQUEST)
    assert req.sha == h1 and req.spa == socket.inet_aton("10.0.0.1")
    assert req.tha == b"\x00" * 6 and req.tpa == socket.inet_aton("10.0.0.2")
    [(eth, rep)] = arps(lab.port("h2", "eth0").sent[start2:])
    assert eth.dst == h1 and eth.src == h2
    assert (rep.hrd, rep.pro, rep.hln, rep.pln, rep.op) == (1, 0x0800, 6, 4, dpkt.arp.ARP_OP_REPLY)
    assert rep.sha == h2 and rep.spa == socket.inet_aton("10.0.0.2")
    assert rep.tha == h1 and rep.tpa == socket.inet_aton("10.0.0.1")
    # The bridge passed both along unchanged.
    assert lab.port("br0", "p2").sent[-2] == bytes(dpkt.ethernet.Ethernet(dst=BCAST, src=h1,
                                                                         type=0x0806, data=req))


def test_no_gratuitous_arp_when_an_address_is_added_as_linux():
    # devinet.c: inet_insert_ifa announces nothing; only inetdev_event does,
    # with arp_notify set (default 0).
    lab = bridge_lab()
    port = lab.port("h1", "eth0")
    start = len(port.sent)
    rtnetlink.inet_rtm_newaddr(lab.nets["h1"], "eth0", "10.0.0.11/24")
    lab.run()
    assert arps(port.sent[start:]) == []


def test_gratuitous_arp_when_the_device_comes_up_with_arp_notify():
    lab = bridge_lab()
    net = lab.nets["h1"]
    h1 = lab.dev("h1", "eth0").dev_addr
    port = lab.port("h1", "eth0")
    rtnetlink.rtnl_setlink(net, "eth0", up=False)
    rtnetlink.inet_rtm_newaddr(net, "eth0", "10.0.0.12/24")
    start = len(port.sent)
    rtnetlink.rtnl_setlink(net, "eth0", up=True)
    assert [a for _, a in arps(port.sent[start:]) if a.spa == a.tpa] == []   # arp_notify 0
    rtnetlink.rtnl_setlink(net, "eth0", up=False)
    net.sysctl["net.ipv4.conf.eth0.arp_notify"] = 1
    start = len(port.sent)
    rtnetlink.rtnl_setlink(net, "eth0", up=True)
    got = arps(port.sent[start:])
    assert {a.spa for _, a in got if a.spa == a.tpa} == {socket.inet_aton("10.0.0.1"),
                                                          socket.inet_aton("10.0.0.12")}
    for eth, a in got:
        assert eth.dst == BCAST and eth.src == h1 and a.op == dpkt.arp.ARP_OP_REQUEST  # RFC 5227 2.4


# ---------------------------------------------------------------- NUD timers

def test_unresolved_neighbour_queues_retransmits_then_fails():
    lab = bridge_lab()
    net = lab.nets["h1"]
    port = lab.port("h1", "eth0")
    start = len(port.sent)
    t, fd = send_echo(lab, "h1", "10.0.0.99", seq=1)
    sys_sendto(t, fd, icmp_echo_bytes(seq=2), 0, ("10.0.0.99", 0))
    lab.run()

    def requests():
        return [a for _, a in arps(port.sent[start:]) if a.tpa == socket.inet_aton("10.0.0.99")]

    n = neigh(lab, "h1", "10.0.0.99")
    assert n["state"] == "INCOMPLETE" and n["queued"] == 2
    assert len(requests()) == 1
    lab.advance(0.99)
    assert len(requests()) == 1                   # retrans_time is 1 s
    lab.advance(0.01)
    assert len(requests()) == 2
    lab.advance(1.0)
    assert len(requests()) == 3                   # mcast_solicit = 3 probes
    assert neigh(lab, "h1", "10.0.0.99")["state"] == "INCOMPLETE"
    lab.advance(1.0)
    n = neigh(lab, "h1", "10.0.0.99")
    assert n["state"] == "FAILED" and n["queued"] == 0
    assert len(requests()) == 3
    assert net.drop_reasons["NEIGH_FAILED"] == 2
    assert net.mib["Arp"]["Unresolved"] == 2
    assert rtnetlink.counters(net)["neigh"]["res_failed"] == 1
    # Each queued datagram is answered with host unreachable, as Linux does.
    pkt, _, _ = sys_recvfrom(t, fd, 2000)
    ihl = (pkt[0] & 15) * 4
    assert (pkt[ihl], pkt[ihl + 1]) == (3, 1)     # ICMP_DEST_UNREACH / HOST_UNREACH
    assert pkt[ihl + 8 + 16:ihl + 8 + 20] == socket.inet_aton("10.0.0.99")


def test_unres_qlen_bounds_the_queue():
    lab = bridge_lab()
    net = lab.nets["h1"]
    rtnetlink.sysctl_set(net, "net.ipv4.neigh.default.unres_qlen", 2)
    t, fd = send_echo(lab, "h1", "10.0.0.99", seq=1)
    for seq in (2, 3, 4):
        sys_sendto(t, fd, icmp_echo_bytes(seq=seq), 0, ("10.0.0.99", 0))
    assert neigh(lab, "h1", "10.0.0.99")["queued"] == 2
    assert net.drop_reasons["NEIGH_QUEUEFULL"] == 2


def test_reachable_goes_stale_after_base_reachable_time():
    lab = bridge_lab()
    assert ping(lab, "h1", "10.0.0.2")
    lab.advance(29.5, tick=0.5)
    assert neigh(lab, "h1", "10.0.0.2")["state"] == "REACHABLE"
    lab.advance(1.0, tick=0.5)
    assert neigh(lab, "h1", "10.0.0.2")["state"] == "STALE"


def test_an_arp_request_does_not_demote_a_reachable_entry():
    # h2 answers from a STALE entry, goes DELAY, and 5 s later probes h1 with a
    # unicast request. h1's entry for h2 (same address) must stay REACHABLE
    # (Linux neigh_update: a STALE hint for an unchanged address keeps the state).
    lab = bridge_lab()
    port = lab.port("h2", "eth0")
    assert ping(lab, "h1", "10.0.0.2")
    start = len(port.sent)
    lab.advance(6, tick=0.5)
    [(eth, probe)] = arps(port.sent[start:])
    assert eth.dst == lab.dev("h1", "eth0").dev_addr        # unicast: NUD_PROBE
    assert probe.op == dpkt.arp.ARP_OP_REQUEST
    assert neigh(lab, "h1", "10.0.0.2")["state"] == "REACHABLE"
    assert neigh(lab, "h2", "10.0.0.1")["state"] == "REACHABLE"


def test_stale_entry_is_used_at_once_then_probed():
    lab = bridge_lab()
    port = lab.port("h1", "eth0")
    assert ping(lab, "h1", "10.0.0.2", seq=1)
    lab.advance(31, tick=1.0)
    assert neigh(lab, "h1", "10.0.0.2")["state"] == "STALE"
    start = len(port.sent)
    assert ping(lab, "h1", "10.0.0.2", seq=2)
    assert arps(port.sent[start:]) == []            # no broadcast: the stale MAC is used
    assert neigh(lab, "h1", "10.0.0.2")["state"] == "DELAY"
    lab.advance(5, tick=0.5)
    [(eth, _)] = arps(port.sent[start:])
    assert eth.dst == lab.dev("h2", "eth0").dev_addr
    assert neigh(lab, "h1", "10.0.0.2")["state"] == "REACHABLE"


def test_incomplete_to_stale_stops_the_timer_and_flushes_the_queue():
    lab = bridge_lab()
    net = lab.nets["h1"]
    dev = lab.dev("h1", "eth0")
    n = __neigh_lookup(net.proto["arp_tbl"], inet_aton("10.0.0.2"), dev, True)
    neigh_event_send(n, None)
    assert n.nud_state == NUD_INCOMPLETE and n.timer.pending
    neigh_update(n, lab.dev("h2", "eth0").dev_addr, NUD_STALE)
    assert n.nud_state == NUD_STALE and not n.timer.pending   # STALE has no timer


# ---------------------------------------------------------------- what ARP accepts

def test_request_for_another_address_is_ignored():
    lab = bridge_lab()
    port = lab.port("h2", "eth0")
    start = len(port.sent)
    lab.inject("h2", "eth0", arp_frame(1, STRANGER_MAC, "10.0.0.50", b"\0" * 6, "10.0.0.77"))
    assert port.sent[start:] == []
    assert neigh(lab, "h2", "10.0.0.50") is None


def test_request_for_us_is_answered_and_learned():
    lab = bridge_lab()
    port = lab.port("h2", "eth0")
    start = len(port.sent)
    lab.inject("h2", "eth0", arp_frame(1, STRANGER_MAC, "10.0.0.50", b"\0" * 6, "10.0.0.2"))
    [(eth, rep)] = arps(port.sent[start:])
    assert eth.dst == STRANGER_MAC and rep.op == 2 and rep.tpa == socket.inet_aton("10.0.0.50")
    assert neigh(lab, "h2", "10.0.0.50")["state"] == "STALE"


def test_unsolicited_reply_creates_no_entry():
    lab = bridge_lab()
    h2 = lab.dev("h2", "eth0").dev_addr
    lab.inject("h2", "eth0", arp_frame(2, STRANGER_MAC, "10.0.0.50", h2, "10.0.0.2", dst=h2))
    assert neigh(lab, "h2", "10.0.0.50") is None      # arp_accept = 0


def test_truncated_or_malformed_arp_is_dropped_and_counted():
    lab = bridge_lab()
    net = lab.nets["h2"]
    good = arp_frame(1, STRANGER_MAC, "10.0.0.50", b"\0" * 6, "10.0.0.2")
    bad_hln = bytearray(good)
    bad_hln[14 + 4] = 8
    for f in (good[:14 + 20], good[:14], bytes(bad_hln)):
        lab.inject("h2", "eth0", f)
    assert net.mib["Arp"]["InErrors"] == 3
    assert net.drop_reasons["ARP_MALFORMED"] == 3
    assert neigh(lab, "h2", "10.0.0.50") is None
    assert ping(lab, "h1", "10.0.0.2")


def test_broadcast_and_multicast_neighbours_need_no_resolution():
    lab = bridge_lab()
    net = lab.nets["h1"]
    tbl, dev = net.proto["arp_tbl"], lab.dev("h1", "eth0")
    n = __neigh_lookup(tbl, inet_aton("10.0.0.255"), dev, True)
    assert n.nud_state == NUD_NOARP and n.ha == BCAST
    n = __neigh_lookup(tbl, inet_aton("224.0.0.251"), dev, True)
    assert n.nud_state == NUD_NOARP and n.ha == bytes.fromhex("01005e0000fb")
    n = __neigh_lookup(tbl, inet_aton("10.0.0.2"), dev, True)
    assert n.nud_state == 0 and n.ha is None


# ---------------------------------------------------------------- garbage collection

def test_spoofed_arp_requests_are_bounded_and_collected():
    """Every ARP request for our address creates a STALE entry for its sender; the
    table stops at gc_thresh3 and periodic GC forgets unused entries past
    gc_stale_time, while an entry in use survives (net/core/neighbour.c)."""
    lab = bridge_lab()
    net = lab.nets["h2"]
    for k, v in (("gc_thresh1", 8), ("gc_thresh2", 16), ("gc_thresh3", 32)):
        net.sysctl["net.ipv4.neigh.default." + k] = v
    tbl = net.proto["arp_tbl"]
    port = lab.port("h2", "eth0")
    answered = 0
    for i in range(100):
        start = len(port.sent)
        lab.inject("h2", "eth0", arp_frame(1, STRANGER_MAC, "10.0.1.%d" % (i + 1), b"\0" * 6,
                                           "10.0.0.2"))
        answered += len(arps(port.sent[start:]))
    assert len(tbl.hash) == 32 and tbl.stats["table_fulls"] > 0
    # arp_process answers only when neigh_event_ns got an entry: not when full.
    assert answered == 100 - tbl.stats["table_fulls"]
    lab.advance(6)
    lab.inject("h2", "eth0", arp_frame(1, STRANGER_MAC, "10.0.2.1", b"\0" * 6, "10.0.0.2"))
    assert tbl.stats["forced_gc_runs"] >= 1 and len(tbl.hash) <= 17
    for _ in range(5):                 # h2 keeps talking to h1 the whole time
        assert len(ping(lab, "h2", "10.0.0.1")) == 1
        lab.advance(20)
    assert len(tbl.hash) < 8 and tbl.stats["periodic_gc_runs"] >= 1
    assert neigh(lab, "h2", "10.0.0.1") is not None
