"""The emu command as containerlab and Mininet users use it (issue 18): JSON output
checked against its schema, inspect, pingall, iperf, top (also in a real terminal),
graph --lab, lab names, down --all's question, containerlab files that start the
same lab as the native ones, and no traceback for any mistake a user can make."""
import json
import os
import pathlib
import pty
import shutil
import signal
import subprocess
import sys
import time

import jsonschema
import pytest

from emu.schema import SCHEMAS
from tests.integration.conftest import ROOT, TOPOLOGIES, cli_env

NATIVE = sorted(TOPOLOGIES.glob("*.yaml"))


def _base(tmp_path):
    base = "/tmp/emu-t-%d-%s" % (os.getpid(), tmp_path.name[-12:])
    os.makedirs(base, mode=0o700, exist_ok=True)
    env = cli_env()
    env["EMU_RUN_BASE"] = base
    return base, env


def emu(env, *args, timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "emu", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, **kw)


def check(doc_text):
    """Parse a command's JSON and validate it against the schema it names."""
    doc = json.loads(doc_text)
    jsonschema.validate(doc, SCHEMAS[doc["schema"]])
    return doc


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base, env = _base(tmp_path_factory.mktemp("eco"))
    r = emu(env, "up", "-d", "--name", "eco", str(TOPOLOGIES / "veth-bridge.yaml"))
    assert r.returncode == 0, r.stderr
    yield env
    emu(env, "down", "--all")
    shutil.rmtree(base, ignore_errors=True)


