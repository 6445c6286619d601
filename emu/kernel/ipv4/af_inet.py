"""The AF_INET family: protocol registration and the BSD socket operations.

Linux: net/ipv4/af_inet.c
"""
import errno

from ..core.dev import KernelError, dev_add_pack
from ..core.netdevice import PacketType
from ..core.skbuff import consume_skb
from ..core.snmp import snmp_init
from ..core.sock import (
    SEND_SHUTDOWN, SS_CONNECTED, ProtoOps, Sock, datagram_poll, sk_data_ready,
)
from ..hdr.if_ether import ETH_P_IP
from ..hdr.ip import IPPROTO_ICMP, IPPROTO_IP, IPPROTO_UDP, inet_ntoa
from ..netfilter.core import nf_hooks_init
from ..netfilter.ip_tables import iptable_filter_init
from .arp import arp_init
from .devinet import inetdev_event
from .icmp import icmp_init, icmp_rcv
from .ip_forward import ip_forward
from .ip_fragment import ipfrag_init
from .ip_input import ip_local_deliver, ip_rcv
from .ip_output import ip_output
from .ip_sockglue import SOL_IP, ip_getsockopt, ip_setsockopt
from .raw import raw_init_net, raw_prot
from .udp import udp_err, udp_init_net, udp_prot, udp_rcv
from .route import RTN_LOCAL, DstOps, fib_init, inet_addr_type

AF_INET = 2
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3

TCP_ESTABLISHED = 1
TCP_CLOSE = 7

INET_PROTOSW_REUSE = 1
INET_PROTOSW_PERMANENT = 2
INET_PROTOSW_ICSK = 4


class InetProtosw:
    """struct inet_protosw: (type, protocol) -> proto and proto_ops."""

    __slots__ = ("type", "protocol", "prot", "ops", "flags")

    def __init__(self, type, protocol, prot, ops, flags=0):
        self.type = type
        self.protocol = protocol
        self.prot = prot
        self.ops = ops
        self.flags = flags


def inet_register_protosw(net, p):
    net.proto["inetsw"].setdefault(p.type, []).append(p)


def inet_add_protocol(net, handler, protocol):
    """Register the receive handler of an IP protocol (icmp_rcv, udp_rcv, tcp_v4_rcv)."""
    protos = net.proto["inet_protos"]
    if protocol in protos:
        raise KernelError(errno.EEXIST)
    protos[protocol] = handler


def inet_add_err_handler(net, handler, protocol):
    net.proto["icmp_err_handlers"][protocol] = handler


def inet_create(net, sock, protocol):
    """Pick the inetsw entry for (type, protocol) and make the sock."""
    answer = None
    err = errno.ESOCKTNOSUPPORT
    for p in net.proto["inetsw"].get(sock.type, ()):
        err = 0
        if protocol == p.protocol:
            if protocol != IPPROTO_IP:
                answer = p
                break
        elif protocol == IPPROTO_IP:        # the wild cases, as inet_create has them
            protocol = p.protocol
            answer = p
            break
        elif p.protocol == IPPROTO_IP:
            answer = p
            break
        err = errno.EPROTONOSUPPORT
    if answer is None:
        raise KernelError(err or errno.EPROTONOSUPPORT)
    if sock.type == SOCK_RAW and protocol == IPPROTO_IP:
        raise KernelError(errno.EPROTONOSUPPORT)
    if answer.protocol != IPPROTO_IP:
        protocol = answer.protocol
    sock.ops = answer.ops
    sk = Sock(net, AF_INET, sock.type, protocol, answer.prot)
    sk.sk_socket = sock
    sock.sk = sk
    if sock.type == SOCK_RAW:
        sk.inet_num = protocol
    if sk.sk_prot.init is not None:
        sk.sk_prot.init(sk)
    return sk


def inet_release(sock):
    sk = sock.sk
    if sk is None:
        return
    sk.sk_prot.close(sk)
    q = sk.sk_receive_queue.q
    while q:
        consume_skb(q.popleft())
    sock.sk = None
    sk.sk_socket = None


def inet_bind(sock, addr):
    """bind(): addr is (ip_int, port)."""
    sk = sock.sk
    ip, port = addr
    if sk.sk_prot.bind is not None:
        return sk.sk_prot.bind(sk, ip, port)
    if ip and inet_addr_type(sk.net, ip) != RTN_LOCAL and ip != 0xFFFFFFFF:
        raise KernelError(errno.EADDRNOTAVAIL)
    if sock.type != SOCK_RAW and (sk.inet_num or sk.inet_rcv_saddr):
        raise KernelError(errno.EINVAL)
    sk.inet_rcv_saddr = sk.inet_saddr = ip
    return 0


