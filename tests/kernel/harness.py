"""Inline kernels joined by in-memory wires, driven by one fake clock.

Protocol tests build small labs here: no threads, no sockets, no sleeping.
Wire frames, softirqs and timers enter each kernel through kernel_entry, the
same guarded entry the node runtime uses (an oops fails the test).
"""
import errno
import struct
from collections import deque

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError
from emu.kernel.core.entry import kernel_entry
from emu.kernel.core.napi import do_softirq
from emu.kernel.core.net import FakeClock
from emu.kernel.core.skbuff import skb_data_release
from emu.kernel.drivers.veth import veth_forward_skb
from emu.kernel.hdr.checksum import ip_compute_csum
from emu.kernel.init import start_kernel
from emu.kernel.socket import (
    SOCK_NONBLOCK, Task, sys_close, sys_recvfrom, sys_sendto, sys_socket, syscall_lookup,
)

AF_INET, SOCK_RAW, IPPROTO_ICMP = 2, 3, 1
PING_DATA = bytes(range(56))


class MemPort:
    """One end of an in-memory wire: send() lands in the peer's inbox."""

    def __init__(self):
        self.peer = None
        self.inbox = deque()
        self.dev = None
        self.sent = []          # every frame sent, for independent parsing
        self.sent_at = []       # the (fake) clock when each was sent
        self.clock = None
        self.up = True

    def send(self, buf, start, end, flags, gso_type, gso_size, trace_id, held=None):
        frame = bytes(buf[start:end])
        if held is not None:
            skb_data_release(held)       # copied at once: the clone's data is free again
        self.sent.append(frame)
        if self.clock is not None:
            self.sent_at.append(self.clock.now)
        if self.up and self.peer is not None:
            self.peer.inbox.append((frame, flags, gso_type, gso_size, trace_id))
        return True


class InlineLab:
    """Several kernels, their wires, and a loop that runs them to quiescence."""

    def __init__(self, ncpus=1, seed=0):
        self.seed = seed
        self.clock = FakeClock()
        self.nets = {}
        self.ports = []
        self.ncpus = ncpus

    def node(self, name, ncpus=None):
        net = start_kernel(name, ncpus or self.ncpus, self.clock, self.seed)
        self.nets[name] = net
        return net

    def link(self, a, a_if, b, b_if):
        """A veth pair across two kernels (a wire between their ends)."""
        pa, pb = MemPort(), MemPort()
        pa.peer, pb.peer = pb, pa
        pa.clock = pb.clock = self.clock
        for name, ifname, port in ((a, a_if, pa), (b, b_if, pb)):
            net = self.nets[name]
            rtnetlink.rtnl_newlink(net, ifname, "veth", port=port)
            port.dev = net.dev_by_name[ifname]
            self.ports.append(port)
        return pa, pb

    def task(self, name):
        return Task(self.nets[name], 1, "test")

    def syscall(self, task, call, *args):
        """A system call as the runtime makes it: argument policy, then the kernel entry."""
        fn = syscall_lookup(call, args)
        return kernel_entry(task.net, 0, fn, task, *args)

    def port(self, node, ifname):
        """The MemPort behind node's device ifname (its .sent lists every frame)."""
        for port in self.ports:
            if port.dev.net.name == node and port.dev.name == ifname:
                return port
        raise KeyError((node, ifname))

    def dev(self, node, ifname):
        return self.nets[node].dev_by_name[ifname]

    def inject(self, node, ifname, frame, flags=0):
        """A frame arrives on node's ifname from its wire (untrusted input)."""
        dev = self.dev(node, ifname)
        kernel_entry(dev.net, dev.rx_cpu, veth_forward_skb, dev, frame, flags)
        self.run()

    def step(self):
        """Deliver wire frames and run pending softirqs once; True if anything ran."""
        busy = False
        for port in self.ports:
            while port.inbox:
                frame, flags, gso_type, gso_size, tid = port.inbox.popleft()
                dev = port.dev
                kernel_entry(dev.net, dev.rx_cpu, veth_forward_skb, dev, frame, flags,
                             gso_type, gso_size, tid)
                busy = True
        for net in self.nets.values():
            for sd in net.cpus:
                if sd.pending:
                    kernel_entry(net, sd.cpu, do_softirq, net, sd.cpu)
                    busy = True
        return busy

    def run(self, max_steps=10000):
        for _ in range(max_steps):
            if not self.step():
                return
        raise AssertionError("lab did not settle")

    def advance(self, dt, tick=0.01):
        """Move the clock forward, firing timers and settling after each tick."""
        end = self.clock.now + dt
        while self.clock.now < end:
            self.clock.now = min(end, self.clock.now + tick)
            for net in self.nets.values():
                kernel_entry(net, 0, net.run_timers)
            self.run()


