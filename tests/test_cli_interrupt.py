"""Ctrl-C while `emu` is still starting (importing the CLI and the kernel
modules, about 0.3 s) ends it quietly with status 130, as Ctrl-C in a
command does: it printed a KeyboardInterrupt traceback."""
import os
import subprocess
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A real SIGINT, delivered while emu.cli imports emu.orchestrator.
HOOK = """
import importlib.abc, os, runpy, signal, sys

class CtrlC(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "emu.orchestrator":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = ["emu", "status"]
runpy.run_module("emu", run_name="__main__", alter_sys=True)
"""


def test_ctrl_c_while_the_cli_imports_is_not_a_traceback(tmp_path):
    base = tmp_path / "run"
    base.mkdir(mode=0o700)
    env = dict(os.environ, EMU_RUN_BASE=str(base), PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, "-c", HOOK], capture_output=True, text=True,
                       env=env, timeout=60)
    assert "Traceback" not in p.stderr and "KeyboardInterrupt" not in p.stderr, p.stderr
    assert p.returncode == 130, (p.returncode, p.stderr)
    assert p.stdout == ""                   # status never ran


def test_the_console_script_is_the_guarded_entry_point():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts["emu"] == "emu.entry:main"
