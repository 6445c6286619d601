"""Supervision: the orchestrator's hold on a running lab.

A Supervisor wraps a started orchestrator.Lab and owns what happens to it
afterwards: it notices a node's unexpected death (within WATCH_INTERVAL),
records how it ended (exit code or signal, the last log lines), tells the
peers' wire ends that their carrier is gone, applies the node's restart
policy (`restart: no | on-failure | always` in the topology), and runs the
fault operations: cut and mended cables, partitions, node kill / stop /
start / restart and fault schedules (emu/faults.py).

The same operations are served on the lab's orchestrator control endpoint
(ipc://RUN_DIR/orch.ctl, the nodes' msgpack request/response), so `emu link
down`, `emu partition`, `emu node kill` reach the orchestrator of a lab
started with `emu up -d`, `emu up` or the Python API. Node state, how dead
nodes ended and the fault log are recorded in lab.json for `emu status` and
for the one-line answers about a dead node.
"""
import logging
import os
import signal
import subprocess
import threading
import time

import msgpack
import zmq

from .client.rpc import ControlClient, NodeUnreachable
from .faults import FaultError, FaultSchedule, check_groups, parse_groups, partition_specs

log = logging.getLogger("emu.supervisor")

WATCH_INTERVAL = 0.1        # seconds between looks at the node processes
ORCH_CTL = "orch.ctl"
LOG_KEEP = 200              # fault log lines kept in lab.json
DEAD_STATES = ("crashed", "killed", "stopped", "exited")


def orch_endpoint(run_dir):
    return "ipc://%s/%s" % (run_dir, ORCH_CTL)


def describe_exit(rc):
    """(code, signal name) of a Popen returncode."""
    if rc is None:
        return None, None
    if rc < 0:
        try:
            return None, signal.Signals(-rc).name
        except ValueError:
            return None, "signal %d" % -rc
    return rc, None


