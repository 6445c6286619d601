"""The framing on a node's system call socket (a Unix stream socket).

Every message, both ways, is one frame: a fixed little-endian header whose
first field is the frame's total length, then the call's own fields, then
raw payload bytes. The data-bearing hot calls (sendto, recvfrom) have binary
layouts with the payload carried as is (no msgpack around it); every other
call is a msgpack map inside an OP_MSGPACK frame, as before.

Requests (client -> node), REQ header: length, op, flags, id, fd
  OP_MSGPACK   payload: msgpack {"id", "call", "args", "timeout"?}
  OP_SENDTO    SENDTO fields (msg flags, ip, port, has address, timeout), data
  OP_RECVFROM  RECVFROM fields (size, msg flags, timeout)
  OP_NAME      getsockname (flags N_SOCK) or getpeername (N_PEER) of fd: no
               fields. Answered at once, before the rest of a batch (it
               neither waits nor changes anything).
  F_NOREPLY    a send whose outcome the node vouched for (see SEND CREDIT):
               no reply unless... none at all.

Replies (node -> client), REP header: length, kind, flags, id
  R_MSGPACK    payload: msgpack {"id", "ok" | "err" | "timeout"}
  R_INT        INT fields: the value and the send credit's epoch (0: none)
  R_ERR        ERR fields: errno
  R_TIMEOUT    the client's timeout ran out
  R_DATA       DATA fields (msg flags, port, address length), address, data
  R_DATAV      a recvfrom with F_READAHEAD on a UDP socket: the datagram asked
               for and up to READAHEAD_MAX more already queued (see READ-AHEAD)
  R_ADDR       ADDR fields: an AF_INET address (ip, port), OP_NAME's answer
               (another family's comes as R_MSGPACK)

SEND CREDIT. A successful UDP sendto (or raw, without IP_HDRINCL) may come back with a credit: the node's
send epoch at the time. While the epoch in the node's shared page
(<node>.sys.epoch, 8 bytes) is unchanged, another sendto on that descriptor
to the same address, with the same flags and at most as many bytes, cannot
fail synchronously, so the client sends it with F_NOREPLY and returns at
once. The node bumps the epoch on anything that could change that outcome
(any state-changing call, any control request, a route or socket error).

READ-AHEAD. A blocking-style UDP recvfrom (no flags) may take, in the same
call, the datagrams already queued behind the one it returns; the client
hands them out on its next recvfrom calls, and its poll counts them as
readable. Emulation note: they leave the socket's receive queue (and its
rcvbuf accounting) at once, as they would have a moment later for a reader
that keeps up; a socket error raised meanwhile (the epoch moved) is still
reported first, by SO_ERROR, as __skb_try_recv_datagram reports it first.
"""
import struct

REQ = struct.Struct("<IBBHIi")        # length, op, flags, pad, id, fd
REQ_LEN = REQ.size
SENDTO = struct.Struct("<iIHBxd")     # msg flags, ip, port, has address, timeout (NaN: none)
RECVFROM = struct.Struct("<iid")      # size, msg flags, timeout (NaN: none)
REP = struct.Struct("<IBBHI")         # length, kind, flags, pad, id
REP_LEN = REP.size
INT = struct.Struct("<qQ")            # value, credit epoch
ERR = struct.Struct("<i")
DATA = struct.Struct("<iHB")          # msg flags, port, address length (255: no address)
DATAV = struct.Struct("<HQ")          # R_DATAV: records, epoch; then per record REC, address, data
REC = struct.Struct("<iHBI")          # msg flags, port, address length, data length
EPOCH = struct.Struct("<Q")
ADDR = struct.Struct("<IH")           # ip, port

OP_MSGPACK, OP_SENDTO, OP_RECVFROM, OP_NAME = 0, 1, 2, 3
OP_LAST = OP_NAME
# Virtual time (client/vsched.py): a program's last frame before it waits
# says so, with F_IDLE on a call or an OP_IDLE frame of its own (no reply);
# the node ends each batch of replies to such a program with R_EOB. The
# virtual-time node takes both off before the frames reach the kernel's
# reader (vruntime.py), so OP_LAST does not include OP_IDLE.
OP_IDLE = 4
N_SOCK, N_PEER = 0, 1                 # OP_NAME's flags
F_NOREPLY = 1
F_READAHEAD = 2                       # recvfrom: take what else is queued too (R_DATAV)
F_IDLE = 4                            # virtual time: the program waits after this frame
R_MSGPACK, R_INT, R_ERR, R_TIMEOUT, R_DATA, R_DATAV, R_ADDR = 0, 1, 2, 3, 4, 5, 6
R_EOB = 7                             # virtual time: the end of a batch of replies (no id)
READAHEAD_MAX = 256                   # datagrams one recvfrom may take ahead
READAHEAD_SIZE = 65535                # ... each whole (the caller's size applies when it reads it)

MAX_FRAME = 64 * 1024 * 1024          # a longer frame is garbage: the connection is dropped
NO_ADDR = 255
NAN = float("nan")

# Prebuilt: header + fields in one pack each.
SENDTO_HDR = struct.Struct("<IBBHIi" + "iIHBxd")
RECVFROM_REQ = struct.Struct("<IBBHIi" + "iid")
INT_REP = struct.Struct("<IBBHI" + "qQ")
ERR_REP = struct.Struct("<IBBHI" + "i")
DATA_HDR = struct.Struct("<IBBHI" + "iHB")
ADDR_REP = struct.Struct("<IBBHI" + "IH")


# ip_to_int's answers: a node answers getsockname with the same few addresses
# again and again, and a client sends to the same few; parsing one costs about
# as much as the rest of a no-op call's Python. Bounded: cleared when full.
_IP_INT: dict = {}
_IP_INT_MAX = 1024


def ip_to_int(host):
    """A dotted quad -> int, or None (the node's own parser decides anything else)."""
    v = _IP_INT.get(host)
    if v is None:
        v = _ip_to_int(host)
        if v is not None:
            if len(_IP_INT) >= _IP_INT_MAX:
                _IP_INT.clear()
            _IP_INT[host] = v
    return v


def _ip_to_int(host):
    parts = host.split(".")
    if len(parts) != 4:
        return None
    v = 0
    for p in parts:
        if not p.isdigit() or len(p) > 3:
            return None
        b = int(p)
        if b > 255:
            return None
        v = (v << 8) | b
    return v


# int_to_ip's answers, for the same reason (getsockname's reply). Bounded.
_IP_STR: dict = {}


def int_to_ip(v):
    s = _IP_STR.get(v)
    if s is None:
        s = "%d.%d.%d.%d" % (v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255)
        if len(_IP_STR) >= _IP_INT_MAX:
            _IP_STR.clear()
        _IP_STR[v] = s
    return s


def epoch_path(sys_path):
    return sys_path + ".epoch"
