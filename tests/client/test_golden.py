"""emu's tools against the real Linux tools' output (golden fixtures).

tests/fixtures/linux/*.json hold what iputils, iproute2, tcpdump, ss,
nstat, iperf3 and traceroute printed on Linux (tests/fixtures/capture_linux.py
made them in two private network namespaces). Each test runs the same
command line on an emulated node and compares, line by line, the *shape*
of the output (addresses, MACs, numbers and column padding abstracted) and
the exit status. Where the real tool is installed, test_fixture_still_matches_*
reruns it so that a changed tool version shows up as a changed fixture.
"""
import json
import pathlib
import re
import shutil

import pytest

import emu
from emu.client.exec import run_command
from tests.integration.conftest import TOPOLOGIES

FIX = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "linux"
# The fixtures' addresses -> the veth-bridge lab's (h1, h2, an address nobody has).
ADDR = {"198.18.0.1": "10.0.0.1", "198.18.0.2": "10.0.0.2", "198.18.0.3": "10.0.0.9"}


def fixture(name):
    return json.loads((FIX / (name + ".json")).read_text())


def shape(text):
    """A line's form: addresses, MACs, numbers and column padding abstracted."""
    out = []
    for raw in text.splitlines():
        line = re.sub(r"\b\d{1,3}(\.\d{1,3}){3}\b", "<ip>", raw)
        line = re.sub(r"\b[0-9a-f]{2}(:[0-9a-f]{2}){5}\b", "<mac>", line)
        line = re.sub(r"\d+(\.\d+)?", "<n>", line)
        out.append(re.sub(r"\s+", " ", line).strip())
    return out


def emu_argv(argv):
    out = []
    for word in argv:
        w = word
        for a, b in ADDR.items():
            w = w.replace(a, b)
        out.append(w)
    return out


@pytest.fixture(scope="module")
def lab():
    with emu.launch(TOPOLOGIES / "veth-bridge.yaml") as lab:
        lab.st = lab._lab.state("running")
        yield lab


def run(lab, node, argv):
    out, err = [], []
    rc = run_command(lab.st, node, list(argv), out=out.append, err=err.append)
    return rc, "".join(x + "\n" for x in out), "".join(x + "\n" for x in err)


def _load_artifact(want, got):
    """Did a ping show loss or a pipe that its fixture did not?"""
    lost = " 0% packet loss" in want and " 0% packet loss" not in got
    return lost or (", pipe " in got and ", pipe " not in want)


def same_shape(lab, name, node="h1", argv=None, stream="stdout", keep=None):
    """Run the fixture's command on node; assert its exit status and its
    output's shape (only lines for which keep(shape) is true, if given).

    A ping is run again (up to three times) when it lost a reply or had
    more than one probe in flight ("pipe N") where the fixture did not: like
    iputils, emu's ping gives up on the last reply after 2 x the longest rtt
    and -A paces probes by the rtt's ewma, both of which a loaded test
    machine's scheduling can beat; the shape under test is that of a run
    the machine did not disturb."""
    fx = fixture(name)
    argv = argv or emu_argv(fx["argv"])
    for _ in range(3):
        rc, out, err = run(lab, node, argv)
        if argv[0] != "ping" or not _load_artifact(fx["stdout"], out):
            break
    got, want = shape(out if stream == "stdout" else err), shape(fx[stream])
    if keep is not None:
        got, want = [x for x in got if keep(x)], [x for x in want if keep(x)]
    assert rc == fx["rc"], (argv, rc, out, err)
    assert got == want, (argv, out, err)
    return out, err


# ---------------------------------------------------------------- ping

@pytest.mark.parametrize("name", ["ping_ok", "ping_quiet", "ping_D", "ping_I", "ping_A"])
def test_ping_replies_as_iputils(lab, name):
    same_shape(lab, name)


def test_ping_flood_prints_dots_and_backspaces(lab):
    out, _ = same_shape(lab, "ping_f")
    assert out.count(".\b \b") == 10


def test_ping_arp_failure_reports_host_unreachable_with_errors(lab):
    out, _ = same_shape(lab, "ping_arp_fail")
    assert "From 10.0.0.1 icmp_seq=1 Destination Host Unreachable" in out
    assert re.search(r"\+4 errors", out)


