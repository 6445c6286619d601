"""Header checks where Linux makes them, with its replies and counters: IP options
(ip_options_compile, ip_rcv_options, ip_options_echo, ip_forward_options,
ip_options_fragment), our own address as source (fib_validate_source), TCP's
PACKET_HOST and broadcast-SYN checks, and the ARP decisions of arp_process.

Linux: net/ipv4/ip_options.c, ip_input.c, route.c, fib_frontend.c, tcp_ipv4.c,
arp.c, icmp.c; RFC 791 3.1, RFC 1812 5.2.4, RFC 826, RFC 5227.
"""
import socket
import struct

import dpkt
import pytest

from emu.kernel.core import rtnetlink
from emu.kernel.core.neighbour import (
    NEIGH_UPDATE_F_ADMIN, NEIGH_UPDATE_F_OVERRIDE, NUD_PERMANENT, __neigh_lookup, neigh_update,
)
from emu.kernel.hdr.checksum import ip_compute_csum
from emu.kernel.hdr.ip import inet_aton
from emu.kernel.socket import sys_bind, sys_listen, sys_socket

from .harness import bridge_lab, icmp_echo_bytes, router_line_lab

STRANGER_MAC = b"\x02\x00\x00\x00\x00\x33"
BCAST = b"\xff" * 6
AF_INET, SOCK_STREAM, SOCK_NONBLOCK = 2, 1, 0o4000


# ---------------------------------------------------------------- helpers

def ip_with_options(opts, src="10.0.0.1", dst="10.0.0.2", proto=1, payload=None, df=False):
    """An IPv4 packet whose header carries opts (padded with EOL to 4 bytes)."""
    opts = bytes(opts)
    opts += b"\x00" * (-len(opts) % 4)
    payload = icmp_echo_bytes(seq=5) if payload is None else payload
    ihl = (20 + len(opts)) // 4
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), 99,
                                0x4000 if df else 0, 64, proto, 0, socket.inet_aton(src),
                                socket.inet_aton(dst)) + opts)
    struct.pack_into("!H", hdr, 10, ip_compute_csum(hdr, 0, len(hdr)))
    return bytes(hdr) + payload


def frame(lab, node, ifname, ip, dst_mac=None, src_mac=STRANGER_MAC, ethertype=b"\x08\x00"):
    dst_mac = dst_mac or lab.dev(node, ifname).dev_addr
    return dst_mac + src_mac + ethertype + bytes(ip)


def sent_ip(lab, node, ifname, start=0):
    """The IPv4 packets node sent on ifname since start, parsed by dpkt."""
    out = []
    for f in lab.port(node, ifname).sent[start:]:
        eth = dpkt.ethernet.Ethernet(f)
        if eth.type == dpkt.ethernet.ETH_TYPE_IP:
            out.append(eth.data)
    return out


def header_ok(ip):
    """The header checksum over the whole header (options included) verifies."""
    raw = bytes(ip)[:ip.hl * 4]
    return ip_compute_csum(raw, 0, len(raw)) == 0


def addrs(raw, first, count):
    return [socket.inet_ntoa(raw[first + 4 * i:first + 4 * i + 4]) for i in range(count)]


def mib(lab, node):
    return rtnetlink.counters(lab.nets[node])["snmp"]


def static_neigh(net, dev, addr, mac):
    n = __neigh_lookup(net.proto["arp_tbl"], inet_aton(addr), dev, True)
    neigh_update(n, mac, NUD_PERMANENT, NEIGH_UPDATE_F_OVERRIDE | NEIGH_UPDATE_F_ADMIN)


# ---------------------------------------------------------------- ip_rcv_core counters

@pytest.mark.parametrize("cut, counters, reason", [
    (19, {("Ip", "InHdrErrors"): 1}, "IP_INHDR"),           # not even a header
    (22, {("Ip", "InHdrErrors"): 1}, "IP_INHDR"),           # IHL 6, 22 bytes
])
def test_short_headers_count_inhdrerrors(cut, counters, reason):
    lab = bridge_lab()
    before = mib(lab, "h2")
    pkt = ip_with_options([1, 1, 1, 1])[:cut]
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", pkt))
    after = mib(lab, "h2")
    for (t, name), n in counters.items():
        assert after[t][name] - before[t][name] == n
    assert after["IpExt"]["InTruncatedPkts"] == before["IpExt"]["InTruncatedPkts"]
    assert lab.nets["h2"].drop_reasons[reason] == 1


