"""Booting one emulated kernel.

Linux: init/main.c (start_kernel), net/core/dev.c (net_dev_init),
net/ipv4/af_inet.c (inet_init), drivers/net/loopback.c
"""
from .core.dev import dev_open, net_dev_init, register_netdevice
from .core.net import Net
from .drivers.loopback import loopback_setup
from .ipv4.af_inet import inet_init
from .ipv4.devinet import inet_addr_add
from .ipv4.ip_offload import ipv4_offload_init
from .packet.af_packet import packet_init


def start_kernel(name="node", ncpus=1, clock=None, seed=0):
    """A booted Net: protocols registered, lo up with 127.0.0.1/8."""
    net = Net(name, ncpus, clock, seed)
    net_dev_init(net)
    inet_init(net)
    ipv4_offload_init(net)
    packet_init(net)
    lo = register_netdevice(net, loopback_setup())
    dev_open(lo)
    inet_addr_add(lo, 0x7F000001, 8)
    return net
