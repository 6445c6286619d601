"""Tracing one packet's path through the functions of DESIGN.md section 3, across nodes.

Linux: kernel/trace (function tracing), include/trace/events/skb.h
"""
from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import dev_add_pack
from emu.kernel.core.netdevice import PacketType
from emu.kernel.hdr.if_ether import ETH_P_ALL

from .harness import bridge_lab, ping

BRIDGE_PATH = [
    "veth_forward_skb", "__dev_forward_skb", "netif_rx", "netif_rx_internal",
    "enqueue_to_backlog", "process_backlog",
    "__netif_receive_skb_core", "br_handle_frame", "br_handle_frame_finish",
    "br_forward", "__br_forward", "br_forward_finish", "br_dev_queue_push_xmit",
    "dev_queue_xmit", "__dev_queue_xmit", "dev_hard_start_xmit", "xmit_one", "netdev_start_xmit",
    "veth_xmit",
]
H2_PATH = [
    "veth_forward_skb", "__dev_forward_skb", "netif_rx", "netif_rx_internal",
    "enqueue_to_backlog", "process_backlog",
    "__netif_receive_skb_core", "deliver_skb", "ip_rcv", "NF_INET_PRE_ROUTING",
    "ip_rcv_finish", "ip_local_deliver", "NF_INET_LOCAL_IN", "ip_local_deliver_finish",
    "icmp_rcv", "icmp_echo", "icmp_reply", "icmp_push_reply", "ip_local_out",
    "__ip_local_out", "NF_INET_LOCAL_OUT", "dst_output", "ip_output", "NF_INET_POST_ROUTING",
    "ip_finish_output", "ip_finish_output2", "neigh_output", "dev_queue_xmit",
    "__dev_queue_xmit", "dev_hard_start_xmit", "xmit_one", "netdev_start_xmit", "veth_xmit",
]
H1_SEND_PATH = [
    "sock_sendmsg", "sock_sendmsg_nosec", "inet_sendmsg", "raw_sendmsg", "ip_route_output_flow", "ip_local_out", "__ip_local_out", "NF_INET_LOCAL_OUT", "dst_output", "ip_output",
    "NF_INET_POST_ROUTING", "ip_finish_output", "ip_finish_output2", "neigh_output",
    "dev_queue_xmit", "__dev_queue_xmit", "dev_hard_start_xmit", "xmit_one", "netdev_start_xmit",
    "veth_xmit",
]


def traced_lab(**filt):
    lab = bridge_lab()
    for node_id, net in enumerate(lab.nets.values(), 1):
        rtnetlink.trace_start(net, node_id=node_id, **filt)
    return lab


def dump(lab, node):
    return [tuple(r) for r in rtnetlink.trace_dump(lab.nets[node])]


def passes(rows):
    """Split a node's rows into passes, each starting where a frame arrives or is sent."""
    out = []
    for r in rows:
        if not out or r[4] in ("veth_forward_skb", "sock_sendmsg"):
            out.append([])
        out[-1].append(r)
    return out


def test_one_ping_traced_across_three_nodes():
    lab = traced_lab(proto="icmp")
    assert ping(lab, "h1", "10.0.0.2")
    h1, br0, h2 = dump(lab, "h1"), dump(lab, "br0"), dump(lab, "h2")
    tid = h1[0][0]
    assert h1[0][4] == "sock_sendmsg"
    # The id from h1 rides the wire header: the same packet has the same id everywhere.
    assert {r[0] for r in br0} == {r[0] for r in h2} == {tid}
    assert {r[1] for r in br0} == {"br0"} and {r[1] for r in h2} == {"h2"}

    request, reply = passes(br0)
    assert [r[4] for r in request] == BRIDGE_PATH
    assert request[0][5] == "p1" and request[-1][5] == "p2"      # in on p1, out on p2
    assert reply[0][5] == "p2" and reply[-1][5] == "p1"

    [echo] = passes(h2)
    assert [r[4] for r in echo] == H2_PATH

    send, receive = passes(h1)
    # The echo waited for ARP: neigh_output saw no entry, the rest ran on resolution.
    assert [r[4] for r in send] == H1_SEND_PATH
    assert ("neigh_output", "NONE") in [(r[4], r[5]) for r in send]
    assert [r[4] for r in receive][-5:] == ["raw_rcv", "raw_rcv_skb", "sock_def_readable", "icmp_rcv",
                                            "skb_copy_datagram_iter"]   # ping reads it


def test_trace_ids_differ_per_packet_and_per_node():
    lab = traced_lab(proto="icmp")
    assert ping(lab, "h1", "10.0.0.2", seq=1)
    assert ping(lab, "h1", "10.0.0.2", seq=2)
    assert ping(lab, "h2", "10.0.0.1", seq=3)
    ids_h1 = [r[0] for r in dump(lab, "h1") if r[4] == "raw_sendmsg"]
    ids_h2 = [r[0] for r in dump(lab, "h2") if r[4] == "raw_sendmsg"]
    assert len(set(ids_h1)) == 2 and len(ids_h2) == 1
    assert not set(ids_h1) & set(ids_h2)


