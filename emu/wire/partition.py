"""Partitions are a property of the cable: which frames a wire end drops.

The orchestrator (emu/faults.py) computes, for each wire end, a filter from
the partition's groups and the topology; the node runtime applies it to the
frames it reads from that wire, before the kernel sees them. The kernels see
only loss: no carrier change, no ICMP, no RST.

A frame is classified by where it comes from and where it goes:
  origin       the node owning the frame's IPv4 source (the ARP sender), else
               the node owning its source MAC;
  destination  the group of this end's own node if it is named in the
               partition (whatever it receives is "for" it), else the node
               owning the IPv4 destination (the ARP target), else the
               destination MAC's owner.
The frame is dropped when (origin group, destination group) is a cut
direction. A frame whose origin or destination belongs to no group passes.
An end whose peer across the cable is in a group cut off from this end's
group drops everything (a direct link between groups).
"""
import ipaddress


def _ip(s):
    return ipaddress.IPv4Address(s).packed


def _mac(s):
    return bytes.fromhex(s.replace(":", ""))


class PartitionFilter:
    """filter(frame) -> True to drop. spec: the msgpack-able dict from emu.faults."""

    __slots__ = ("ips", "macs", "here", "cut", "all", "spec")

    def __init__(self, spec):
        self.spec = spec
        self.ips = {_ip(k): v for k, v in (spec.get("ips") or {}).items()}
        self.macs = {_mac(k): v for k, v in (spec.get("macs") or {}).items()}
        self.here = spec.get("here")
        self.cut = {(a, b) for a, b in spec.get("cut") or ()}
        self.all = bool(spec.get("all"))

    def __call__(self, frame):
        if self.all:
            return True
        if len(frame) < 14:
            return False
        etype = frame[12] << 8 | frame[13]
        src = dst = None
        if etype == 0x0800 and len(frame) >= 34:
            src, dst = self.ips.get(bytes(frame[26:30])), self.ips.get(bytes(frame[30:34]))
        elif etype == 0x0806 and len(frame) >= 42:
            src, dst = self.ips.get(bytes(frame[28:32])), self.ips.get(bytes(frame[38:42]))
        if src is None:
            src = self.macs.get(bytes(frame[6:12]))
        if self.here is not None:
            dst = self.here
        elif dst is None:
            dst = self.macs.get(bytes(frame[0:6]))
        return src is not None and dst is not None and (src, dst) in self.cut
