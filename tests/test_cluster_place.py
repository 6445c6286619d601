"""Placement of a lab over a cluster's machines (emu/cluster.py place), without Ray."""
import pytest

from emu.cluster import ClusterError, Machine, place
from emu.topology import TopologyError, parse_topology

TWO_SITES = {
    "nodes": {
        "h1": {"kind": "host"}, "h2": {"kind": "host"}, "h3": {"kind": "host"},
        "h4": {"kind": "host"}, "br1": {"kind": "bridge"}, "br2": {"kind": "bridge"},
        "r1": {"kind": "router"},
    },
    "links": [["h1:eth0", "br1:p1"], ["h2:eth0", "br1:p2"], ["r1:eth0", "br1:p3"],
              ["h3:eth0", "br2:p1"], ["h4:eth0", "br2:p2"], ["r1:eth1", "br2:p3"]],
}


def machines(*labels):
    return [Machine(i, {"NodeID": "n%d" % i, "NodeManagerAddress": "127.0.0.1",
                        "Resources": {"CPU": 1.0, "node:127.0.0.1": 1.0, **{l: 1.0 for l in ls}}})
            for i, ls in enumerate(labels)]


def topo(**pins):
    data = {"nodes": {n: dict(v) for n, v in TWO_SITES["nodes"].items()},
            "links": TWO_SITES["links"]}
    for n, m in pins.items():
        data["nodes"][n]["machine"] = m
    return parse_topology(data, "sites.yaml")


def test_bridges_keep_their_hosts_and_routers_are_the_cut():
    plan = place(topo(), machines((), ()))
    assert plan["h1"] == plan["h2"] == plan["br1"] != plan["h3"] == plan["h4"] == plan["br2"]
    assert sorted(plan.values()).count(0) + sorted(plan.values()).count(1) == 7
    one = place(topo(), machines(()))
    assert set(one.values()) == {0}


def test_a_hint_pins_the_group_by_label_or_index():
    plan = place(topo(h3="site_a"), machines(("site_a",), ("site_b",)))
    assert plan["h3"] == plan["br2"] == plan["h4"] == 0
    assert plan["h1"] == plan["br1"] == 1          # the other group goes to the idle machine
    assert place(topo(br1=1), machines((), ()))["h2"] == 1


def test_bad_hints_name_the_node_and_field():
    with pytest.raises(ClusterError, match=r"node 'h1' field 'machine': no machine .* 'gpu'"):
        place(topo(h1="gpu"), machines(("site_a",)))
    with pytest.raises(ClusterError, match=r"machine 5 does not exist"):
        place(topo(h1=5), machines((), ()))
    with pytest.raises(ClusterError, match=r"h1 and h2 .* share a machine"):
        place(topo(h1=0, h2=1), machines((), ()))
    with pytest.raises(TopologyError, match=r"node 'h1' field 'machine'"):
        topo(h1=[1])


def test_the_topology_may_name_its_cluster():
    data = {"nodes": {"h1": {"kind": "host"}}, "cluster": "ray://head:10001"}
    assert parse_topology(data, "t.yaml").cluster == "ray://head:10001"
    assert parse_topology({"nodes": {"h1": {"kind": "host"}}}, "t.yaml").cluster is None
    with pytest.raises(TopologyError, match=r"t.yaml: top level field 'cluster'"):
        parse_topology(dict(data, cluster=5), "t.yaml")
