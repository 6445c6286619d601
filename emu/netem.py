"""Link impairments in user space: tc's netem and tbf options, parsed and
printed as iproute2 does, and the same impairments written as YAML/CLI keys.

iproute2: tc/q_netem.c, tc/q_tbf.c, lib/utils.c (get_time64, get_rate64,
get_size, print_percent, sprint_rate, sprint_size), netem/normal.c,
netem/pareto.c, netem/paretonormal.c (the distribution tables).

The kernel (emu/kernel/sched/sch_netem.py, sch_tbf.py) gets what tc would
put in netlink attributes: nanoseconds, u32-scaled probabilities, bytes per
second, distribution tables. Everything here raises NetemError with the
message tc prints, so the tc tool, the topology loader and the CLI share one
parser.
"""
import functools
import math

U32_MAX = 0xFFFFFFFF
NETEM_DIST_SCALE = 8192
TABLESIZE = 16384


class NetemError(ValueError):
    """A bad option: str() is the one line tc (or the YAML checker) prints."""


# ---------------------------------------------------------------- lib/utils.c

def _number(text):
    """strtod: the leading number of text and the rest (None if there is none)."""
    s = str(text).strip()
    i = 0
    n = len(s)
    if i < n and s[i] in "+-":
        i += 1
    digits = i
    while i < n and (s[i].isdigit() or s[i] == "."):
        i += 1
    if i < n and s[i] in "eE" and i + 1 < n and (s[i + 1].isdigit() or s[i + 1] in "+-"):
        j = i + 1
        if s[j] in "+-":
            j += 1
        if j < n and s[j].isdigit():
            i = j
            while i < n and s[i].isdigit():
                i += 1
    try:
        return float(s[:i]), s[i:]
    except ValueError:
        return None, s[digits:]


_TIME_NS = {"s": 1e9, "sec": 1e9, "secs": 1e9, "ms": 1e6, "msec": 1e6, "msecs": 1e6,
            "us": 1e3, "usec": 1e3, "usecs": 1e3, "ns": 1, "nsec": 1, "nsecs": 1, "": 1e3}


def get_time64(text):
    """A time in nanoseconds ("20ms", "1.5s", "300us"; a bare number is microseconds)."""
    v, rest = _number(text)
    scale = _TIME_NS.get(rest.strip().lower()) if v is not None else None
    if scale is None or v < 0 or math.isnan(v) or math.isinf(v):
        raise NetemError("invalid time %r" % (text,))
    return int(round(v * scale))


def get_percent(text):
    """A probability as tc sends it: "1%", "0.5%" or "1" (percent) -> 0..2**32-1."""
    v, rest = _number(text)
    if v is None or rest.strip() not in ("", "%"):
        raise NetemError("invalid percentage %r" % (text,))
    per = v / 100.0
    if not 0.0 <= per <= 1.0:
        raise NetemError("invalid percentage %r" % (text,))
    return int(round(per * U32_MAX))


_RATE_BITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12,
              "kibit": 1024, "mibit": 1024 ** 2, "gibit": 1024 ** 3, "tibit": 1024 ** 4,
              "bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9, "tbps": 8e12,
              "kibps": 8 * 1024, "mibps": 8 * 1024 ** 2, "gibps": 8 * 1024 ** 3,
              "tibps": 8 * 1024 ** 4, "": 1}


def get_rate64(text):
    """A rate in bytes per second ("100mbit", "10Mbps"; a bare number is bits/s)."""
    v, rest = _number(text)
    scale = _RATE_BITS.get(rest.strip().lower()) if v is not None else None
    if scale is None or not v > 0 or math.isinf(v):
        raise NetemError("invalid rate %r" % (text,))
    return max(1, int(v * scale / 8))


_SIZE = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024 ** 2, "mb": 1024 ** 2,
         "g": 1024 ** 3, "gb": 1024 ** 3, "kbit": 1024 // 8, "mbit": 1024 ** 2 // 8,
         "gbit": 1024 ** 3 // 8}


