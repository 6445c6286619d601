"""The shell's commands, driven without a terminal; their output's shape checked."""
import io
import os
import re
import subprocess
import sys
import textwrap
import threading
import time

import dpkt
import pytest

import emu
from emu.client.exec import run_command
from emu.client.shell import NodeShell
from tests.integration.conftest import ROOT, TOPOLOGIES, cli_env


@pytest.fixture(scope="module")
def lab():
    with emu.launch(TOPOLOGIES / "veth-bridge.yaml") as lab:
        lab.st = lab._lab.state("running")
        yield lab


def run(lab, node, *argv):
    lines = []
    status = run_command(lab.st, node, list(argv), out=lines.append)
    return status, lines


def test_ip_commands(lab):
    st, out = run(lab, "h1", "ip", "addr")
    assert st == 0
    assert re.match(r"^1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN", out[0])
    assert "    inet 10.0.0.1/24 brd 10.0.0.255 scope global eth0" in out
    st, out = run(lab, "h1", "ip", "-br", "link")
    assert re.match(r"^eth0\s+UP\s+[0-9a-f:]{17} <BROADCAST,MULTICAST,UP,LOWER_UP>$", out[1])
    st, out = run(lab, "h1", "ip", "route")
    assert out == ["10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.1"]
    st, out = run(lab, "h1", "ip", "-s", "link", "show", "dev", "eth0")
    assert out[2].split() == ["RX:", "bytes", "packets", "errors", "dropped", "missed", "mcast"]
    run(lab, "h1", "ping", "-c", "1", "h2")
    st, out = run(lab, "h1", "ip", "neigh")
    assert re.match(r"^10\.0\.0\.2 dev eth0 lladdr [0-9a-f:]{17} (REACHABLE|STALE|DELAY)$", out[0])
    st, out = run(lab, "br0", "bridge", "fdb", "show")
    assert any(re.match(r"^[0-9a-f:]{17} dev p1 master br0 ?$", line) for line in out)


def test_ip_changes_the_node_and_refuses_what_it_cannot_do():
    with emu.launch(TOPOLOGIES / "veth-bridge.yaml") as lab:
        lab.st = lab._lab.state("running")
        assert run(lab, "h1", "ip", "addr", "add", "10.0.0.11/24", "dev", "eth0")[0] == 0
        st, out = run(lab, "h1", "ip", "addr", "show", "eth0")
        assert "    inet 10.0.0.11/24 brd 10.0.0.255 scope global secondary eth0" in out or \
            any(line.startswith("    inet 10.0.0.11/24") for line in out)
        assert not any("lo:" in line for line in out)             # `show eth0` filters
        assert lab.node("h2").ping("10.0.0.11", count=1, timeout=2).received == 1
        st, out = run(lab, "h1", "ip", "addr", "add", "10.0.0.11/24", "dev", "eth0")
        assert st == 2 and out == ["RTNETLINK answers: File exists"]
        assert run(lab, "h1", "ip", "route", "add", "192.168.5.0/24", "via", "10.0.0.2")[0] == 0
        st, out = run(lab, "h1", "ip", "route", "get", "192.168.5.9")
        assert out[0] == "192.168.5.9 via 10.0.0.2 dev eth0 src 10.0.0.1 uid 0"
        st, out = run(lab, "h1", "ip", "route")
        assert "192.168.5.0/24 via 10.0.0.2 dev eth0" in out
        assert run(lab, "h1", "ip", "route", "del", "192.168.5.0/24")[0] == 0
        st, out = run(lab, "h1", "ip", "route", "get", "192.168.5.9")
        assert st == 2 and "unreachable" in out[0]
        assert run(lab, "h1", "ip", "link", "set", "eth0", "mtu", "1400")[0] == 0
        st, out = run(lab, "h1", "ip", "link", "show", "eth0")
        assert len(out) == 2 and " mtu 1400 " in out[0]
        assert run(lab, "h1", "ip", "link", "set", "dev", "eth0", "down")[0] == 0
        assert lab.node("h1").ping("h2", count=1, timeout=0.5).received == 0
        run(lab, "h1", "ip", "link", "set", "eth0", "up")
        assert lab.node("h1").ping("h2", count=1, timeout=2).received == 1
        assert run(lab, "h1", "ip", "neigh", "flush", "dev", "eth0")[0] == 0
        assert run(lab, "h1", "ip", "neigh")[1] == []
        st, out = run(lab, "h1", "ip", "link", "frobnicate")
        assert st == 255 and out == ['Command "frobnicate" is unknown, try "ip link help".']


