"""The filter table on the netfilter hooks: ACCEPT, DROP, REJECT, counters."""
import errno

import pytest

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError
from emu.kernel.socket import SOCK_NONBLOCK, sys_bind, sys_connect, sys_recvfrom, sys_sendto, sys_socket
from tests.kernel.harness import bridge_lab, ping, router_line_lab


def udp_pair(lab, src, dst, dst_ip, port):
    ts, td = lab.task(src), lab.task(dst)
    srv = sys_socket(td, 2, 2 | SOCK_NONBLOCK, 0)
    sys_bind(td, srv, ("0.0.0.0", port))
    cli = sys_socket(ts, 2, 2 | SOCK_NONBLOCK, 0)
    sys_connect(ts, cli, (dst_ip, port))
    return ts, cli, td, srv


def received(task, fd):
    try:
        return sys_recvfrom(task, fd, 1000)[0]
    except KernelError:
        return None


def test_input_drop_by_port_and_counters():
    lab = bridge_lab()
    net = lab.nets["h2"]
    rtnetlink.RTNL_OPS["nf_rule_add"](net, "INPUT", proto="udp", dport=53, target="DROP")
    ts, cli, td, srv = udp_pair(lab, "h1", "h2", "10.0.0.2", 53)
    ts2, cli2, td2, srv2 = udp_pair(lab, "h1", "h2", "10.0.0.2", 54)
    sys_sendto(ts, cli, b"q", 0, None)
    sys_sendto(ts2, cli2, b"q", 0, None)
    lab.run()
    assert received(td, srv) is None
    assert received(td2, srv2) == b"q"
    rules = rtnetlink.RTNL_OPS["nf_show"](net)
    inp = next(c for c in rules if c["chain"] == "INPUT")
    assert inp["rules"][0]["pkts"] == 1 and inp["rules"][0]["dport"] == 53
    assert net.drop_reasons["NETFILTER_DROP"] == 1
    assert len(ping(lab, "h1", "10.0.0.2")) == 1       # other traffic untouched


def test_reject_sends_port_unreachable_to_the_sender():
    lab = bridge_lab()
    rtnetlink.RTNL_OPS["nf_rule_add"](lab.nets["h2"], "INPUT", src="10.0.0.1/32",
                                      proto="udp", target="REJECT")
    ts, cli, td, srv = udp_pair(lab, "h1", "h2", "10.0.0.2", 8080)
    sys_sendto(ts, cli, b"q", 0, None)
    lab.run()
    assert received(td, srv) is None
    with pytest.raises(KernelError) as e:
        sys_recvfrom(ts, cli, 10)
    assert e.value.errno == errno.ECONNREFUSED


def test_forward_chain_on_a_router_and_policy():
    lab = router_line_lab()
    r2 = lab.nets["r2"]
    rtnetlink.RTNL_OPS["nf_rule_add"](r2, "FORWARD", proto="icmp", iif="eth0", target="DROP")
    assert ping(lab, "h1", "10.0.3.10") == []
    assert r2.mib["Ip"]["ForwDatagrams"] == 0
    rtnetlink.RTNL_OPS["nf_flush"](r2)
    assert len(ping(lab, "h1", "10.0.3.10", seq=2)) == 1
    rtnetlink.RTNL_OPS["nf_policy"](r2, "FORWARD", "DROP")
    rtnetlink.RTNL_OPS["nf_rule_add"](r2, "FORWARD", dst="10.0.3.0/24", target="ACCEPT")
    # requests pass (to 10.0.3.0/24), replies do not match and hit the DROP policy
    assert ping(lab, "h1", "10.0.3.10", seq=3) == []
    assert lab.nets["h2"].mib["Icmp"]["InEchos"] == 2      # seq 2 and seq 3


def test_output_chain_and_bad_rules():
    lab = bridge_lab()
    net = lab.nets["h1"]
    rtnetlink.RTNL_OPS["nf_rule_add"](net, "OUTPUT", dst="10.0.0.2", target="DROP")
    assert ping(lab, "h1", "10.0.0.2") == []
    assert lab.nets["h2"].mib["Icmp"]["InEchos"] == 0
    for bad in ({"chain": "NOPE"}, {"chain": "INPUT", "target": "MASQ"},
                {"chain": "INPUT", "dport": 80}, {"chain": "INPUT", "src": "10.0.0.300"}):
        with pytest.raises(KernelError):
            rtnetlink.RTNL_OPS["nf_rule_add"](net, **bad)
    rtnetlink.RTNL_OPS["nf_rule_del"](net, "OUTPUT", 1)
    assert len(ping(lab, "h1", "10.0.0.2", seq=2)) == 1


def test_port_rule_drops_a_packet_too_short_to_hold_ports():
    # Linux: tcp_mt/udp_mt cannot read the ports -> hotdrop, never a read past the end.
    import struct
    from emu.kernel.hdr.checksum import ip_compute_csum
    lab = bridge_lab()
    net = lab.nets["h2"]
    rtnetlink.RTNL_OPS["nf_rule_add"](net, "INPUT", proto="udp", dport=53, target="ACCEPT")
    h1, h2 = lab.dev("h1", "eth0").dev_addr, lab.dev("h2", "eth0").dev_addr
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 22, 1, 0, 64, 17, 0,
                                b"\x0a\0\0\x01", b"\x0a\0\0\x02"))
    hdr[10:12] = ip_compute_csum(bytes(hdr)).to_bytes(2, "big")
    lab.inject("h2", "eth0", h2 + h1 + b"\x08\x00" + bytes(hdr) + b"\x12\x34")
    lab.run()
    assert net.drop_reasons["NETFILTER_DROP"] == 1
    assert len(ping(lab, "h1", "10.0.0.2")) == 1
