"""drivers/tun.py: the TUN device packetdrill drives the kernel through."""
import struct

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import dev_open, register_netdevice
from emu.kernel.core.entry import kernel_entry
from emu.kernel.core.napi import do_softirq
from emu.kernel.core.net import FakeClock
from emu.kernel.drivers.tun import NET_RX_DROP, tun_get_user, tun_setup
from emu.kernel.hdr.checksum import ip_compute_csum
from emu.kernel.init import start_kernel
from tests.kernel.harness import icmp_echo_bytes


class Port:
    def __init__(self):
        self.sent = []

    def send(self, buf, start, end, flags, gso_type, gso_size, trace_id):
        self.sent.append(bytes(buf[start:end]))
        return True


def tun_kernel():
    net = start_kernel("t", 1, FakeClock(), 0)
    port = Port()
    dev = tun_setup("tun0", port)

    def setup():
        register_netdevice(net, dev)
        dev_open(dev)
        rtnetlink.inet_rtm_newaddr(net, "tun0", "192.168.0.1/16")
        rtnetlink.inet_rtm_newroute(net, "192.0.2.1/32", via="192.168.0.2", dev="tun0")
    kernel_entry(net, 0, setup)
    return net, dev, port


def run(net):
    for _ in range(100):
        if not any(sd.pending for sd in net.cpus):
            return
        for sd in net.cpus:
            kernel_entry(net, sd.cpu, do_softirq, net, sd.cpu)


def ip_packet(src, dst, proto, payload):
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto,
                                0, bytes(src), bytes(dst)))
    struct.pack_into("!H", hdr, 10, ip_compute_csum(hdr))
    return bytes(hdr) + payload


def test_ping_through_tun_has_no_link_header():
    net, dev, port = tun_kernel()
    req = ip_packet((192, 0, 2, 1), (192, 168, 0, 1), 1, icmp_echo_bytes())
    kernel_entry(net, dev.rx_cpu, tun_get_user, dev, req)
    run(net)
    assert len(port.sent) == 1
    reply = port.sent[0]
    assert reply[0] == 0x45                       # an IP header first: no Ethernet header
    assert reply[12:16] == bytes((192, 168, 0, 1)) and reply[16:20] == bytes((192, 0, 2, 1))
    assert reply[20] == 0                         # ICMP echo reply
    assert dev.stats.rx_packets == 1 and dev.stats.tx_packets == 1


def test_bad_packets_are_dropped_and_counted():
    net, dev, port = tun_kernel()
    for junk in (b"", b"\x45" * 10, b"\x60" + bytes(39)):   # empty, short, IPv6
        assert kernel_entry(net, dev.rx_cpu, tun_get_user, dev, junk) == NET_RX_DROP
    run(net)
    assert dev.stats.rx_length_errors == 3 and port.sent == []
