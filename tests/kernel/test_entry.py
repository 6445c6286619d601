"""The one way into the kernel, and the policies at its boundary."""
import errno
import os
import random
import socket as pysocket

import pytest

from emu.kernel.core import rtnetlink
from emu.kernel.core.dev import KernelError
from emu.kernel.core.entry import KernelOops, SyscallBlock, kernel_entry
from emu.kernel.socket import SYSCALL_POLICY
from tests.kernel.harness import bridge_lab, ping

AF_INET, SOCK_STREAM, SOCK_DGRAM = 2, 1, 2


def test_an_unexpected_exception_is_an_oops_and_the_kernel_carries_on():
    lab = bridge_lab()
    net = lab.nets["h1"]
    exits = []
    net.kernel_exit = lambda: exits.append(net.cur_cpu)
    net.cur_cpu = 0

    def bug():
        return {}["missing"]
    with pytest.raises(KernelOops) as e:
        kernel_entry(net, 1, bug)
    assert "KeyError" in str(e.value) and "Traceback" in e.value.text
    assert net.oops == 1 and "KeyError" in net.oops_log[-1]
    assert exits == [1]                  # kernel_exit ran on the entry's CPU, even so
    assert net.cur_cpu == 0              # and the caller's CPU is back
    # An errno and a sleep are answers, not oopses.
    with pytest.raises(KernelError):
        kernel_entry(net, 0, lambda: (_ for _ in ()).throw(KernelError(errno.EINVAL)))
    with pytest.raises(SyscallBlock):
        kernel_entry(net, 0, lambda: (_ for _ in ()).throw(SyscallBlock([], None)))
    assert net.oops == 1
    net.kernel_exit = lambda: None
    assert len(ping(lab, "h1", "10.0.0.2")) == 1


@pytest.mark.parametrize("args, err", [
    ((0, 2, {"a": 1}), errno.EFAULT),                       # IP_TTL with a map
    ((0, 2, 10 ** 12), errno.EINVAL),                       # past a C int
    ((0, 2, -5), errno.EINVAL),                             # IP_TTL range
    ((1, 8, b"\x01"), errno.EINVAL),                        # SO_RCVBUF shorter than an int
    ((6, 1, 1), errno.ENOPROTOOPT),                         # TCP_NODELAY on UDP
    ((0, 9999, 1), errno.ENOPROTOOPT),
    ((0, 2, 1.5), errno.EINVAL),
])
def test_bad_setsockopt_gets_linux_errno_and_changes_nothing(args, err):
    lab = bridge_lab()
    t = lab.task("h1")
    fd = lab.syscall(t, "socket", AF_INET, SOCK_DGRAM, 0)
    with pytest.raises(KernelError) as e:
        lab.syscall(t, "setsockopt", fd, *args)
    assert e.value.errno == err
    assert lab.syscall(t, "getsockopt", fd, 0, 2) == 64     # TTL untouched
    assert lab.nets["h1"].oops == 0


@pytest.mark.parametrize("call, args, err", [
    ("nosuch", [], errno.ENOSYS),
    ("socket", [2, 2], errno.EINVAL),
    ("socket", [2, 2, 0, 0, 0], errno.EINVAL),
    ("socket", ["2", 2, 0], errno.EFAULT),
    ("recvfrom", [3, -1], errno.EINVAL),
    ("poll", [[[3]], 0], errno.EFAULT),
    ("poll", [[], float("nan")], errno.EINVAL),
    ("bind", [3, {"host": 1}], errno.EINVAL),
    ("sendto", [3, "text", 0, None], errno.EFAULT),
    ("close", [1 << 40], errno.EINVAL),
])
def test_syscall_policy(call, args, err):
    lab = bridge_lab()
    t = lab.task("h1")
    lab.syscall(t, "socket", AF_INET, SOCK_DGRAM, 0)
    with pytest.raises(KernelError) as e:
        lab.syscall(t, call, *args)
    assert e.value.errno == err