def test_ecn_codepoints_are_counted_once_the_header_is_sane():
    """ip_rcv_core: InNoECTPkts + (tos & 3) after the version/IHL check, before
    the rest (a header cut short is still counted, a bad version is not)."""
    lab = bridge_lab()
    before = mib(lab, "h2")["IpExt"]
    for tos in (0, 1, 2, 3, 3):
        pkt = bytearray(ip_with_options([1, 1, 1, 1]))
        pkt[1] = tos
        pkt[10:12] = b"\0\0"
        struct.pack_into("!H", pkt, 10, ip_compute_csum(bytes(pkt[:24]), 0, 24))
        lab.inject("h2", "eth0", frame(lab, "h2", "eth0", pkt))
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options([1, 1, 1, 1])[:22]))
    bad = bytearray(ip_with_options([1, 1, 1, 1]))
    bad[0] = 0x66
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", bad))
    after = mib(lab, "h2")["IpExt"]
    delta = {k: after[k] - before[k] for k in ("InNoECTPkts", "InECT1Pkts", "InECT0Pkts",
                                               "InCEPkts")}
    assert delta == {"InNoECTPkts": 2, "InECT1Pkts": 1, "InECT0Pkts": 1, "InCEPkts": 2}
    assert mib(lab, "h2")["Ip"]["InHdrErrors"] == 2


# ---------------------------------------------------------------- ip_options_compile

RR = 7
TS = 68
LSRR = 131
SSRR = 137
RA = 148
CIPSO = 134


@pytest.mark.parametrize("opts, pointer", [
    ([RR, 1, 0, 0], 20),                               # length below 2
    ([RR, 12, 4, 0], 20),                              # length past the header
    ([RR, 7, 3, 0, 0, 0, 0], 22),                      # RR pointer below 4
    ([RR, 7, 5, 0, 0, 0, 0], 22),                      # RR pointer leaves no room
    ([RR, 2, 1, 1], 21),                               # RR shorter than 3
    ([RR, 3, 4, RR, 3, 4], 23),                        # two record routes
    ([TS, 3, 5, 1], 21),                               # timestamp shorter than 4
    ([TS, 8, 4, 0, 0, 0, 0, 0], 22),                   # TS pointer below 5
    ([TS, 8, 7, 0, 0, 0, 0, 0], 22),                   # TS pointer leaves no room
    ([TS, 8, 5, 1, 0, 0, 0, 0], 22),                   # TS address+time needs 8 bytes
    ([TS, 8, 9, 0xF0, 0, 0, 0, 0], 23),                # full, overflow counter at 15
    ([RA, 2, 1, 1], 21),                               # router alert shorter than 4
    ([CIPSO, 6, 0, 0, 0, 1, 1, 1], 21),                # CIPSO shorter than 8
    ([CIPSO, 8, 0, 0, 0, 0, 0, 0], 22),                # CIPSO DOI 0
    ([LSRR, 7, 3, 0, 0, 0, 0], 22),                    # source route pointer below 4
    ([LSRR, 3, 4, SSRR, 3, 4], 23),                    # two source routes
    ([1, 1, 1, RR], 23),                               # an option cut by the header's end
])
def test_bad_option_gets_parameter_problem_at_the_offending_byte(opts, pointer):
    lab = bridge_lab()
    net = lab.nets["h2"]
    before = mib(lab, "h2")
    start = len(lab.port("h2", "eth0").sent)
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options(opts)))
    after = mib(lab, "h2")
    assert after["Ip"]["InHdrErrors"] - before["Ip"]["InHdrErrors"] == 1
    assert after["Ip"]["InDelivers"] == before["Ip"]["InDelivers"]
    assert after["Icmp"]["InMsgs"] == before["Icmp"]["InMsgs"]       # never reached ICMP
    assert after["Icmp"]["OutParmProbs"] - before["Icmp"]["OutParmProbs"] == 1
    assert net.drop_reasons["NOT_SPECIFIED"] == 1
    [ip] = sent_ip(lab, "h2", "eth0", start)
    assert socket.inet_ntoa(ip.dst) == "10.0.0.1" and socket.inet_ntoa(ip.src) == "10.0.0.2"
    icmp = ip.data
    assert (icmp.type, icmp.code) == (12, 0)
    assert bytes(icmp)[4] == pointer                       # the pointer (RFC 792)
    assert header_ok(ip)


def test_parameter_problems_are_rate_limited_per_host():
    lab = bridge_lab()
    net = lab.nets["h2"]
    start = len(lab.port("h2", "eth0").sent)
    for _ in range(20):
        lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options([RR, 1, 0, 0])))
    s = mib(lab, "h2")
    assert s["Ip"]["InHdrErrors"] == 20
    assert s["Icmp"]["OutParmProbs"] == 6                  # XRLIM_BURST_FACTOR
    assert s["Icmp"]["OutRateLimitHost"] == 14
    assert len(sent_ip(lab, "h2", "eth0", start)) == 6
    lab.advance(1.0, tick=0.5)
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options([RR, 1, 0, 0])))
    assert mib(lab, "h2")["Icmp"]["OutParmProbs"] == 7
    assert net.drop_reasons["NOT_SPECIFIED"] == 21


