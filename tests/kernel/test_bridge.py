"""The bridge: learning, forwarding, flooding, local delivery and FDB ageing.

Linux: net/bridge/br_input.c, br_forward.c, br_fdb.c, br_if.c, br_device.c
"""
import errno

import pytest

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError
from emu.kernel.hdr.if_ether import mac_to_str

from .harness import bridge_lab, ping

PEER_MAC = b"\x02\x00\x00\x00\x00\x77"


def br_counters(lab):
    return dict(rtnetlink.counters(lab.nets["br0"])["bridge"]["br0"])


def learned(lab):
    """{mac: port} of the bridge's learned (not local) FDB entries."""
    return {r["mac"]: r["dev"] for r in rtnetlink.br_fdb_show(lab.nets["br0"])
            if not r["is_local"]}


def mac(lab, node):
    return mac_to_str(lab.dev(node, "eth0").dev_addr)


def delta(after, before):
    return {k: after[k] - before[k] for k in after}


def test_ping_across_the_bridge_and_learning():
    lab = bridge_lab()
    assert ping(lab, "h1", "10.0.0.2")
    assert learned(lab) == {mac(lab, "h1"): "p1", mac(lab, "h2"): "p2"}
    assert br_counters(lab)["learned"] == 2


def test_known_unicast_is_forwarded_not_flooded():
    lab = bridge_lab()
    assert ping(lab, "h1", "10.0.0.2", seq=1)
    before = br_counters(lab)
    sent_to_h1 = len(lab.port("br0", "p1").sent)
    assert ping(lab, "h1", "10.0.0.2", seq=2)
    d = delta(br_counters(lab), before)
    assert d["rx_frames"] == 2          # echo request and reply, no ARP any more
    assert d["forwarded"] == 2
    assert d["flooded"] == 0
    assert d["local_in"] == 0
    # The request was not sent back out of p1: only the reply went to h1.
    assert len(lab.port("br0", "p1").sent) == sent_to_h1 + 1


def test_broadcast_is_flooded_and_passed_up():
    lab = bridge_lab()
    before = br_counters(lab)
    p1_sent, p2_sent = len(lab.port("br0", "p1").sent), len(lab.port("br0", "p2").sent)
    # A gratuitous ARP from h1 (a broadcast): out of p2, never back out of p1.
    from emu.kernel.ipv4.arp import arp_gratuitous
    from emu.kernel.hdr.ip import inet_aton
    arp_gratuitous(lab.dev("h1", "eth0"), inet_aton("10.0.0.11"))
    lab.run()
    d = delta(br_counters(lab), before)
    assert d["flooded"] == 1 and d["local_in"] == 1 and d["forwarded"] == 0
    assert len(lab.port("br0", "p2").sent) == p2_sent + 1
    assert len(lab.port("br0", "p1").sent) == p1_sent


def test_unknown_unicast_floods_but_not_out_of_the_ingress_port():
    lab = bridge_lab()
    before = br_counters(lab)
    p1_sent = len(lab.port("br0", "p1").sent)
    f = b"\x02\x00\x00\x00\x00\x55" + PEER_MAC + b"\x88\xb5" + b"x" * 46
    lab.inject("br0", "p1", f)
    d = delta(br_counters(lab), before)
    assert d["flooded"] == 1 and d["local_in"] == 0
    assert lab.port("br0", "p2").sent[-1] == f
    assert len(lab.port("br0", "p1").sent) == p1_sent
    assert learned(lab)[mac_to_str(PEER_MAC)] == "p1"


def test_invalid_source_address_is_dropped():
    lab = bridge_lab()
    before = br_counters(lab)
    p2_sent = len(lab.port("br0", "p2").sent)
    f = lab.dev("h2", "eth0").dev_addr + b"\x01\x00\x5e\x00\x00\x01" + b"\x88\xb5" + bytes(46)
    lab.inject("br0", "p1", f)
    d = delta(br_counters(lab), before)
    assert d["dropped_invalid_src"] == 1 and d["forwarded"] == d["flooded"] == 0
    assert lab.nets["br0"].drop_reasons["MAC_INVALID_SOURCE"] == 1
    assert len(lab.port("br0", "p2").sent) == p2_sent
    assert "01:00:5e:00:00:01" not in learned(lab)


def test_a_station_that_moves_is_relearned():
    lab = bridge_lab()
    assert ping(lab, "h1", "10.0.0.2")
    h1 = lab.dev("h1", "eth0").dev_addr
    lab.inject("br0", "p2", PEER_MAC + h1 + b"\x88\xb5" + bytes(46))
    assert learned(lab)[mac_to_str(h1)] == "p2"


