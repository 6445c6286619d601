"""Packet sockets: whole frames to and from user space (tcpdump, raw senders).

Linux: net/packet/af_packet.c; packet(7).

socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)) sees every frame the node
sends (from dev_queue_xmit_nit) and receives (from __netif_receive_skb_core),
Ethernet header included; SOCK_DGRAM strips it ("cooked"). Addresses are
Python's AF_PACKET tuples: (ifname, proto, pkttype, hatype, addr).

Each frame is stamped at the tap (packet_rcv, called from dev_queue_xmit_nit
and __netif_receive_skb_core), as tpacket_rcv does with ktime_get_real when
the skb has no stamp yet. A reader sees the stamp through the receive ring
(PACKET_VERSION TPACKET_V2 + PACKET_RX_RING, what libpcap uses): each frame
carries its struct tpacket2_hdr. A ring with every frame in use drops the
next packet and counts it (tp_drops, PACKET_STATISTICS), as Linux does.

Emulation note: the ring is read with recvfrom, one frame per call (the
tpacket2_hdr, sockaddr_ll and the packet at tp_mac), not through mmap and
tp_status handshakes. tp_sec/tp_nsec are the node's clock (CLOCK_MONOTONIC
on the runtime), not CLOCK_REALTIME: the reader adds the host's offset.
"""
import errno
import struct

from ..core.dev import KernelError, dev_add_pack, dev_queue_xmit, dev_remove_pack
from ..core.netdevice import PacketType, netif_running
from ..core.skbuff import (
    PACKET_LOOPBACK, PACKET_OUTGOING, alloc_skb, consume_skb, kfree_skb, skb_clone, skb_put,
    skb_reserve,
)
from ..core.sock import (
    MSG_PEEK, MSG_TRUNC, Proto, ProtoOps, Sock, datagram_poll, sk_data_ready, sock_queue_rcv_skb,
    skb_recv_datagram,
)
from ..hdr.if_ether import ETH_HLEN, ETH_P_ALL

AF_PACKET = 17
SOCK_RAW = 3
SOCK_DGRAM = 2
SOL_PACKET = 263
SKB_DROP_REASON_PACKET_SOCK_ERROR = "PACKET_SOCK_ERROR"
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_HDRLEN = 11
TPACKET_V1, TPACKET_V2 = 0, 1
TP_STATUS_USER = 1
TP_STATUS_LOSING = 4
TPACKET_ALIGNMENT = 16
TPACKET2_HDR = struct.Struct("=IIIHHIIHH4x")          # struct tpacket2_hdr (32 bytes)
SOCKADDR_LL = struct.Struct("=HHiHBB8s")             # struct sockaddr_ll (20 bytes)
TPACKET2_HDRLEN = TPACKET2_HDR.size + SOCKADDR_LL.size
TPACKET_REQ = struct.Struct("=IIII")                 # block_size, block_nr, frame_size, frame_nr


def TPACKET_ALIGN(x):
    return (x + TPACKET_ALIGNMENT - 1) & ~(TPACKET_ALIGNMENT - 1)


def ntohs(x):
    return ((x & 0xFF) << 8) | ((x >> 8) & 0xFF)


class PacketSock:
    """struct packet_sock's own part (the hook and counters)."""

    __slots__ = ("prot_hook", "ifindex", "num", "tp_packets", "tp_drops", "running",
                 "tp_version", "rx_ring", "losing")

    def __init__(self):
        self.prot_hook = None
        self.ifindex = 0
        self.num = 0
        self.tp_packets = 0
        self.tp_drops = 0
        self.running = False
        self.tp_version = TPACKET_V1
        self.rx_ring = None         # (frame_size, frame_nr) once PACKET_RX_RING is set
        self.losing = False         # a drop since the last frame read (TP_STATUS_LOSING)


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
               bytes(nskb.buf[mac + 6:mac + 12]) if mac >= 0 else b"", dev.ifindex)
    # The stamp is taken here, at the tap: an outgoing clone gets the time of
    # dev_queue_xmit_nit, a received one the time it reached the taps.
    if nskb.pkt_type == PACKET_OUTGOING or not nskb.tstamp:
        nskb.tstamp = sk.net.clock()
    po.tp_packets += 1
    ring = po.rx_ring
    if ring is not None:
        # tpacket_rcv: the ring's memory is its own (no sk_rcvbuf); full is full.
        if len(sk.sk_receive_queue.q) >= ring[1]:
            po.tp_drops += 1             # every ring frame is still the reader's
            po.losing = True
            kfree_skb(nskb, SKB_DROP_REASON_PACKET_SOCK_ERROR)
            return 0
        nskb.sk = sk
        nskb.dev = None
        sk.sk_receive_queue.q.append(nskb)
        sk_data_ready(sk, nskb)
        return 0
    if sock_queue_rcv_skb(sk, nskb) < 0:
        po.tp_drops += 1
        po.losing = True
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
    net.proto.setdefault("packet_sklist", []).append(sk)      # net->packet.sklist
    return sk


