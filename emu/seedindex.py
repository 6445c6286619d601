"""The index of the functions the Linux course notes name: each name, as the
notes spell it, to the emu file and line that implement it.

    python -m emu.seedindex            # print the index (Markdown)
    python -m emu.seedindex --write    # rewrite docs/seed-index.md

tests/test_seed_index.py re-derives the index and compares it with the
committed file, so a moved or renamed function fails the suite.
"""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT / "docs" / "seed-index.md"

# (name as the notes write it, emu's name for it or None, remark). emu's name
# is Linux 6.x's; the remark says why it differs from the notes' spelling.
NOTES = [
    ("____napi_schedule", "____napi_schedule", ""),
    ("___napi_schedule", "____napi_schedule", "the notes' spelling (three underscores)"),
    ("__br_forward", "__br_forward", ""),
    ("__dev_forward_skb", "__dev_forward_skb", ""),
    ("__dev_queue_xmit", "__dev_queue_xmit", ""),
    ("__ip_append_data", "__ip_append_data", ""),
    ("__ip_local_out", "__ip_local_out", ""),
    ("__ip_make_skb", "__ip_make_skb", ""),
    ("__napi_schedule", "__napi_schedule", ""),
    ("__netif_receive_skb", "__netif_receive_skb", ""),
    ("__netif_receive_skb_core", "__netif_receive_skb_core", ""),
    ("__tcp_push_pending_frames", "__tcp_push_pending_frames", ""),
    ("_napi_schedule", "__napi_schedule", "the notes' spelling (one underscore)"),
    ("_netif_receive_skb_core", "__netif_receive_skb_core", "the notes' spelling (one underscore)"),
    ("_netif_receive_skb_list", "__netif_receive_skb_list", "Linux 6.x: __netif_receive_skb_list"),
    ("alloc_skb", "alloc_skb", ""),
    ("br_add_if", "br_add_if", ""),
    ("br_dev_queue_push_xmit", "br_dev_queue_push_xmit", ""),
    ("br_forward", "br_forward", ""),
    ("br_forward_finish", "br_forward_finish", ""),
    ("br_handle_frame", "br_handle_frame", ""),
    ("br_handle_frame_finish", "br_handle_frame_finish", ""),
    ("call_read_iter", None, "not modelled: emu has no VFS; a read on a socket enters at sys_recvfrom"),
    ("call_write_iter", None, "not modelled: emu has no VFS; a write on a socket enters at sys_sendto"),
    ("create", "inet_create", "net_proto_family.create of AF_INET"),
    ("deliver_skb", "deliver_skb", ""),
    ("dev_forward_skb", "dev_forward_skb", ""),
    ("dev_gro_receive", "dev_gro_receive", ""),
    ("dev_gro_receivei", "dev_gro_receive", "a typo in the notes"),
    ("dev_hard_start_xmit", "dev_hard_start_xmit", ""),
    ("dev_queue_xmit", "dev_queue_xmit", ""),
    ("dev_queue_xmit_nit", "dev_queue_xmit_nit", ""),
    ("dst_entry", "Rtable", "struct rtable, whose first member is struct dst_entry"),
    ("dst_output", "dst_output", ""),
    ("enqueue_to_backlog", "enqueue_to_backlog", ""),
    ("gro_complete", "inet_gro_complete", "the protocol's gro_complete callback for IPv4"),
    ("gro_normal_list", "gro_normal_list", ""),
    ("gro_normal_one", "gro_normal_one", ""),
    ("inet_create", "inet_create", ""),
    ("inet_init", "inet_init", ""),
    ("inet_msg", "inet_sendmsg", "the notes' shorthand for inet_sendmsg"),
    ("inet_sendmsg", "inet_sendmsg", ""),
    ("ip_finish_output", "ip_finish_output", ""),
    ("ip_finish_output2", "ip_finish_output2", ""),
    ("ip_local_deliver", "ip_local_deliver", ""),
    ("ip_local_deliver_finish", "ip_local_deliver_finish", ""),
    ("ip_local_out", "ip_local_out", ""),
    ("ip_make_skb", "ip_make_skb", ""),
    ("ip_output", "ip_output", ""),
    ("ip_output2", "ip_finish_output2", "the notes' shorthand for ip_finish_output2"),
    ("ip_protocol_deliver_rcu", "ip_protocol_deliver_rcu", ""),
    ("ip_queue_xmit", "ip_queue_xmit", ""),
    ("ip_rcv", "ip_rcv", ""),
    ("ip_rcv_finish", "ip_rcv_finish", ""),
    ("ip_route_output_flow", "ip_route_output_flow", ""),
    ("ip_send_skb", "ip_send_skb", ""),
    ("napi_complete", "napi_complete", ""),
    ("napi_complete_done", "napi_complete_done", ""),
    ("napi_gro_complete", "napi_gro_complete", ""),
    ("napi_gro_flush", "napi_gro_flush", ""),
    ("napi_gro_receive", "napi_gro_receive", ""),
    ("napi_poll", "napi_poll", ""),
    ("napi_schedule_prep", "napi_schedule_prep", ""),
    ("napi_skb_finish", "napi_skb_finish", ""),
    ("ndo_init", "NetDeviceOps", "a net_device_ops slot; the bridge's is br_dev_init"),
    ("ndo_open", "veth_open", "veth's net_device_ops.ndo_open"),
    ("ndo_start_xmit", "veth_xmit", "veth's net_device_ops.ndo_start_xmit"),
    ("ndo_stop", "veth_close", "veth's net_device_ops.ndo_stop"),
    ("ndo_uninit", "NetDeviceOps", "a net_device_ops slot (unregister_netdevice calls it)"),
    ("neigh_hh_output", "neigh_hh_output", ""),
    ("neigh_output", "neigh_output", ""),
    ("net_dev_init", "net_dev_init", ""),
    ("net_rx_action", "net_rx_action", ""),
    ("netdev_start_xmit", "netdev_start_xmit", ""),
    ("netif_receive_skb_internal", "netif_receive_skb_internal", ""),
    ("netif_receive_skb_list_internal", "netif_receive_skb_list_internal", ""),
    ("netif_rx_internal", "netif_rx_internal", ""),
    ("new_sync_read", None, "not modelled: emu has no VFS"),
    ("new_sync_write", None, "not modelled: emu has no VFS"),
    ("parse", "eth_header_parse", "header_ops.parse of Ethernet"),
    ("poll", "process_backlog", "the NAPI poll method of the per-CPU backlog (veth's receive)"),
    ("process_backlog", "process_backlog", ""),
    ("pskb_copy", "pskb_copy", ""),
    ("raw_local_deliver", "raw_local_deliver", ""),
    ("raw_rcv", "raw_rcv", ""),
    ("raw_rcv_skb", "raw_rcv_skb", ""),
    ("raw_v4_input", "raw_v4_input", ""),
    ("read", "sys_recvfrom", "read(2) on a socket is recvfrom without an address"),
    ("request_irq", None, "not modelled: no interrupt controller; the runtime calls the "
                          "driver's handler (veth_rx_irq) when its wire has frames"),
    ("rx_handler", "br_handle_frame", "the rx_handler a bridge port registers"),
    ("send", "udp_sendmsg", "the protocol's sendmsg (UDP's here)"),
    ("sendmsg", "inet_sendmsg", "sock->ops->sendmsg of AF_INET"),
    ("sendto", "sys_sendto", ""),
    ("sk_buff", "SkBuff", "struct sk_buff"),
    ("sk_wait_data", "sk_wait_data", ""),
    ("skb_add_data_nocache", "skb_add_data_nocache", ""),
    ("skb_clone", "skb_clone", ""),
    ("skb_copy", "skb_copy", ""),
    ("skb_copy_datagram_iovec", "skb_copy_datagram_iter", "renamed skb_copy_datagram_iter in Linux 3.19"),
    ("skb_dequeue", "skb_dequeue", ""),
    ("skb_pull", "skb_pull", ""),
    ("skb_push", "skb_push", ""),
    ("skb_put", "skb_put", ""),
    ("skb_queue_head", "skb_queue_head", ""),
    ("skb_queue_head_init", "skb_queue_head_init", ""),
    ("skb_queue_tail", "skb_queue_tail", ""),
    ("skb_reserve", "skb_reserve", ""),
    ("sock_def_readable", "sock_def_readable", ""),
    ("sock_queue_rcv_skb", "sock_queue_rcv_skb", ""),
    ("sock_read_iter", None, "not modelled: emu has no VFS; sock_recvmsg is the entry"),
    ("sock_recvmsg", "sock_recvmsg", ""),
    ("sock_sendmsg", "sock_sendmsg", ""),
    ("sock_sendmsg_nosec", "sock_sendmsg_nosec", ""),
    ("sock_write_iter", None, "not modelled: emu has no VFS; sock_sendmsg is the entry"),
    ("sys_socket", "sys_socket", ""),
    ("tcp_data_queue", "tcp_data_queue", ""),
    ("tcp_push", "tcp_push", ""),
    ("tcp_rcv_established", "tcp_rcv_established", ""),
    ("tcp_recvmsg", "tcp_recvmsg", ""),
    ("tcp_recvmsg_locked", "tcp_recvmsg_locked", "not in the notes; Linux 6.x's reader"),
    ("tcp_sendmsg", "tcp_sendmsg", ""),
    ("tcp_sendmsg_locked", "tcp_sendmsg_locked", ""),
    ("tcp_transmit_skb", "tcp_transmit_skb", ""),
    ("tcp_v4_do_rcv", "tcp_v4_do_rcv", ""),
    ("tcp_v4_rcv", "tcp_v4_rcv", ""),
    ("tcp_write_xmit", "tcp_write_xmit", ""),
    ("udp_send_skb", "udp_send_skb", ""),
    ("udp_sendmsg", "udp_sendmsg", ""),
    ("veth_newlink", "veth_newlink", ""),
    ("veth_xmit", "veth_xmit", ""),
    ("vfs_read", None, "not modelled: emu has no VFS"),
    ("vfs_write", None, "not modelled: emu has no VFS"),
    ("write", "sys_sendto", "write(2) on a socket is sendto without an address"),
    ("xmit_one", "xmit_one", ""),
]