def test_ping_outstanding(lab):
    same_shape(lab, "ping_O")


@pytest.mark.parametrize("name", ["ping_no_route", "ping_I_bad"])
def test_ping_errors_exit_2(lab, name):
    same_shape(lab, name, stream="stderr")


def _why_no_netns(tool):
    import os
    if os.geteuid() != 0:
        return "needs root for a network namespace"
    if not shutil.which("ip") or not shutil.which(tool):
        return "the real %s is not installed on this host" % tool
    return None


@pytest.mark.skipif(_why_no_netns("ping") is not None, reason=_why_no_netns("ping") or "")
def test_fixture_still_matches_the_real_ping():
    """The host's iputils ping still prints what the fixture holds (a loopback-only netns)."""
    import subprocess
    import uuid
    ns = "emugold-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        p = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", "203.0.113.9"],
                           capture_output=True, text=True, timeout=20)
        fx = fixture("ping_no_route")
        assert (p.returncode, p.stderr) == (fx["rc"], fx["stderr"])
        p = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "2", "-i", "0.2", "127.0.0.1"],
                           capture_output=True, text=True, timeout=20)
        assert shape(p.stdout) == shape(fixture("ping_ok")["stdout"])
    finally:
        subprocess.run(["ip", "netns", "del", ns])


# ---------------------------------------------------------------- iproute2

def test_json_writer_prints_as_iproute2():
    from emu.client.tools.ip import jsonw
    for name in ("ip_j_p_neigh", "bridge_j_p_fdb", "ip_j_p_link"):
        pretty = fixture(name)["stdout"]
        assert jsonw(json.loads(pretty), pretty=True) + "\n" == pretty
    compact = fixture("ip_j_neigh")["stdout"]
    assert jsonw(json.loads(compact)) + "\n" == compact


def _keys_by(rows, key):
    """The keys of the first row of each kind."""
    res = {}
    for r in rows:
        res.setdefault(key(r), list(r))
    return res


def test_ip_j_neigh_and_bridge_j_fdb_have_iproute2s_keys(lab):
    run(lab, "h1", ["ping", "-c", "1", "10.0.0.2"])
    rc, out, _ = run(lab, "h1", ["ip", "-j", "neigh"])
    want = _keys_by(json.loads(fixture("ip_j_neigh")["stdout"]), lambda r: "lladdr" in r)
    got = _keys_by(json.loads(out), lambda r: "lladdr" in r)
    assert rc == 0 and got[True] == want[True]
    rc, out, _ = run(lab, "h1", ["ip", "-j", "-p", "neigh"])
    assert out.startswith("[ {\n        \"dst\": ") and out.endswith("} ]\n")
    rc, out, _ = run(lab, "br0", ["bridge", "-j", "fdb", "show", "br", "br0"])
    want = _keys_by(json.loads(fixture("bridge_j_fdb")["stdout"]), lambda r: r["state"])
    got = _keys_by(json.loads(out), lambda r: r["state"])
    assert rc == 0 and got[""] == want[""] and got["permanent"] == want["permanent"]
    rc, out, _ = run(lab, "h1", ["ip", "-j", "-p", "link", "show", "eth0"])
    want = json.loads(fixture("ip_j_p_link")["stdout"])[0]
    assert set(json.loads(out)[0]) == set(want) - {"link_index", "link_netnsid"}


def test_ip_s_s_link_has_the_error_rows(lab):
    fx = fixture("ip_s_s_link")
    rc, out, _ = run(lab, "h1", ["ip", "-s", "-s", "link", "show", "eth0"])
    assert rc == fx["rc"] and shape(out)[2:] == shape(fx["stdout"])[2:]
    rc, out, _ = run(lab, "h1", ["ip", "-s", "link", "show", "eth0"])
    assert shape(out)[2:] == shape(fixture("ip_s_link")["stdout"])[2:]


@pytest.mark.parametrize("name,stream", [("ip_route_flush_cache", "stdout"),
                                         ("ip_neigh_flush_all", "stdout"),
                                         ("ip_neigh_flush_bad_dev", "stderr"),
                                         ("ip_link_bad_dev", "stderr"),
                                         ("ip_bad_object", "stderr")])
