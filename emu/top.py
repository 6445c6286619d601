"""`emu top`: the running lab in the terminal, refreshed every second.

    emu top [--lab NAME] [--sort cpu|mem|pps|drops|name] [-d SECONDS]
    emu top --once [--format json]       # one frame, for scripts

Per node: state, PID, CPU%, memory (RSS), packets/s received and sent (over
all its interfaces), drops (device drops, missed frames, qdisc drops) and
kernel oopses; per link: its state, the rate in each direction (from the
sending end's tx_bytes) and its impairments. Keys: c, m, p, d, n sort by CPU,
memory, packets/s, drops, name; q quits. Two samples an interval apart give
the rates; --once waits one interval and prints one frame. Into a pipe or
a file it prints a frame every interval, as `top -b` does.
"""
from __future__ import annotations

import json
import os
import select
import sys
import time

import psutil

from .inspect import inspect_lab, query_nodes
from .orchestrator import LabError, find_lab
from .supervisor import DEAD_STATES

SORTS = {"c": "cpu", "m": "mem", "p": "pps", "d": "drops", "n": "name"}


def add_parsers(sub) -> None:
    p = sub.add_parser("top", help="a live view of the lab: per node CPU, memory, packets/s, "
                                   "drops, oopses; per link rate, impairments, state")
    p.add_argument("--lab")
    p.add_argument("--once", action="store_true", help="print one frame and exit")
    p.add_argument("-d", dest="interval", type=float, default=1.0, metavar="SECONDS",
                   help="refresh interval (default 1)")
    p.add_argument("--sort", choices=sorted(SORTS.values()), default="name")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-j", "--json", dest="format", action="store_const", const="json",
                   help="with --once: the frame as JSON (schema emu.top/1)")
    p.set_defaults(func=cmd_top)


class Sampler:
    """Keeps the previous sample so each new one yields rates."""

    def __init__(self, st: dict):
        self.st = st
        self.procs: dict[str, psutil.Process] = {}
        self.prev: dict | None = None
        self.prev_t = 0.0

    def _proc(self, name: str, info: dict) -> psutil.Process | None:
        p = self.procs.get(name)
        if p is not None and p.pid == info.get("pid"):
            return p
        from .cluster_relay import on_this_host
        if not on_this_host(info):
            return None                  # a node on another host: no process here to read
        try:
            p = psutil.Process(info["pid"])
            p.cpu_percent(None)          # the first reading
        except (psutil.Error, KeyError, TypeError):
            return None
        self.procs[name] = p
        return p

    def sample(self) -> dict:
        """The lab now: its inspect snapshot, CPU and memory, and rates since the last sample."""
        try:
            self.st = find_lab(os.path.basename(self.st["run_dir"]))   # node states change
        except LabError:
            pass
        nodes = self.st.get("nodes") or {}
        figs = {}
        for name, info in nodes.items():
            p = self._proc(name, info) if info.get("state", "running") not in DEAD_STATES else None
            try:
                figs[name] = (p.cpu_percent(None), p.memory_info().rss) if p else (None, None)
            except psutil.Error:
                figs[name] = (None, None)
        lab = inspect_lab(self.st, query_nodes(self.st))
        now = time.monotonic()
        dt = now - self.prev_t if self.prev is not None else None
        prev = self.prev or {}
        counters = {}
        rows = []
        for n in lab["nodes"]:
            tot = {"rx": 0, "tx": 0, "drops": 0}
            for i in n["interfaces"]:
                s = i["stats"]
                tot["rx"] += s["rx_packets"]
                tot["tx"] += s["tx_packets"]
                tot["drops"] += s["rx_dropped"] + s["tx_dropped"] + s["rx_missed_errors"] + \
                    sum(q["drops"] for q in i["impairments"])
                counters["%s:%s" % (n["name"], i["name"])] = s["tx_bytes"]
            counters[n["name"]] = tot
            old = prev.get(n["name"])
            ok = n["answered"]
            rate = (lambda k, old=old, tot=tot, ok=ok: None if old is None or not dt or not ok
                    else max(0.0, (tot[k] - old[k]) / dt))
            cpu, rss = figs.get(n["name"], (None, None))
            rows.append({"name": n["name"], "kind": n["kind"], "state": n["state"],
                         "pid": n["pid"], "cpu": None if cpu is None or self.prev is None
                         else round(cpu, 1), "rss": rss,
                         "rx_pps": rate("rx"), "tx_pps": rate("tx"),
                         "drops": tot["drops"] if n["answered"] else None, "oops": n["oops"]})
        links = []
        for l in lab["links"]:
            def bps(end):
                if not dt or end not in counters or end not in prev:
                    return None
                return max(0.0, (counters[end] - prev[end]) * 8 / dt)
            links.append({"a": l["a"], "b": l["b"], "state": l["state"],
                          "a_to_b_bps": bps(l["a"]), "b_to_a_bps": bps(l["b"]),
                          "impairments": l["impairments"]})
        self.prev, self.prev_t = counters, now
        from .status import clock_of
        return {"schema": "emu.top/1", "lab": lab["name"], "interval": round(dt or 0.0, 3),
                "nodes": rows, "links": links, "partition": lab["partition"],
                "clock": dict(clock_of(self.st), seed=self.st.get("seed"))}


def sort_rows(rows: list[dict], key: str) -> list[dict]:
    if key == "name":
        return rows
    get = {"cpu": lambda r: r["cpu"] or 0.0, "mem": lambda r: r["rss"] or 0,
           "pps": lambda r: (r["rx_pps"] or 0.0) + (r["tx_pps"] or 0.0),
           "drops": lambda r: r["drops"] or 0}[key]
    return sorted(rows, key=get, reverse=True)


