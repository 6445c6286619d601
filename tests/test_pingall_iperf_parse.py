"""emu iperf -j reads the summary lines emu's iperf3 prints, in every unit
iperf3 uses (a fast lab moves Gbits/sec: those lines were missed)."""
import pytest

from emu.client.tools.iperf3 import line_bw, line_retr
from emu.pingall import _RATE, _bytes, _rate_bps


@pytest.mark.parametrize("nbytes, secs", [(500, 1.0), (50 << 10, 1.0), (300 << 20, 1.0),
                                          (300 << 20, 0.5), (3 << 30, 1.0)])
def test_summary_lines_parse_in_every_unit(nbytes, secs):
    bps = nbytes * 8 / secs
    for line, role in ((line_retr(5, 0.0, secs, nbytes, 0, "sender"), "sender"),
                       (line_bw(5, 0.0, secs, nbytes, "receiver"), "receiver")):
        m = _RATE.search(line)
        assert m, line
        assert m.group(5) == role
        assert _bytes(m.group(1), m.group(2)) == pytest.approx(nbytes, rel=0.01)
        assert _rate_bps(m.group(3), m.group(4)) == pytest.approx(bps, rel=0.01)
