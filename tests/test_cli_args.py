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
