"""Every `emu ... --help` prints its help: a stray % in a help string made
argparse raise (a traceback) instead."""
import re

import pytest

from emu.cli import main


def _help(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main(argv + ["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0, argv
    assert out.startswith("usage: emu"), argv
    return out


def _choices(out):
    m = re.search(r"\{([a-z0-9,-]+)\}", out)
    return m.group(1).split(",") if m else []


def test_every_command_and_subcommand_has_help(capsys):
    commands = _choices(_help(capsys, []))
    assert {"up", "down", "netem", "packetdrill", "gen"} <= set(commands)
    seen = 0
    for cmd in commands:
        for sub in _choices(_help(capsys, [cmd])):
            _help(capsys, [cmd, sub])
            seen += 1
    assert seen >= 3          # netem set/show/reset and gen's shapes at least


def test_cluster_without_ray_says_how_to_install_it(capsys, monkeypatch, tmp_path):
    import sys
    monkeypatch.setitem(sys.modules, "ray", None)      # import ray -> ImportError
    topo = tmp_path / "t.yaml"
    topo.write_text("name: t\nnodes:\n  h1: {kind: host}\n")
    assert main(["up", "--cluster", "auto", str(topo)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'emu[cluster]'" in err, err


def test_cluster_at_an_address_that_does_not_answer_is_one_line(capsys, tmp_path):
    pytest.importorskip("ray")
    topo = tmp_path / "t.yaml"
    topo.write_text("name: t\nnodes:\n  h1: {kind: host}\n")
    assert main(["up", "--dry-run", "--cluster", "127.0.0.1:1", str(topo)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot reach the Ray cluster" in err, err


def test_the_shell_help_describes_every_tool():
    # `help` in emu shell listed tracepath with an empty description.
    from emu.client.exec import TOOLS
    from emu.client.shell import HELP, TAKES_HOST
    assert [t for t in TOOLS if not HELP.get(t)] == []
    assert {"ping", "traceroute", "tracepath", "nc", "iperf3"} <= set(TAKES_HOST)


@pytest.mark.parametrize("argv, where, bogus", [
    (["packetdrill", "--bogus", "x.pkt"], "packetdrill", "--bogus"),
    (["status", "--bogus"], "status", "--bogus"),
    (["netem", "set", "--bogus", "h1:eth0"], "netem set", "--bogus"),
    (["gen", "star", "--hosts", "3", "--zz"], "gen star", "--zz")])
def test_an_unknown_option_points_at_its_subcommands_help(capsys, argv, where, bogus):
    # It said "(see emu --help)", the top parser's help, where the option is not listed.
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert capsys.readouterr().err == \
        "emu: %s: unrecognized arguments: %s (see emu %s --help)\n" % (where, bogus, where)


def test_version_is_the_package_metadatas(capsys):
    from importlib.metadata import version
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == "emu %s\n" % version("emu")
