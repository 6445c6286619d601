"""The socket.socket class and its less common methods: what a framework looks at."""
import inspect
import os
import socket
import tempfile

IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)      # Linux's value; CPython does not export it

cls = socket.socket
# emu's node sockets add sendmmsg/recvmmsg (the batch system calls, which
# CPython does not wrap); everything else must be CPython's, no more, no less.
EMU_EXTRAS = {"sendmmsg", "recvmmsg"}
print("public", sorted(n for n in dir(cls) if not n.startswith("_") and n not in EMU_EXTRAS))
print("private", [n for n in ("_accept", "_check_sendfile_params", "_closed", "_decref_socketios",
                              "_io_refs", "_real_close", "_sendfile_use_send", "_sendfile_use_sendfile",
                              "__enter__", "__exit__", "__del__", "__getstate__") if hasattr(cls, n)])
for n in ("family", "type", "proto", "timeout"):
    print(n, type(inspect.getattr_static(cls, n)).__name__ in ("property", "getset_descriptor", "member_descriptor"))

u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u1.bind(("127.0.0.1", 0))
u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u1.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
u1.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
print("sendmsg", u2.sendmsg([b"spl", b"it"], [], 0, u1.getsockname()))
data, anc, flags, addr = u1.recvmsg(100, socket.CMSG_SPACE(4) * 2)
print("recvmsg", data, [(lvl, t, len(d)) for lvl, t, d in anc], flags, addr[1] == u2.getsockname()[1])
u2.sendmsg([b"ttl"], [(socket.IPPROTO_IP, socket.IP_TTL, (9).to_bytes(4, "little"))], 0, u1.getsockname())
data, anc, flags, _ = u1.recvmsg(100, 1024)
print("ancillary ttl", data, int.from_bytes(anc[0][2], "little"))
u2.sendto(b"into-buffers", u1.getsockname())
a, b = bytearray(4), bytearray(20)
print("recvmsg_into", u1.recvmsg_into([a, b])[0], bytes(a), bytes(b[:8]))
u2.sendto(b"x" * 50, u1.getsockname())
print("truncated", u1.recvmsg(10)[2] & socket.MSG_TRUNC != 0)
try:
    u2.sendmsg([b"x"], [(socket.IPPROTO_IP, socket.IP_TTL, b"\x00")], 0, u1.getsockname())
except OSError as e:
    print("bad cmsg", e.errno)
try:
    u1.setsockopt(socket.SOL_SOCKET, 9999, 1)
except OSError as e:
    print("bad option", e.errno)

d = u1.dup()
print("dup", d.getsockname() == u1.getsockname(), d.fileno() != u1.fileno(), d.family, d.type)
u1.close()
u2.sendto(b"to the dup", d.getsockname())
print(d.recv(100))
print("inheritable", d.get_inheritable())
d.set_inheritable(True)
print("inheritable", d.get_inheritable())
fd = d.detach()
print("detached", d.fileno())
e = socket.socket(fileno=fd)
print("adopted", e.family, e.type, e.proto)
e.close()
u2.close()

srv = socket.create_server(("127.0.0.1", 0))
c = socket.create_connection(srv.getsockname())
conn, _ = srv.accept()
with tempfile.TemporaryFile() as f:
    f.write(os.urandom(10) + b"z" * 300000)
    f.seek(0)
    print("sendfile", c.sendfile(f, offset=10))
    c.close()
got = b""
while chunk := conn.recv(65536):
    got += chunk
print("received", len(got), set(got))
conn.close()
srv.close()
print("repr", repr(srv).startswith("<socket.socket [closed] fd=-1"))
print("done")
