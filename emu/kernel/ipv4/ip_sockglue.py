"""IPPROTO_IP socket options.

Linux: net/ipv4/ip_sockglue.c
"""
import errno
import struct

from ..core.dev import KernelError
from ..core.scm import SOL_SOCKET, __sock_cmsg_send, put_cmsg

SOL_IP = 0
IP_TOS = 1
IP_TTL = 2
IP_HDRINCL = 3
IP_RECVERR = 11
IP_MTU_DISCOVER = 10
IP_PKTINFO = 8
IP_RECVTTL = 12
IP_RECVTOS = 13

# inet->cmsg_flags: which control messages recvmsg hands back (include/net/inet_sock.h)
IP_CMSG_PKTINFO = 1 << 0
IP_CMSG_TTL = 1 << 1
IP_CMSG_TOS = 1 << 2
_CMSG_OPTS = {IP_PKTINFO: IP_CMSG_PKTINFO, IP_RECVTTL: IP_CMSG_TTL, IP_RECVTOS: IP_CMSG_TOS}


def _int(value):
    if isinstance(value, int):
        return value
    if not isinstance(value, (bytes, bytearray)):
        raise KernelError(errno.EINVAL)
    if len(value) >= 4:
        return struct.unpack_from("=i", value)[0]
    if len(value) >= 1:
        return value[0]
    raise KernelError(errno.EINVAL)


def ip_setsockopt(sk, optname, value):
    v = _int(value)
    if optname == IP_TTL:
        if v == -1:
            sk.uc_ttl = -1
        elif not 1 <= v <= 255:
            raise KernelError(errno.EINVAL)
        else:
            sk.uc_ttl = v
    elif optname == IP_TOS:
        sk.tos = v & 0xFF
    elif optname == IP_HDRINCL:
        if sk.sk_type != 3:     # SOCK_RAW
            raise KernelError(errno.ENOPROTOOPT)
        sk.hdrincl = 1 if v else 0
    elif optname == IP_RECVERR:
        sk.recverr = 1 if v else 0
    elif optname == IP_MTU_DISCOVER:
        if not 0 <= v <= 5:
            raise KernelError(errno.EINVAL)
        sk.pmtudisc = v
    elif optname in _CMSG_OPTS:
        if v:
            sk.cmsg_flags |= _CMSG_OPTS[optname]
        else:
            sk.cmsg_flags &= ~_CMSG_OPTS[optname]
    else:
        raise KernelError(errno.ENOPROTOOPT)


def ip_getsockopt(sk, optname):
    if optname == IP_TTL:
        return sk.uc_ttl if sk.uc_ttl >= 0 else sk.net.sysctl["net.ipv4.ip_default_ttl"]
    if optname == IP_TOS:
        return sk.tos
    if optname == IP_HDRINCL:
        return sk.hdrincl
    if optname == IP_RECVERR:
        return sk.recverr
    if optname == IP_MTU_DISCOVER:
        return sk.pmtudisc
    if optname in _CMSG_OPTS:
        return 1 if sk.cmsg_flags & _CMSG_OPTS[optname] else 0
    raise KernelError(errno.ENOPROTOOPT)


def ip_cmsg_recv(msg, sk, skb):
    """The IP control messages a datagram carries up (ip_cmsg_recv_offset), in
    Linux's order: IP_PKTINFO, IP_TTL, IP_TOS.

    Emulation note: ipi_spec_dst is the header's destination (Linux computes
    the address a reply would come from, the same for unicast).
    """
    flags = sk.cmsg_flags
    buf = skb.buf
    nh = skb.network_header
    if flags & IP_CMSG_PKTINFO:
        daddr = bytes(buf[nh + 16:nh + 20])
        put_cmsg(msg, SOL_IP, IP_PKTINFO, struct.pack("=i", skb.skb_iif) + daddr + daddr)
    if flags & IP_CMSG_TTL:
        put_cmsg(msg, SOL_IP, IP_TTL, struct.pack("=i", buf[nh + 8]))
    if flags & IP_CMSG_TOS:
        put_cmsg(msg, SOL_IP, IP_TOS, bytes((buf[nh + 1],)))


def ip_cmsg_send(control, ipc):
    """The control messages of a datagram send (SOL_SOCKET and SOL_IP) into ipc;
    EINVAL for what Linux refuses. Other levels are skipped, as in Linux."""
    for level, cmsg_type, data in control:
        if level == SOL_SOCKET:
            __sock_cmsg_send(cmsg_type, data, ipc)
            continue
        if level != SOL_IP:
            continue
        if cmsg_type == IP_PKTINFO:
            if len(data) != 12:
                raise KernelError(errno.EINVAL)
            ifindex = struct.unpack_from("=i", data)[0]
            if ifindex:
                ipc.oif = ifindex
            ipc.addr = int.from_bytes(data[4:8], "big")
        elif cmsg_type == IP_TTL:
            if len(data) != 4:
                raise KernelError(errno.EINVAL)
            val = struct.unpack("=i", data)[0]
            if not 1 <= val <= 255:
                raise KernelError(errno.EINVAL)
            ipc.ttl = val
        elif cmsg_type == IP_TOS:
            if len(data) == 4:
                val = struct.unpack("=i", data)[0]
            elif len(data) == 1:
                val = data[0]
            else:
                raise KernelError(errno.EINVAL)
            if not 0 <= val <= 255:
                raise KernelError(errno.EINVAL)
            ipc.tos = val
        else:
            raise KernelError(errno.EINVAL)