@pytest.mark.parametrize("opts", [
    [1, 1, 1, 0],                                      # NOOPs then EOL
    [RA, 4, 0, 0],                                     # router alert
    [130, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],           # basic security: passed over
    [0, 7, 3, 0],                                      # EOL ends the list: junk after it
    [TS, 8, 5, 2, 0, 0, 0, 0],                         # unknown TS flag: accepted
    [CIPSO, 10, 0, 0, 0, 1, 5, 4, 0, 0],               # well-formed CIPSO (no NetLabel)
])
def test_valid_options_are_delivered_and_answered(opts):
    lab = bridge_lab()
    start = len(lab.port("h2", "eth0").sent)
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options(opts)))
    s = mib(lab, "h2")
    assert s["Ip"]["InHdrErrors"] == 0 and s["Ip"]["InDelivers"] == 1
    replies = [ip for ip in sent_ip(lab, "h2", "eth0", start) if ip.p == 1]
    assert len(replies) == 1 and replies[0].data.type == 0
    assert header_ok(replies[0])


# ---------------------------------------------------------------- echo with options

def test_echo_reply_records_the_route_back():
    """ping -R to a host: it records the address the request reached (on
    receive) and its own source (on reply), as Linux shows the target twice."""
    lab = bridge_lab()
    rr = [RR, 39, 4] + [0] * 36
    start = len(lab.port("h2", "eth0").sent)
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options(rr + [0])))
    [reply] = sent_ip(lab, "h2", "eth0", start)
    raw = bytes(reply)
    assert reply.hl == 15 and reply.data.type == 0 and header_ok(reply)
    assert raw[20:23] == bytes([RR, 39, 12])
    assert addrs(raw, 23, 3) == ["10.0.0.2", "10.0.0.2", "0.0.0.0"]
    assert reply.data.data.seq == 5                        # still the same echo


def test_echo_reply_carries_timestamps():
    lab = bridge_lab()
    ts = [TS, 12, 5, 0] + [0] * 8                          # two timestamp slots
    start = len(lab.port("h2", "eth0").sent)
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options(ts)))
    [reply] = sent_ip(lab, "h2", "eth0", start)
    raw = bytes(reply)
    assert raw[20:24] == bytes([TS, 12, 13, 0]) and header_ok(reply)
    ms = int(lab.clock.now % 86400 * 1000)
    assert struct.unpack("!II", raw[24:32]) == (ms, ms)    # ms since midnight UT


def test_full_timestamp_option_counts_overflow():
    lab = bridge_lab()
    ts = [TS, 8, 9, 0x20, 0, 0, 0, 7]                      # full, overflow 2
    start = len(lab.port("h2", "eth0").sent)
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options(ts)))
    [reply] = sent_ip(lab, "h2", "eth0", start)
    raw = bytes(reply)
    assert raw[20:28] == bytes([TS, 8, 9, 0x30, 0, 0, 0, 7]) and header_ok(reply)


def test_timestamp_with_addresses_fills_our_slot():
    lab = bridge_lab()
    ts = [TS, 20, 5, 1] + [0] * 16                         # room for two (addr, time)
    start = len(lab.port("h2", "eth0").sent)
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options(ts)))
    [reply] = sent_ip(lab, "h2", "eth0", start)
    raw = bytes(reply)
    assert raw[20:24] == bytes([TS, 20, 21, 1])
    assert addrs(raw, 24, 1) == ["10.0.0.2"] and addrs(raw, 32, 1) == ["10.0.0.2"]


# ---------------------------------------------------------------- source routes

def test_source_routed_packets_are_dropped_by_default():
    """accept_source_route: all=0 ANDed with the device's: dropped, no counter, no reply."""
    lab = bridge_lab()
    net = lab.nets["h2"]
    assert net.sysctl["net.ipv4.conf.all.accept_source_route"] == 0
    assert net.sysctl["net.ipv4.conf.default.accept_source_route"] == 1
    assert net.sysctl["net.ipv4.conf.eth0.accept_source_route"] == 1
    start = len(lab.port("h2", "eth0").sent)
    lsrr = [LSRR, 7, 8, 10, 0, 0, 3]                       # completed: came via 10.0.0.3
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options([1] + lsrr)))
    s = mib(lab, "h2")
    assert s["Ip"]["InDelivers"] == 0 and s["Ip"]["InHdrErrors"] == 0
    assert sent_ip(lab, "h2", "eth0", start) == []
    assert net.drop_reasons["NOT_SPECIFIED"] == 1


