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
from .icmp import icmp_err, icmp_init, icmp_rcv
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
        # sk_stream_error: a pending socket error is reported before EPIPE.
        err = sk.sk_err
        if err:
            sk.sk_err = 0
            raise KernelError(err)
        raise KernelError(errno.EPIPE)
    return sk.sk_prot.sendmsg(sk, data, flags, addr)


def inet_recvmsg(sock, size, flags, msg=None):
    sk = sock.sk
    if msg is None:
        return sk.sk_prot.recvmsg(sk, size, flags)
    return sk.sk_prot.recvmsg(sk, size, flags, msg)


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
    net.proto["inet_early_demux"] = {}     # protocol -> net_protocol.early_demux
    net.proto["inetsw"] = {}
    net.proto["ipv4_dst_ops"] = DstOps(ip_local_deliver, ip_forward, ip_output)
    icmp_init(net)
    raw_init_net(net)
    udp_init_net(net)
    ipfrag_init(net)
    arp_init(net)
    inet_add_protocol(net, icmp_rcv, IPPROTO_ICMP)
    inet_add_err_handler(net, icmp_err, IPPROTO_ICMP)
    inet_add_protocol(net, udp_rcv, IPPROTO_UDP)
    inet_add_err_handler(net, udp_err, IPPROTO_UDP)
    inet_register_protosw(net, InetProtosw(SOCK_DGRAM, IPPROTO_UDP, udp_prot,
                                           inet_dgram_ops, INET_PROTOSW_PERMANENT))
    tcp_v4_init(net)
    inet_register_protosw(net, InetProtosw(SOCK_RAW, IPPROTO_IP, raw_prot,
                                           inet_sockraw_ops, INET_PROTOSW_REUSE))
    dev_add_pack(net, PacketType(ETH_P_IP, ip_rcv))
    net.notifiers.append(inetdev_event)


# ------------------------------------------------------------------ SOCK_STREAM (TCP)

def inet_stream_connect(sock, addr):
    """connect() on TCP (__inet_stream_connect): SYN, then wait for the handshake."""
    from ..socket import SyscallBlock
    from ..core.sock import SS_CONNECTING, SS_UNCONNECTED, sock_error
    from .tcp import TCP_CLOSE, TCP_SYN_RECV, TCP_SYN_SENT
    from .tcp_ipv4 import tcp_v4_connect
    sk = sock.sk
    if sock.state == SS_CONNECTED:
        raise KernelError(errno.EISCONN)
    if sock.state == SS_CONNECTING:
        if sk.sk_state in (TCP_SYN_SENT, TCP_SYN_RECV):
            raise KernelError(errno.EALREADY)
    else:
        if sk.sk_state != TCP_CLOSE:
            raise KernelError(errno.EISCONN)
        tcp_v4_connect(sk, addr)
        sock.state = SS_CONNECTING
        if sock.nonblock:
            raise KernelError(errno.EINPROGRESS)

    def wait():
        if sk.sk_state in (TCP_SYN_SENT, TCP_SYN_RECV):
            if sock.nonblock:
                raise KernelError(errno.EALREADY)
            raise SyscallBlock([sk.sk_wq], sk.sk_sndtimeo, on_timeout=errno.EINPROGRESS,
                               resume=wait)
        if sk.sk_state == TCP_CLOSE:
            sock.state = SS_UNCONNECTED
            raise KernelError(sock_error(sk) or errno.ECONNABORTED)
        sock.state = SS_CONNECTED
        return 0

    return wait()


def inet_listen(sock, backlog):
    from ..core.sock import SS_UNCONNECTED
    from .inet_connection_sock import inet_csk_listen_start
    from .tcp import TCP_CLOSE, TCP_LISTEN
    sk = sock.sk
    if sock.state != SS_UNCONNECTED or sock.type != SOCK_STREAM:
        raise KernelError(errno.EINVAL)
    if sk.sk_state == TCP_LISTEN:
        sk.proto_data.max_ack_backlog = min(max(0, backlog), sk.net.sysctl["net.core.somaxconn"])
        return 0
    if sk.sk_state != TCP_CLOSE:
        raise KernelError(errno.EINVAL)
    inet_csk_listen_start(sk, backlog)
    return 0


def inet_accept(sock, new_sock):
    """accept(): take the first connection from the queue (or wait for one)."""
    from ..socket import SyscallBlock
    from .tcp import TCP_LISTEN
    sk = sock.sk
    if sk.sk_state != TCP_LISTEN:
        raise KernelError(errno.EINVAL)
    tp = sk.proto_data
    if not tp.accept_queue:
        if sock.nonblock:
            raise KernelError(errno.EAGAIN)
        raise SyscallBlock([sk.sk_wq], sk.sk_rcvtimeo,
                           resume=lambda: inet_accept(sock, new_sock))
    child = tp.accept_queue.popleft()
    child.sk_socket = new_sock
    new_sock.sk = child
    new_sock.ops = sock.ops
    new_sock.state = SS_CONNECTED
    return new_sock


