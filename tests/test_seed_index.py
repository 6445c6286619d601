"""docs/seed-index.md is current: every function the course notes name maps
to an emu definition at the file and line the index gives."""
import re

import pytest

from emu import seedindex

SEEDS = seedindex.ROOT.parent / "shared" / "seeds"


def test_committed_index_is_current():
    want = seedindex.render()
    got = seedindex.INDEX.read_text()
    assert got == want, "docs/seed-index.md is stale: run `python -m emu.seedindex --write`"


def test_every_line_points_at_the_definition():
    for row in seedindex.INDEX.read_text().splitlines():
        m = re.match(r"\| `[^`]+` \| `([^`]+)` \| \[([^:]+):(\d+)\]", row)
        if not m:
            continue
        name, path, line = m.group(1), m.group(2), int(m.group(3))
        text = (seedindex.ROOT / path).read_text().splitlines()[line - 1]
        assert re.match(r"(async )?(def|class) %s\b" % re.escape(name), text), (name, path, line)


def test_a_missing_function_is_named():
    seedindex.NOTES.append(("made_up", "no_such_function_anywhere", ""))
    try:
        with pytest.raises(KeyError, match="no_such_function_anywhere"):
            seedindex.render()
    finally:
        seedindex.NOTES.pop()


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the course notes are not next to this checkout")
def test_every_name_in_the_notes_is_indexed():
    text = "".join(p.read_text(errors="replace") for p in sorted(SEEDS.iterdir()) if p.is_file())
    named = set(re.findall(r"\b(_{0,4}[A-Za-z][A-Za-z0-9_]*)\(\)", text.replace("\\_", "_")))
    indexed = {notes for notes, _, _ in seedindex.NOTES}
    assert named <= indexed, sorted(named - indexed)
