"""socketserver with StreamRequestHandler; a client that reads through makefile()
and closes the socket before the file (the close waits for the file, as CPython does)."""
import socket
import socketserver
import threading


class Upper(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line.upper())


with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Upper) as srv:
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.connect(("127.0.0.1", port))
    f = sock.makefile("rwb")
    for word in (b"alpha\n", b"beta\n"):
        f.write(word)
        f.flush()
        print(f.readline())
    sock.close()                       # the file still holds it open
    f.write(b"gamma\n")
    f.flush()
    print(f.readline())
    f.close()                          # now it really closes
    print("fileno after close:", sock.fileno())
    # with socket(...) and a file left for the garbage collector
    with socket.create_connection(("localhost", port), timeout=5) as s:
        r = s.makefile("rb")
        s.sendall(b"delta\n")
        print(r.readline(), s.gettimeout())
        del r                          # the last reference: the file closes
    srv.shutdown()
print("done")
