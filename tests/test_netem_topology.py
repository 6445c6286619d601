"""netem keys in topology files, the CLI's netem errors, and graph labels."""
import subprocess
import sys

import pytest

from emu import netem
from emu.graph import to_dot, to_mermaid
from emu.topology import TopologyError, load_topology

BASE = """\
name: t
nodes:
  h1: {kind: host, interfaces: {eth0: {address: 10.0.0.1/24}}}
  h2: {kind: host, interfaces: {eth0: {address: 10.0.0.2/24}}}
links:
  - endpoints: [h1:eth0, h2:eth0]
    netem: %s
"""


def _load(tmp_path, spec):
    p = tmp_path / "lab.yaml"
    p.write_text(BASE % spec)
    return load_topology(str(p))


def test_link_netem_applies_to_both_ends(tmp_path):
    t = _load(tmp_path, "{delay: 20ms, jitter: 5ms, loss: 1%, rate: 100mbit}")
    link = t.links[0]
    assert link.netem_of(link.a) == link.netem_of(link.b) == {
        "delay": "20ms", "jitter": "5ms", "loss": "1%", "rate": "100mbit"}
    opts = netem.parse_netem(netem.spec_to_args(link.netem_of(link.a)))
    assert opts["latency"] == 20000000 and opts["jitter"] == 5000000
    assert opts["rate"] == {"rate": 12500000}


def test_per_end_netem_is_one_direction(tmp_path):
    t = _load(tmp_path, "{h1:eth0: {delay: 5ms}}")
    link = t.links[0]
    assert link.netem_of(link.a) == {"delay": "5ms"} and link.netem_of(link.b) == {}


@pytest.mark.parametrize("spec,where,problem", [
    ("{delay: 20 parsecs}", "field 'netem.delay'", "invalid value '20 parsecs'"),
    ("{loss: 140%}", "field 'netem.loss'", "invalid value '140%'"),
    ("{delay: 20}", "field 'netem.delay'", "needs a unit"),
    ("{bogus: 1}", "field 'netem.bogus'", "unknown key"),
    ("{h3:eth0: {delay: 1ms}}", "field 'netem'", "'h3:eth0' is not an end of this link"),
    ("{h1:eth0: {loss: 2x}}", "field 'netem.h1:eth0.loss'", "invalid value '2x'"),
    ("{reorder: 5%}", "field 'netem'", "reordering not possible without specifying some delay"),
    ("[1, 2]", "field 'netem'", "must be a mapping"),
])
def test_bad_netem_values_fail_with_one_line(tmp_path, spec, where, problem):
    with pytest.raises(TopologyError) as e:
        _load(tmp_path, spec)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "lab.yaml"))
    assert "link 0 [h1:eth0, h2:eth0] " + where in msg and problem in msg, msg


def test_graph_labels_impaired_links(tmp_path):
    t = _load(tmp_path, "{delay: 20ms, loss: 1%}")
    dot = to_dot(t)
    assert "netem delay 20ms loss 1%" in dot and 'color="red"' in dot
    assert "netem delay 20ms loss 1%" in to_mermaid(t)
    t2 = _load(tmp_path, "{h2:eth0: {rate: 10mbit}}")
    assert "netem h2:eth0 rate 10mbit" in to_dot(t2)


def test_spec_to_args_and_the_cli_error(tmp_path):
    assert netem.spec_to_args({"delay": "10ms", "jitter": "2ms", "correlation": "25%",
                               "distribution": "normal", "loss": "1%", "seed": 5}) == [
        "delay", "10ms", "2ms", "25%", "distribution", "normal", "loss", "1%", "seed", "5"]
    r = subprocess.run([sys.executable, "-m", "emu", "netem", "set", "h1:eth0", "--delay", "1ms"],
                       capture_output=True, text=True, timeout=60,
                       env={"EMU_RUN_BASE": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("emu: ")
