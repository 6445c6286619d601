"""sysctl: read and write a node's net.* settings (the /proc/sys/net tree)."""


def _fmt(v):
    if isinstance(v, (list, tuple)):
        return "\t".join(str(x) for x in v)
    return str(v)


def main(argv, ctl, out=print):
    if not argv or argv[0] in ("-h", "--help"):
        out("usage: sysctl [-a] [-w] NAME[=VALUE] ...")
        return 0 if argv else 255
    write = values_only = quiet = ignore = False
    status = 0
    args = []
    for a in argv:
        if a == "-w":
            write = True
        elif a in ("-a", "--all", "-A"):
            for k, v in sorted(ctl.call("sysctl_get").items()):
                out("%s = %s" % (k, _fmt(v)))
            return 0
        elif a in ("-n", "--values"):          # the value alone
            values_only = True
        elif a in ("-q", "--quiet"):           # set without echoing
            quiet = True
        elif a in ("-e", "--ignore"):          # unknown keys are not errors
            ignore = True
        else:
            args.append(a)

    if not args:
        out("usage: sysctl [-a] [-w] NAME[=VALUE] ...")     # `sysctl -w` alone: nothing to do
        return 255

    def show(name, v):
        out(_fmt(v) if values_only else "%s = %s" % (name, _fmt(v)))

    for a in args:
        name, eq, value = a.partition("=")
        name = name.strip().replace("/", ".")
        try:
            if eq:
                v = ctl.call("sysctl_set", name=name, value=value.strip())
                if not quiet:
                    show(name, v)
            elif write:
                out('sysctl: "%s" must be of the form name=value' % a)
                status = 255
            else:
                show(name, ctl.call("sysctl_get", name=name))
        except OSError as e:
            if ignore and e.errno == 2 and "cannot stat" in str(e.strerror):
                continue
            out(e.strerror if e.strerror else str(e))
            status = 255
    return status
