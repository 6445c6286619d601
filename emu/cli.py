"""The `emu` command: up, down, status, gen, exec, shell, trace, graph, netem, demo.

    emu up topologies/veth-bridge.yaml        # foreground; Ctrl-C tears down
    emu up -d topologies/veth-bridge.yaml     # detached
    emu status [--summary] [--nodes 'h1*'] [--format json]
    emu gen campus --bridges 40 --hosts-per-bridge 25 -o campus.yaml
    emu exec h1 -- ping -c 3 h2
    emu down
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

from .labd import early_start

# `emu up -d FILE`: the lab's orchestrator starts now, before this command
# imports the rest, and waits for cmd_up's go (labd.py). Only for the emu
# command itself, not for a program that imports this module.
_EARLY = (early_start(sys.argv[1:]) if os.path.basename(sys.argv[0]) == "emu"
          or sys.argv[0].endswith(os.path.join("emu", "__main__.py")) else None)

import psutil  # noqa: E402

from .faults import FaultError  # noqa: E402
from .orchestrator import Lab, LabError, find_lab, list_labs, stop_lab  # noqa: E402
from .supervisor import dead_node_message, orchestrator_call  # noqa: E402
from .topology import TopologyError, load_topology, parse_topology  # noqa: E402


DEMO_FILE = "topologies/veth-bridge.yaml"


def _err(msg):
    print("emu: %s" % msg, file=sys.stderr)
    return 1


def _usage(msg):
    """A command line the command cannot take: exit 2, as argparse's usage errors."""
    _err(msg)
    return 2


def _print_lab(st, out=print):
    out("lab %s  run dir %s  orchestrator pid %s  %s" % (
        st["name"], st["run_dir"], st["orchestrator_pid"],
        st["status"] if st.get("alive", True) else "stale (orchestrator gone)"))


def _dry_run(topo, cluster):
    """emu up --dry-run: where each node would run, and the links that cross machines."""
    if not cluster:
        print("lab %s: %d nodes, all on this machine" % (topo.name, len(topo.nodes)))
        return 0
    from .cluster import Cluster, ClusterError, place
    try:
        c = Cluster(cluster)
    except ClusterError as e:
        return _err(str(e))
    try:
        plan = place(topo, c.machines)
    except ClusterError as e:
        return _err(str(e))
    for m in c.machines:
        names = [n for n, i in plan.items() if i == m.index]
        labels = ",".join(sorted(m.resources)) or "-"
        print("machine %d  %s  ray node %s  labels %s  %d nodes: %s"
              % (m.index, m.ip, m.ray_node[:12], labels, len(names), " ".join(names) or "-"))
    cut = [l for l in topo.links if l.b is not None and plan[l.a.node] != plan[l.b.node]]
    print("%d links cross machines (tcp:// with CURVE)%s" % (
        len(cut), ": " + ", ".join("%s-%s" % (l.a, l.b) for l in cut) if cut else ""))
    if c.owned:
        c.ray.shutdown()
    return 0


def _seed_arg(v):
    try:
        n = int(v, 0)
    except ValueError:
        raise argparse.ArgumentTypeError("must be an integer 0..2^64-1, got %r" % v) from None
    if not 0 <= n < 1 << 64:
        raise argparse.ArgumentTypeError("must be an integer 0..2^64-1, got %r" % v)
    return n


