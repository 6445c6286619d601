"""SACK loss recovery with a large window: a burst of losses is repaired by
retransmitting exactly what was lost, without an RTO (tcp_recovery.py's
scoreboard hints must not skip a lost segment or resend a delivered one)."""
import errno
import random

import pytest

from emu import netem as unetem
from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError
from emu.kernel.socket import sys_sendto
from tests.kernel.test_tcp import Pair, recv_all


def _pump(pair, data, dt=0.001, max_rounds=200000):
    """Send and read in 1 ms steps of the lab's clock (a 20 ms path: a large window)."""
    sent, got = 0, bytearray()
    for _ in range(max_rounds):
        while sent < len(data):
            try:
                sent += sys_sendto(pair.t1, pair.c, data[sent:sent + 65536], 0, None)
            except KernelError as e:
                assert e.errno == errno.EAGAIN
                break
        pair.lab.run()
        got += recv_all(pair.t2, pair.s)
        if len(got) >= len(data):
            break
        pair.lab.advance(dt, tick=dt)
    return bytes(got)


LOSSES = {
    "burst of 40": set(range(3000, 3040)),
    "burst of 3": set(range(2500, 2503)),
    "burst of 200": set(range(4000, 4200)),
    "20 holes": set(range(3000, 3740, 37)),
    "holes and bursts": set(range(3000, 3600, 25)) | set(range(3100, 3130)) | set(range(3500, 3504)),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_in_a_large_window_are_resent_once_each(name):
    drop = LOSSES[name]
    p = Pair(tso=False).connect()
    # The only losses are the burst below: netem's queue and the backlogs
    # take a whole window (a 1 ms tick releases thousands of frames at once).
    for net in p.lab.nets.values():
        net.sysctl["net.core.netdev_max_backlog"] = 100000
    rtnetlink.RTNL_OPS["qdisc_add"](p.lab.nets["h1"], "eth0", "netem",
                                    **unetem.parse_netem(["delay", "20ms", "limit", "100000"]))
    port = p.lab.port("h1", "eth0")
    orig = port.send
    seen = [0]
    lost = []

    def lossy(buf, start, end, *a):
        if end - start > 1000:
            seen[0] += 1
            if seen[0] in drop:
                lost.append(bytes(buf[start:end]))
                return True
        return orig(buf, start, end, *a)
    port.send = lossy
    data = random.Random(len(drop)).randbytes(12_000_000)
    assert _pump(p, data) == data
    assert len(lost) == len(drop)
    mib = p.lab.nets["h1"].mib
    tp = p.sk("c").proto_data
    assert mib["TcpExt"]["TCPSackRecovery"] >= 1
    assert mib["TcpExt"]["TCPTimeouts"] == 0             # repaired by SACK, not by the RTO
    assert mib["Tcp"]["RetransSegs"] == len(drop)         # each lost segment once, nothing else
    assert tp.lost_out == tp.retrans_out == tp.sacked_out == 0
    # Everything acknowledged: no hint is left to seem valid again after the
    # sequence numbers wrap (2 GiB on).
    assert (tp.highest_sack, tp.lost_hint, tp.rtx_hint, tp.recv_sack_cache) == (None, None, None, ())
