"""What real descriptors for emulated sockets cost (emu/client/shimfd.py).

    python bench/shim_fds.py [--mb 4] [--rounds 3]

On node h1 of the veth-bridge lab, an asyncio stream sends --mb MiB over
loopback to an asyncio server (asyncio calls fileno() on every socket, so
each gets a mirror descriptor), then the same with fileno() giving the
socket's EMU_FD_BASE number (no mirror, as before real descriptors). Printed,
the median of --rounds runs each:

  syscalls   system calls to the node per transfer, mirrors / none, against LIMIT
  time       seconds per transfer, mirrors / none (information: the machine is shared)

(tests/compat/programs/epoll_direct.py checks what the extra calls buy:
level-triggered readiness exact to the call.)
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import emu  # noqa: E402
from emu.client.exec import python_command  # noqa: E402

LIMIT = 1.3          # syscalls with mirrors / without

PROGRAM = r"""
import asyncio, collections, json, socket, sys, time
from emu.client import shim
N = int(sys.argv[1]) << 20
if sys.argv[2] == "none":
    socket.socket.fileno = socket.socket._wait_fileno
count = collections.Counter()
def counted(name, orig):
    def wrapped(self, *a, **k):
        count[a[0] if name == "call" else name] += 1
        return orig(self, *a, **k)
    return wrapped
# Every call to the node: the msgpack ones and the binary hot ones (sysproto.py).
for name in ("call", "sendto", "recvfrom", "getname", "sendmmsg"):
    setattr(shim.MuxSyscallClient, name, counted(name, getattr(shim.MuxSyscallClient, name)))

async def handle(r, w):
    n = 0
    while n < N:
        n += len(await r.read(1 << 16))
    w.write(b"ok")
    await w.drain()
    w.close()

async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    r, w = await asyncio.open_connection("127.0.0.1", srv.sockets[0].getsockname()[1])
    t = time.monotonic()
    w.write(b"x" * N)
    await w.drain()
    assert await r.read(2) == b"ok"
    dt = time.monotonic() - t
    w.close()
    srv.close()
    return dt

dt = asyncio.run(main())
print(json.dumps({"time": dt, "syscalls": sum(count.values())}))
"""


def run(st, mb, mode):
    cmd, env = python_command(st, "h1", ["-c", PROGRAM, str(mb), mode])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    if out.returncode:
        raise SystemExit("the transfer failed:\n" + out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with emu.launch(ROOT / "topologies" / "veth-bridge.yaml") as lab:
        st = {"nodes": {"h1": {"sys": lab.node("h1").sys_endpoint}}, "hosts": lab.topology.hosts()}
        res = {m: [run(st, a.mb, m) for _ in range(a.rounds)] for m in ("mirror", "none")}
    med = {m: {k: statistics.median(r[k] for r in rs) for k in ("time", "syscalls")}
           for m, rs in res.items()}
    ratio = med["mirror"]["syscalls"] / med["none"]["syscalls"]
    print("syscalls   %d / %d = %.2f (limit %.2f) %s" % (
        med["mirror"]["syscalls"], med["none"]["syscalls"], ratio, LIMIT,
        "ok" if ratio <= LIMIT else "OVER"))
    print("time       %.3f s / %.3f s = %.2f" % (
        med["mirror"]["time"], med["none"]["time"], med["mirror"]["time"] / med["none"]["time"]))
    return 0 if ratio <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
