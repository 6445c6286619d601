"""Ethernet header layout and EtherTypes.

Linux: include/uapi/linux/if_ether.h, include/linux/etherdevice.h
"""
import struct

ETH_ALEN = 6
ETH_HLEN = 14
ETH_ZLEN = 60            # minimum frame length without FCS
ETH_DATA_LEN = 1500
ETH_FRAME_LEN = 1514
ETH_MIN_MTU = 68
ETH_MAX_MTU = 0xFFFF

ETH_P_LOOP = 0x0060
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
ETH_P_IPV6 = 0x86DD
ETH_P_802_3_MIN = 0x0600  # below this the field is a length (802.3)
ETH_P_ALL = 0x0003        # pseudo type: every protocol (packet taps)
ETH_P_802_2 = 0x0004

# dest(6) source(6) proto(2)
ethhdr = struct.Struct("!6s6sH")

BROADCAST = b"\xff" * 6


def is_multicast_ether_addr(addr):
    return bool(addr[0] & 1)


def is_broadcast_ether_addr(addr):
    return addr == BROADCAST


def is_zero_ether_addr(addr):
    return addr == b"\x00" * 6


def is_valid_ether_addr(addr):
    return not is_multicast_ether_addr(addr) and not is_zero_ether_addr(addr)


def mac_to_str(addr):
    return ":".join("%02x" % b for b in addr)


def mac_from_str(text):
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError("bad MAC address %r" % text)
    return bytes(int(p, 16) for p in parts)
