"""Packet sockets: whole frames to and from user space (tcpdump, raw senders).

Linux: net/packet/af_packet.c; packet(7).

socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)) sees every frame the node
sends (from dev_queue_xmit_nit) and receives (from __netif_receive_skb_core),
Ethernet header included; SOCK_DGRAM strips it ("cooked"). Addresses are
Python's AF_PACKET tuples: (ifname, proto, pkttype, hatype, addr).
"""
import errno

from ..core.dev import KernelError, dev_add_pack, dev_queue_xmit, dev_remove_pack
from ..core.netdevice import PacketType, netif_running
from ..core.skbuff import (
    PACKET_LOOPBACK, PACKET_OUTGOING, alloc_skb, consume_skb, skb_clone, skb_put, skb_reserve,
)
from ..core.sock import (
    MSG_PEEK, MSG_TRUNC, Proto, ProtoOps, Sock, datagram_poll, sock_queue_rcv_skb,
    skb_recv_datagram,
)
from ..hdr.if_ether import ETH_HLEN, ETH_P_ALL

AF_PACKET = 17
SOCK_RAW = 3
SOCK_DGRAM = 2
SOL_PACKET = 263
PACKET_STATISTICS = 6


def ntohs(x):
    return ((x & 0xFF) << 8) | ((x >> 8) & 0xFF)


class PacketSock:
    """struct packet_sock's own part (the hook and counters)."""

    __slots__ = ("prot_hook", "ifindex", "num", "tp_packets", "tp_drops", "running")

    def __init__(self):
        self.prot_hook = None
        self.ifindex = 0
        self.num = 0
        self.tp_packets = 0
        self.tp_drops = 0
        self.running = False


def _register(sk):
    po = sk.proto_data
    if po.running or not po.num:
        return
    dev = sk.net.dev_by_index.get(po.ifindex) if po.ifindex else None
    po.prot_hook = PacketType(po.num, packet_rcv, dev=dev, af_packet_priv=sk)
    dev_add_pack(sk.net, po.prot_hook)
    po.running = True


def _unregister(sk):
    po = sk.proto_data
    if po.running:
        dev_remove_pack(sk.net, po.prot_hook)
        po.running = False


def packet_rcv(skb, dev, pt, orig_dev):
    """A frame for a packet socket: a clone goes on its queue with its sockaddr_ll."""
    sk = pt.af_packet_priv
    if skb.pkt_type == PACKET_LOOPBACK:
        consume_skb(skb)
        return 0
    if skb.trace is not None:
        skb.trace.hit("packet_rcv")
    po = sk.proto_data
    nskb = skb_clone(skb)
    consume_skb(skb)
    # SOCK_RAW readers get the link-layer header: move data back to it. An
    # outgoing clone (dev_queue_xmit_nit) has data at its header already.
    mac = nskb.data if nskb.pkt_type == PACKET_OUTGOING or nskb.mac_header < 0 \
        else nskb.mac_header
    if sk.sk_type == SOCK_RAW:
        nskb.len += nskb.data - mac
        nskb.data = mac
    elif nskb.pkt_type == PACKET_OUTGOING and nskb.data == mac:
        nskb.data += ETH_HLEN           # cooked: strip the header we would have seen
        nskb.len -= ETH_HLEN
    nskb.cb = (dev.name, nskb.protocol, nskb.pkt_type, dev.type,
               bytes(nskb.buf[mac + 6:mac + 12]) if mac >= 0 else b"")
    po.tp_packets += 1
    if sock_queue_rcv_skb(sk, nskb) < 0:
        po.tp_drops += 1
    return 0


def packet_create(net, sock, protocol):
    if sock.type not in (SOCK_RAW, SOCK_DGRAM):
        raise KernelError(errno.ESOCKTNOSUPPORT)
    sock.ops = packet_ops
    sk = Sock(net, AF_PACKET, sock.type, protocol, packet_prot)
    sk.sk_socket = sock
    sock.sk = sk
    po = sk.proto_data = PacketSock()
    po.num = ntohs(protocol)
    _register(sk)
    return sk


def packet_release(sock):
    sk = sock.sk
    if sk is None:
        return
    _unregister(sk)
    q = sk.sk_receive_queue.q
    while q:
        consume_skb(q.popleft())
    sock.sk = None


def _dev_by_name(net, name):
    dev = net.dev_by_name.get(name)
    if dev is None:
        raise KernelError(errno.ENODEV)
    return dev