def test_udp_sendto_past_64k_is_emsgsize():
    lab = bridge_lab()
    t = lab.task("h1")
    fd = lab.syscall(t, "socket", AF_INET, SOCK_DGRAM, 0)
    with pytest.raises(KernelError) as e:
        lab.syscall(t, "sendto", fd, b"x" * 70000, 0, ("10.0.0.2", 9))
    assert e.value.errno == errno.EMSGSIZE


def _rand_value(rng):
    return rng.choice([
        0, 1, -1, 2, 3, 4, 65535, 1 << 31, -(1 << 31), 10 ** 12, rng.randrange(-5, 300),
        b"", b"\x01", b"\x00" * 4, b"\xff" * 16, rng.randbytes(rng.randrange(0, 40)),
        "", "10.0.0.2", "0.0.0.0", "<broadcast>", "x" * 300, None, True, 1.5, float("nan"),
        [], ["10.0.0.2", 7], ["10.0.0.2", 70000], [1, 2], [[3, 1]], [[3, 1, 2]],
        {"a": 1}, ("10.0.0.1", 0)])


def _typed_args(rng, call, fds):
    """Arguments of the right shape with random values: these reach the kernel."""
    fd = rng.choice(fds) if fds and rng.random() < 0.9 else rng.choice([0, 3, 99])
    addr = [rng.choice(["10.0.0.2", "10.0.0.1", "127.0.0.1", "0.0.0.0", "10.0.0.255",
                        "255.255.255.255", "224.0.0.1", "1.2.3.4", "bogus"]),
            rng.choice([0, 7, 9, 80, 5000, 65535])]
    flags = rng.choice([0, 0x40, 0x2, 0x100, 0x42, 0x1, -1])
    small = rng.choice([0, 1, -1, 2, 5, 64, 255, 256, 1 << 20, -(1 << 31)])
    if call == "socket":
        return [rng.choice([2, 17]), rng.choice([1, 2, 3, 1 | 0o4000, 2 | 0o4000, 3 | 0o4000]),
                rng.choice([0, 1, 6, 17, 255, 3])]
    if call in ("bind", "connect"):
        return [fd, addr]
    if call == "listen":
        return [fd, small]
    if call == "accept":
        return [fd, rng.choice([0, 0o4000])]
    if call == "sendto":
        return [fd, rng.randbytes(rng.choice([0, 1, 20, 1472, 1473, 9000, 65507, 65508])),
                flags, rng.choice([addr, None])]
    if call == "recvfrom":
        return [fd, rng.choice([0, 1, 100, 65535]), flags | 0x40]
    if call == "shutdown":
        return [fd, rng.choice([0, 1, 2, 3, -1])]
    if call == "setsockopt":
        return [fd, rng.choice([0, 1, 6, 17, 263, 255]), rng.randrange(0, 70),
                rng.choice([small, rng.randbytes(rng.randrange(0, 20)), 0.5, [1, 5]])]
    if call == "getsockopt":
        return [fd, rng.choice([0, 1, 6, 17, 263]), rng.randrange(0, 70), rng.choice([0, 4, 104])]
    if call == "poll":
        return [[[rng.choice(fds or [3]), rng.randrange(0, 64)] for _ in range(3)], 0]
    if call == "setblocking":
        return [fd, rng.choice([0, 1])]
    return [fd]


