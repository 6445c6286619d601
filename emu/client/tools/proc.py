"""cat /proc/net/{softnet_stat,snmp,netstat,dev,arp,route,tcp,udp,raw,packet,sockstat}:
Linux's layouts."""
from . import proc_fields as F


def softnet_stat(c):
    lines = []
    for s in c["softnet_stat"]:
        cols = [s["processed"], s["dropped"], s["time_squeeze"], 0, 0, 0, 0, 0,
                s["cpu_collision"], s["received_rps"], s["flow_limit_count"],
                s["backlog_len"], s["cpu"]]
        lines.append(" ".join("%08x" % (v & 0xFFFFFFFF) for v in cols))
    return lines


def _pairs(lines, group, fields, m):
    """Two lines per group, names then values, every field of Linux's list (0 if emu has none)."""
    lines.append("%s: %s" % (group, " ".join(fields)))
    lines.append("%s: %s" % (group, " ".join(str(m.get(f, 0)) for f in fields)))


def _icmpmsg(m):
    """icmpmsg_put: In types then Out types, ascending, only those seen, 16 to a line pair."""
    keys = sorted(m, key=lambda k: (k.startswith("Out"), int(k.split("Type")[1])))
    keys = [k for k in keys if m[k]]
    lines = []
    for i in range(0, len(keys), 16):
        chunk = keys[i:i + 16]
        lines.append("IcmpMsg: %s" % " ".join(chunk))
        lines.append("IcmpMsg: %s" % " ".join(str(m[k]) for k in chunk))
    return lines


def snmp(c):
    """snmp_seq_show: Ip, Icmp, IcmpMsg, Tcp, Udp, UdpLite, each field in the kernel's order."""
    mib = c["snmp"]
    lines = []
    ip = dict(mib.get("Ip", {}))
    _pairs(lines, "Ip", F.IP_FIELDS, ip)
    _pairs(lines, "Icmp", F.ICMP_FIELDS, mib.get("Icmp", {}))
    lines.extend(_icmpmsg(mib.get("IcmpMsg", {})))
    tcp = dict(mib.get("Tcp", {}))
    tcp.setdefault("RtoAlgorithm", 1)
    tcp.setdefault("RtoMin", 200)
    tcp.setdefault("RtoMax", 120000)
    tcp.setdefault("MaxConn", -1)
    _pairs(lines, "Tcp", F.TCP_FIELDS, tcp)
    _pairs(lines, "Udp", F.UDP_FIELDS, mib.get("Udp", {}))
    _pairs(lines, "UdpLite", F.UDPLITE_FIELDS, {})
    return lines


def netstat(c):
    """netstat_seq_show: TcpExt, IpExt (and MPTcpExt, all zero: emu has no MPTCP)."""
    mib = c["snmp"]
    lines = []
    _pairs(lines, "TcpExt", F.TCPEXT_FIELDS, mib.get("TcpExt", {}))
    _pairs(lines, "IpExt", F.IPEXT_FIELDS, mib.get("IpExt", {}))
    _pairs(lines, "MPTcpExt", F.MPTCPEXT_FIELDS, {})
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


def _is_dir(path, ctl):
    """A directory of the emulated procfs: /, /proc, /proc/net, /proc/sys and the
    directories the sysctl names make (/proc/sys/net/ipv4, ...)."""
    p = path.rstrip("/") or "/"
    if p in ("/", "/proc", "/proc/net", "/proc/sys"):
        return True
    if not p.startswith("/proc/sys/"):
        return False
    prefix = p[len("/proc/sys/"):].replace("/", ".") + "."
    try:
        return any(name.startswith(prefix) for name in ctl.call("sysctl_get"))
    except OSError:
        return False


def cat(argv, ctl, out=print, err=None):
    """cat FILE...: the file's lines to out, cat's error lines to err (stderr)."""
    err = err or out
    status = 0
    for path in argv:
        if _is_dir(path, ctl):
            err("cat: %s: Is a directory" % path)      # read(2) of a directory: EISDIR
            status = 1
            continue
        special = {"/proc/net/arp": lambda: arp(ctl), "/proc/net/route": lambda: route(ctl),
                   "/proc/net/tcp": lambda: _sock_lines(ctl, "tcp"),
                   "/proc/net/udp": lambda: _sock_lines(ctl, "udp"),
                   "/proc/net/raw": lambda: _sock_lines(ctl, "raw"),
                   "/proc/net/packet": lambda: packet(ctl),
                   "/proc/net/sockstat": lambda: sockstat(ctl)}
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
                err("cat: %s: No such file or directory" % path)
                status = 1
                continue
            out(_fmt(v))
            continue
        fn = FILES.get(path)
        if fn is None:
            err("cat: %s: No such file or directory" % path)
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


def packet(ctl):
    """packet_seq_show: %pK prints 0 to an unprivileged reader; emu prints the socket id."""
    lines = ["sk               RefCnt Type Proto  Iface R Rmem   User   Inode"]
    for r in ctl.call("packet_diag"):
        lines.append("%016x %-6d %-4d %04x   %-5d %1d %-6u %-6u %-6u" % (
            r["id"] & 0xFFFFFFFFFFFFFFFF, r["refcnt"], r["type"], r["proto"], r["ifindex"],
            r["running"], r["rmem"], r["uid"], r["ino"]))
    return lines


def sockstat(ctl):
    """sockstat_seq_show (net/ipv4/proc.c) and sockets_used."""
    s = ctl.call("sockstat")
    return ["sockets: used %d" % s["sockets_used"],
            "TCP: inuse %d orphan %d tw %d alloc %d mem %d" % (
                s["tcp_inuse"], s["tcp_orphan"], s["tcp_tw"], s["tcp_alloc"], s["tcp_mem"]),
            "UDP: inuse %d mem %d" % (s["udp_inuse"], s["udp_mem"]),
            "UDPLITE: inuse 0",
            "RAW: inuse %d" % s["raw_inuse"],
            "FRAG: inuse %d memory %d" % (s["frag_inuse"], s["frag_memory"])]


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
