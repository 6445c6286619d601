"""ss: sockets of a node, printed as iproute2's ss prints them."""
import argparse


def _addr(a, numeric=True):
    ip, port = a
    return "%s:%s" % ("*" if ip == "0.0.0.0" and port == 0 else ip, port if port else "*")


def _info_line(i):
    """The -i line: cc, wscale, rto, rtt, mss, cwnd, ssthresh, bytes and segments."""
    parts = []
    opts = i.get("options", [])
    if "ts" in opts:
        parts.append("ts")
    if "sack" in opts:
        parts.append("sack")
    if i.get("congestion"):
        parts.append(i["congestion"])
    if "wscale" in opts:
        parts.append("wscale:%d,%d" % (i["snd_wscale"], i["rcv_wscale"]))
    parts.append("rto:%g" % (i["rto"] / 1000.0))
    parts.append("rtt:%.3f/%.3f" % (i["rtt"] / 1000.0, i["rttvar"] / 1000.0))
    parts.append("ato:%g" % (i["ato"] / 1000.0))
    parts.append("mss:%d" % i["snd_mss"])
    parts.append("rcvmss:%d" % i["rcv_mss"])
    parts.append("advmss:%d" % i["advmss"])
    parts.append("cwnd:%d" % i["snd_cwnd"])
    if i["snd_ssthresh"] < 0x7FFFFFFF:
        parts.append("ssthresh:%d" % i["snd_ssthresh"])
    for k in ("bytes_sent", "bytes_retrans", "bytes_acked", "bytes_received", "segs_out",
              "segs_in", "data_segs_out", "data_segs_in"):
        if i.get(k):
            parts.append("%s:%d" % (k, i[k]))
    if i.get("retrans") or i.get("total_retrans"):
        parts.append("retrans:%d/%d" % (i["retrans"], i["total_retrans"]))
    if i.get("unacked"):
        parts.append("unacked:%d" % i["unacked"])
    parts.append("rcv_space:%d" % i["rcv_space"])
    parts.append("snd_wnd:%d" % i["snd_wnd"])
    return "\t " + " ".join(parts)


def main(argv, ctl, out=print):
    p = argparse.ArgumentParser(prog="ss", add_help=True)
    for flag, dest in (("-t", "tcp"), ("-u", "udp"), ("-w", "raw"), ("-a", "all"), ("-l", "listening"),
                       ("-n", "numeric"), ("-p", "processes"), ("-i", "info"), ("-H", "noheader")):
        p.add_argument(flag, dest=dest, action="store_true")
    # ss accepts combined flags such as -tanp: split them into single ones
    flat = []
    for a in argv:
        if a.startswith("-") and not a.startswith("--") and len(a) > 2:
            flat.extend("-" + c for c in a[1:])
        else:
            flat.append(a)
    a = p.parse_args(flat)
    protos = {n for n, on in (("tcp", a.tcp), ("udp", a.udp), ("raw", a.raw)) if on} or {"tcp", "udp", "raw"}
    rows = ctl.call("sock_diag", info=a.info)
    owners = ctl.call("sock_owners") if a.processes else {}
    shown = []
    for r in rows:
        if r["proto"] not in protos:
            continue
        listening = r["state"] in ("LISTEN", "UNCONN")
        if a.listening and not listening:
            continue
        if not a.listening and not a.all and listening:
            continue
        shown.append(r)
    show_netid = len(protos) > 1
    if not a.noheader:
        out(("Netid " if show_netid else "") +
            "State      Recv-Q Send-Q        Local Address:Port         Peer Address:Port Process")
    for r in shown:
        proc = ""
        own = owners.get(str(r["id"]))
        if own:
            proc = 'users:(("python",pid=%s,fd=%d))' % (own[0], own[1])
        line = ("%-5s " % r["proto"] if show_netid else "") + "%-10s %-6d %-6d %26s %25s %s" % (
            r["state"], r["recv_q"], r["send_q"], _addr(r["local"]),
            _addr(r["peer"]) if r["peer"][1] else "0.0.0.0:*", proc)
        out(line.rstrip())
        if a.info and r.get("info"):
            out(_info_line(r["info"]))
    return 0