def test_accepted_source_route_is_answered_along_the_reversed_route():
    lab = bridge_lab()
    net = lab.nets["h2"]
    rtnetlink.sysctl_set(net, "net.ipv4.conf.all.accept_source_route", 1)
    relay_mac = b"\x02\x00\x00\x00\x00\x44"
    static_neigh(net, lab.dev("h2", "eth0"), "10.0.0.3", relay_mac)
    start = len(lab.port("h2", "eth0").sent)
    lsrr = [LSRR, 7, 8, 10, 0, 0, 3]
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options([1] + lsrr)))
    assert mib(lab, "h2")["Ip"]["InDelivers"] == 1
    [f] = [f for f in lab.port("h2", "eth0").sent[start:] if f[12:14] == b"\x08\x00"]
    assert f[:6] == relay_mac                              # to the first hop back
    reply = dpkt.ethernet.Ethernet(f).data
    raw = bytes(reply)
    assert socket.inet_ntoa(reply.dst) == "10.0.0.3" and header_ok(reply)
    assert raw[20:23] == bytes([LSRR, 7, 4])               # fresh pointer
    assert addrs(raw, 23, 1) == ["10.0.0.1"]               # then the final destination


def test_strict_source_route_to_another_host_gets_parameter_problem():
    """A strict route whose next hop is not us (ip_options_rcv_srr): pointer 16."""
    lab = bridge_lab()
    net = lab.nets["h2"]
    net.sysctl["net.ipv4.ip_forward"] = 1
    rtnetlink.sysctl_set(net, "net.ipv4.conf.all.accept_source_route", 1)
    start = len(lab.port("h2", "eth0").sent)
    ssrr = [SSRR, 7, 4, 10, 0, 0, 9]
    ip = ip_with_options([1] + ssrr, dst="10.0.0.7")
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip))
    [err] = sent_ip(lab, "h2", "eth0", start)
    assert (err.data.type, err.data.code, bytes(err.data)[4]) == (12, 0, 16)
    assert mib(lab, "h2")["Ip"]["ForwDatagrams"] == 0


def test_loose_source_route_is_forwarded_to_the_next_listed_hop():
    """Addressed to a router, with 10.0.3.10 as the next hop: forwarded there,
    the router's outgoing address recorded in the option (ip_forward_options)."""
    lab = router_line_lab()
    for r in ("r1", "r2", "r3", "h2"):
        rtnetlink.sysctl_set(lab.nets[r], "net.ipv4.conf.all.accept_source_route", 1)
    r1 = lab.dev("r1", "eth0")
    lsrr = [LSRR, 7, 4, 10, 0, 3, 10]
    ip = ip_with_options([1] + lsrr, src="10.0.1.10", dst="10.0.1.1")
    start = len(lab.port("r1", "eth1").sent)
    lab.inject("r1", "eth0", frame(lab, "r1", "eth0", ip, dst_mac=r1.dev_addr,
                                   src_mac=lab.dev("h1", "eth0").dev_addr))
    fwd = [p for p in sent_ip(lab, "r1", "eth1", start) if p.hl == 7]
    assert fwd, sent_ip(lab, "r1", "eth1", start)
    raw = bytes(fwd[0])
    assert socket.inet_ntoa(fwd[0].dst) == "10.0.3.10" and header_ok(fwd[0])
    assert raw[21:24] == bytes([LSRR, 7, 8]) and addrs(raw, 24, 1) == ["10.0.12.1"]
    assert mib(lab, "h2")["Ip"]["InDelivers"] == 1


@pytest.mark.parametrize("hop, forwarded", [("10.0.12.2", True), ("10.0.3.10", False)])
def test_strict_source_route_permits_no_gateway(hop, forwarded):
    """ip_forward: a strict route's next hop must be on-link; one reached through
    a gateway gets destination unreachable, source route failed (code 5)."""
    lab = router_line_lab()
    rtnetlink.sysctl_set(lab.nets["r1"], "net.ipv4.conf.all.accept_source_route", 1)
    h1 = lab.dev("h1", "eth0")
    ssrr = [SSRR, 7, 4] + list(socket.inet_aton(hop))
    ip = ip_with_options([1] + ssrr, src="10.0.1.10", dst="10.0.1.1")
    start0, start1 = len(lab.port("r1", "eth0").sent), len(lab.port("r1", "eth1").sent)
    lab.inject("r1", "eth0", frame(lab, "r1", "eth0", ip, src_mac=h1.dev_addr))
    out = [p for p in sent_ip(lab, "r1", "eth1", start1) if p.p == 1]
    back = [p for p in sent_ip(lab, "r1", "eth0", start0) if p.p == 1]
    if forwarded:
        assert len(out) == 1 and socket.inet_ntoa(out[0].dst) == hop and header_ok(out[0])
        assert addrs(bytes(out[0]), 24, 1) == ["10.0.12.1"]
    else:
        assert out == []
        assert [(p.data.type, p.data.code) for p in back] == [(3, 5)]
        assert mib(lab, "r1")["Ip"]["ForwDatagrams"] == 0


# ---------------------------------------------------------------- forwarding with options

