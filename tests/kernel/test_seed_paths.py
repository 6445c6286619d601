"""The chains the course notes draw appear, in order, in the trace of a real packet.

Linux: the functions of net/socket.c, net/ipv4/ip_output.c, net/core/dev.c,
include/net/neighbour.h, net/core/gro.c, net/ipv4/{udp,raw,tcp,tcp_output}.c,
drivers/net/veth.c that the notes in ../shared/seeds/ name.
"""
import errno

import pytest

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError
from emu.kernel.core.entry import SyscallBlock
from emu.kernel.core.neighbour import NUD_CONNECTED
from emu.kernel.socket import sys_bind, sys_recvfrom, sys_sendto, sys_socket

from .harness import bridge_lab, ping

UDP_SEND = [
    "sock_sendmsg", "sock_sendmsg_nosec", "inet_sendmsg", "udp_sendmsg", "ip_route_output_flow",
    "ip_make_skb", "__ip_append_data", "skb_add_data_nocache", "__ip_make_skb", "udp_send_skb",
    "ip_send_skb", "ip_local_out", "__ip_local_out", "dst_output", "ip_output", "ip_finish_output",
    "ip_finish_output2", "neigh_output", "neigh_hh_output", "dev_queue_xmit", "__dev_queue_xmit",
    "dev_hard_start_xmit", "xmit_one", "netdev_start_xmit", "veth_xmit",
]
VETH_RX = ["veth_forward_skb", "__dev_forward_skb", "netif_rx", "netif_rx_internal",
           "enqueue_to_backlog", "process_backlog", "__netif_receive_skb_core"]
UDP_RCV = VETH_RX + ["ip_rcv", "ip_local_deliver", "ip_local_deliver_finish", "udp_rcv",
                     "udp_queue_rcv_skb", "__udp_enqueue_schedule_skb", "sock_def_readable",
                     "udp_recvmsg", "__skb_recv_udp", "skb_copy_datagram_iter"]
RAW_RCV = ["raw_local_deliver", "raw_v4_input", "raw_rcv", "raw_rcv_skb", "sock_def_readable", "skb_copy_datagram_iter"]
TCP_SEND = ["sock_sendmsg", "sock_sendmsg_nosec", "inet_sendmsg", "tcp_sendmsg", "tcp_sendmsg_locked",
            "skb_add_data_nocache", "tcp_push", "__tcp_push_pending_frames", "tcp_write_xmit",
            "tcp_transmit_skb", "ip_queue_xmit", "ip_local_out", "__ip_local_out", "neigh_output",
            "neigh_hh_output", "dev_queue_xmit", "__dev_queue_xmit", "veth_xmit"]
TCP_RCV = VETH_RX + ["ip_rcv", "tcp_v4_rcv", "tcp_v4_do_rcv", "tcp_rcv_established",
                     "tcp_data_queue", "sock_def_readable", "tcp_recvmsg", "tcp_recvmsg_locked",
                     "skb_copy_datagram_iter"]
BRIDGE = VETH_RX + ["br_handle_frame", "br_handle_frame_finish", "br_forward", "__br_forward",
                    "dev_queue_xmit", "__dev_queue_xmit", "veth_xmit"]


def in_order(funcs, chain):
    """True if chain is a subsequence of funcs (other functions may come between)."""
    it = iter(funcs)
    return all(f in it for f in chain)


def trace(nets, **filt):
    for node_id, net in enumerate(nets, 1):
        rtnetlink.trace_start(net, node_id=node_id, **filt)


def by_packet(net):
    """node's trace rows grouped by trace id, in order of first appearance."""
    out: dict = {}
    for r in rtnetlink.trace_dump(net):
        out.setdefault(r[0], []).append(r[4])
    return list(out.values())


def test_in_order_is_a_subsequence_check():
    assert in_order(["a", "x", "b", "c"], ["a", "b", "c"])
    assert not in_order(["b", "a", "c"], ["a", "b", "c"])


def test_udp_send_and_receive_chains():
    lab = bridge_lab()
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv = sys_socket(t2, 2, 2, 0)
    sys_bind(t2, srv, ("0.0.0.0", 5353))
    cli = sys_socket(t1, 2, 2, 0)
    sys_sendto(t1, cli, b"first", 0, ("10.0.0.2", 5353))      # resolves the neighbour
    lab.run()
    assert sys_recvfrom(t2, srv, 100)[0] == b"first"
    trace(lab.nets.values(), proto="udp")
    sys_sendto(t1, cli, b"second", 0, ("10.0.0.2", 5353))
    lab.run()
    assert sys_recvfrom(t2, srv, 100)[0] == b"second"
    (sent,) = by_packet(lab.nets["h1"])
    assert in_order(sent, UDP_SEND), sent
    # neigh_output took the cached header: nothing was built by header_ops.create.
    assert sent.index("neigh_hh_output") == sent.index("neigh_output") + 1
    (through,) = by_packet(lab.nets["br0"])
    assert in_order(through, BRIDGE), through
    (got,) = by_packet(lab.nets["h2"])
    assert in_order(got, UDP_RCV), got