def test_sysctl_and_proc_files(lab):
    st, out = run(lab, "h2", "sysctl", "net.ipv4.ip_default_ttl")
    assert out == ["net.ipv4.ip_default_ttl = 64"]
    st, out = run(lab, "h2", "sysctl", "-w", "net.ipv4.icmp_echo_ignore_all=1")
    assert out == ["net.ipv4.icmp_echo_ignore_all = 1"]
    assert lab.node("h1").ping("h2", count=1, timeout=0.3).received == 0
    run(lab, "h2", "sysctl", "-w", "net.ipv4.icmp_echo_ignore_all=0")
    assert run(lab, "h2", "cat", "/proc/sys/net/ipv4/ip_default_ttl") == (0, ["64"])
    assert run(lab, "h2", "cat", "/proc/sys/net/ipv4/ip_local_port_range") == (0, ["32768\t60999"])
    assert run(lab, "h2", "cat", "/proc/sys/net/nope")[0] == 1
    # A directory of the procfs is no file: cat's EISDIR line, on stderr, and exit 1.
    for d in ("/proc/sys/", "/proc/sys/net/ipv4", "/proc/net", "/proc"):
        lines, errs = [], []
        assert run_command(lab.st, "h2", ["cat", d], out=lines.append, err=errs.append) == 1
        assert (lines, errs) == ([], ["cat: %s: Is a directory" % d])
    lines, errs = [], []
    assert run_command(lab.st, "h2", ["cat", "/proc/sys/net/ipv4/nope", "/proc/sys/net/ipv4/ip_default_ttl"],
                       out=lines.append, err=errs.append) == 1
    assert (lines, errs) == (["64"], ["cat: /proc/sys/net/ipv4/nope: No such file or directory"])
    st, out = run(lab, "h2", "sysctl", "net.nope")
    assert st != 0 and "cannot stat /proc/sys/net/nope" in out[0]
    # procps's -n (the value alone), -q (set quietly), -e (unknown keys are no error)
    assert run(lab, "h2", "sysctl", "-n", "net.ipv4.ip_default_ttl") == (0, ["64"])
    assert run(lab, "h2", "sysctl", "-q", "-w", "net.ipv4.ip_default_ttl=64") == (0, [])
    assert run(lab, "h2", "sysctl", "-e", "net.nope") == (0, [])
    # out of Linux's range: its error line, and nothing changes
    assert run(lab, "h2", "sysctl", "-w", "net.ipv4.ip_default_ttl=999") == (
        255, ['sysctl: setting key "net.ipv4.ip_default_ttl": Invalid argument'])
    assert run(lab, "h2", "sysctl", "-n", "net.ipv4.ip_default_ttl") == (0, ["64"])
    st, out = run(lab, "h1", "cat", "/proc/net/softnet_stat")
    assert len(out) == 2 and all(re.fullmatch(r"([0-9a-f]{8} ){12}[0-9a-f]{8}", l) for l in out)
    st, out = run(lab, "h1", "cat", "/proc/net/snmp")
    assert out[0].startswith("Ip: Forwarding DefaultTTL InReceives")
    assert out[1].startswith("Ip: 2 64 ")
    assert any(l.startswith("Tcp: RtoAlgorithm RtoMin RtoMax") for l in out)
    st, out = run(lab, "h1", "cat", "/proc/net/dev")
    assert out[0].startswith("Inter-|") and any(l.strip().startswith("eth0:") for l in out)


def test_tc_and_ethtool(lab):
    st, out = run(lab, "h1", "tc", "qdisc", "show", "dev", "eth0")
    assert out == ["qdisc noqueue 0: dev eth0 root"]          # veth: noqueue, as in Linux
    st, out = run(lab, "h1", "tc", "qdisc", "add", "dev", "eth0", "root", "pfifo", "limit", "50")
    assert st == 0
    st, out = run(lab, "h1", "tc", "-s", "qdisc", "show", "dev", "eth0")
    assert re.match(r"^qdisc pfifo [0-9a-f]+: dev eth0 root limit 50$", out[0]), out
    assert re.match(r"^ Sent \d+ bytes \d+ pkt \(dropped 0, overlimits 0 requeues 0\)$", out[1])
    lab.node("h1").ping("h2", count=1)
    st, out = run(lab, "h1", "tc", "-s", "qdisc", "show", "dev", "eth0")
    assert not out[1].startswith(" Sent 0 bytes")                # the ping went through it
    st, out = run(lab, "h1", "tc", "qdisc", "del", "dev", "eth0", "root")
    st, out = run(lab, "h1", "tc", "qdisc", "show", "dev", "eth0")
    assert out == ["qdisc noqueue 0: dev eth0 root"]
    st, out = run(lab, "h1", "ethtool", "-i", "eth0")
    assert out[0] == "driver: veth"
    st, out = run(lab, "h1", "ethtool", "-S", "eth0")
    assert out[0] == "NIC statistics:" and any(re.match(r"^     rx_queue_0_packets: \d+$", l) for l in out)
    st, out = run(lab, "h1", "ethtool", "-k", "eth0")
    assert "rx-gro: on" in out
    st, out = run(lab, "h1", "ethtool", "-l", "eth0")
    assert out[0] == "Channel parameters for eth0:"


