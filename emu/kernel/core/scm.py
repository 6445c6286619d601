"""Ancillary data (control messages) of sendmsg/recvmsg.

Linux: net/core/scm.c (put_cmsg), include/linux/socket.h (struct msghdr,
CMSG_LEN, CMSG_SPACE)

A control message crosses the system call boundary as [level, type, data]
(data the bytes after struct cmsghdr); MsgHdr.msg_controllen is the room
the caller gave for them, counted as a real msghdr would count it on a
64-bit machine, so truncation (MSG_CTRUNC) happens where Linux's would.
"""
import errno

from .dev import KernelError

MSG_CTRUNC = 0x8

CMSGHDR_LEN = 16              # sizeof(struct cmsghdr) on LP64: size_t len, int level, int type


def CMSG_ALIGN(n):
    return (n + 7) & ~7


def CMSG_LEN(n):
    return CMSGHDR_LEN + n


def CMSG_SPACE(n):
    return CMSGHDR_LEN + CMSG_ALIGN(n)


class MsgHdr:
    """struct msghdr's control part: what recvmsg hands back besides the data."""

    __slots__ = ("msg_control", "msg_controllen", "msg_flags")

    def __init__(self, controllen=0):
        self.msg_control = []          # [[level, type, data], ...]
        self.msg_controllen = controllen
        self.msg_flags = 0


def put_cmsg(msg, level, type, data):
    """Append one control message if it fits; else flag MSG_CTRUNC (and keep
    what fits of it, as Linux copies a truncated one)."""
    if msg.msg_controllen < CMSGHDR_LEN:
        msg.msg_flags |= MSG_CTRUNC
        return
    cmlen = CMSG_LEN(len(data))
    if msg.msg_controllen < cmlen:
        msg.msg_flags |= MSG_CTRUNC
        cmlen = msg.msg_controllen
    msg.msg_control.append([level, type, bytes(data[:cmlen - CMSGHDR_LEN])])
    msg.msg_controllen -= min(CMSG_SPACE(len(data)), msg.msg_controllen)


# include/uapi/asm-generic/socket.h
SOL_SOCKET = 1
SCM_RIGHTS = 1
SCM_CREDENTIALS = 2
SO_MARK = 36
SO_TIMESTAMPING_OLD = 37
SCM_TXTIME = 61


class SockcmCookie:
    """struct sockcm_cookie (+ the ipcm_cookie fields IP adds): per-call send options."""

    __slots__ = ("mark", "ttl", "tos", "oif", "addr")

    def __init__(self):
        self.mark = None
        self.ttl = None
        self.tos = None
        self.oif = None
        self.addr = None


def __sock_cmsg_send(cmsg_type, data, sockc):
    """One SOL_SOCKET control message of a send (Linux: net/core/sock.c).

    Emulation note: SO_TIMESTAMPING and SCM_TXTIME are accepted and have no
    effect (emu has no transmit timestamps or launch times).
    """
    if cmsg_type == SO_MARK:
        if len(data) != 4:
            raise KernelError(errno.EINVAL)
        sockc.mark = int.from_bytes(data, "little")
    elif cmsg_type in (SO_TIMESTAMPING_OLD, SCM_TXTIME):
        if len(data) not in (4, 8):
            raise KernelError(errno.EINVAL)
    elif cmsg_type in (SCM_RIGHTS, SCM_CREDENTIALS):
        pass                  # semantically SOL_UNIX: ignored on other sockets
    else:
        raise KernelError(errno.EINVAL)


def sock_cmsg_send(control, sockc):
    """The SOL_SOCKET messages of a send; the other levels are not ours."""
    for level, cmsg_type, data in control:
        if level == SOL_SOCKET:
            __sock_cmsg_send(cmsg_type, data, sockc)
