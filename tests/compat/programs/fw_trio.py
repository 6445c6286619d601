"""trio: a TCP echo server and client (trio wraps socket.socket at import)."""
import functools

import trio


async def echo(stream):
    async for data in stream:
        await stream.send_all(data.upper())


async def main():
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        for word in (b"one", b"two"):
            await stream.send_all(word)
            print(await stream.receive_some(100))
        await stream.aclose()
        # UDP through trio.socket
        a = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        b = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await a.bind(("127.0.0.1", 0))
        await b.sendto(b"datagram", a.getsockname())
        print(await a.recvfrom(100) and "udp ok")
        a.close()
        b.close()
        nursery.cancel_scope.cancel()


trio.run(main)
print("done")
