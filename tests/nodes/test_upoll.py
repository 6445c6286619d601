"""The user thread's epoll poller (emu/nodes/upoll.py): what zmq.Poller
reported, it reports; the control socket is seen when a request arrives."""
import os
import socket
import time

import zmq

from emu.nodes.upoll import UserPoller


def _pair():
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.bind("inproc://upoll")
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect("inproc://upoll")
    return ctx, router, dealer


def test_descriptors_and_control_socket():
    ctx, router, dealer = _pair()
    a, b = socket.socketpair()
    ev = os.eventfd(0, os.EFD_NONBLOCK)
    p = UserPoller(router)
    p.register(router, zmq.POLLIN)          # as zmq.Poller's users do: a no-op here
    p.register(a.fileno(), zmq.POLLIN)
    p.register(ev, zmq.POLLIN)
    try:
        assert p.poll(0) == []
        t0 = time.monotonic()
        assert p.poll(50) == []
        assert time.monotonic() - t0 >= 0.04          # the timeout is in milliseconds
        b.send(b"x")
        os.eventfd_write(ev, 1)
        got = dict(p.poll(0))
        assert got == {a.fileno(): zmq.POLLIN, ev: zmq.POLLIN}
        a.recv(1)
        os.eventfd_read(ev)
        dealer.send(b"req")
        got = p.poll(1000)                               # woken by the request
        assert got[0] == (router, zmq.POLLIN)
        assert router.recv_multipart(zmq.NOBLOCK)[-1] == b"req"
        try:
            router.recv(zmq.NOBLOCK)
        except zmq.Again:
            pass
        assert p.poll(0) == []                           # read until EAGAIN: quiet again
        dealer.send(b"again")
        assert p.poll(1000)[0] == (router, zmq.POLLIN)   # and the next one wakes it
    finally:
        p.close()
        a.close()
        b.close()
        os.close(ev)
        router.close(0)
        dealer.close(0)
        ctx.term()


def test_pollout_modify_unregister_and_hangup():
    ctx, router, dealer = _pair()
    a, b = socket.socketpair()
    p = UserPoller(router)
    try:
        p.register(a.fileno(), zmq.POLLIN)
        assert p.poll(0) == []
        p.modify(a.fileno(), zmq.POLLIN | zmq.POLLOUT)
        assert p.poll(0) == [(a.fileno(), zmq.POLLOUT)]
        p.modify(a.fileno(), zmq.POLLIN)
        b.close()                                        # the peer is gone: readable (EOF)
        assert p.poll(0) == [(a.fileno(), zmq.POLLIN)]
        p.unregister(a.fileno())
        assert p.poll(0) == []
        fd = a.fileno()
        p.register(fd, zmq.POLLIN)
        a.close()                                        # closed while registered
        c, d = socket.socketpair()                       # may reuse the number
        p.register(c.fileno(), zmq.POLLIN)
        d.send(b"y")
        assert (c.fileno(), zmq.POLLIN) in p.poll(0)
        p.unregister(fd)
        c.close()
        d.close()
    finally:
        p.close()
        router.close(0)
        dealer.close(0)
        ctx.term()
