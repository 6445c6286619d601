"""Tests for emu/gen.py and `emu gen`: generated topologies load, have the
expected shape, and route (all-pairs ping in inline kernels built from them)."""
import itertools
import subprocess
import sys

import pytest
import yaml

from emu import gen
from emu.cli import main
from emu.kernel.core import rtnetlink
from emu.topology import load_topology
from tests.kernel.harness import InlineLab, ping


def _write(tmp_path, data, name="gen.yaml"):
    path = tmp_path / name
    path.write_text(gen.to_yaml(data, "generated for a test"))
    return path


def _kinds(topo):
    out = {}
    for n in topo.nodes:
        out[n.kind] = out.get(n.kind, 0) + 1
    return out


@pytest.mark.parametrize("shape, kwargs, kinds, links", [
    ("star", {"hosts": 100}, {"host": 100, "bridge": 1}, 100),
    ("star", {"hosts": 10, "bridges": 3}, {"host": 10, "bridge": 4}, 13),
    ("star", {"hosts": 300}, {"host": 300, "bridge": 1}, 300),        # a /23
    ("line", {"routers": 10}, {"host": 2, "router": 10}, 11),
    ("line", {"routers": 1}, {"host": 2, "router": 1}, 2),
    ("tree", {"depth": 3, "fanout": 4}, {"host": 64, "router": 21}, 84),
    ("tree", {"depth": 1, "fanout": 3}, {"host": 3, "router": 1}, 3),
    ("fat-tree", {"k": 8}, {"host": 128, "router": 80}, 384),
    ("fat-tree", {"k": 4}, {"host": 16, "router": 20}, 48),
    ("campus", {"bridges": 40, "hosts_per_bridge": 25},
     {"host": 1000, "bridge": 40, "router": 11}, 1050),
    ("campus", {"bridges": 3, "hosts_per_bridge": 300, "bridges_per_router": 3},
     {"host": 900, "bridge": 3, "router": 1}, 903),
])
def test_generated_file_loads_with_the_expected_counts(tmp_path, shape, kwargs, kinds, links):
    data = gen.SHAPES[shape](**kwargs)
    path = _write(tmp_path, data)
    assert yaml.load(path.read_text(), Loader=yaml.CSafeLoader) == data        # the writer loses nothing
    topo = load_topology(path)
    assert _kinds(topo) == kinds
    assert len(topo.links) == links
    assert all(n.cpus == 1 for n in topo.nodes)
    # Every host has an address and (but on a star) a default route.
    for n in topo.nodes:
        if n.kind == "host":
            assert n.interfaces[0].addresses
            assert shape == "star" or [r.dst for r in n.routes] == ["0.0.0.0/0"]


def test_star_ports_and_subnet():
    data = gen.star(hosts=300, bridges=1, cpus=2, name="big")
    topo = load_topology_from(data)
    assert topo.name == "big" and all(n.cpus == 2 for n in topo.nodes)
    ports = sorted(int(e.ifname[1:]) for l in topo.links for e in l.ends() if e.node == "br0")
    assert ports == list(range(1, 301))
    nets = {str(n.interfaces[0].addresses[0].network) for n in topo.nodes if n.kind == "host"}
    assert nets == {"10.0.0.0/23"}


def load_topology_from(data):
    from emu.topology import parse_topology
    return parse_topology(yaml.safe_load(gen.to_yaml(data)))


def inline_lab(topo):
    """The lab as the orchestrator configures it, in inline kernels."""
    lab = InlineLab(1)
    for n in topo.nodes:
        lab.node(n.name)
        if n.kind == "router":
            lab.nets[n.name].sysctl["net.ipv4.ip_forward"] = 1
    for link in topo.links:
        lab.link(link.a.node, link.a.ifname, link.b.node, link.b.ifname)
    for n in topo.nodes:
        net = lab.nets[n.name]
        if n.kind == "bridge":
            rtnetlink.rtnl_newlink(net, n.name, "bridge")
            for i in n.interfaces:
                rtnetlink.rtnl_setlink(net, i.name, master=n.name, up=True)
            rtnetlink.rtnl_setlink(net, n.name, up=True)
            continue
        for i in n.interfaces:
            rtnetlink.rtnl_setlink(net, i.name, up=True)
            for a in i.addresses:
                rtnetlink.inet_rtm_newaddr(net, i.name, str(a))
        for r in n.routes:
            rtnetlink.inet_rtm_newroute(net, r.dst, via=r.via, dev=r.dev, metric=r.metric)
        for k, v in n.sysctls:
            net.sysctl[k] = v
    lab.run()
    return lab


