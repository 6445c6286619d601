"""httpx (sync and async clients) against http.server."""
import asyncio
import http.server
import threading

import httpx


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"hello " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"]))
        body = b"%d" % len(data)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = "http://127.0.0.1:%d" % srv.server_address[1]
with httpx.Client(timeout=10) as c:
    for p in ("/a", "/b"):
        r = c.get(url + p)
        print(r.status_code, r.text)
    print(c.post(url + "/up", content=b"x" * 300000).text)


async def amain():
    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.get(url + "/async")
        print(r.status_code, r.text)


asyncio.run(amain())
srv.shutdown()
print("done")
