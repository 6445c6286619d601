"""The receive core: netif_rx, the backlog, the NET_RX budget, rx_handler, delivery.

Linux: net/core/dev.c (netif_rx, enqueue_to_backlog, process_backlog,
net_rx_action, __netif_receive_skb_core), drivers/net/veth.c
"""
import errno
import struct

import pytest

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import (
    KernelError, dev_add_pack, dev_queue_xmit, netdev_rx_handler_register,
    register_netdevice,
)
from emu.kernel.core.napi import NAPI_STATE_SCHED, NET_RX_SOFTIRQ, do_softirq, net_rx_action
from emu.kernel.core.netdevice import (
    RX_HANDLER_ANOTHER, RX_HANDLER_CONSUMED, RX_HANDLER_EXACT, RX_HANDLER_PASS,
    NetDevice, PacketType,
)
from emu.kernel.core.skbuff import (
    PACKET_BROADCAST, PACKET_HOST, PACKET_MULTICAST, PACKET_OTHERHOST, PACKET_OUTGOING,
    alloc_skb, skb_put_data, skb_reserve,
)
from emu.kernel.drivers.veth import veth_forward_skb
from emu.kernel.hdr.if_ether import BROADCAST, ETH_P_ALL

from .harness import InlineLab, bridge_lab, ping

ETH_P_TEST = 0x88B5          # IEEE 802 local experimental EtherType
PEER_MAC = b"\x02\x00\x00\x00\x00\x99"


def pair(ncpus=1):
    """Two kernels a and b, eth0 -- eth0, both up."""
    lab = InlineLab(ncpus)
    lab.node("a")
    lab.node("b")
    lab.link("a", "eth0", "b", "eth0")
    for n in ("a", "b"):
        rtnetlink.rtnl_setlink(lab.nets[n], "eth0", up=True)
    return lab


def frame(dst, ethertype=ETH_P_TEST, payload=b"hello, world" * 4, src=PEER_MAC):
    return dst + src + struct.pack("!H", ethertype) + payload


def catch(net, ethertype=ETH_P_TEST, dev=None):
    """Register a protocol handler that records what it is given."""
    got = []

    def func(skb, dev, pt, orig_dev):
        got.append((skb, dev, orig_dev))
        return 0
    dev_add_pack(net, PacketType(ethertype, func, dev))
    return got


# ---------------------------------------------------------------- netif_rx and the backlog

def test_netif_rx_queues_on_the_backlog_and_net_rx_delivers():
    lab = pair()
    net, dev = lab.nets["b"], lab.dev("b", "eth0")
    got = catch(net)
    sd = net.cpus[0]
    veth_forward_skb(dev, frame(dev.dev_addr))
    # Queued, NET_RX raised, nothing delivered yet: that is the softirq's job.
    assert len(sd.input_pkt_queue) == 1
    assert sd.pending & (1 << NET_RX_SOFTIRQ)
    assert sd.backlog.state & NAPI_STATE_SCHED and sd.backlog in sd.poll_list
    assert got == []
    do_softirq(net, 0)
    assert len(got) == 1 and sd.processed == 1
    assert sd.pending == 0 and not sd.backlog.state & NAPI_STATE_SCHED
    assert not sd.input_pkt_queue and not sd.process_queue
    skb, rdev, orig = got[0]
    assert rdev is dev and orig is dev and skb.protocol == ETH_P_TEST
    assert skb.pkt_type == PACKET_HOST
    assert skb.payload() == b"hello, world" * 4          # eth_type_trans pulled 14 bytes
    assert skb.buf[skb.mac_header + 6:skb.mac_header + 12] == PEER_MAC
    assert dev.stats.rx_packets == 1 and dev.stats.rx_bytes == 14 + 48


def test_pkt_type_classification():
    lab = pair()
    net, dev = lab.nets["b"], lab.dev("b", "eth0")
    got = catch(net)
    for dst in (dev.dev_addr, BROADCAST, b"\x01\x00\x5e\x00\x00\x01", b"\x02" * 6):
        lab.inject("b", "eth0", frame(dst))
    assert [g[0].pkt_type for g in got] == [PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST,
                                            PACKET_OTHERHOST]


def test_receive_runs_on_the_devices_rx_cpu():
    lab = pair(ncpus=2)
    net = lab.nets["b"]
    rtnetlink.rtnl_setlink(net, "eth0", rx_cpu=1)
    got = catch(net)
    lab.inject("b", "eth0", frame(lab.dev("b", "eth0").dev_addr))
    assert len(got) == 1
    assert [sd.processed for sd in net.cpus] == [0, 1]


