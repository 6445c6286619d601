"""Programs with several threads in a virtual-time lab: they take turns
(client/vsched.py), so a seed replays them as it replays the packets."""
import emu
from tests.integration.conftest import TOPOLOGIES


def _threaded():
    """Four clients in threads against an echo thread, a queue, a lock, an
    event, a thread pool: everything whose order the host would decide."""
    import queue
    import random
    import socket
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor
    log, got = [], []
    lock, ready = threading.Lock(), threading.Event()
    q: queue.Queue = queue.Queue()

    def echo():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 7001))
        ready.set()
        while True:
            d, a = s.recvfrom(100)
            if d == b"stop":
                return
            s.sendto(d.upper(), a)

    def client(n):
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(2)
        for i in range(4):
            time.sleep(random.random() * 0.01)
            c.sendto(b"c%d-%d" % (n, i), ("10.0.0.1", 7001))
            d, _ = c.recvfrom(100)
            with lock:
                log.append((d.decode(), time.monotonic_ns()))
            q.put(n)

    srv = threading.Thread(target=echo)
    srv.start()
    ready.wait()
    ts = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in ts:
        t.start()
    got = [q.get() for _ in range(16)]
    for t in ts:
        t.join()
    with ThreadPoolExecutor(3) as ex:
        pool = list(ex.map(lambda x: (x, threading.current_thread().name), range(6)))
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"stop", ("10.0.0.1", 7001))
    srv.join()
    return got, log, pool


def _run(seed):
    with emu.launch(TOPOLOGIES / "veth-bridge.yaml", clock="virtual", seed=seed) as lab:
        return lab.node("h1").run(_threaded).result(timeout=60)


def test_a_threaded_program_replays_by_seed_and_another_seed_differs():
    a, b, c = _run(11), _run(11), _run(12)
    got, log, pool = a
    assert sorted(got) == sorted(list(range(4)) * 4)
    assert sorted(x for x, _ in log) == sorted("C%d-%d" % (n, i) for n in range(4) for i in range(4))
    assert [x for x, _ in pool] == list(range(6))
    assert a == b                  # the threads' order, their times, the pool's workers
    assert a[0] != c[0] or a[1] != c[1]
