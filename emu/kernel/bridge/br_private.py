"""The bridge's structures: struct net_bridge and struct net_bridge_port.

Linux: net/bridge/br_private.h
"""

BR_STATE_DISABLED = 0
BR_STATE_LISTENING = 1
BR_STATE_LEARNING = 2
BR_STATE_FORWARDING = 3
BR_STATE_BLOCKING = 4
BR_STATE_NAMES = ("disabled", "listening", "learning", "forwarding", "blocking")

BR_DEFAULT_AGEING_TIME = 300.0


class NetBridge:
    """struct net_bridge: the bridge device's private data."""

    __slots__ = ("dev", "port_list", "fdb", "ageing_time", "gc_timer", "counters",
                 "group_fwd_mask")

    def __init__(self, dev):
        self.dev = dev
        self.port_list = []
        self.fdb = {}              # MAC bytes -> NetBridgeFdbEntry (fdb_hash_tbl)
        self.ageing_time = BR_DEFAULT_AGEING_TIME
        self.gc_timer = None
        # Which 01:80:c2:00:00:0X link-local groups are forwarded (bit X); 0 as Linux.
        self.group_fwd_mask = 0
        # Emulation note: Linux has no such per-bridge totals; emu keeps them
        # so that "learned, then forwarded without flooding" is observable.
        self.counters = {"rx_frames": 0, "forwarded": 0, "flooded": 0,
                         "local_in": 0, "learned": 0, "aged": 0,
                         "dropped_invalid_src": 0, "link_local": 0}


class NetBridgePort:
    """struct net_bridge_port: one port (an enslaved device)."""

    __slots__ = ("br", "dev", "port_no", "state", "learning", "flood")

    def __init__(self, br, dev, port_no):
        self.br = br
        self.dev = dev
        self.port_no = port_no
        self.state = BR_STATE_FORWARDING    # no STP: ports forward at once
        self.learning = True
        self.flood = True


def br_port_get_rcu(dev):
    return dev.rx_handler_data