def test_net_rx_action_respects_netdev_budget():
    lab = pair()
    net, dev = lab.nets["b"], lab.dev("b", "eth0")
    got = catch(net)
    rtnetlink.sysctl_set(net, "net.core.netdev_budget", 10)
    sd = net.cpus[0]
    for _ in range(100):
        veth_forward_skb(dev, frame(dev.dev_addr))
    sd.pending = 0
    net_rx_action(sd)
    # One backlog poll (weight 64) exhausts the budget of 10: the softirq stops,
    # counts a squeeze and stays pending with the rest still queued.
    assert len(got) == 64
    assert sd.time_squeeze == 1
    assert sd.pending & (1 << NET_RX_SOFTIRQ)
    assert len(sd.input_pkt_queue) + len(sd.process_queue) == 36
    do_softirq(net, 0)
    assert len(got) == 100 and sd.pending == 0
    assert rtnetlink.counters(net)["softnet_stat"][0]["time_squeeze"] >= 1


def test_default_budget_drains_without_squeeze():
    lab = pair()
    net, dev = lab.nets["b"], lab.dev("b", "eth0")
    got = catch(net)
    for _ in range(100):
        veth_forward_skb(dev, frame(dev.dev_addr))
    do_softirq(net, 0)
    assert len(got) == 100 and net.cpus[0].time_squeeze == 0


def test_netdev_max_backlog_overflow_is_counted():
    lab = pair()
    net, dev = lab.nets["b"], lab.dev("b", "eth0")
    got = catch(net)
    rtnetlink.sysctl_set(net, "net.core.netdev_max_backlog", 5)
    for _ in range(10):
        veth_forward_skb(dev, frame(dev.dev_addr))
    # enqueue_to_backlog accepts while qlen <= netdev_max_backlog (as Linux).
    sd = net.cpus[0]
    assert len(sd.input_pkt_queue) == 6
    c = rtnetlink.counters(net)
    assert c["softnet_stat"][0]["dropped"] == 4
    assert c["dev"]["eth0"]["rx_dropped"] == 4
    assert c["drop_reasons"]["CPU_BACKLOG"] == 4
    lab.run()
    assert len(got) == 6


# ---------------------------------------------------------------- rx_handler and delivery

def _handler(result, log, new_dev=None):
    def rx_handler(skb):
        log.append(skb.dev.name)
        if new_dev is not None:
            skb.dev = new_dev
        return result
    return rx_handler


def test_rx_handler_consumed_skips_protocol_handlers():
    lab = pair()
    net, dev = lab.nets["b"], lab.dev("b", "eth0")
    got, log = catch(net), []
    netdev_rx_handler_register(dev, _handler(RX_HANDLER_CONSUMED, log), None)
    lab.inject("b", "eth0", frame(dev.dev_addr))
    assert log == ["eth0"] and got == []


def test_rx_handler_pass_delivers_normally():
    lab = pair()
    net, dev = lab.nets["b"], lab.dev("b", "eth0")
    got, log = catch(net), []
    netdev_rx_handler_register(dev, _handler(RX_HANDLER_PASS, log), None)
    lab.inject("b", "eth0", frame(dev.dev_addr))
    assert log == ["eth0"] and len(got) == 1


def test_rx_handler_another_goes_round_with_the_new_device():
    lab = pair()
    net, dev = lab.nets["b"], lab.dev("b", "eth0")
    upper = register_netdevice(net, NetDevice("upper0"))
    got, log = catch(net), []
    netdev_rx_handler_register(dev, _handler(RX_HANDLER_ANOTHER, log, upper), None)
    lab.inject("b", "eth0", frame(dev.dev_addr))
    assert log == ["eth0"]
    skb, rdev, orig = got[0]
    assert rdev is upper and orig is dev and skb.skb_iif == upper.ifindex


def test_rx_handler_exact_delivers_only_to_device_bound_handlers():
    lab = pair()
    net, dev = lab.nets["b"], lab.dev("b", "eth0")
    wildcard = catch(net)
    netdev_rx_handler_register(dev, _handler(RX_HANDLER_EXACT, []), None)
    lab.inject("b", "eth0", frame(dev.dev_addr))
    assert wildcard == []
    assert dev.stats.rx_nohandler == 1 and dev.stats.rx_dropped == 0
    bound = catch(net, dev=dev)
    lab.inject("b", "eth0", frame(dev.dev_addr))
    assert len(bound) == 1 and wildcard == []


def test_rx_handler_register_twice_is_ebusy():
    lab = pair()
    dev = lab.dev("b", "eth0")
    netdev_rx_handler_register(dev, _handler(RX_HANDLER_PASS, []), None)
    with pytest.raises(KernelError) as e:
        netdev_rx_handler_register(dev, _handler(RX_HANDLER_PASS, []), None)
    assert e.value.errno == errno.EBUSY


