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


def inet_diag_dump(net, info=False):
    """Rows as ss prints them (recv_q/send_q with ss's meaning for listeners)."""
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
                         tcp_get_info(sk) if info and sk.sk_state != TCP_LISTEN else None))
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
