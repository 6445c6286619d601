"""containerlab topology files (emu/clab.py): the layout, exec lines through emu's
tools, what is ignored and reported, and one-line errors naming file, node, field."""
import pathlib

import pytest
import yaml

from emu.clab import run_exec_line
from emu.orchestrator import match_labs
from emu.topology import TopologyError, load_topology, parse_topology

ROOT = pathlib.Path(__file__).resolve().parents[1]
NATIVE = sorted(p for p in (ROOT / "topologies").glob("*.yaml"))


def clab(nodes, links=(), **top):
    return dict({"name": "t", "topology": {"nodes": nodes, "links": list(links)}}, **top)


def test_the_issue_example_loads_as_two_hosts():
    t = parse_topology(clab({"h1": {"kind": "linux"}, "h2": {"kind": "linux"}},
                            [{"endpoints": ["h1:eth1", "h2:eth1"]}]), "c.yaml")
    assert [(n.name, n.kind, [i.name for i in n.interfaces]) for n in t.nodes] == \
        [("h1", "host", ["eth1"]), ("h2", "host", ["eth1"])]
    assert [str(e) for e in t.links[0].ends()] == ["h1:eth1", "h2:eth1"]
    assert any("eth0" in n and "not emulated" in n for n in t.notes)


def test_exec_lines_become_addresses_routes_sysctls_mtu_and_router_kind():
    t = parse_topology(clab({
        "r": {"kind": "linux", "cpu": 3, "exec": [
            "ip addr add 10.0.1.1/24 dev eth1", "ip address add 10.0.2.1/24 dev eth2",
            "ip link set dev eth2 mtu 1400", "ip link set eth1 up",
            "ip route add 10.9.0.0/16 via 10.0.2.9 metric 5",
            "sysctl -w net.ipv4.ip_forward=1", "sysctl -w net.ipv4.ip_default_ttl=99"]},
        "h": {"kind": "linux", "exec": ["ip addr add 10.0.1.2/24 dev eth1",
                                        "ip route add default via 10.0.1.1"]},
        "x": {"kind": "linux", "exec": ["ip addr add 10.0.2.2/24 dev eth1"]},
        "br": {"kind": "bridge"}},
        [{"endpoints": ["r:eth1", "h:eth1"]},
         {"endpoints": [{"node": "r", "interface": "eth2"}, {"node": "x", "interface": "eth1"}]}]),
        "c.yaml")
    r = t.node("r")
    assert r.kind == "router" and r.cpus == 3
    assert [(i.name, [str(a) for a in i.addresses], i.mtu) for i in r.interfaces] == \
        [("eth1", ["10.0.1.1/24"], 1500), ("eth2", ["10.0.2.1/24"], 1400)]
    assert [(x.dst, x.via, x.metric) for x in r.routes] == [("10.9.0.0/16", "10.0.2.9", 5)]
    assert dict(r.sysctls) == {"net.ipv4.ip_default_ttl": "99"}
    h = t.node("h")
    assert h.kind == "host" and [(x.dst, x.via) for x in h.routes] == [("0.0.0.0/0", "10.0.1.1")]
    assert t.node("br").kind == "bridge"


def test_ignored_fields_are_reported_once_and_other_commands_are_reported():
    t = parse_topology(clab({
        "h1": {"kind": "linux", "image": "alpine", "binds": ["/a:/b"],
               "exec": ["ip addr add 10.0.0.1/24 dev eth1", "ping -c 1 10.0.0.2", "ip addr show"]},
        "h2": {"kind": "linux", "image": "alpine", "mgmt-ipv4": "172.20.0.3"}},
        [{"endpoints": ["h1:eth1", "h2:eth1"], "labels": {"x": 1}}],
        mgmt={"network": "m"}, prefix=""), "c.yaml")
    ignored = [n for n in t.notes if n.startswith("ignored")]
    assert len(ignored) == 1
    for what in ("image (h1, h2)", "binds (h1)", "mgmt-ipv4 (h2)", "mgmt", "prefix", "labels"):
        assert what in ignored[0]
    assert any("exec[1] 'ping -c 1 10.0.0.2' not run" in n for n in t.notes)
    assert any("exec[2] 'ip addr show' not run" in n for n in t.notes)
    assert [str(a) for a in t.node("h1").interfaces[0].addresses] == ["10.0.0.1/24"]


