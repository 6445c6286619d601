"""Tests for emu/topology.py: the valid format and every validation error."""
import ipaddress
import textwrap

import pytest

from emu.topology import (Address, Interface, Link, LinkEnd, Node, Route, Topology,
                          TopologyError, load_topology, parse_topology)

FULL = """\
name: full-lab
nodes:
  h1:
    kind: host
    cpus: 4
    interfaces:
      eth0: {address: 10.0.0.1/24}
      eth1: {addresses: [10.0.1.1/24, 10.0.2.1/24], mtu: 9000, mac: "02:00:00:00:00:01"}
      eth2:
    routes:
      - {dst: default, via: 10.0.0.254}
      - {dst: 10.9.0.0/16, via: 10.0.0.254, metric: 10}
      - {dst: 192.168.0.0/24, dev: eth1}
    sysctls: {net.ipv4.ip_forward: 1, net.core.somaxconn: "4096"}
  br0: {kind: bridge}
  r1:
    kind: router
    interfaces:
      eth0: {address: 10.0.0.254/24}
    routes:
      - {dst: 10.5.0.0/16, dev: uplink}
links:
  - [h1:eth0, br0:p1]
  - {endpoints: [r1:eth0, br0:p2], type: phys}
  - {endpoints: [r1:uplink, br0:p3]}
"""

# A minimal valid lab that the error tests below mutate.
BASE = {
    "nodes": {
        "h1": {"kind": "host", "interfaces": {"eth0": {"address": "10.0.0.1/24"}}},
        "br0": {"kind": "bridge"},
    },
    "links": [["h1:eth0", "br0:p1"]],
}


