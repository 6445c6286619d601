"""The mirror descriptor an emulated socket's fileno() hands out: its readiness,
as epoll and poll see it, is whatever the shim sets (no lab needed)."""
import select

from emu.client.shimfd import POLLIN, POLLOUT, Mirror


def ready(m):
    p = select.poll()
    p.register(m.fd, select.POLLIN | select.POLLOUT)
    return dict(p.poll(0)).get(m.fd, 0) & (select.POLLIN | select.POLLOUT)


def test_mirror_shows_each_combination_of_readable_and_writable():
    m = Mirror()
    try:
        assert (ready(m), m.want()) == (select.POLLOUT, POLLIN)     # fresh: writable only
        for rd, wr in [(True, True), (False, False), (True, False), (False, True),
                       (False, False), (True, True), (True, True), (False, True)]:
            m.set(rd, wr)
            expect = (select.POLLIN if rd else 0) | (select.POLLOUT if wr else 0)
            assert ready(m) == expect, (rd, wr)
            assert m.want() == (0 if rd else POLLIN) | (0 if wr else POLLOUT)
    finally:
        m.close()


def test_epoll_sees_the_mirror_turn_readable_edge_triggered():
    m = Mirror()
    ep = select.epoll()
    try:
        ep.register(m.fd, select.EPOLLIN | select.EPOLLET)
        assert ep.poll(0) == []
        m.set(True, True)
        assert ep.poll(0) == [(m.fd, select.EPOLLIN)]
        assert ep.poll(0) == []                       # one edge
        m.set(False, True)
        m.set(True, True)
        assert ep.poll(0) == [(m.fd, select.EPOLLIN)]  # a new edge after a drain
    finally:
        ep.close()
        m.close()
