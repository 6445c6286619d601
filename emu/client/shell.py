"""`emu shell NODE`: an interactive shell on a node (history, line editing,
completion), running the same commands as `emu exec`.

As a login shell behaves: Ctrl-C interrupts the running command (or drops
the line being typed) and the shell carries on; Ctrl-D on an empty line
prints a newline and leaves; Tab completes the command, then what the
command takes next (ip's objects and verbs, the node's devices, node and
host names, files under /proc); `help` lists the tools; an unknown command
says which exist.
"""
import cmd
import os
import shlex

try:
    import readline
except ImportError:            # pragma: no cover - readline is in every CPython on Linux
    readline = None

from .exec import TOOLS, run_command

HISTORY = os.path.expanduser("~/.emu_history")

HELP = {
    "ping": "ICMP echo (iputils): -c -i -s -W -w -t -M -q -D -O -A -f -I",
    "traceroute": "the path to a host: UDP probes, -I ICMP, -T TCP SYN; -n -q -w -m -f -p",
    "tracepath": "the path to a host and its PMTU: -n -m -p",
    "ip": "iproute2: link, addr, route, neigh; -s -s, -br, -j -p",
    "bridge": "the bridge's forwarding database: bridge [-j [-p]] fdb show",
    "ss": "sockets: -t -u -w -a -l -n -p -i -e -m -o, state/dport/sport filters",
    "nc": "netcat: -l -u -z -v -q -w",
    "tcpdump": "capture: -i -n -c -w -r -s -e -v[v] -X -A -D, filters",
    "sysctl": "kernel settings: sysctl [-w] NAME[=VALUE]",
    "cat": "read /proc files (/proc/net/snmp, /proc/net/tcp, /proc/sys/...)",
    "tc": "queueing disciplines: tc qdisc add|change|del|show (netem, tbf)",
    "ethtool": "NIC settings and counters: -S -g -G -k -K",
    "nstat": "SNMP counter increments: -a -z -s -n -r [PATTERN]",
    "iperf3": "throughput: -s [-1] | -c HOST [-t -P -R -u -b -l -J]",
    "python": "a Python program whose sockets are this node's",
    "python3": "the same as python",
    "trace": "the kernel path of the next matching packet",
}
IP_OBJECTS = ("link", "addr", "route", "neigh")
IP_VERBS = {"link": ("show", "set"), "addr": ("show", "add", "del"),
            "route": ("show", "get", "add", "del", "flush"), "neigh": ("show", "flush")}
PROC_FILES = ("/proc/net/arp", "/proc/net/dev", "/proc/net/netstat", "/proc/net/packet",
              "/proc/net/raw", "/proc/net/route", "/proc/net/snmp", "/proc/net/sockstat",
              "/proc/net/softnet_stat", "/proc/net/tcp", "/proc/net/udp", "/proc/sys/net/")
TAKES_HOST = ("ping", "traceroute", "tracepath", "nc", "iperf3")


