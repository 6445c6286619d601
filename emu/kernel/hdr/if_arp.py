"""ARP header layout.

Linux: include/uapi/linux/if_arp.h; RFC 826.
"""
import struct

ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772

ARPOP_REQUEST = 1
ARPOP_REPLY = 2

# hw type, proto type, hw len, proto len, op, sha, sip, tha, tip (Ethernet/IPv4)
arphdr_eth_ip = struct.Struct("!HHBBH6s4s6s4s")
ARP_HLEN = arphdr_eth_ip.size   # 28
