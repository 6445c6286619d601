"""ICMP errors carry RT_TOS(original TOS) | IPTOS_PREC_INTERNETCONTROL
(net/ipv4/icmp.c __icmp_send): the original's TOS bits kept, its precedence
and ECN bits replaced by 0xC0. An echo reply copies the request's TOS."""
import dpkt

from emu.kernel.socket import SOCK_NONBLOCK, sys_sendto, sys_setsockopt, sys_socket
from tests.kernel.harness import bridge_lab, ping

AF_INET, SOCK_DGRAM, SOL_IP, IP_TOS = 2, 2, 0, 1


def icmp_from(lab, node):
    out = []
    for f in lab.port(node, "eth0").sent:
        ip = dpkt.ethernet.Ethernet(f).data
        if isinstance(ip, dpkt.ip.IP) and ip.p == 1:
            out.append(ip)
    return out


def test_port_unreachable_tos_is_internet_control_precedence_with_the_tos_bits():
    lab = bridge_lab()
    t1 = lab.task("h1")
    u = sys_socket(t1, AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    for tos in (0xB9, 0x00, 0x1F):
        sys_setsockopt(t1, u, SOL_IP, IP_TOS, tos)
        sys_sendto(t1, u, b"x" * 10, 0, ("10.0.0.2", 9))      # nobody listens on h2:9
        lab.run()
    errs = [ip for ip in icmp_from(lab, "h2") if ip.data.type == 3]
    assert [e.data.code for e in errs] == [3, 3, 3]
    # 0xB9 (DSCP EF, ECT(1)) -> 0x18 | 0xC0; 0 -> 0xC0; 0x1F -> 0x1E | 0xC0.
    assert [e.tos for e in errs] == [0xD8, 0xC0, 0xDE]
    # The quoted header is the original, TOS and all.
    assert [e.data.data.ip.tos for e in errs] == [0xB9, 0x00, 0x1F]


def test_echo_reply_copies_the_request_tos():
    lab = bridge_lab()
    replies = ping(lab, "h1", "10.0.0.2")
    assert replies and dpkt.ip.IP(replies[0]).tos == 0
    assert [ip.tos for ip in icmp_from(lab, "h2") if ip.data.type == 0] == [0]
