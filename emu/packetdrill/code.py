"""%{ }% blocks: Python over the socket's tcp_info, as packetdrill's code.c.

packetdrill collects `struct tcp_info` of the socket under test at the
event's time and runs the code with every field bound as `tcpi_<field>`;
an assertion that fails fails the script at the block's line.

Emulation note: packetdrill runs all the blocks at the end of the script
with an external python; emu runs each at its own time, in-process, over
the kernel's tcp_info (its dict form: the same fields).
"""
from ..kernel.core.entry import kernel_entry
from ..kernel.ipv4.tcp import tcp_get_info

STATES = {"ESTABLISHED": 1, "SYN-SENT": 2, "SYN-RECV": 3, "FIN-WAIT-1": 4, "FIN-WAIT-2": 5,
          "TIME-WAIT": 6, "CLOSE": 7, "CLOSE-WAIT": 8, "LAST-ACK": 9, "LISTEN": 10,
          "CLOSING": 11, "NEW-SYN-RECV": 12}
CA_STATES = {"open": 0, "disorder": 1, "cwr": 2, "recovery": 3, "loss": 4}
TCPI_OPTS = {"ts": 1, "sack": 2, "wscale": 4, "ecn": 8}

# tcp_states.h and the TCPI option bits, for scripts that compare against them
CONSTANTS = {"TCP_ESTABLISHED": 1, "TCP_SYN_SENT": 2, "TCP_SYN_RECV": 3, "TCP_FIN_WAIT1": 4,
             "TCP_FIN_WAIT2": 5, "TCP_TIME_WAIT": 6, "TCP_CLOSE": 7, "TCP_CLOSE_WAIT": 8,
             "TCP_LAST_ACK": 9, "TCP_LISTEN": 10, "TCP_CLOSING": 11,
             "TCP_CA_Open": 0, "TCP_CA_Disorder": 1, "TCP_CA_CWR": 2, "TCP_CA_Recovery": 3,
             "TCP_CA_Loss": 4, "TCPI_OPT_TIMESTAMPS": 1, "TCPI_OPT_SACK": 2,
             "TCPI_OPT_WSCALE": 4, "TCPI_OPT_ECN": 8}


def tcpi_vars(sk):
    info = tcp_get_info(sk)
    tp = sk.proto_data
    v = {}
    for k, x in info.items():
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            v["tcpi_" + k] = x
    v["tcpi_state"] = STATES.get(info["state"], 0)
    v["tcpi_ca_state"] = CA_STATES.get(info["ca_state"], 0)
    opts = 0
    for o in info["options"]:
        opts |= TCPI_OPTS.get(o, 0)
    v["tcpi_options"] = opts
    v["tcpi_pmtu"] = _pmtu(sk)
    now = sk.net.clock()
    for name, t in (("last_data_sent", tp.last_data_sent), ("last_data_recv", tp.last_data_recv),
                    ("last_ack_recv", tp.last_ack_recv)):
        v["tcpi_" + name] = int((now - t) * 1000) if t else 0     # ms ago, as tcp_get_info
    v["tcpi_min_rtt"] = v.get("tcpi_min_rtt", int(tp.srtt * 1e6))
    return v


def _pmtu(sk):
    """icsk_pmtu_cookie: the path MTU the connection's MSS was synced to."""
    from ..kernel.ipv4.route import ip_dst_mtu
    rt = sk.sk_dst_cache
    if rt is None:
        return sk.net.dev_by_name["tun0"].mtu
    return ip_dst_mtu(sk.net, rt, sk.inet_daddr)


def run_code(runner, event):
    s = runner.sock
    sk = None
    if s is not None and s.live_fd is not None:
        sock = runner.task.fds.get(s.live_fd)
        sk = sock.sk if sock is not None else None
    env = dict(CONSTANTS)
    if sk is not None and sk.sk_protocol == 6:
        env.update(kernel_entry(runner.net, 0, tcpi_vars, sk))
    try:
        exec(compile(event.body, "%s:%d" % (runner.name, event.line), "exec"), env)  # noqa: S102
    except AssertionError as e:
        runner.fail(event, "assertion failed in code: %s%s" % (
            _first_line(event.body, e), _values(event.body, env)))
    except Exception as e:   # a script's own Python error: its message, at its line
        runner.fail(event, "error executing code: %s: %s" % (type(e).__name__, e))


def _first_line(code, e):
    if str(e):
        return str(e)
    import traceback
    tb = traceback.extract_tb(e.__traceback__)
    for fr in reversed(tb):
        if fr.lineno:
            lines = code.split("\n")
            if 0 < fr.lineno <= len(lines):
                return lines[fr.lineno - 1].strip()
    return "assert"


def _values(code, env):
    import re
    names = sorted(set(re.findall(r"\btcpi_[a-z_]+\b", code)))
    shown = ["%s=%s" % (n, env[n]) for n in names if n in env]
    return " (%s)" % ", ".join(shown) if shown else ""