def test_record_route_through_three_routers_and_back():
    lab = router_line_lab()
    h1 = lab.dev("h1", "eth0")
    rr = [RR, 39, 4] + [0] * 36
    ip = ip_with_options(rr + [0], src="10.0.1.10", dst="10.0.3.10")
    start1 = len(lab.port("r1", "eth1").sent)
    start0 = len(lab.port("r1", "eth0").sent)
    lab.inject("r1", "eth0", frame(lab, "r1", "eth0", ip, src_mac=h1.dev_addr))
    out = [p for p in sent_ip(lab, "r1", "eth1", start1) if p.hl == 15]
    assert out and all(header_ok(p) for p in out)
    [reply] = [p for p in sent_ip(lab, "r1", "eth0", start0) if p.hl == 15]
    raw = bytes(reply)
    assert reply.data.type == 0 and header_ok(reply)
    assert raw[20:23] == bytes([RR, 39, 36])
    assert addrs(raw, 23, 8) == ["10.0.12.1", "10.0.23.2", "10.0.3.1", "10.0.3.10",
                                 "10.0.3.10", "10.0.23.3", "10.0.12.2", "10.0.1.1"]


def test_timestamps_with_addresses_across_routers_then_overflow():
    """Each hop stamps the address the packet reached it by; once the option is
    full every further hop counts itself in the overflow nibble (RFC 791)."""
    lab = router_line_lab()
    h1 = lab.dev("h1", "eth0")
    ts = [TS, 36, 5, 1] + [0] * 32                         # four (address, time) slots
    ip = ip_with_options(ts, src="10.0.1.10", dst="10.0.3.10")
    start0 = len(lab.port("r1", "eth0").sent)
    lab.inject("r1", "eth0", frame(lab, "r1", "eth0", ip, src_mac=h1.dev_addr))
    [reply] = [p for p in sent_ip(lab, "r1", "eth0", start0) if p.hl == 14]
    raw = bytes(reply)
    assert header_ok(reply) and raw[20:24] == bytes([TS, 36, 37, 0x31])
    assert addrs(raw, 24, 8)[::2] == ["10.0.1.1", "10.0.12.2", "10.0.23.3", "10.0.3.10"]
    ms = int(lab.clock.now % 86400 * 1000)
    assert [struct.unpack_from("!I", raw, 28 + 8 * i)[0] for i in range(4)] == [ms] * 4


def test_fragments_after_the_first_carry_only_copied_options():
    """RR is not a 'copied' option: ip_options_fragment blanks it in later fragments."""
    lab = router_line_lab()                                # r2-r3 MTU 1280
    h1 = lab.dev("h1", "eth0")
    rr = [RR, 11, 4] + [0] * 8
    ip = ip_with_options(rr + [0], src="10.0.1.10", dst="10.0.3.10",
                         payload=icmp_echo_bytes(seq=1, data=bytes(1300)))
    start = len(lab.port("r2", "eth1").sent)
    start0 = len(lab.port("r1", "eth0").sent)
    lab.inject("r1", "eth0", frame(lab, "r1", "eth0", ip, src_mac=h1.dev_addr))
    frags = [p for p in sent_ip(lab, "r2", "eth1", start) if p.hl == 8]
    assert len(frags) == 2 and all(header_ok(p) for p in frags)
    first, second = sorted((bytes(p) for p in frags), key=lambda b: (b[6] << 8 | b[7]) & 0x1FFF)
    assert first[20] == RR and addrs(first, 23, 2) == ["10.0.12.1", "10.0.23.2"]
    assert second[20:31] == bytes([1] * 11)
    assert mib(lab, "h2")["Ip"]["ReasmOKs"] == 1
    # The reassembled request kept its first fragment's options: the reply
    # (fragmented again on its way back) echoes the full record route.
    back = [bytes(p) for p in sent_ip(lab, "r1", "eth0", start0)]
    first_back = [b for b in back if (b[6] << 8 | b[7]) & 0x1FFF == 0]
    assert len(first_back) == 1 and first_back[0][0] == 0x48
    assert addrs(first_back[0], 23, 2) == ["10.0.12.1", "10.0.23.2"]


# ---------------------------------------------------------------- our own address as source

def test_our_own_address_from_the_wire_is_a_martian_unless_accept_local():
    lab = bridge_lab()
    net = lab.nets["h2"]
    pkt = ip_with_options([1, 1, 1, 1], src="10.0.0.2", dst="10.0.0.2")
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", pkt))
    s = mib(lab, "h2")
    assert s["Ip"]["InDelivers"] == 0 and s["Ip"]["InAddrErrors"] == 0
    assert s["Ip"]["InHdrErrors"] == 0
    assert net.drop_reasons["IP_LOCAL_SOURCE"] == 1
    rtnetlink.sysctl_set(net, "net.ipv4.conf.eth0.accept_local", 1)
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", pkt))
    assert mib(lab, "h2")["Ip"]["InDelivers"] == 2         # the echo, and its reply via lo
    assert net.drop_reasons["IP_LOCAL_SOURCE"] == 1


