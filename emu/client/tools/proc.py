"""cat /proc/net/{softnet_stat,snmp,netstat,dev,arp,route}: Linux's layouts."""


def softnet_stat(c):
    lines = []
    for s in c["softnet_stat"]:
        cols = [s["processed"], s["dropped"], s["time_squeeze"], 0, 0, 0, 0, 0,
                s["cpu_collision"], s["received_rps"], s["flow_limit_count"],
                s["backlog_len"], s["cpu"]]
        lines.append(" ".join("%08x" % (v & 0xFFFFFFFF) for v in cols))
    return lines


def snmp(c):
    lines = []
    for group in ("Ip", "Icmp", "IcmpMsg", "Tcp", "Udp"):
        m = c["snmp"].get(group)
        if not m:
            continue
        lines.append("%s: %s" % (group, " ".join(m)))
        lines.append("%s: %s" % (group, " ".join(str(v) for v in m.values())))
    return lines


def netstat(c):
    lines = []
    for group in ("TcpExt", "IpExt"):
        m = c["snmp"].get(group)
        if m:
            lines.append("%s: %s" % (group, " ".join(m)))
            lines.append("%s: %s" % (group, " ".join(str(v) for v in m.values())))
    return lines


def dev(c):
    lines = ["Inter-|   Receive                                                |  Transmit",
             " face |bytes    packets errs drop fifo frame compressed multicast|"
             "bytes    packets errs drop fifo colls carrier compressed"]
    for name, s in c["dev"].items():
        lines.append("%6s: %7d %7d %4d %4d %4d %5d %10d %9d %8d %7d %4d %4d %4d %5d %7d %10d" % (
            name, s["rx_bytes"], s["rx_packets"], s["rx_errors"], s["rx_dropped"],
            s["rx_fifo_errors"], s["rx_frame_errors"], s["rx_compressed"], s["multicast"],
            s["tx_bytes"], s["tx_packets"], s["tx_errors"], s["tx_dropped"], s["tx_fifo_errors"],
            s["collisions"], s["tx_carrier_errors"], s["tx_compressed"]))
    return lines


def arp(ctl):
    lines = ["IP address       HW type     Flags       HW address            Mask     Device"]
    for n in ctl.call("neigh_show"):
        flags = "0x2" if n["state"] not in ("INCOMPLETE", "FAILED") else "0x0"
        lines.append("%-16s 0x1         %-11s %-21s *        %s" % (
            n["dst"], flags, n["lladdr"] or "00:00:00:00:00:00", n["dev"]))
    return lines


FILES = {"/proc/net/softnet_stat": softnet_stat, "/proc/net/snmp": snmp,
         "/proc/net/netstat": netstat, "/proc/net/dev": dev}


def cat(argv, ctl, out=print):
    status = 0
    for path in argv:
        if path == "/proc/net/arp":
            for line in arp(ctl):
                out(line)
            continue
        if path.startswith("/proc/sys/"):
            # A sysctl read as its file: the value alone, as sysctl -n prints it.
            from .sysctl import _fmt
            try:
                v = ctl.call("sysctl_get", name=path[len("/proc/sys/"):].replace("/", "."))
            except OSError:
                out("cat: %s: No such file or directory" % path)
                status = 1
                continue
            out(_fmt(v))
            continue
        fn = FILES.get(path)
        if fn is None:
            out("cat: %s: No such file or directory" % path)
            status = 1
            continue
        for line in fn(ctl.call("counters")):
            out(line)
    return status
