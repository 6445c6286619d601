"""The user thread's poller: an epoll set for its descriptors, ZeroMQ's own
readiness (ZMQ_FD and ZMQ_EVENTS) for its one ZeroMQ socket, the control ROUTER.

It offers what the runtime and the syscall server use of zmq.Poller
(register, modify, unregister, poll with a timeout in milliseconds, results
as (socket or fd, zmq.POLLIN | zmq.POLLOUT) pairs), so nothing else changes.

Why (issue 14): zmq.Poller.poll rebuilds its array of poll items and walks
it on every call; with the control socket and three or four descriptors
that was about 3.4 us of a no-op system call's 30-40 us. epoll keeps the
set in the host kernel: one epoll_wait (1.4 us), and ZMQ_EVENTS is read
only when the control socket's ZMQ_FD fires.
"""
import select

import zmq

_ZIN, _ZOUT = int(zmq.POLLIN), int(zmq.POLLOUT)
_EIN, _EOUT = select.EPOLLIN, select.EPOLLOUT
# A hangup or an error is reported as readable, as poll(2) does for a socket
# at EOF: the reader then sees the end (zmq.Poller said POLLIN there too).
_EREAD = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR | select.EPOLLRDHUP


class UserPoller:
    """zmq.Poller for one ZeroMQ socket and any number of descriptors."""

    def __init__(self, zsock):
        self.ep = select.epoll()
        self.zsock = zsock
        # ZMQ_FD signals "look at ZMQ_EVENTS" (edge-style: reading EVENTS
        # consumes it); the socket's readiness is what EVENTS says.
        self.zfd = zsock.getsockopt(zmq.FD)
        self.ep.register(self.zfd, _EIN)
        self.fds: dict = {}

    def register(self, fd, flags=_ZIN):
        if fd is self.zsock:
            return
        mask = (_EIN if flags & _ZIN else 0) | (_EOUT if flags & _ZOUT else 0)
        if fd in self.fds:
            try:
                self.ep.modify(fd, mask)
                self.fds[fd] = flags
                return
            except FileNotFoundError:
                pass             # closed and reused since: epoll forgot it
        self.ep.register(fd, mask)
        self.fds[fd] = flags

    modify = register

    def unregister(self, fd):
        if self.fds.pop(fd, None) is not None:
            try:
                self.ep.unregister(fd)
            except (OSError, ValueError):
                pass             # already closed: epoll dropped it then

    def poll(self, timeout=-1):
        # The control socket is looked at only when its ZMQ_FD fires. That is
        # enough because the runtime reads it until EAGAIN each time
        # (_drain_ctl), after its last send: with no message left to read, the
        # next one to arrive signals ZMQ_FD again. (Reading ZMQ_EVENTS before
        # every wait cost 3.5 us in pyzmq: more than zmq.Poller.)
        if timeout is None or timeout < 0:
            t = -1.0
        else:
            t = timeout / 1000.0
        out: list = []
        zfd = self.zfd
        for fd, ev in self.ep.poll(t):
            if fd == zfd:
                z = self.zsock
                if z.getsockopt(zmq.EVENTS) & _ZIN:
                    out.insert(0, (z, _ZIN))
                continue
            out.append((fd, (_ZIN if ev & _EREAD else 0) | (_ZOUT if ev & _EOUT else 0)))
        return out

    def close(self):
        self.ep.close()
