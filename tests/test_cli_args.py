"""Options given between a command's words, as users type them."""
from emu import cli


def test_partition_takes_its_groups_around_the_options(monkeypatch):
    # `emu partition h1 --one-way h2` was "unrecognized arguments: h2".
    calls = []
    monkeypatch.setattr(cli, "_orch", lambda a, op, **kw: calls.append((op, kw, a.lab)) or (0, "ok"))
    assert cli.main(["partition", "h1,h2", "--one-way", "h3"]) == 0
    assert cli.main(["partition", "h1", "--lab", "x", "h2,h3"]) == 0
    assert calls == [("partition", {"groups": [["h1", "h2"], ["h3"]], "one_way": True}, None),
                     ("partition", {"groups": [["h1"], ["h2", "h3"]], "one_way": False}, "x")]


def test_demo_of_a_bad_file_is_one_line_and_its_default_is_found_anywhere(
        monkeypatch, tmp_path, capsys):
    # emu demo outside the checkout, of a bad file, or of a lab with one host
    # ended in a traceback.
    import os

    import emu.client.demo
    ran = []
    monkeypatch.setattr(emu.client.demo, "demo", ran.append)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("nodes:\n  h1: {kind: hots}\n")
    (tmp_path / "one.yaml").write_text("nodes:\n  h1: {kind: host}\n")
    assert cli.main(["demo", "bad.yaml"]) == 1
    assert capsys.readouterr().err == (
        "emu: bad.yaml: node 'h1' field 'kind': must be one of host, bridge, router, got 'hots'\n")
    assert cli.main(["demo", "one.yaml"]) == 1
    assert capsys.readouterr().err == "emu: demo: one.yaml has fewer than two hosts to ping between\n"
    assert cli.main(["demo", "nothere.yaml"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert ran == []
    cli.main(["demo"])
    assert len(ran) == 1 and os.path.samefile(
        ran[0], os.path.join(os.path.dirname(__file__), "..", "topologies", "veth-bridge.yaml"))


def test_a_malformed_fault_file_is_one_line(tmp_path, capsys):
    # It printed PyYAML's three-line message.
    import os
    topo = os.path.join(os.path.dirname(__file__), "..", "topologies", "veth-bridge.yaml")
    bad = tmp_path / "faults.yaml"
    bad.write_text("garbage: [\n")
    assert cli.main(["up", "-d", "--faults", str(bad), topo]) == 1
    assert capsys.readouterr().err == (
        "emu: %s: line 2 column 1: invalid YAML: expected the node content, but found "
        "'<stream end>'\n" % bad)


def test_a_fault_file_without_a_schedule_is_refused(tmp_path, capsys):
    # A topology file or a typo given as --faults started the lab with no faults.
    import os
    topo = os.path.join(os.path.dirname(__file__), "..", "topologies", "veth-bridge.yaml")
    for text in ("hello: 1\n", "", "42\n"):
        bad = tmp_path / "faults.yaml"
        bad.write_text(text)
        assert cli.main(["up", "-d", "--faults", str(bad), topo]) == 1
        err = capsys.readouterr().err
        assert err.startswith("emu: %s: no fault schedule" % bad) and err.count("\n") == 1, err
    assert cli.main(["up", "-d", "--faults", topo, topo]) == 1
    assert "no fault schedule" in capsys.readouterr().err


def test_graph_into_a_missing_directory_is_one_line(tmp_path, capsys):
    # graphviz's error, then a CalledProcessError traceback.
    import os
    import shutil

    import pytest
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed (make sysdeps)")
    topo = os.path.join(os.path.dirname(__file__), "..", "topologies", "two-subnets.yaml")
    out = str(tmp_path / "no" / "such" / "lab.svg")
    assert cli.main(["graph", topo, "-o", out]) == 1
    err = capsys.readouterr().err
    assert err.startswith("emu: dot: Error: Could not open") and err.count("\n") == 1, err


def test_graph_to_an_unknown_extension_is_refused(tmp_path, capsys):
    # It wrote DOT text to lab.xyz (or lab.jpg) without a word.
    import os
    topo = os.path.join(os.path.dirname(__file__), "..", "topologies", "two-subnets.yaml")
    out = str(tmp_path / "lab.jpg")
    assert cli.main(["graph", topo, "-o", out]) == 1
    err = capsys.readouterr().err
    assert err.startswith("emu: unknown output format .jpg (use .dot") and err.count("\n") == 1, err
    assert not os.path.exists(out)
    assert cli.main(["graph", topo, "-o", str(tmp_path / "lab.gv")]) == 0
    assert open(tmp_path / "lab.gv").read().startswith("graph ")


def test_a_command_line_a_command_cannot_take_exits_2(capsys):
    # As argparse's usage errors do (emu node frob exited 1).
    for argv in (["node", "frob", "h1"], ["link", "sideways", "h1:eth0"], ["status", "--bogus"]):
        try:
            rc = cli.main(argv)
        except SystemExit as e:           # argparse's own
            rc = e.code
        assert rc == 2, argv
        assert capsys.readouterr().err.count("\n") == 1