def get_size(text):
    """A size in bytes ("32kbit" = 4096, "10kb", "1514"; a "/CELL" suffix is ignored)."""
    s = str(text).split("/", 1)[0]
    v, rest = _number(s)
    scale = _SIZE.get(rest.strip().lower()) if v is not None else None
    if scale is None or v < 0 or math.isinf(v):
        raise NetemError("invalid size %r" % (text,))
    return int(v * scale)


def sprint_percent(per):
    return "%g%%" % (100.0 * per / U32_MAX)


def sprint_time64(ns):
    if ns >= 1000000000:
        return "%gs" % (ns / 1e9)
    if ns >= 1000000:
        return "%gms" % (ns / 1e6)
    if ns >= 1000:
        return "%gus" % (ns / 1e3)
    return "%dns" % ns


def sprint_time_us(us):
    """print_time (tbf's "lat"): one decimal in ms or s."""
    if us >= 1e6:
        return "%.1fs" % (us / 1e6)
    if us >= 1e3:
        return "%.1fms" % (us / 1e3)
    return "%dus" % us


def sprint_rate(bytes_ps):
    rate = bytes_ps * 8
    units = ("", "K", "M", "G", "T")
    i = 0
    while i < len(units) - 1:
        if rate < 1000:
            break
        if rate % 1000 and rate < 1000 * 1000:
            break
        rate //= 1000
        i += 1
    return "%d%sbit" % (rate, units[i])


def sprint_size(sz):
    if sz >= 1024 * 1024 and abs(1024 * 1024 * round(sz / (1024 * 1024)) - sz) < 1024:
        return "%gMb" % round(sz / (1024 * 1024))
    if sz >= 1024 and abs(1024 * round(sz / 1024) - sz) < 16:
        return "%gKb" % round(sz / 1024)
    return "%db" % sz


def matches(arg, keyword):
    """iproute2's matches(): arg is a (non-empty) prefix of keyword."""
    return bool(arg) and keyword.startswith(arg)


# ---------------------------------------------------------------- distribution tables

def _normal_cdf_inverse_table():
    """The x of each of TABLESIZE+1 CDF steps of N(0,1), as normal.c fills it."""
    table = [0.0] * (TABLESIZE + 1)
    x = -10.0
    sq2 = math.sqrt(2.0)
    erf = math.erf
    while x < 10.05:
        i = round(TABLESIZE * (.5 + .5 * erf(x / sq2)))
        table[i] = x
        x += .00005
    return table


def _clamp16(v):
    return max(-32768, min(32767, v))


def _paretovalue(i):
    d = (65536 - 4 * i) / 65536.0
    d = 1.0 / math.pow(d, 1.0 / 3.0)
    d -= 1.5
    d *= (4.0 / 3.0) * NETEM_DIST_SCALE
    return int(round(min(d, 32767)))


@functools.lru_cache(maxsize=None)
def get_distribution(name):
    """The table tc loads from /usr/lib/tc/NAME.dist (generated as iproute2 does)."""
    if name == "normal":
        t = _normal_cdf_inverse_table()
        return tuple(_clamp16(int(round(t[i] * NETEM_DIST_SCALE)))
                     for i in range(0, TABLESIZE, 4))
    if name == "pareto":
        out = []
        i = 65536
        while i > 0:
            d = 1.0 / math.pow(i / 65536.0, 1.0 / 3.0) - 1.5
            d *= (4.0 / 3.0) * NETEM_DIST_SCALE
            out.append(int(round(min(d, 32767))))
            i -= 16
        return tuple(out)
    if name == "paretonormal":
        t = _normal_cdf_inverse_table()
        out = []
        for i in range(0, TABLESIZE, 4):
            norm = int(round(t[i] * NETEM_DIST_SCALE))
            # C's (normvalue + 3*parvalue) / 4 truncates toward zero.
            s = norm + 3 * _paretovalue(i)
            out.append(_clamp16(int(s / 4)))
        return tuple(out)
    raise NetemError("No distribution data for %s (/usr/lib/tc/%s.dist: No such file or "
                     "directory)" % (name, name))