def cmd_up(a):
    try:
        topo = load_topology(a.file)
    except TopologyError as e:
        return _err(str(e))
    from .labname import check_new_name, rename
    if a.name:
        try:
            topo = rename(topo, a.name)
        except ValueError as e:
            return _err(str(e))
    err = check_new_name(topo.name, explicit=bool(a.name))
    if err:
        return _err(err)
    for note in topo.notes:                  # what a containerlab file asked for that emu ignores
        print("emu: %s: %s" % (a.file, note), file=sys.stderr)
    if a.faults:
        from .faults import FaultError, load_schedule
        try:
            load_schedule(a.faults, topo)          # checked here: errors go to the user
        except (FaultError, TopologyError) as e:
            return _err(str(e))
    a.cluster = a.cluster or topo.cluster
    from .orchestrator import LabError, with_clock
    try:
        topo = with_clock(topo, a.clock, a.seed, a.cluster)
    except LabError as e:
        return _err(str(e))
    if a.dry_run:
        return _dry_run(topo, a.cluster)
    if a.cluster:
        from .cluster import RAY_HINT
        try:
            import ray  # noqa: F401
        except ImportError:
            return _err(RAY_HINT)
    if a.detach:
        early = _take_early(a, topo)
        if early is not None:
            proc, r = early["proc"], early["ready"]
            os.write(early["go"], b"g")           # checked: it may start the lab
            os.close(early["go"])
        else:
            r, w = os.pipe()
            extra = ["--faults", os.path.abspath(a.faults)] if a.faults else []
            extra += ["--name", topo.name] if a.name else []
            extra += ["--cluster", a.cluster] if a.cluster else []
            extra += ["--clock", a.clock] if a.clock else []
            extra += ["--seed", str(a.seed)] if a.seed is not None else []
            from .labd import run_base
            extra += ["--base", run_base()]
            proc = subprocess.Popen([sys.executable, "-m", "emu.labd",
                                     os.path.abspath(a.file), str(w)] + extra, pass_fds=(w,),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True,
                                    env=_env())
            os.close(w)
        from .progress import StartProgress, relay
        with os.fdopen(r) as f, StartProgress(topo.name) as progress:
            line = f.readline().strip()
            while relay(line, progress):
                line = f.readline().strip()
        if not line.startswith("OK "):
            proc.wait(5)
            return _err(line[4:] if line.startswith("ERR ") else "lab failed to start")
        st = find_lab(base=None, name=os.path.basename(line[3:]))
        _print_lab(st)
        if len(st["nodes"]) > 20:           # a large lab: emu status lists them
            print("nodes: %d (emu status lists them)" % len(st["nodes"]))
        else:
            print("nodes: %s" % ", ".join("%s (pid %d)" % (n, i["pid"]) for n, i in st["nodes"].items()))
        print("stop it with: emu down --lab %s" % (st["name"] if a.name else
                                                     os.path.basename(st["run_dir"])))
        return 0
    from .supervisor import Supervisor
    lab = Lab(topo, cluster=a.cluster)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    from .progress import StartProgress
    try:
        with StartProgress(topo.name) as lab.progress:
            lab.start()
    except LabError as e:
        return _err(str(e))
    sup = Supervisor(lab)
    sup.on_event = lambda line: print("emu: " + line, file=sys.stderr, flush=True)
    try:
        sup.start(faults_path=a.faults)
        st = lab.state("running")
        _print_lab(st)
        for n, i in list(st["nodes"].items())[:20]:
            print("  %-8s %-7s pid %-7d cpus %d" % (n, i["kind"], i["pid"], i["cpus"]))
        if len(st["nodes"]) > 20:
            print("  ... and %d more (emu status lists them)" % (len(st["nodes"]) - 20))
        print("lab is up; press Ctrl-C to tear it down")
        while not stop:
            time.sleep(0.2)          # the supervisor watches the nodes and reports
    except KeyboardInterrupt:
        pass
    finally:
        sup.close()
        lab.stop()
        print("lab %s torn down" % topo.name)
    return 0


def _take_early(a, topo):
    """The orchestrator started early for exactly this `emu up -d`, if any
    (otherwise it is let go: it reads end-of-file and exits)."""
    global _EARLY
    early, _EARLY = _EARLY, None
    if early is None:
        return None
    same = (early["file"] == os.path.abspath(a.file)
            and early["faults"] == (os.path.abspath(a.faults) if a.faults else None)
            and early["name"] == (topo.name if a.name else None))
    if same:
        return early
    os.close(early["go"])
    os.close(early["ready"])
    early["proc"].wait()
    return None