def test_ip_commands_exit_and_say_as_iproute2(lab, name, stream):
    out, err = same_shape(lab, name, stream=stream)
    if name == "ip_neigh_flush_all":
        rc, out, _ = run(lab, "h1", ["ip", "neigh"])
        assert "REACHABLE" not in out and "STALE" not in out


# ---------------------------------------------------------------- tcpdump

def capture(lab, args, count=4, node="h1"):
    """tcpdump ARGS -c count on node while h1 pings 10.0.0.2 twice: (rc, stdout, stderr)."""
    import threading
    import time
    res = {}

    def go():
        res["r"] = run(lab, node, ["tcpdump"] + args + ["-c", str(count)])
    t = threading.Thread(target=go)
    t.start()
    time.sleep(0.8)
    run(lab, "h1", ["ping", "-c", "2", "-i", "0.2", "10.0.0.2"])
    t.join(20)
    assert not t.is_alive()
    return res["r"]


def _no_blank_end(text):
    """The fixtures were stopped by Ctrl-C (a blank line ends them); emu's by -c."""
    return shape(text.rstrip("\n") + "\n")


@pytest.mark.parametrize("name", ["tcpdump_n", "tcpdump_e", "tcpdump_vv", "tcpdump_any"])
def test_tcpdump_lines_as_tcpdump(lab, name):
    fx = fixture(name)
    rc, out, err = capture(lab, emu_argv(fx["argv"][1:]))
    assert rc == fx["rc"]
    assert _no_blank_end(out) == _no_blank_end(fx["stdout"]), out
    assert shape(err) == shape(fx["stderr"]), err


def _hex_shape(text):
    return [("<hex %d>" % len(line.split("  ")[1].split()) if line.startswith("\t0x") else x)
            for line, x in zip(text.rstrip("\n").splitlines(), shape(text.rstrip("\n")))]


def test_tcpdump_X_and_A_dump_the_packet(lab):
    fx = fixture("tcpdump_X")
    rc, out, err = capture(lab, emu_argv(fx["argv"][1:]))
    assert rc == 0 and _hex_shape(out) == _hex_shape(fx["stdout"]), out
    rc, out, err = capture(lab, emu_argv(fixture("tcpdump_A")["argv"][1:]))
    assert rc == 0 and out.count("\nE..T") == 4, out


def test_tcpdump_w_then_r_with_a_boolean_filter(lab, tmp_path):
    path = str(tmp_path / "cap.pcap")
    fx = fixture("tcpdump_w")
    rc, out, err = capture(lab, ["-n", "-i", "eth0", "-w", path, "icmp"])
    assert rc == fx["rc"] and out == "" and shape(err) == shape(fx["stderr"])
    for name in ("tcpdump_r", "tcpdump_r_bool"):
        fx = fixture(name)
        argv = ["tcpdump"] + [path if w.endswith(".pcap") else w for w in emu_argv(fx["argv"][1:])]
        rc, out, err = run(lab, "h1", argv)
        assert rc == fx["rc"] and shape(out) == shape(fx["stdout"]), (argv, out, err)
        assert shape(err.replace(path, "F")) == shape(re.sub(r"/tmp/\S+\.pcap", "F", fx["stderr"]))
    # a pcap's stamps are the kernel's at the tap: request then reply, the reply within a second
    from emu.client.tools.tcpdump import read_pcap
    _, _, recs = read_pcap(path)
    assert len(recs) == 4 and 0 < recs[1][0] - recs[0][0] < 1.0


def test_tcpdump_D_and_errors(lab):
    fx = fixture("tcpdump_D")
    rc, out, err = run(lab, "h1", ["tcpdump", "-D"])
    assert rc == fx["rc"] and shape(out)[:3] == shape(fx["stdout"])[:3]
    same_shape(lab, "tcpdump_bad_if", stream="stderr")
    same_shape(lab, "tcpdump_bad_filter", stream="stderr")


# ---------------------------------------------------------------- ss, procfs, nstat