def tcp_release(sock):
    from .tcp import tcp_close
    sk = sock.sk
    if sk is None:
        return
    tcp_close(sk)
    sock.sk = None


def inet_stream_shutdown(sock, how):
    from .tcp import TCP_CLOSE, TCP_LISTEN, TCP_SYN_SENT, tcp_shutdown
    if how not in (0, 1, 2):
        raise KernelError(errno.EINVAL)
    sk = sock.sk
    state = sk.sk_state
    if state == TCP_CLOSE:
        sk.sk_shutdown |= how + 1
        sk_data_ready(sk)
        raise KernelError(errno.ENOTCONN)
    sk.sk_shutdown |= how + 1
    if state == TCP_LISTEN:
        if (how + 1) & 1:
            from .tcp import tcp_close
            tcp_close(sk)           # shutdown(SHUT_RD) on a listener stops it
    elif state == TCP_SYN_SENT:
        from .tcp import tcp_done
        tcp_done(sk)
    else:
        tcp_shutdown(sk, how)
    sk_data_ready(sk)
    return 0


def tcp_setsockopt(sk, level, optname, value):
    from .tcp import (
        SOL_TCP, TCP_CONGESTION, TCP_CORK, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL,
        TCP_LINGER2, TCP_MAXSEG, TCP_NAGLE_CORK, TCP_NAGLE_OFF, TCP_NAGLE_PUSH, TCP_NODELAY,
        TCP_QUICKACK, TCP_SYNCNT, TCP_USER_TIMEOUT,
    )
    from .tcp_cong import tcp_set_congestion_control
    from .tcp_output import tcp_push_pending_frames
    tp = sk.proto_data
    if level != SOL_TCP:
        raise KernelError(errno.ENOPROTOOPT)
    if optname == TCP_CONGESTION:
        if not isinstance(value, (bytes, bytearray, str)):
            raise KernelError(errno.EINVAL)
        return tcp_set_congestion_control(sk, value)
    if not isinstance(value, int) and len(value) < 4:
        raise KernelError(errno.EINVAL)     # optlen < sizeof(int)
    v = value if isinstance(value, int) else int.from_bytes(bytes(value)[:4], "little", signed=True)
    if optname == TCP_NODELAY:
        # __tcp_sock_set_nodelay: weaker than TCP_CORK, but pushes what is queued.
        if v:
            tp.nonagle |= TCP_NAGLE_OFF | TCP_NAGLE_PUSH
            tcp_push_pending_frames(sk)
        else:
            tp.nonagle &= ~TCP_NAGLE_OFF
    elif optname == TCP_CORK:
        # __tcp_sock_set_cork: uncorking sends partial segments now.
        if v:
            tp.nonagle |= TCP_NAGLE_CORK
        else:
            tp.nonagle &= ~TCP_NAGLE_CORK
            if tp.nonagle & TCP_NAGLE_OFF:
                tp.nonagle |= TCP_NAGLE_PUSH
            tcp_push_pending_frames(sk)
    elif optname == TCP_MAXSEG:
        if v and not 88 <= v <= 65535:
            raise KernelError(errno.EINVAL)
        tp.user_mss = v
    elif optname in (TCP_KEEPIDLE, TCP_KEEPINTVL):
        if not 1 <= v <= 32767:
            raise KernelError(errno.EINVAL)
        if optname == TCP_KEEPIDLE:
            tp.keepalive_time = v
            from .tcp_timer import tcp_set_keepalive
            if sk.sk_keepalive:
                tcp_set_keepalive(sk, True)
        else:
            tp.keepalive_intvl = v
    elif optname == TCP_KEEPCNT:
        if not 1 <= v <= 127:
            raise KernelError(errno.EINVAL)
        tp.keepalive_probes = v
    elif optname == TCP_SYNCNT:
        if not 1 <= v <= 127:
            raise KernelError(errno.EINVAL)
        tp.syn_retries = v
    elif optname == TCP_LINGER2:
        tp.linger2 = None if v == 0 else max(v, 0)
    elif optname == TCP_QUICKACK:
        if v:
            tp.ack_pingpong = False
            tp.ack_quick = max(tp.ack_quick, 16)
    elif optname == TCP_USER_TIMEOUT:
        if v < 0:
            raise KernelError(errno.EINVAL)
        tp.user_timeout = v / 1000.0
    else:
        raise KernelError(errno.ENOPROTOOPT)
    return 0


