"""tcpdump's filter language: the pcap forms a user types."""
from types import SimpleNamespace

import pytest

from emu.client.tools.tcpdump import compile_filter


def pkt(proto, sport=None, dport=None, src="10.0.0.1", dst="10.0.0.2", ethertype=0x0800):
    return SimpleNamespace(proto=proto, sport=sport, dport=dport, src=src, dst=dst,
                           ethertype=ethertype)


TCP_8080 = pkt(6, 40000, 8080)
UDP_8080 = pkt(17, 40000, 8080)
TCP_22 = pkt(6, 22, 50000)
ARP = pkt(None, ethertype=0x0806)


@pytest.mark.parametrize("expr, matches", [
    ("tcp port 8080", [TCP_8080]),
    ("udp port 8080", [UDP_8080]),
    ("port 8080", [TCP_8080, UDP_8080]),
    ("tcp and port 8080", [TCP_8080]),
    ("tcp src port 22", [TCP_22]),
    ("tcp dst port 22", []),
    ("not tcp port 8080", [UDP_8080, TCP_22, ARP]),
    ("tcp port 22 or udp", [UDP_8080, TCP_22]),
    ("ip host 10.0.0.1", [TCP_8080, UDP_8080, TCP_22]),
    ("arp", [ARP]),
])
def test_filter_expressions(expr, matches):
    f = compile_filter(expr.split())
    assert [p for p in (TCP_8080, UDP_8080, TCP_22, ARP) if f(p)] == matches


def test_a_bad_expression_is_a_syntax_error():
    with pytest.raises(ValueError):
        compile_filter("tcp port".split())
    with pytest.raises(ValueError):
        compile_filter("bogus 1".split())


def test_a_tcp_segment_with_options_prints_them_as_tcpdump():
    import dpkt

    from emu.client.tools.tcpdump import Pkt, net_line
    opts = b"\x02\x04\x05\xb4\x04\x02\x08\x0a\x00\x00\x00\x07\x00\x00\x00\x00\x01\x03\x03\x07"
    tcp = dpkt.tcp.TCP(sport=40000, dport=80, seq=1, flags=dpkt.tcp.TH_SYN, win=64240, opts=opts,
                       off=(20 + len(opts)) // 4)
    ip = dpkt.ip.IP(src=bytes([10, 0, 0, 1]), dst=bytes([10, 0, 0, 2]), p=6, data=tcp)
    ip.len = len(bytes(ip))
    eth = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip)
    line = net_line(Pkt(bytes(eth)))
    assert line.startswith("IP 10.0.0.1.40000 > 10.0.0.2.80: Flags [S], seq 1, win 64240")
    assert "options [mss 1460,sackOK,TS val 7 ecr 0,nop,wscale 7]" in line