def _ss_shape(text):
    text = re.sub(r'users:\(\("[^"]+"', 'users:(("P"', text)
    text = re.sub(r"sk:[0-9a-f]+", "sk:1", text)
    text = re.sub(r" cgroup:\S+", "", text)          # the capture host had no cgroup2 mount
    return shape(text)


@pytest.fixture(scope="module")
def conn(lab):
    """A TCP connection h1 -> h2:80 with 100 bytes sent and read, as the fixtures had."""
    from socket import AF_INET, SOCK_STREAM
    srv = lab.node("h2").socket(AF_INET, SOCK_STREAM)
    srv.bind(("0.0.0.0", 80))
    srv.listen(5)
    cli = lab.node("h1").socket(AF_INET, SOCK_STREAM)
    cli.settimeout(10)
    cli.connect(("10.0.0.2", 80))
    c, _ = srv.accept()
    cli.sendall(b"x" * 100)
    c.settimeout(10)
    got = b""
    while len(got) < 100:
        got += c.recv(100)
    yield
    for s in (cli, c, srv):
        s.close()


@pytest.mark.parametrize("name", ["ss_tn", "ss_tnp", "ss_tne", "ss_tnm", "ss_tno", "ss_state",
                                  "ss_dport", "ss_dport_none"])
def test_ss_as_iproute2s_ss(lab, conn, name):
    fx = fixture(name)
    rc, out, err = run(lab, "h1", emu_argv(fx["argv"]))
    assert rc == fx["rc"] and _ss_shape(out) == _ss_shape(fx["stdout"]), out
    if name == "ss_tnp":
        assert 'users:(("' in out


def test_ss_p_names_the_program(lab, conn):
    rc, out, _ = run(lab, "h2", ["ss", "-tlnp"])
    assert _ss_shape(out) == _ss_shape(fixture("ss_tlnp_server")["stdout"]), out
    import os
    # The socket's owner is this test process, which run_command renamed after the
    # tool it runs (prctl PR_SET_NAME), as `emu exec h2 -- nc -l 80` shows "nc".
    assert '(("ss",pid=%d,fd=' % os.getpid() in out


def test_ss_filter_errors_and_timers():
    from emu.client.tools.ss import FilterError, ms_timer, parse_filter
    assert [ms_timer(x) for x in (200, 1234, 59000, 7140000, 61500)] == \
        ["200ms", "1.234ms", "59sec", "119min", "1min1sec"]
    states, pred = parse_filter(["state", "established", "(", "dport", "=", ":80", "or",
                                 "sport", "=", ":22", ")"])
    assert states == {"ESTAB"}
    row = {"local": ["10.0.0.1", 5000], "peer": ["10.0.0.2", 80]}
    assert pred(row) and not pred({"local": ["10.0.0.1", 5000], "peer": ["10.0.0.2", 81]})
    with pytest.raises(FilterError):
        parse_filter(["dport", "="])


@pytest.mark.parametrize("name", ["proc_sockstat", "proc_packet"])
def test_proc_files_in_the_kernels_layout(lab, name):
    fx = fixture(name)
    rc, out, _ = run(lab, "h1", fx["argv"])
    assert rc == fx["rc"] and shape(out) == shape(fx["stdout"])


def test_proc_net_packet_lists_a_packet_socket(lab):
    s = lab.node("h1").socket(17, 3, 0x0300)
    try:
        rc, out, _ = run(lab, "h1", ["cat", "/proc/net/packet"])
        assert re.match(r"^[0-9a-f]{16} 3      3    0003   0     1 0      0      \d+", out.splitlines()[1])
    finally:
        s.close()


@pytest.mark.parametrize("name", ["proc_snmp", "proc_netstat"])
def test_snmp_and_netstat_name_every_field_in_order(lab, name):
    fx = fixture(name)
    rc, out, _ = run(lab, "h1", fx["argv"])
    names = [line for line in out.splitlines()[::2] if not line.startswith("IcmpMsg")]
    want = [line for line in fx["stdout"].splitlines()[::2] if not line.startswith("IcmpMsg")]
    assert rc == 0 and names == want
    values = out.splitlines()[1::2]
    assert all(re.match(r"^\w+:( -?\d+)+$", v) for v in values)