def packet_bind(sock, addr):
    """bind((ifname, proto)): only this device, and (if given) only this protocol."""
    sk = sock.sk
    if not isinstance(addr, (list, tuple)) or len(addr) < 1:
        raise KernelError(errno.EINVAL)
    dev = _dev_by_name(sk.net, addr[0]) if addr[0] else None
    _unregister(sk)
    po = sk.proto_data
    po.ifindex = dev.ifindex if dev is not None else 0
    if len(addr) > 1 and addr[1]:
        po.num = int(addr[1])
    _register(sk)
    return 0


def packet_sendmsg(sock, data, flags, addr):
    """Send a whole frame (SOCK_RAW) or a payload behind a built header (SOCK_DGRAM)."""
    sk = sock.sk
    po = sk.proto_data
    net = sk.net
    if addr is not None:
        dev = _dev_by_name(net, addr[0])
        proto = int(addr[1]) if len(addr) > 1 else po.num
    elif po.ifindex:
        dev = net.dev_by_index.get(po.ifindex)
        proto = po.num
    else:
        raise KernelError(errno.ENXIO)
    if dev is None:
        raise KernelError(errno.ENXIO)
    if not netif_running(dev):
        raise KernelError(errno.ENETDOWN)
    n = len(data)
    reserve = dev.hard_header_len if sock.type == SOCK_RAW else 0
    if n > dev.mtu + reserve:
        raise KernelError(errno.EMSGSIZE)
    if sock.type == SOCK_RAW and n < ETH_HLEN:
        raise KernelError(errno.EINVAL)
    skb = alloc_skb(64 + n)
    skb_reserve(skb, 64)
    off = skb_put(skb, n)
    skb.buf[off:off + n] = data
    skb.dev = dev
    skb.priority = sk.sk_priority
    if sock.type == SOCK_RAW:
        skb.mac_header = off
        skb.protocol = (data[12] << 8) | data[13]
        skb.network_header = off + ETH_HLEN
    else:
        if addr is None or len(addr) < 5 or len(addr[4]) != 6:
            raise KernelError(errno.EINVAL)
        skb.network_header = off
        skb.protocol = proto
        dev.header_ops.create(skb, dev, proto, bytes(addr[4]), dev.dev_addr, n)
    dev_queue_xmit(skb)
    return n


def packet_recvmsg(sock, size, flags, msg=None):
    sk = sock.sk
    skb = skb_recv_datagram(sk, flags)
    if skb is None:
        return b"", None, 0
    n = min(size, skb.len)
    data = bytes(skb.buf[skb.data:skb.data + n])
    msg_flags = MSG_TRUNC if skb.len > size else 0
    addr = list(skb.cb) if skb.cb else None
    if not flags & MSG_PEEK:
        consume_skb(skb)
    return data, addr, msg_flags


def packet_getname(sock, peer):
    if peer:
        raise KernelError(errno.EOPNOTSUPP)
    sk = sock.sk
    po = sk.proto_data
    dev = sk.net.dev_by_index.get(po.ifindex)
    return [dev.name if dev else "", po.num, 0, 1, dev.dev_addr if dev else b""]


def packet_getsockopt(sock, level, optname, buflen):
    po = sock.sk.proto_data
    if level == SOL_PACKET and optname == PACKET_STATISTICS:
        # Linux reports and resets: tp_packets counts drops too.
        v = (po.tp_packets, po.tp_drops)
        po.tp_packets = po.tp_drops = 0
        return list(v)
    raise KernelError(errno.ENOPROTOOPT)


def packet_setsockopt(sock, level, optname, value):
    raise KernelError(errno.ENOPROTOOPT)


def packet_shutdown(sock, how):
    raise KernelError(errno.EOPNOTSUPP)


def _unsupported(*args):
    raise KernelError(errno.EOPNOTSUPP)


packet_prot = Proto("PACKET")
packet_ops = ProtoOps(family=AF_PACKET, release=packet_release, bind=packet_bind,
                      connect=_unsupported, getname=packet_getname, poll=datagram_poll,
                      shutdown=packet_shutdown, setsockopt=packet_setsockopt,
                      getsockopt=packet_getsockopt, sendmsg=packet_sendmsg,
                      recvmsg=packet_recvmsg)


def packet_init(net):
    from ..socket import sock_register
    sock_register(net, AF_PACKET, packet_create)


__all__ = ["AF_PACKET", "packet_init", "ETH_P_ALL"]
