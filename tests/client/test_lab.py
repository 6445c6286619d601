"""LabHandle: partitions (link_down/up), kernel-state assertions, evidence."""
import pytest

from tests.integration.conftest import TOPOLOGIES


def _eth0(node):
    return next(l for l in node.links() if l["name"] == "eth0")


@pytest.mark.topology(TOPOLOGIES / "veth-bridge.yaml")
def test_link_down_cuts_both_directions_and_link_up_mends_it(lab):
    h1, h2, br = lab.node("h1"), lab.node("h2"), lab.node("br0")
    assert h1.ping("h2", count=1).received == 1
    assert lab.link("br0:p1") is lab.link("h1:eth0")
    lab.link_down("h1:eth0")
    # Both ends of the wire are cut; the devices stay administratively up.
    assert h1.info_()["wires"]["eth0"]["carrier"] is False
    assert br.info_()["wires"]["p1"]["carrier"] is False
    assert br.info_()["wires"]["p2"]["carrier"] is True
    assert "UP" in _eth0(h1)["flags"]
    dropped = _eth0(h1)["stats"]["tx_dropped"]
    assert h1.ping("h2", count=2, interval=0.05, timeout=0.3).received == 0
    assert h2.ping("h1", count=2, interval=0.05, timeout=0.3).received == 0
    assert _eth0(h1)["stats"]["tx_dropped"] >= dropped + 2     # sent into a cut cable
    lab.link_up("h1:eth0")
    assert h1.ping("h2", count=2, interval=0.05).received == 2
    assert h2.ping("h1", count=1).received == 1
    with pytest.raises(KeyError, match="no link at 'h1:eth9'"):
        lab.link_down("h1:eth9")


@pytest.mark.topology(TOPOLOGIES / "veth-bridge.yaml")
def test_kernel_state_for_assertions_and_the_tcp_info_hook(lab):
    h1, h2 = lab.node("h1"), lab.node("h2")
    assert h1.ping("h2", count=2, interval=0.05).received == 2
    assert h2.counters()["snmp"]["Icmp"]["InEchos"] == 2
    assert any(n["dst"] == "10.0.0.2" for n in h1.neigh())
    assert {r["dev"] for r in lab.node("br0").fdb() if not r["is_local"]} == {"p1", "p2"}
    # No socket dump op in the kernel yet: the hook says so instead of inventing numbers.
    with pytest.raises(NotImplementedError, match="no inet_diag control op"):
        h1.tcp_info()
    text = lab.evidence(log_lines=3)
    assert "h2 (host, pid %d)" % h2.pid in text
    assert "Icmp: InMsgs=2 InEchos=2" in text               # non-zero counters only
    assert "Forwarding=" not in text and "OutErrors=0" not in text
    assert "booted" in text                                  # the log tail