class NodeShell(cmd.Cmd):
    """The shell loop: each line is one command on the node."""

    def __init__(self, st, node, stdin=None, stdout=None):
        super().__init__(stdin=stdin, stdout=stdout)
        if stdin is not None:
            self.use_rawinput = False
        self.st = st
        self.node = node
        self.prompt = "root@%s:~# " % node
        self.intro = ("emu shell on %s (lab %s). Commands: %s; help; exit to leave."
                      % (node, st["name"], ", ".join(TOOLS)))
        self.status = 0
        self._devs = None

    def cmdloop(self, intro=None):
        """cmd.Cmd's loop, but Ctrl-C at the prompt drops the line instead of leaving."""
        while True:
            try:
                return super().cmdloop(intro)
            except KeyboardInterrupt:
                self.stdout.write("^C\n")
                self.stdout.flush()
                intro = ""            # the banner once

    def emptyline(self):
        return False

    def default(self, line):
        try:
            argv = shlex.split(line)
        except ValueError as e:
            self.stdout.write("emu: %s\n" % e)
            return False
        if not argv:
            return False
        if argv[0] in ("exit", "quit", "logout"):
            return True
        if argv[0] not in TOOLS:
            self.stdout.write("%s: command not found. Commands: %s (help for more)\n"
                              % (argv[0], ", ".join(TOOLS)))
            self.status = 127
            return False
        w = self.stdout

        def out(s):
            w.write(s + "\n")
            w.flush()
        try:
            self.status = run_command(self.st, self.node, argv, out=out)
        except SystemExit as e:            # argparse's --help or a usage error
            self.status = e.code if isinstance(e.code, int) else 1
        except KeyboardInterrupt:
            # Ctrl-C stops the command, not the shell (the tools that print a
            # summary on SIGINT, ping and tcpdump, catch it themselves).
            self.stdout.write("\n")
            self.status = 130
        except OSError as e:
            self.stdout.write("emu: %s\n" % (e.strerror or e))
            self.status = 1
        return False

    def do_EOF(self, arg):
        self.stdout.write("\n")
        return True

    def do_help(self, arg):
        if arg and arg in HELP:
            self.stdout.write("%s: %s\n" % (arg, HELP[arg]))
            return
        self.stdout.write("Commands on %s (each as its Linux namesake):\n" % self.node)
        for t in TOOLS:
            self.stdout.write("  %-11s %s\n" % (t, HELP.get(t, "")))
        self.stdout.write("  %-11s %s\n" % ("exit", "leave the shell (or Ctrl-D)"))

    # ---------------------------------------------------------------- completion

    def completenames(self, text, *ignored):
        return [t + " " for t in TOOLS + ("help", "exit") if t.startswith(text)]

    def devices(self):
        if self._devs is None:
            try:
                from .rpc import ControlClient
                ctl = ControlClient(self.st["nodes"][self.node]["ctl"],
                                    curve=self.st["nodes"][self.node].get("curve"))
                try:
                    self._devs = [r["name"] for r in ctl.call("link_show", stats=False)]
                finally:
                    ctl.close()
            except (OSError, KeyError):
                self._devs = []
        return self._devs

    def candidates(self, words):
        """What may come after words (the line's complete words, the command first)."""
        tool, args = words[0], [w for w in words[1:] if not w.startswith("-")]
        prev = words[-1] if len(words) > 1 else ""
        hosts = sorted(set(self.st.get("hosts", {})) | set(self.st["nodes"]))
        if prev in ("dev", "-i", "-I", "master"):
            return self.devices() + (["any"] if tool == "tcpdump" else [])
        if tool == "ip":
            if not args:
                return list(IP_OBJECTS)
            obj = {"l": "link", "a": "addr", "address": "addr", "r": "route", "n": "neigh",
                   "neighbour": "neigh"}.get(args[0], args[0])
            if len(args) == 1:
                return list(IP_VERBS.get(obj, ()))
            if obj == "link" and args[1] in ("show", "set") and len(args) == 2:
                return self.devices() + ["dev"]
            return ["dev", "via", "up", "down", "mtu"] + (["cache"] if args[1] == "flush" else [])
        if tool == "bridge":
            return ["fdb", "link"] if not args else ["show"]
        if tool == "cat":
            return list(PROC_FILES)
        if tool in TAKES_HOST:
            return hosts
        if tool == "tcpdump":
            return ["host", "port", "tcp", "udp", "icmp", "arp", "and", "or", "not"]
        if tool in ("tc", "ethtool"):
            return (["qdisc", "dev"] if tool == "tc" and not args else self.devices())
        return hosts

    def completedefault(self, text, line, begidx, endidx):
        try:
            words = shlex.split(line[:begidx])
        except ValueError:
            return []
        if not words:
            return []
        if text.startswith("/"):
            return [p for p in PROC_FILES if p.startswith(text)]
        return sorted({w + ("" if w.endswith("/") else " ") for w in self.candidates(words)
                       if w.startswith(text)})

    def completedefault_words(self, line):
        """The completions for the last word of line (for tests: what Tab offers)."""
        begidx = len(line) - len(line.split(" ")[-1])
        return self.completedefault(line[begidx:], line, begidx, len(line))


def run_shell(st, node):
    if readline is not None:
        try:
            readline.read_history_file(HISTORY)
        except OSError:
            pass
        readline.set_completer_delims(" \t\n")
    sh = NodeShell(st, node)
    try:
        sh.cmdloop()
    finally:
        if readline is not None:
            try:
                readline.write_history_file(HISTORY)
            except OSError:
                pass
    return 0
