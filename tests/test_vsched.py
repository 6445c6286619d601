"""client/vsched.py: a program's threads take turns (virtual time). Each
case runs in a fresh interpreter: install() replaces threading's locks."""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(body):
    code = textwrap.dedent("""
        import os, sys, threading
        from emu.client import vsched
        idles = []
        def told():
            idles.append(1)
            if WHEN_IDLE is not None:
                WHEN_IDLE()
        WHEN_IDLE = None
        vsched.install(told)
    """) + textwrap.dedent(body)
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                       env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().splitlines()


def test_threads_run_one_at_a_time_in_start_and_wake_order():
    out = _run("""
        out, gate = [], threading.Event()
        def w(n):
            out.append("start%d" % n)
            gate.wait()
            out.append("end%d" % n)
        ts = [threading.Thread(target=w, args=(n,)) for n in range(4)]
        for t in ts:
            t.start()
        out.append("main")
        gate.set()
        for t in ts:
            t.join()
        print(" ".join(out))
        print(len(idles))
    """)
    assert out[0] == "start0 start1 start2 start3 main end0 end1 end2 end3"
    assert out[1] == "0"             # hand-offs only: the program never waited as a whole


def test_a_released_lock_goes_to_its_first_waiter_and_rlocks_nest():
    out = _run("""
        lock, r, out = threading.Lock(), threading.RLock(), []
        lock.acquire()
        def w(n):
            with lock:
                out.append(n)
        ts = [threading.Thread(target=w, args=(n,)) for n in (3, 1, 2)]
        for t in ts:
            t.start()
        lock.release()                 # to 3, which was first to wait
        with r:
            with r:
                c = threading.Condition(r)
                with c:
                    c.notify_all()
        for t in ts:
            t.join()
        print(out, lock.locked(), r._is_owned())
        try:
            lock.release()
        except RuntimeError as e:
            print("error", e)
    """)
    assert out == ["[3, 1, 2] False False", "error release unlocked lock"]


def test_a_program_whose_threads_all_wait_tells_its_node_once():
    out = _run("""
        def stop():
            print("idle", len(idles))
            sys.stdout.flush()
            os._exit(0)
        WHEN_IDLE = stop
        lock = threading.Lock()
        lock.acquire()
        t = threading.Thread(target=lock.acquire)
        t.start()
        threading.Event().wait()       # nobody can run: the node must be told
        print("not reached")
    """)
    assert out == ["idle 1"]


def test_a_thread_pool_and_a_queue_take_turns_too():
    out = _run("""
        import queue
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(3) as ex:
            print(list(ex.map(lambda x: x * x, range(7))))
        q = queue.Queue()
        t = threading.Thread(target=lambda: [q.put(i) for i in range(3)])
        t.start()
        print([q.get() for _ in range(3)])
        t.join()
    """)
    assert out == ["[0, 1, 4, 9, 16, 25, 36]", "[0, 1, 2]"]