def packet_release(sock):
    sk = sock.sk
    if sk is None:
        return
    _unregister(sk)
    sklist = sk.net.proto.get("packet_sklist", [])
    if sk in sklist:
        sklist.remove(sk)
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


def tpacket_frame(po, skb):
    """One TPACKET_V2 ring frame for skb: tpacket2_hdr, sockaddr_ll, the packet at tp_mac."""
    frame_size = po.rx_ring[0]
    ifname, proto, pkttype, hatype, haddr, ifindex = skb.cb
    maclen = ETH_HLEN if hatype == 1 else 0
    netoff = TPACKET_ALIGN(TPACKET2_HDRLEN + max(maclen, 16))
    macoff = netoff - maclen
    snaplen = max(0, min(skb.len, frame_size - macoff))
    ts = skb.tstamp
    sec = int(ts)
    status = TP_STATUS_USER | (TP_STATUS_LOSING if po.losing else 0)
    po.losing = False
    hdr = TPACKET2_HDR.pack(status, skb.len, snaplen, macoff, netoff, sec & 0xFFFFFFFF,
                            int((ts - sec) * 1e9), 0, 0)
    sll = SOCKADDR_LL.pack(AF_PACKET, ntohs(proto), ifindex, hatype, pkttype, len(haddr),
                           haddr.ljust(8, b"\0"))
    return hdr + sll + bytes(macoff - TPACKET2_HDRLEN) + bytes(skb.buf[skb.data:skb.data + snaplen])


def packet_recvmsg(sock, size, flags, msg=None):
    sk = sock.sk
    skb = skb_recv_datagram(sk, flags)
    if skb is None:
        return b"", None, 0
    if sk.proto_data.rx_ring is not None:
        data = tpacket_frame(sk.proto_data, skb)
        msg_flags = 0
    else:
        n = min(size, skb.len)
        data = bytes(skb.buf[skb.data:skb.data + n])
        msg_flags = MSG_TRUNC if skb.len > size else 0
    addr = list(skb.cb[:5]) if skb.cb else None
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
    if level != SOL_PACKET:
        raise KernelError(errno.ENOPROTOOPT)
    if optname == PACKET_STATISTICS:
        # Linux reports and resets: tp_packets counts drops too.
        v = (po.tp_packets, po.tp_drops)
        po.tp_packets = po.tp_drops = 0
        return list(v)
    if optname == PACKET_VERSION:
        return po.tp_version
    if optname == PACKET_HDRLEN:
        return TPACKET2_HDRLEN if po.tp_version == TPACKET_V2 else 0
    raise KernelError(errno.ENOPROTOOPT)


def _optint(value):
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, bytearray)) and len(value) >= 4:
        return int.from_bytes(value[:4], "little")
    raise KernelError(errno.EINVAL)


def packet_setsockopt(sock, level, optname, value):
    """PACKET_VERSION (TPACKET_V1/V2) and PACKET_RX_RING (struct tpacket_req)."""
    po = sock.sk.proto_data
    if level != SOL_PACKET:
        raise KernelError(errno.ENOPROTOOPT)
    if optname == PACKET_VERSION:
        v = _optint(value)
        if v not in (TPACKET_V1, TPACKET_V2):
            raise KernelError(errno.EINVAL)
        if po.rx_ring is not None:
            raise KernelError(errno.EBUSY)
        po.tp_version = v
        return 0
    if optname == PACKET_RX_RING:
        if not isinstance(value, (bytes, bytearray)) or len(value) < TPACKET_REQ.size:
            raise KernelError(errno.EINVAL)
        block_size, block_nr, frame_size, frame_nr = TPACKET_REQ.unpack_from(value)
        if not block_nr:                     # a zero request tears the ring down
            po.rx_ring = None
            return 0
        # packet_set_ring's checks: V2 only here, aligned frames, the counts agree.
        if po.tp_version != TPACKET_V2 or frame_size < TPACKET2_HDRLEN or \
                frame_size % TPACKET_ALIGNMENT or block_size < frame_size or \
                frame_nr != block_size // frame_size * block_nr or frame_nr > 1 << 20:
            raise KernelError(errno.EINVAL)
        po.rx_ring = (frame_size, frame_nr)
        return 0
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


def packet_diag_dump(net):
    """/proc/net/packet's rows (packet_seq_show): one per packet socket."""
    return [{"id": id(sk), "refcnt": 3 if sk.proto_data.running else 2, "type": sk.sk_type,
             "proto": sk.proto_data.num, "ifindex": sk.proto_data.ifindex,
             "running": int(sk.proto_data.running), "rmem": sk.sk_rmem_alloc, "uid": 0,
             "ino": id(sk)} for sk in net.proto.get("packet_sklist", [])]


def packet_init(net):
    from ..socket import sock_register
    sock_register(net, AF_PACKET, packet_create)


__all__ = ["AF_PACKET", "packet_init", "ETH_P_ALL"]