def _env():
    env = dict(os.environ)
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def cmd_down(a):
    if not a.lab and not list_labs():
        print("no lab is running")           # nothing to do is not an error
        return 0
    try:
        labs = list_labs() if a.all else [find_lab(a.lab)]
    except LabError as e:
        return _err(str(e))
    if a.all and not a.yes and sys.stdin.isatty():
        from .labname import confirm_down_all
        if not confirm_down_all(labs):
            print("nothing stopped")
            return 1
    for st in labs:
        refused = stop_lab(st)
        for pid in refused:
            print("emu: not ending PID %d named by %s/lab.json: it is not a process emu started"
                  % (pid, st["run_dir"]), file=sys.stderr)
        print("lab %s (%s) down" % (st["name"], os.path.basename(st["run_dir"])))
    return 0


def cmd_status(a):
    from .status import collect, render, to_json
    from .labname import match_labs
    labs = list_labs()
    if a.lab:
        labs = match_labs(labs, a.lab)
    if not labs and a.format != "json":
        print("no lab is running")
        return 0
    state = collect(labs, patterns=a.nodes, details=not a.summary)
    if a.format == "json":
        print(to_json(state))
    else:
        render(state, details=not a.summary, patterns=a.nodes)
    return 0


def cmd_gen(a):
    from . import gen
    args = {k: getattr(a, k) for k in a.gen_args}
    try:
        data = gen.SHAPES[a.shape](cpus=a.cpus, name=a.name, **args)
        parse_topology(data, "<generated>")     # what it writes, emu up reads
    except (gen.GenError, TopologyError) as e:
        return _err("gen %s: %s" % (a.shape, e))
    given = ["--%s %s" % (k.replace("_", "-"), v) for k, v in args.items()]
    given += ["--cpus %d" % a.cpus] if a.cpus != 1 else []
    given += ["--name %s" % a.name] if a.name else []
    text = gen.to_yaml(data, "%s: %s.\nGenerated by: emu gen %s %s\n(addressing: see emu/gen.py)"
                       % (data["name"], gen.describe(data), a.shape, " ".join(given)))
    if not a.output:
        sys.stdout.write(text)
        return 0
    try:
        with open(a.output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        return _err("gen: cannot write %s: %s" % (a.output, e.strerror or e))
    print("wrote %s: %s" % (a.output, gen.describe(data)))
    return 0


def _lab_with_node(a):
    """The lab state for --lab that has node a.node, or an error message."""
    try:
        st = find_lab(a.lab)
    except LabError as e:
        return None, str(e)
    if a.node not in st["nodes"]:
        return None, "lab %s has no node %r (nodes: %s)" % (st["name"], a.node, ", ".join(st["nodes"]))
    dead = dead_node_message(st, a.node)
    if dead:
        return None, dead
    return st, None


def _orch(a, op, **args):
    """Ask the lab's orchestrator; prints its answer. Errors are one line."""
    try:
        st = find_lab(a.lab)
        result = orchestrator_call(st, op, **args)
    except (LabError, FaultError) as e:
        return _err(str(e)), None
    except OSError as e:
        return _err(e.strerror or str(e)), None
    return 0, result


def cmd_link(a):
    if len(a.words) > 2:
        return _usage("link: usage: emu link [down|up NODE:IFNAME]")
    a.action, a.end = (a.words + [None, None])[:2]
    if a.action is None:
        rc, links = _orch(a, "links")
        if rc:
            return rc
        if a.format == "json":
            from .schema import links_doc
            print(json.dumps(links_doc(find_lab(a.lab), links), indent=1))
            return 0
        print("%-14s %-14s %-5s %s" % ("END A", "END B", "TYPE", "STATE"))
        for l in links:
            print("%-14s %-14s %-5s %s" % (l["a"], l["b"], l["type"], l["state"]))
        return 0
    if a.action not in ("up", "down") or not a.end:
        return _usage("link: usage: emu link [down|up NODE:IFNAME]")
    rc, text = _orch(a, "link", end=a.end, up=a.action == "up")
    if not rc:
        _done(a, "link", text, end=a.end, action=a.action)
    return rc


def _done(a, command, text, **what):
    """The answer of an action: its line, or {"schema": "emu.action/1", ...} with -j."""
    if getattr(a, "format", "text") == "json":
        print(json.dumps({"schema": "emu.action/1", "command": command, "ok": True,
                          "message": text, **what}, indent=1))
    else:
        print(text)


def cmd_partition(a):
    groups = [g.split(",") for g in a.groups]
    rc, text = _orch(a, "partition", groups=groups, one_way=a.one_way)
    if not rc:
        print(text)
    return rc


def cmd_heal(a):
    rc, text = _orch(a, "heal")
    if not rc:
        print(text)
    return rc


NODE_ACTIONS = ("list", "kill", "stop", "start", "restart")


def cmd_node(a):
    words = list(a.words)
    a.action = words.pop(0) if words and words[0] in NODE_ACTIONS else None
    if len(words) > 1 or (words and a.action is None and len(a.words) > 1):
        return _usage("node: usage: emu node [list|kill|stop|start|restart] NODE")
    a.node = words[0] if words else None
    if a.action is None or a.action == "list":
        from .inspect import cmd_nodes
        return cmd_nodes(a)
    if not a.node:
        return _usage("node: usage: emu node kill|stop|start|restart NODE")
    rc, text = _orch(a, "node", action=a.action, node=a.node)
    if not rc:
        _done(a, "node", text, node=a.node, action=a.action)
    return rc


def cmd_exec(a):
    from .client.exec import run_command
    st, err = _lab_with_node(a)
    if err:
        return _err(err)
    argv = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not argv:
        return _err("exec: no command given (emu exec NODE -- CMD ...)")
    gone = _end_with_node(st, a.node, argv[0])
    # As the real tool: when the reader of its output goes away (`| head`), a write
    # ends the program (SIGPIPE), silently. Python ignores SIGPIPE, and the tools
    # took the EPIPE for the node's answer ("RTNETLINK answers: Broken pipe").
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    from .client.rpc import NodeUnreachable
    try:
        rc = run_command(st, a.node, argv)
    except NodeUnreachable as e:
        gone(wait=2.0)                   # exits 137 if the node died under the program
        return _err("%s: %s" % (argv[0], e.strerror or e))
    if rc == 137:
        gone(wait=2.0)
    return rc


def _end_with_node(st, node, what):
    """A program attached to a node ends with it: one line, exit status 137.

    Returns gone(wait): if the node's process is gone (waiting up to wait
    seconds for it), print the line and exit 137; else return False.
    """
    import threading
    from .cluster_relay import on_this_host
    info = st["nodes"][node]
    once = threading.Lock()
    # A node on another host: its PID means nothing here; the lab's supervisor
    # records how it is (in lab.json).
    here = on_this_host(info)

    def dead():
        if not here:
            try:
                return dead_node_message(find_lab(os.path.basename(st["run_dir"])), node) \
                    is not None
            except LabError:
                return True
        try:
            p = psutil.Process(info["pid"])
            return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return True

    def gone(wait=0.0):
        deadline = time.monotonic() + wait
        while not dead():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05 if here else 0.5)
        if not once.acquire(blocking=False):
            time.sleep(10)               # the other thread is printing and exiting
        for child in psutil.Process().children(recursive=True):
            try:
                child.kill()
            except psutil.Error:
                pass
        time.sleep(0.2)                  # let the supervisor record how it ended
        try:
            why = dead_node_message(find_lab(os.path.basename(st["run_dir"])), node)
        except LabError:
            why = None
        why = (why or "%s is not running" % node).split(";")[0]
        print("emu: %s: %s" % (what, why), file=sys.stderr, flush=True)
        sys.stdout.flush()
        from .cluster_relay import close_client_relay
        close_client_relay()             # its directory (os._exit skips atexit)
        os._exit(137)

    def watch():
        while not gone(wait=3600):
            pass
    threading.Thread(target=watch, daemon=True).start()
    return gone