def test_random_system_calls_never_oops():
    """A bounded, seeded fuzz of the syscall boundary: every call ends in a
    result, an errno or a sleep; the kernel never oopses and still answers."""
    rng = random.Random(int(os.environ.get("EMU_FUZZ_SEED", "1234")))
    lab = bridge_lab()
    t = lab.task("h1")
    calls = sorted(SYSCALL_POLICY)
    outcomes = {"ok": 0, "errno": 0}
    for i in range(4000):
        call = rng.choice(calls + ["bogus"])
        if rng.random() < 0.75:
            args = _typed_args(rng, call, sorted(t.fds))
        else:
            args = [_rand_value(rng) for _ in range(rng.randrange(0, 5))]
        try:
            lab.syscall(t, call, *args)
            outcomes["ok"] += 1
        except (KernelError, SyscallBlock):
            outcomes["errno"] += 1
        if len(t.fds) > 40:
            for fd in list(t.fds)[:20]:
                lab.syscall(t, "close", fd)
        if i % 50 == 0:
            lab.advance(0.2)
        lab.run()
    assert lab.nets["h1"].oops == 0, lab.nets["h1"].oops_log
    assert outcomes["ok"] > 500          # the fuzz reached the kernel, not just the policy
    assert len(ping(lab, "h1", "10.0.0.2")) == 1


def test_control_policy_names_the_field_and_changes_nothing():
    lab = bridge_lab()
    net = lab.nets["h1"]
    # A runtime-only parameter is not reachable: link_add with a wire port.
    with pytest.raises(KernelError) as e:
        rtnetlink.rtnl_rcv(net, "link_add", {"name": "x0", "kind": "bridge", "port": 1})
    assert e.value.errno == errno.EINVAL and "'port'" in e.value.strerror
    with pytest.raises(KernelError) as e:
        rtnetlink.rtnl_rcv(net, "link_add", {"name": "v0", "kind": "veth"})
    assert "'kind'" in e.value.strerror
    with pytest.raises(KernelError) as e:
        rtnetlink.rtnl_rcv(net, "link_set", {"name": "eth0", "mtu": "big"})
    assert "field 'mtu'" in e.value.strerror
    with pytest.raises(KernelError) as e:
        rtnetlink.rtnl_rcv(net, "addr_add", {"dev": "eth0"})
    assert "'address' is required" in e.value.strerror
    with pytest.raises(KernelError) as e:
        rtnetlink.rtnl_rcv(net, "trace_start", {"node_id": 7})
    assert "'node_id'" in e.value.strerror
    assert "x0" not in net.dev_by_name and "v0" not in net.dev_by_name
    assert net.dev_by_name["eth0"].mtu == 1500
    assert rtnetlink.rtnl_rcv(net, "link_show", {"name": "eth0"})[0]["name"] == "eth0"


def test_random_control_requests_never_oops():
    rng = random.Random(int(os.environ.get("EMU_FUZZ_SEED", "99")))
    lab = bridge_lab()
    net = lab.nets["h1"]
    ops = sorted(rtnetlink.RTNL_OPS)
    fields = ["name", "dev", "kind", "mtu", "up", "address", "dst", "via", "metric", "value",
              "chain", "index", "rx", "tx", "queue", "rps_cpus", "parent", "handle", "limit",
              "proto", "host", "port", "ring", "clear", "stats", "table", "br", "target",
              "policy", "position", "equal", "indir", "key", "info", "master", "rx_cpu",
              "gso", "tso", "rx_usecs", "irq_cpu"]
    for _ in range(3000):
        op = rng.choice(ops)
        args = {rng.choice(fields): rng.choice([
            "eth0", "lo", "br0", "10.0.0.9/24", "default", "10.0.0.254", "INPUT", "DROP",
            "udp", "on", "1:", "root", "pfifo", 0, 1, 3, 70000, -1, True, None, [1, 2],
            "net.ipv4.ip_forward", "net.core.netdev_max_backlog", "zz", 1.5, {"x": 1}])
            for _ in range(rng.randrange(0, 4))}
        try:
            kernel_entry(net, 0, rtnetlink.rtnl_rcv, net, op, args)
        except KernelError:
            pass
    assert net.oops == 0, net.oops_log
    assert "snmp" in rtnetlink.rtnl_rcv(net, "counters", {})     # still answering
    lab.run()


def test_python_socket_constants_agree():
    # The policy is positional: SOL_SOCKET/SO_RCVBUF as Python numbers them.
    assert pysocket.SOL_SOCKET == 1 and pysocket.SO_RCVBUF == 8
