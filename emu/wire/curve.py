"""Wires over TCP, authenticated and encrypted with ZeroMQ's CURVE.

A wire between two machines cannot be an ipc:// path: it is a TCP
connection. Anyone who can reach the port could then push frames into a
node, so such a wire is CURVE (RFC 26 of zeromq.org): the receiving end's
PULL socket is the CURVE server, the sending end's PUSH the client, and both
hold the lab's key pair, generated per lab. The server end checks, through
ZAP (RFC 27), that the client proved the lab's key; a peer with another key
is refused during the handshake, and the refusal is counted on that wire at
both ends (auth_failures), so the lab can say which link failed.

A TCP wire also has a carrier that a cable does not: the connection. The
wire's carrier is up while the sending end's connection to its peer is up
and handshaken, and goes down when it drops (a peer that died, a machine
that went away); ZeroMQ reconnects, and the carrier comes back with it.

Nothing here touches the kernel: the runtime polls the ZAP socket and the
monitors on its NIC thread and turns their answers into carrier changes.
"""
import re
import struct

import zmq
from zmq.utils import z85

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
KEY_LEN = 40                     # a Z85-encoded 32-byte CURVE key

# The monitor events a wire end listens to.
TX_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
             | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
             | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
RX_EVENTS = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
             | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
HANDSHAKE_FAILED = RX_EVENTS

_TCP = re.compile(r"tcp://(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5}|\*)")


def lab_keys():
    """A new key pair for a lab: (public, secret), Z85 text."""
    public, secret = zmq.curve_keypair()
    return public.decode(), secret.decode()


def is_key(v):
    """A Z85 CURVE key as text (what a control request may carry)."""
    if not isinstance(v, str) or len(v) != KEY_LEN:
        return False
    try:
        return len(z85.decode(v.encode())) == 32
    except (ValueError, KeyError):
        return False


def tcp_endpoint(v, bind=False):
    """(host, port) of a tcp://A.B.C.D:PORT endpoint ('*' as port only to bind), or None."""
    m = _TCP.fullmatch(v) if isinstance(v, str) else None
    if m is None:
        return None
    host, port = m.group(1), m.group(2)
    if any(int(o) > 255 for o in host.split(".")):
        return None
    if port == "*":
        return (host, 0) if bind else None
    if not 0 < int(port) < 65536:
        return None
    return host, int(port)


def curve_server(sock, keys, domain):
    """Make sock (a wire's PULL, before bind) a CURVE server checked by ZAP under domain."""
    public, secret = keys
    sock.curve_server = True
    sock.curve_publickey = public.encode()
    sock.curve_secretkey = secret.encode()
    sock.zap_domain = domain.encode()


def curve_client(sock, keys):
    """Make sock (a wire's PUSH, before connect) a CURVE client holding the lab's key."""
    public, secret = keys
    sock.curve_serverkey = public.encode()
    sock.curve_publickey = public.encode()
    sock.curve_secretkey = secret.encode()


class ZapHandler:
    """The node's ZAP handler: a CURVE client must hold the lab's public key.

    Bound before any CURVE server socket, in the same context (ZeroMQ lets
    every connection through unauthenticated when no handler is bound).
    Requests are answered inline by the thread that polls .sock.
    """

    def __init__(self, ctx, public):
        self.sock = ctx.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(ZAP_ENDPOINT)
        self.key = z85.decode(public.encode())
        self.denied: dict[str, int] = {}    # domain (the wire's ifname) -> refusals

    def handle(self):
        """Answer the waiting requests (RFC 27: version, id, domain, address,
        identity, mechanism, credentials...)."""
        while True:
            try:
                req = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(req) < 6:
                self.sock.send_multipart([b"1.0", b"", b"500", b"bad request", b"", b""])
                continue
            version, request_id, domain, _address, _identity, mechanism = req[:6]
            creds = req[6:]
            ok = mechanism == b"CURVE" and len(creds) == 1 and creds[0] == self.key
            if not ok:
                name = domain.decode(errors="replace")
                self.denied[name] = self.denied.get(name, 0) + 1
            self.sock.send_multipart([version, request_id, b"200" if ok else b"400",
                                      b"OK" if ok else b"not this lab's key", b"", b""])

    def close(self):
        self.sock.close(0)


# A monitor message's first frame: the event (u16) and its value (u32),
# native order (zmq_socket_monitor). Read here rather than with pyzmq's
# zmq.utils.monitor, which imports asyncio: 23 ms and about 1 MB more in
# every fork server, whose nodes never use it.
_EVENT = struct.Struct("=HI")


def monitor_events(mon):
    """The monitor events waiting on mon: a list of event numbers."""
    out: list[int] = []
    while True:
        try:
            msg = mon.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return out
        try:
            out.append(_EVENT.unpack_from(msg[0])[0])
        except (struct.error, IndexError):
            continue