DISTRIBUTIONS = ("uniform", "normal", "pareto", "paretonormal")


# ---------------------------------------------------------------- tc ... netem

NETEM_USAGE = """Usage: ... netem [ limit PACKETS ]
                 [ delay TIME [ JITTER [CORRELATION]]]
                 [ distribution {uniform|normal|pareto|paretonormal} ]
                 [ corrupt PERCENT [CORRELATION]]
                 [ duplicate PERCENT [CORRELATION]]
                 [ loss random PERCENT [CORRELATION]]
                 [ loss state P13 [P31 [P32 [P23 P14]]]
                 [ loss gemodel PERCENT [R [1-H [1-K]]]
                 [ ecn ]
                 [ reorder PERCENT [CORRELATION] [ gap DISTANCE ]]
                 [ rate RATE [PACKETOVERHEAD] [CELLSIZE] [CELLOVERHEAD]]
                 [ slot MIN_DELAY [MAX_DELAY] [packets MAX_PACKETS] [bytes MAX_BYTES]]
                 [ slot distribution {uniform|normal|pareto|paretonormal|custom} DELAY JITTER [packets MAX_PACKETS] [bytes MAX_BYTES]]
                 [ seed SEED ]"""


def _is_number(args, i):
    return i < len(args) and args[i][:1].isdigit()


def _is_signed(args, i):
    return i < len(args) and (args[i][:1].isdigit() or args[i][:1] == "-")


def _illegal(what):
    return NetemError('Illegal "%s"' % what)


