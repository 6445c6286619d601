"""IPv4 header layout and protocol numbers.

Linux: include/uapi/linux/ip.h, include/uapi/linux/in.h; RFC 791.
"""
import socket
import struct

IPPROTO_IP = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_RAW = 255

IPVERSION = 4
IPDEFTTL = 64
IP_DF = 0x4000
IP_MF = 0x2000
IP_OFFSET = 0x1FFF

# ver_ihl tos tot_len id frag_off ttl protocol check saddr daddr
iphdr = struct.Struct("!BBHHHBBH4s4s")
IPHDR_LEN = iphdr.size  # 20
# (saddr, daddr) as two u32, for route and socket lookups
ipaddrs = struct.Struct("!II")

INADDR_ANY = 0
INADDR_BROADCAST = 0xFFFFFFFF
INADDR_LOOPBACK = 0x7F000001


def inet_aton(text):
    """Dotted quad -> host-order int (raises OSError on a bad address)."""
    return int.from_bytes(socket.inet_aton(text), "big")


# inet_ntoa's answers, remembered (a pure function; bounded): the receive
# paths name every datagram's source. Callers on a hot path may look here first.
NTOA_CACHE: dict = {}
NTOA_CACHE_MAX = 4096


def inet_ntoa(addr):
    text = NTOA_CACHE.get(addr)
    if text is None:
        text = socket.inet_ntoa(addr.to_bytes(4, "big"))
        if len(NTOA_CACHE) < NTOA_CACHE_MAX:
            NTOA_CACHE[addr] = text
    return text


def ipv4_is_multicast(addr):
    return (addr & 0xF0000000) == 0xE0000000


def ipv4_is_loopback(addr):
    return (addr & 0xFF000000) == 0x7F000000


def ipv4_is_zeronet(addr):
    return (addr & 0xFF000000) == 0


def ipv4_is_lbcast(addr):
    return addr == INADDR_BROADCAST


def inet_make_mask(prefixlen):
    return (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF if prefixlen else 0