def test_every_handler_of_a_type_gets_the_packet():
    lab = pair()
    net, dev = lab.nets["b"], lab.dev("b", "eth0")
    first, second = catch(net), catch(net)
    lab.inject("b", "eth0", frame(dev.dev_addr))
    assert len(first) == len(second) == 1
    assert first[0][0] is not second[0][0]
    assert first[0][0].payload() == second[0][0].payload()


def test_taps_see_received_and_sent_frames():
    lab = pair()
    net, dev = lab.nets["b"], lab.dev("b", "eth0")
    tap = catch(net, ETH_P_ALL)
    lab.inject("b", "eth0", frame(dev.dev_addr))
    assert len(tap) == 1 and tap[0][0].protocol == ETH_P_TEST
    skb = alloc_skb(128)
    skb_reserve(skb, 64)
    skb_put_data(skb, b"outgoing")
    skb.dev = dev
    dev.header_ops.create(skb, dev, ETH_P_TEST, PEER_MAC, dev.dev_addr, skb.len)
    dev_queue_xmit(skb)
    assert len(tap) == 2 and tap[1][0].pkt_type == PACKET_OUTGOING
    assert lab.port("b", "eth0").sent[-1] == PEER_MAC + dev.dev_addr + b"\x88\xb5outgoing"


# ---------------------------------------------------------------- bad input: drop and count

def test_unknown_ethertype_is_dropped_and_counted():
    lab = pair()
    dev = lab.dev("b", "eth0")
    lab.inject("b", "eth0", frame(dev.dev_addr, ethertype=0x88B6))
    lab.inject("b", "eth0", frame(dev.dev_addr, ethertype=0x0040))   # an 802.3 length
    # Linux: no handler for the protocol -> rx_dropped (rx_nohandler is for EXACT).
    assert dev.stats.rx_dropped == 2
    assert lab.nets["b"].drop_reasons["UNHANDLED_PROTO"] == 2


@pytest.mark.parametrize("n", [0, 1, 6, 13])
def test_runt_frames_are_dropped_and_counted(n):
    lab = bridge_lab()
    dev = lab.dev("h2", "eth0")
    rx_packets = dev.stats.rx_packets
    lab.inject("h2", "eth0", (dev.dev_addr + PEER_MAC + b"\x08\x00")[:n])
    assert dev.stats.rx_length_errors == 1 and dev.stats.rx_errors == 1
    assert lab.nets["h2"].drop_reasons["PKT_TOO_SMALL"] == 1
    assert dev.stats.rx_packets == rx_packets
    assert ping(lab, "h1", "10.0.0.2")


def test_unknown_ethertype_then_the_node_still_answers():
    lab = bridge_lab()
    dev = lab.dev("h2", "eth0")
    lab.inject("h2", "eth0", frame(dev.dev_addr, ethertype=0x88B6))
    assert dev.stats.rx_dropped == 1
    assert ping(lab, "h1", "10.0.0.2")


def test_oversized_frame_is_dropped():
    lab = pair()
    dev = lab.dev("b", "eth0")
    got = catch(lab.nets["b"])
    lab.inject("b", "eth0", frame(dev.dev_addr, payload=bytes(1500 + 5)))
    assert got == [] and dev.stats.rx_dropped == 1
    lab.inject("b", "eth0", frame(dev.dev_addr, payload=bytes(1500)))
    assert len(got) == 1


def test_down_device_drops_both_ways():
    lab = pair()
    net, dev = lab.nets["b"], lab.dev("b", "eth0")
    got = catch(net)
    rtnetlink.rtnl_setlink(net, "eth0", up=False)
    lab.inject("b", "eth0", frame(dev.dev_addr))
    assert got == [] and net.drop_reasons["DEV_READY"] == 1
    skb = alloc_skb(64)
    skb_put_data(skb, frame(PEER_MAC))
    skb.dev = dev
    dev_queue_xmit(skb)
    assert dev.stats.tx_dropped == 1 and net.drop_reasons["DEV_READY"] == 2
    assert lab.port("b", "eth0").sent == []


# ---------------------------------------------------------------- registration

def test_register_netdevice_checks_names():
    lab = pair()
    net = lab.nets["a"]
    for bad in ("", "x" * 16, "a/b", "a b"):
        with pytest.raises(KernelError) as e:
            register_netdevice(net, NetDevice(bad))
        assert e.value.errno == errno.EINVAL
    with pytest.raises(KernelError) as e:
        register_netdevice(net, NetDevice("eth0"))
    assert e.value.errno == errno.EEXIST
    d = register_netdevice(net, NetDevice("dummy0"))
    assert net.dev_by_index[d.ifindex] is d and d.ifindex > lab.dev("a", "eth0").ifindex
