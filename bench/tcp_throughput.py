"""TCP goodput h1 -> h2 across br0 (the veth-bridge lab), against limits
measured in the same run (issue 14's two TCP targets):

* offloads on: goodput as a ratio to the raw wire throughput of 64 KiB
  ZeroMQ messages (goal: at least 0.2);
* offloads off: data segments per second (h1's OutSegs) as a ratio to the
  raw wire's rate of 1,514-byte frames sent one per message (goal: at least
  0.1).

    python bench/tcp_throughput.py [--mb-off 20] [--mb-on 100] [--runs 2]

Prints one line per measurement: the two raw limits, then TCP with
TSO/GSO/GRO off and on (ethtool -K on every veth of the path).
"""
import argparse
import multiprocessing
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from emu.kernel.hdr.virtio_net import EMU_WIRE_HDR_LEN  # noqa: E402
from syscall_path import raw_frame_rate  # noqa: E402


def _raw_sink(endpoint, total, ready):
    import zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.PULL)
    s.bind(endpoint)
    ready.set()
    n = 0
    while n < total:
        n += len(s.recv(copy=False))
    s.close(0)
    ctx.term()


def raw_wire_mbps(seconds=2.0, size=65536):
    """Bytes through one ipc PUSH -> PULL pair between two processes (the emu wire's transport)."""
    import zmq
    d = tempfile.mkdtemp(prefix="emu-bench-")
    ep = "ipc://%s/raw" % d
    msg = os.urandom(size)
    # calibrate: how many messages in `seconds`
    count = 20000
    ready = multiprocessing.Event()
    p = multiprocessing.Process(target=_raw_sink, args=(ep, count * size, ready))
    p.start()
    ready.wait(10)
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.connect(ep)
    t0 = time.perf_counter()
    for _ in range(count):
        s.send(msg, copy=False)
    p.join(120)
    dt = time.perf_counter() - t0
    s.close(0)
    ctx.term()
    shutil.rmtree(d, ignore_errors=True)   # the ipc socket file stays behind
    return count * size * 8 / dt / 1e6


def tcp_goodput_mbps(lab, mbytes, port):
    """(Mbit/s, segments/s sent by h1, retransmitted segments, RX ring drops) of one transfer."""
    h1, h2 = lab.node("h1"), lab.node("h2")
    tcp0 = h1.counters()["snmp"]["Tcp"]
    retrans0, out0 = tcp0["RetransSegs"], tcp0["OutSegs"]
    missed0 = _rx_missed(lab)
    srv = h2.socket(2, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    srv.settimeout(10)
    cli = h1.socket(2, 1)
    cli.settimeout(60)
    cli.connect(("10.0.0.2", port))
    conn, _ = srv.accept()
    conn.settimeout(60)
    data = os.urandom(1 << 20)
    total = mbytes << 20
    result = {}

    def sink():
        n = 0
        while n < total:
            d = conn.recv(1 << 20)
            if not d:
                break
            n += len(d)
        result["n"] = n

    t = threading.Thread(target=sink)
    t0 = time.perf_counter()
    t.start()
    for _ in range(mbytes):
        cli.sendall(data)
    t.join(300)
    dt = time.perf_counter() - t0
    for s in (cli, conn, srv):
        s.close()
    assert result.get("n") == total, result
    # This run's own (the counters are the node's, since the lab started).
    tcp1 = h1.counters()["snmp"]["Tcp"]
    retrans = tcp1["RetransSegs"] - retrans0
    missed = {k: v - missed0.get(k, 0) for k, v in _rx_missed(lab).items()}
    return (total * 8 / dt / 1e6, (tcp1["OutSegs"] - out0) / dt, retrans,
            {k: v for k, v in missed.items() if v})


def _rx_missed(lab):
    """rx_missed_errors of every veth of the path (frames a full RX ring dropped)."""
    out = {}
    for n, dev in (("h1", "eth0"), ("br0", "p1"), ("br0", "p2"), ("h2", "eth0")):
        st = lab.node(n).call("ethtool_stats", dev=dev)
        out["%s:%s" % (n, dev)] = st.get("rx_missed_errors", 0)
    return out


def main(argv=None):
    import emu
    p = argparse.ArgumentParser()
    p.add_argument("--mb-off", type=int, default=20, help="MiB to send with offloads off")
    p.add_argument("--mb-on", type=int, default=100, help="MiB to send with offloads on")
    p.add_argument("--runs", type=int, default=2, help="runs per mode; the best is printed")
    p.add_argument("--raw-seconds", type=float, default=2.0)
    a = p.parse_args(argv)
    raw = raw_wire_mbps(a.raw_seconds)
    print("raw wire (ZeroMQ ipc, 64 KiB messages): %8.1f Mbit/s" % raw)
    # An MTU frame with the wire's per-frame header, one per ZeroMQ message.
    raw_fps = raw_frame_rate(count=100000, size=1514 + EMU_WIRE_HDR_LEN)
    print("raw wire (ZeroMQ ipc, 1,514 B frames, one per message): %8.0f frames/s" % raw_fps)
    with emu.launch(ROOT / "topologies" / "veth-bridge.yaml") as lab:
        devs = (("h1", ["eth0"]), ("h2", ["eth0"]), ("br0", ["p1", "p2"]))
        port = 5000
        for name, on, mb in (("gso/gro off", False, a.mb_off), ("gso/gro on", True, a.mb_on)):
            # ethtool -K DEV tso|gso|gro on|off on every veth of the path
            for n, names in devs:
                for dev in names:
                    lab.node(n).call("features_set", dev=dev, **{
                        "tx-tcp-segmentation": on, "tx-generic-segmentation": on, "rx-gro": on})
            runs = []
            for _ in range(a.runs):
                port += 1
                runs.append(tcp_goodput_mbps(lab, mb, port))
            mbps, segs, retrans, missed = max(runs, key=lambda r: r[0])
            if on:
                what = "ratio %.4f of the raw wire's Mbit/s" % (mbps / raw)
            else:
                what = "%.0f segments/s, ratio %.4f of the raw wire's 1,514 B frames/s" % (segs, segs / raw_fps)
            print("tcp h1 -> h2 via br0, %-12s %8.1f Mbit/s  %s  (retransmitted segments: %d;"
                  " every run: %s; rx ring drops: %s)"
                  % (name + ":", mbps, what, retrans, ", ".join(str(r[2]) for r in runs),
                     ", ".join("%s %d" % kv for r in runs for kv in r[3].items()) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
