"""select.epoll on fileno() directly (as trio and twisted do), poll on numbers,
socket.fromfd: a socket's descriptor is a real one."""
import os
import select
import socket
import tempfile

srv = socket.create_server(("127.0.0.1", 0))
srv.setblocking(False)
ep = select.epoll()
ep.register(srv.fileno(), select.EPOLLIN)
print("idle listener", ep.poll(0.1))
c = socket.socket()
c.setblocking(False)
print("fresh socket writable", select.select([], [c], [], 0)[1] == [c])
try:
    c.connect(srv.getsockname())
except BlockingIOError:
    print("EINPROGRESS")
ep.register(c.fileno(), select.EPOLLOUT)
events = dict(ep.poll(10))
print("connected", events.get(c.fileno()) == select.EPOLLOUT, c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
ep.unregister(c.fileno())
print("listener readable", ep.poll(10) == [(srv.fileno(), select.EPOLLIN)])
conn, _ = srv.accept()
conn.setblocking(False)
print("listener drained", ep.poll(0.1))
ep.register(conn.fileno(), select.EPOLLIN | select.EPOLLET)
print("conn idle", ep.poll(0.1))
c.send(b"hello")
print("conn readable", ep.poll(10) == [(conn.fileno(), select.EPOLLIN)], conn.recv(100))
try:
    conn.recv(100)
except BlockingIOError:
    print("EAGAIN")
print("conn drained", ep.poll(0.1))
p = select.poll()
p.register(conn.fileno(), select.POLLIN)
c.send(b"again")
print("poll on the number", p.poll(10000) == [(conn.fileno(), select.POLLIN)], conn.recv(100))
# fill the send side until it would block, then wait for room with epoll
c.setblocking(False)
sent = 0
try:
    while True:
        sent += c.send(b"x" * 65536)
except BlockingIOError:
    pass
w = select.epoll()
w.register(c.fileno(), select.EPOLLOUT)
print("full", w.poll(0.1))
got = 0
conn.setblocking(True)
while got < sent:
    got += len(conn.recv(1 << 20))
print("room again", w.poll(10) == [(c.fileno(), select.EPOLLOUT)], got == sent)
d = socket.fromfd(conn.fileno(), socket.AF_INET, socket.SOCK_STREAM)
print("fromfd", d.getpeername() == c.getsockname(), d.fileno() != conn.fileno(), os.get_blocking(d.fileno()) in (True, False))
d.close()
c.close()
print("eof", ep.poll(10) == [(conn.fileno(), select.EPOLLIN)], conn.recv(10))
# os calls on the descriptor act on the socket, as on a kernel socket's
c2 = socket.create_connection(srv.getsockname())
srv.setblocking(True)
conn2, _ = srv.accept()
print("os.write", os.write(c2.fileno(), b"via os.write"), os.read(conn2.fileno(), 100))
os.set_blocking(conn2.fileno(), False)
print("os.set_blocking", os.get_blocking(conn2.fileno()), conn2.getblocking())
try:
    os.read(conn2.fileno(), 10)
except BlockingIOError:
    print("os.read EAGAIN")
with tempfile.TemporaryFile() as f:
    f.write(b"0123456789" * 100)
    f.flush()
    f.seek(5)
    print("os.sendfile", os.sendfile(c2.fileno(), f.fileno(), 10, 20), os.sendfile(c2.fileno(), f.fileno(), None, 3),
          f.tell())
    conn2.setblocking(True)
    got = b""
    while len(got) < 23:
        got += conn2.recv(100)
    print(got)
os.close(c2.fileno())
print("os.close", conn2.recv(10))
for s in (conn, conn2, srv):
    s.close()
ep.close()
w.close()
print("done")
