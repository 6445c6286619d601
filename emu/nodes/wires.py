"""The node's wires and TAPs: attaching them, their carrier, filters and a
tcp wire's CURVE events (a mixin of NodeRuntime, runtime.py).

Linux: drivers/net/veth.c and drivers/net/tun.c are the devices' kernel
side (emu/kernel/drivers/); this is the hardware and cabling around them.
"""
import logging
import threading
from typing import Any, Callable

import zmq

from ..kernel.core import rtnetlink
from ..kernel.core.dev import KernelError, register_netdevice
from ..kernel.drivers.wirenic import wirenic_register
from ..wire.curve import HANDSHAKE_FAILED, ZapHandler, monitor_events
from ..wire.zwire import WirePort

log = logging.getLogger("emu.node")


class WireOps:
    """Wire and TAP control ops; NodeRuntime provides the state below."""

    name: str
    net: Any
    ctx: Any
    ports: dict              # ifname -> WirePort (copy on write: the NIC thread reads it)
    taps: dict               # ifname -> TapPort
    zap: Any                 # ZapHandler, with the first tcp wire
    running: bool
    nic_notify_tx: Any
    enter_user: Callable[..., Any]
    _irq: Callable[..., Any]
    _mark_dirty: Callable[..., Any]
    _kick: Callable[..., Any]
    _xon: Callable[..., Any]

    def _wire_events(self, port, mon):
        """A tcp wire's monitor: handshakes refused, the connection up or down.

        The sending side's connection is the link: handshaken, the carrier
        comes up; dropped (the peer died, its machine went away), it goes
        down until ZeroMQ has reconnected.
        """
        link_up = port.link_up
        for ev in monitor_events(mon):
            if ev & HANDSHAKE_FAILED:
                port.auth_failures += 1
                if mon is port.tx_mon:
                    link_up = False
                log.warning("wire %s: CURVE handshake %s (event %d): not this lab's key",
                            port.dev.name if port.dev is not None else "?",
                            "refused by the peer" if mon is port.tx_mon else "refused", ev)
            elif mon is port.tx_mon:
                if ev == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    link_up = True
                elif ev == zmq.EVENT_DISCONNECTED:
                    link_up = False
        if link_up != port.link_up:
            port.link_up = link_up
            if port.update_carrier() and port.dev is not None:
                self._irq(0, rtnetlink.rtnl_carrier, self.net, port.dev.name, port.carrier)

    def _auth_failures(self, ifname, port):
        """CURVE refusals on a wire: the handshakes its monitors saw fail; ZAP's
        own count when larger (a refusal the monitor event has not reported yet)."""
        zap = self.zap.denied.get(ifname, 0) if self.zap is not None else 0
        return max(port.auth_failures, zap)

    def op_wire_carrier(self, ifname, up):
        """The wire reports its other end gone or back (a cut cable, a dead
        peer); the kernel owns the carrier and what follows from it."""
        port = self.ports.get(ifname)
        if port is None:
            raise KernelError(19, "Cannot find device \"%s\"" % ifname)
        port.admin_up = bool(up)
        port.update_carrier()
        return self.enter_user(rtnetlink.rtnl_carrier, self.net, ifname, port.carrier)

    def op_wire_connect(self, ifname, tx):
        """Connect a wire's sending side (a tcp wire learns its peer's port after both bound)."""
        port = self.ports.get(ifname)
        if port is None:
            raise KernelError(19, "Cannot find device \"%s\"" % ifname)
        if tx.startswith("tcp://") and port.curve is None:
            raise KernelError(22, "wire_connect: a tcp:// wire needs the lab's CURVE keys")
        port.connect(tx)
        return {"ifname": ifname, "tx": tx}

    def op_wire_filter(self, ifname, spec=None):
        """A partition's filter on this wire end (set by the orchestrator)."""
        from ..wire.partition import PartitionFilter
        port = self.ports.get(ifname)
        if port is None:
            raise KernelError(19, "Cannot find device \"%s\"" % ifname)
        try:
            port.rx_filter = PartitionFilter(spec) if spec else None
        except (TypeError, ValueError, KeyError) as e:
            raise KernelError(22, "wire_filter: bad spec: %s" % e) from None
        return {}

    def op_wire_attach(self, **kw):
        return self.wire_attach(**kw)

    def op_tap_attach(self, **kw):
        return self.tap_attach(**kw)

    def wire_attach(self, ifname, rx, tx=None, mac=None, mtu=None, peer="", kind="veth",
                    queues=1, curve_public=None, curve_secret=None):
        """Create the device at this end of a wire (rx/tx endpoints).

        kind "veth": a veth whose peer is across the wire; kind "phys": a
        wirenic with `queues` queue pairs (RX/TX rings, one IRQ each). A
        tcp:// wire carries the lab's CURVE keys (wire/curve.py); its rx may
        be tcp://A.B.C.D:* and its tx come later (wire_connect), once the
        peer has bound. Returns the bound rx endpoint.
        """
        if kind not in ("veth", "phys"):
            raise KernelError(22, "unknown wire kind %r" % kind)
        if ifname in self.ports or ifname in self.taps:
            raise KernelError(17, "RTNETLINK answers: File exists")
        tcp = rx.startswith("tcp://") or (tx or "").startswith("tcp://")
        curve = None
        if tcp:
            if curve_public is None or curve_secret is None:
                raise KernelError(22, "wire_attach: a tcp:// wire needs the lab's CURVE keys")
            if self.zap is None:          # before any CURVE server binds
                self.zap = ZapHandler(self.ctx, curve_public)
            curve = (curve_public, curve_secret)
        try:
            port = WirePort(self.ctx, rx, tx, on_dirty=self._mark_dirty, curve=curve, name=ifname)
        except zmq.ZMQError as e:
            raise KernelError(e.errno or 22, "wire_attach %s: %s" % (rx, e.strerror)) from None
        try:
            self.enter_user(self._wire_attach_dev, port, ifname, mac, mtu, peer, kind, queues)
            if port.update_carrier():      # a tcp wire: no carrier until handshaken
                self.enter_user(rtnetlink.rtnl_carrier, self.net, ifname, port.carrier)
        except BaseException:
            port.close()
            raise
        # Copy on write: the NIC thread reads self.ports without the lock.
        self.ports = dict(self.ports, **{ifname: port})
        self.nic_notify_tx.send(b"x")
        return {"ifname": ifname, "rx": port.rx_endpoint}

    def _wire_attach_dev(self, port, ifname, mac, mtu, peer, kind, queues):
        """In the kernel: the device at this end of a new wire."""
        if kind == "phys":
            from ..kernel.ethernet.eth import eth_hw_addr_derive
            from ..kernel.hdr.if_ether import mac_from_str
            mac_b = mac_from_str(mac) if mac else eth_hw_addr_derive(self.name, ifname)
            try:
                dev = wirenic_register(self.net, ifname, mac_b, port, peer, int(queues), mtu)
            except OSError as e:
                raise KernelError(e.errno or 22, e.strerror or str(e)) from None
            dev.priv.kick = self._kick
            dev.priv.xon = self._xon
        else:
            rtnetlink.rtnl_newlink(self.net, ifname, "veth", mac=mac, mtu=mtu,
                                   port=port, peer=peer)
        port.dev = self.net.dev_by_name[ifname]

    def tap_attach(self, ifname, tap, netns=None, mac=None, mtu=None):
        """Create device ifname facing a new Linux TAP device (inside netns if given).

        The TAP gets its own reader thread: it is a separate piece of hardware
        from the wires the NIC thread serves.
        """
        from ..kernel.drivers.tap import tap_setup, tun_get_user
        from ..kernel.ethernet.eth import eth_hw_addr_derive
        from ..kernel.hdr.if_ether import mac_from_str
        from ..wire.tap import TapPort, open_tap
        port = TapPort(open_tap(tap, netns), tap)

        def setup():
            mac_b = mac_from_str(mac) if mac else eth_hw_addr_derive(self.name, ifname)
            d = tap_setup(ifname, mac_b, port, tap)
            if mtu:
                d.mtu = int(mtu)
            register_netdevice(self.net, d)
            return d
        try:
            dev = self.enter_user(setup)
        except BaseException:
            port.close()
            raise
        port.dev = dev
        self.taps = dict(self.taps, **{ifname: port})

        def rx(frames):
            for f in frames:
                tun_get_user(dev, f)

        def reader():
            import select
            while self.running and port.dev is not None:
                r, _, _ = select.select([port.fd], [], [], 0.5)
                if not r:
                    continue
                frames = port.read_frames()
                if not frames:
                    continue
                self._irq(dev.rx_cpu, rx, frames)

        threading.Thread(target=reader, name="tap-%s" % ifname, daemon=True).start()
        return {"ifname": ifname, "tap": tap}
