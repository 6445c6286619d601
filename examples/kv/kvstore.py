"""A key-value store over UDP: one server, clients that retry.

Requests and answers are JSON datagrams:

    {"id": "c1-4242-17", "op": "put", "key": "color", "value": "blue"}
    {"id": "c1-4242-17", "ok": true, "version": 3}

UDP may lose a datagram (or a partition may swallow all of them), so a
client that hears nothing within its timeout sends the same request again
(same id), doubling the timeout each time, and gives up with KVUnavailable
after its last try. A retransmitted request must not be applied twice: the
server remembers its answers to recent request ids and sends the same answer
again (at-most-once execution).

Nothing here knows about emu: it is plain `socket` code. Run on a lab node
(Node.run / Node.spawn), its sockets are that node's.
"""
import itertools
import json
import os
import socket
from collections import OrderedDict

try:
    import emu                     # ready() and Stopped when run on a lab node
except ImportError:                # pragma: no cover - the store works without emu
    emu = None


class KVUnavailable(Exception):
    """No answer from the server after every retry."""


def _apply(store, req):
    op, key = req.get("op"), req.get("key")
    if op == "put":
        _, version = store.get(key, (None, 0))
        store[key] = (req.get("value"), version + 1)
        return {"ok": True, "version": version + 1}
    if op == "get":
        if key not in store:
            return {"ok": False, "error": "not found"}
        value, version = store[key]
        return {"ok": True, "value": value, "version": version}
    if op == "delete":
        return {"ok": store.pop(key, None) is not None}
    if op == "keys":
        return {"ok": True, "value": sorted(store)}
    return {"ok": False, "error": "unknown op %r" % op}


def serve(port=7000, remember=4096):
    """Serve until stopped; returns counts of what it saw (requests, retransmits)."""
    store = {}
    answered = OrderedDict()        # (client address, request id) -> the answer sent
    stats = {"requests": 0, "retransmits": 0, "bad": 0}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("", port))
    if emu is not None:
        emu.ready(port)
    stopped = emu.Stopped if emu is not None else KeyboardInterrupt
    try:
        while True:
            data, addr = sock.recvfrom(65535)
            stats["requests"] += 1
            try:
                req = json.loads(data)
                rid = (addr, req["id"])
            except (ValueError, KeyError, TypeError):
                stats["bad"] += 1
                continue
            if rid in answered:
                stats["retransmits"] += 1
                sock.sendto(answered[rid], addr)
                continue
            answer = dict(_apply(store, req), id=req["id"])
            answered[rid] = json.dumps(answer).encode()
            if len(answered) > remember:
                answered.popitem(last=False)
            sock.sendto(answered[rid], addr)
    except stopped:
        return stats
    finally:
        sock.close()


class KVClient:
    """get/put/delete against a server, with retransmission and a growing timeout."""

    def __init__(self, server, port=7000, timeout=0.1, retries=3):
        self.server = (server, port)
        self.timeout = timeout
        self.retries = retries
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.ids = itertools.count(1)
        self.prefix = "%s-%d" % (socket.gethostname(), os.getpid())

    def request(self, op, key=None, value=None):
        rid = "%s-%d" % (self.prefix, next(self.ids))
        msg = json.dumps({"id": rid, "op": op, "key": key, "value": value}).encode()
        timeout = self.timeout
        for _ in range(self.retries + 1):
            self.sock.sendto(msg, self.server)
            self.sock.settimeout(timeout)
            try:
                while True:
                    data, _ = self.sock.recvfrom(65535)
                    answer = json.loads(data)
                    if answer.get("id") == rid:
                        return answer
                    # A late answer to an earlier request: not ours, keep waiting.
            except socket.timeout:
                timeout *= 2
        raise KVUnavailable("%s %r: no answer from %s:%d after %d tries"
                            % (op, key, self.server[0], self.server[1], self.retries + 1))

    def put(self, key, value):
        return self.request("put", key, value)["version"]

    def get(self, key):
        answer = self.request("get", key)
        if not answer["ok"]:
            raise KeyError(key)
        return answer["value"]

    def delete(self, key):
        return self.request("delete", key)["ok"]

    def keys(self):
        return self.request("keys")["value"]

    def close(self):
        self.sock.close()