@pytest.mark.parametrize("data, where", [
    (clab({"h1": {"kind": "nokia_srlinux"}}), "node 'h1' field 'kind'"),
    (clab({"h1": {"kind": "linux", "frobnicate": 1}}), "node 'h1': unknown key 'frobnicate'"),
    (clab({"h1": {"kind": "linux", "exec": ["ip addr add 10.0.0.1/24"]}}),
     "node 'h1' field 'exec[0]'"),
    (clab({"h1": {"kind": "linux", "exec": ["ip route add"]}}), "node 'h1' field 'exec[0]'"),
    (clab({"h1": {"kind": "linux", "exec": [7]}}), "node 'h1' field 'exec[0]'"),
    (clab({"h1": {"kind": "linux", "exec": ["ip addr add 10.0.0.300/24 dev eth1"]}},
          [{"endpoints": ["h1:eth1", "h1:eth2"]}]), "node 'h1' interface 'eth1' field 'addresses'"),
    (clab({"h1": {"kind": "linux"}}, [{"endpoints": ["h1:eth1", "h9:eth1"]}]),
     "link 0 [h1:eth1, h9:eth1]: unknown node 'h9'"),
    (clab({"h1": {"kind": "linux"}}, [{"endpoints": ["h1:eth1"], "type": "vxlan"}]),
     "link 0 field 'type'"),
    ({"name": "t", "topology": {"nodes": {}}}, "topology field 'nodes'"),
    (clab({"h1": {"kind": "linux"}}, [{"endpoints": ["h1:eth1", "host:veth-h1"]}]),
     "link 0 field 'endpoints': 'host:veth-h1' is containerlab's host endpoint"),
    ({"name": "t", "topology": {"nodes": {"a": {"kind": "linux"}}, "extra": 1}},
     "topology: unknown key 'extra'"),
])
def test_bad_containerlab_values_are_one_line_naming_file_node_field(data, where):
    with pytest.raises(TopologyError) as e:
        parse_topology(data, "lab.clab.yaml")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("lab.clab.yaml: ") and where in msg, msg


def test_exec_runs_through_emus_own_ip_tool():
    calls, why = run_exec_line("ip -4 route add 10.1.0.0/16 via 10.0.0.1 dev eth1")
    assert why == "" and calls == [("route_add", {"dst": "10.1.0.0/16", "via": "10.0.0.1",
                                                  "dev": "eth1"})]
    with pytest.raises(ValueError, match="garbage|not supported"):
        run_exec_line("ip route add 10.1.0.0/16 via 10.0.0.1 bogus x y")


def _summary(topo, rename):
    """Nodes, addresses, routes and links, with interface names passed through rename."""
    nodes = {}
    for n in topo.nodes:
        nodes[n.name] = (n.kind, n.cpus, sorted((rename(n.name, i.name), tuple(map(str, i.addresses)),
                                                 i.mtu, i.queues) for i in n.interfaces),
                         sorted((r.dst, r.via, r.dev and rename(n.name, r.dev), r.metric)
                                for r in n.routes), sorted(n.sysctls))
    links = [(l.type, tuple((e.node, rename(e.node, e.ifname)) for e in l.ends())) for l in topo.links]
    return nodes, links


@pytest.mark.parametrize("native", NATIVE, ids=[p.stem for p in NATIVE])
def test_every_topology_has_a_containerlab_copy_describing_the_same_lab(native):
    copy = native.parent / "clab" / (native.stem + ".clab.yaml")
    assert copy.exists(), "no containerlab copy of %s" % native.name
    a, b = load_topology(native), load_topology(copy)
    assert yaml.safe_load(copy.read_text())["topology"]["nodes"]   # really the containerlab layout
    # Interface names differ (containerlab's data interfaces start at eth1): map the copy's
    # ends to the native ones link by link.
    names = {}
    for la, lb in zip(a.links, b.links, strict=True):
        for ea, eb in zip(la.ends(), lb.ends(), strict=True):
            assert ea.node == eb.node
            names[(eb.node, eb.ifname)] = ea.ifname
    assert _summary(a, lambda n, i: i) == _summary(b, lambda n, i: names.get((n, i), i))
    assert a.name == b.name


def test_lab_names_exact_run_dir_then_exact_name_then_prefix():
    labs = [{"name": "ab", "run_dir": "/r/ab-1"}, {"name": "abc", "run_dir": "/r/abc-2"},
            {"name": "veth-bridge", "run_dir": "/r/veth-bridge-x"},
            {"name": "veth", "run_dir": "/r/veth-y"}]
    assert [l["run_dir"] for l in match_labs(labs, "ab")] == ["/r/ab-1"]
    assert [l["run_dir"] for l in match_labs(labs, "abc-2")] == ["/r/abc-2"]
    assert [l["run_dir"] for l in match_labs(labs, "veth")] == ["/r/veth-y"]
    assert [l["run_dir"] for l in match_labs(labs, "veth-b")] == ["/r/veth-bridge-x"]
    assert match_labs(labs, "zz") == []


def test_down_all_question():
    from emu.labname import confirm_down_all
    labs = [{"name": "a", "run_dir": "/r/a-1"}]
    asked = []
    assert confirm_down_all(labs, ask=lambda q: asked.append(q) or "y")
    assert "a (a-1)" in asked[0] and "[y/N]" in asked[0]
    assert not confirm_down_all(labs, ask=lambda q: "")
    assert not confirm_down_all(labs, ask=lambda q: (_ for _ in ()).throw(EOFError))


def test_the_readme_side_by_side_example_is_the_files_in_topologies():
    # The README's containerlab / emu table names two files: it must show them.
    import re
    root = pathlib.Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    table = readme[readme.index("<table><tr><th>containerlab (topologies/clab/two-subnets.clab.yaml)"):]
    table = table[:table.index("</table>")]
    clab, own = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", table, re.S)]
    assert clab == yaml.safe_load((root / "topologies/clab/two-subnets.clab.yaml").read_text())
    assert own == yaml.safe_load((root / "topologies/two-subnets.yaml").read_text())