def cmd_shell(a):
    from .client.shell import run_shell
    st, err = _lab_with_node(a)
    if err:
        return _err(err)
    return run_shell(st, a.node)


def cmd_trace(a):
    from .client.trace import trace_main
    try:
        st = find_lab(a.lab)
    except LabError as e:
        return _err(str(e))
    args = []
    if a.count is not None:
        args += ["-c", str(a.count)]
    if a.seconds is not None:
        args += ["-t", str(a.seconds)]
    # A node that is not running cannot trace: the others still can.
    st = dict(st, nodes={n: i for n, i in st["nodes"].items() if not dead_node_message(st, n)})
    if not st["nodes"]:
        return _err("lab %s has no running node to trace" % st["name"])
    try:
        if a.format == "json":
            from .schema import trace_doc
            rows: list = []
            said: list = []

            def say(line):
                # The "tracing ... on ..." line goes to stderr as it happens (as
                # tcpdump's "listening on"): a script can wait for it before it
                # sends what it wants traced. Stdout is the JSON document alone.
                said.append(line)
                if line.startswith("tracing "):
                    print(line, file=sys.stderr, flush=True)
            rc = trace_main(st, args + a.filter, out=say, rows=rows)
            if rc:
                return _err("trace: %s" % (said[-1] if said else "failed"))
            print(json.dumps(trace_doc(st, rows), indent=1))
            return 0
        return trace_main(st, args + a.filter)
    except OSError as e:
        return _err("trace: %s" % (e.strerror or e))


