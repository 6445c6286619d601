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
