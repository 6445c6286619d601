"""aiohttp: a web server and a ClientSession (GET, POST, keep-alive)."""
import asyncio

from aiohttp import ClientSession, web


async def hello(request):
    return web.Response(text="hello " + request.path)


async def upload(request):
    data = await request.read()
    return web.Response(text=str(len(data)))


async def main():
    app = web.Application()
    app.add_routes([web.get("/{name}", hello), web.post("/up", upload)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    async with ClientSession() as s:
        for p in ("/a", "/b"):
            async with s.get("http://127.0.0.1:%d%s" % (port, p)) as r:
                print(r.status, await r.text())
        async with s.post("http://127.0.0.1:%d/up" % port, data=b"y" * 500000) as r:
            print(r.status, await r.text())
    await runner.cleanup()


asyncio.run(main())
print("done")
