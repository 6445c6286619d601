"""The timekeeper's decisions (emu/nodes/vclock.py), driven inline: which
nodes step, when time jumps and when it stands, without any node process."""
import tempfile

import msgpack
import pytest

from emu.nodes.vclock import Timekeeper, ns_of

S = 10**9


class _Conn:
    def __init__(self):
        self.sent = []

    def sendall(self, data):
        self.sent.append(data)


@pytest.fixture
def tk():
    d = tempfile.mkdtemp(prefix="vc-", dir="/tmp")
    t = Timekeeper(d, {"nodes": ["a", "b", "br"], "epoch": 0,
                       "wires": [[["a", "eth0"], ["br", "p1"]], [["b", "eth0"], ["br", "p2"]]]})
    t.steps = []
    t.router.send_multipart = lambda frames: t.steps.append(
        (frames[0].decode(), msgpack.unpackb(frames[1])))
    for n in ("a", "b", "br"):
        t.on_node(n.encode(), {"op": "hello"})
    t.steps.clear()
    yield t
    t.router.close(0)
    t.listener.close()
    t.ctx.term()


def report(tk, node, op="state", **kw):
    tk.on_node(node.encode(), dict({"op": op}, **kw))


def finish(tk, **per_node):
    """Every stepping node reports done (with what per_node gives it)."""
    for name in sorted(tk.stepping):
        report(tk, name, "done", **per_node.get(name, {}))


def test_a_lab_nobody_waits_on_is_paused(tk):
    report(tk, "a", next=5 * S)
    report(tk, "br", next=300 * S)
    tk.schedule()
    assert tk.t == 0 and tk.steps == []


def test_time_jumps_to_the_earliest_event_when_every_program_waits(tk):
    tk.progs[99] = (None, 1)                             # program 1, registered
    report(tk, "a", next=5 * S, blocked=[1])             # ... waiting in a call on a
    report(tk, "br", next=300 * S)
    tk.schedule()
    assert tk.t == 5 * S and [n for n, _ in tk.steps] == ["a"]
    assert tk.steps[0][1]["t"] == 5 * S and tk.page.now_ns() == 5 * S


def test_a_running_program_holds_the_time(tk):
    tk.progs[99] = (None, 1)
    report(tk, "a", next=5 * S)                          # not blocked: it runs
    tk.schedule()
    assert tk.t == 0 and tk.steps == []


def test_frames_in_flight_make_a_round_at_the_same_instant(tk):
    tk.progs[99] = (None, 1)
    report(tk, "a", tx={"eth0": 3}, blocked=[1], next=9 * S)
    tk.schedule()
    assert tk.t == 0 and tk.steps == [("br", {"op": "step", "t": 0, "round": 1,
                                              "expect": {"p1": 3, "p2": 0}})]
    tk.schedule()                                        # br steps: nothing else starts
    assert len(tk.steps) == 1
    finish(tk, br={"rx": {"p1": 3}, "tx": {"p2": 2}})
    tk.schedule()
    assert tk.steps[-1] == ("b", {"op": "step", "t": 0, "round": 2, "expect": {"eth0": 2}})


def test_a_fault_schedule_stops_time_at_its_instant_and_acts_first(tk):
    tk.progs[99] = (None, 1)
    report(tk, "a", next=2 * S, blocked=[1])
    conn = _Conn()
    tk.alarms[7] = [conn, 1 * S, False]                  # an event at 1 s
    tk.schedule()
    assert tk.t == 1 * S and conn.sent == [b"ring %d\n" % S] and tk.steps == []
    tk.schedule()
    assert tk.t == 1 * S                                 # it acts: time stands
    tk.alarms[7][1:] = [None, False]                     # done: no more events
    tk.schedule()
    assert tk.t == 2 * S and [n for n, _ in tk.steps] == ["a"]


def test_an_alarm_alone_does_not_move_time(tk):
    tk.alarms[7] = [_Conn(), 1 * S, False]
    report(tk, "a", next=2 * S)
    tk.schedule()
    assert tk.t == 0


def test_calls_from_outside_keep_the_hosts_pace(tk):
    report(tk, "a", next=60 * S, parked=1, ext=1)        # the test process waits in a call
    tk.schedule()
    assert tk.t == 0 and tk.wake_at is not None          # 60 s ahead: not yet


def test_a_dead_node_is_not_waited_for(tk):
    tk.progs[99] = (None, 1)
    report(tk, "b", tx={"eth0": 4}, blocked=[1])
    tk.schedule()
    assert tk.stepping == {"br"}
    tk.node_down("br")                                   # it died in its step
    report(tk, "a", next=3 * S)
    tk.schedule()
    assert tk.t == 3 * S and "br" not in tk.stepping
    # Its peers no longer wait for what it sent and they have not read.
    assert tk.expect("a") == {"eth0": 0}


def test_deadlines_round_up_to_the_nanosecond():
    assert ns_of(1.5) == 1_500_000_000
    t = 0.1 + 0.2                                        # 0.30000000000000004
    assert ns_of(t) / 1e9 >= t
