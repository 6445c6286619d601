"""Generated topologies as real labs: `emu gen line` and `emu gen tree` route end to end."""
import subprocess
import sys

import emu
from tests.integration.conftest import cli_env


def _gen(tmp_path, *args):
    path = tmp_path / "gen.yaml"
    r = subprocess.run([sys.executable, "-m", "emu", "gen", *args, "-o", str(path)],
                       capture_output=True, text=True, env=cli_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    return path


def test_generated_line_routes_end_to_end(tmp_path):
    with emu.launch(_gen(tmp_path, "line", "--routers", "3")) as lab:
        r = lab.node("h1").ping("h2", count=2, interval=0.05, timeout=5.0)
        assert r.received == 2 and all(ttl == 61 for _, ttl, _, _ in r.replies)
        r = lab.node("h2").ping("10.0.1.1", count=1, timeout=5.0)   # r1's far side
        assert r.received == 1


def test_generated_tree_routes_leaf_to_leaf(tmp_path):
    with emu.launch(_gen(tmp_path, "tree", "--depth", "2", "--fanout", "2")) as lab:
        # h1 and h4 hang off different leaf routers: up through the root and down.
        r = lab.node("h1").ping("h4", count=2, interval=0.05, timeout=5.0)
        assert r.received == 2 and all(ttl == 61 for _, ttl, _, _ in r.replies)
        assert lab.node("h2").ping("h3", count=1, timeout=5.0).received == 1