def inet_dgram_connect(sock, addr):
    sk = sock.sk
    if sk.sk_prot.connect is not None:
        sk.sk_prot.connect(sk, addr)
    else:
        sk.inet_daddr = addr[0]
        sk.inet_dport = addr[1]
        sk.sk_state = TCP_ESTABLISHED
    sock.state = SS_CONNECTED
    return 0


def inet_getname(sock, peer):
    sk = sock.sk
    if peer:
        if not sk.inet_dport and not sk.inet_daddr:
            raise KernelError(errno.ENOTCONN)
        return (inet_ntoa(sk.inet_daddr), sk.inet_dport)
    return (inet_ntoa(sk.inet_rcv_saddr or sk.inet_saddr), sk.inet_sport)


def inet_sendmsg(sock, data, flags, addr):
    """sock->ops->sendmsg: hand over to the protocol (sk->sk_prot->sendmsg)."""
    sk = sock.sk
    if sk.net.tracer is not None:
        sk.net.tracer.send_hit("inet_sendmsg")
    if sk.sk_shutdown & SEND_SHUTDOWN:
        raise KernelError(errno.EPIPE)
    return sk.sk_prot.sendmsg(sk, data, flags, addr)


def inet_recvmsg(sock, size, flags):
    sk = sock.sk
    return sk.sk_prot.recvmsg(sk, size, flags)


def inet_shutdown(sock, how):
    """shutdown(): how is SHUT_RD (0), SHUT_WR (1) or SHUT_RDWR (2)."""
    if how not in (0, 1, 2):
        raise KernelError(errno.EINVAL)
    sk = sock.sk
    sk.sk_shutdown |= how + 1       # SHUT_RD -> RCV_SHUTDOWN, SHUT_WR -> SEND_SHUTDOWN
    sk_data_ready(sk)               # wake readers: they now see EOF
    # Linux applies the shutdown even to an unconnected socket, then says ENOTCONN.
    if sk.sk_state == TCP_CLOSE:
        raise KernelError(errno.ENOTCONN)
    return 0


def inet_setsockopt(sock, level, optname, value):
    sk = sock.sk
    if level == SOL_IP:
        return ip_setsockopt(sk, optname, value)
    if sk.sk_prot.setsockopt is None:
        raise KernelError(errno.ENOPROTOOPT)
    return sk.sk_prot.setsockopt(sk, level, optname, value)


def inet_getsockopt(sock, level, optname, buflen):
    sk = sock.sk
    if level == SOL_IP:
        return ip_getsockopt(sk, optname)
    if sk.sk_prot.getsockopt is None:
        raise KernelError(errno.ENOPROTOOPT)
    return sk.sk_prot.getsockopt(sk, level, optname, buflen)


inet_dgram_ops = ProtoOps(
    family=AF_INET, release=inet_release, bind=inet_bind, connect=inet_dgram_connect,
    getname=inet_getname, poll=datagram_poll, shutdown=inet_shutdown,
    setsockopt=inet_setsockopt, getsockopt=inet_getsockopt, sendmsg=inet_sendmsg,
    recvmsg=inet_recvmsg)

inet_sockraw_ops = ProtoOps(
    family=AF_INET, release=inet_release, bind=inet_bind, connect=inet_dgram_connect,
    getname=inet_getname, poll=datagram_poll, shutdown=inet_shutdown,
    setsockopt=inet_setsockopt, getsockopt=inet_getsockopt, sendmsg=inet_sendmsg,
    recvmsg=inet_recvmsg)


def inet_init(net):
    """Boot the IPv4 family (af_inet.c: inet_init)."""
    snmp_init(net)
    nf_hooks_init(net)
    iptable_filter_init(net)
    fib_init(net)
    net.proto["inet_protos"] = {}
    net.proto["inetsw"] = {}
    net.proto["ipv4_dst_ops"] = DstOps(ip_local_deliver, ip_forward, ip_output)
    icmp_init(net)
    raw_init_net(net)
    udp_init_net(net)
    ipfrag_init(net)
    arp_init(net)
    inet_add_protocol(net, icmp_rcv, IPPROTO_ICMP)
    inet_add_protocol(net, udp_rcv, IPPROTO_UDP)
    inet_add_err_handler(net, udp_err, IPPROTO_UDP)
    inet_register_protosw(net, InetProtosw(SOCK_DGRAM, IPPROTO_UDP, udp_prot,
                                           inet_dgram_ops, INET_PROTOSW_PERMANENT))
    inet_register_protosw(net, InetProtosw(SOCK_RAW, IPPROTO_IP, raw_prot,
                                           inet_sockraw_ops, INET_PROTOSW_REUSE))
    dev_add_pack(net, PacketType(ETH_P_IP, ip_rcv))
    net.notifiers.append(inetdev_event)
