"""inet_diag as ss reads it."""
from emu.kernel.ipv4.inet_diag import inet_diag_dump
from emu.kernel.socket import sys_close, sys_recvfrom
from tests.kernel.test_tcp import Pair


def test_a_time_wait_socket_has_no_tcp_info():
    # Linux's inet_twsk_diag_fill sends no INET_DIAG_INFO, so `ss -ti` prints no
    # info line under a TIME-WAIT socket; emu printed a full one (cwnd, rtt...).
    p = Pair().connect()
    sys_close(p.t1, p.c)
    p.lab.run()
    assert sys_recvfrom(p.t2, p.s, 10)[0] == b""
    sys_close(p.t2, p.s)
    p.lab.run()
    rows = {r["state"]: r for r in inet_diag_dump(p.lab.nets["h1"], info=True)}
    assert rows["TIME-WAIT"]["info"] is None
    p2 = Pair().connect()
    est = [r for r in inet_diag_dump(p2.lab.nets["h1"], info=True) if r["state"] == "ESTAB"]
    assert est and est[0]["info"]                    # an established one keeps its own