def test_filter_decides_what_is_traced():
    lab = traced_lab(proto="udp")
    assert ping(lab, "h1", "10.0.0.2")
    assert all(dump(lab, n) == [] for n in lab.nets)
    lab = traced_lab(host="10.0.0.2")
    assert ping(lab, "h1", "10.0.0.2")
    assert dump(lab, "h2") and dump(lab, "br0")
    lab = traced_lab(host="10.9.9.9")
    assert ping(lab, "h1", "10.0.0.2")
    assert all(dump(lab, n) == [] for n in lab.nets)


def test_arp_is_traced_when_asked_for():
    lab = traced_lab(proto="arp")
    assert ping(lab, "h1", "10.0.0.2")
    funcs = [r[4] for r in dump(lab, "h2")]
    assert "arp_rcv" in funcs and "arp_process" in funcs
    assert "ip_rcv" not in funcs


def _tap(net):
    seen = []
    dev_add_pack(net, PacketType(ETH_P_ALL, lambda skb, dev, pt, orig: seen.append(skb.trace)))
    return seen


def test_tracing_off_leaves_skb_trace_none():
    lab = bridge_lab()
    seen = _tap(lab.nets["h2"])
    assert ping(lab, "h1", "10.0.0.2")
    assert seen and all(t is None for t in seen)
    assert all(rtnetlink.trace_dump(n) == [] for n in lab.nets.values())


def test_trace_stop_and_ring_bound():
    lab = traced_lab(proto="icmp")
    seen = _tap(lab.nets["h2"])
    assert ping(lab, "h1", "10.0.0.2", seq=1)
    assert any(t is not None for t in seen)
    rtnetlink.trace_start(lab.nets["h2"], proto="icmp", ring=8)
    assert ping(lab, "h1", "10.0.0.2", seq=2)
    assert len(dump(lab, "h2")) == 8                      # the ring keeps the newest
    assert dump(lab, "h2")[-1][4] == "veth_xmit"
    assert rtnetlink.trace_dump(lab.nets["h2"], clear=True)
    assert dump(lab, "h2") == []
    for net in lab.nets.values():
        rtnetlink.trace_stop(net)
    seen.clear()
    assert ping(lab, "h1", "10.0.0.2", seq=3)
    assert seen and all(t is None for t in seen)
    assert dump(lab, "h2") == []


def test_udp_send_path_follows_the_seed_notes():
    from emu.kernel.socket import sys_bind, sys_sendto, sys_socket
    lab = traced_lab(proto="udp")
    t1, t2 = lab.task("h1"), lab.task("h2")
    srv = sys_socket(t2, 2, 2, 0)
    sys_bind(t2, srv, ("0.0.0.0", 5353))
    cli = sys_socket(t1, 2, 2, 0)
    sys_sendto(t1, cli, b"q", 0, ("10.0.0.2", 5353))
    lab.run()
    h1 = [r[4] for r in dump(lab, "h1")]
    assert h1[:14] == ["sock_sendmsg", "sock_sendmsg_nosec", "inet_sendmsg", "udp_sendmsg",
                       "ip_route_output_flow", "ip_make_skb", "__ip_append_data",
                       "skb_add_data_nocache", "__ip_make_skb", "udp_send_skb", "ip_send_skb",
                       "ip_local_out", "__ip_local_out", "NF_INET_LOCAL_OUT"]
    h2 = [r[4] for r in dump(lab, "h2")]
    assert h2[-5:] == ["ip_local_deliver_finish", "udp_rcv", "udp_queue_rcv_skb",
                       "__udp_enqueue_schedule_skb", "sock_def_readable"]


def test_tcp_segment_path_send_and_receive():
    from tests.kernel.test_tcp import Pair
    p = Pair().connect()
    for node_id, net in enumerate(p.lab.nets.values(), 1):
        rtnetlink.trace_start(net, node_id=node_id, proto="tcp", port=80)
    from emu.kernel.socket import sys_sendto
    sys_sendto(p.t1, p.c, b"GET / HTTP/1.0\r\n\r\n", 0, None)
    p.lab.run()
    h1 = dump(p.lab, "h1")
    tid = h1[0][0]
    seg = [r[4] for r in h1 if r[0] == tid]
    assert seg[:15] == ["sock_sendmsg", "sock_sendmsg_nosec", "inet_sendmsg", "tcp_sendmsg",
                        "tcp_sendmsg_locked", "skb_add_data_nocache", "tcp_push",
                        "__tcp_push_pending_frames", "tcp_write_xmit", "tcp_transmit_skb",
                        "ip_queue_xmit", "ip_local_out", "__ip_local_out", "NF_INET_LOCAL_OUT", "dst_output"]
    assert seg[-1] == "veth_xmit"
    h2 = [r[4] for r in dump(p.lab, "h2") if r[0] == tid]
    assert h2[:5] == ["veth_forward_skb", "__dev_forward_skb", "netif_rx", "netif_rx_internal",
                      "enqueue_to_backlog"]
    j = h2.index("ip_rcv_finish")
    assert h2[j + 1:j + 3] == ["tcp_v4_early_demux", "ip_local_deliver"]     # before routing
    i = h2.index("ip_local_deliver_finish")
    assert h2[i + 1:i + 6] == ["tcp_v4_rcv", "tcp_v4_do_rcv", "tcp_rcv_established", "tcp_ack",
                               "tcp_data_queue"]
