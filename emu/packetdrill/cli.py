"""`emu packetdrill [options] SCRIPT.pkt...`: packetdrill's command line.

Nothing is printed for a script that passes; a failing one prints
packetdrill's message (`SCRIPT:LINE: ...`). With several scripts a summary
line follows. Exit status: 0 when every script passed, 1 otherwise.
"""
import sys

OPTIONS = ("tolerance_usecs", "tolerance_percent", "mss", "mtu", "ip_version", "local_ip",
           "remote_ip", "gateway_ip", "netmask_ip", "bind_port", "connect_port",
           "tcp_ts_tick_usecs")


def add_arguments(p):
    """The subcommand's arguments (packetdrill spells them --name=value)."""
    for name in OPTIONS:
        p.add_argument("--" + name, dest=name, metavar=name.upper())
    p.add_argument("--verbose", "-v", action="store_true", help="print each packet as it is checked")
    p.add_argument("--trace", action="store_true",
                   help="print each packet's path through the kernel (emu's tracepoints)")
    p.add_argument("scripts", nargs="+", metavar="SCRIPT.pkt")


def main(args, out=print, err=None):
    from .run import Config, run_script     # the kernel: only when a script runs
    err = err or (lambda s: print(s, file=sys.stderr))
    cfg = Config(out=out)
    try:
        for name in OPTIONS:
            v = getattr(args, name, None)
            if v is not None:
                cfg.set_option(name, v)
    except ValueError as e:
        err("packetdrill: %s" % e)
        return 1
    cfg.trace = bool(getattr(args, "trace", False))
    cfg.verbose = bool(getattr(args, "verbose", False))
    failed = 0
    for path in args.scripts:
        msg = run_script(path, cfg)
        if msg:
            failed += 1
            err(msg.rstrip("\n"))
    if len(args.scripts) > 1:
        out("%d scripts: %d passed, %d failed" % (len(args.scripts),
                                                  len(args.scripts) - failed, failed))
    return 1 if failed else 0
