"""iperf3 -s [-1] / -c HOST [-t SEC] [-l LEN]: TCP throughput with iperf3's tables.

Emulation note: the control channel is emu's own (one TCP connection carries the
data; the server answers the byte count it received after the client's FIN), not
iperf3's JSON control protocol, so it does not interoperate with a real iperf3.
"""
import argparse
import struct
import time

from ..socket import AF_INET, SOCK_STREAM, socket

SEP = "- " * 30 + "-"


def _fmt(nbytes, secs):
    size = nbytes / 2**20
    usize = "%.1f MBytes" % size if size < 1024 else "%.2f GBytes" % (size / 1024)
    rate = nbytes * 8 / secs / 1e6 if secs > 0 else 0.0
    urate = "%.1f Mbits/sec" % rate if rate >= 1 else "%.0f Kbits/sec" % (rate * 1000)
    return "%-13s %s" % (usize, urate)


def main(argv, endpoint, resolve, out=print):
    p = argparse.ArgumentParser(prog="iperf3", add_help=False)
    p.add_argument("-s", dest="server", action="store_true")
    p.add_argument("-1", dest="one_off", action="store_true")
    p.add_argument("-c", dest="client")
    p.add_argument("-p", dest="port", type=int, default=5201)
    p.add_argument("-t", dest="time", type=float, default=10.0)
    p.add_argument("-l", dest="length", type=int, default=128 * 1024)
    try:
        a = p.parse_args(argv)
    except SystemExit:
        out("iperf3: parameter error - must either be a client (-c) or server (-s)")
        return 1
    if a.server:
        return _server(a, endpoint, out)
    if a.client:
        dst = resolve(a.client)
        if dst is None:
            out("iperf3: error - unable to resolve host: %s" % a.client)
            return 1
        return _client(a, dst, endpoint, out)
    out("iperf3: parameter error - must either be a client (-c) or server (-s)")
    return 1


def _server(a, endpoint, out):
    ls = socket(AF_INET, SOCK_STREAM, 0, node=endpoint)
    ls.setsockopt(1, 2, 1)                                  # SO_REUSEADDR
    ls.bind(("0.0.0.0", a.port))
    ls.listen(5)
    try:
        while True:
            out("-----------------------------------------------------------")
            out("Server listening on %d (test #1)" % a.port)
            out("-----------------------------------------------------------")
            c, peer = ls.accept()
            local = c.getsockname()
            out("Accepted connection from %s, port %d" % peer)
            out("[  5] local %s port %d connected to %s port %d" % (local[0], local[1], peer[0], peer[1]))
            out("[ ID] Interval           Transfer     Bitrate")
            total, t0 = 0, time.monotonic()
            mark, mark_bytes = t0, 0
            while True:
                data = c.recv(262144)
                if not data:
                    break
                total += len(data)
                now = time.monotonic()
                if now - mark >= 1.0:
                    out("[  5] %6.2f-%-6.2f sec  %s" % (mark - t0, now - t0, _fmt(total - mark_bytes, now - mark)))
                    mark, mark_bytes = now, total
            secs = time.monotonic() - t0
            c.sendall(struct.pack("!Qd", total, secs))
            c.close()
            out(SEP)
            out("[ ID] Interval           Transfer     Bitrate")
            out("[  5] %6.2f-%-6.2f sec  %s                  receiver" % (0, secs, _fmt(total, secs)))
            if a.one_off:
                return 0
    finally:
        ls.close()


def _client(a, dst, endpoint, out):
    s = socket(AF_INET, SOCK_STREAM, 0, node=endpoint)
    try:
        try:
            s.connect((dst, a.port))
        except OSError as e:
            out("iperf3: error - unable to connect to server: %s" % e.strerror)
            return 1
        local = s.getsockname()
        out("Connecting to host %s, port %d" % (a.client, a.port))
        out("[  5] local %s port %d connected to %s port %d" % (local[0], local[1], dst, a.port))
        out("[ ID] Interval           Transfer     Bitrate         Retr")
        buf = b"\0" * a.length
        total, t0 = 0, time.monotonic()
        mark, mark_bytes = t0, 0
        while True:
            now = time.monotonic()
            if now - t0 >= a.time:
                break
            total += s.send(buf)
            now = time.monotonic()
            if now - mark >= 1.0:
                out("[  5] %6.2f-%-6.2f sec  %s    0" % (mark - t0, now - t0, _fmt(total - mark_bytes, now - mark)))
                mark, mark_bytes = now, total
        secs = time.monotonic() - t0
        s.shutdown(1)
        reply = b""
        while len(reply) < 16:
            chunk = s.recv(16 - len(reply))
            if not chunk:
                break
            reply += chunk
        rbytes, rsecs = struct.unpack("!Qd", reply) if len(reply) == 16 else (0, secs)
        out(SEP)
        out("[ ID] Interval           Transfer     Bitrate         Retr")
        out("[  5] %6.2f-%-6.2f sec  %s    0             sender" % (0, secs, _fmt(total, secs)))
        out("[  5] %6.2f-%-6.2f sec  %s                  receiver" % (0, rsecs, _fmt(rbytes, rsecs)))
        out("")
        out("iperf Done.")
        return 0
    finally:
        s.close()