def tcp_getsockopt(sk, level, optname, buflen):
    from .tcp import (
        SOL_TCP, TCP_CONGESTION, TCP_CORK, TCP_INFO, TCP_KEEPCNT, TCP_KEEPIDLE,
        TCP_KEEPINTVL, TCP_MAXSEG, TCP_NAGLE_CORK, TCP_NAGLE_OFF, TCP_NODELAY, TCP_SYNCNT,
        TCP_USER_TIMEOUT, tcp_get_info, tcp_sysctl,
    )
    tp = sk.proto_data
    net = sk.net
    if level != SOL_TCP:
        raise KernelError(errno.ENOPROTOOPT)
    if optname == TCP_INFO:
        # With a buffer length: Linux's struct tcp_info bytes (cut to buflen),
        # for programs that unpack it; without: emu's dict.
        if buflen:
            from .tcp_info import tcp_info_getsockopt
            return tcp_info_getsockopt(sk, buflen)
        return tcp_get_info(sk)
    if optname == TCP_CONGESTION:
        return tp.ca_ops.name.encode()
    table = {TCP_NODELAY: int(bool(tp.nonagle & TCP_NAGLE_OFF)),
             TCP_CORK: int(bool(tp.nonagle & TCP_NAGLE_CORK)),
             TCP_MAXSEG: tp.mss_cache if sk.sk_state != 7 else (tp.user_mss or 536),
             TCP_KEEPIDLE: int(tp.keepalive_time or tcp_sysctl(net, "tcp_keepalive_time")),
             TCP_KEEPINTVL: int(tp.keepalive_intvl or tcp_sysctl(net, "tcp_keepalive_intvl")),
             TCP_KEEPCNT: int(tp.keepalive_probes or tcp_sysctl(net, "tcp_keepalive_probes")),
             TCP_SYNCNT: int(tp.syn_retries or tcp_sysctl(net, "tcp_syn_retries")),
             TCP_USER_TIMEOUT: int(tp.user_timeout * 1000)}
    if optname not in table:
        raise KernelError(errno.ENOPROTOOPT)
    return table[optname]


def inet_stream_setsockopt(sock, level, optname, value):
    if level == SOL_IP:
        return ip_setsockopt(sock.sk, optname, value)
    return tcp_setsockopt(sock.sk, level, optname, value)


def inet_stream_getsockopt(sock, level, optname, buflen):
    if level == SOL_IP:
        return ip_getsockopt(sock.sk, optname)
    return tcp_getsockopt(sock.sk, level, optname, buflen)


def inet_stream_poll(sock):
    from .tcp import tcp_poll
    return tcp_poll(sock)


def inet_stream_getname(sock, peer):
    from .tcp import TCP_CLOSE, TCP_LISTEN, TCP_SYN_SENT
    sk = sock.sk
    if peer:
        if not sk.inet_dport or sk.sk_state in (TCP_CLOSE, TCP_LISTEN) or \
                (sk.sk_state == TCP_SYN_SENT):
            raise KernelError(errno.ENOTCONN)
        return (inet_ntoa(sk.inet_daddr), sk.inet_dport)
    return (inet_ntoa(sk.inet_rcv_saddr or sk.inet_saddr), sk.inet_sport)


def tcp_bind(sk, ip, port):
    from .inet_connection_sock import inet_bind_tcp
    return inet_bind_tcp(sk, ip, port)


def _tcp_init(sk):
    from .tcp import tcp_init_sock
    tcp_init_sock(sk)


def _tcp_sendmsg(sk, data, flags, addr):
    from .tcp import tcp_sendmsg
    return tcp_sendmsg(sk, data, flags, addr)


def _tcp_recvmsg(sk, size, flags, msg=None):
    from .tcp import tcp_recvmsg
    return tcp_recvmsg(sk, size, flags)


def _tcp_close(sk):
    from .tcp import tcp_close
    tcp_close(sk)


from ..core.sock import Proto as _Proto  # noqa: E402

tcp_prot = _Proto("TCP", init=_tcp_init, close=_tcp_close, sendmsg=_tcp_sendmsg,
                  recvmsg=_tcp_recvmsg, bind=tcp_bind)

inet_stream_ops = ProtoOps(
    family=AF_INET, release=tcp_release, bind=inet_bind, connect=inet_stream_connect,
    accept=inet_accept, listen=inet_listen, getname=inet_stream_getname, poll=inet_stream_poll,
    shutdown=inet_stream_shutdown, setsockopt=inet_stream_setsockopt,
    getsockopt=inet_stream_getsockopt, sendmsg=inet_sendmsg, recvmsg=inet_recvmsg)


def tcp_v4_init(net):
    """The TCP half of inet_init."""
    from ..hdr.ip import IPPROTO_TCP
    from .inet_connection_sock import inet_hashinfo_init
    from .tcp import tcp_init_net
    from .tcp_ipv4 import tcp_v4_early_demux, tcp_v4_err, tcp_v4_rcv
    tcp_init_net(net)
    inet_hashinfo_init(net)
    inet_add_protocol(net, tcp_v4_rcv, IPPROTO_TCP)
    net.proto["inet_early_demux"][IPPROTO_TCP] = tcp_v4_early_demux
    inet_add_err_handler(net, tcp_v4_err, IPPROTO_TCP)
    inet_register_protosw(net, InetProtosw(SOCK_STREAM, IPPROTO_TCP, tcp_prot,
                                           inet_stream_ops, INET_PROTOSW_PERMANENT | INET_PROTOSW_ICSK))