def test_hh_cache_holds_the_header_of_the_neighbour():
    lab = bridge_lab()
    assert ping(lab, "h1", "10.0.0.2")
    h1 = lab.nets["h1"]
    h2_mac = lab.dev("h2", "eth0").dev_addr
    n = next(n for n in h1.proto["arp_tbl"].hash.values() if n.ha == h2_mac)
    assert n.nud_state & NUD_CONNECTED
    assert n.hh.hh_len == 14
    assert n.hh.hh_data == h2_mac + lab.dev("h1", "eth0").dev_addr + b"\x08\x00"


def test_raw_receive_chain():
    lab = bridge_lab()
    assert ping(lab, "h1", "10.0.0.2", seq=1)
    trace(lab.nets.values(), proto="icmp")
    assert ping(lab, "h1", "10.0.0.2", seq=2)
    packets = by_packet(lab.nets["h1"])
    assert in_order(packets[0], ["sock_sendmsg", "sock_sendmsg_nosec", "inet_sendmsg", "raw_sendmsg",
                                 "neigh_output", "neigh_hh_output", "__dev_queue_xmit"]), packets[0]
    reply = packets[-1]
    assert in_order(reply, VETH_RX + ["ip_local_deliver_finish"] + RAW_RCV), reply


def test_tcp_send_and_receive_chains():
    from tests.kernel.test_tcp import Pair
    p = Pair().connect()
    trace(p.lab.nets.values(), proto="tcp", port=80)
    sys_sendto(p.t1, p.c, b"GET / HTTP/1.0\r\n\r\n", 0, None)
    p.lab.run()
    assert sys_recvfrom(p.t2, p.s, 100)[0] == b"GET / HTTP/1.0\r\n\r\n"
    sent = by_packet(p.lab.nets["h1"])[0]
    assert in_order(sent, TCP_SEND), sent
    tid_rows = [r for r in rtnetlink.trace_dump(p.lab.nets["h2"])]
    got = [r[4] for r in tid_rows if r[0] == tid_rows[0][0]]
    assert in_order(got, TCP_RCV), got


def test_tcp_recvmsg_waits_in_sk_wait_data():
    from tests.kernel.test_tcp import Pair
    p = Pair().connect()
    sk = p.sk("s")
    sk.sk_socket.nonblock = False
    from emu.kernel.ipv4.tcp import tcp_recvmsg
    with pytest.raises(SyscallBlock) as b:
        tcp_recvmsg(sk, 100, 0)
    assert b.value.wqs == [sk.sk_wq] and b.value.resume is not None
    sk.sk_socket.nonblock = True
    with pytest.raises(KernelError) as e:
        tcp_recvmsg(sk, 100, 0)
    assert e.value.errno == errno.EAGAIN


def test_udp_recvmsg_waits_in_skb_wait_for_more_packets():
    lab = bridge_lab()
    t = lab.task("h2")
    fd = sys_socket(t, 2, 2, 0)                 # AF_INET, SOCK_DGRAM, blocking
    sys_bind(t, fd, ("0.0.0.0", 7000))
    sk = t.fds[fd].sk
    with pytest.raises(SyscallBlock) as b:
        sys_recvfrom(t, fd, 100)
    assert b.value.wqs == [sk.sk_wq]
    frames = [tb.tb_frame.f_code.co_name for tb in _tb_walk(b.value.__traceback__)]
    assert frames[-2:] == ["__skb_recv_udp", "__skb_wait_for_more_packets"], frames
    with pytest.raises(KernelError) as e:
        sys_recvfrom(t, fd, 100, 0x40)         # MSG_DONTWAIT
    assert e.value.errno == errno.EAGAIN


def _tb_walk(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def test_veth_newlink_registers_a_veth():
    lab = bridge_lab()
    net = lab.nets["h1"]
    r = rtnetlink.rtnl_newlink(net, "v9", "veth", mtu=1400, peer="x:eth9")
    dev = net.dev_by_name["v9"]
    assert r["ifindex"] == dev.ifindex and dev.kind == "veth" and dev.mtu == 1400
    assert dev.priv.peer_name == "x:eth9"


def test_net_dev_init_sets_up_softnet_and_softirqs():
    from emu.kernel.core.napi import NET_RX_SOFTIRQ, NET_TX_SOFTIRQ, net_rx_action, net_tx_action
    from emu.kernel.init import start_kernel
    net = start_kernel("n", ncpus=3)
    assert [sd.cpu for sd in net.cpus] == [0, 1, 2]
    assert net.softirq_vec[NET_RX_SOFTIRQ] is net_rx_action
    assert net.softirq_vec[NET_TX_SOFTIRQ] is net_tx_action


def test_napi_gro_receive_chain():
    from tests.kernel.test_gro import Rig, chunks, seg
    rig = Rig()
    rtnetlink.trace_start(rig.net, proto="tcp")
    rig.rx([seg(s, d) for s, d in chunks(2)])
    assert len(rig.got) == 1                                  # the two merged
    packets = by_packet(rig.net)
    first, second = packets[0], packets[1]
    assert in_order(first, ["wirenic_poll", "napi_gro_receive", "dev_gro_receive",
                            "napi_skb_finish"]), first
    assert in_order(second, ["napi_gro_receive", "dev_gro_receive", "napi_skb_finish"]), second
    finish = [r for r in rtnetlink.trace_dump(rig.net) if r[4] == "napi_skb_finish"]
    assert [r[5] for r in finish] == ["held", "merged_free"]