def _size(n):
    if n is None:
        return "-"
    for unit in ("B", "K", "M"):
        if n < 1024:
            return "%d%s" % (n, unit) if unit == "B" else "%.1f%s" % (n, unit)
        n /= 1024
    return "%.1fG" % n


def _rate(bps):
    if bps is None:
        return "-"
    for unit in ("bit/s", "kbit/s", "Mbit/s"):
        if bps < 1000:
            return "%.0f %s" % (bps, unit) if unit == "bit/s" else "%.1f %s" % (bps, unit)
        bps /= 1000
    return "%.2f Gbit/s" % bps


def _num(v, fmt="%.0f"):
    return "-" if v is None else fmt % v


def frame(doc: dict, sort: str = "name", live: bool = False):
    """The rich renderable of one sample."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text
    from .status import clock_line
    cl = clock_line({"clock": doc.get("clock"), "seed": (doc.get("clock") or {}).get("seed")})
    head = Text("emu top  lab %s  sorted by %s%s%s" % (
        doc["lab"], sort, "   keys: c cpu  m mem  p pkts/s  d drops  n name  q quit" if live else "",
        "\n" + cl if cl else ""), style="bold")
    nt = Table(title="nodes", title_justify="left", expand=False)
    for col, just in (("NODE", "left"), ("KIND", "left"), ("STATE", "left"), ("PID", "right"),
                      ("CPU%", "right"), ("MEM", "right"), ("RX pkt/s", "right"),
                      ("TX pkt/s", "right"), ("DROPS", "right"), ("OOPS", "right")):
        # Names and states are never cut: on a narrow terminal the figures give way.
        keep = {"NODE": max([4] + [len(r["name"]) for r in doc["nodes"]]),
                "STATE": max([5] + [len(r["state"]) for r in doc["nodes"]])}.get(col)
        nt.add_column(col, justify=just, no_wrap=True, min_width=keep)
    for r in sort_rows(doc["nodes"], sort):
        style = None if r["state"] == "running" else "red"
        nt.add_row(r["name"], r["kind"] or "-", r["state"], _num(r["pid"], "%d"),
                   _num(r["cpu"], "%.1f"), _size(r["rss"]), _num(r["rx_pps"]),
                   _num(r["tx_pps"]), _num(r["drops"], "%d"),
                   Text(_num(r["oops"], "%d"), style="bold red" if r["oops"] else ""), style=style)
    lt = Table(title="links", title_justify="left", expand=False)
    for col in ("END A", "END B", "STATE", "A->B", "B->A", "IMPAIRMENTS"):
        lt.add_column(col, no_wrap=col != "IMPAIRMENTS")
    for l in doc["links"]:
        imp = "; ".join("%s: %s" % kv for kv in l["impairments"].items()) or "-"
        lt.add_row(l["a"], l["b"], l["state"], _rate(l["a_to_b_bps"]), _rate(l["b_to_a_bps"]),
                   imp, style=None if l["state"] == "up" else "red")
    parts = [head, nt, lt]
    if doc.get("partition"):
        parts.append(Text("partition: " + " | ".join(",".join(g) for g in doc["partition"]["groups"]),
                          style="yellow"))
    return Group(*parts)


class _Keys:
    """Single key presses from the terminal (cbreak mode), restored on exit."""

    def __init__(self):
        self.fd = sys.stdin.fileno() if sys.stdin.isatty() else None
        self.old = None

    def __enter__(self):
        if self.fd is not None:
            import termios
            import tty
            self.old = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            import termios
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.old)

    def read(self, timeout: float) -> str | None:
        if self.fd is None:
            time.sleep(timeout)
            return None
        r, _, _ = select.select([self.fd], [], [], timeout)
        return os.read(self.fd, 1).decode(errors="replace") if r else None


def cmd_top(a) -> int:
    try:
        st = find_lab(a.lab)
    except LabError as e:
        print("emu: %s" % e, file=sys.stderr)
        return 1
    if not 0.1 <= a.interval <= 3600:
        print("emu: top: -d must be between 0.1 and 3600 seconds", file=sys.stderr)
        return 1
    sampler = Sampler(st)
    first = sampler.sample()
    if a.once:
        time.sleep(a.interval)
        doc = sampler.sample()
        if a.format == "json":
            print(json.dumps(doc, indent=1))
        else:
            from rich.console import Console
            Console(highlight=False, width=_width()).print(frame(doc, a.sort))
        return 0
    from rich.console import Console
    if not sys.stdout.isatty():
        # Into a pipe or a file: a frame every interval, as `top -b` (a live
        # screen there printed nothing at all), until interrupted.
        console = Console(highlight=False, width=_width())
        try:
            while True:
                time.sleep(a.interval)
                console.print(frame(sampler.sample(), a.sort))
                sys.stdout.flush()
        except (KeyboardInterrupt, BrokenPipeError):
            return 0
    from rich.live import Live
    sort = a.sort
    console = Console(highlight=False)
    with _Keys() as keys, Live(frame(first, sort, True), console=console,
                               screen=True, auto_refresh=False) as live:
        doc = None
        deadline = time.monotonic() + a.interval
        while True:
            key = keys.read(max(0.0, deadline - time.monotonic()))
            if key in ("q", "Q", "\x1b"):
                break
            if key in SORTS:
                sort = SORTS[key]
                if doc is not None:
                    live.update(frame(doc, sort, True), refresh=True)
                continue
            if time.monotonic() >= deadline:
                doc = sampler.sample()
                live.update(frame(doc, sort, True), refresh=True)
                deadline = time.monotonic() + a.interval
    return 0


def _width():
    """A terminal's own width; 160 columns into a pipe or file (rich would assume 80)."""
    import sys
    return None if sys.stdout.isatty() else 160
