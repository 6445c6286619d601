"""`emu shell NODE`: an interactive shell on a node (history, line editing,
completion), running the same commands as `emu exec`.

As a login shell behaves: Ctrl-C interrupts the running command (or drops
the line being typed) and the shell carries on; Ctrl-D on an empty line
prints a newline and leaves; Tab completes the command, then what the
command takes next (ip's objects and verbs, the node's devices, node and
host names, files under /proc); `help` lists the tools; an unknown command
says which exist.

Fed through a pipe or a file (stdin not a terminal) it reads commands as bash
reads a script: no banner and no prompt in the output, errors on stderr, and
its exit status that of the last command (127 for one not found).
"""
import cmd
import os
import shlex
import sys

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

    def __init__(self, st, node, stdin=None, stdout=None, stderr=None, interactive=None):
        super().__init__(stdin=stdin, stdout=stdout)
        if stdin is not None:
            self.use_rawinput = False
        self.st = st
        self.node = node
        self.stderr = stderr or sys.stderr
        # bash: interactive when its input is a terminal; then only the prompt and banner.
        self.interactive = (stdin or sys.stdin).isatty() if interactive is None else interactive
        self.prompt = "root@%s:~# " % node if self.interactive else ""
        self.intro = ("emu shell on %s (lab %s). Commands: %s; help; exit to leave."
                      % (node, st["name"], ", ".join(TOOLS))) if self.interactive else ""
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
            self.error("emu shell: %s" % e)
            self.status = 2                  # bash's status for a syntax error
            return False
        if not argv:
            return False
        if argv[0] in ("exit", "quit", "logout"):
            if len(argv) > 1:                # exit N, as bash's (N mod 256)
                try:
                    self.status = int(argv[1]) & 0xFF
                except ValueError:
                    self.error("emu shell: exit: %s: numeric argument required" % argv[1])
                    self.status = 2
            return True
        if argv[0] not in TOOLS:
            # bash's words; the list of commands only for a person at the terminal
            # (as command-not-found's hints are only in interactive shells).
            hint = ". Commands: %s (help for more)" % ", ".join(TOOLS) if self.interactive else ""
            self.error("emu shell: %s: command not found%s" % (argv[0], hint))
            self.status = 127
            return False
        w = self.stdout

        def out(s):
            w.write(s + "\n")
            w.flush()
        try:
            self.status = run_command(self.st, self.node, argv, out=out, err=self.error)
        except SystemExit as e:            # argparse's --help or a usage error
            self.status = e.code if isinstance(e.code, int) else 1
        except KeyboardInterrupt:
            # Ctrl-C stops the command, not the shell (the tools that print a
            # summary on SIGINT, ping and tcpdump, catch it themselves).
            self.stdout.write("\n")
            self.status = 130
        except OSError as e:
            self.error("emu: %s" % (e.strerror or e))
            self.status = 1
        return False

    def error(self, line):
        """A line on stderr (after what the command printed on stdout so far)."""
        self.stdout.flush()
        self.stderr.write(line + "\n")
        self.stderr.flush()

    def do_EOF(self, arg):
        if self.interactive:                 # Ctrl-D: end the prompt's line
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
    """The shell on node; its exit status is the last command's, as bash's."""
    sh = NodeShell(st, node)
    history = readline is not None and sh.interactive     # a script keeps no history
    if history:
        try:
            readline.read_history_file(HISTORY)
        except OSError:
            pass
        readline.set_completer_delims(" \t\n")
    try:
        sh.cmdloop()
    finally:
        if history:
            try:
                readline.write_history_file(HISTORY)
            except OSError:
                pass
    return sh.status