def test_local_traffic_through_lo_is_not_a_martian():
    lab = bridge_lab()
    from .harness import ping
    assert ping(lab, "h2", "10.0.0.2") and ping(lab, "h2", "127.0.0.1")
    assert lab.nets["h2"].drop_reasons["IP_LOCAL_SOURCE"] == 0


def test_conf_default_reaches_devices_not_set_on_their_own():
    """Writing conf.default.X updates every device whose X was not written
    (devinet_copy_dflt_conf); conf.all is separate and combined per setting."""
    lab = bridge_lab()
    net = lab.nets["h2"]
    sysctl_w = rtnetlink.RTNL_OPS["sysctl_set"]
    sysctl_w(net, "net.ipv4.conf.eth0.arp_ignore", 2)
    sysctl_w(net, "net.ipv4.conf.default.arp_ignore", 1)
    assert net.sysctl["net.ipv4.conf.eth0.arp_ignore"] == 2
    assert net.sysctl["net.ipv4.conf.lo.arp_ignore"] == 1
    sysctl_w(net, "net.ipv4.conf.default.accept_source_route", 0)
    assert net.sysctl["net.ipv4.conf.eth0.accept_source_route"] == 0
    sysctl_w(net, "net.ipv4.conf.all.accept_source_route", 1)
    start = len(lab.port("h2", "eth0").sent)
    lsrr = [LSRR, 7, 8, 10, 0, 0, 1]
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options([1] + lsrr)))
    assert mib(lab, "h2")["Ip"]["InDelivers"] == 0       # all AND eth0: still refused
    sysctl_w(net, "net.ipv4.conf.eth0.accept_source_route", 1)
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options([1] + lsrr)))
    assert mib(lab, "h2")["Ip"]["InDelivers"] == 1
    assert len(sent_ip(lab, "h2", "eth0", start)) == 1


def test_conf_entries_follow_devices():
    lab = bridge_lab()
    net = lab.nets["h2"]
    assert net.sysctl["net.ipv4.conf.eth0.accept_local"] == 0
    rtnetlink.rtnl_dellink(net, "eth0")
    assert "net.ipv4.conf.eth0.accept_local" not in net.sysctl


# ---------------------------------------------------------------- TCP

def _tcp_syn(src, dst, sport=40000, dport=80):
    th = bytearray(struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 5 << 4, 0x02, 65535, 0, 0))
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(th))
    struct.pack_into("!H", th, 16, ip_compute_csum(pseudo + bytes(th)))
    return bytes(th)


def _listen(lab, node, port=80):
    t = lab.task(node)
    fd = sys_socket(t, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
    sys_bind(t, fd, ("0.0.0.0", port))
    sys_listen(t, fd, 16)
    return t, fd


def test_tcp_drops_a_segment_not_addressed_to_our_mac_before_counting():
    lab = bridge_lab()
    _listen(lab, "h2")
    start = len(lab.port("h2", "eth0").sent)
    seg = ip_with_options([1, 1, 1, 1], proto=6, payload=_tcp_syn("10.0.0.1", "10.0.0.2"))
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", seg, dst_mac=BCAST))
    s = mib(lab, "h2")
    assert s["Ip"]["InDelivers"] == 1 and s["Tcp"]["InSegs"] == 0
    assert sent_ip(lab, "h2", "eth0", start) == []       # neither SYN-ACK nor RST
    assert lab.nets["h2"].drop_reasons["NOT_SPECIFIED"] == 1


def test_syn_to_a_broadcast_address_is_a_listen_drop():
    lab = bridge_lab()
    _listen(lab, "h2")
    start = len(lab.port("h2", "eth0").sent)
    seg = ip_with_options([1, 1, 1, 1], dst="10.0.0.255", proto=6,
                          payload=_tcp_syn("10.0.0.1", "10.0.0.255"))
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", seg))
    s = mib(lab, "h2")
    assert s["Tcp"]["InSegs"] == 1 and s["TcpExt"]["ListenDrops"] == 1
    assert s["IpExt"]["InBcastPkts"] == 1 and s["IpExt"]["InBcastOctets"] == len(seg)
    assert s["Tcp"]["OutSegs"] == 0 and sent_ip(lab, "h2", "eth0", start) == []
    # the same SYN to the host's own address opens
    seg = ip_with_options([1, 1, 1, 1], proto=6, payload=_tcp_syn("10.0.0.1", "10.0.0.2"))
    lab.inject("h2", "eth0", frame(lab, "h2", "eth0", seg))
    [synack] = sent_ip(lab, "h2", "eth0", start)
    assert synack.data.flags == 0x12


def test_tcp_header_errors_count_as_linux():
    """InSegs counts every segment; a data offset below 5 is an InErr, a
    segment shorter than its header only a discard (tcp_v4_rcv)."""
    lab = bridge_lab()
    syn = bytearray(_tcp_syn("10.0.0.1", "10.0.0.2"))
    bad_doff = bytearray(syn)
    bad_doff[12] = 4 << 4
    long_doff = bytearray(syn)
    long_doff[12] = 15 << 4
    for payload in (bytes(syn[:12]), bytes(bad_doff), bytes(long_doff)):
        lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options([1], proto=6,
                                                                           payload=payload)))
    s = mib(lab, "h2")
    assert s["Tcp"]["InSegs"] == 3 and s["Tcp"]["InErrs"] == 1
    assert lab.nets["h2"].drop_reasons["PKT_TOO_SMALL"] == 1


