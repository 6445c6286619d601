"""emu/faults.py and emu/wire/partition.py: schedules in topology files, their
errors, timelines, and the partition filters the orchestrator computes."""
import struct

import pytest

from emu.faults import parse_duration, partition_specs, timeline
from emu.topology import TopologyError, parse_topology
from emu.wire.partition import PartitionFilter

BASE = {"name": "lab", "nodes": {
    "h1": {"kind": "host", "interfaces": {"eth0": {"address": "10.0.0.1/24"}}},
    "h2": {"kind": "host", "restart": "on-failure",
           "interfaces": {"eth0": {"address": "10.0.0.2/24"}}},
    "h3": {"kind": "host", "interfaces": {"eth0": {"address": "10.0.0.3/24"}}},
    "br0": {"kind": "bridge"}},
    "links": [["h1:eth0", "br0:p1"], ["h2:eth0", "br0:p2"], ["h3:eth0", "br0:p3"]]}


def topo(**extra):
    data = dict(BASE, **extra)
    return parse_topology(data, "lab.yaml")


def test_restart_policy_and_schedule_parse():
    t = topo(faults=[{"at": "5s", "link_down": "h1:eth0", "for": "2s"},
                     {"at": 10, "kill": "h3", "restart_after": "500ms"},
                     {"at": "12s", "partition": [["h1", "h2"], ["h3"]], "for": "5s"}])
    assert [n.restart for n in t.nodes] == ["no", "on-failure", "no", "no"]
    assert timeline(t.faults) == [
        (5.0, "link_down", "h1:eth0", False), (7.0, "link_up", "h1:eth0", False),
        (10.0, "kill", "h3", False), (10.5, "start", "h3", False),
        (12.0, "partition", [["h1", "h2"], ["h3"]], False), (17.0, "heal", [["h1", "h2"], ["h3"]], False)]
    assert parse_duration("2m") == 120.0 and parse_duration(0.25) == 0.25


@pytest.mark.parametrize("extra, where", [
    ({"faults": [{"at": "5s", "link_down": "h9:eth0"}]}, "fault 0 field 'link_down'"),
    ({"faults": [{"at": "soon", "kill": "h1"}]}, "fault 0 field 'at'"),
    ({"faults": [{"kill": "h1"}]}, "fault 0"),
    ({"faults": [{"at": 1, "kill": "h1", "stop": "h2"}]}, "fault 0"),
    ({"faults": [{"at": 1, "partition": [["h1"], ["h1"]]}]}, "fault 0 field 'partition'"),
    ({"faults": [{"at": 1, "kill": "h1", "for": "1s"}]}, "fault 0 field 'for'"),
    ({"faults": "kill h1"}, "top level field 'faults'"),
])
def test_bad_schedules_name_the_file_and_the_event(extra, where):
    with pytest.raises(TopologyError) as e:
        topo(**extra)
    assert str(e.value).startswith("lab.yaml: %s" % where)


def test_bad_restart_policy():
    data = {"nodes": {"h1": {"kind": "host", "restart": "sometimes"}}}
    with pytest.raises(TopologyError, match="node 'h1' field 'restart': must be one of no, "
                                            "on-failure, always"):
        parse_topology(data, "lab.yaml")


def frame(src_mac, dst_mac, src_ip, dst_ip):
    ip = bytes([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0]) + bytes(map(int, src_ip.split("."))) + \
        bytes(map(int, dst_ip.split(".")))
    return dst_mac + src_mac + struct.pack("!H", 0x0800) + ip


def mac(spec, ip):
    """The MAC the spec gives the node owning ip."""
    return bytes.fromhex([m for m, g in spec["macs"].items()
                          if g == spec["ips"][ip]][0].replace(":", ""))


def test_partition_filters_cut_between_groups_on_a_shared_bridge():
    t = topo()
    specs = partition_specs(t, [["h1", "h2"], ["h3"]])
    br_p1 = PartitionFilter(specs[("br0", "p1")])       # the bridge: no group of its own
    h3 = PartitionFilter(specs[("h3", "eth0")])
    s = specs[("br0", "p1")]
    m1, m2, m3 = mac(s, "10.0.0.1"), mac(s, "10.0.0.2"), mac(s, "10.0.0.3")
    assert br_p1(frame(m1, m3, "10.0.0.1", "10.0.0.3"))          # h1 -> h3: across
    assert not br_p1(frame(m1, m2, "10.0.0.1", "10.0.0.2"))      # h1 -> h2: inside
    assert h3(frame(m1, b"\xff" * 6, "10.0.0.1", "10.0.0.255"))  # a broadcast reaching h3
    assert not h3(frame(b"\x02" * 6, m3, "10.0.0.9", "10.0.0.3"))  # from no group: passes
    # One way: h1,h2 cannot reach h3, h3 reaches them.
    one = partition_specs(t, [["h1", "h2"], ["h3"]], one_way=True)
    assert PartitionFilter(one[("br0", "p1")])(frame(m1, m3, "10.0.0.1", "10.0.0.3"))
    assert not PartitionFilter(one[("br0", "p3")])(frame(m3, m1, "10.0.0.3", "10.0.0.1"))
    assert not PartitionFilter(one[("br0", "p1")])(b"\x00" * 10)         # runts pass untouched


def test_a_direct_link_between_groups_drops_everything():
    t = parse_topology({"nodes": {
        "a": {"kind": "host", "interfaces": {"eth0": {"address": "10.9.0.1/24"}}},
        "b": {"kind": "host", "interfaces": {"eth0": {"address": "10.9.0.2/24"}}}},
        "links": [["a:eth0", "b:eth0"]]}, "pair.yaml")
    specs = partition_specs(t, [["a"], ["b"]])
    assert specs[("a", "eth0")]["all"] and specs[("b", "eth0")]["all"]
    assert PartitionFilter(specs[("b", "eth0")])(b"\x00" * 60)
