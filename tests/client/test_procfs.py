"""cat /proc/net/{tcp,udp,route}: golden layouts as Linux prints them on x86."""
from emu.client.tools import proc


class FakeCtl:
    def __init__(self, **ops):
        self.ops = ops

    def call(self, op, **kw):
        return self.ops[op]


def test_proc_net_route_golden():
    ctl = FakeCtl(route_show=[
        {"dst": "default", "via": "10.0.1.1", "dev": "eth0", "type": "unicast", "metric": 0},
        {"dst": "10.0.1.0/24", "via": None, "dev": "eth0", "type": "unicast", "metric": 0}])
    lines = proc.route(ctl)
    assert all(len(x) == 127 for x in lines)
    assert lines[0].rstrip() == "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
    assert lines[1].rstrip() == "eth0\t00000000\t0101000A\t0003\t0\t0\t0\t00000000\t0\t0\t0"
    assert lines[2].rstrip() == "eth0\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0"


def test_proc_net_tcp_golden():
    ctl = FakeCtl(sock_diag=[
        {"proto": "tcp", "state": "LISTEN", "local": ("0.0.0.0", 22), "peer": ("0.0.0.0", 0),
         "send_q": 0, "recv_q": 0, "id": 7},
        {"proto": "udp", "state": "UNCONN", "local": ("127.0.0.1", 53), "peer": ("0.0.0.0", 0),
         "send_q": 0, "recv_q": 0, "id": 8}])
    tcp = proc._sock_lines(ctl, "tcp")
    assert tcp[0].startswith("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when")
    assert tcp[1].startswith("   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000")
    udp = proc._sock_lines(ctl, "udp")
    assert len(udp) == 2
    assert udp[1].startswith("    0: 0100007F:0035 00000000:0000 07 00000000:00000000")


def test_ip_j_route_keys():
    from emu.client.tools import ip
    ctl = FakeCtl(route_show=[
        {"dst": "10.0.1.0/24", "via": None, "dev": "eth0", "type": "unicast", "metric": 0,
         "proto": "kernel", "scope": "link", "src": "10.0.1.10"},
        {"dst": "default", "via": "10.0.1.1", "dev": "eth0", "type": "unicast", "metric": 0,
         "proto": "static", "scope": "global"}])
    lines = []
    assert ip.main(["-j", "route"], ctl, lines.append) == 0
    import json
    # As iproute2 prints it: default first, gateway/prefsrc keys, compact JSON.
    assert json.loads(lines[0]) == [
        {"dst": "default", "gateway": "10.0.1.1", "dev": "eth0", "protocol": "static", "flags": []},
        {"dst": "10.0.1.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link",
         "prefsrc": "10.0.1.10", "flags": []}]


def test_tcpdump_v_ip_header():
    import struct
    from emu.client.tools import tcpdump
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 84, 12345, 0x4000, 64, 1, 0,
                     bytes([10, 0, 1, 10]), bytes([10, 0, 3, 10]))
    frame = b"\0" * 12 + b"\x08\x00" + ip + bytes([8, 0, 0, 0, 0, 1, 0, 1]) + b"\0" * 56
    pkt = tcpdump.Pkt(frame)
    line = tcpdump.describe(pkt, 0.0, "eth0", 0, False, vflag=1)
    assert "IP (tos 0x0, ttl 64, id 12345, offset 0, flags [DF], proto ICMP (1), length 84)\n" \
           "    10.0.1.10 > 10.0.3.10: ICMP echo request, id 1, seq 1, length 64" in line