# ---------------------------------------------------------------- ARP

def arp_frame(op, sha, spa, tha, tpa, dst=BCAST, hrd=1):
    a = dpkt.arp.ARP(hrd=hrd, op=op, sha=sha, spa=socket.inet_aton(spa), tha=tha,
                     tpa=socket.inet_aton(tpa))
    return bytes(dpkt.ethernet.Ethernet(dst=dst, src=sha, type=dpkt.ethernet.ETH_TYPE_ARP,
                                        data=a))


def arp_replies(lab, node, start):
    out = []
    for f in lab.port(node, "eth0").sent[start:]:
        eth = dpkt.ethernet.Ethernet(f)
        if eth.type == dpkt.ethernet.ETH_TYPE_ARP and eth.data.op == 2:
            out.append(eth.data)
    return out


def neigh(lab, node, dst):
    rows = [r for r in rtnetlink.neigh_show(lab.nets[node]) if r["dst"] == dst]
    return rows[0] if rows else None


@pytest.mark.parametrize("sip, tip", [
    ("10.0.0.2", "10.0.0.2"),          # claims our own address (fib_validate_source)
    ("224.0.0.5", "10.0.0.2"),         # multicast sender
    ("127.0.0.1", "10.0.0.2"),         # loopback sender
    ("255.255.255.255", "10.0.0.2"),   # broadcast sender
    ("10.0.0.50", "127.0.0.1"),        # request for a loopback address
    ("10.0.0.50", "224.0.0.1"),        # request for a multicast address
    ("10.0.0.50", "10.0.0.255"),       # request for the subnet broadcast
    ("10.0.0.50", "10.0.0.99"),        # not ours
])
def test_arp_requests_that_get_no_reply(sip, tip):
    lab = bridge_lab()
    start = len(lab.port("h2", "eth0").sent)
    lab.inject("h2", "eth0", arp_frame(1, STRANGER_MAC, sip, b"\0" * 6, tip))
    assert arp_replies(lab, "h2", start) == []
    assert neigh(lab, "h2", sip) is None


def test_arp_reply_for_an_address_on_another_device_follows_arp_ignore():
    lab = bridge_lab()
    net = lab.nets["h2"]
    rtnetlink.inet_rtm_newaddr(net, "lo", "192.168.5.5/32")
    req = arp_frame(1, STRANGER_MAC, "10.0.0.50", b"\0" * 6, "192.168.5.5")
    start = len(lab.port("h2", "eth0").sent)
    lab.inject("h2", "eth0", req)
    [rep] = arp_replies(lab, "h2", start)                  # arp_ignore=0: any local address
    assert rep.spa == socket.inet_aton("192.168.5.5") and rep.tha == STRANGER_MAC
    rtnetlink.sysctl_set(net, "net.ipv4.conf.eth0.arp_ignore", 1)
    start = len(lab.port("h2", "eth0").sent)
    lab.inject("h2", "eth0", req)
    assert arp_replies(lab, "h2", start) == []             # only eth0's own now
    lab.inject("h2", "eth0", arp_frame(1, STRANGER_MAC, "10.0.0.50", b"\0" * 6, "10.0.0.2"))
    assert len(arp_replies(lab, "h2", start)) == 1
    rtnetlink.sysctl_set(net, "net.ipv4.conf.all.arp_ignore", 8)
    start = len(lab.port("h2", "eth0").sent)
    lab.inject("h2", "eth0", arp_frame(1, STRANGER_MAC, "10.0.0.50", b"\0" * 6, "10.0.0.2"))
    assert arp_replies(lab, "h2", start) == []             # the max of all and eth0


def test_ieee802_hardware_type_is_accepted_on_ethernet():
    lab = bridge_lab()
    start = len(lab.port("h2", "eth0").sent)
    lab.inject("h2", "eth0", arp_frame(1, STRANGER_MAC, "10.0.0.50", b"\0" * 6, "10.0.0.2",
                                       hrd=6))
    assert len(arp_replies(lab, "h2", start)) == 1
    lab.inject("h2", "eth0", arp_frame(1, STRANGER_MAC, "10.0.0.51", b"\0" * 6, "10.0.0.2",
                                       hrd=7))
    assert neigh(lab, "h2", "10.0.0.51") is None
    assert lab.nets["h2"].mib["Arp"]["InErrors"] == 1


