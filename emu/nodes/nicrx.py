"""The node's NIC thread: it reads every wire and raises the devices'
receive interrupts (a mixin of NodeRuntime, runtime.py).

A veth gets veth_hw_rx into its RX ring, then veth_rx_irq -> netif_rx on its
rx_cpu; a wirenic (a `phys` link) gets wirenic_hw_rx (RSS into the queue's
RX ring) and wirenic_hw_irq. Linux: drivers/net/veth.c and the NAPI
drivers' interrupt handlers; the devices' kernel side is emu/kernel/drivers/.
"""
import logging
import time
from typing import Any, Callable

import zmq

from ..kernel.core.entry import KernelOops
from ..kernel.core.napi import do_softirq
from ..kernel.drivers.veth import veth_hw_rx, veth_rx_irq
from ..kernel.drivers.wirenic import wirenic_hw_irq, wirenic_hw_next_event, wirenic_hw_rx
from ..wire.curve import ZapHandler
from ..wire.zwire import parse_batch

log = logging.getLogger("emu.node")

_POLLIN = int(zmq.POLLIN)   # a plain int: enum Flag ops are slow
_EVENTS = int(zmq.EVENTS)   # an int option: getsockopt with the enum costs 0.7 us more
NIC_BATCH = 64           # messages a NIC takes from one wire before looking at the others


