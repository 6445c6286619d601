"""Backtick lines: shell commands, run by emu's own tools against the kernel.

packetdrill runs them with /bin/sh (run_command.c); emu runs the commands
its tools provide (`sysctl`, `tc`, `ip`, `ethtool`) against the kernel
under test through the same control operations as `emu exec`. A defaults
file (upstream's `../common/defaults.sh`) sets packetdrill's usual
defaults. Anything else is an error naming the command.
"""
import shlex

from ..kernel.core.dev import KernelError
from ..kernel.core.entry import kernel_entry
from ..kernel.core.rtnetlink import rtnl_rcv

# What upstream's defaults.sh sets that emu's kernel knows about.
DEFAULTS_SH = {"net.ipv4.tcp_timestamps": "1", "net.ipv4.tcp_sack": "1",
               "net.ipv4.tcp_window_scaling": "1", "net.ipv4.tcp_syncookies": "1",
               "net.ipv4.tcp_congestion_control": "cubic",
               "net.ipv4.tcp_slow_start_after_idle": "0"}


class InlineCtl:
    """The control endpoint of the inline kernel: call(op, **args), OSError on failure."""

    def __init__(self, net):
        self.net = net

    def call(self, op, timeout=None, **args):
        try:
            return kernel_entry(self.net, 0, rtnl_rcv, self.net, op, args)
        except KernelError as e:
            raise OSError(e.errno, e.strerror or str(e)) from None


def _tool(name):
    from ..client.tools import ip, sysctl, tc
    return {"sysctl": sysctl.main, "tc": tc.main, "ip": ip.main,
            "ethtool": tc.ethtool_main}.get(name)


def run_command(runner, event):
    text = event.body
    ctl = InlineCtl(runner.net)
    for cmd in _split(text):
        try:
            argv = shlex.split(cmd)
        except ValueError as e:
            runner.fail(event, "error executing `%s` command: %s" % (cmd, e))
        if not argv:
            continue
        if argv[0].endswith("defaults.sh"):
            for k, v in DEFAULTS_SH.items():
                if k in runner.net.sysctl:
                    ctl.call("sysctl_set", name=k, value=v)
            continue
        tool = _tool(argv[0])
        if tool is None:
            runner.fail(event, "error executing `%s` command: emu runs only sysctl, tc, ip "
                               "and ethtool here" % cmd)
        lines = []
        try:
            rc = tool(argv[1:], ctl, out=lines.append)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        if rc:
            runner.fail(event, "error executing `%s` command: non-zero status %d%s"
                        % (cmd, rc, (": " + lines[-1]) if lines else ""))
        runner.settle()


def _split(text):
    out = []
    for part in text.replace("&&", ";").replace("\n", ";").split(";"):
        cmd = part.strip()
        if cmd:
            out.append(cmd)
    return out