def test_gratuitous_arp_updates_an_entry_but_creates_none_unless_arp_accept():
    lab = bridge_lab()
    net = lab.nets["h2"]
    garp = arp_frame(1, STRANGER_MAC, "10.0.0.60", b"\0" * 6, "10.0.0.60")
    lab.inject("h2", "eth0", garp)
    assert neigh(lab, "h2", "10.0.0.60") is None
    rtnetlink.sysctl_set(net, "net.ipv4.conf.all.arp_accept", 1)
    lab.inject("h2", "eth0", garp)
    assert neigh(lab, "h2", "10.0.0.60")["state"] == "STALE"
    # the existing entry for h1 moves with a gratuitous ARP, even within locktime
    from .harness import ping
    assert ping(lab, "h2", "10.0.0.1")
    new_mac = b"\x02\x00\x00\x00\x00\x77"
    lab.inject("h2", "eth0", arp_frame(1, new_mac, "10.0.0.1", b"\0" * 6, "10.0.0.1"))
    assert neigh(lab, "h2", "10.0.0.1")["lladdr"] == "02:00:00:00:00:77"


def test_arp_accept_2_creates_entries_only_for_our_subnet():
    lab = bridge_lab()
    rtnetlink.sysctl_set(lab.nets["h2"], "net.ipv4.conf.eth0.arp_accept", 2)
    h2 = lab.dev("h2", "eth0").dev_addr
    lab.inject("h2", "eth0", arp_frame(2, STRANGER_MAC, "10.0.0.61", h2, "10.0.0.2", dst=h2))
    lab.inject("h2", "eth0", arp_frame(2, STRANGER_MAC, "10.9.0.61", h2, "10.0.0.2", dst=h2))
    assert neigh(lab, "h2", "10.0.0.61")["state"] == "REACHABLE"
    assert neigh(lab, "h2", "10.9.0.61") is None


def test_first_reply_wins_within_locktime():
    """Of two replies back to back the first is kept (locktime 1 s); later ones update."""
    lab = bridge_lab()
    h2 = lab.dev("h2", "eth0").dev_addr
    req = arp_frame(1, STRANGER_MAC, "10.0.0.70", b"\0" * 6, "10.0.0.2")
    lab.inject("h2", "eth0", req)                          # creates a STALE entry
    other = b"\x02\x00\x00\x00\x00\x88"
    lab.inject("h2", "eth0", arp_frame(2, other, "10.0.0.70", h2, "10.0.0.2", dst=h2))
    assert neigh(lab, "h2", "10.0.0.70")["lladdr"] == "02:00:00:00:00:33"
    lab.advance(1.5, tick=0.5)
    lab.inject("h2", "eth0", arp_frame(2, other, "10.0.0.70", h2, "10.0.0.2", dst=h2))
    n = neigh(lab, "h2", "10.0.0.70")
    assert n["lladdr"] == "02:00:00:00:00:88" and n["state"] == "REACHABLE"


def test_ignored_arp_is_consumed_not_counted():
    lab = bridge_lab()
    net = lab.nets["h2"]
    other = b"\x02\x00\x00\x00\x00\x99"
    before = dict(net.mib["Arp"])
    start = len(lab.port("h2", "eth0").sent)
    lab.inject("h2", "eth0", arp_frame(1, STRANGER_MAC, "10.0.0.50", b"\0" * 6, "10.0.0.2",
                                       dst=other))          # PACKET_OTHERHOST
    assert net.mib["Arp"] == before and arp_replies(lab, "h2", start) == []
    assert sum(net.drop_reasons.values()) == 0


# ---------------------------------------------------------------- never raises

def test_random_options_never_raise():
    import random
    lab = bridge_lab()
    rng = random.Random(1812)
    kinds = [0, 1, RR, TS, LSRR, SSRR, RA, CIPSO, 130, 136, 0x99]
    for r in ("h1", "h2"):
        rtnetlink.sysctl_set(lab.nets[r], "net.ipv4.conf.all.accept_source_route", 1)
    lab.nets["h2"].sysctl["net.ipv4.ip_forward"] = 1
    for i in range(600):
        opts = []
        while len(opts) < rng.randint(1, 40):
            k = rng.choice(kinds)
            if k in (0, 1):
                opts.append(k)
                continue
            ln = rng.randint(0, 14)
            body = [rng.choice([0, 1, 3, 4, 5, 8, 9, 13, 0xF1, rng.getrandbits(8)])
                    for _ in range(max(0, ln - 2))]
            opts += [k, ln] + body
        opts = opts[:40]
        dst = rng.choice(["10.0.0.2", "10.0.0.1", "10.0.0.255", "10.0.0.9"])
        lab.inject("h2", "eth0", frame(lab, "h2", "eth0", ip_with_options(opts, dst=dst)))
        if i % 50 == 0:
            lab.advance(1.0, tick=0.5)
    from .harness import ping
    assert ping(lab, "h1", "10.0.0.2")
