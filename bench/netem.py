"""netem's costs and accuracy, as ratios measured in the same run (veth-bridge lab).

    python bench/netem.py [--mb 20] [--rate-mb 12] [--pings 30]

1. TCP goodput h1 -> h2 through `netem delay 0` on h1:eth0, as a ratio to
   the goodput with no qdisc (the cost of the qdisc path and its timer).
2. TCP goodput through `netem rate 50mbit`, as a ratio to 50 Mbit/s (the
   headers count in the rate, so about 1448/1514 = 0.96 is ideal), with TSO
   off on h1 (MSS-sized packets), then with TSO on for information: there
   one 64 KiB super-packet takes 10.5 ms at 50 Mbit/s, and while the peer's
   window stays at 64 KiB TCP cannot keep two in flight.
3. The median extra ping RTT with `netem delay 20ms` on h1:eth0, as a ratio
   to 20 ms (1.0 is ideal; the timer wakeup adds a little).
"""
import argparse
import pathlib
import statistics
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tcp_throughput import tcp_goodput_mbps  # noqa: E402


def median_rtt(lab, count):
    h1 = lab.node("h1")
    h1.ping("h2", count=1, interval=0.1)
    r = h1.ping("h2", count=count, interval=0.05)
    return statistics.median(r.rtts)


def main(argv=None):
    import emu
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=20, help="MiB per goodput run (no qdisc, delay 0)")
    p.add_argument("--rate-mb", type=int, default=12, help="MiB through rate 50mbit")
    p.add_argument("--runs", type=int, default=2, help="runs per goodput figure; the best counts")
    p.add_argument("--pings", type=int, default=30)
    a = p.parse_args(argv)
    with emu.launch(ROOT / "topologies" / "veth-bridge.yaml") as lab:
        port = [6000]

        def best(mb):
            out = 0.0
            for _ in range(a.runs):
                port[0] += 1
                out = max(out, tcp_goodput_mbps(lab, mb, port[0])[0])
            return out

        plain = best(a.mb)
        with lab.netem("h1:eth0", delay="0ms"):
            zero = best(a.mb)
        print("tcp goodput, no qdisc:           %8.1f Mbit/s" % plain)
        print("tcp goodput, netem delay 0:      %8.1f Mbit/s  ratio %.3f (vs no qdisc)"
              % (zero, zero / plain))
        for tso in (False, True):
            lab.node("h1").call("features_set", dev="eth0", **{"tx-tcp-segmentation": tso,
                                                                 "tx-generic-segmentation": tso})
            with lab.netem("h1:eth0", rate="50mbit"):
                port[0] += 1
                rated = tcp_goodput_mbps(lab, a.rate_mb, port[0])[0]
            print("tcp goodput, netem rate 50mbit:  %8.1f Mbit/s  ratio %.3f (vs 50 Mbit/s)%s"
                  % (rated, rated / 50.0, "  [TSO on: window-limited, see above]" if tso
                     else "  [TSO off]"))
        base = median_rtt(lab, a.pings)
        with lab.netem("h1:eth0", delay="20ms"):
            delayed = median_rtt(lab, a.pings)
        extra = delayed - base
        print("ping median rtt %.3f ms, with netem delay 20ms %.3f ms: extra %.3f ms  "
              "ratio %.3f (vs 20 ms)" % (base, delayed, extra, extra / 20.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
