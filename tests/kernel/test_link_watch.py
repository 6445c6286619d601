"""Carrier and operstate: netif_carrier_on/off, the link watch, linkdown
routes and bridge ports that follow their carrier.

Linux: net/core/link_watch.c, net/ipv4/fib_frontend.c (NETDEV_CHANGE),
net/bridge/br_if.c / br_notify.c (br_port_carrier_check)
"""
from emu.kernel.core import rtnetlink
from emu.kernel.core.link_watch import netif_carrier_off, netif_carrier_on
from emu.kernel.core.netdevice import IFF_LOWER_UP, IFF_RUNNING, IFF_UP
from emu.kernel.drivers.wirenic import wirenic_register
from emu.kernel.hdr.if_ether import mac_from_str
from emu.kernel.init import start_kernel
from emu.kernel.bridge.br_private import BR_STATE_DISABLED, BR_STATE_FORWARDING

from .harness import bridge_lab, ping, router_line_lab


def link_row(net, name):
    return rtnetlink.rtnl_getlink(net, name)[0]


def test_veth_without_carrier_is_lowerlayerdown_and_no_carrier():
    lab = bridge_lab()
    h1 = lab.nets["h1"]
    dev = lab.dev("h1", "eth0")
    netif_carrier_off(dev)
    row = link_row(h1, "eth0")
    assert row["operstate"] == "LOWERLAYERDOWN"
    assert "UP" in row["flags"] and "LOWER_UP" not in row["flags"] and not row["running"]
    assert dev.flags & IFF_UP                       # administratively still up
    # Nothing leaves a device without carrier: the qdisc is noop.
    sent = len(lab.port("h1", "eth0").sent)
    assert not ping(lab, "h1", "10.0.0.2")
    assert len(lab.port("h1", "eth0").sent) == sent
    netif_carrier_on(dev)
    row = link_row(h1, "eth0")
    assert row["operstate"] == "UP" and row["running"] and "LOWER_UP" in row["flags"]
    assert row["carrier_changes"] == 2
    lab.advance(4.0)                                # the ARP entry that failed meanwhile
    assert ping(lab, "h1", "10.0.0.2")


def test_phys_nic_losing_carrier_is_down_after_the_link_watch_delay():
    net = start_kernel("h", 1)
    dev = wirenic_register(net, "eth0", mac_from_str("02:00:00:00:00:01"), None, "", 1, None)
    rtnetlink.rtnl_setlink(net, "eth0", up=True)
    net.run_timers(net.now())
    assert dev.operstate == "UP"
    netif_carrier_off(dev)
    assert not dev.flags & IFF_LOWER_UP             # at once
    # Not urgent (no peer device): the link watch runs within a second.
    net.clock.advance(1.0)
    net.run_timers(net.now())
    assert dev.operstate == "DOWN" and not dev.flags & IFF_RUNNING
    netif_carrier_on(dev)                           # urgent: the qdisc must come back
    assert dev.operstate == "UP" and dev.flags & IFF_RUNNING


def test_routes_through_a_device_without_carrier_are_linkdown():
    lab = router_line_lab()
    r1 = lab.nets["r1"]
    netif_carrier_off(lab.dev("r1", "eth1"))
    rows = [r for r in rtnetlink.inet_dump_fib(r1) if r["dev"] == "eth1"]
    assert rows and all(r.get("flags") == ["linkdown"] for r in rows)
    # Still used by default (ignore_routes_with_linkdown=0) ...
    from emu.kernel.ipv4.route import fib_lookup
    from emu.kernel.hdr.ip import inet_aton
    fa = fib_lookup(r1, inet_aton("10.0.3.10"))
    assert fa is not None and fa.dev.name == "eth1"
    # ... and skipped when it is set (for the device, or for all).
    rtnetlink.sysctl_set(r1, "net.ipv4.conf.eth1.ignore_routes_with_linkdown", 1)
    assert fib_lookup(r1, inet_aton("10.0.3.10")) is None
    netif_carrier_on(lab.dev("r1", "eth1"))
    assert fib_lookup(r1, inet_aton("10.0.3.10")).dev.name == "eth1"
    assert not any(r.get("flags") for r in rtnetlink.inet_dump_fib(r1))


def test_bridge_port_without_carrier_stops_forwarding_and_forgets():
    lab = bridge_lab()
    assert ping(lab, "h1", "10.0.0.2")
    br = lab.nets["br0"]
    p2 = lab.dev("br0", "p2").rx_handler_data
    assert p2.state == BR_STATE_FORWARDING
    netif_carrier_off(lab.dev("br0", "p2"))
    assert p2.state == BR_STATE_DISABLED
    assert all(r["dev"] != "p2" or r["is_local"] for r in rtnetlink.br_fdb_show(br))
    # h2's end still has carrier, but the bridge neither forwards to nor from p2.
    assert not ping(lab, "h1", "10.0.0.2")
    netif_carrier_on(lab.dev("br0", "p2"))
    assert p2.state == BR_STATE_FORWARDING
    assert ping(lab, "h1", "10.0.0.2")


def test_bridge_device_loses_carrier_with_its_last_forwarding_port():
    lab = bridge_lab()
    br = lab.nets["br0"]
    netif_carrier_off(lab.dev("br0", "p1"))
    assert link_row(br, "br0")["running"]
    netif_carrier_off(lab.dev("br0", "p2"))
    assert "LOWER_UP" not in link_row(br, "br0")["flags"]
    lab.advance(1.1)                 # not urgent: the next link watch run
    assert not link_row(br, "br0")["running"] and link_row(br, "br0")["operstate"] == "DOWN"
    netif_carrier_on(lab.dev("br0", "p2"))
    assert link_row(br, "br0")["running"] and link_row(br, "br0")["operstate"] == "UP"