def parse_netem(args):
    """tc qdisc ... netem ARGS -> the kernel options (netem_parse_opt)."""
    args = [str(a) for a in args]
    opts = {"limit": 1000}
    latency = jitter = 0
    corr = {}
    loss = 0
    loss_model = None
    dist = None
    present_reorder = False
    reorder = corrupt = None
    gap = 0
    ecn = False
    i = 0

    def val(fn, what):
        nonlocal i
        i += 1
        if i >= len(args):
            raise NetemError("Illegal \"%s\": argument is missing" % what)
        try:
            return fn(args[i])
        except NetemError:
            raise _illegal(what) from None

    while i < len(args):
        a = args[i]
        if matches(a, "limit"):
            opts["limit"] = val(_u32, "limit")
        elif matches(a, "latency") or matches(a, "delay"):
            latency = val(get_time64, "latency")
            if _is_number(args, i + 1):
                jitter = val(get_time64, "latency")
                if _is_number(args, i + 1):
                    corr["delay"] = val(get_percent, "latency")
        elif matches(a, "loss") or matches(a, "drop"):
            if loss or loss_model:
                raise _illegal("duplicate loss argument\n")
            i += 1
            if i >= len(args):
                raise _illegal("loss percent")
            kind = args[i]
            if kind[:1].isdigit() or kind == "random":
                if kind == "random":
                    i -= 0
                else:
                    i -= 1
                loss = val(get_percent, "loss percent")
                if _is_number(args, i + 1):
                    corr["loss"] = val(get_percent, "loss correllation")
            elif kind == "state":
                p13 = val(get_percent, "loss p13")
                gi = {"p13": p13, "p31": U32_MAX - p13, "p32": 0, "p23": U32_MAX, "p14": 0}
                for k in ("p31", "p32", "p23", "p14"):
                    if not _is_number(args, i + 1):
                        break
                    gi[k] = val(get_percent, "loss " + k)
                loss_model = {"gi": gi}
            elif kind == "gemodel":
                ge = {"p": val(get_percent, "loss gemodel p"), "r": U32_MAX, "h": U32_MAX,
                      "k1": 0}
                if _is_number(args, i + 1):
                    ge["r"] = val(get_percent, "loss gemodel r")
                    if _is_number(args, i + 1):
                        # tc takes "1-h" (the loss probability in the bad state); the kernel h.
                        ge["h"] = U32_MAX - val(get_percent, "loss gemodel h")
                        if _is_number(args, i + 1):
                            ge["k1"] = val(get_percent, "loss gemodel k")
                loss_model = {"ge": ge}
            else:
                raise NetemError("Unknown loss parameter: %s" % kind)
        elif matches(a, "ecn"):
            ecn = True
        elif matches(a, "reorder"):
            present_reorder = True
            p = val(get_percent, "reorder")
            c = val(get_percent, "reorder") if _is_number(args, i + 1) else 0
            reorder = {"probability": p, "correlation": c}
        elif matches(a, "corrupt"):
            p = val(get_percent, "corrupt")
            c = val(get_percent, "corrupt") if _is_number(args, i + 1) else 0
            corrupt = {"probability": p, "correlation": c}
        elif matches(a, "gap"):
            gap = val(_u32, "gap")
        elif matches(a, "duplicate"):
            opts["duplicate"] = val(get_percent, "duplicate")
            if _is_number(args, i + 1):
                corr["dup"] = val(get_percent, "duplicate")
        elif matches(a, "distribution"):
            i += 1
            if i >= len(args):
                raise _illegal("distribution")
            dist = args[i]
            if dist != "uniform":
                get_distribution(dist)
        elif matches(a, "rate"):
            rate = {"rate": val(get_rate64, "rate")}
            if _is_signed(args, i + 1):
                rate["packet_overhead"] = val(_s32, "rate")
                if _is_number(args, i + 1):
                    rate["cell_size"] = val(_u32, "rate")
                    if _is_signed(args, i + 1):
                        rate["cell_overhead"] = val(_s32, "rate")
            opts["rate"] = rate
        elif matches(a, "slot"):
            slot = {}
            if _is_number(args, i + 1):
                slot["min_delay"] = val(get_time64, "slot min delay")
                if _is_number(args, i + 1):
                    slot["max_delay"] = val(get_time64, "slot max delay")
                slot["max_delay"] = max(slot.get("max_delay", 0), slot["min_delay"])
            else:
                i += 1
                if i >= len(args) or args[i] != "distribution":
                    raise NetemError("Unknown slot parameter: %s"
                                     % (args[i] if i < len(args) else ""))
                i += 1
                if i >= len(args):
                    raise _illegal("slot distribution")
                if args[i] != "uniform":
                    opts["slot_dist"] = list(get_distribution(args[i]))
                slot["dist_delay"] = val(get_time64, "slot delay")
                slot["dist_jitter"] = val(get_time64, "slot jitter")
                if slot["dist_jitter"] <= 0:
                    raise NetemError("Non-positive jitter")
            if i + 1 < len(args) and matches(args[i + 1], "packets"):
                i += 1
                slot["max_packets"] = val(_s32pos, "slot packets")
            if i + 1 < len(args) and matches(args[i + 1], "bytes"):
                i += 1
                slot["max_bytes"] = val(get_size, "slot bytes")
            opts["slot"] = slot
        elif matches(a, "seed"):
            opts["seed"] = val(_u64, "seed")
        elif a == "help":
            raise NetemError(NETEM_USAGE)
        else:
            raise NetemError('What is "%s"?\n%s' % (a, NETEM_USAGE))
        i += 1
    if present_reorder and reorder["probability"]:
        if latency == 0:
            raise NetemError("reordering not possible without specifying some delay\n"
                             + NETEM_USAGE)
        if gap == 0:
            gap = 1
    elif gap > 0:
        raise NetemError("gap specified without reorder probability\n" + NETEM_USAGE)
    if ecn and not loss and loss_model is None:
        raise NetemError("ecn requested without loss model\n" + NETEM_USAGE)
    if dist is not None and dist != "uniform" and (latency == 0 or jitter == 0):
        raise NetemError("distribution specified but no latency and jitter values\n"
                         + NETEM_USAGE)
    if latency:
        opts["latency"] = latency
    if jitter:
        opts["jitter"] = jitter
    if loss:
        opts["loss"] = loss
    if gap:
        opts["gap"] = gap
    if corr:
        opts["corr"] = corr
    if reorder is not None:
        opts["reorder"] = reorder
    if corrupt is not None:
        opts["corrupt"] = corrupt
    if loss_model is not None:
        opts["loss_model"] = loss_model
    if ecn:
        opts["ecn"] = True
    if dist is not None and dist != "uniform":
        opts["delay_dist"] = list(get_distribution(dist))
    return opts


