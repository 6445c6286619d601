"""`emu status`: the summary line, --summary, --nodes and --format json, read
from a lab.json whose "nodes" are real processes (sleepers) and whose control
endpoints are a stand-in that answers `info` (or nothing: a node that hangs)."""
import json
import os
import subprocess
import sys
import threading
import time

import msgpack
import psutil
import pytest
import zmq

from emu.cli import main
from emu.status import match_nodes, oops_counts, summary_line


class FakeCtl:
    """A node's control endpoint that answers `info` with an oops count."""

    def __init__(self, path, oops):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.bind("ipc://" + path)
        self.endpoint = "ipc://" + path
        self.oops, self.stop = oops, threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            if self.sock.poll(50):
                ident, data = self.sock.recv_multipart()
                req = msgpack.unpackb(data, raw=False)
                assert req["op"] == "info"
                self.sock.send_multipart([ident, msgpack.packb(
                    {"ok": True, "result": {"oops": self.oops}}, use_bin_type=True)])

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close(0)
        self.ctx.term()


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A run base with one lab: a1, a2, b1 running (a1 answers info), c1 crashed, c2 stopped."""
    base = tmp_path / "base"
    base.mkdir(mode=0o700)
    run = base / "fake-abc"
    run.mkdir()
    sleepers = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
                for _ in range(3)]
    ctl = FakeCtl(str(run / "a1.ctl"), oops=2)
    me = psutil.Process()

    def node(kind, p=None, **extra):
        info = {"kind": kind, "pid": p.pid if p else 999999, "log": "/dev/null",
                "ctl": "ipc://%s/none.ctl" % run}
        if p:
            info["create_time"] = psutil.Process(p.pid).create_time()
        info.update(extra)
        return info
    nodes = {"a1": node("host", sleepers[0], ctl=ctl.endpoint),
             "a2": node("host", sleepers[1]),      # its endpoint answers nothing
             "b1": node("router", sleepers[2], ctl=ctl.endpoint),
             "c1": node("host", state="crashed",
                        exit={"code": None, "signal": "SIGKILL", "at": time.time() - 5,
                              "by_user": False, "log": ["booted", "the last words"]}),
             "c2": node("bridge", state="stopped",
                        exit={"code": 0, "signal": None, "at": time.time(), "by_user": True})}
    (run / "lab.json").write_text(json.dumps({
        "name": "fake", "run_dir": str(run), "status": "running",
        "orchestrator_pid": me.pid, "orchestrator_create_time": me.create_time(),
        "orchestrator_cmdline": me.cmdline(), "nodes": nodes, "hosts": {},
        "links": [{"a": "a1:eth0", "b": "c1:eth0", "type": "veth",
                   "state": "no carrier (c1 not running)"}],
        "partition": None, "fault_log": ["12:00:00.000 +1.000s node c1 crashed (SIGKILL)"]}))
    monkeypatch.setenv("EMU_RUN_BASE", str(base))
    yield {n: i["pid"] for n, i in nodes.items()}
    ctl.close()
    for p in sleepers:
        p.kill()
        p.wait()


def test_json_has_every_node_with_its_figures(lab, capsys):
    t0 = time.monotonic()
    assert main(["status", "--format", "json"]) == 0
    elapsed = time.monotonic() - t0
    doc = json.loads(capsys.readouterr().out)
    (st,) = doc["labs"]
    assert st["name"] == "fake" and st["alive"] is True
    nodes = st["nodes"]
    assert list(nodes) == ["a1", "a2", "b1", "c1", "c2"]
    for name in ("a1", "a2", "b1"):
        n = nodes[name]
        assert n["state"] == "running" and n["pid"] == lab[name]
        assert n["rss"] > 1 << 20 and n["threads"] >= 1 and n["cpu"] >= 0
    assert nodes["a1"]["oops"] == 2 and nodes["b1"]["oops"] == 2
    assert nodes["a2"]["oops"] is None                # no answer within the timeout
    assert nodes["c1"]["state"] == "crashed" and nodes["c1"]["last_log"] == "the last words"
    assert nodes["c1"]["cpu"] is None and nodes["c2"]["state"] == "stopped"
    s = st["summary"]
    assert s["nodes"] == 5 and s["states"] == {"running": 3, "crashed": 1, "stopped": 1}
    assert s["rss"] == sum(nodes[n]["rss"] for n in ("a1", "a2", "b1"))
    assert st["links"][0]["state"].startswith("no carrier") and st["fault_log"]
    # One shared CPU interval and one wait for all the oops answers, not one per node.
    assert elapsed < 5, elapsed


def test_text_has_the_summary_line_then_the_table(lab, capsys):
    assert main(["status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("lab fake  run dir ")
    assert out[1].startswith("  5 nodes: 3 running, 1 crashed, 1 stopped; RSS ")
    assert "  link a1:eth0 <-> c1:eth0: no carrier (c1 not running)" in out
    header = [l for l in out if "NODE" in l][0].split()
    assert header == ["NODE", "KIND", "PID", "STATE", "CPU%", "RSS", "THR", "OOPS"]
    a1 = [l.split() for l in out if l.split()[:1] == ["a1"]][0]
    assert a1[1:4] == ["host", str(lab["a1"]), "running"] and a1[-1] == "2"
    assert [l for l in out if l.split()[:1] == ["c1"]][0].split()[3] == "crashed"
    assert any("last log: the last words" in l for l in out)
    assert out[-2:] == ["  recent faults (all in %s):" % os.path.join(
        os.environ["EMU_RUN_BASE"], "fake-abc", "faults.log"),
        "    12:00:00.000 +1.000s node c1 crashed (SIGKILL)"]


def test_summary_has_no_table_but_names_what_is_down(lab, capsys):
    assert main(["status", "--summary"]) == 0
    out = capsys.readouterr().out
    assert "NODE" not in out and "a1" not in out.replace("a1:eth0", "")
    assert "  5 nodes: 3 running, 1 crashed, 1 stopped; RSS " in out
    assert "  c1: crashed (SIGKILL) 5 s ago (last log: the last words)" in out
    assert "  c2: stopped" in out
    assert main(["status", "--summary", "--format", "json"]) == 0
    (st,) = json.loads(capsys.readouterr().out)["labs"]
    assert set(st["nodes"]) == {"c1", "c2"} and st["summary"]["states"]["running"] == 3


def test_nodes_pattern_limits_the_table(lab, capsys):
    assert main(["status", "--nodes", "a*,c2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  3 of 5 nodes match 'a*,c2'" in out
    rows = [l.split()[0] for l in out[out.index([l for l in out if "NODE" in l][0]) + 1:]
            if l.startswith("  ") and not l.startswith("   ") and "recent faults" not in l]
    assert rows == ["a1", "a2", "c2"]
    assert "  5 nodes: 3 running" in out[1]          # the summary is still of the whole lab
    assert main(["status", "--nodes", "zz*", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["labs"][0]["nodes"] == {}


def test_no_lab(tmp_path, monkeypatch, capsys):
    base = tmp_path / "empty"
    base.mkdir(mode=0o700)
    monkeypatch.setenv("EMU_RUN_BASE", str(base))
    assert main(["status"]) == 0 and capsys.readouterr().out == "no lab is running\n"
    assert main(["status", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"schema": "emu.status/1", "labs": []}


def test_helpers():
    assert match_nodes(["h1", "h10", "r1", "br0"], "h1*,br?") == ["h1", "h10", "br0"]
    assert match_nodes(["h1", "r1"], None) == ["h1", "r1"]
    assert summary_line({"nodes": 1000, "states": {"stopped": 1, "running": 998, "crashed": 1},
                         "rss": 15 << 30, "cpu": 3.25}) == \
        "1000 nodes: 998 running, 1 crashed, 1 stopped; RSS 15.0G; CPU 3.2%"
    assert oops_counts({}) == {}
