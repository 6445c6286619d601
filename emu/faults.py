"""Faults on demand: partition filters for the wires, and fault schedules.

A partition is a property of the cable (DESIGN.md): partition_specs computes,
for every wire end, which frames it drops (emu/wire/partition.py applies the
filter in the node runtime); the kernels see only loss.

A fault schedule is a list of events, in the topology (`faults:`) or in a
file of its own (`emu up --faults FILE`):

    faults:
      - {at: 5s, link_down: h1:eth0, for: 2s}
      - {at: 10s, kill: h3, restart_after: 3s}
      - {at: 12s, partition: [[h1, h2], [h3]], for: 5s}

The orchestrator's supervisor runs it (FaultSchedule) and logs each event
with its time.
"""
import re
import threading
import time

ACTIONS = ("link_down", "link_up", "kill", "stop", "start", "restart", "partition", "heal")
_EVENT_KEYS = set(ACTIONS) | {"at", "for", "restart_after", "one_way"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


class FaultError(ValueError):
    """A bad fault schedule or request: the message is one line for the user."""


def parse_duration(value):
    """5, 5.5, "5s", "500ms", "2m" -> seconds (float); ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(value)
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(value)
    n = float(m.group(1))
    return n / 1000.0 if m.group(2) == "ms" else n * 60.0 if m.group(2) == "m" else n


def parse_groups(value):
    """[[h1, h2], [h3]] or ["h1,h2", "h3"] -> [["h1", "h2"], ["h3"]]."""
    if not isinstance(value, (list, tuple)):
        raise ValueError("must be a list of groups, like [[h1, h2], [h3]]")
    groups = []
    for item in value:
        g = [x for x in item.split(",") if x] if isinstance(item, str) else item
        if not isinstance(g, (list, tuple)) or not g or not all(isinstance(x, str) for x in g):
            raise ValueError("each group must be a list of node names, got %r" % (g,))
        groups.append([str(x) for x in g])
    return groups


def check_groups(groups, node_names):
    """The groups name nodes of the lab, each node at most once, two groups or more."""
    if len(groups) < 2:
        raise FaultError("a partition needs two groups or more (e.g. h1,h2 h3)")
    seen = set()
    for g in groups:
        for n in g:
            if n not in node_names:
                raise FaultError("no node %r in the lab (nodes: %s)" % (n, ", ".join(node_names)))
            if n in seen:
                raise FaultError("node %r is in two groups" % n)
            seen.add(n)


def parse_schedule(raw, fail, node_names, link_ends):
    """A `faults:` list -> a tuple of event dicts; fail(where, problem) reports a bad one.

    Each event: {"at": seconds, "action": name, "target": ..., "for": seconds
    or None, "restart_after": seconds or None, "one_way": bool}.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        fail("top level field 'faults'", "must be a list of events like {at: 5s, kill: h2}")
    events = []
    for i, ev in enumerate(raw):
        where = "fault %d" % i
        if not isinstance(ev, dict):
            fail(where, "must be a mapping like {at: 5s, link_down: h1:eth0, for: 2s}")
        unknown = [k for k in ev if k not in _EVENT_KEYS]
        if unknown:
            fail(where, "unknown key %r (allowed: %s)" % (unknown[0], ", ".join(sorted(_EVENT_KEYS))))
        actions = [k for k in ACTIONS if k in ev]
        if len(actions) != 1:
            fail(where, "needs exactly one of %s" % ", ".join(ACTIONS))
        action = actions[0]
        out = {"action": action, "target": ev[action], "for": None, "restart_after": None,
               "one_way": bool(ev.get("one_way", False))}
        for key in ("at", "for", "restart_after"):
            if key in ev:
                try:
                    out[key] = parse_duration(ev[key])
                except ValueError:
                    fail("%s field %r" % (where, key), "must be a duration like 5s or 500ms, got %r"
                         % (ev[key],))
        if "at" not in ev:
            fail(where, "needs 'at' (when, from the start of the lab: 5s)")
        target = ev[action]
        if action in ("link_down", "link_up"):
            if str(target) not in link_ends:
                fail("%s field %r" % (where, action), "%r is not a link end (node:ifname) of the lab"
                     % (target,))
            out["target"] = str(target)
        elif action in ("kill", "stop", "start", "restart"):
            if target not in node_names:
                fail("%s field %r" % (where, action), "unknown node %r" % (target,))
        elif action == "partition":
            try:
                out["target"] = parse_groups(target)
                check_groups(out["target"], node_names)
            except (ValueError, FaultError) as e:
                fail("%s field 'partition'" % where, str(e))
        if out["for"] is not None and action not in ("link_down", "partition", "stop"):
            fail("%s field 'for'" % where, "only link_down, partition and stop take 'for'")
        if out["restart_after"] is not None and action != "kill":
            fail("%s field 'restart_after'" % where, "only kill takes 'restart_after'")
        events.append(out)
    return tuple(events)


def load_schedule(path, topo):
    """`emu up --faults FILE`: a YAML list of events (or a mapping with `faults:`)."""
    import yaml

    from .topology import TopologyError
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except OSError as e:
        raise FaultError("%s: %s" % (path, e.strerror or e)) from None
    except yaml.YAMLError as e:              # one line, as a bad topology file's
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = "line %d column %d: " % (mark.line + 1, mark.column + 1) if mark else ""
        problem = getattr(e, "problem", None) or (str(e).splitlines() or ["syntax error"])[0]
        raise FaultError("%s: %sinvalid YAML: %s" % (path, where, problem)) from None
    if isinstance(raw, dict):
        if "faults" not in raw:
            # A topology file, or a typo: a schedule that silently does nothing is worse.
            raise FaultError("%s: no fault schedule: expected a list of events or a "
                             "mapping with 'faults:'" % path)
        raw = raw.get("faults")
    if not isinstance(raw, list):
        raise FaultError("%s: no fault schedule: expected a list of events, got %s"
                         % (path, "nothing" if raw is None else type(raw).__name__))

    def fail(where, problem):
        raise TopologyError(path, where, problem)
    return parse_schedule(raw, fail, [n.name for n in topo.nodes],
                          {str(e) for l in topo.links for e in l.ends()})


def timeline(events):
    """Events -> [(at, action, target, one_way, planned_from)] with the reverts
    (`for`, `restart_after`) as events of their own, in time order."""
    out = []
    for ev in events:
        at = ev["at"]
        out.append((at, ev["action"], ev["target"], ev["one_way"]))
        if ev.get("for") is not None:
            undo = {"link_down": "link_up", "partition": "heal", "stop": "start"}[ev["action"]]
            out.append((at + ev["for"], undo, ev["target"], False))
        if ev.get("restart_after") is not None:
            out.append((at + ev["restart_after"], "start", ev["target"], False))
    return sorted(out, key=lambda e: e[0])


# ----------------------------------------------------------------- partitions

def _macs(topo, node):
    from .kernel.ethernet.eth import eth_hw_addr_derive
    out = []
    for i in node.interfaces:
        if i.mac:
            out.append(i.mac.lower())
        else:
            out.append(":".join("%02x" % b for b in eth_hw_addr_derive(node.name, i.name)))
    return out


def partition_specs(topo, groups, one_way=False):
    """{(node, ifname): filter spec} for every wire end of the lab (see wire/partition.py).

    groups: lists of node names. Symmetric: no frame crosses between any two
    groups. one_way: frames from the first group to the others are dropped,
    the other direction passes.
    """
    group_of = {n: gi for gi, g in enumerate(groups) for n in g}
    k = len(groups)
    if one_way:
        cut = [[0, j] for j in range(1, k)]
    else:
        cut = [[i, j] for i in range(k) for j in range(k) if i != j]
    cutset = {tuple(c) for c in cut}
    ips, macs = {}, {}
    for node in topo.nodes:
        g = group_of.get(node.name)
        if g is None:
            continue
        for i in node.interfaces:
            for a in i.addresses:
                ips[str(a.ip)] = g
        for m in _macs(topo, node):
            macs[m] = g
    specs = {}
    for link in topo.links:
        if link.b is None:
            continue
        for me, peer in ((link.a, link.b), (link.b, link.a)):
            here, there = group_of.get(me.node), group_of.get(peer.node)
            specs[(me.node, me.ifname)] = {
                "ips": ips, "macs": macs, "here": here, "cut": cut,
                "all": here is not None and there is not None and (there, here) in cutset}
    return specs


# ----------------------------------------------------------------- schedules

class FaultSchedule:
    """Runs a timeline against a supervisor in a thread of its own.

    record: [(planned offset, actual offset, text)] for each event run, so a
    benchmark can measure how closely the schedule was kept.
    """

    def __init__(self, sup, events, t0=None):
        self.sup = sup
        self.timeline = timeline(events)
        self.t0 = time.monotonic() if t0 is None else t0
        self.record = []
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, name="faults", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def cancel(self):
        self.stop_ev.set()

    def wait(self, timeout=None):
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _run(self):
        lab = getattr(self.sup, "lab", None)
        if getattr(lab, "virtual", False):
            self._run_virtual(lab.run_dir)
            return
        for i, (at, _, _, _) in enumerate(self.timeline):
            if self.stop_ev.wait(max(0.0, self.t0 + at - time.monotonic())):
                return
            actual = time.monotonic() - self.t0
            self._act(i, actual)
        self.sup.log_event("fault schedule done")

    def _run_virtual(self, run_dir):
        """On a virtual-time lab: each event at its instant of the lab's time
        (counted from when the schedule starts), the lab's time standing
        while it acts (nodes/vclock.py Alarm)."""
        from .nodes.vclock import Alarm, read_page
        page = read_page(run_dir) or {"now": 0.0}
        base = int(round(page["now"] * 1e9))
        alarm = Alarm(run_dir)
        try:
            for i, (at, _, _, _) in enumerate(self.timeline):
                if not alarm.wait(base + int(round(at * 1e9)), self.stop_ev):
                    return
                now = (read_page(run_dir) or {"now": 0.0})["now"]
                self._act(i, now - base / 1e9)
        finally:
            alarm.close()
        self.sup.log_event("fault schedule done")

    def _act(self, i, actual):
        at, action, target, one_way = self.timeline[i]
        # A node this schedule kills and starts again later (restart_after, or
        # a start event of its own) stays down until then: the schedule, not
        # the node's restart policy, says when it comes back.
        hold = action == "kill" and any(a == "start" and t == target
                                        for _, a, t, _ in self.timeline[i + 1:])
        try:
            text = self.sup.do_action(action, target, one_way=one_way, scheduled_at=at,
                                      hold=hold)
        except Exception as e:          # one failed event must not end the schedule
            text = "%s %s failed: %s" % (action, target, e)
            self.sup.log_event("fault schedule: " + text)
        self.record.append((at, actual, text))
