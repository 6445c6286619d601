"""IPPROTO_IP socket options.

Linux: net/ipv4/ip_sockglue.c
"""
import errno
import struct

from ..core.dev import KernelError

SOL_IP = 0
IP_TOS = 1
IP_TTL = 2
IP_HDRINCL = 3
IP_RECVERR = 11
IP_MTU_DISCOVER = 10


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
    raise KernelError(errno.ENOPROTOOPT)