def cmd_graph(a):
    from .graph import render, to_dot, to_json, to_mermaid
    if a.lab is not None and a.file is not None:
        return _err("graph: give a topology file or --lab NAME (the running lab), not both")
    if a.lab is not None or a.file is None:
        from .graph import cmd_graph_lab
        return cmd_graph_lab(a)
    try:
        topo = load_topology(a.file)
    except TopologyError as e:
        return _err(str(e))
    if a.format == "json":
        print(to_json(topo), end="")
        return 0
    if a.output:
        try:
            render(topo, a.output)
        except (RuntimeError, OSError) as e:
            return _err(str(e))
        print("wrote %s" % a.output)
        return 0
    print(to_mermaid(topo) if a.format == "mermaid" else to_dot(topo), end="")
    return 0


def cmd_demo(a):
    from .client.demo import demo
    path = a.file
    if a.file == DEMO_FILE and not os.path.exists(path):
        # Run from elsewhere than the checkout: the checkout's default lab.
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), DEMO_FILE)
    try:
        topo = load_topology(path)
    except TopologyError as e:
        return _err(str(e))
    if sum(1 for n in topo.nodes if n.kind == "host") < 2:
        return _err("demo: %s has fewer than two hosts to ping between" % a.file)
    return demo(path)


class _Parser(argparse.ArgumentParser):
    """A usage error is one line: `emu: gen star: the following arguments are required: --hosts`."""

    def error(self, message):
        where = self.prog[len("emu"):].strip()
        self.exit(2, "emu: %s%s (see %s --help)\n" % (where + ": " if where else "", message, self.prog))

    def chosen(self, ns):
        """The deepest subcommand's parser ns was parsed by (emu netem set, emu packetdrill):
        argparse leaves a subcommand's unknown words to the top parser, whose error would
        point at emu --help instead of that subcommand's."""
        parser = self
        while True:
            sub = next((x for x in parser._actions if isinstance(x, argparse._SubParsersAction)), None)
            child = sub.choices.get(getattr(ns, sub.dest, None)) if sub is not None else None
            if child is None:
                return parser
            parser = child


