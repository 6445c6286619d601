"""A lab's run directory, and where its nodes' sockets live.

A lab keeps its state (lab.json), logs and the fork server's log in its run
directory, under the run base (`$EMU_RUN_BASE`, default /tmp/emu-$UID).
Its nodes' files (control and syscall sockets, send-epoch pages, one wire
inbox per link end: five or more a node, made while the lab starts) go to a
directory of their own on tmpfs when the run base is on a disk file system:
creating a file there is an inode allocation, and on ext4 without a journal
(this project's CI VM's /tmp) each one scans past every inode freed in the
last few seconds (ext4's recently_deleted), which the previous lab's
teardown and other tests' files fill. Measured on a 100-host star: the
nodes' boots and configuration took 14 ms of CPU a node with their sockets
on /tmp, 7 on /dev/shm, in the same session. A unix socket on tmpfs holds
no data, so this costs no memory.

The socket directory is made like the run directory (mkdtemp: ours, mode
0700, in a sticky directory) and named by a symlink in the run directory
(SOCK_LINK), so whatever removes a run directory removes it too
(remove_run_dir), after checking it is still ours.
"""
import os
import shutil
import stat
import tempfile

SOCK_LINK = "sockets"        # in the run directory: -> the socket directory on tmpfs
SOCK_PREFIX = "emu-sock-"


def _mount_fstype(path):
    """The file system type of the mount holding path (/proc/self/mounts), or None."""
    try:
        path = os.path.realpath(path)
        best, fstype = "", None
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, fstype = mnt, parts[2]
        return fstype
    except OSError:
        return None


def tmpfs_root():
    """A tmpfs directory to make socket directories in: $XDG_RUNTIME_DIR (the
    user's own, for sockets), else /dev/shm; None if neither is usable.
    EMU_SOCK_BASE names another (empty: none, the run directory holds all)."""
    env = os.environ.get("EMU_SOCK_BASE")
    if env is not None:
        return env or None
    for d in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if d and os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK) and \
                _mount_fstype(d) == "tmpfs":
            return d
    return None


def make_sock_dir(run_dir):
    """The directory the lab's nodes put their sockets in: a new one on tmpfs,
    linked from the run directory, or the run directory itself (already on
    tmpfs, or no tmpfs to use)."""
    if _mount_fstype(run_dir) == "tmpfs":
        return run_dir
    root = tmpfs_root()
    if root is None:
        return run_dir
    try:
        d = tempfile.mkdtemp(prefix=SOCK_PREFIX + os.path.basename(run_dir)[:24] + "-", dir=root)
    except OSError:
        return run_dir
    try:
        os.symlink(d, os.path.join(run_dir, SOCK_LINK))
    except OSError:
        os.rmdir(d)
        return run_dir
    return d


def sock_dir_of(run_dir):
    """The socket directory a run directory links to, if it is still ours:
    a real directory (not a symlink), owned by us, mode 0700, named as we
    name them. None otherwise."""
    link = os.path.join(run_dir, SOCK_LINK)
    try:
        if not stat.S_ISLNK(os.lstat(link).st_mode):
            return None
        target = os.readlink(link)
        st = os.lstat(target)
    except OSError:
        return None
    if not os.path.isabs(target) or not os.path.basename(target).startswith(SOCK_PREFIX) or \
            not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return target


def remove_run_dir(run_dir):
    """Remove a run directory and the socket directory it links to."""
    sock = sock_dir_of(run_dir)
    if sock is not None:
        shutil.rmtree(sock, ignore_errors=True)
    shutil.rmtree(run_dir, ignore_errors=True)
