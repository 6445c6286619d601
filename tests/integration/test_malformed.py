"""Bad frames on a wire are dropped and counted; the node keeps answering."""
import struct
import time

import pytest
import zmq

from emu.kernel.hdr.checksum import ip_compute_csum
from emu.wire.zwire import encode_frames

pytestmark = pytest.mark.real_time("frames pushed into a wire from outside the lab")


def _inject(lab, link_index, end, payload):
    """Push a raw wire message into one end's inbox, as the peer would."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.LINGER, 1000)
    s.connect("ipc://%s/w%d%s" % (lab.sock_dir, link_index, end))
    s.send(payload)
    s.close()


def _ip(src, dst, proto=1, payload=b"\x08\x00\xf7\xff\x00\x00\x00\x00", ihl=5, ver=4,
        tot_len=None, csum=None):
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", (ver << 4) | ihl, 0,
                                tot_len if tot_len is not None else 20 + len(payload),
                                1, 0, 64, proto, 0, bytes(src), bytes(dst)))
    c = ip_compute_csum(hdr) if csum is None else csum
    hdr[10:12] = c.to_bytes(2, "big")
    return bytes(hdr) + payload


def _eth(dst, src, ethertype, payload):
    return dst + src + ethertype.to_bytes(2, "big") + payload


def _wait(cond, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_malformed_frames_are_dropped_and_counted(bridge_lab):
    h2 = bridge_lab.node("h2")
    assert bridge_lab.node("h1").ping("h2", count=1).received == 1
    mac = bytes.fromhex(next(l["mac"] for l in h2.links() if l["name"] == "eth0").replace(":", ""))
    src_mac = bytes.fromhex("020000000099")
    a, b = bytes([10, 0, 0, 9]), bytes([10, 0, 0, 2])
    before = h2.counters()
    frames = [
        b"\x01\x02\x03",                                              # runt: < 14 bytes
        _eth(mac, src_mac, 0x88B5, b"x" * 46),                         # unknown ethertype
        _eth(mac, src_mac, 0x0800, _ip(a, b, csum=0x1234)),            # bad IP checksum
        _eth(mac, src_mac, 0x0800, _ip(a, b, ihl=3)),                  # IHL < 5
        _eth(mac, src_mac, 0x0800, _ip(a, b, ver=6)),                  # not IPv4
        _eth(mac, src_mac, 0x0800, _ip(a, b, tot_len=1400)),           # tot_len > frame
        _eth(mac, src_mac, 0x0800, b"\x45\x00"),                       # truncated IP header
        _eth(b"\xff" * 6, src_mac, 0x0806, b"\x00\x01\x08\x00"),       # truncated ARP
    ]
    # h2:eth0 is end "b" of link 1 ([h2:eth0, br0:p2]: h2 is end a). Its inbox is w1a.
    _inject(bridge_lab, 1, "a", encode_frames(frames))
    # and a message whose wire header lies about its length
    _inject(bridge_lab, 1, "a", struct.pack("!BBHIQ", 0, 0, 0, 9999, 0) + b"short")

    def counted():
        c = h2.counters()
        d, bd = c["dev"]["eth0"], before["dev"]["eth0"]
        ip, bip = c["snmp"]["Ip"], before["snmp"]["Ip"]
        ext, bext = c["snmp"]["IpExt"], before["snmp"]["IpExt"]
        return (d["rx_length_errors"] - bd["rx_length_errors"] == 1
                and d["rx_dropped"] - bd["rx_dropped"] == 1              # unknown ethertype
                and ip["InHdrErrors"] - bip["InHdrErrors"] == 4
                and ext["InCsumErrors"] - bext["InCsumErrors"] == 1
                and ext["InTruncatedPkts"] - bext["InTruncatedPkts"] == 1
                and c["snmp"]["Arp"]["InErrors"] - before["snmp"]["Arp"]["InErrors"] == 1
                and d["rx_frame_errors"] - bd["rx_frame_errors"] == 1)
    assert _wait(counted), h2.counters()
    drops = h2.counters()["drop_reasons"]
    assert drops.get("IP_CSUM", 0) >= 1 and drops.get("UNHANDLED_PROTO", 0) >= 1
    # The node survived all of it.
    assert bridge_lab.node("h1").ping("h2", count=2, interval=0.05).received == 2
    assert h2.call("ping")["pid"] == h2.pid