def _u32(text):
    try:
        v = int(str(text), 0)
    except ValueError:
        raise NetemError("invalid number %r" % (text,)) from None
    if not 0 <= v <= U32_MAX:
        raise NetemError("invalid number %r" % (text,))
    return v


def _u64(text):
    try:
        v = int(str(text), 10)
    except ValueError:
        raise NetemError("invalid number %r" % (text,)) from None
    if not 0 <= v < 1 << 64:
        raise NetemError("invalid number %r" % (text,))
    return v


def _s32(text):
    try:
        v = int(str(text), 0)
    except ValueError:
        raise NetemError("invalid number %r" % (text,)) from None
    if not -(1 << 31) <= v < 1 << 31:
        raise NetemError("invalid number %r" % (text,))
    return v


def _s32pos(text):
    v = _s32(text)
    if v < 0:
        raise NetemError("invalid number %r" % (text,))
    return v


def format_netem(o):
    """netem_print_opt: the options line of `tc qdisc show`."""
    out = ["limit %d" % o.get("limit", 1000)]
    corr = o.get("corr") or {}
    if o.get("latency"):
        out.append(" delay %s" % sprint_time64(o["latency"]))
        if o.get("jitter"):
            out.append("  %s" % sprint_time64(o["jitter"]))
            if corr.get("delay"):
                out.append(" %s" % sprint_percent(corr["delay"]))
    if o.get("loss"):
        out.append(" loss %s" % sprint_percent(o["loss"]))
        if corr.get("loss"):
            out.append(" %s" % sprint_percent(corr["loss"]))
    lm = o.get("loss_model") or {}
    if "gi" in lm:
        gi = lm["gi"]
        out.append(" loss state p13 %s p31 %s p32 %s p23 %s p14 %s" % tuple(
            sprint_percent(gi[k]) for k in ("p13", "p31", "p32", "p23", "p14")))
    if "ge" in lm:
        ge = lm["ge"]
        out.append(" loss gemodel p %s r %s 1-h %s 1-k %s" % (
            sprint_percent(ge["p"]), sprint_percent(ge["r"]),
            sprint_percent(U32_MAX - ge["h"]), sprint_percent(ge["k1"])))
    if o.get("duplicate"):
        out.append(" duplicate %s" % sprint_percent(o["duplicate"]))
        if corr.get("dup"):
            out.append(" %s" % sprint_percent(corr["dup"]))
    r = o.get("reorder")
    if r and r.get("probability"):
        out.append(" reorder %s" % sprint_percent(r["probability"]))
        if r.get("correlation"):
            out.append(" %s" % sprint_percent(r["correlation"]))
    c = o.get("corrupt")
    if c and c.get("probability"):
        out.append(" corrupt %s" % sprint_percent(c["probability"]))
        if c.get("correlation"):
            out.append(" %s" % sprint_percent(c["correlation"]))
    rate = o.get("rate")
    if rate and rate.get("rate"):
        out.append(" rate %s" % sprint_rate(rate["rate"]))
        if rate.get("packet_overhead"):
            out.append(" packetoverhead %d" % rate["packet_overhead"])
        if rate.get("cell_size"):
            out.append(" cellsize %d" % rate["cell_size"])
        if rate.get("cell_overhead"):
            out.append(" celloverhead %d" % rate["cell_overhead"])
    slot = o.get("slot")
    if slot:
        if slot.get("dist_jitter"):
            out.append(" slot distribution %s %s" % (sprint_time64(slot.get("dist_delay", 0)),
                                                     sprint_time64(slot["dist_jitter"])))
        else:
            out.append(" slot %s %s" % (sprint_time64(slot.get("min_delay", 0)),
                                        sprint_time64(slot.get("max_delay", 0))))
        if slot.get("max_packets"):
            out.append(" packets %d" % slot["max_packets"])
        if slot.get("max_bytes"):
            out.append(" bytes %d" % slot["max_bytes"])
    if o.get("seed") is not None:
        out.append(" seed %d" % o["seed"])
    if o.get("ecn"):
        out.append(" ecn")
    if o.get("gap"):
        out.append(" gap %d" % o["gap"])
    return "".join(out)


