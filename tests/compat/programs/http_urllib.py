"""http.server (threading) with urllib.request and http.client, keep-alive and a POST."""
import http.client
import http.server
import threading
import urllib.request


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = ("path=%s" % self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers["Content-Length"])
        data = self.rfile.read(n)
        body = b"got %d bytes, sum %d" % (len(data), sum(data) % 1000)
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
port = srv.server_address[1]
with urllib.request.urlopen("http://localhost:%d/hello?x=1" % port, timeout=10) as r:
    print(r.status, r.read())
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for path in ("/a", "/b"):                      # one connection, kept alive
    conn.request("GET", path)
    r = conn.getresponse()
    print(r.status, r.read())
payload = bytes(range(256)) * 1024
conn.request("POST", "/up", body=payload)
r = conn.getresponse()
print(r.status, r.read())
conn.close()
try:
    urllib.request.urlopen("http://127.0.0.1:1/", timeout=5)
except urllib.error.URLError as e:
    print("URLError", type(e.reason).__name__)
srv.shutdown()
srv.server_close()
print("done")
