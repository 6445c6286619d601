"""A bounded, seeded frame fuzzer: `make fuzz` (python -m emu.fuzz).

Random and mutated Ethernet, ARP, IPv4, ICMP, UDP, TCP and fragment frames,
behind valid and invalid wire headers, pushed onto the wires of a host, a
bridge and a router (topologies/fuzz-target.yaml) as their peers would send
them. Prints frames per second, whether every node survived, each node's
memory before and after, and whether h1 still pings h2 across the bridge and
the router. The same seed sends the same frames.

    python -m emu.fuzz [--frames 30000] [--seed 1] [--topology FILE]
"""
import argparse
import os
import pathlib
import random
import struct
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _csum(data):
    from .kernel.hdr.checksum import ip_compute_csum
    return ip_compute_csum(data)


def _ipv4(rng, src, dst, proto, payload, frag=0, opts=b""):
    ihl = 5 + len(opts) // 4
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, rng.choice([0, 0x10, 0xb8]),
                                ihl * 4 + len(payload), rng.getrandbits(16), frag,
                                rng.choice([1, 2, 64, 255]), proto, 0, src, dst)) + opts
    hdr[10:12] = _csum(bytes(hdr)).to_bytes(2, "big")
    return bytes(hdr) + payload


def _l4(rng, proto, src, dst):
    if proto == 1:
        body = bytearray(struct.pack("!BBHHH", rng.choice([0, 3, 8, 11, 12, 5, 13, 255]),
                                     rng.choice([0, 1, 3, 4]), 0, rng.getrandbits(16), 1)
                         + rng.randbytes(rng.choice([0, 8, 28, 56, 1400])))
        body[2:4] = _csum(bytes(body)).to_bytes(2, "big")
        return bytes(body)
    if proto == 17:
        data = rng.randbytes(rng.choice([0, 1, 32, 512, 1472]))
        body = bytearray(struct.pack("!HHHH", rng.getrandbits(16), rng.choice([7, 9, 53, 0, 65535]),
                                     8 + len(data), 0) + data)
    else:
        flags = rng.choice([0x02, 0x12, 0x10, 0x04, 0x11, 0x18, 0x03, 0x3F, 0x00, 0x14])
        opts = rng.choice([b"", b"\x02\x04\x05\xb4", b"\x01\x01\x04\x02", b"\x08\x0a" + bytes(8),
                           b"\x03\x03\x07\x00", rng.randbytes(rng.choice([4, 8, 40]))])
        opts += b"\x00" * (-len(opts) % 4)
        opts = opts[:40]
        body = bytearray(struct.pack("!HHIIBBHHH", rng.getrandbits(16), rng.choice([22, 80, 7, 9]),
                                     rng.getrandbits(32), rng.getrandbits(32),
                                     (5 + len(opts) // 4) << 4, flags, rng.getrandbits(16), 0, 0)
                         + opts + rng.randbytes(rng.choice([0, 0, 10, 536, 1400])))
    pseudo = src + dst + struct.pack("!BBH", 0, proto, len(body))
    off = 6 if proto == 17 else 16
    body[off:off + 2] = _csum(pseudo + bytes(body)).to_bytes(2, "big")
    return bytes(body)


def make_frame(rng, dst_mac, src_mac, dst_ip, src_ip):
    """One frame: well formed (addressed to the target), then maybe mutated."""
    kind = rng.choice(["arp", "icmp", "udp", "tcp", "frag", "opts", "junk", "vlan"])
    bcast = b"\xff" * 6
    dmac = rng.choice([dst_mac, dst_mac, bcast, b"\x01\x80\xc2\x00\x00\x00", rng.randbytes(6)])
    if kind == "junk":
        return rng.randbytes(rng.choice([0, 1, 13, 14, 15, 60, 1514, 1600]))
    if kind == "arp":
        op = rng.choice([1, 2, 3, 9])
        payload = struct.pack("!HHBBH6s4s6s4s", rng.choice([1, 1, 6]), rng.choice([0x0800, 0x86dd]),
                              rng.choice([6, 6, 0, 255]), rng.choice([4, 4, 16]), op, src_mac,
                              rng.choice([src_ip, dst_ip, b"\x00" * 4, b"\xff" * 4, b"\x7f\0\0\1",
                                          b"\xe0\0\0\1"]),
                              rng.choice([b"\x00" * 6, dst_mac]), rng.choice([dst_ip, src_ip]))
        frame = dmac + src_mac + b"\x08\x06" + payload[:rng.choice([len(payload), 8, 20])]
    else:
        sip = rng.choice([src_ip, src_ip, dst_ip, b"\x7f\x00\x00\x01", b"\xe0\x00\x00\x01",
                          b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", rng.randbytes(4)])
        dip = rng.choice([dst_ip, dst_ip, b"\xff\xff\xff\xff", src_ip, rng.randbytes(4)])
        proto = {"icmp": 1, "udp": 17, "tcp": 6}.get(kind, rng.choice([1, 6, 17, 2, 47, 255]))
        payload = _l4(rng, proto if proto in (1, 6, 17) else 17, sip, dip)
        frag = 0
        opts = b""
        if kind == "frag":
            frag = rng.choice([0x2000, 0x2000 | rng.randrange(1, 8192), rng.randrange(0, 8192),
                               0x4000 | 5, 0x2000 | 8191])
            payload = payload[:rng.choice([8, 16, 64, len(payload)])]
        if kind == "opts":
            opts = rng.choice([b"\x07\x07\x04" + bytes(4) + b"\x01", b"\x44\x0c\x05\x00" + bytes(8),
                               b"\x83\x07\x04" + bytes(4) + b"\x00", b"\x94\x04\x00\x00",
                               b"\x01\x01\x01\x00", rng.randbytes(4), rng.randbytes(8),
                               b"\x07\x00\x00\x00", b"\x44\x02\x00\x00"])
        ip = _ipv4(rng, sip, dip, proto, payload, frag, opts)
        ethertype = b"\x81\x00\x00\x01\x08\x00" if kind == "vlan" else b"\x08\x00"
        frame = dmac + src_mac + ethertype + ip
    # Mutations: none most of the time, else flips, truncation, extension.
    m = rng.random()
    if m < 0.25:
        b = bytearray(frame)
        for _ in range(rng.randrange(1, 6)):
            if b:
                i = rng.randrange(len(b))
                b[i] = rng.getrandbits(8)
        frame = bytes(b)
    elif m < 0.35:
        frame = frame[:rng.randrange(0, len(frame) + 1)]
    elif m < 0.4:
        frame += rng.randbytes(rng.randrange(1, 200))
    return frame


def wire_message(rng, frames):
    """A wire message; now and then with hostile emu_wire_hdr fields."""
    from .kernel.hdr.virtio_net import emu_wire_hdr
    if rng.random() < 0.9:
        from .wire.zwire import encode_frames
        return encode_frames(frames)
    out = bytearray()
    for f in frames:
        out += emu_wire_hdr.pack(rng.getrandbits(8), rng.choice([0, 1, 3, 4, 5, 255]),
                                 rng.choice([0, 1, 536, 1448, 65535]),
                                 rng.choice([len(f), len(f), len(f) + 10, 0]), rng.getrandbits(32))
        out += f
    if rng.random() < 0.3:
        out = out[:rng.randrange(0, len(out) + 1)]
    return bytes(out)


def _targets(lab):
    """(node, ifname, wire endpoint into it, its MAC, its IP, a neighbour's MAC and IP)."""
    out = []
    for end in ("h1:eth0", "br0:p1", "r1:eth1"):
        node, _, ifname = end.partition(":")
        link = lab.link(end)
        mine = "a" if (link.a.node, link.a.ifname) == (node, ifname) else "b"
        row = lab.node(node).call("link_show", name=ifname)[0]
        mac = bytes.fromhex(row["mac"].replace(":", ""))
        peer = link.b if mine == "a" else link.a
        prow = lab.node(peer.node).call("link_show", name=peer.ifname)[0]
        pmac = bytes.fromhex(prow["mac"].replace(":", ""))
        topo = lab.topology
        ip = topo.first_address(node) or topo.first_address("h1")
        pip = topo.first_address(peer.node) or topo.first_address("r1")
        out.append((node, "ipc://%s/w%d%s" % (lab.sock_dir, link.index, mine), mac,
                    bytes(map(int, ip.split("."))), pmac, bytes(map(int, pip.split(".")))))
    return out


def _ring(lab, target):
    """(frames waiting in the target's RX ring, frames it dropped there)."""
    node = target[0]
    ifname = {"h1": "eth0", "br0": "p1", "r1": "eth1"}.get(node, "eth0")
    try:
        st = lab.node(node).ctl.call("ethtool_stats", dev=ifname, timeout=10)
    except OSError:
        return 0, 0
    return st.get("rx_ring_pending", 0), st.get("rx_missed_errors", 0)


def _drain(lab, targets, timeout=30.0):
    """Wait until the wires and rings of the targets are empty (a node that
    died or hangs ends the wait at the timeout; the report says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if all(_ring(lab, t)[0] == 0 for t in targets):
            return


def _rss(pid):
    import psutil
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return 0


def run(frames=30000, seed=1, topology=None, out=print):
    """Fuzz a lab; returns True if every node survived and h1 still pings h2."""
    import zmq
    import emu
    rng = random.Random(seed)
    topology = topology or ROOT / "topologies" / "fuzz-target.yaml"
    with emu.launch(topology) as lab:
        pids = lab.pids()
        first = lab.node("h1").ping("h2", count=1, interval=0.2)
        mem0 = {n: _rss(p) for n, p in pids.items()}
        targets = _targets(lab)
        ctx = zmq.Context.instance()
        socks = []
        for t in targets:
            s = ctx.socket(zmq.PUSH)
            s.setsockopt(zmq.LINGER, 5000)
            s.setsockopt(zmq.SNDHWM, 100000)
            s.connect(t[1])
            socks.append(s)
        sent = 0
        t0 = time.monotonic()
        mark = 0
        while sent < frames:
            i = rng.randrange(len(targets))
            node, _, mac, ip, pmac, pip = targets[i]
            batch = [make_frame(rng, mac, pmac, ip, pip) for _ in range(rng.choice([1, 4, 16]))]
            socks[i].send(wire_message(rng, batch))
            sent += len(batch)
            if sent - mark >= 1000:        # pace: let the rings drain, so the stack sees it all
                mark = sent
                _drain(lab, targets)
        for s in socks:
            s.close()
        _drain(lab, targets)
        push_s = time.monotonic() - t0
        missed = sum(_ring(lab, t)[1] for t in targets)
        alive = {n: _same(lab, n) for n in pids}
        oops = {}
        for n in pids:
            try:
                oops[n] = lab.node(n).ctl.call("info", timeout=5)["oops"]
            except OSError:
                oops[n] = None
        mem1 = {n: _rss(p) for n, p in pids.items()}
        # Forged ARP legitimately poisons neighbour caches (Linux updates an
        # entry from any ARP naming its address): forget what the fuzz taught.
        for n in ("h1", "r1", "h2"):
            lab.node(n).call("neigh_flush")
        r = lab.node("h1").ping("h2", count=3, interval=0.2, timeout=2)
        out("fuzz: %d frames (seed %d) in %.1f s: %.0f frames/s into the kernels "
            "(%d dropped at a full RX ring)" % (sent, seed, push_s, sent / push_s, missed))
        for n in pids:
            out("  %-4s %s  oops %s  rss %.1f -> %.1f MiB" % (
                n, "alive" if alive[n] else "DEAD", oops[n], mem0[n] / 2**20, mem1[n] / 2**20))
        out("  ping h1 -> h2 across br0 and r1 after the fuzz: %d/3 (before: %d/1)" % (
            r.received, first.received))
        return all(alive.values()) and not any(oops.values()) and r.received >= 2


def _same(lab, name):
    try:
        return lab.node(name).ctl.call("ping", timeout=5)["pid"] == lab.node(name).pid
    except OSError:
        return False


def main(argv=None):
    ap = argparse.ArgumentParser(prog="emu-fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--topology")
    a = ap.parse_args(argv)
    return 0 if run(a.frames, a.seed, a.topology) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    sys.exit(main())