def test_ss_lists_listeners_connections_and_processes(lab):
    h1, h2 = lab.node("h1"), lab.node("h2")
    srv = h2.socket(2, 1)
    srv.bind(("0.0.0.0", 7070))
    srv.listen(5)
    cli = h1.socket(2, 1)
    cli.settimeout(5)
    cli.connect(("10.0.0.2", 7070))
    conn, _ = srv.accept()
    u = h2.socket(2, 2)
    u.bind(("0.0.0.0", 5353))
    try:
        st, out = run(lab, "h2", "ss", "-tln")
        assert out[0].startswith("State") and "Recv-Q" in out[0]
        assert re.match(r"^LISTEN\s+0\s+5\s+0\.0\.0\.0:7070\s+0\.0\.0\.0:\*", out[1])
        st, out = run(lab, "h2", "ss", "-tnp")
        assert re.match(r"^ESTAB\s+0\s+0\s+10\.0\.0\.2:7070\s+10\.0\.0\.1:\d+\s+users:\(\(\"ss\",pid=%d,fd=\d+\)\)"
                        % os.getpid(), out[1]), out
        st, out = run(lab, "h1", "ss", "-ti")
        assert re.search(r"ts sack cubic wscale:7,7 rto:[\d.]+ rtt:[\d.]+/[\d.]+ .* snd_wnd:\d{5,6}$", out[2]), out
        st, out = run(lab, "h2", "ss", "-uan")
        assert any(re.match(r"^UNCONN\s+0\s+0\s+0\.0\.0\.0:5353", l) for l in out)
    finally:
        for s in (cli, conn, srv, u):
            s.close()


def test_nc_tcp_and_udp(lab):
    h1 = lab.node("h1")
    from emu.client.tools import nc
    resolve = lab.resolve
    got = io.BytesIO()
    server = threading.Thread(target=nc.main, args=(["-l", "9090"], lab.node("h2").sys_endpoint,
                                                     resolve), kwargs={"stdin": io.BytesIO(b""), "stdout": got})
    server.start()
    time.sleep(0.3)
    back = io.BytesIO()
    # The listener's stdin is empty, so its FIN comes at once: the client must still
    # send all of its stdin before it quits (OpenBSD nc waits for both inputs).
    payload = b"hello over nc\n" + bytes(range(256)) * 1024
    assert nc.main(["-q", "1", "h2", "9090"], h1.sys_endpoint, resolve,
                   stdin=io.BytesIO(payload), stdout=back) == 0
    server.join(10)
    assert got.getvalue() == payload
    # UDP: nc -u -l prints each datagram; nc -u sends stdin as datagrams
    got_udp = io.BytesIO()
    srv = threading.Thread(target=nc.main, args=(["-u", "-l", "9091"], lab.node("h2").sys_endpoint,
                                                 resolve), kwargs={"stdin": io.BytesIO(b""), "stdout": got_udp},
                           daemon=True)
    srv.start()
    time.sleep(0.3)
    assert nc.main(["-u", "-q", "0.2", "h2", "9091"], h1.sys_endpoint, resolve,
                   stdin=io.BytesIO(b"datagram\n"), stdout=io.BytesIO()) == 0
    deadline = time.monotonic() + 5
    while got_udp.getvalue() != b"datagram\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got_udp.getvalue() == b"datagram\n"
    # -z: just see whether something listens
    assert nc.main(["-z", "h2", "9999"], h1.sys_endpoint, resolve, stdin=io.BytesIO(b""),
                   stdout=io.BytesIO()) == 1
    # -w: a client whose peer stays silent quits after that much idle time (OpenBSD nc)
    start = time.monotonic()
    assert nc.main(["-u", "-w", "1", "h2", "9091"], h1.sys_endpoint, resolve,
                   stdin=io.BytesIO(b"x\n"), stdout=io.BytesIO()) == 0
    assert 0.9 <= time.monotonic() - start < 4


