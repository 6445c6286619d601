"""The per-frame metadata header, in the spirit of struct virtio_net_hdr.

Linux: include/uapi/linux/virtio_net.h

Every frame on an emu wire is preceded by this fixed header:
  flags(u8) gso_type(u8) gso_size(u16) frame_len(u32) trace_id(u64)
"""
import struct

VIRTIO_NET_HDR_F_NEEDS_CSUM = 1   # checksum not yet computed (CHECKSUM_PARTIAL)
VIRTIO_NET_HDR_F_DATA_VALID = 2   # checksum verified by the sender (CHECKSUM_UNNECESSARY)

VIRTIO_NET_HDR_GSO_NONE = 0
VIRTIO_NET_HDR_GSO_TCPV4 = 1
VIRTIO_NET_HDR_GSO_UDP = 3
VIRTIO_NET_HDR_GSO_TCPV6 = 4
VIRTIO_NET_HDR_GSO_UDP_L4 = 5
VIRTIO_NET_HDR_GSO_ECN = 0x80

emu_wire_hdr = struct.Struct("!BBHIQ")
EMU_WIRE_HDR_LEN = emu_wire_hdr.size    # 16
EMU_WIRE_MAX_FRAME = 65536 + 14 + 4     # a GSO frame: 64 KiB of IP plus Ethernet
