"""`emu shell NODE`: an interactive shell on a node (history, line editing,
completion), running the same commands as `emu exec`."""
import cmd
import os
import shlex

try:
    import readline
except ImportError:            # pragma: no cover - readline is in every CPython on Linux
    readline = None

from .exec import TOOLS, run_command

HISTORY = os.path.expanduser("~/.emu_history")


class NodeShell(cmd.Cmd):
    """The shell loop: each line is one command on the node."""

    def __init__(self, st, node, stdin=None, stdout=None):
        super().__init__(stdin=stdin, stdout=stdout)
        if stdin is not None:
            self.use_rawinput = False
        self.st = st
        self.node = node
        self.prompt = "root@%s:~# " % node
        self.intro = ("emu shell on %s (lab %s). Commands: %s; exit to leave."
                      % (node, st["name"], ", ".join(TOOLS)))
        self.status = 0

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
        try:
            self.status = run_command(self.st, self.node, argv,
                                      out=lambda s: (self.stdout.write(s + "\n"), self.stdout.flush()))
        except SystemExit as e:            # argparse's --help or a usage error
            self.status = e.code if isinstance(e.code, int) else 1
        except KeyboardInterrupt:
            self.stdout.write("\n")
        except OSError as e:
            self.stdout.write("emu: %s\n" % (e.strerror or e))
            self.status = 1
        return False

    def do_EOF(self, arg):
        self.stdout.write("\n")
        return True

    def completenames(self, text, *ignored):
        return [t + " " for t in TOOLS + ("exit",) if t.startswith(text)]

    def completedefault(self, text, line, begidx, endidx):
        words = list(self.st.get("hosts", {})) + list(self.st["nodes"]) + \
            ["link", "addr", "route", "neigh", "show", "fdb", "-s", "-br", "/proc/net/snmp",
             "/proc/net/softnet_stat", "/proc/net/dev", "/proc/net/netstat"]
        return sorted({w for w in words if w.startswith(text)})


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
    except KeyboardInterrupt:
        pass
    finally:
        if readline is not None:
            try:
                readline.write_history_file(HISTORY)
            except OSError:
                pass
    return 0
