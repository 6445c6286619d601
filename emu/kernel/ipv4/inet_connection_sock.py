"""Connection-oriented sockets: ports, the lookup tables, listen and accept.

Linux: net/ipv4/inet_connection_sock.c, net/ipv4/inet_hashtables.c

Three tables per net, as Linux keeps them: the bind hash (port -> sockets
bound to it), the established hash (4-tuple -> socket, including TIME-WAIT
and SYN-RECV request socks) and the listening hash (port -> listeners).
"""
import errno
from collections import deque

from ..core.dev import KernelError
from ..hdr.ip import INADDR_ANY
from .route import RTN_LOCAL, inet_addr_type


def inet_hashinfo_init(net):
    net.proto["tcp_bhash"] = {}      # port -> [sk]
    net.proto["tcp_ehash"] = {}      # (laddr, lport, raddr, rport) -> sk | ReqSock | tw sk
    net.proto["tcp_lhash"] = {}      # port -> [listening sk]


def _ehash_key(sk):
    return (sk.inet_rcv_saddr, sk.inet_num, sk.inet_daddr, sk.inet_dport)


def inet_ehash_insert(sk):
    sk.net.proto["tcp_ehash"][_ehash_key(sk)] = sk


def inet_unhash(sk):
    net = sk.net
    eh = net.proto["tcp_ehash"]
    key = _ehash_key(sk)
    if eh.get(key) is sk:
        del eh[key]
    lst = net.proto["tcp_lhash"].get(sk.inet_num)
    if lst and sk in lst:
        lst.remove(sk)


def inet_put_port(sk):
    """Release the bound port (Linux: when the socket is destroyed)."""
    bh = sk.net.proto["tcp_bhash"]
    lst = bh.get(sk.inet_num)
    if lst and sk in lst:
        lst.remove(sk)
        if not lst:
            del bh[sk.inet_num]


def _bind_conflict(sk, other, addr):
    if other is sk:
        return False
    if other.inet_rcv_saddr and addr and other.inet_rcv_saddr != addr:
        return False
    if sk.sk_bound_dev_if and other.sk_bound_dev_if and sk.sk_bound_dev_if != other.sk_bound_dev_if:
        return False
    if sk.sk_reuseport and other.sk_reuseport:
        return False
    # SO_REUSEADDR: both set and the other is not listening (inet_bind_conflict).
    if sk.sk_reuse and other.sk_reuse and other.sk_state != 10:
        return False
    return True


def inet_ephemeral_port(net, free):
    """The first port of ip_local_port_range, from a random start, for which
    free(port) holds (the search of inet_csk_find_open_port / udp_lib_get_port)."""
    low, high = net.sysctl["net.ipv4.ip_local_port_range"]
    span = high - low + 1
    start = net.rng.get_random_u32_below(span)
    for i in range(span):
        port = low + (start + i) % span
        if free(port):
            return port
    return None


def inet_csk_get_port(sk, port, addr):
    """Bind sk to port (0: an ephemeral one); EADDRINUSE on a conflict."""
    bh = sk.net.proto["tcp_bhash"]
    if port == 0:
        port = inet_ephemeral_port(sk.net, lambda p: not bh.get(p))
        if port is None:
            raise KernelError(errno.EADDRINUSE)
    elif any(_bind_conflict(sk, o, addr) for o in bh.get(port, ())):
        raise KernelError(errno.EADDRINUSE)
    sk.inet_num = port
    sk.inet_sport = port
    bh.setdefault(port, []).append(sk)
    return port


def inet_hash_connect(sk):
    """Pick an ephemeral port whose 4-tuple is free (__inet_hash_connect)."""
    net = sk.net
    if sk.inet_num:
        key = _ehash_key(sk)
        if key in net.proto["tcp_ehash"]:
            raise KernelError(errno.EADDRNOTAVAIL)
        inet_ehash_insert(sk)
        return
    eh = net.proto["tcp_ehash"]
    bh = net.proto["tcp_bhash"]

    def free(port):
        # Not held by a listener or a plain bind, and this 4-tuple unused.
        return not any(o.sk_state == 10 or not o.inet_daddr for o in bh.get(port, ())) and \
            (sk.inet_rcv_saddr, port, sk.inet_daddr, sk.inet_dport) not in eh
    port = inet_ephemeral_port(net, free)
    if port is None:
        raise KernelError(errno.EADDRNOTAVAIL)
    sk.inet_num = sk.inet_sport = port
    bh.setdefault(port, []).append(sk)
    inet_ehash_insert(sk)


def inet_bind_tcp(sk, addr, port):
    """bind() for TCP: our address (or any), and a port nobody conflicts with."""
    net = sk.net
    if addr and inet_addr_type(net, addr) != RTN_LOCAL:
        raise KernelError(errno.EADDRNOTAVAIL)
    if sk.inet_num or sk.sk_state != 7:
        raise KernelError(errno.EINVAL)
    inet_csk_get_port(sk, port, addr)
    sk.inet_rcv_saddr = sk.inet_saddr = addr
    return 0


def inet_csk_listen_start(sk, backlog):
    """listen(): become a listener with a SYN queue and an accept queue."""
    from .tcp import TCP_LISTEN, tcp_set_state
    tp = sk.proto_data
    if not sk.inet_num:
        inet_csk_get_port(sk, 0, sk.inet_rcv_saddr)
    else:
        # Another listener on the same port and address: EADDRINUSE, even with SO_REUSEADDR.
        for o in sk.net.proto["tcp_lhash"].get(sk.inet_num, ()):
            if o is not sk and (not o.inet_rcv_saddr or not sk.inet_rcv_saddr
                                or o.inet_rcv_saddr == sk.inet_rcv_saddr) and \
                    not (o.sk_reuseport and sk.sk_reuseport):
                raise KernelError(errno.EADDRINUSE)
    tp.accept_queue = deque()
    tp.syn_queue = {}
    tp.max_ack_backlog = min(max(0, backlog), sk.net.sysctl["net.core.somaxconn"])
    tcp_set_state(sk, TCP_LISTEN)
    sk.net.proto["tcp_lhash"].setdefault(sk.inet_num, []).append(sk)


def inet_csk_listen_stop(sk):
    """The listener closes: reset what waits in its queues (inet_csk_listen_stop)."""
    from .tcp import tcp_done
    from .tcp_output import tcp_send_active_reset
    tp = sk.proto_data
    for req in list((tp.syn_queue or {}).values()):
        req.drop()
    while tp.accept_queue:
        # Never accepted: abort them with a RST (inet_child_forget -> tcp_disconnect).
        child = tp.accept_queue.popleft()
        tcp_send_active_reset(child)
        tcp_done(child)


def inet_csk_accept_queue_full(sk):
    tp = sk.proto_data
    return len(tp.accept_queue) > tp.max_ack_backlog


def inet_lookup_listener(net, daddr, dport):
    """The listener for a SYN: an exact address beats the wildcard (compute_score)."""
    best = None
    for sk in net.proto["tcp_lhash"].get(dport, ()):
        if sk.inet_rcv_saddr == daddr:
            return sk
        if sk.inet_rcv_saddr == INADDR_ANY and best is None:
            best = sk
    return best
