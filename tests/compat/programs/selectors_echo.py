"""create_server, create_connection and a non-blocking selectors echo server."""
import selectors
import socket
import threading

srv = socket.create_server(("127.0.0.1", 0), reuse_port=False)
srv.setblocking(False)
port = srv.getsockname()[1]
sel = selectors.DefaultSelector()
sel.register(srv, selectors.EVENT_READ, "listener")
served = []


def serve():
    while len(served) < 3:
        for key, _ in sel.select(timeout=10):
            if key.data == "listener":
                conn, _ = key.fileobj.accept()
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, "conn")
            else:
                data = key.fileobj.recv(4096)
                if data:
                    key.fileobj.sendall(data[::-1])
                else:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
                    served.append(1)


t = threading.Thread(target=serve)
t.start()
for i in range(3):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"message %d" % i)
        print(c.recv(100))
        print(c.family, c.type, c.proto, c.getpeername()[1] == port)
t.join(10)
sel.close()
srv.close()
# connect_ex to a closed port, a non-blocking connect, and errors by errno
s = socket.socket()
print("connect_ex:", s.connect_ex(("127.0.0.1", port)) == 111)
s.close()
s = socket.socket()
s.setblocking(False)
try:
    s.connect(("127.0.0.1", port))
except BlockingIOError as e:
    print("nonblocking connect: BlockingIOError", e.errno == 115)
except ConnectionRefusedError:
    print("nonblocking connect: BlockingIOError", True)   # loopback may refuse at once
s.close()
try:
    socket.create_connection(("127.0.0.1", port), timeout=5)
except ConnectionRefusedError as e:
    print("refused:", e.errno)
print("done")