def definitions(root=ROOT):
    """Every module-level function and class under emu/: name -> (path, line),
    the kernel's definition first where a tool has one of the same name."""
    found = {}
    paths = sorted((root / "emu").rglob("*.py"), key=lambda p: (not p.is_relative_to(root / "emu" / "kernel"), p))
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        rel = path.relative_to(root).as_posix()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.setdefault(node.name, (rel, node.lineno))
    return found


def render(root=ROOT):
    """The index as Markdown; raises KeyError naming an entry emu lacks."""
    defs = definitions(root)
    lines = [
        "# Functions the course notes name, and where emu implements them",
        "",
        "Generated by `python -m emu.seedindex --write` from the table in",
        "`emu/seedindex.py`; `tests/test_seed_index.py` checks it is current.",
        "`emu trace` shows these functions for a real packet (see the README).",
        "",
        "| in the notes | in emu | where | remark |",
        "|---|---|---|---|",
    ]
    for notes, name, remark in NOTES:
        if name is None:
            lines.append("| `%s` | | | %s |" % (notes, remark))
            continue
        if name not in defs:
            raise KeyError("%s (for the notes' %s) is not defined under emu/" % (name, notes))
        path, line = defs[name]
        lines.append("| `%s` | `%s` | [%s:%d](../%s#L%d) | %s |" % (notes, name, path, line, path, line, remark))
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--write" in argv:
        INDEX.parent.mkdir(exist_ok=True)
        INDEX.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