def bridge_lab(ncpus=1, seed=0):
    """h1 -- br0 -- h2: the seed note's two containers on a bridge."""
    lab = InlineLab(ncpus, seed)
    for n in ("h1", "h2", "br0"):
        lab.node(n)
    lab.link("h1", "eth0", "br0", "p1")
    lab.link("h2", "eth0", "br0", "p2")
    br = lab.nets["br0"]
    rtnetlink.rtnl_newlink(br, "br0", "bridge")
    for p in ("p1", "p2"):
        rtnetlink.rtnl_setlink(br, p, master="br0", up=True)
    rtnetlink.rtnl_setlink(br, "br0", up=True)
    for h, ip in (("h1", "10.0.0.1/24"), ("h2", "10.0.0.2/24")):
        rtnetlink.inet_rtm_newaddr(lab.nets[h], "eth0", ip)
        rtnetlink.rtnl_setlink(lab.nets[h], "eth0", up=True)
    lab.run()
    return lab


def icmp_echo_bytes(ident=0x4242, seq=1, data=PING_DATA, icmp_type=8):
    """An ICMP echo request (or, with icmp_type=0, reply) with a valid checksum."""
    pkt = bytearray(struct.pack("!BBHHH", icmp_type, 0, 0, ident, seq) + data)
    struct.pack_into("!H", pkt, 2, ip_compute_csum(pkt))
    return bytes(pkt)


def ping(lab, src, dst, seq=1, ident=0x4242, data=PING_DATA):
    """One echo from a raw ICMP socket on src to dst; returns the matching replies.

    Each reply is the IP packet as the raw socket reads it (header included).
    """
    task = lab.task(src)
    fd = sys_socket(task, AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_ICMP)
    try:
        sys_sendto(task, fd, icmp_echo_bytes(ident, seq, data), 0, (dst, 0))
        lab.run()
        replies = []
        while True:
            try:
                pkt, _, _ = sys_recvfrom(task, fd, 65535)
            except KernelError as e:
                if e.errno == errno.EAGAIN:
                    return replies
                raise
            icmp = pkt[(pkt[0] & 15) * 4:]
            if icmp[0] == 0 and icmp[4:8] == struct.pack("!HH", ident, seq):
                replies.append(pkt)
    finally:
        sys_close(task, fd)


def router_line_lab(mtu_r2_r3=1280):
    """h1 -- r1 -- r2 -- r3 -- h2, as topologies/router-line.yaml (MTU 1280 on r2-r3)."""
    lab = InlineLab(1)
    for n in ("h1", "r1", "r2", "r3", "h2"):
        lab.node(n)
    for r in ("r1", "r2", "r3"):
        lab.nets[r].sysctl["net.ipv4.ip_forward"] = 1
    lab.link("h1", "eth0", "r1", "eth0")
    lab.link("r1", "eth1", "r2", "eth0")
    lab.link("r2", "eth1", "r3", "eth0")
    lab.link("r3", "eth1", "h2", "eth0")
    addrs = {("h1", "eth0"): "10.0.1.10/24", ("r1", "eth0"): "10.0.1.1/24",
             ("r1", "eth1"): "10.0.12.1/24", ("r2", "eth0"): "10.0.12.2/24",
             ("r2", "eth1"): "10.0.23.2/24", ("r3", "eth0"): "10.0.23.3/24",
             ("r3", "eth1"): "10.0.3.1/24", ("h2", "eth0"): "10.0.3.10/24"}
    for (n, i), a in addrs.items():
        net = lab.nets[n]
        if (n, i) in (("r2", "eth1"), ("r3", "eth0")):
            rtnetlink.rtnl_setlink(net, i, mtu=mtu_r2_r3)
        rtnetlink.inet_rtm_newaddr(net, i, a)
        rtnetlink.rtnl_setlink(net, i, up=True)
    routes = [("h1", "default", "10.0.1.1"), ("r1", "10.0.3.0/24", "10.0.12.2"),
              ("r1", "10.0.23.0/24", "10.0.12.2"), ("r2", "10.0.1.0/24", "10.0.12.1"),
              ("r2", "10.0.3.0/24", "10.0.23.3"), ("r3", "default", "10.0.23.2"),
              ("h2", "default", "10.0.3.1")]
    for n, dst, via in routes:
        rtnetlink.inet_rtm_newroute(lab.nets[n], dst, via=via)
    lab.run()
    return lab
