"""nc: connect or listen, TCP or UDP, copying stdin to the socket and the socket to stdout."""
import argparse
import os
import sys
import threading
import time

from ..socket import AF_INET, SOCK_DGRAM, SOCK_STREAM, socket


def main(argv, endpoint, resolve, out=None, stdin=None, stdout=None):
    p = argparse.ArgumentParser(prog="nc")
    p.add_argument("-l", dest="listen", action="store_true")
    p.add_argument("-u", dest="udp", action="store_true")
    p.add_argument("-p", dest="port_opt", type=int)
    p.add_argument("-s", dest="source")
    p.add_argument("-w", dest="timeout", type=float)
    p.add_argument("-q", dest="quit_after", type=float)
    p.add_argument("-z", dest="scan", action="store_true")
    p.add_argument("-v", dest="verbose", action="store_true")
    p.add_argument("-N", dest="shutdown_eof", action="store_true")
    p.add_argument("-k", dest="keep", action="store_true")
    p.add_argument("args", nargs="*")
    a = p.parse_args(argv)
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    err = sys.stderr
    kind = SOCK_DGRAM if a.udp else SOCK_STREAM
    if a.listen:
        port = a.port_opt if a.port_opt is not None else (int(a.args[-1]) if a.args else None)
        if port is None:
            print("nc: missing port number", file=err)
            return 1
        s = socket(AF_INET, kind, 0, node=endpoint)
        s.setsockopt(1, 2, 1)                             # SO_REUSEADDR
        s.bind((a.source or "0.0.0.0", port))
        if a.udp:
            return _udp_listen(s, stdout, a)
        s.listen(1)
        while True:
            conn, peer = s.accept()
            if a.verbose:
                print("Connection received on %s %d" % peer, file=err)
            _pump(conn, stdin, stdout, a)
            conn.close()
            if not a.keep:
                break
        s.close()
        return 0
    if len(a.args) < 2:
        print("usage: nc [-lu] [-w timeout] [host] [port]", file=err)
        return 1
    host, port = a.args[0], int(a.args[1])
    addr = resolve(host)
    if addr is None:
        print("nc: getaddrinfo for host \"%s\" port %d: Name or service not known" % (host, port),
              file=err)
        return 1
    s = socket(AF_INET, kind, 0, node=endpoint)
    if a.timeout:
        s.settimeout(a.timeout)
    if a.source or a.port_opt:
        s.bind((a.source or "0.0.0.0", a.port_opt or 0))
    try:
        s.connect((addr, port))
    except OSError as e:
        if a.verbose or not a.scan:
            print("nc: connect to %s port %d (%s) failed: %s" % (host, port, "udp" if a.udp else "tcp",
                                                              e.strerror or "timed out"), file=err)
        return 1
    if a.verbose:
        print("Connection to %s %d port [%s/*] succeeded!" % (host, port, "udp" if a.udp else "tcp"),
              file=err)
    if a.scan:
        s.close()
        return 0
    _pump(s, stdin, stdout, a)
    s.close()
    return 0


def _pump(s, stdin, stdout, a):
    """stdin -> socket in a helper thread (EOF half-closes), socket -> stdout here.

    As OpenBSD nc: -w quits once the connection has been idle (nothing sent or
    received) that long; -q quits that long after EOF on stdin.
    """
    clock = time.monotonic
    state = {"last": clock(), "eof": None}

    # The process's own stdin is read with os.read on its descriptor: a read of
    # the buffered reader still blocked in this daemon thread when nc ends held
    # its lock, and the interpreter aborted at shutdown ("could not acquire
    # lock for <stdin>", exit 134).
    fd = stdin.fileno() if stdin is getattr(sys.stdin, "buffer", None) else None

    def read():
        if fd is not None:
            return os.read(fd, 65536)
        return stdin.read1(65536) if hasattr(stdin, "read1") else stdin.read(65536)

    def writer():
        try:
            while True:
                chunk = read()
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    try:
                        n = s.send(view)
                    except TimeoutError:       # the receive tick, not a failure: retry
                        continue
                    view = view[n:]
                    state["last"] = clock()
        except (OSError, ValueError):
            pass
        try:
            s.shutdown(1)                             # SHUT_WR: our side is done
        except OSError:
            pass
        state["eof"] = clock()

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    tick = 0.2 if a.timeout or a.quit_after is not None else None
    s.settimeout(tick)
    try:
        while True:
            try:
                d = s.recv(65536)
            except TimeoutError:
                now = clock()
                if a.timeout and now - state["last"] >= a.timeout:
                    break
                if a.quit_after is not None and state["eof"] is not None and \
                        now - state["eof"] >= a.quit_after:
                    break
                continue
            if not d:
                # The peer is done sending. A client still sends the rest of stdin
                # (OpenBSD nc: both inputs must be gone); a listener is done.
                if not a.listen:
                    w.join(a.timeout or None)
                break
            state["last"] = clock()
            stdout.write(d)
            stdout.flush()
    except (OSError, KeyboardInterrupt):
        pass


def _udp_listen(s, stdout, a):
    try:
        while True:
            d, peer = s.recvfrom(65536)
            stdout.write(d)
            stdout.flush()
    except (OSError, KeyboardInterrupt):
        return 0