def test_every_json_output_matches_its_schema(lab):
    env = lab
    st = check(emu(env, "status", "-j").stdout)
    assert {n for n in st["labs"][0]["nodes"]} == {"h1", "h2", "br0"}
    doc = check(emu(env, "inspect", "--format", "json").stdout)
    nodes = {n["name"]: n for n in doc["labs"][0]["nodes"]}
    assert nodes["h1"]["interfaces"][0]["addresses"] == ["10.0.0.1/24"]
    assert nodes["br0"]["kind"] == "bridge" and nodes["h2"]["state"] == "running"
    assert {(l["a"], l["b"], l["state"]) for l in doc["labs"][0]["links"]} == \
        {("h1:eth0", "br0:p1", "up"), ("h2:eth0", "br0:p2", "up")}
    assert emu(env, "netem", "set", "h1:eth0", "--delay", "5ms").returncode == 0
    ns = check(emu(env, "netem", "show", "-j").stdout)
    assert [(q["node"], q["dev"], q["kind"]) for q in ns["qdiscs"]] == [("h1", "eth0", "netem")]
    links = check(emu(env, "link", "-j").stdout)
    assert links["links"][0]["impairments"]["h1:eth0"].startswith("netem ")
    act = check(emu(env, "link", "down", "h2:eth0", "-j").stdout)
    assert act["ok"] and act["command"] == "link"
    g = check(emu(env, "graph", "--lab", "eco", "--format", "json").stdout)
    assert {l["a"]: l["state"] for l in g["links"]}["h2:eth0"].startswith("down")
    dot = emu(env, "graph", "--lab", "eco").stdout
    assert "style=dashed" in dot and 'color="red"' in dot       # cut link dashed, impaired red
    pa = emu(env, "pingall", "-j")
    assert pa.returncode == 1                                   # h2 is cut off
    pa = check(pa.stdout)
    assert pa["sent"] == 2 and pa["received"] == 0 and pa["dropped_percent"] == 100.0
    check(emu(env, "link", "up", "h2:eth0", "-j").stdout)
    assert emu(env, "partition", "h1", "h2,br0").returncode == 0
    g = check(emu(env, "graph", "--lab", "eco", "-j").stdout)
    assert g["partition"]["groups"] == [["h1"], ["h2", "br0"]]
    assert g["links"][0]["tx_bytes"]["h1:eth0"] > 0               # traffic since start
    dot = emu(env, "graph", "--lab", "eco").stdout
    assert "subgraph cluster_p1" in dot and "sent" in dot
    assert emu(env, "heal").returncode == 0
    assert emu(env, "netem", "reset", "h1:eth0").returncode == 0
    again = emu(env, "netem", "reset", "h1:eth0")               # nothing left: still quiet, 0
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    td = emu(env, "exec", "h1", "--", "tc", "qdisc", "del", "dev", "eth0", "root")
    assert td.returncode == 2 and "Cannot delete qdisc with handle of zero." in td.stdout + td.stderr
    check(emu(env, "node", "-j").stdout)
    check(emu(env, "graph", str(TOPOLOGIES / "star4.yaml"), "-j").stdout)
    tr = subprocess.Popen([sys.executable, "-m", "emu", "trace", "-j", "-c", "1", "-t", "30", "icmp"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    # Tracing runs on every node once this line is out (a fixed sleep lost the
    # race on a loaded machine: h1 sent before its trace started).
    assert tr.stderr.readline().startswith("tracing ")
    emu(env, "exec", "h1", "--", "ping", "-c", "2", "-i", "0.3", "h2")
    out, err = tr.communicate(timeout=60)
    tdoc = check(out)
    assert tdoc["packets"] and tdoc["packets"][0]["steps"][0]["node"] == "h1"
    assert "ip_rcv" in {s["function"] for s in tdoc["packets"][0]["steps"]}
    ip = check(emu(env, "iperf", "h1", "h2", "-t", "1", "-j").stdout)
    assert ip["ok"] and ip["receiver"]["bytes"] > 0
    top = check(emu(env, "top", "--once", "-j").stdout)
    assert {n["name"] for n in top["nodes"]} == {"h1", "h2", "br0"}


def test_pingall_inspect_top_text(lab):
    env = lab
    r = emu(env, "pingall")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["*** Ping: testing ping reachability", "h1 -> h2", "h2 -> h1",
                                     "*** Results: 0% dropped (2/2 received)"]
    r = emu(env, "inspect")
    assert r.returncode == 0
    row = [l for l in r.stdout.splitlines() if " h1 " in l][0]
    assert "host" in row and "running" in row and "10.0.0.1/24" in row
    r = emu(env, "top", "--once")
    assert r.returncode == 0 and "h1:eth0" in r.stdout and "OOPS" in r.stdout
    # Into a pipe without --once: a frame every interval (`top -b`), not a blank live screen.
    p = subprocess.Popen([sys.executable, "-m", "emu", "top", "-d", "0.2"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, stdin=subprocess.DEVNULL)
    try:
        frames = [p.stdout.readline() for _ in range(40)]
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(10)
    assert sum(ln.startswith("emu top  lab") for ln in frames) >= 2, frames
    r = emu(env, "iperf", "h1", "h2", "-t", "1")
    assert r.returncode == 0 and "receiver" in r.stdout and "iperf Done." in r.stdout


def test_top_in_a_real_terminal(lab):
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    env = lab
    sock = "emu-top-%d" % os.getpid()
    cmd = "%s -m emu top; echo TOP-EXITED $?; sleep 60" % sys.executable
    subprocess.run([tmux, "-L", sock, "new-session", "-d", "-s", "t", "-x", "140", "-y", "40",
                    "-c", str(ROOT), cmd], env=env, check=True)

    def screen():
        return subprocess.run([tmux, "-L", sock, "capture-pane", "-p", "-t", "t"],
                              capture_output=True, text=True).stdout

    def wait_for(text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = screen()
            if text in s:
                return s
            time.sleep(0.3)
        raise AssertionError("%r never appeared on the screen:\n%s" % (text, screen()))

    try:
        s = wait_for("sorted by name")
        assert "h1" in s and "br0:p1" in s
        subprocess.run([tmux, "-L", sock, "send-keys", "-t", "t", "m"], check=True)
        wait_for("sorted by mem")
        subprocess.run([tmux, "-L", sock, "send-keys", "-t", "t", "q"], check=True)
        s = wait_for("TOP-EXITED")
        assert "TOP-EXITED 0" in s and "Traceback" not in s
    finally:
        subprocess.run([tmux, "-L", sock, "kill-server"], capture_output=True)


def test_lab_names(lab, tmp_path):
    env = lab
    r = emu(env, "up", "-d", "--name", "eco", str(TOPOLOGIES / "star4.yaml"))
    assert r.returncode == 1 and "already running" in r.stderr and "Traceback" not in r.stderr
    # Two labs of one file: the name is ambiguous, each run directory is not; a lab
    # whose name is another's prefix is still reached by its exact name.
    for _ in range(2):
        assert emu(env, "up", "-d", str(TOPOLOGIES / "veth-bridge.yaml")).returncode == 0
    r = emu(env, "exec", "--lab", "veth-bridge", "h1", "--", "ip", "addr")
    assert r.returncode == 1 and "several labs" in r.stderr
    dirs = [l["run_dir"] for l in json.loads(emu(env, "status", "-j").stdout)["labs"]
            if l["name"] == "veth-bridge"]
    r = emu(env, "exec", "--lab", os.path.basename(dirs[0]), "h1", "--", "ip", "-br", "addr")
    assert r.returncode == 0 and "10.0.0.1/24" in r.stdout
    assert emu(env, "up", "-d", "--name", "ec", str(TOPOLOGIES / "veth-bridge.yaml")).returncode == 0
    r = emu(env, "status", "--lab", "ec", "-j")
    assert [l["name"] for l in json.loads(r.stdout)["labs"]] == ["ec"]
    for d in dirs:
        assert emu(env, "down", "--lab", os.path.basename(d)).returncode == 0
    assert emu(env, "down", "--lab", "ec").returncode == 0
    # down --all on a terminal asks; "n" stops nothing.
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([sys.executable, "-m", "emu", "down", "--all"], stdin=slave,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        os.write(master, b"n\n")
        out, _ = p.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    assert p.returncode == 1 and b"nothing stopped" in out
    assert [l["name"] for l in json.loads(emu(env, "status", "-j").stdout)["labs"]] == ["eco"]


@pytest.mark.parametrize("native", NATIVE, ids=[p.stem for p in NATIVE])
def test_containerlab_copy_runs_the_same_lab(native, tmp_path):
    base, env = _base(tmp_path)
    copy = native.parent / "clab" / (native.stem + ".clab.yaml")
    labs = {}
    try:
        for which, path in (("native", native), ("clab", copy)):
            r = emu(env, "up", "-d", "--name", "%s-%s" % (native.stem, which), str(path))
            assert r.returncode == 0, r.stderr
            if which == "clab":
                assert "eth0" in r.stderr and "not emulated" in r.stderr
        for which in ("native", "clab"):
            r = emu(env, "inspect", "--lab", "%s-%s" % (native.stem, which), "--format", "json")
            labs[which] = check(r.stdout)["labs"][0]
    finally:
        emu(env, "down", "--all")
        shutil.rmtree(base, ignore_errors=True)
    a, b = labs["native"], labs["clab"]
    # The copy's interface names -> the native ones, link by link (same order, same nodes).
    rename = {}
    assert len(a["links"]) == len(b["links"])
    for la, lb in zip(a["links"], b["links"]):
        for ea, eb in ((la["a"], lb["a"]), (la["b"], lb["b"])):
            assert ea.split(":")[0] == eb.split(":")[0]
            rename[eb] = ea

    def summary(lab, ren):
        nodes = {}
        for n in lab["nodes"]:
            ifn = lambda i, n=n: ren.get("%s:%s" % (n["name"], i), "%s:%s" % (n["name"], i))  # noqa: E731
            assert n["state"] == "running" and n["answered"], n
            nodes[n["name"]] = {
                "kind": n["kind"], "cpus": n["cpus"],
                "interfaces": sorted((ifn(i["name"]), tuple(i["addresses"]), i["mtu"], i["state"],
                                      i["peer"] and ren.get(i["peer"], i["peer"]))
                                     for i in n["interfaces"]),
                "routes": sorted((r["dst"], r["via"] or "", ifn(r["dev"]), r["proto"], r["scope"],
                                  r["metric"]) for r in n["routes"])}
        links = [(ren.get(l["a"], l["a"]), ren.get(l["b"], l["b"]), l["type"], l["state"])
                 for l in lab["links"]]
        return nodes, links

    na, la_ = summary(a, {})
    nb, lb_ = summary(b, rename)
    assert na == nb
    assert la_ == lb_
    assert any(n["interfaces"] for n in na.values())        # there was something to compare


def test_no_traceback_for_any_user_mistake(lab, tmp_path):
    """Every command against a missing node, a dead node, a bad argument, a dead lab
    and no lab: one line on stderr (or none), never a traceback."""
    env = lab
    assert emu(env, "up", "-d", "--name", "mist", str(TOPOLOGIES / "two-subnets.yaml")).returncode == 0
    assert emu(env, "node", "kill", "--lab", "mist", "h2").returncode == 0
    per_lab = [
        ["exec", "h2", "--", "ip", "addr"], ["exec", "nosuch", "--", "ip", "addr"],
        ["exec", "h1"], ["shell", "h2"], ["shell", "nosuch"],
        ["iperf", "h1", "h2", "-t", "1"], ["iperf", "h1", "nosuch"], ["iperf", "h1", "r1", "-t", "-1"],
        ["netem", "show", "h2"], ["netem", "show", "nosuch"], ["netem", "show", "h1:eth9"],
        ["netem", "set", "h2:eth0", "--delay", "5ms"],
        ["netem", "set", "h1:eth0", "--delay", "5parsecs"], ["netem", "reset", "nosuch:eth0"],
        ["node", "start", "nosuch"], ["node", "frob", "h1"], ["node", "list", "nosuch"],
        ["link", "down", "nosuch:eth0"], ["link", "sideways", "h1:eth0"], ["partition", "h1", "nosuch"],
        ["trace", "bogus"], ["trace", "-c", "x"], ["top", "-d", "0", "--once"], ["top", "--sort", "bogus"],
        ["pingall", "-W", "-1"], ["pingall", "--nodes", "zz*"], ["inspect", "--format", "xml"],
        ["graph", "-o", "/nonexistent/dir/x.dot"], ["graph", str(TOPOLOGIES / "star4.yaml")],
        ["status", "--bogus"], ["link", "-j"], ["node", "-j"], ["heal"]]
    cases = [args[:1] + ["--lab", "mist"] + args[1:] if args[0] not in ("graph",) or "-o" in args
             else args for args in per_lab]
    cases = [c if c[0] != "graph" or "-o" not in c else ["graph", "--lab", "mist", "-o", c[-1]]
             for c in cases]
    cases += [["up", "/nonexistent.yaml"], ["up", "--name", "bad name", str(TOPOLOGIES / "star4.yaml")],
              ["gen", "star", "--hosts", "-3"], ["graph", "/nonexistent.yaml"], ["frobnicate"],
              ["down", "--lab", "nosuch"]]
    # A dead lab: its orchestrator and nodes are gone, its state file is left.
    base = env["EMU_RUN_BASE"]
    dead = os.path.join(base, "dead-x1")
    os.makedirs(dead, mode=0o700)
    with open(os.path.join(dead, "lab.json"), "w") as f:
        json.dump({"name": "dead", "run_dir": dead, "topology": "/nonexistent.yaml",
                   "orchestrator_pid": 999999, "orchestrator_create_time": 1.0, "status": "running",
                   "nodes": {h: {"pid": 999990 + i, "create_time": 1.0, "kind": "host", "cpus": 1,
                                 "ctl": "ipc://%s/%s.ctl" % (dead, h), "sys": "%s/%s.sys" % (dead, h)}
                             for i, h in enumerate(("h1", "h2"))},
                   "hosts": {"h1": "10.0.0.1", "h2": "10.0.0.2"}}, f)
    for args in (["status"], ["inspect"], ["node"], ["link"], ["link", "down", "h1:eth0"],
                 ["node", "kill", "h1"], ["netem", "show"], ["netem", "set", "h1:eth0", "--delay", "1ms"],
                 ["trace", "-t", "1"], ["graph"], ["pingall"], ["iperf", "h1", "h2"], ["top", "--once"],
                 ["exec", "h1", "--", "ip", "addr"], ["partition", "h1", "h2"], ["heal"]):
        cases.append(args[:1] + ["--lab", "dead"] + args[1:])
    failures = []
    try:
        for args in cases:
            r = emu(env, *args, timeout=90)
            err = r.stderr.strip().splitlines()
            if "Traceback" in r.stderr or "Traceback" in r.stdout or len(err) > 1:
                failures.append("emu %s -> rc %d:\n%s" % (" ".join(args), r.returncode, r.stderr[-2000:]))
            if args[:3] == ["exec", "--lab", "dead"] and "emu node start" in r.stderr:
                # No orchestrator to start it: the advice would only fail in turn.
                failures.append("emu %s suggests emu node start: %s" % (" ".join(args), r.stderr))
    finally:
        emu(env, "down", "--lab", "mist")
        emu(env, "down", "--lab", "dead")
    assert not failures, "\n\n".join(failures)
    # No lab at all: every command says so in one line.
    empty = dict(env, EMU_RUN_BASE=str(tmp_path / "empty"))
    os.makedirs(empty["EMU_RUN_BASE"], mode=0o700)
    for args in (["inspect"], ["node"], ["link"], ["netem", "show"], ["trace", "-t", "1"],
                 ["graph", "--lab", "x"], ["pingall"], ["iperf", "h1", "h2"], ["top", "--once"],
                 ["exec", "h1", "--", "ip", "addr"], ["down", "--lab", "x"]):
        r = emu(empty, *args)
        assert r.returncode == 1 and "Traceback" not in r.stderr, (args, r.stderr)
        assert r.stderr.strip().splitlines() and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    for args in (["status"], ["down"], ["down", "--all"]):
        assert emu(empty, *args).returncode == 0
    assert pathlib.Path(empty["EMU_RUN_BASE"]).is_dir()