class NicRx:
    """The NIC thread's receive side; NodeRuntime provides the state below."""

    net: Any
    ports: dict
    running: bool
    urgent: Any
    zap: Any
    nic_notify_rx: Any
    nic_xon: Any
    ready_parks: Any
    cpu_events: list
    _wire_events: Callable[..., Any]
    _yield_to_user: Callable[[], Any]
    enter: Callable[..., Any]
    complete_parks: Callable[[], Any]

    def nic_loop(self):
        """The hardware thread. An error outside the kernel is logged, never fatal:
        a NIC thread that died would leave a node that looks alive but is deaf."""
        poller = zmq.Poller()
        poller.register(self.nic_notify_rx.fd, zmq.POLLIN)
        by_sock: dict = {}
        while self.running:
            try:
                self._nic_pass(poller, by_sock)
            except Exception:
                log.exception("nic thread")
                time.sleep(0.01)

    def _nic_pass(self, poller, by_sock):
        ports = list(self.ports.values())     # a snapshot: the user thread adds ports
        timeout = -1             # idle: sleep until a wire or the user thread (notify) wakes us
        nics = [p.dev for p in ports if p.dev is not None and p.dev.kind == "wirenic"]
        if nics:
            due = [t for t in (wirenic_hw_next_event(d) for d in nics) if t is not None]
            if due:
                timeout = max(0, int((min(due) - time.monotonic()) * 1000) + 1)
                self._irq(0, self._wirenic_irqs, nics)   # coalesced interrupts now due
        pending = [p.dev for p in ports if p.dev is not None and p.dev.kind == "veth"
                   and p.dev.priv.rx_ring]
        if pending:
            timeout = 0          # frames wait in a ring for backlog room: come back at once
        bell = self.nic_notify_rx.fd
        for sock, _ in poller.poll(timeout):
            if sock.__class__ is int and sock == bell:
                self.nic_notify_rx.recv()
                zap = self.zap
                if zap is not None and zap.sock not in by_sock:
                    by_sock[zap.sock] = zap
                    poller.register(zap.sock, zmq.POLLIN)
                for port in list(self.ports.values()):
                    for s in (port.rx, port.rx_mon, port.tx_mon):
                        if s is not None and s not in by_sock:
                            by_sock[s] = port
                            poller.register(s, zmq.POLLIN)
                for s in [s for s, p in by_sock.items() if getattr(p, "dev", 0) is None]:
                    poller.unregister(s)
                    del by_sock[s]
                continue
            port = by_sock.get(sock)
            if port is None:
                continue
            if isinstance(port, ZapHandler):
                port.handle()
            elif sock is port.rx:
                self._nic_rx(port)
            else:
                self._wire_events(port, sock)
        for dev in pending:
            if dev.priv.rx_ring:
                self._irq(dev.rx_cpu, self._veth_irq, dev)

    def _irq(self, cpu, fn, *args):
        """A hardware interrupt into the kernel, after any waiting user entry."""
        if self.urgent:
            self._yield_to_user()
        try:
            self.enter(cpu, fn, *args)
        except KernelOops:
            pass                         # logged and counted; the NIC carries on
        if self.ready_parks:
            self.complete_parks()
        if self.net.cpus[cpu].pending:
            self.cpu_events[cpu].set()   # budget used up: ksoftirqd carries on

    def _wirenic_irqs(self, nics):
        now = self.net.clock()
        for d in nics:
            wirenic_hw_irq(d, now)

    def _nic_rx(self, port):
        """Drain up to NIC_BATCH messages from one wire into the device's RX ring.

        The wire is always drained: what the ring cannot take is dropped and
        counted there (rx_missed_errors), so a flood never queues in front of
        the kernel.
        """
        dev = port.dev
        if dev is None:
            return
        msgs: list = []
        rx = port.rx
        try:
            # copy=False: the frames are read where ZeroMQ received them (the
            # skb is built from that buffer: one copy, not two). ZMQ_EVENTS
            # says whether another message waits (1.4 us in pyzmq): a recv
            # that finds none raises zmq.Again (3.7 us, on every wake-up).
            while len(msgs) < NIC_BATCH:
                msgs.append(rx.recv(zmq.NOBLOCK, copy=False).buffer)
                if not rx.getsockopt(_EVENTS) & _POLLIN:
                    break
        except zmq.Again:
            pass
        if not msgs:
            return
        if dev.kind == "wirenic":
            self._nic_rx_wirenic(port, dev, msgs)
            return
        priv = dev.priv
        for msg in msgs:
            items = list(self._wire_frames(port, (msg,)))
            if priv.rx_ring and len(priv.rx_ring) + len(items) > priv.rx_ring_size:
                # This message's burst does not fit behind what the ring holds:
                # the kernel drains the ring first. Messages are separate
                # moments on the wire, and between them a CPU runs: taking up
                # to NIC_BATCH of them (thousands of frames, offloads off) into
                # the ring at once, as one burst, dropped what no real receiver
                # would have (a TCP sender's window of segments: retransmissions).
                # What still does not fit is a burst too big for the ring, or a
                # CPU that lags (the backlog is full): dropped and counted.
                self._irq(dev.rx_cpu, self._veth_irq, dev, port)
            for item in items:
                veth_hw_rx(dev, item)
        self._irq(dev.rx_cpu, self._veth_irq, dev, port)

    @staticmethod
    def _wire_frames(port, msgs):
        """The frames of wire messages that reach the device: a cut cable loses
        them all, a malformed message is counted and its rest lost, a partition's
        filter drops what crosses it."""
        for msg in msgs:
            port.rx_msgs += 1
            if not port.carrier:
                continue             # cable cut: frames vanish
            for item in parse_batch(msg):
                if item is None:
                    port.rx_malformed += 1
                    break
                if port.rx_filter is not None and port.rx_filter(item[4]):
                    port.rx_filtered += 1            # a partition: the cable drops it
                    continue
                yield item

    def _veth_irq(self, dev, port=None):
        """veth's receive interrupt: the ring into the backlog, then irq_exit's softirqs.

        Emulation note: this thread is the interrupt on dev.rx_cpu. Like
        irq_exit -> invoke_softirq, it runs the softirqs it raised itself, on
        that CPU, before returning; what is left when the budget runs out goes
        to the CPU thread (ksoftirqd).
        """
        net = self.net
        cpu = dev.rx_cpu
        if port is not None:
            self._fold_malformed(dev, port)
        high = max(net.sysctl["net.core.netdev_max_backlog"] - 1, 1)
        prev = net.softirq_cpu
        net.softirq_cpu = cpu            # in this CPU's interrupt: no IPI to ourselves
        try:
            for _ in range(4):           # bounded: the user thread may be waiting
                if not veth_rx_irq(dev, high):
                    break
                do_softirq(net, cpu)
                net.softirq_cpu = cpu
                if self.urgent:
                    break                # need_resched: a system call waits for the kernel
        finally:
            net.softirq_cpu = prev
        do_softirq(net, cpu)

    def _fold_malformed(self, dev, port):
        """The wire's count of malformed messages, into the device's counters."""
        new = port.rx_malformed - port.rx_malformed_seen
        if new:
            port.rx_malformed_seen = port.rx_malformed
            dev.stats.rx_errors += new
            dev.stats.rx_frame_errors += new
            self.net.drop_reasons["WIRE_MALFORMED"] += new

    def _nic_rx_wirenic(self, port, dev, msgs):
        """The NIC's receive side: RSS into RX rings, then the queues' interrupts.

        With flow control (the default) a full ring pauses the wire: the NIC
        thread waits for the driver's XON before offering the rest.
        """
        items = list(self._wire_frames(port, msgs))
        if port.rx_malformed != port.rx_malformed_seen:
            self._irq(0, self._fold_malformed, dev, port)
        state = [0]
        n = len(items)
        while state[0] < n and self.running:
            self.nic_xon.clear()
            self._irq(0, self._wirenic_rx_work, dev, items, state)
            if state[0] < n:
                self.nic_xon.wait(0.05)

    def _wirenic_rx_work(self, dev, items, state):
        now = self.net.clock()
        i, n = state[0], len(items)
        while i < n:
            flags, gso_type, gso_size, trace_id, frame = items[i]
            if wirenic_hw_rx(dev, frame, flags, gso_type, gso_size, trace_id, now) == -2:
                break        # XOFF: the ring is full
            i += 1
        state[0] = i
        wirenic_hw_irq(dev, now)