class _Version(argparse.Action):
    """--version: `emu X.Y.Z`, the installed package's version (its metadata), looked up
    only when asked (importlib.metadata reads the distribution files)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version
        try:
            v = version("emu")
        except PackageNotFoundError:        # run from a checkout that is not installed
            from . import __version__ as v
        print("emu %s" % v)               # stdout, as argparse's own version action
        parser.exit(0)


# emu gen SHAPE: its options as (name, default or None when required, help).
_GEN_SHAPES: dict[str, list[tuple[str, int | None, str]]] = {
    "star": [("hosts", None, "number of hosts"),
             ("bridges", 1, "leaf bridges under a core bridge br0 (1: all hosts on br0)")],
    "line": [("routers", None, "routers between h1 and h2")],
    "tree": [("depth", None, "levels of routers"),
             ("fanout", None, "children of each router; hosts per router of the last level")],
    "fat-tree": [("k", None, "ports per switch (even): k pods, (k/2)^2 cores, k^3/4 hosts")],
    "campus": [("bridges", None, "LANs (bridges)"),
               ("hosts_per_bridge", None, "hosts on each bridge"),
               ("bridges_per_router", 4, "LANs behind each router")],
}


def _add_gen_parser(sub):
    g = sub.add_parser("gen", help="write a large topology: emu gen star --hosts 100 -o star.yaml")
    shapes = g.add_subparsers(dest="shape", required=True, metavar="SHAPE")
    helps = {"star": "hosts on one subnet, on one bridge or leaf bridges",
             "line": "h1 -- r1 -- ... -- rN -- h2", "tree": "a tree of routers, hosts at the leaves",
             "fat-tree": "a k-ary fat-tree of routers", "campus": "LANs of hosts behind routers"}
    for shape, opts in _GEN_SHAPES.items():
        sp = shapes.add_parser(shape, help=helps[shape])
        for key, default, text in opts:
            sp.add_argument("--" + key.replace("_", "-"), dest=key, type=int, default=default,
                            required=default is None, metavar="N", help=text)
        sp.add_argument("--cpus", type=int, default=1, metavar="N",
                        help="emulated CPUs per node (default 1)")
        sp.add_argument("--name", help="the lab name (default from the shape)")
        sp.add_argument("-o", dest="output", metavar="FILE", help="write here (default stdout)")
        sp.set_defaults(func=cmd_gen, gen_args=[k for k, _, _ in opts])


def _add_format(p, choices=("text", "json"), default="text"):
    """--format CHOICE and -j (the same as --format json)."""
    p.add_argument("--format", choices=choices, default=default)
    p.add_argument("-j", "--json", dest="format", action="store_const", const="json",
                   help="the same as --format json (schema: README, emu/schema.py)")


def _add_new_commands(sub):
    """inspect, pingall, iperf, top: each in a module of its own."""
    from . import inspect, pingall, top
    inspect.add_parsers(sub)
    pingall.add_parsers(sub)
    top.add_parsers(sub)


def main(argv=None):
    p = _Parser(prog="emu", description="Run and use emulated networks.")
    p.add_argument("--version", action=_Version, help="print emu's version and exit")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="launch a lab from a topology file")
    up.add_argument("-d", "--detach", action="store_true", help="run in the background")
    up.add_argument("--faults", metavar="FILE", help="run a fault schedule (YAML list of events)")
    up.add_argument("--name", help="the lab's name (default: the file's); refused if one is running")
    up.add_argument("--cluster", metavar="ADDRESS",
                    help="place the nodes over a Ray cluster: auto, ray://HEAD:10001 or HOST:PORT "
                         "(needs pip install 'emu[cluster]')")
    up.add_argument("--dry-run", action="store_true",
                    help="print where each node would run, start nothing")
    up.add_argument("--clock", choices=("real", "virtual"),
                    help="virtual: the lab's own time, replayable by seed (default: the file's, "
                         "else real)")
    up.add_argument("--seed", type=_seed_arg, help="the lab seed (default: the file's, else 0)")
    up.add_argument("file")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="tear a lab down")
    down.add_argument("--lab", help="lab name or run directory prefix")
    down.add_argument("--all", action="store_true",
                      help="every lab under the run base ($EMU_RUN_BASE); asks first on a terminal")
    down.add_argument("-y", "--yes", action="store_true", help="do not ask (down --all)")
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="nodes, PIDs, state, CPU and memory")
    status.add_argument("--lab")
    status.add_argument("--nodes", metavar="PATTERN",
                        help="only these nodes in the table: glob patterns, comma-separated (h1*,r?)")
    status.add_argument("--summary", action="store_true",
                        help="one summary line per lab (and the nodes not running), no table")
    _add_format(status)
    status.set_defaults(func=cmd_status)
    _add_gen_parser(sub)
    ex = sub.add_parser("exec", help="run a command on a node: emu exec h1 -- ping -c 3 h2")
    ex.add_argument("--lab")
    ex.add_argument("node")
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    ex.set_defaults(func=cmd_exec)
    sh = sub.add_parser("shell", help="an interactive shell on a node")
    sh.add_argument("--lab")
    sh.add_argument("node")
    sh.set_defaults(func=cmd_shell)
    tr = sub.add_parser("trace", help="print the kernel path of matching packets on every node")
    tr.add_argument("--lab")
    tr.add_argument("-c", dest="count", type=int, help="stop after this many packets")
    tr.add_argument("-t", dest="seconds", type=float, help="stop after this many seconds")
    tr.add_argument("filter", nargs="*", help="icmp|tcp|udp|arp, host X, port N")
    _add_format(tr)
    tr.set_defaults(func=cmd_trace)
    gr = sub.add_parser("graph", help="draw a topology (dot or mermaid text, or SVG/PNG with graphviz)")
    gr.add_argument("file", nargs="?", help="a topology file (or --lab: the running lab)")
    gr.add_argument("--lab", help="draw the running lab: link state, impairments, partition, traffic")
    gr.add_argument("-o", dest="output", help="FILE.svg|.png|.dot|.mmd|.json")
    _add_format(gr, ("dot", "mermaid", "json"), "dot")
    gr.set_defaults(func=cmd_graph)
    from .netem_cli import add_netem_parser
    add_netem_parser(sub)
    lk = sub.add_parser("link", help="list links; cut or mend one: emu link down h1:eth0")
    lk.add_argument("--lab")
    # One list of words (argparse would not take `emu link up --lab X h1:eth0` otherwise).
    lk.add_argument("words", nargs="*", metavar="down|up NODE:IFNAME",
                    help="NODE:IFNAME (either end names the link)")
    _add_format(lk)
    lk.set_defaults(func=cmd_link)
    pa = sub.add_parser("partition", help="split the lab: emu partition h1,h2 h3,h4")
    pa.add_argument("--lab")
    pa.add_argument("--one-way", action="store_true",
                    help="only frames from the first group to the others are dropped")
    pa.add_argument("groups", nargs="+", metavar="GROUP", help="comma-separated node names")
    pa.set_defaults(func=cmd_partition)
    he = sub.add_parser("heal", help="end the partition")
    he.add_argument("--lab")
    he.set_defaults(func=cmd_heal)
    nd = sub.add_parser("node", help="kill, stop, start or restart a node")
    nd.add_argument("--lab")
    nd.add_argument("words", nargs="*", metavar="[list|kill|stop|start|restart] NODE",
                    help="list (the default): the nodes, their state and addresses")
    _add_format(nd)
    nd.set_defaults(func=cmd_node)
    _add_new_commands(sub)
    demo = sub.add_parser("demo", help="launch a lab, ping across it, show counters, tear down")
    demo.add_argument("file", nargs="?", default=DEMO_FILE)
    demo.set_defaults(func=cmd_demo)
    # packetdrill scripts against a fresh inline kernel (emu/packetdrill/).
    from .packetdrill import cli as pd_cli
    pd = sub.add_parser("packetdrill", help="run packetdrill scripts against the emulated kernel")
    pd_cli.add_arguments(pd)
    pd.set_defaults(func=pd_cli.main)
    a, extra = p.parse_known_args(argv)
    # argparse gives a positional only the words before the first option: `emu link up
    # --lab X h1:eth0` leaves h1:eth0 over. Those commands take their words in any order.
    if extra and hasattr(a, "words") and not any(w.startswith("-") for w in extra):
        a.words += extra
    elif extra and hasattr(a, "groups") and not any(w.startswith("-") for w in extra):
        a.groups += extra                # `emu partition h1 --one-way h2`
    elif extra:
        p.chosen(a).error("unrecognized arguments: %s" % " ".join(extra))
    try:
        return a.func(a)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except LabError as e:            # e.g. a run base emu refuses: one line
        return _err(str(e))


if __name__ == "__main__":
    sys.exit(main())
