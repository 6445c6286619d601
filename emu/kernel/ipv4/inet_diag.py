"""Socket listing for ss: every TCP, UDP and raw socket with its queues.

Linux: net/ipv4/inet_diag.c, net/ipv4/tcp_diag.c, net/ipv4/udp_diag.c
"""
from ..hdr.ip import inet_ntoa
from .tcp import TCP_LISTEN, TCP_STATE_NAMES, TCP_TIME_WAIT, tcp_get_info

UDP_STATES = {1: "ESTAB", 7: "UNCONN"}
SS_STATE = {"ESTABLISHED": "ESTAB", "SYN-SENT": "SYN-SENT", "SYN-RECV": "SYN-RECV",
            "FIN-WAIT-1": "FIN-WAIT-1", "FIN-WAIT-2": "FIN-WAIT-2", "TIME-WAIT": "TIME-WAIT",
            "CLOSE": "UNCONN", "CLOSE-WAIT": "CLOSE-WAIT", "LAST-ACK": "LAST-ACK",
            "LISTEN": "LISTEN", "CLOSING": "CLOSING"}


def _row(sk, proto, state, recv_q, send_q, info=None):
    return {"proto": proto, "state": state, "recv_q": recv_q, "send_q": send_q,
            "local": [inet_ntoa(sk.inet_rcv_saddr or sk.inet_saddr), sk.inet_sport or sk.inet_num],
            "peer": [inet_ntoa(sk.inet_daddr), sk.inet_dport], "id": id(sk), "info": info}


def sk_diag_ext(sk, row, now):
    """What ss -e, -m and -o ask for: INET_DIAG_SKMEMINFO (sk_get_meminfo), the
    shutdown bits, and the timer inet_diag_msg_common_fill reports
    (idiag_timer 1 retransmit, 2 keepalive, 3 timewait, 4 zero-window probe)."""
    tp = sk.proto_data if row["proto"] == "tcp" else None
    queued = getattr(tp, "write_queue_bytes", 0) if tp is not None else 0
    row["skmem"] = [sk.sk_rmem_alloc, sk.sk_rcvbuf, sk.sk_wmem_alloc, sk.sk_sndbuf, 0,
                    queued, 0, 0, sk.sk_drops]
    row["shutdown"] = sk.sk_shutdown
    timer = None
    if tp is not None:
        if sk.sk_state == TCP_TIME_WAIT:
            t = getattr(tp, "tw_timer", None)
            if t is not None and t.pending:
                timer = [3, t.expires, 0]
        else:
            rt, kt = getattr(tp, "retransmit_timer", None), getattr(tp, "keepalive_timer", None)
            if rt is not None and rt.pending:
                kind = 4 if getattr(tp, "timer_kind", 0) == 3 else 1      # ICSK_TIME_PROBE0
                timer = [kind, rt.expires, tp.probes_out if kind == 4 else tp.retransmits]
            elif kt is not None and kt.pending:
                timer = [2, kt.expires, tp.probes_out]
    if timer is not None:
        timer[1] = max(0, int(round((timer[1] - now) * 1000)))
    row["timer"] = timer
    return row


def inet_diag_dump(net, info=False, ext=False):
    """Rows as ss prints them (recv_q/send_q with ss's meaning for listeners);
    ext adds memory, shutdown and timer (ss -e -m -o)."""
    rows = _inet_diag_dump(net, info)
    if ext:
        socks = {id(sk): sk for sk in _all_socks(net)}
        now = net.clock()
        for r in rows:
            sk = socks.get(r["id"])
            if sk is not None:
                sk_diag_ext(sk, r, now)
    return rows


def _all_socks(net):
    for tbl in ("tcp_ehash",):
        yield from net.proto[tbl].values()
    for tbl in ("tcp_lhash", "tcp_bhash", "udp_table", "raw_hash"):
        for lst in net.proto[tbl].values():
            yield from lst


def sockstat_seq_show(net):
    """/proc/net/sockstat's numbers (net/ipv4/proc.c): sockets in use per protocol."""
    rows = _inet_diag_dump(net, False)
    tcp = [r for r in rows if r["proto"] == "tcp"]
    tw = sum(1 for r in tcp if r["state"] == "TIME-WAIT")
    packet = len(net.proto.get("packet_sklist", ()))
    return {"sockets_used": len(rows) - tw + packet,
            "tcp_inuse": len(tcp) - tw, "tcp_orphan": 0, "tcp_tw": tw, "tcp_alloc": len(tcp) - tw,
            "tcp_mem": 0, "udp_inuse": sum(1 for r in rows if r["proto"] == "udp"), "udp_mem": 0,
            "raw_inuse": sum(1 for r in rows if r["proto"] == "raw"),
            "frag_inuse": len(net.proto.get("ipq", ())), "frag_memory": net.proto.get("ipfrag_mem", 0)}


def _inet_diag_dump(net, info=False):
    rows = []
    seen = set()
    tcp_socks = list(net.proto["tcp_ehash"].values())
    for lst in net.proto["tcp_lhash"].values():
        tcp_socks.extend(lst)
    for lst in net.proto["tcp_bhash"].values():
        tcp_socks.extend(lst)
    for sk in tcp_socks:
        if id(sk) in seen or not hasattr(sk, "sk_state") or sk.sk_state == 12:
            continue                      # request socks are counted by their listener
        seen.add(id(sk))
        tp = sk.proto_data
        state = SS_STATE.get(TCP_STATE_NAMES.get(sk.sk_state, ""), "UNKNOWN")
        if sk.sk_state == TCP_LISTEN:
            recv_q, send_q = len(tp.accept_queue), tp.max_ack_backlog
        elif sk.sk_state == TCP_TIME_WAIT:
            recv_q = send_q = 0           # inet_twsk_diag_fill: a timewait sock holds no data
        else:
            recv_q = (tp.rcv_nxt - tp.copied_seq) & 0xFFFFFFFF
            send_q = (tp.write_seq - tp.snd_una) & 0xFFFFFFFF
        rows.append(_row(sk, "tcp", state, recv_q, send_q,
                         # inet_twsk_diag_fill gives no INET_DIAG_INFO: ss -i shows none
                         tcp_get_info(sk) if info and sk.sk_state not in (TCP_LISTEN, TCP_TIME_WAIT)
                         else None))
    for lst in net.proto["udp_table"].values():
        for sk in lst:
            if id(sk) in seen:
                continue
            seen.add(id(sk))
            rows.append(_row(sk, "udp", UDP_STATES.get(sk.sk_state, "UNCONN"),
                             sk.sk_rmem_alloc, sk.sk_wmem_alloc))
    for lst in net.proto["raw_hash"].values():
        for sk in lst:
            if id(sk) in seen:
                continue
            seen.add(id(sk))
            r = _row(sk, "raw", "UNCONN", sk.sk_rmem_alloc, 0)
            r["local"][1] = sk.inet_num
            rows.append(r)
    return rows