def test_fdb_ageing_then_unknown_unicast_floods_again():
    lab = bridge_lab()
    br = lab.dev("br0", "br0").priv
    assert br.ageing_time == 300
    assert ping(lab, "h1", "10.0.0.2", seq=1)
    lab.advance(10, tick=1.0)                 # neighbour probes settle
    assert ping(lab, "h1", "10.0.0.2", seq=2)  # both entries refreshed now
    lab.advance(299, tick=1.0)
    assert set(learned(lab)) == {mac(lab, "h1"), mac(lab, "h2")}
    lab.advance(2, tick=1.0)
    assert learned(lab) == {}
    lab.advance(10, tick=1.0)                 # the gc timer removes them
    assert br_counters(lab)["aged"] == 2
    assert not any(not f.is_local for f in br.fdb.values())
    # h1 still has h2's MAC (STALE): the echo goes unicast to a MAC the bridge
    # forgot, so it floods; the reply's destination was just relearned.
    before = br_counters(lab)
    assert ping(lab, "h1", "10.0.0.2", seq=3)
    d = delta(br_counters(lab), before)
    assert d["flooded"] == 1 and d["forwarded"] == 1 and d["learned"] == 2


def test_shorter_ageing_time():
    lab = bridge_lab()
    lab.dev("br0", "br0").priv.ageing_time = 5.0
    assert ping(lab, "h1", "10.0.0.2")
    # h2 answered from a STALE entry (learned from h1's ARP request): 5 s later
    # (delay_first_probe_time) it probes h1 by unicast, refreshing both entries.
    lab.advance(6, tick=0.5)
    assert len(learned(lab)) == 2
    lab.advance(4.5, tick=0.5)          # 5.5 s since that last frame
    assert learned(lab) == {}


def test_the_bridge_device_itself_answers():
    lab = bridge_lab()
    br0 = lab.nets["br0"]
    rtnetlink.inet_rtm_newaddr(br0, "br0", "10.0.0.254/24")
    lab.run()
    before = br_counters(lab)
    rx_packets = br0.dev_by_name["br0"].stats.rx_packets
    replies = ping(lab, "h1", "10.0.0.254")
    assert len(replies) == 1 and replies[0][12:16] == bytes([10, 0, 0, 254])
    d = delta(br_counters(lab), before)
    assert d["local_in"] == 2            # the ARP request (broadcast) and the echo
    assert br0.mib["Icmp"]["InEchos"] == 1 and br0.mib["Icmp"]["OutEchoReps"] == 1
    assert br0.dev_by_name["br0"].stats.rx_packets == rx_packets + 2


def test_a_port_that_is_down_gets_nothing():
    lab = bridge_lab()
    rtnetlink.rtnl_setlink(lab.nets["br0"], "p2", up=False)
    p2_sent = len(lab.port("br0", "p2").sent)
    assert ping(lab, "h1", "10.0.0.2") == []
    assert len(lab.port("br0", "p2").sent) == p2_sent


def test_port_enslaving_errors():
    lab = bridge_lab()
    br0 = lab.nets["br0"]
    with pytest.raises(KernelError) as e:
        rtnetlink.rtnl_setlink(br0, "lo", master="br0")
    assert e.value.errno == errno.EINVAL
    rtnetlink.rtnl_newlink(br0, "br1", "bridge")
    with pytest.raises(KernelError) as e:
        rtnetlink.rtnl_setlink(br0, "br1", master="br0")
    assert e.value.errno == errno.EINVAL
    # Moving a port to another bridge releases it from the first.
    rtnetlink.rtnl_setlink(br0, "p2", master="br1")
    assert lab.dev("br0", "p2").master.name == "br1"
    assert [p.dev.name for p in lab.dev("br0", "br0").priv.port_list] == ["p1"]


def test_bridge_device_sending_to_a_port_mac_goes_out_of_that_port():
    # An ARP request for br0's address whose sender MAC is port p1's own MAC: the reply
    # goes out of br0 to a local fdb entry. Linux br_dev_xmit never passes it up to
    # itself: br_forward sends it out of the entry's port (p1), like any known unicast.
    import struct
    lab = bridge_lab()
    br = lab.nets["br0"]
    rtnetlink.inet_rtm_newaddr(br, "br0", "10.0.0.254/24")
    lab.run()
    p1mac = lab.dev("br0", "p1").dev_addr
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x800, 6, 4, 1, p1mac, b"\x0a\0\0\x01",
                      b"\0" * 6, b"\x0a\0\0\xfe")
    before = br_counters(lab)
    lab.inject("br0", "p1", b"\xff" * 6 + p1mac + b"\x08\x06" + arp)
    lab.run()
    assert br_counters(lab)["forwarded"] == before["forwarded"] + 1
    assert br_counters(lab)["local_in"] == before["local_in"] + 1   # only the request
    assert len(ping(lab, "h1", "10.0.0.254")) == 1      # the bridge still answers


@pytest.mark.parametrize("group, forwarded", [(0x00, True), (0x01, False), (0x02, False),
                                              (0x0E, False)])
def test_ieee_link_local_groups_are_not_forwarded(group, forwarded):
    # 802.1D reserved 01:80:c2:00:00:0X: pause is dropped, LACP/LLDP stay on the
    # link; STP BPDUs are forwarded because this bridge runs no STP (br_handle_frame).
    lab = bridge_lab()
    h1 = lab.dev("h1", "eth0").dev_addr
    p2 = lab.port("br0", "p2")
    before = len(p2.sent)
    lab.inject("br0", "p1", bytes([1, 0x80, 0xC2, 0, 0, group]) + h1 + b"\x88\x08" + bytes(46))
    lab.run()
    assert (len(p2.sent) > before) is forwarded
    assert br_counters(lab)["link_local"] == 1
