"""asyncio: a stream server and client, a datagram endpoint pair, sock_* calls."""
import asyncio
import socket
import tempfile


async def handle(reader, writer):
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data * 2, addr)


class Client(asyncio.DatagramProtocol):
    def __init__(self):
        self.got = asyncio.get_running_loop().create_future()

    def datagram_received(self, data, addr):
        self.got.set_result(data)


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("localhost", port)
        for word in (b"one\n", b"two\n"):
            writer.write(word)
            print(await reader.readline())
        writer.close()
        await writer.wait_closed()
    loop = asyncio.get_running_loop()
    t1, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    addr = t1.get_extra_info("sockname")
    t2, p2 = await loop.create_datagram_endpoint(Client, remote_addr=addr)
    t2.sendto(b"ping")
    print(await asyncio.wait_for(p2.got, 10))
    t1.close()
    t2.close()
    # the low-level sock_* API on a listening socket
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.setblocking(False)
    csock = socket.socket()
    csock.setblocking(False)
    accept = asyncio.ensure_future(loop.sock_accept(lsock))
    await loop.sock_connect(csock, lsock.getsockname())
    conn, _ = await accept
    await loop.sock_sendall(csock, b"x" * 100000)
    got = 0
    while got < 100000:
        got += len(await loop.sock_recv(conn, 65536))
    print("sock_* moved", got)
    with tempfile.TemporaryFile() as f:              # os.sendfile on the socket's descriptor
        f.write(b"f" * 200000)
        f.flush()
        f.seek(0)
        sent = await loop.sock_sendfile(csock, f)
    got = 0
    while got < sent:
        got += len(await loop.sock_recv(conn, 65536))
    print("sock_sendfile", sent, got)
    for s in (conn, csock, lsock):
        s.close()


asyncio.run(main())
print("done")
