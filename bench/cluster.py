"""A tcp:// CURVE wire against an ipc:// one, as ratios measured in the same run.

    python bench/cluster.py [--mb 20] [--pings 100]

The veth-bridge lab twice: once with its two links over ipc:// (the default),
once with `transport: tcp` (ZeroMQ over TCP on loopback, CURVE-encrypted and
authenticated: what links between machines use). Prints TCP goodput h1 -> h2
(best of --runs) and the median ping RTT h1 -> h2 of each, and the tcp wire's
figures as ratios to the ipc wire's.

Then a program's syscalls through a machine's syscall relay (what a program
on another host than its node's uses, emu/cluster_relay.py) against the
node's own Unix socket, in one lab: the same goodput and RTT, as ratios.
"""
import argparse
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from netem import median_rtt  # noqa: E402
from tcp_throughput import tcp_goodput_mbps  # noqa: E402


def measure(path, mb, runs, pings, port):
    import emu
    with emu.launch(path) as lab:
        good = 0.0
        for i in range(runs):
            good = max(good, tcp_goodput_mbps(lab, mb, port + i)[0])
        return good, median_rtt(lab, pings)


def measure_relay(path, mb, runs, pings, port):
    """(direct, relayed): goodput and RTT from the same lab, programs on its
    nodes' Unix sockets, then through a SysRelay over tcp:// CURVE."""
    import os

    import emu
    from emu.cluster_relay import SysRelay, write_token
    from emu.wire.curve import lab_keys
    with emu.launch(path) as lab:
        out = []
        for relayed in (False, True):
            if relayed:
                keys = lab_keys()
                # The nodes' sockets are in the lab's socket directory (tmpfs
                # when there is one), not necessarily its run directory.
                relay = SysRelay(lab.sock_dir, "127.0.0.1", keys, nodes=lab._lab.nodes)
                token = write_token(lab.sock_dir)
                for info in lab._lab.nodes.values():
                    info.update({"relay": relay.endpoint, "curve": list(keys),
                                 "machine_token": token})
                os.environ["EMU_CLUSTER_REMOTE"] = "1"
            good = 0.0
            for i in range(runs):
                good = max(good, tcp_goodput_mbps(lab, mb, port + 10 * relayed + i)[0])
            out.append((good, median_rtt(lab, pings)))
        os.environ.pop("EMU_CLUSTER_REMOTE", None)
        return out


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=20, help="MiB per goodput run")
    p.add_argument("--runs", type=int, default=2, help="goodput runs per wire; the best counts")
    p.add_argument("--pings", type=int, default=100)
    a = p.parse_args(argv)
    text = (ROOT / "topologies" / "veth-bridge.yaml").read_text()
    tcp_text = text.replace("  - [h1:eth0, br0:p1]", "  - {endpoints: [h1:eth0, br0:p1], transport: tcp}")
    tcp_text = tcp_text.replace("  - [h2:eth0, br0:p2]", "  - {endpoints: [h2:eth0, br0:p2], transport: tcp}")
    assert tcp_text.count("transport: tcp") == 2, "topologies/veth-bridge.yaml changed its links"
    with tempfile.TemporaryDirectory() as d:
        tcp_path = pathlib.Path(d) / "veth-bridge-tcp.yaml"
        tcp_path.write_text(tcp_text)
        ipc = measure(ROOT / "topologies" / "veth-bridge.yaml", a.mb, a.runs, a.pings, 6100)
        tcp = measure(tcp_path, a.mb, a.runs, a.pings, 6200)
    print("wire            tcp goodput h1->h2   ping RTT median")
    print("ipc://          %8.1f Mbit/s      %7.3f ms" % (ipc[0], ipc[1]))
    print("tcp:// CURVE    %8.1f Mbit/s      %7.3f ms" % (tcp[0], tcp[1]))
    print("tcp/ipc         goodput ratio %.3f     RTT ratio %.3f" % (tcp[0] / ipc[0], tcp[1] / ipc[1]))
    direct, relay = measure_relay(ROOT / "topologies" / "veth-bridge.yaml", a.mb, a.runs, a.pings,
                                  6300)
    print()
    print("program syscalls       tcp goodput h1->h2   ping RTT median")
    print("node's Unix socket     %8.1f Mbit/s      %7.3f ms" % direct)
    print("syscall relay (CURVE)  %8.1f Mbit/s      %7.3f ms" % relay)
    print("relay/direct           goodput ratio %.3f     RTT ratio %.3f"
          % (relay[0] / direct[0], relay[1] / direct[1]))


if __name__ == "__main__":
    main()
