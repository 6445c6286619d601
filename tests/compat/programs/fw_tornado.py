"""tornado: a web server and its AsyncHTTPClient."""
import asyncio

import tornado.httpclient
import tornado.web


class Hello(tornado.web.RequestHandler):
    def get(self, name):
        self.write("hello " + name)

    def post(self, name):
        self.write(str(len(self.request.body)))


async def main():
    app = tornado.web.Application([(r"/(\w+)", Hello)])
    server = app.listen(0, "127.0.0.1")
    port = list(server._sockets.values())[0].getsockname()[1]
    client = tornado.httpclient.AsyncHTTPClient()
    for p in ("a", "b"):
        r = await client.fetch("http://127.0.0.1:%d/%s" % (port, p))
        print(r.code, r.body)
    r = await client.fetch("http://127.0.0.1:%d/up" % port, method="POST", body=b"z" * 200000)
    print(r.code, r.body)
    server.stop()
    client.close()


asyncio.run(main())
print("done")
