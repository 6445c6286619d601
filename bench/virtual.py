"""Virtual time against wall time, as ratios measured in the same run.

    python bench/virtual.py [--idle 3600] [--pings 100] [--mb 5]

Three virtual-time labs (README: deterministic labs), each timed on the
host's clock while it runs on its own:
  idle       a program that sleeps --idle seconds: only timers are due
  ping-pong  ping -c --pings -i 1 h1 -> h2 across br0 (one exchange a second)
  bulk TCP   --mb MiB h1 -> h2 across br0 with 5 ms of netem delay each way
Prints each one's virtual seconds, wall seconds and their ratio (how many
seconds of the lab's time pass per second of the host's).
"""
import argparse
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DELAYED = """\
name: vt-bulk
nodes:
  h1: {kind: host, interfaces: {eth0: {address: 10.0.0.1/24}}}
  h2: {kind: host, interfaces: {eth0: {address: 10.0.0.2/24}}}
  br0: {kind: bridge}
links:
  - endpoints: [h1:eth0, br0:p1]
    netem: {delay: 5ms}
  - endpoints: [h2:eth0, br0:p2]
    netem: {delay: 5ms}
"""


def _sleep(secs):
    import time
    time.sleep(secs)


def _pinger(count, sys_path):
    from emu.client.tools import ping
    lines = []
    ping.main(["-c", str(count), "-i", "1", "10.0.0.2"], sys_path, lambda h: h, lines.append,
              lines.append)
    return lines[-1]


def _sink(port, n):
    import socket
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    c, _ = srv.accept()
    got = 0
    while got < n:
        chunk = c.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    return got


def _source(dst, port, n):
    import socket
    import time
    while True:                      # the sink may not listen yet
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.connect((dst, port))
            break
        except ConnectionRefusedError:
            s.close()
            time.sleep(0.01)
    s.sendall(b"x" * n)
    s.close()


def timed(lab, start):
    """Run start() (which returns futures) and wait: (virtual s, wall s)."""
    v0, w0 = lab.vtime(), time.monotonic()
    with lab.hold():
        futs = start()
    for f in futs:
        f.result(timeout=600)
    return lab.vtime() - v0, time.monotonic() - w0


def main(argv=None):
    import emu
    p = argparse.ArgumentParser()
    p.add_argument("--idle", type=float, default=3600.0, help="seconds the idle program sleeps")
    p.add_argument("--pings", type=int, default=100)
    p.add_argument("--mb", type=int, default=5)
    a = p.parse_args(argv)
    rows = []
    bridge = ROOT / "topologies" / "veth-bridge.yaml"
    with emu.launch(bridge, clock="virtual", seed=1) as lab:
        rows.append(("idle (sleep %.0f s)" % a.idle,) + timed(
            lab, lambda: [lab.node("h1").run(_sleep, a.idle)]))
    with emu.launch(bridge, clock="virtual", seed=1) as lab:
        rows.append(("ping-pong (%d pings, 1 s apart)" % a.pings,) + timed(
            lab, lambda: [lab.node("h1").run(_pinger, a.pings, lab.node("h1").sys_endpoint)]))
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "vt-bulk.yaml"
        path.write_text(DELAYED)
        n = a.mb << 20
        with emu.launch(path, clock="virtual", seed=1) as lab:
            rows.append(("bulk TCP (%d MiB, 20 ms RTT)" % a.mb,) + timed(
                lab, lambda: [lab.node("h2").run(_sink, 5001, n),
                              lab.node("h1").run(_source, "10.0.0.2", 5001, n)]))
    print("%-36s %12s %10s %14s" % ("virtual-time lab", "virtual s", "wall s", "virtual/wall"))
    for name, v, w in rows:
        print("%-36s %12.3f %10.2f %14.2f" % (name, v, w, v / w if w else float("inf")))


if __name__ == "__main__":
    main()
