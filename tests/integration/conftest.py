import os
import pathlib

import pytest

import emu

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOPOLOGIES = ROOT / "topologies"


@pytest.fixture
def bridge_lab():
    with emu.launch(TOPOLOGIES / "veth-bridge.yaml") as lab:
        yield lab


def cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
