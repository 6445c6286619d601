"""Reading the node's reply frames (emu/client/rpc.py read_frame): a long
stream read arrives as one bytes object read straight from the socket."""
import socket
import threading
import time

import pytest

from emu import sysproto as P
from emu.client.rpc import R_BIGDATA, _Conn, decode_reply, read_frame


def _data_frame(rid, data, mflags=0):
    return P.DATA_HDR.pack(P.DATA_HDR.size + len(data), P.R_DATA, 0, 0, rid, mflags, 0, P.NO_ADDR) + data


def _int_frame(rid, value):
    return P.INT_REP.pack(P.INT_REP.size, P.R_INT, 0, 0, rid, value, 0)


def _writer(sock, chunks, pause=0.01):
    def run():
        for c in chunks:
            sock.sendall(c)
            time.sleep(pause)
    t = threading.Thread(target=run)
    t.start()
    return t


@pytest.mark.parametrize("big", [True, False])
@pytest.mark.parametrize("wait", [None, 5.0])
def test_a_long_stream_read_is_one_bytes_object_then_framing_goes_on(big, wait):
    a, b = socket.socketpair()
    try:
        data = bytes(range(256)) * 1200          # 300 KiB, written in pieces
        frame = _data_frame(7, data, mflags=0x40)
        t = _writer(b, [frame[:5000], frame[5000:70000], frame[70000:], _int_frame(8, 42)])
        c = _Conn(a)
        kind, rid, body = read_frame(c, wait, big)
        assert (kind, rid) == (R_BIGDATA, 7)
        got, addr, mflags = decode_reply(kind, body)
        assert type(got) is bytes and got == data and addr is None and mflags == 0x40
        kind, rid, body = read_frame(c, wait, big)      # the next frame is intact
        assert (kind, rid) == (P.R_INT, 8) and decode_reply(kind, body)[0] == 42
        t.join()
    finally:
        a.close()
        b.close()


def test_a_short_reply_to_a_long_read_and_a_frame_already_read_ahead():
    a, b = socket.socketpair()
    try:
        small = _data_frame(1, b"tiny")
        long_ = _data_frame(2, b"L" * 600000)        # more than one read takes
        t = _writer(b, [small + _int_frame(9, 5) + long_])
        c = _Conn(a)
        kind, rid, body = read_frame(c, None, True)     # asked big, got a short one
        assert (kind, rid) == (P.R_DATA, 1) and decode_reply(kind, body)[0] == b"tiny"
        kind, rid, body = read_frame(c, None, True)
        assert (kind, rid) == (P.R_INT, 9)
        kind, rid, body = read_frame(c, None, True)     # its start was read ahead
        assert (kind, rid) == (R_BIGDATA, 2) and decode_reply(kind, body)[0] == b"L" * 600000
        assert not c.buf
        t.join()
    finally:
        a.close()
        b.close()


def test_a_node_gone_in_the_middle_of_a_long_reply_is_eof():
    a, b = socket.socketpair()
    try:
        frame = _data_frame(3, b"x" * 200000)
        b.sendall(frame[:120000])
        b.close()
        with pytest.raises(EOFError):
            read_frame(_Conn(a), None, True)
    finally:
        a.close()


def test_ip_to_int_cached_answers_match_the_parser():
    """ip_to_int remembers what it parsed (a no-op call's reply is built from
    the same address again and again): the remembered answer is the parser's,
    a refused string stays refused, and the memory stays bounded."""
    from emu import sysproto as P
    P._IP_INT.clear()
    for host in ("10.0.0.1", "255.255.255.255", "0.0.0.0", "192.168.1.20"):
        assert P.ip_to_int(host) == P._ip_to_int(host)
        assert P.ip_to_int(host) == int.from_bytes(bytes(int(x) for x in host.split(".")), "big")
    for bad in ("10.0.0", "10.0.0.256", "010.0.0.1x", "a.b.c.d", "1.2.3.4.5", "", "1234.0.0.1"):
        assert P.ip_to_int(bad) is None
        assert bad not in P._IP_INT
    for i in range(P._IP_INT_MAX + 10):
        assert P.ip_to_int("10.%d.%d.1" % (i >> 8, i & 255)) == (10 << 24) | (i << 8) | 1
    assert len(P._IP_INT) <= P._IP_INT_MAX


# ---------------------------------------------------------------- getname's fast path

class _FakeNode:
    """A syscall socket that answers _attach, then each OP_NAME request with
    what answer(rid, peer, fd) gives (bytes to write, in pieces if a list).
    Records the OP_NAME requests and the connections."""

    def __init__(self, tmp_path, answer):
        import msgpack
        self.msgpack = msgpack
        self.path = str(tmp_path / "sys")
        self.answer = answer
        self.requests = []
        self.conns = 0
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        while True:
            d = c.recv(65536)
            if not d:
                c.close()
                return
            buf += d
            while len(buf) >= P.REQ_LEN:
                flen, op, flags, _, rid, fd = P.REQ.unpack_from(buf, 0)
                if len(buf) < flen:
                    break
                buf = buf[flen:]
                if op == P.OP_MSGPACK:              # _attach
                    body = self.msgpack.packb({"id": rid, "ok": None})
                    c.sendall(P.REP.pack(P.REP_LEN + len(body), P.R_MSGPACK, 0, 0, rid) + body)
                    continue
                assert op == P.OP_NAME and flen == P.REQ_LEN
                self.requests.append((rid, flags, fd))
                out = self.answer(rid, flags, fd)
                if out is None:
                    c.close()                       # the node dies
                    return
                for piece in (out if isinstance(out, list) else [out]):
                    c.sendall(piece)
                    time.sleep(0.005)

    def close(self):
        self.srv.close()