def write(tmp_path, text, name="lab.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def base(**changes):
    """A deep copy of BASE with top-level keys replaced."""
    import copy
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def h1(**settings):
    """BASE with node h1's settings updated."""
    data = base()
    data["nodes"]["h1"].update(settings)
    return data


def eth0(**settings):
    """BASE with h1's eth0 settings replaced."""
    data = base()
    data["nodes"]["h1"]["interfaces"]["eth0"] = settings
    return data


def error(data, *needles, path="topologies/x.yaml"):
    """Parse data, expect a TopologyError, check it is one line naming the file and needles."""
    with pytest.raises(TopologyError) as info:
        parse_topology(data, path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: ")
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


# ---- the valid path -------------------------------------------------------


def test_full_file_parses_to_expected_dataclasses(tmp_path):
    topo = load_topology(write(tmp_path, FULL))
    assert topo.name == "full-lab"
    assert topo.path == str(tmp_path / "lab.yaml")
    assert [n.name for n in topo.nodes] == ["h1", "br0", "r1"]
    assert topo.node("h1") == Node(
        name="h1", kind="host", cpus=4,
        interfaces=(
            Interface("eth0", (Address("10.0.0.1", 24),)),
            Interface("eth1", (Address("10.0.1.1", 24), Address("10.0.2.1", 24)),
                      mtu=9000, mac="02:00:00:00:00:01"),
            Interface("eth2", ()),
        ),
        routes=(
            Route(dst="0.0.0.0/0", via="10.0.0.254", dev=None, metric=0),
            Route(dst="10.9.0.0/16", via="10.0.0.254", dev=None, metric=10),
            Route(dst="192.168.0.0/24", via=None, dev="eth1", metric=0),
        ),
        sysctls=(("net.ipv4.ip_forward", 1), ("net.core.somaxconn", "4096")),
    )
    assert topo.node("br0") == Node("br0", "bridge", 2, (
        Interface("p1", ()), Interface("p2", ()), Interface("p3", ())), (), ())
    # 'uplink' exists only in a link, yet a route may use it as dev.
    assert [i.name for i in topo.node("r1").interfaces] == ["eth0", "uplink"]
    assert topo.node("r1").routes == (Route("10.5.0.0/16", None, "uplink", 0),)
    assert topo.links == (
        Link(0, LinkEnd("h1", "eth0"), LinkEnd("br0", "p1"), "veth"),
        Link(1, LinkEnd("r1", "eth0"), LinkEnd("br0", "p2"), "phys"),
        Link(2, LinkEnd("r1", "uplink"), LinkEnd("br0", "p3"), "veth"),
    )
    hash(topo)  # frozen all the way down


def test_defaults_and_name_from_file_stem(tmp_path):
    topo = load_topology(write(tmp_path, """\
        nodes:
          a: {kind: host}
          b: {kind: host}
        links:
          - {endpoints: [a:eth0, b:eth0]}
        """, name="veth-pair.yaml"))
    assert topo.name == "veth-pair"
    assert topo.node("a").cpus == 2
    assert topo.node("a").interfaces == (Interface("eth0", (), mtu=1500, mac=None),)
    assert topo.node("a").routes == () and topo.node("a").sysctls == ()
    assert topo.links[0].type == "veth"


def test_links_optional_and_unlinked_interface_allowed():
    topo = parse_topology({"nodes": {"h1": {"kind": "host", "interfaces": {
        "eth0": {"address": "10.0.0.1/24"}}}}})
    assert topo.links == ()
    assert topo.first_address("h1") == "10.0.0.1"


def test_implicit_interfaces_appended_after_declared_in_link_order():
    data = {"nodes": {"h1": {"kind": "host", "interfaces": {"eth5": None}},
                      "br0": {"kind": "bridge", "interfaces": {"p9": {}}}},
            "links": [["br0:p2", "h1:eth0"], ["h1:eth5", "br0:p1"]]}
    topo = parse_topology(data)
    assert [i.name for i in topo.node("h1").interfaces] == ["eth5", "eth0"]
    assert [i.name for i in topo.node("br0").interfaces] == ["p9", "p2", "p1"]
    assert all(i.addresses == () for i in topo.node("br0").interfaces)


def test_hosts_and_first_address():
    data = {"nodes": {
        "h1": {"kind": "host", "interfaces": {"eth0": None, "eth1": {"addresses": [
            "10.0.1.1/24", "10.0.2.1/24"]}}},
        "h2": {"kind": "host", "interfaces": {"eth0": {"address": "10.0.1.2/24"}}},
        "br0": {"kind": "bridge"}}}
    topo = parse_topology(data)
    assert topo.first_address("h1") == "10.0.1.1"  # eth0 has none; eth1's first
    assert topo.first_address(topo.node("h2")) == "10.0.1.2"
    assert topo.first_address("br0") is None
    assert topo.hosts() == {"h1": "10.0.1.1", "h2": "10.0.1.2"}
    with pytest.raises(KeyError):
        topo.node("nope")
    with pytest.raises(KeyError):
        topo.first_address("nope")


def test_address_and_linkend_helpers():
    addr = Address("10.0.0.1", 24)
    assert str(addr) == "10.0.0.1/24"
    assert addr.network == ipaddress.IPv4Network("10.0.0.0/24")
    assert str(LinkEnd("h1", "eth0")) == "h1:eth0"


def test_edge_addresses_allowed():
    # /31 and /32 have no network or broadcast address to avoid.
    data = h1(interfaces={"eth0": {"addresses": ["10.0.0.0/31", "10.0.0.3/31", "10.1.1.1/32"]}})
    topo = parse_topology(data)
    assert [str(a) for a in topo.node("h1").interfaces[0].addresses] == [
        "10.0.0.0/31", "10.0.0.3/31", "10.1.1.1/32"]


def test_yaml_merge_key_override(tmp_path):
    topo = load_topology(write(tmp_path, """\
        nodes:
          h1: &d {kind: host, cpus: 4}
          h2: {<<: *d, cpus: 8}
        """))
    assert topo.node("h2").cpus == 8 and topo.node("h2").kind == "host"


# ---- file and YAML errors -------------------------------------------------


def test_bad_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "nodes:\n  h1: {kind: host\n  h2: [\n")
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: line ")
    assert "invalid YAML" in msg


def test_duplicate_yaml_key_is_an_error(tmp_path):
    path = write(tmp_path, "nodes:\n  h1: {kind: host}\n  h1: {kind: router}\n")
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert "line 3" in str(info.value) and "duplicate key 'h1'" in str(info.value)


def test_missing_file_is_topology_error(tmp_path):
    with pytest.raises(TopologyError, match="missing.yaml: file: cannot read"):
        load_topology(tmp_path / "missing.yaml")


def test_yaml_tags_are_not_executed(tmp_path):
    path = write(tmp_path, "nodes: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(TopologyError, match="invalid YAML"):
        load_topology(path)


def test_unquoted_mac_loaded_as_number_gets_hint(tmp_path):
    path = write(tmp_path, """\
        nodes:
          h1: {kind: host, interfaces: {eth0: {mac: 10:20:30:40:50:01}}}
        """)
    with pytest.raises(TopologyError, match="field 'mac': must be a quoted string"):
        load_topology(path)


# ---- top level ------------------------------------------------------------


@pytest.mark.parametrize("data, needles", [
    ([1, 2], ["top level", "mapping"]),
    (None, ["top level", "mapping"]),
    (base(extra=1), ["top level", "unknown key 'extra'"]),
    ({"links": []}, ["field 'nodes'"]),
    (base(nodes={}), ["field 'nodes'"]),
    (base(nodes=["h1"]), ["field 'nodes'"]),
    (base(name="has space"), ["field 'name'"]),
    (base(name=5), ["field 'name'"]),
])
def test_top_level_errors(data, needles):
    error(data, *needles)


# ---- nodes ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["1abc", "a" * 33, "a b", "h:1", "", 7, "h1\n"])
def test_bad_node_name(name):
    error(base(nodes={name: {"kind": "host"}}), f"node {name!r}", "bad node name")


@pytest.mark.parametrize("data, needles", [
    (base(nodes={"h1": None}), ["node 'h1'", "mapping"]),
    (base(nodes={"h1": "host"}), ["node 'h1'", "mapping"]),
    (h1(color="red"), ["node 'h1'", "unknown key 'color'"]),
    (base(nodes={"h1": {"cpus": 2}}), ["node 'h1' field 'kind'"]),
    (h1(kind="switch"), ["node 'h1' field 'kind'", "'switch'"]),
    (h1(cpus=0), ["node 'h1' field 'cpus'"]),
    (h1(cpus=65), ["node 'h1' field 'cpus'"]),
    (h1(cpus=True), ["node 'h1' field 'cpus'"]),
    (h1(cpus="2"), ["node 'h1' field 'cpus'"]),
    (h1(cpus=2.0), ["node 'h1' field 'cpus'"]),
    (h1(interfaces=["eth0"]), ["node 'h1' field 'interfaces'"]),
    (h1(routes={"dst": "default"}), ["node 'h1' field 'routes'"]),
    (h1(sysctls=["a"]), ["node 'h1' field 'sysctls'"]),
    (h1(sysctls={"net.x": [1]}), ["node 'h1' field 'sysctls'", "net.x"]),
    (h1(sysctls={"net x": 1}), ["node 'h1' field 'sysctls'"]),
    # The node's kernel would refuse them at boot: the file is refused instead.
    (h1(sysctls={"net.ipv4.nope": 1}), ["node 'h1' field 'sysctls'", "net.ipv4.nope: no such"]),
    (h1(sysctls={"net.ipv4.ip_default_ttl": 0}), ["net.ipv4.ip_default_ttl: invalid value 0"]),
    (h1(sysctls={"net.ipv4.ip_default_ttl": "abc"}), ["ip_default_ttl: invalid value"]),
    (h1(sysctls={"net.ipv4.ip_local_port_range": "2000 1000"}), ["ip_local_port_range"]),
    (h1(sysctls={"net.ipv4.tcp_congestion_control": "vegas"}), ["'vegas' is not available"]),
    (h1(sysctls={"net.ipv4.conf.eth0.nope": 1}), ["net.ipv4.conf.eth0.nope: no such"]),
])
def test_node_errors(data, needles):
    error(data, *needles)


def test_sysctls_a_kernel_takes_pass_the_check():
    topo = parse_topology(h1(sysctls={"net.ipv4.conf.eth0.arp_ignore": 1,
                                      "net.ipv4.ip_local_port_range": "1024 65000",
                                      "net.ipv4.tcp_congestion_control": "reno"}))
    assert dict(topo.node("h1").sysctls)["net.ipv4.conf.eth0.arp_ignore"] == 1


def test_cpus_bounds_accepted():
    for cpus in (1, 64):
        assert parse_topology(h1(cpus=cpus)).node("h1").cpus == cpus


def test_bridge_may_not_have_routes():
    data = base()
    data["nodes"]["br0"]["routes"] = [{"dst": "default", "dev": "p1"}]
    error(data, "node 'br0' field 'routes'", "bridge")


# ---- interfaces -----------------------------------------------------------


@pytest.mark.parametrize("ifname", ["0eth", "a" * 16, "eth 0", "eth:0", "eth/0", 5, "eth0\n"])
def test_bad_interface_name(ifname):
    error(h1(interfaces={ifname: None}), "node 'h1'", f"interface {ifname!r}", "bad interface name")


def test_longest_interface_name_allowed():
    name = "e" * 15
    assert parse_topology(h1(interfaces={name: None})).node("h1").interfaces[0].name == name


def test_lo_reserved():
    error(h1(interfaces={"lo": None}), "node 'h1' interface 'lo'", "reserved")


@pytest.mark.parametrize("settings, field", [
    ({"address": "10.0.0.1"}, "address"),            # no prefix
    ({"address": "10.0.0.256/24"}, "address"),
    ({"address": "10.0.0.1/33"}, "address"),
    ({"address": "fe80::1/64"}, "address"),
    ({"address": "10.0.0.1/0"}, "address"),
    ({"address": "10.0.0.0/24"}, "address"),         # network address
    ({"address": "10.0.0.255/24"}, "address"),       # broadcast address
    ({"address": "10.0.0.3/30"}, "address"),
    ({"address": "224.0.0.1/24"}, "address"),
    ({"address": 167772161}, "address"),
    ({"addresses": ["10.0.0.1/24", "bad"]}, "addresses"),
    ({"addresses": "10.0.0.1/24"}, "addresses"),
    ({"address": "10.0.0.1/24", "addresses": []}, "addresses"),
    ({"mtu": 67}, "mtu"),
    ({"mtu": 65536}, "mtu"),
    ({"mtu": "1500"}, "mtu"),
    ({"mtu": False}, "mtu"),
    ({"mac": "03:00:00:00:00:01"}, "mac"),           # multicast bit set
    ({"mac": "00:00:00:00:00:00"}, "mac"),
    ({"mac": "02:00:00:00:00"}, "mac"),
    ({"mac": "02-00-00-00-00-01"}, "mac"),
    ({"mac": "zz:00:00:00:00:01"}, "mac"),
])
def test_interface_field_errors(settings, field):
    error(eth0(**settings), f"node 'h1' interface 'eth0' field '{field}'")


def test_interface_settings_errors():
    error(eth0(speed=10), "node 'h1' interface 'eth0'", "unknown key 'speed'")
    data = base()
    data["nodes"]["h1"]["interfaces"]["eth0"] = "10.0.0.1/24"
    error(data, "node 'h1' interface 'eth0'", "mapping")


def test_mac_normalised_to_lowercase():
    topo = parse_topology(eth0(mac="02:AB:00:00:00:01"))
    assert topo.node("h1").interfaces[0].mac == "02:ab:00:00:00:01"


def test_duplicate_address_names_both_places():
    data = base()
    data["nodes"]["h2"] = {"kind": "host", "interfaces": {"eth3": {"address": "10.0.0.1/16"}}}
    error(data, "node 'h2' interface 'eth3' field 'address'",
          "10.0.0.1", "node 'h1' interface 'eth0'")


def test_duplicate_address_on_same_interface():
    error(eth0(addresses=["10.0.0.1/24", "10.0.0.1/25"]), "field 'addresses'", "already used")


def test_duplicate_mac():
    data = eth0(mac="02:00:00:00:00:01")
    data["nodes"]["h1"]["interfaces"]["eth1"] = {"mac": "02:00:00:00:00:01"}
    error(data, "node 'h1' interface 'eth1' field 'mac'", "node 'h1' interface 'eth0'")


# ---- routes ---------------------------------------------------------------


@pytest.mark.parametrize("route, where", [
    ({"dst": "10.9.0.1/16", "via": "10.0.0.254"}, "route 0 field 'dst'"),  # host bits set
    ({"dst": "nowhere", "via": "10.0.0.254"}, "route 0 field 'dst'"),
    ({"dst": "fe80::/64", "via": "10.0.0.254"}, "route 0 field 'dst'"),
    ({"via": "10.0.0.254"}, "route 0 field 'dst'"),
    ({"dst": "default", "via": "10.0.0.999"}, "route 0 field 'via'"),
    ({"dst": "default", "via": "10.0.0.0/24"}, "route 0 field 'via'"),
    ({"dst": "default", "via": 167772161}, "route 0 field 'via'"),
    ({"dst": "default"}, "route 0"),
    ({"dst": "default", "dev": "eth9"}, "route 0 field 'dev'"),
    ({"dst": "default", "dev": ["eth0"]}, "route 0 field 'dev'"),
    ({"dst": "default", "via": "10.0.0.254", "metric": -1}, "route 0 field 'metric'"),
    ({"dst": "default", "via": "10.0.0.254", "metric": "1"}, "route 0 field 'metric'"),
    ({"dst": "default", "via": "10.0.0.254", "metric": True}, "route 0 field 'metric'"),
    ({"dst": "default", "via": "10.0.0.254", "table": 5}, "unknown key 'table'"),
    ("default via 10.0.0.254", "route 0"),
])
def test_route_errors(route, where):
    error(h1(routes=[route]), "node 'h1'", where)


def test_route_dst_normalised():
    data = h1(routes=[{"dst": "10.9.0.0/16", "dev": "eth0"}, {"dst": "10.1.2.3", "dev": "eth0"}])
    routes = parse_topology(data).node("h1").routes
    assert [r.dst for r in routes] == ["10.9.0.0/16", "10.1.2.3/32"]


def test_second_route_error_names_its_index():
    error(h1(routes=[{"dst": "default", "dev": "eth0"}, {"dst": "default"}]), "node 'h1' route 1")


# ---- links ----------------------------------------------------------------


@pytest.mark.parametrize("links, needles", [
    ({"a": 1}, ["top level field 'links'"]),
    ([["h1:eth0", "br9:p1"]], ["link 0 [h1:eth0, br9:p1]: unknown node 'br9'"]),
    ([["h1:eth0"]], ["link 0 field 'endpoints'"]),
    ([["h1:eth0", "br0:p1", "br0:p2"]], ["link 0 field 'endpoints'"]),
    ([{"type": "veth"}], ["link 0 field 'endpoints'"]),
    (["h1:eth0 br0:p1"], ["link 0", "mapping with 'endpoints'"]),
    ([["h1-eth0", "br0:p1"]], ["link 0 [h1-eth0, br0:p1] field 'endpoints'", "'h1-eth0'"]),
    ([["h1:eth0:x", "br0:p1"]], ["link 0 [h1:eth0:x, br0:p1] field 'endpoints'"]),
    ([["h1:eth0", 5]], ["link 0 field 'endpoints'", "5"]),
    ([["h1:eth0", "br0:0p"]], ["link 0 [h1:eth0, br0:0p] field 'endpoints'", "bad interface name"]),
    ([["h1:eth0", "br0:lo"]], ["link 0 [h1:eth0, br0:lo] field 'endpoints'", "reserved"]),
    ([["h1:eth0", "h1:eth0"]], ["link 0 [h1:eth0, h1:eth0] field 'endpoints'", "itself"]),
    ([{"endpoints": ["h1:eth0", "br0:p1"], "type": "vxlan"}],
     ["link 0 [h1:eth0, br0:p1] field 'type'", "'vxlan'"]),
    ([{"endpoints": ["h1:eth0", "br0:p1"], "mtu": 9000}], ["link 0", "unknown key 'mtu'"]),
    ([["h1:eth0", "br0:p1"], ["br0:p2", "h1:eth0"]],
     ["link 1 [br0:p2, h1:eth0]", "'h1:eth0' is already used by link 0 [h1:eth0, br0:p1]"]),
])
def test_link_errors(links, needles):
    error(base(links=links), *needles)


def test_link_error_message_exact():
    msg = error(base(links=[["h1:eth0", "br0:p1"], ["h1:eth1", "br9:p1"]]))
    assert msg == "topologies/x.yaml: link 1 [h1:eth1, br9:p1]: unknown node 'br9'"


def test_link_between_two_interfaces_of_one_node_allowed():
    topo = parse_topology(base(links=[["h1:eth0", "h1:eth1"]]))
    assert topo.links[0].b == LinkEnd("h1", "eth1")


# ---- the error type -------------------------------------------------------


def test_error_is_value_error_with_parts_and_one_line_even_for_newlines():
    with pytest.raises(ValueError) as info:
        parse_topology(base(nodes={"bad\nname": {"kind": "host"}}), "f.yaml")
    e = info.value
    assert isinstance(e, TopologyError)
    assert (e.path, e.where) == ("f.yaml", "node 'bad\\nname'")
    assert "\n" not in str(e)


def test_topology_is_frozen():
    topo = parse_topology(base())
    with pytest.raises(AttributeError):
        topo.name = "x"
    assert isinstance(topo, Topology)


# ---- phys links: queues ---------------------------------------------------


def phys_base(queues_a=4, queues_b=None, ltype="phys"):
    a = {"address": "10.0.0.1/24"}
    if queues_a is not None:
        a["queues"] = queues_a
    b = {"address": "10.0.0.2/24"}
    if queues_b is not None:
        b["queues"] = queues_b
    return {"nodes": {"h1": {"kind": "host", "cpus": 4, "interfaces": {"eth0": a}},
                      "h2": {"kind": "host", "interfaces": {"eth0": b}}},
            "links": [{"endpoints": ["h1:eth0", "h2:eth0"], "type": ltype}]}


def test_phys_link_queues_parse():
    topo = parse_topology(phys_base(4, 2))
    assert topo.links[0].type == "phys"
    assert topo.node("h1").interfaces[0].queues == 4
    assert topo.node("h2").interfaces[0].queues == 2
    topo = parse_topology(phys_base(None))
    assert topo.node("h1").interfaces[0].queues is None       # the NIC's default (1)


@pytest.mark.parametrize("q", [0, 65, "4", 2.0, True, -1])
def test_phys_link_bad_queues(q):
    error(phys_base(q), "node 'h1' interface 'eth0' field 'queues'", "1..64")


def test_queues_need_a_phys_link():
    error(phys_base(4, ltype="veth"), "link 0 [h1:eth0, h2:eth0] field 'type'",
          "'h1:eth0' sets 'queues'", "type: phys")


def test_phys_pair_topology_file():
    from pathlib import Path
    topo = load_topology(Path(__file__).parent.parent / "topologies" / "phys-pair.yaml")
    assert [n.cpus for n in topo.nodes] == [4, 4]
    assert topo.links[0].type == "phys"
    assert [n.interfaces[0].queues for n in topo.nodes] == [4, 4]


def test_tap_links(tmp_path):
    from emu.topology import TopologyError, parse_topology
    base = {"nodes": {"h1": {"kind": "host", "interfaces": {"eth0": {"address": "198.18.0.2/24"}}}}}
    t = parse_topology(dict(base, links=[{"endpoints": ["h1:eth0"], "type": "tap",
                                          "tap": "emutap0", "netns": "lab"}]), "x.yaml")
    link = t.links[0]
    assert (link.type, link.tap, link.netns, link.b) == ("tap", "emutap0", "lab", None)
    assert [str(e) for e in link.ends()] == ["h1:eth0"]
    bad = [({"endpoints": ["h1:eth0", "h1:eth1"], "type": "tap", "tap": "t0"}, "one endpoint"),
           ({"endpoints": ["h1:eth0"], "type": "tap"}, "field 'tap'"),
           ({"endpoints": ["h1:eth0"], "type": "tap", "tap": "bad name!"}, "field 'tap'"),
           ({"endpoints": ["h1:eth0"], "type": "tap", "tap": "t0", "netns": "a/b"}, "field 'netns'"),
           ({"endpoints": ["h1:eth0", "h2:eth0"], "tap": "t0"}, "only a link of type: tap")]
    for link, needle in bad:
        with pytest.raises(TopologyError) as e:
            parse_topology(dict(base, nodes=dict(base["nodes"], h2={"kind": "host"}), links=[link]),
                           "x.yaml")
        assert needle in str(e.value) and "x.yaml: link 0" in str(e.value), str(e.value)