def ago(t, now=None):
    d = max(0.0, (now or time.time()) - t)
    if d < 120:
        return "%d s ago" % d
    if d < 7200:
        return "%d min ago" % (d // 60)
    return "%d h ago" % (d // 3600)


def node_state_text(info, now=None):
    """`crashed (SIGKILL) 3 s ago`, `stopped 10 s ago`, `running` (from lab.json)."""
    state = info.get("state", "running")
    ex = info.get("exit") or {}
    if state not in DEAD_STATES:
        return state
    how = ex.get("signal") or ("exit %s" % ex["code"] if ex.get("code") is not None else "")
    text = state + (" (%s)" % how if how and state != "stopped" else "")
    return text + (" " + ago(ex["at"], now) if ex.get("at") else "")


def dead_node_message(st, node):
    """The one line about a node that is not running, or None if it runs."""
    from .orchestrator import _same_process
    info = st.get("nodes", {}).get(node)
    if info is None:
        return None
    state = info.get("state", "running")
    # A node on a cluster machine may run on another host: its PID means
    # nothing here, and the lab's supervisor keeps its state.
    alive = info.get("machine") is not None or _same_process(info.get("pid"),
                                                             info.get("create_time"))
    if alive and state not in DEAD_STATES:
        return None
    ex = info.get("exit") or {}
    if state == "stopped":
        why = "stopped %s" % ago(ex["at"]) if ex.get("at") else "stopped"
    elif ex.get("signal"):
        why = "killed by %s %s" % (ex["signal"], ago(ex["at"]))
    elif ex.get("code") is not None:
        why = "exited with status %s %s" % (ex["code"], ago(ex["at"]))
    else:
        why = "its process is gone"
    if not st.get("alive", True):
        # Nothing can start it again: `emu node start` asks the orchestrator.
        return ("%s is not running (%s), and the orchestrator of lab %s is gone; bring the lab "
                "down with: emu down" % (node, why, st.get("name")))
    return "%s is not running (%s); start it with: emu node start %s" % (node, why, node)


class Supervisor:
    """Watches one Lab's nodes and carries out fault operations on it."""

    def __init__(self, lab):
        self.lab = lab
        self.topo = lab.topo
        self.lock = threading.RLock()
        self.closing = threading.Event()
        self.cut = set()              # indices of links cut by `emu link down`
        self.partition = None         # {"groups": [[...], ...], "one_way": bool}
        self.events = []              # [(wall time, text)]: the fault log
        self.lost = []                # [(node, exit info)]: deaths nobody asked for
        self.schedules = []
        self.on_event = None          # callback(text), e.g. the foreground `emu up` prints
        self.on_death = None          # callback(node): the Python API ends its programs
        self.t0 = time.monotonic()
        self.policy = {n.name: getattr(n, "restart", "no") for n in self.topo.nodes}
        self.node_index = {n.name: i + 1 for i, n in enumerate(self.topo.nodes)}
        self.restart_times = {n: [] for n in self.policy}
        self.held = set()        # killed by a schedule that starts them later: no policy restart
        for name, info in lab.nodes.items():
            info.setdefault("state", "running")
            info.setdefault("restarts", 0)
            info["restart"] = self.policy.get(name, "no")
        self.threads = []
        self.ctl_sock = None

    # ------------------------------------------------------------- life
    def start(self, faults_path=None, serve=True):
        self.lab.supervisor = self
        self.log_path = os.path.join(self.lab.run_dir, "faults.log")
        t = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        t.start()
        self.threads.append(t)
        if serve:
            self.ctl_sock = zmq.Context.instance().socket(zmq.ROUTER)
            self.ctl_sock.setsockopt(zmq.LINGER, 0)
            self.ctl_sock.bind(orch_endpoint(self.lab.run_dir))
            t = threading.Thread(target=self._serve, name="orch-ctl", daemon=True)
            t.start()
            self.threads.append(t)
        events = list(self.topo.faults)
        if faults_path:
            from .faults import load_schedule
            events += list(load_schedule(faults_path, self.topo))
        if events:
            self.run_schedule(events)
        self.save()
        return self

    def close(self):
        if self.closing.is_set():
            return
        self.closing.set()
        for s in self.schedules:
            s.cancel()
        for t in self.threads:
            if t is not threading.current_thread():
                t.join(2.0)

    # ------------------------------------------------------------- records
    def log_event(self, text):
        now = time.time()
        line = "%s +%.3fs %s" % (time.strftime("%H:%M:%S", time.localtime(now)) +
                                 ".%03d" % int(now % 1 * 1000), time.monotonic() - self.t0, text)
        with self.lock:
            self.events.append((now, line))
            del self.events[:-LOG_KEEP]
        try:
            with open(self.log_path, "a") as f:
                f.write(line + "\n")
        except (OSError, AttributeError):
            pass
        if self.on_event is not None:
            try:
                self.on_event(line)
            except Exception:
                pass
        log.info("%s", text)

    def save(self):
        """lab.json: the Lab's state plus node states, cut links, partition, fault log."""
        import json
        lab = self.lab
        if not lab.run_dir or not os.path.isdir(lab.run_dir) or self.closing.is_set():
            return
        with self.lock:
            st = lab.state("running")
            st["links"] = self.links()
            st["partition"] = self.partition
            st["fault_log"] = [line for _, line in self.events[-50:]]
            st["orchestrator_ctl"] = orch_endpoint(lab.run_dir)
            path = os.path.join(lab.run_dir, "lab.json")
            tmp = path + ".tmp"
            try:
                with open(tmp, "w") as f:
                    json.dump(st, f, indent=1)
                os.replace(tmp, path)
            except OSError:
                pass

    def alive(self, name):
        return self.lab.nodes[name].get("state") == "running"

    # ------------------------------------------------------------- watching
    def _watch(self):
        while not self.closing.wait(WATCH_INTERVAL):
            for name, proc in list(self.lab.procs.items()):
                if proc.poll() is not None and self.alive(name):
                    with self.lock:
                        if self.closing.is_set():
                            return
                        if self.lab.procs.get(name) is proc and self.alive(name):
                            self._died(name, proc.returncode, by_user=False)

    def _died(self, name, rc, by_user, state=None):
        """Record a death, cut the peers' carrier, apply the restart policy."""
        info = self.lab.nodes[name]
        code, sig = describe_exit(rc)
        ex = {"code": code, "signal": sig, "at": time.time(), "by_user": bool(by_user),
              "log": self.lab.log_tail(name, 10).split(" | ")}
        if state is None:
            state = "killed" if by_user else ("crashed" if sig or code else "exited")
        info["state"] = state
        info["exit"] = ex
        self.lab.vclock_down(name)       # a virtual-time lab's clock waits for it no more
        how = sig or "exit status %s" % code
        self.log_event("node %s %s (%s)%s" % (name, state, how, "" if by_user else
                                               ": " + " | ".join(ex["log"][-3:])))
        if not by_user:
            self.lost.append((name, ex))
        if self.on_death is not None:
            try:
                self.on_death(name)
            except Exception:
                log.exception("on_death")
        for link in self._links_of(name):
            self._apply_carrier(link)
        self.save()
        policy = self.policy.get(name, "no")
        if name in self.held:
            self.log_event("node %s stays down until its fault schedule starts it" % name)
        elif state != "stopped" and (policy == "always" or (policy == "on-failure" and (sig or code))):
            self._restart_later(name)

    def _restart_later(self, name):
        # Back off when a node keeps dying: 0.1 s, doubling to 5 s within a minute.
        now = time.monotonic()
        recent = [t for t in self.restart_times[name] if now - t < 60]
        self.restart_times[name] = recent + [now]
        delay = min(5.0, 0.1 * 2 ** max(0, len(recent) - 1)) if recent else 0.0

        def later():
            if self.closing.wait(delay):
                return
            with self.lock:
                if self.closing.is_set() or self.alive(name):
                    return
                try:
                    self.start_node(name, why="restart policy %s" % self.policy[name])
                except Exception as e:
                    self.log_event("node %s: restart failed: %s" % (name, e))
        threading.Thread(target=later, name="restart-%s" % name, daemon=True).start()

    # ------------------------------------------------------------- nodes
    def _node(self, name):
        if name not in self.lab.nodes:
            raise FaultError("no node %r in lab %s (nodes: %s)"
                             % (name, self.topo.name, ", ".join(self.lab.nodes)))
        return self.lab.nodes[name]

    def kill_node(self, name, sig=signal.SIGKILL, hold=False):
        """SIGKILL the node's process (a crash): the restart policy applies,
        unless hold (it stays down until start_node)."""
        with self.lock:
            self._node(name)
            if not self.alive(name):
                raise FaultError("%s is not running" % name)
            if hold:
                self.held.add(name)
            proc = self.lab.procs[name]
            proc.send_signal(sig)
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self._died(name, proc.returncode, by_user=True)
            return "node %s killed (%s)" % (name, signal.Signals(sig).name)

    def stop_node(self, name):
        """Shut the node down (asked, then SIGTERM, then SIGKILL); no restart."""
        with self.lock:
            self._node(name)
            if not self.alive(name):
                raise FaultError("%s is not running" % name)
            proc = self.lab.procs[name]
            try:
                self.lab.ctl[name].call("shutdown", timeout=0.5)
            except OSError:
                pass
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self._died(name, proc.returncode, by_user=True, state="stopped")
            return "node %s stopped" % name

    def start_node(self, name, why="started", timeout=30.0):
        """A fresh kernel from the topology: configured state re-applied, wires reattached."""
        with self.lock:
            info = self._node(name)
            if self.alive(name):
                raise FaultError("%s is already running" % name)
            self.held.discard(name)
            lab = self.lab
            node = self.topo.node(name)
            try:
                os.unlink(info["sys"])          # the dead kernel's syscall socket
            except (OSError, KeyError):
                pass
            env = dict(os.environ)
            from .orchestrator import _package_parent
            env["PYTHONPATH"] = _package_parent() + (os.pathsep + env["PYTHONPATH"]
                                                     if env.get("PYTHONPATH") else "")
            pdeath = threading.current_thread() is threading.main_thread()
            proc = lab._spawn_one(node, self.node_index[name], env, pdeath)
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    self._died(name, proc.returncode, by_user=False)
                    raise FaultError("node %s exited while booting: %s" % (name, lab.log_tail(name, 3)))
                try:
                    lab.ctl[name].call("ping", timeout=0.2)
                    break
                except NodeUnreachable:
                    if time.monotonic() > deadline:
                        proc.kill()
                        raise FaultError("node %s did not boot within %.0f s" % (name, timeout)) from None
            lab.only = {name}
            try:
                lab._configure()
            finally:
                lab.only = None
            info["state"] = "running"
            info["restarts"] = info.get("restarts", 0) + 1
            info["started_at"] = time.time()
            for link in self._links_of(name):
                self._apply_carrier(link)
            self._apply_partition(only=name)
            self.log_event("node %s %s (pid %d)" % (name, why, proc.pid))
            self.save()
            return "node %s running (pid %d)" % (name, proc.pid)

    def restart_node(self, name):
        with self.lock:
            self._node(name)
            if self.alive(name):
                self.stop_node(name)
            return self.start_node(name, why="restarted")

    # ------------------------------------------------------------- links
    def _links_of(self, name):
        return [l for l in self.topo.links if l.b is not None and
                name in (l.a.node, l.b.node)]

    def find_link(self, end):
        node, _, ifname = str(end).partition(":")
        for link in self.topo.links:
            for e in link.ends():
                if (e.node, e.ifname) == (node, ifname):
                    return link
        raise FaultError("no link at %r in lab %s (links: %s)" % (
            str(end), self.topo.name, ", ".join(str(l.a) for l in self.topo.links)))

    def _apply_carrier(self, link):
        """Each end has carrier when the cable is whole and the node across it runs."""
        up = link.index not in self.cut and all(self.alive(e.node) for e in link.ends())
        for e in link.ends():
            if self.alive(e.node):
                try:
                    self.lab.ctl[e.node].call("wire_carrier", ifname=e.ifname, up=up, timeout=5.0)
                except OSError as err:
                    self.log_event("%s: carrier %s: %s" % (e, "on" if up else "off", err))

    def link_set(self, end, up):
        """Cut (up=False) or mend the cable at end: both ends lose/regain carrier."""
        with self.lock:
            link = self.find_link(end)
            if link.b is None:
                raise FaultError("%s faces a Linux TAP: cut it with `ip link set %s down` there"
                                 % (end, link.tap))
            if up:
                self.cut.discard(link.index)
            else:
                self.cut.add(link.index)
            self._apply_carrier(link)
            text = "link %s <-> %s %s" % (link.a, link.b, "up" if up else "down")
            self.log_event(text)
            self.save()
            return text

    def links(self):
        """[{a, b, type, state}] for `emu link`."""
        out = []
        for l in self.topo.links:
            if l.b is None:
                out.append({"a": str(l.a), "b": "tap " + str(l.tap), "type": "tap", "state": "up"})
                continue
            dead = [e.node for e in l.ends() if not self.alive(e.node)]
            state = "down (cut)" if l.index in self.cut else \
                "no carrier (%s not running)" % ", ".join(dead) if dead else "up"
            out.append({"a": str(l.a), "b": str(l.b), "type": l.type, "state": state})
        return out

    # ------------------------------------------------------------- partitions
    def set_partition(self, groups, one_way=False):
        with self.lock:
            groups = parse_groups(groups)
            check_groups(groups, list(self.lab.nodes))
            self.partition = {"groups": groups, "one_way": bool(one_way)}
            self._apply_partition()
            text = "partition %s%s" % (" | ".join(",".join(g) for g in groups),
                                       " (one way: first group cannot reach the others)"
                                       if one_way else "")
            self.log_event(text)
            self.save()
            return text

    def heal(self):
        with self.lock:
            had = self.partition is not None
            self.partition = None
            self._apply_partition()
            self.log_event("heal" if had else "heal (no partition was set)")
            self.save()
            return "healed" if had else "no partition was set"

    def _apply_partition(self, only=None):
        specs = {}
        if self.partition is not None:
            specs = partition_specs(self.topo, self.partition["groups"], self.partition["one_way"])
        for link in self.topo.links:
            if link.b is None:
                continue
            for e in link.ends():
                if (only is not None and e.node != only) or not self.alive(e.node):
                    continue
                try:
                    self.lab.ctl[e.node].call("wire_filter", ifname=e.ifname,
                                              spec=specs.get((e.node, e.ifname)), timeout=5.0)
                except OSError as err:
                    self.log_event("%s: partition filter: %s" % (e, err))

    # ------------------------------------------------------------- schedules
    def run_schedule(self, events, t0=None):
        s = FaultSchedule(self, events, t0).start()
        self.schedules.append(s)
        self.log_event("fault schedule: %d event(s)" % len(s.timeline))
        return s

    def do_action(self, action, target, one_way=False, scheduled_at=None, hold=False):
        """One fault action (from a schedule or the control endpoint). hold: a
        killed node is not restarted by its policy (its schedule starts it)."""
        if scheduled_at is not None:
            self.log_event("scheduled at %gs: %s %s" % (scheduled_at, action, target))
        if action in ("link_down", "link_up"):
            return self.link_set(target, action == "link_up")
        if action == "kill":
            return self.kill_node(target, hold=hold)
        if action == "stop":
            return self.stop_node(target)
        if action == "start":
            return self.start_node(target)
        if action == "restart":
            return self.restart_node(target)
        if action == "partition":
            return self.set_partition(target, one_way)
        if action == "heal":
            return self.heal()
        raise FaultError("unknown fault action %r" % action)

    # ------------------------------------------------------------- control endpoint
    def _serve(self):
        sock = self.ctl_sock
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        while not self.closing.is_set():
            if not poller.poll(200):
                continue
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                continue
            ident, payload = frames[0], frames[-1]
            try:
                req = msgpack.unpackb(payload, raw=False)
                result = self.control(req.get("op"), req.get("args") or {})
                reply = {"ok": True, "result": result}
            except (FaultError, ValueError, KeyError, TypeError) as e:
                reply = {"ok": False, "errno": 22, "error": str(e).strip("'\"")}
            except OSError as e:
                reply = {"ok": False, "errno": e.errno or 5, "error": e.strerror or str(e)}
            except Exception as e:          # a bad request never takes the orchestrator down
                log.exception("orchestrator control request failed")
                reply = {"ok": False, "errno": 5, "error": "%s: %s" % (type(e).__name__, e)}
            try:
                sock.send_multipart([ident, msgpack.packb(reply, use_bin_type=True)])
            except zmq.ZMQError:
                pass
        sock.close(0)

    def control(self, op, args):
        if op == "ping":
            return {"pid": os.getpid()}
        if op == "links":
            return self.links()
        if op == "link":
            return self.link_set(args["end"], bool(args["up"]))
        if op == "partition":
            return self.set_partition(args["groups"], bool(args.get("one_way")))
        if op == "heal":
            return self.heal()
        if op == "node":
            action = args.get("action")
            fn = {"kill": self.kill_node, "stop": self.stop_node, "start": self.start_node,
                  "restart": self.restart_node}.get(action)
            if fn is None:
                raise FaultError("unknown node action %r" % action)
            return fn(args["node"])
        if op == "faults":
            from .faults import load_schedule
            s = self.run_schedule(load_schedule(args["file"], self.topo))
            return "fault schedule started: %d event(s)" % len(s.timeline)
        raise FaultError("unknown orchestrator op %r" % op)


def orchestrator_call(st, op, timeout=60.0, **args):
    """Ask a running lab's orchestrator (from lab.json st) to do op; OSError on failure."""
    if not st.get("alive", True):
        raise FaultError("the orchestrator of lab %s is gone (pid %s); bring it down with: emu down"
                         % (st["name"], st.get("orchestrator_pid")))
    c = ControlClient(st.get("orchestrator_ctl") or orch_endpoint(st["run_dir"]), timeout=timeout)
    try:
        return c.call(op, **args)
    except NodeUnreachable:
        raise FaultError("the orchestrator of lab %s did not answer" % st["name"]) from None
    finally:
        c.close()
