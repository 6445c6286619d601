"""The runtime side of a TAP link: a /dev/net/tun descriptor, opened in a
network namespace.

A network namespace belongs to a thread, so a short-lived thread enters the
namespace (setns), creates the TAP there, and hands back the descriptor;
the device is born inside the namespace and never touches the host's.
"""
import ctypes
import fcntl
import os
import struct
import threading

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000


def open_tap(name, netns=None):
    """Create TAP device name (in /run/netns/NETNS if given); returns its fd."""
    result = {}

    def work():
        try:
            if netns:
                libc = ctypes.CDLL(None, use_errno=True)
                nsfd = os.open("/run/netns/%s" % netns, os.O_RDONLY)
                try:
                    if libc.setns(nsfd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, "setns(%s): %s" % (netns, os.strerror(err)))
                finally:
                    os.close(nsfd)
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
            try:
                fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
            except OSError:
                os.close(fd)
                raise
            result["fd"] = fd
        except OSError as e:
            result["err"] = e

    t = threading.Thread(target=work, name="tap-open")
    t.start()
    t.join()
    if "err" in result:
        raise result["err"]
    return result["fd"]


class TapPort:
    """The port the tap driver sends through; the NIC thread reads fd."""

    def __init__(self, fd, name):
        self.fd = fd
        self.name = name
        self.dev = None
        self.carrier = True
        self.tx_dropped = 0
        self.tx_msgs = 0
        self.rx_msgs = 0
        self.rx_malformed = 0

    def send(self, buf, start, end, flags, gso_type, gso_size, trace_id):
        try:
            os.write(self.fd, memoryview(buf)[start:end])
            self.tx_msgs += 1
            return True
        except (BlockingIOError, OSError):
            self.tx_dropped += 1
            return False

    def flush(self):
        pass

    def read_frames(self, limit=256):
        frames = []
        for _ in range(limit):
            try:
                frames.append(os.read(self.fd, 65536 + 64))
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
        self.rx_msgs += len(frames)
        return frames

    def close(self):
        try:
            os.close(self.fd)
        except OSError:
            pass