@pytest.mark.parametrize("shape, kwargs", [
    ("line", {"routers": 4}),
    ("tree", {"depth": 3, "fanout": 2}),
    ("fat-tree", {"k": 4}),
    ("campus", {"bridges": 5, "hosts_per_bridge": 2, "bridges_per_router": 2}),
    ("star", {"hosts": 6, "bridges": 3}),
])
def test_generated_lab_routes_all_pairs(shape, kwargs):
    topo = load_topology_from(gen.SHAPES[shape](**kwargs))
    lab = inline_lab(topo)
    hosts = [n.name for n in topo.nodes if n.kind == "host"]
    for src, dst in itertools.permutations(hosts, 2):
        assert ping(lab, src, topo.first_address(dst)), (src, dst)
    # Every router address answers from a host at the far end too.
    far = hosts[-1]
    for n in topo.nodes:
        if n.kind == "router":
            for i in n.interfaces:
                assert ping(lab, far, i.addresses[0].ip), (far, n.name, i.name)


def test_a_long_line_still_reaches_the_far_end():
    topo = load_topology_from(gen.line(routers=70))
    assert dict(topo.node("h1").sysctls) == {"net.ipv4.ip_default_ttl": 255}
    lab = inline_lab(topo)
    (reply,) = ping(lab, "h1", topo.first_address("h2"))
    assert reply[8] == 255 - 70                      # the reply's TTL: it crossed 70 routers
    assert gen.line(routers=63)["nodes"]["h1"].get("sysctls") is None


def test_the_campus_of_the_issue_routes_sampled_pairs():
    """40 bridges of 25 hosts behind routers (1,051 nodes), in inline kernels."""
    import random
    topo = load_topology_from(gen.campus(bridges=40, hosts_per_bridge=25))
    lab = inline_lab(topo)
    hosts = [n.name for n in topo.nodes if n.kind == "host"]
    rng = random.Random(13)
    pairs = [("h1", "h1000"), ("h1000", "h26")] + [tuple(rng.sample(hosts, 2)) for _ in range(20)]
    for src, dst in pairs:
        assert ping(lab, src, topo.first_address(dst)), (src, dst)


@pytest.mark.parametrize("call, message", [
    (lambda: gen.star(hosts=0), "hosts must be an integer 1..100000, got 0"),
    (lambda: gen.star(hosts=3, bridges=4), "bridges must be an integer 1..3, got 4"),
    (lambda: gen.line(routers=-1), "routers must be"),
    (lambda: gen.line(routers=255), "routers must be an integer 1..254, got 255"),
    (lambda: gen.tree(depth=10, fanout=10), "at most 100000"),
    (lambda: gen.fat_tree(k=7), "k must be even"),
    (lambda: gen.fat_tree(k=66), "k must be an integer 2..64"),
    (lambda: gen.campus(bridges=1, hosts_per_bridge=0), "hosts_per_bridge must be"),
    (lambda: gen.line(routers=3, cpus=0), "cpus must be an integer 1..64"),
    (lambda: gen.star(hosts=2, name="two words"), "name must match"),
])
def test_bad_arguments_are_one_line_errors(call, message):
    with pytest.raises(gen.GenError) as e:
        call()
    assert message in str(e.value) and "\n" not in str(e.value)


def test_yaml_quotes_what_would_not_read_back_as_a_string():
    text = gen.to_yaml({"name": "no", "nodes": {"h1": {"kind": "host", "x": "10:20"}},
                        "links": [["a b", "1.5"]]})
    assert yaml.safe_load(text) == {"name": "no", "nodes": {"h1": {"kind": "host", "x": "10:20"}},
                                    "links": [["a b", "1.5"]]}


def test_cli_gen_to_stdout_and_file(tmp_path, capsys):
    assert main(["gen", "tree", "--depth", "2", "--fanout", "3", "--cpus", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# ") and "emu gen tree --depth 2 --fanout 3 --cpus 2" in out
    path = tmp_path / "t.yaml"
    path.write_text(out)
    topo = load_topology(path)
    assert _kinds(topo) == {"router": 4, "host": 9} and topo.node("r1").cpus == 2
    dest = tmp_path / "campus.yaml"
    assert main(["gen", "campus", "--bridges", "4", "--hosts-per-bridge", "5",
                 "--bridges-per-router", "2", "-o", str(dest)]) == 0
    assert "wrote %s: 27 nodes" % dest in capsys.readouterr().out
    assert _kinds(load_topology(dest)) == {"router": 3, "bridge": 4, "host": 20}


@pytest.mark.parametrize("argv, message", [
    (["gen", "star"], "the following arguments are required: --hosts"),
    (["gen", "star", "--hosts", "x"], "argument --hosts: invalid int value: 'x'"),
    (["gen", "fat-tree", "--k", "5"], "gen fat-tree: k must be even, got 5"),
    (["gen", "ring", "--hosts", "3"], "invalid choice: 'ring'"),
    (["gen", "line", "--routers", "2", "-o", "/nonexistent/dir/x.yaml"], "/nonexistent/dir/x.yaml"),
])
def test_cli_gen_errors_are_one_line(argv, message):
    p = subprocess.run([sys.executable, "-m", "emu"] + argv, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode != 0 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("emu: "), p.stderr
    assert message in p.stderr
