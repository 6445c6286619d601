"""The node's system calls in their frames (sysproto.py), the part every
client shares: encoding and decoding a call, the send epoch's page, and
HotCalls, the binary sendto/recvfrom/getsockname with send credit and UDP
read-ahead, and the batch calls sendmmsg/recvmmsg built on them. The
connections that carry the frames are rpc.py's (SyscallClient) and
shim.py's (MuxSyscallClient)."""
import collections
import mmap
import os

import msgpack

from .. import sysproto as P

INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
BIG_REPLY = 65536            # a longer frame is read straight into its own buffer
DATA_HDR = P.REP_LEN + P.DATA.size    # an R_DATA frame up to its address (or its data)
R_BIGDATA = -1               # read_frame's own kind: body is (data bytes, msg flags)


def _i32(v):
    return isinstance(v, int) and INT_MIN <= v <= INT_MAX


def _fast_addr(addr):
    """An AF_INET (dotted quad, port) as (ip int, port) for the binary sendto, else None."""
    if type(addr) is tuple or type(addr) is list:
        if len(addr) == 2:
            host, port = addr
            if type(host) is str and isinstance(port, int) and 0 <= port <= 65535:
                ip = P.ip_to_int(host)
                if ip is not None:
                    return ip, int(port)
    return None


def send_each(send, msgs):
    """sendmmsg(2) over single sends, send(data, address): an error on the
    first message raises it, one on a later message ends the batch; returns
    how many were sent."""
    n = 0
    for data, addr in msgs:
        try:
            send(data, addr)
        except OSError:
            if n == 0:
                raise
            break
        n += 1
    return n


def encode_call(rid, name, args, timeout=None):
    """A msgpack call in its frame."""
    req = {"id": rid, "call": name, "args": list(args)}
    if timeout is not None:
        req["timeout"] = timeout
    body = msgpack.packb(req, use_bin_type=True)
    return P.REQ.pack(P.REQ_LEN + len(body), P.OP_MSGPACK, 0, 0, rid, 0) + body


def decode_reply(kind, body, name="call"):
    """A reply frame's result, or the OSError / TimeoutError it stands for."""
    if kind == P.R_INT:
        return P.INT.unpack_from(body, 0)         # (value, credit epoch)
    if kind == R_BIGDATA:
        data, mflags = body                       # read_frame's: the data as it came
        return data, None, mflags
    if kind == P.R_DATA:
        mflags, port, alen = P.DATA.unpack_from(body, 0)
        off = P.DATA.size
        if alen == P.NO_ADDR:
            addr = None
        else:
            addr = (bytes(body[off:off + alen]).decode(), port)
            off += alen
        return bytes(body[off:]), addr, mflags
    if kind == P.R_DATAV:
        count, epoch = P.DATAV.unpack_from(body, 0)
        off = P.DATAV.size
        recs = []
        for _ in range(count):
            mflags, port, alen, dlen = P.REC.unpack_from(body, off)
            off += P.REC.size
            if alen == P.NO_ADDR:
                addr = None
            else:
                addr = (bytes(body[off:off + alen]).decode(), port)
                off += alen
            recs.append((bytes(body[off:off + dlen]), addr, mflags))
            off += dlen
        return recs, epoch
    if kind == P.R_ERR:
        err = P.ERR.unpack_from(body, 0)[0]
        raise OSError(err, os.strerror(err))
    if kind == P.R_TIMEOUT:
        raise TimeoutError("timed out")
    reply = msgpack.unpackb(body, raw=False)
    if "ok" in reply:
        return reply["ok"]
    if reply.get("timeout"):
        raise TimeoutError("timed out")
    err = reply.get("err", 22)
    raise OSError(err, os.strerror(err))


class EpochPage:
    """The node's send epoch, read from its shared page (sysproto.py); 0 if there is none."""

    def __init__(self, sys_path):
        self.map = None
        try:
            fd = os.open(P.epoch_path(sys_path), os.O_RDONLY)
        except OSError:
            return
        try:
            self.map = mmap.mmap(fd, 8, prot=mmap.PROT_READ)
        except (OSError, ValueError):
            self.map = None
        finally:
            os.close(fd)

    def read(self):
        m = self.map
        return 0 if m is None else P.EPOCH.unpack_from(m, 0)[0]