def test_tcpdump_writes_a_pcap_an_independent_reader_parses(lab, tmp_path):
    from emu.client.tools import tcpdump
    path = str(tmp_path / "cap.pcap")
    lines = []
    t = threading.Thread(target=tcpdump.main, args=(["-i", "eth0", "-c", "4", "-w", path, "icmp"],
                                                    lab.node("h1").sys_endpoint, lab.resolve),
                         kwargs={"out": lines.append, "err": lines.append})
    t.start()
    time.sleep(0.3)
    assert lab.node("h1").ping("h2", count=2, interval=0.05).received == 2
    t.join(10)
    with open(path, "rb") as f:
        pkts = list(dpkt.pcap.Reader(f))
    icmp = [dpkt.ethernet.Ethernet(buf).data.data for _, buf in pkts]
    assert [m.type for m in icmp] == [8, 0, 8, 0]
    assert lines[-3:] == ["4 packets captured", "4 packets received by filter",
                          "0 packets dropped by kernel"]
    # and the text form
    out = []
    t = threading.Thread(target=tcpdump.main, args=(["-n", "-c", "2", "-i", "eth0", "icmp"],
                                                    lab.node("h1").sys_endpoint, lab.resolve),
                         kwargs={"out": out.append, "err": lambda s: None})
    t.start()
    time.sleep(0.3)
    lab.node("h1").ping("h2", count=1)
    t.join(10)
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{6} IP 10\.0\.0\.1 > 10\.0\.0\.2: ICMP echo request, id \d+, seq 1, length 64$", out[0]), out


def test_shell_runs_commands_from_a_script(lab):
    stdin = io.StringIO("ip route\nsysctl net.ipv4.ip_forward\nnosuchcmd\nexit\n")
    stdout = io.StringIO()
    sh = NodeShell(lab.st, "h1", stdin=stdin, stdout=stdout)
    sh.cmdloop()
    text = stdout.getvalue()
    assert "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.1" in text
    assert "net.ipv4.ip_forward = 0" in text
    assert sorted(sh.completenames("tc")) == ["tc ", "tcpdump "]
    assert sh.completenames("py") == ["python ", "python3 "]


def test_shell_through_a_pipe_is_a_script(lab):
    """stdin not a terminal: as bash reading a script, no banner or prompt in the output,
    an unknown command on stderr with status 127, the last command's status at the end."""
    def shell(script):
        return subprocess.run([sys.executable, "-m", "emu", "shell", "--lab",
                               os.path.basename(lab.st["run_dir"]), "h1"], input=script,
                              capture_output=True, text=True, timeout=60, env=cli_env(), cwd=ROOT)
    r = shell("ip route\nfrob --x\n")
    assert r.stdout == "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.1\n"
    assert (r.stderr, r.returncode) == ("emu shell: frob: command not found\n", 127)
    r = shell("frob\nip route\n")                         # the last command's status
    assert (r.returncode, r.stderr) == (0, "emu shell: frob: command not found\n")
    r = shell("ip route\nexit 3\nip link\n")
    assert (r.returncode, r.stdout.count("\n")) == (3, 1)
    r = shell("cat /proc/nope\n")                         # a tool's error lines: stderr too
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "cat: /proc/nope: No such file or directory\n")


def test_trace_prints_the_path_of_a_ping(lab):
    from emu.client.trace import trace_main
    out = []
    t = threading.Thread(target=trace_main, args=(lab.st, ["-c", "1", "icmp"]), kwargs={"out": out.append})
    t.start()
    time.sleep(0.5)
    lab.node("h1").ping("h2", count=1)
    t.join(15)
    funcs = [l.split()[5] for l in out if l.startswith("  ")]
    nodes = [l.split()[1] for l in out if l.startswith("  ")]
    # the request: h1's send path, the bridge, h2's receive path
    want = ["sock_sendmsg", "dev_queue_xmit", "veth_xmit", "veth_forward_skb", "netif_rx",
            "enqueue_to_backlog", "process_backlog", "__netif_receive_skb_core", "br_handle_frame",
            "br_forward", "veth_xmit", "veth_forward_skb", "ip_rcv", "icmp_rcv", "icmp_echo"]
    pos = 0
    for f in funcs:
        if pos < len(want) and f == want[pos]:
            pos += 1
    assert pos == len(want), funcs
    assert {"h1", "br0", "h2"} <= set(nodes)


