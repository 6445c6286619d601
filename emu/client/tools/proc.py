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
        special = {"/proc/net/arp": lambda: arp(ctl), "/proc/net/route": lambda: route(ctl),
                   "/proc/net/tcp": lambda: _sock_lines(ctl, "tcp"),
                   "/proc/net/udp": lambda: _sock_lines(ctl, "udp"),
                   "/proc/net/raw": lambda: _sock_lines(ctl, "raw")}
        if path in special:
            for line in special[path]():
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


_TCP_STATES = {"ESTAB": 1, "SYN-SENT": 2, "SYN-RECV": 3, "FIN-WAIT-1": 4, "FIN-WAIT-2": 5,
               "TIME-WAIT": 6, "UNCONN": 7, "CLOSE-WAIT": 8, "LAST-ACK": 9, "LISTEN": 10,
               "CLOSING": 11}


def _hex_ip(addr):
    """An IPv4 address as Linux prints a __be32 with %08X on x86 (little-endian)."""
    import socket
    import struct
    try:
        return "%08X" % struct.unpack("<I", socket.inet_aton(addr or "0.0.0.0"))[0]
    except OSError:
        return "00000000"


def _sock_lines(ctl, proto):
    """tcp4_seq_show / udp4_format_sock / raw_sock_seq_show: one row per socket."""
    if proto == "tcp":
        head = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
                "retrnsmt   uid  timeout inode")
        lines = ["%-149s" % head]
    else:
        head = ("   sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
                "retrnsmt   uid  timeout inode ref pointer drops")
        lines = ["%-127s" % head]
    i = 0
    for r in ctl.call("sock_diag", info=False):
        if r["proto"] != proto:
            continue
        local, peer = r["local"], r["peer"]
        st = _TCP_STATES.get(r["state"], 7)
        addrs = "%s:%04X %s:%04X %02X %08X:%08X 00:00000000 00000000" % (
            _hex_ip(local[0]), int(local[1] or 0), _hex_ip(peer[0]), int(peer[1] or 0), st,
            r.get("send_q", 0), r.get("recv_q", 0))
        if proto == "tcp":
            line = "%4d: %s %5u %8d %lu 1 0000000000000000 100 0 0 10 0" % (
                i, addrs, 0, 0, r.get("id", 0))
            lines.append("%-149s" % line)
        else:
            line = "%5d: %s %5u %8d %lu 2 0000000000000000 0" % (i, addrs, 0, 0, r.get("id", 0))
            lines.append("%-127s" % line)
        i += 1
    return lines


def route(ctl):
    """fib_route_seq_show: the main table's unicast routes, 127 columns each."""
    lines = ["%-127s" % "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"]
    for r in ctl.call("route_show", table="main"):
        if r.get("type", "unicast") != "unicast":
            continue
        dst = r["dst"]
        if dst == "default":
            net, plen = "0.0.0.0", 0
        elif "/" in dst:
            net, p = dst.split("/")
            plen = int(p)
        else:
            net, plen = dst, 32
        if ":" in net:
            continue
        mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
        import socket
        import struct
        mask_s = _hex_ip(socket.inet_ntoa(struct.pack("!I", mask)))
        flags = 0x1 | (0x2 if r.get("via") else 0)
        line = "%s\t%s\t%s\t%04X\t%d\t%u\t%d\t%s\t%d\t%u\t%u" % (
            r["dev"], _hex_ip(net), _hex_ip(r.get("via")), flags, 0, 0, r.get("metric") or 0,
            mask_s, 0, 0, 0)
        lines.append("%-127s" % line)
    return lines