def test_nstat_history_semantics(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("NSTAT_HISTORY", str(tmp_path / "hist"))
    assert run(lab, "h1", ["nstat", "-n"]) == (0, "", "")
    run(lab, "h1", ["ping", "-c", "2", "-i", "0.2", "10.0.0.2"])
    rc, out, _ = run(lab, "h1", ["nstat"])
    got = dict((line.split()[0], line) for line in out.splitlines()[1:])
    want = dict((line.split()[0], line) for line in fixture("nstat")["stdout"].splitlines()[1:])
    common = set(got) & set(want)
    assert {"IcmpOutEchos", "IpInReceives", "IcmpMsgOutType8"} <= common
    for n in common:                                    # the same columns, byte for byte
        assert got[n] == want[n], (got[n], want[n])
    assert run(lab, "h1", ["nstat"])[1] == fixture("nstat_again")["stdout"]
    fx = fixture("nstat_az_names")
    rc, out, _ = run(lab, "h1", fx["argv"][2:])
    assert shape(out) == shape(fx["stdout"])
    rc, out, _ = run(lab, "h1", ["nstat", "-a"])
    assert re.search(r"^IcmpOutEchos +[1-9]\d* +0\.0$", out, re.M)


# ---------------------------------------------------------------- iperf3

INTERVAL = re.compile(r"^\[(SUM|\s*\d+)\]\s+[\d.]+-[\d.]+\s+sec(?!.*(sender|receiver))")


def _iperf_shape(text):
    """Header, connection, separator and summary lines in order; interval rows as a set."""
    fixed, rows = [], set()
    lines = text.splitlines()
    for i, (raw, sh) in enumerate(zip(lines, shape(text))):
        if raw.startswith("- - -") and i + 1 < len(lines) and INTERVAL.match(lines[i + 1]):
            continue                          # the separator between interval groups (-P)
        if INTERVAL.match(raw):
            rows.add(re.sub(r"<n> (K|M|G)?(Bytes|bits/sec)", r"<n> <u>\2", sh))
        else:
            fixed.append(re.sub(r"<n> (K|M|G)?(Bytes|bits/sec)", r"<n> <u>\2", sh))
    return fixed, rows


def _iperf(lab, copts):
    import threading
    res = {}
    t = threading.Thread(target=lambda: res.setdefault(
        "s", run(lab, "h2", ["iperf3", "-s", "-1"])))
    t.start()
    import time
    time.sleep(0.7)
    c = run(lab, "h1", ["iperf3", "-c", "10.0.0.2"] + copts)
    t.join(60)
    assert not t.is_alive()
    return c, res["s"]


@pytest.mark.parametrize("name", ["iperf3", "iperf3_R", "iperf3_P", "iperf3_u"])
def test_iperf3_tables_as_iperf3(lab, name):
    fx, fxs = fixture(name), fixture(name + "_server")
    (rc, out, err), (src, sout, serr) = _iperf(lab, fx["argv"][3:])
    assert rc == fx["rc"] == src == 0, (out, err, sout, serr)
    for got, want in ((out, fx["stdout"]), (sout, fxs["stdout"])):
        gfix, grows = _iperf_shape(got)
        wfix, wrows = _iperf_shape(want)
        assert gfix == wfix, got
        assert grows <= wrows | {r.replace("<n> <n>", "<n>") for r in wrows}, (grows, wrows)


def test_iperf3_json_has_iperf3s_keys(lab):
    fx = fixture("iperf3_J")
    (rc, out, err), _ = _iperf(lab, fx["argv"][3:])

    def keys(d, path=""):
        res = set()
        if isinstance(d, dict):
            for k, v in d.items():
                res |= {path + "/" + k} | keys(v, path + "/" + k)
        elif isinstance(d, list) and d:
            res |= keys(d[0], path + "[]")
        return res
    assert rc == 0
    assert keys(json.loads(out)) == keys(json.loads(fx["stdout"]))
    # cJSON's layout: a tab after the colon, objects in arrays one level deeper
    assert out.startswith('{\n\t"start":\t{\n\t\t"connected":\t[{\n\t\t\t\t"socket":\t')


# ---------------------------------------------------------------- the shell

def test_shell_ctrl_c_stops_the_command_ctrl_d_leaves(lab):
    """emu shell in a pseudo-terminal, typed at as a person would."""
    import os
    import pty
    import select
    import sys
    import time
    from tests.integration.conftest import cli_env
    run_dir = os.path.basename(lab.st["run_dir"])
    env = cli_env()
    pid, fd = pty.fork()
    if pid == 0:                                    # pragma: no cover - the child
        os.execve(sys.executable, [sys.executable, "-m", "emu", "shell", "--lab", run_dir, "h1"], env)
    buf = b""

    def read(secs, until=None):
        nonlocal buf
        end = time.time() + secs
        while time.time() < end and not (until and until in buf):
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    buf += os.read(fd, 65536)
                except OSError:
                    return
    try:
        read(30, b"root@h1:~# ")
        os.write(fd, b"ping 10.0.0.2\n")
        read(20, b"icmp_seq=2 ")
        os.write(fd, b"\x03")                       # Ctrl-C: ping's summary, the shell stays
        read(10, b"packet loss")
        os.write(fd, b"frob\n")
        read(10, b"command not found")
        os.write(fd, b"ip ro\t\n")                  # Tab completes "route"
        read(10, b"scope link")
        read(10, b"src 10.0.0.1\r\nroot@h1:~# ")     # the prompt is back (readline reads)
        os.write(fd, b"\x04")                       # Ctrl-D: a newline, and out
        status = None
        end = time.time() + 15
        while status is None and time.time() < end:
            read(0.2)
            done, st = os.waitpid(pid, os.WNOHANG)
            status = st if done else None
        assert status is not None, buf.decode(errors="replace")
    finally:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
        os.close(fd)
    text = buf.decode(errors="replace")
    assert "--- 10.0.0.2 ping statistics ---" in text
    assert "frob: command not found. Commands: ping, ip," in text
    assert "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.1" in text
    assert os.WEXITSTATUS(status) == 0 and text.endswith("\n")


def test_shell_completion_follows_the_command(lab):
    import io
    from emu.client.shell import NodeShell
    sh = NodeShell(lab.st, "h1", stdin=io.StringIO(""), stdout=io.StringIO())
    assert sh.completedefault_words("ip ") == ["addr ", "link ", "neigh ", "route "]
    assert sh.completedefault_words("ip route f") == ["flush "]
    assert sh.completedefault_words("ip link set dev e") == ["eth0 "]
    assert "any " in sh.completedefault_words("tcpdump -i ")
    assert sh.completedefault_words("ping h") == ["h1 ", "h2 "]
    assert sh.completedefault_words("cat /proc/net/so") == ["/proc/net/sockstat", "/proc/net/softnet_stat"]
    sh.do_help("")
    assert "tcpdump" in sh.stdout.getvalue() and "nstat" in sh.stdout.getvalue()


# ---------------------------------------------------------------- traceroute

@pytest.mark.parametrize("name", ["traceroute_n", "traceroute_I"])
def test_traceroute_as_traceroute(lab, name):
    same_shape(lab, name)


def test_tracepath_as_tracepath(lab):
    same_shape(lab, "tracepath_n")


def test_ss_o_shows_the_keepalive_timer(lab):
    from socket import AF_INET, SOCK_STREAM, SOL_SOCKET, SO_KEEPALIVE
    srv = lab.node("h2").socket(AF_INET, SOCK_STREAM)
    srv.bind(("0.0.0.0", 81))
    srv.listen(1)
    cli = lab.node("h1").socket(AF_INET, SOCK_STREAM)
    try:
        cli.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1)
        cli.settimeout(10)
        cli.connect(("10.0.0.2", 81))
        rc, out, _ = run(lab, "h1", ["ss", "-tno", "dport", "=", ":81"])
        assert rc == 0 and re.search(r"timer:\(keepalive,(\d+min|\d+sec|[\d.]+ms)[\d.a-z]*,0\)", out), out
    finally:
        cli.close()
        srv.close()


def test_traceroute_T_reaches_a_closed_port_by_its_rst(lab):
    same_shape(lab, "traceroute_T")