MSG_PEEK, MSG_TRUNC, MSG_DONTWAIT = 0x2, 0x20, 0x40
_NO_ADDR = object()         # sendmmsg: no address seen yet (None is "no address")
_FROM_BUFFER = MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT     # flags a read-ahead datagram can serve
POLLIN = 0x1
SOL_SOCKET, SO_ERROR = 1, 4


class HotCalls:
    """sendto and recvfrom in binary frames, sends on credit (no reply awaited)
    and UDP read-ahead (sysproto.py).

    Needs from the class: _exchange(rid, parts, name, wait, big=) -> (kind, body),
    _post(hdr, data) (send a frame, expect no reply), _epoch(), call(), and
    the dicts credits (fd -> credit) and rbufs (fd -> [deque, epoch]).
    """

    def _local_call(self, name, args):
        """Before a call goes to the node: what the client holds for the fd
        (credit, datagrams read ahead) must agree with it. Returns a result
        to give instead of asking the node, or None."""
        if name == "close" and args and type(args[0]) is int:
            self.credits.pop(args[0], None)
            self.drop_ahead(args[0])
        elif name == "poll" and self.rbufs and len(args) == 2:
            fds, timeout = args
            buffered = {fd for fd, ev in fds if ev & POLLIN and self.rbufs.get(fd, (None,))[0]}
            if buffered:
                # Datagrams read ahead are readable now: look without waiting, add them.
                ready = dict(self.call("poll", fds, 0))
                for fd in buffered:
                    ready[fd] = ready.get(fd, 0) | POLLIN
                return [[fd, ev] for fd, ev in ready.items()]
        return None

    def getname(self, fd, peer):
        """getsockname(2) / getpeername(2) of fd in one small binary frame each way."""
        rid = next(self.ids)
        kind, body = self._exchange(rid, (P.REQ.pack(P.REQ_LEN, P.OP_NAME, peer, 0, rid, fd),),
                                    "getpeername" if peer else "getsockname", None)
        if kind == P.R_ADDR:
            ip, port = P.ADDR.unpack_from(body, 0)
            return [P.int_to_ip(ip), port]      # as the msgpack reply gives it: a list
        return decode_reply(kind, body)

    def sendto(self, fd, data, flags=0, addr=None, timeout=None):
        """sendto(2): the bytes taken. On credit, without waiting for the node."""
        if addr is not None:
            fast = _fast_addr(addr)
            if fast is None:
                return self.call("sendto", fd, bytes(data), flags, list(addr), timeout=timeout)
        else:
            fast = None
        if not (_i32(fd) and _i32(flags)):
            return self.call("sendto", fd, bytes(data), flags, None if addr is None else list(addr),
                             timeout=timeout)
        flags = int(flags)
        n = len(data)
        credit = self.credits.get(fd)
        if credit is not None and credit[0] == fast and credit[1] == flags and n <= credit[2]:
            epoch = credit[3]
            if epoch == self._epoch():
                ip, port = fast or (0, 0)
                hdr = P.SENDTO_HDR.pack(P.SENDTO_HDR.size + n, P.OP_SENDTO, P.F_NOREPLY, 0, 0, fd,
                                        flags, ip, port, fast is not None, P.NAN)
                self._post(hdr, data)
                return n
            del self.credits[fd]
        rid = next(self.ids)
        ip, port = fast or (0, 0)
        hdr = P.SENDTO_HDR.pack(P.SENDTO_HDR.size + n, P.OP_SENDTO, 0, 0, rid, fd, flags, ip, port,
                                fast is not None, P.NAN if timeout is None else timeout)
        kind, body = self._exchange(rid, (hdr, data), "sendto", timeout)
        result = decode_reply(kind, body, "sendto")
        if kind != P.R_INT:
            return result
        sent, epoch = result
        if epoch:
            old = self.credits.get(fd)
            if old is not None and old[0] == fast and old[1] == flags and old[3] == epoch:
                n = max(n, old[2])
            self.credits[fd] = (fast, flags, n, epoch)
        return sent

    def sendmmsg(self, fd, msgs, flags=0, timeout=None):
        """sendmmsg(2): msgs is [(data, address or None)]; returns how many were
        sent. The sends the node's credit covers are packed here and written
        together, in one write at the end of the call (_post_batch); one it does
        not cover goes as sendto sends it (and may earn the credit). As in
        Linux, an error on the first message raises it, one on a later message
        ends the batch and the count so far is returned."""
        if not (_i32(fd) and _i32(flags)):
            return send_each(lambda data, addr: self.sendto(fd, data, flags, addr, timeout), msgs)
        flags = int(flags)
        frames: list = []
        n = 0
        pack = P.SENDTO_HDR.pack
        hsize = P.SENDTO_HDR.size
        epoch = self._epoch()
        last_addr: object = _NO_ADDR
        fast = None
        try:
            for data, addr in msgs:
                if addr is not last_addr:
                    last_addr = addr
                    fast = None if addr is None else _fast_addr(addr)
                credit = self.credits.get(fd)
                size = len(data)
                if (credit is not None and (addr is None or fast is not None) and credit[0] == fast
                        and credit[1] == flags and size <= credit[2] and credit[3] == epoch):
                    ip, port = fast or (0, 0)
                    frames.append(pack(hsize + size, P.OP_SENDTO, P.F_NOREPLY, 0, 0, fd, flags, ip,
                                       port, fast is not None, P.NAN))
                    frames.append(data if type(data) is bytes else bytes(data))
                    n += 1
                    continue
                # Not covered: what is packed goes first (it came first), then this one.
                if frames:
                    self._post_batch(frames)
                    frames = []
                self.sendto(fd, data, flags, addr, timeout)
                n += 1
                epoch = self._epoch()
        except OSError:
            if frames:
                self._post_batch(frames)
            if n == 0:
                raise
            return n
        if frames:
            self._post_batch(frames)
        return n

    def drop_ahead(self, fd):
        """Forget the datagrams of fd read ahead (its close; a wake-up socket
        whose datagrams carry nothing)."""
        self.rbufs.pop(fd, None)

    def _ahead_check(self, fd, rb):
        """Before a datagram read ahead is handed out: if something happened
        meanwhile (the epoch moved), a socket error is reported first."""
        now = self._epoch()
        if now != rb[1]:
            err = self.call("getsockopt", fd, SOL_SOCKET, SO_ERROR)
            rb[1] = now
            if err:
                raise OSError(err, os.strerror(err))

    def recv_ahead(self, fd, n, size, flags=0):
        """Up to n datagrams of fd read ahead earlier (see recvfrom), taken at
        once without asking the node: recvmmsg's rest after its first. []
        when none wait here (or flags other than MSG_DONTWAIT ask for more
        than taking them). Records as recvfrom returns them."""
        rb = self.rbufs.get(fd)
        if rb is None or not rb[0] or flags & ~MSG_DONTWAIT or size < 0:
            return []
        self._ahead_check(fd, rb)
        q = rb[0]
        out = []
        pop = q.popleft
        for _ in range(min(n, len(q))):
            data, addr, mflags = pop()
            if len(data) > size:
                data, mflags = data[:size], mflags | MSG_TRUNC
            out.append((data, addr, mflags))
        return out

    def recvfrom(self, fd, size, flags=0, timeout=None):
        """recvfrom(2): (data, address or None, msg flags)."""
        if not (_i32(fd) and _i32(size) and _i32(flags)):
            return self.call("recvfrom", fd, size, flags, timeout=timeout)
        flags = int(flags)
        rb = self.rbufs.get(fd)
        if rb is not None and rb[0] and size >= 0 and not flags & ~_FROM_BUFFER:
            self._ahead_check(fd, rb)
            q = rb[0]
            data, addr, mflags = q[0] if flags & MSG_PEEK else q.popleft()
            if len(data) > size:
                data, mflags = data[:size], mflags | MSG_TRUNC
            return data, addr, mflags
        rid = next(self.ids)
        frame = P.RECVFROM_REQ.pack(P.RECVFROM_REQ.size, P.OP_RECVFROM,
                                    0 if flags & ~MSG_DONTWAIT else P.F_READAHEAD, 0, rid, fd, size, flags,
                                    P.NAN if timeout is None else timeout)
        kind, body = self._exchange(rid, (frame,), "recvfrom", timeout, big=size > BIG_REPLY)
        result = decode_reply(kind, body, "recvfrom")
        if kind != P.R_DATAV:
            return result
        recs, epoch = result
        if len(recs) > 1:
            if rb is None:
                rb = self.rbufs[fd] = [collections.deque(), epoch]
            rb[0].extend(recs[1:])
            rb[1] = epoch
        return recs[0]
