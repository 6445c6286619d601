"""`make demo`: launch the default lab, ping across it, show counters, tear down."""
import os
import time

import psutil

from .exec import run_command
from .lab import launch


def demo(topology="topologies/veth-bridge.yaml"):
    t0 = time.monotonic()
    print("== emu demo: %s" % topology)
    with launch(topology) as lab:
        print("lab %s up in %.2f s, run dir %s" % (lab.name, time.monotonic() - t0, lab.run_dir))
        for n in lab.nodes():
            print("  %-4s %-7s pid %d" % (n.name, n.info["kind"], n.pid))
        st = lab._lab.state("running")
        hosts = [n.name for n in lab.topology.nodes if n.kind == "host"]
        a, b = hosts[0], hosts[1]
        for src, dst in ((a, b), (b, a)):
            print("\n$ emu exec %s -- ping -c 3 -i 0.2 %s" % (src, dst))
            run_command(st, src, ["ping", "-c", "3", "-i", "0.2", dst])
        print("\n$ emu exec %s -- ip neigh" % a)
        run_command(st, a, ["ip", "neigh"])
        for n in lab.topology.nodes:
            if n.kind == "bridge":
                print("\n$ emu exec %s -- bridge fdb show" % n.name)
                run_command(st, n.name, ["bridge", "fdb", "show"])
        print("\nper-node counters:")
        for n in lab.nodes():
            c = n.counters()
            icmp = c["snmp"]["Icmp"]
            devs = ", ".join("%s rx %d tx %d" % (d, s["rx_packets"], s["tx_packets"])
                             for d, s in c["dev"].items() if d != "lo")
            line = "  %-4s %s | Icmp InEchos %d OutEchoReps %d InEchoReps %d" % (
                n.name, devs, icmp["InEchos"], icmp["OutEchoReps"], icmp["InEchoReps"])
            for br, bc in c["bridge"].items():
                line += " | %s learned %d forwarded %d flooded %d" % (
                    br, bc["learned"], bc["forwarded"], bc["flooded"])
            sn = c["softnet_stat"]
            line += " | softnet processed %s" % "/".join(str(s["processed"]) for s in sn)
            print(line)
        pids = list(lab.pids().values())
        run_dir = lab.run_dir
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    print("\nlab torn down: %d of %d node processes left, run dir %s" % (
        len(alive), len(pids), "still there" if os.path.exists(run_dir) else "removed"))
    return 0 if not alive and not os.path.exists(run_dir) else 1
