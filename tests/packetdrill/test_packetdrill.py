"""Every script under tests/packetdrill/ runs against a fresh inline kernel.

Each script pins down Linux behaviour (written against net/ipv4/tcp_*.c).
A script where emu still differs from Linux can be marked xfail in XFAIL,
with the difference named (none is, now).
"""
import glob
import os

import pytest

from emu.packetdrill import Config, run_script

HERE = os.path.dirname(__file__)
SCRIPTS = sorted(glob.glob(os.path.join(HERE, "*.pkt")) + glob.glob(os.path.join(HERE, "*", "*.pkt")))

XFAIL: dict = {}          # script name -> the difference from Linux it still shows


def _param(path):
    name = os.path.relpath(path, HERE)
    marks = [pytest.mark.xfail(reason=XFAIL[name], strict=True)] if name in XFAIL else []
    return pytest.param(path, id=name, marks=marks)


@pytest.mark.parametrize("script", [_param(p) for p in SCRIPTS])
def test_script(script):
    msg = run_script(script, Config(out=lambda s: None))
    assert msg is None, msg


def test_at_least_fifty_scripts():
    assert len(SCRIPTS) >= 50