def test_graph_text_forms(tmp_path):
    from emu.graph import render, to_dot, to_mermaid
    from emu.topology import load_topology
    topo = load_topology(TOPOLOGIES / "router-line.yaml")
    dot = to_dot(topo)
    assert dot.startswith("graph n_router_line {") and "n_r1 -- n_r2" in dot and "shape=diamond" in dot
    assert '10.0.12.1/24' in dot
    mm = to_mermaid(topo)
    assert mm.startswith("graph LR") and 'n_h1 ---|"eth0 - eth0"| n_r1' in mm
    render(topo, str(tmp_path / "t.dot"))
    assert (tmp_path / "t.dot").read_text() == dot


@pytest.mark.skipif(not __import__("shutil").which("dot"), reason="graphviz's dot is not installed")
def test_graph_renders_svg_with_graphviz(tmp_path):
    out = tmp_path / "lab.svg"
    r = subprocess.run([sys.executable, "-m", "emu", "graph", str(TOPOLOGIES / "veth-bridge.yaml"),
                        "-o", str(out)], capture_output=True, text=True, env=cli_env(), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for text in ("h1 (host)", "br0 (bridge)", "10.0.0.2/24"):
        assert text in svg


PROGRAMS = {
    "http_server.py": """
        import http.server, socketserver, sys
        class H(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *a): pass
        with socketserver.TCPServer(("0.0.0.0", 8080), H) as httpd:
            print("serving", flush=True)
            httpd.handle_request()
    """,
    "fetch.py": """
        import sys, urllib.request
        print(urllib.request.urlopen("http://h2:8080/" + sys.argv[1], timeout=10).read().decode())
    """,
    "xmlrpc_server.py": """
        from xmlrpc.server import SimpleXMLRPCServer
        s = SimpleXMLRPCServer(("0.0.0.0", 8000), logRequests=False)
        s.register_function(lambda a, b: a + b, "add")
        print("serving", flush=True)
        s.handle_request()
    """,
    "xmlrpc_client.py": """
        import xmlrpc.client
        print(xmlrpc.client.ServerProxy("http://h2:8000/").add(2, 40))
    """,
}


def test_unmodified_programs_http_and_xmlrpc(lab, tmp_path):
    for name, code in PROGRAMS.items():
        (tmp_path / name).write_text(textwrap.dedent(code))
    (tmp_path / "hello.txt").write_text("hello from h2's web server\n")
    env = cli_env()
    env["EMU_RUN_BASE"] = os.path.dirname(lab.run_dir)
    lab_arg = ["--lab", os.path.basename(lab.run_dir)]

    def emu_exec(node, *argv, **kw):
        return subprocess.Popen([sys.executable, "-m", "emu", "exec", *lab_arg, node, "--", *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, cwd=str(tmp_path), **kw)
    for server, client, args, want in (
            ("http_server.py", "fetch.py", ["hello.txt"], "hello from h2's web server"),
            ("xmlrpc_server.py", "xmlrpc_client.py", [], "42")):
        srv = emu_exec("h2", "python", server)
        try:
            assert srv.stdout.readline().strip() == "serving", srv.stderr.read()
            # ss -p names the program's process (its syscall connection says who it is)
            st, rows = run(lab, "h2", "ss", "-tlnp")
            assert any(re.search(r'users:\(\("python",pid=\d+,fd=\d+\)\)', r) for r in rows), rows
            cli = emu_exec("h1", "python", client, *args)
            out, err = cli.communicate(timeout=60)
            assert out.strip() == want, err
            srv.wait(30)
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()


def test_tcpdump_into_a_missing_directory_is_its_one_line(lab, tmp_path):
    # It was a FileNotFoundError traceback.
    path = str(tmp_path / "no" / "cap.pcap")
    st, out = run(lab, "h1", "tcpdump", "-i", "eth0", "-c", "1", "-w", path)
    assert (st, out) == (1, ["tcpdump: %s: No such file or directory" % path])


@pytest.mark.parametrize("argv, status, message", [
    (["-c", "abc"], 1, "ping: invalid argument: 'abc'"),
    (["-c", "0"], 1, "ping: invalid argument: '0': out of range: 1 <= value <= 9223372036854775807"),
    (["-c", "5x"], 1, "ping: invalid argument: '5x'"),
    (["-c", "99999999999999999999"], 1,
     "ping: invalid argument: '99999999999999999999': Numerical result out of range"),
    (["-i", "abc"], 2, "ping: bad timing interval: abc"),
    (["-i", "3000000"], 2, "ping: bad timing interval: 3000000"),
    (["-s", "big"], 1, "ping: invalid argument: 'big'"),
    (["-s", "70000"], 1, "ping: invalid argument: '70000': out of range: 0 <= value <= 65507"),
    (["-W", "abc"], 2, "ping: bad linger time: abc"),
    (["-W", "0"], 2, "ping: bad linger time: 0"),
    (["-t", "abc"], 1, "ping: invalid argument: 'abc'"),
    (["-t", "256"], 1, "ping: invalid argument: '256': out of range: 0 <= value <= 255"),
])
def test_ping_bad_option_values_in_iputils_words(argv, status, message):
    """iputils ping.c: strtol_or_err (-c -s -t) exits 1, ping_strtod (-i -W) exits 2; one line,
    no usage text. Checked before anything touches the node, so no lab is needed."""
    from emu.client.tools import ping
    lines = []
    assert ping.main(argv + ["h2"], None, lambda h: None, out=lines.append, err=lines.append) == status
    assert lines == [message]


def test_a_bad_command_line_is_said_once_in_the_tools_words(lab, capsys):
    """argparse printed its usage and error before the tool's own line."""
    status, lines = run(lab, "h1", "traceroute")
    assert status == 2 and len(lines) == 1 and lines[0].startswith("Usage: traceroute"), lines
    status, lines = run(lab, "h1", "iperf3", "-c", "h2", "-t", "abc")
    assert status == 1 and len(lines) == 1, lines
    assert lines[0].startswith("iperf3: parameter error - ") and "'abc'" in lines[0], lines
    status, lines = run(lab, "h1", "tracepath")
    assert status == 255 and lines == ["Usage: tracepath [-n] [-m max_hops] [-p port] <destination>"]
    status, lines = run(lab, "h1", "ping")
    assert status == 2 and lines == ["ping: usage error: Destination address required"]
    status, lines = run(lab, "h1", "sysctl", "-w")
    assert status == 255 and lines == ["usage: sysctl [-a] [-w] NAME[=VALUE] ..."]
    status, lines = run(lab, "h1", "ss", "--frob")
    assert status == 255 and lines == ["ss: unrecognized option '--frob'", "Usage: ss [ OPTIONS ]"]
    status, lines = run(lab, "h1", "ss", "-Z")
    assert status == 255 and lines[0] == "ss: invalid option -- 'Z'", lines
    for size in ("5000", "99999999"):                    # one message, whatever the size
        status, lines = run(lab, "h1", "ethtool", "-G", "eth0", "rx", size)
        assert status == 1 and lines == ["netlink error: requested ring size exceeds maximum",
                                         "netlink error: Invalid argument"], lines
    status, lines = run(lab, "h1", "ethtool", "-G", "eth0", "rx", "8")    # below the driver's 64
    assert status == 1 and lines == ["netlink error: Invalid argument"], lines
    assert capsys.readouterr().err == ""


def test_ping_shows_duplicates_and_lost_probes_do_not_fill_the_pipe(lab):
    """netem duplicate: each reply twice, the second "(DUP!)" and "+N duplicates"
    as iputils prints them; with probes lost, pipe counts only those sent
    after the answered one (ntransmitted - seq + 1), not the lost ones."""
    assert run(lab, "h1", "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "duplicate", "100%")[0] == 0
    try:
        status, lines = run(lab, "h1", "ping", "-c", "3", "-i", "0.2", "h2")
    finally:
        run(lab, "h1", "tc", "qdisc", "del", "dev", "eth0", "root")
    assert status == 0, lines
    # (ping ends at its third reply, as iputils does: the last duplicate may come after)
    dups = sum(ln.endswith("(DUP!)") for ln in lines)
    assert dups >= 2, lines
    assert any(ln.startswith("3 packets transmitted, 3 received, +%d duplicates, 0%% packet loss" % dups)
               for ln in lines), lines
    assert run(lab, "h1", "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "50%")[0] == 0
    try:
        status, lines = run(lab, "h1", "ping", "-c", "30", "-i", "0.02", "h2")
    finally:
        run(lab, "h1", "tc", "qdisc", "del", "dev", "eth0", "root")
    assert not any("pipe" in ln and int(ln.rsplit("pipe", 1)[1]) > 3 for ln in lines), lines
