"""xmlrpc server and client, several client threads at once."""
import threading
import xmlrpc.client
from socketserver import ThreadingMixIn
from xmlrpc.server import SimpleXMLRPCServer


class Server(ThreadingMixIn, SimpleXMLRPCServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), logRequests=False, allow_none=True)
srv.register_function(lambda a, b: a + b, "add")
srv.register_function(lambda s: s[::-1], "rev")
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = "http://127.0.0.1:%d/" % srv.server_address[1]
results = {}


def client(i):
    with xmlrpc.client.ServerProxy(url) as p:
        results[i] = (p.add(i, 100), p.rev("abc%d" % i))


threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join(30)
for i in sorted(results):
    print(i, results[i])
try:
    xmlrpc.client.ServerProxy(url).nosuch()
except xmlrpc.client.Fault as f:
    print("Fault", f.faultCode)
srv.shutdown()
srv.server_close()
print("done")
