"""requests (urllib3) against http.server: a session with keep-alive, a 1 MB POST."""
import http.server
import threading

import requests


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
url = "http://localhost:%d" % srv.server_address[1]
with requests.Session() as s:
    for p in ("/a", "/b"):
        r = s.get(url + p, timeout=10)
        print(r.status_code, r.text)
    print(s.post(url + "/up", data=b"x" * (1 << 20), timeout=10).text)
try:
    requests.get("http://127.0.0.1:1/", timeout=5)
except requests.ConnectionError:
    print("ConnectionError")
srv.shutdown()
print("done")