# ---------------------------------------------------------------- tc ... tbf

TBF_USAGE = """Usage: ... tbf limit BYTES burst BYTES[/BYTES] rate KBPS [ mtu BYTES[/BYTES] ]
        [ peakrate KBPS ] [ latency TIME ] [ overhead BYTES ] [ linklayer TYPE ]"""


def parse_tbf(args):
    """tc qdisc ... tbf ARGS -> the kernel options (tbf_parse_opt)."""
    args = [str(a) for a in args]
    rate = burst = limit = latency = peak = mtu = None
    i = 0
    while i < len(args):
        a = args[i]
        nxt = args[i + 1] if i + 1 < len(args) else None

        def need(what, nxt=nxt):         # used within this iteration only
            if nxt is None:
                raise NetemError('Illegal "%s"' % what)
            return nxt
        try:
            if matches(a, "limit"):
                if limit is not None or latency is not None:
                    raise NetemError('tbf: duplicate "limit/latency" specification')
                limit = get_size(need("limit"))
            elif matches(a, "latency"):
                if limit is not None or latency is not None:
                    raise NetemError('tbf: duplicate "limit/latency" specification')
                latency = get_time64(need("latency"))
            elif matches(a, "burst") or matches(a, "buffer") or matches(a, "maxburst"):
                if burst is not None:
                    raise NetemError('tbf: duplicate "burst/buffer/maxburst" specification')
                burst = get_size(need("burst"))
            elif matches(a, "mtu") or matches(a, "minburst"):
                mtu = get_size(need("mtu"))
            elif matches(a, "rate"):
                rate = get_rate64(need("rate"))
            elif matches(a, "peakrate"):
                peak = get_rate64(need("peakrate"))
            elif a in ("mpu", "overhead", "linklayer"):
                need(a)
            elif a == "help":
                raise NetemError(TBF_USAGE)
            else:
                raise NetemError('tbf: unknown parameter "%s"\n%s' % (a, TBF_USAGE))
        except NetemError as e:
            if str(e).startswith(("tbf:", "Usage", "Illegal")):
                raise
            raise NetemError('tbf: illegal value for "%s": "%s"' % (a, nxt)) from None
        i += 1 if a == "help" else 2
    if not rate:
        raise NetemError('tbf: the "rate" parameter is mandatory.')
    if not burst:
        raise NetemError('tbf: the "burst" parameter is mandatory.')
    if peak and not mtu:
        raise NetemError('tbf: when "peakrate" is specified, "mtu" must also be specified.')
    if limit is None and latency is None:
        raise NetemError('tbf: either "limit" or "latency" are required.')
    if latency is not None:
        lim = rate * latency / 1e9 + burst
        if peak:
            lim = min(lim, peak * latency / 1e9 + mtu)
        limit = int(lim)
    opts = {"rate": rate, "burst": burst, "limit": limit}
    if peak:
        opts.update(peakrate=peak, mtu=mtu)
    return opts