def _addr_frame(rid, ip, port):
    return P.ADDR_REP.pack(P.ADDR_REP.size, P.R_ADDR, 0, 0, rid, ip, port)


def _err_frame(rid, err):
    return P.ERR_REP.pack(P.ERR_REP.size, P.R_ERR, 0, 0, rid, err)


def test_getname_fast_path_sends_one_name_frame_and_reads_the_address(tmp_path):
    from emu.client.rpc import SyscallClient
    node = _FakeNode(tmp_path, lambda rid, peer, fd: _addr_frame(rid, 0x0A000001 + peer, 7000 + fd))
    cl = SyscallClient(node.path)
    try:
        assert cl.getname(3, 0) == ["10.0.0.1", 7003]      # first call: the generic path connects
        assert cl.local.conn is not None
        for fd in (4, 5):
            assert cl.getname(fd, 1) == ["10.0.0.2", 7000 + fd]
            assert cl.getname(fd, 0) == ["10.0.0.1", 7000 + fd]
        assert [(p, fd) for _, p, fd in node.requests] == [(0, 3), (1, 4), (0, 4), (1, 5), (0, 5)]
        rids = [rid for rid, _, _ in node.requests]
        assert rids == sorted(set(rids))
        assert not cl.local.conn.buf and node.conns == 1
    finally:
        cl.close()
        node.close()


def test_getname_an_error_reply_raises_the_same_oserror_on_either_path(tmp_path):
    import errno
    from emu.client.rpc import HotCalls, SyscallClient
    node = _FakeNode(tmp_path, lambda rid, peer, fd: _err_frame(rid, errno.EBADF if fd > 10 else errno.ENOTCONN))
    cl = SyscallClient(node.path)
    try:
        for fast in (False, True, True):
            get = cl.getname if fast else (lambda fd, peer: HotCalls.getname(cl, fd, peer))
            with pytest.raises(OSError) as e:
                get(99, 0)
            assert type(e.value) is OSError and e.value.errno == errno.EBADF
            with pytest.raises(OSError) as e:
                get(3, 1)
            assert e.value.errno == errno.ENOTCONN and "not connected" in e.value.strerror.lower()
        assert not cl.local.conn.buf              # the connection is still in step
    finally:
        cl.close()
        node.close()


def test_getname_a_leftover_frame_and_a_reply_in_pieces(tmp_path):
    """A frame of an interrupted earlier call is skipped; a reply that arrives
    in two writes (the first read short) is put together by read_frame."""
    from emu.client.rpc import SyscallClient
    script = []

    def answer(rid, peer, fd):
        return script.pop(0)(rid)

    node = _FakeNode(tmp_path, answer)
    cl = SyscallClient(node.path)
    try:
        script.append(lambda rid: _addr_frame(rid, 1, 1))
        assert cl.getname(3, 0) == ["0.0.0.1", 1]
        script.append(lambda rid: [_addr_frame(rid + 1000, 2, 2) + _data_frame(rid - 1, b"stale" * 10),
                                   _addr_frame(rid, 0x7F000001, 80)])
        assert cl.getname(3, 0) == ["127.0.0.1", 80]
        script.append(lambda rid: [_addr_frame(rid, 0x0A000002, 443)[:5], _addr_frame(rid, 0x0A000002, 443)[5:]])
        assert cl.getname(3, 1) == ["10.0.0.2", 443]
        script.append(lambda rid: _addr_frame(rid, 0x0A000003, 22))
        assert cl.getname(3, 0) == ["10.0.0.3", 22]
        assert not cl.local.conn.buf
    finally:
        cl.close()
        node.close()


def test_getname_the_node_going_away_is_node_unreachable(tmp_path):
    from emu.client.rpc import NodeUnreachable, SyscallClient
    answers = [lambda rid: _addr_frame(rid, 1, 1), lambda rid: None]
    node = _FakeNode(tmp_path, lambda rid, peer, fd: answers.pop(0)(rid))
    cl = SyscallClient(node.path)
    try:
        cl.getname(3, 0)
        with pytest.raises(NodeUnreachable) as e:
            cl.getname(3, 0)
        assert "went away during getsockname" in str(e.value)
        assert cl.local.conn is None              # dropped: the next call connects afresh
    finally:
        cl.close()
        node.close()


def test_getname_in_a_forked_child_uses_a_connection_of_its_own(tmp_path):
    import os
    from emu.client.rpc import SyscallClient
    node = _FakeNode(tmp_path, lambda rid, peer, fd: _addr_frame(rid, 0x0A000001, 5))
    cl = SyscallClient(node.path)
    try:
        assert cl.getname(3, 0) == ["10.0.0.1", 5]
        parent_conn = cl.local.conn
        pid = os.fork()
        if pid == 0:
            ok = cl.getname(3, 0) == ["10.0.0.1", 5] and cl.local.conn is not parent_conn
            os._exit(0 if ok else 1)
        assert os.waitpid(pid, 0)[1] == 0
        assert node.conns == 2                    # the child attached a task of its own
        assert cl.getname(3, 0) == ["10.0.0.1", 5] and cl.local.conn is parent_conn
    finally:
        cl.close()
        node.close()


def test_int_to_ip_cached_answers_and_bounded():
    P._IP_STR.clear()
    for v in (0, 1, 0x0A000001, 0xFFFFFFFF, 0xC0A80114):
        assert P.int_to_ip(v) == socket.inet_ntoa(v.to_bytes(4, "big"))
        assert P.int_to_ip(v) == socket.inet_ntoa(v.to_bytes(4, "big"))
    for i in range(P._IP_INT_MAX + 10):
        assert P.int_to_ip((10 << 24) | i) == "10.0.%d.%d" % (i >> 8, i & 255)
    assert len(P._IP_STR) <= P._IP_INT_MAX
