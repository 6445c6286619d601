"""The forwarding database: which port each MAC address was last seen on.

Linux: net/bridge/br_fdb.c
"""
from ..core.timer import TimerList
from ..hdr.if_ether import is_valid_ether_addr, mac_to_str


class NetBridgeFdbEntry:
    """struct net_bridge_fdb_entry."""

    __slots__ = ("addr", "dst", "updated", "used", "is_local", "is_static")

    def __init__(self, addr, dst, now, is_local=False, is_static=False):
        self.addr = addr
        self.dst = dst              # NetBridgePort, or None for the bridge itself
        self.updated = now
        self.used = now
        self.is_local = is_local
        self.is_static = is_static


def has_expired(br, fdb, now):
    return not fdb.is_static and not fdb.is_local and fdb.updated + br.ageing_time <= now


def br_fdb_find(br, addr):
    """The live entry for addr, or None (an expired entry is as good as gone)."""
    fdb = br.fdb.get(addr)
    if fdb is None:
        return None
    if has_expired(br, fdb, br.dev.net.clock()):
        return None
    return fdb


def br_fdb_insert_local(br, port, addr):
    """A permanent local entry: frames to the bridge's own addresses go up."""
    br.fdb[bytes(addr)] = NetBridgeFdbEntry(bytes(addr), port, br.dev.net.clock(),
                                            is_local=True, is_static=True)


def br_fdb_update(br, source, addr):
    """Learn (or refresh) that addr lives behind port source."""
    fdb = br.fdb.get(addr)
    now = br.dev.net.clock()
    if fdb is None:
        if not is_valid_ether_addr(addr):
            return
        br.fdb[bytes(addr)] = NetBridgeFdbEntry(bytes(addr), source, now)
        br.counters["learned"] += 1
        _arm_gc(br, now)
        return
    if fdb.is_local:
        return               # someone else uses our address: Linux warns, keeps ours
    if fdb.dst is not source:
        fdb.dst = source     # the station moved to another port
    fdb.updated = now


def br_fdb_delete_by_port(br, port):
    for addr in [a for a, f in br.fdb.items() if f.dst is port]:
        del br.fdb[addr]


def br_fdb_cleanup(br):
    """The gc timer: drop entries not refreshed within ageing_time."""
    now = br.dev.net.clock()
    for addr in [a for a, f in br.fdb.items() if has_expired(br, f, now)]:
        del br.fdb[addr]
        br.counters["aged"] += 1
    _arm_gc(br, now)


def _arm_gc(br, now):
    if br.gc_timer is None:
        br.gc_timer = TimerList(br_fdb_cleanup, br)
    if not br.gc_timer.pending and any(not f.is_local for f in br.fdb.values()):
        # Linux runs the gc every hold time; emu checks at least every 10 s.
        br.dev.net.mod_timer(br.gc_timer, now + min(br.ageing_time, 10.0))


def br_fdb_dump(br):
    """The FDB as `bridge fdb show` lists it."""
    now = br.dev.net.clock()
    rows = []
    for f in br.fdb.values():
        if has_expired(br, f, now):
            continue
        rows.append({"mac": mac_to_str(f.addr),
                     "dev": f.dst.dev.name if f.dst is not None else br.dev.name,
                     "master": br.dev.name,
                     "permanent": f.is_local or f.is_static,
                     "is_local": f.is_local,
                     "age": round(now - f.updated, 3)})
    return rows
