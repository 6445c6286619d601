"""The examples run as their READMEs say (they are tests of emu too)."""
import subprocess
import sys

from tests.integration.conftest import ROOT, cli_env


def test_kv_example_passes():
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "examples/kv"], cwd=ROOT, env=cli_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed" in r.stdout