def format_tbf(o):
    """tbf_print_opt: rate, burst, (peakrate, minburst), lat."""
    rate = o["rate"]
    out = "rate %s burst %s " % (sprint_rate(rate), sprint_size(o["burst"]))
    if o.get("peakrate"):
        out += "peakrate %s minburst %s " % (sprint_rate(o["peakrate"]), sprint_size(o["mtu"]))
    latency = 1e6 * (o["limit"] / rate) - 1e6 * (o["burst"] / rate)
    if o.get("peakrate"):
        lat2 = 1e6 * (o["limit"] / o["peakrate"]) - 1e6 * (o["mtu"] / o["peakrate"])
        latency = max(latency, lat2)
    if latency >= 0.0:
        out += "lat %s " % sprint_time_us(latency)
    else:
        out += "limit %s " % sprint_size(o["limit"])
    return out.rstrip()


QDISC_PARSERS = {"netem": parse_netem, "tbf": parse_tbf}
QDISC_FORMATTERS = {"netem": format_netem, "tbf": format_tbf}


# ---------------------------------------------------------------- YAML / CLI / Python keys

SPEC_KEYS = ("delay", "jitter", "correlation", "distribution", "loss", "duplicate", "reorder",
             "gap", "corrupt", "rate", "limit", "seed", "ecn")


def spec_to_args(spec):
    """{delay: 20ms, jitter: 5ms, loss: 1%, rate: 100mbit, ...} -> tc netem arguments.

    Each field is checked on its own; NetemError("FIELD: message") names it.
    """
    if not isinstance(spec, dict):
        raise NetemError("netem: expected a mapping of %s" % ", ".join(SPEC_KEYS))
    for k in spec:
        if k not in SPEC_KEYS:
            raise NetemError("%s: unknown key (known: %s)" % (k, ", ".join(SPEC_KEYS)))

    def check(field, fn):
        v = spec[field]
        if isinstance(v, bool) or v is None:
            raise NetemError("%s: invalid value %r" % (field, v))
        if fn in (get_time64, get_rate64) and _number(v)[1].strip() == "":
            raise NetemError("%s: %r needs a unit (e.g. %s)" % (
                field, v, "20ms" if fn is get_time64 else "100mbit"))
        try:
            fn(_text(v, field))
        except NetemError:
            raise NetemError("%s: invalid value %r" % (field, v)) from None
        return _text(v, field)

    args = []
    if "delay" in spec or "jitter" in spec:
        delay = check("delay", get_time64) if "delay" in spec else "0ms"
        args += ["delay", delay]
        if "jitter" in spec:
            args.append(check("jitter", get_time64))
            if "correlation" in spec:
                args.append(check("correlation", get_percent))
    elif "correlation" in spec:
        raise NetemError("correlation: needs jitter")
    if "distribution" in spec:
        d = spec["distribution"]
        if d not in DISTRIBUTIONS:
            raise NetemError("distribution: %r is not one of %s" % (d, ", ".join(DISTRIBUTIONS)))
        args += ["distribution", d]
    for field in ("loss", "duplicate", "reorder", "corrupt"):
        if field in spec:
            args += [field, check(field, get_percent)]
    if "gap" in spec:
        args += ["gap", check("gap", _u32)]
    if "rate" in spec:
        args += ["rate", check("rate", get_rate64)]
    if "limit" in spec:
        args += ["limit", check("limit", _u32)]
    if "seed" in spec:
        args += ["seed", check("seed", _u64)]
    if spec.get("ecn"):
        args.append("ecn")
    try:
        parse_netem(args)
    except NetemError as e:
        raise NetemError("netem: %s" % str(e).splitlines()[0]) from None
    return args


def _text(v, field):
    """A YAML value as tc text: 20 -> "20", 0.5 -> "0.5"; percentages and times keep units."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def describe(spec):
    """A short label for a graph edge: "delay 20ms loss 1%"."""
    parts = []
    for k in ("delay", "jitter", "loss", "duplicate", "reorder", "corrupt", "rate"):
        if k in spec:
            parts.append("%s %s" % (k if k != "jitter" else "±", spec[k]))
    return " ".join(parts).replace("± ", "±")
