"""A lab's tcp wires (wire/curve.py): which links are TCP, where their ends
bound, and connecting them once both ends have, for orchestrator.Lab."""
import time


def _lab_error(msg):
    from .orchestrator import LabError
    return LabError(msg)


def wire_is_tcp(lab, link):
    """A link over TCP: asked for, or its ends are on two machines."""
    if link.transport == "tcp":
        return True
    if link.b is None or not lab.machines:
        return False
    return lab.placement[link.a.node] != lab.placement[link.b.node]


def wire_bound(lab, batch, replies):
    """Remember where each tcp wire end bound (its port is known only now)."""
    for node, reqs in batch.items():
        for (op, args), res in zip(reqs, replies.get(node, ()), strict=False):
            if op == "wire_attach" and isinstance(res, dict) and \
                    str(res.get("rx", "")).startswith("tcp://"):
                lab.wire_eps[(node, args["ifname"])] = res["rx"]


def wire_connect(lab, timeout=10.0):
    """Connect every tcp wire end to its peer's inbox, then wait for the
    CURVE handshakes: the lab goes on only when each such link has carrier,
    and a refused one is named."""
    ends = []
    batch: dict[str, list] = {}
    for link in lab.topo.links:
        if link.b is None or not wire_is_tcp(lab, link):
            continue
        for me, peer in ((link.a, link.b), (link.b, link.a)):
            if lab.only is not None and me.node not in lab.only:
                continue
            ends.append((link, me))
            batch.setdefault(me.node, []).append(
                ("wire_connect", {"ifname": me.ifname,
                                  "tx": lab.wire_eps[(peer.node, peer.ifname)]}))
    lab._call_many(batch)
    deadline = time.monotonic() + timeout
    while ends:
        wires = {n: lab.ctl[n].call("info").get("wires", {}) for n in {e.node for _, e in ends}}
        waiting = []
        for link, end in ends:
            w = wires[end.node].get(end.ifname, {})
            if w.get("auth_failures"):
                raise _lab_error("%s: link %d [%s, %s]: the tcp wire's CURVE handshake was "
                               "refused at %s (not this lab's key)"
                               % (lab.topo.path, link.index, link.a, link.b, end))
            if not w.get("link_up"):
                waiting.append((link, end))
        ends = waiting
        if ends and time.monotonic() > deadline:
            link, end = ends[0]
            raise _lab_error("%s: link %d [%s, %s]: the tcp wire at %s did not connect within "
                           "%.0f s" % (lab.topo.path, link.index, link.a, link.b, end, timeout))
        if ends:
            time.sleep(0.01)
