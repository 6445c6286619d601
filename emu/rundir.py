"""A lab's run directory, where its nodes' files live, and the labs found
under a run base (list, match by name, stop one started elsewhere).

A lab keeps its state (lab.json) and the fork server's log in its run
directory, under the run base (`$EMU_RUN_BASE`, default /tmp/emu-$UID).
Its nodes' files (control and syscall sockets, send-epoch pages, logs, one
wire inbox per link end: five or more a node, made while the lab starts)
go to a directory of their own on tmpfs (the socket directory, sock_dir)
when the run base is on a disk file system: creating a file there is an
inode allocation, and on ext4 without a journal (this project's CI VM's
/tmp) each one scans past every inode freed in the last few seconds
(ext4's recently_deleted), which the previous lab's teardown and anyone
else's files fill. Measured on a 100-host star, alternated in one session:
the nodes' boots and configuration took 13 to 15 ms of CPU a node with
their sockets on /tmp, 6.6 to 7.9 on /dev/shm; with their logs there too,
5.8 to 6.1 against 6.3 to 6.6 and the start 0.55-0.59 s against 0.60-0.63.
A unix socket holds no data; a node's log is a few lines unless it fails.

The socket directory is made like the run directory (mkdtemp: ours, mode
0700, in a sticky directory) and named by a symlink in the run directory
(SOCK_LINK), so whatever removes a run directory removes it too
(remove_run_dir), after checking it is still ours.
"""
import json
import os
import shutil
import signal
import stat
import tempfile
import time

import psutil

from .labd import run_base

STATE_FILE = "lab.json"
SOCK_LINK = "nodes"          # in the run directory: -> the nodes' directory on tmpfs
SOCK_PREFIX = "emu-nodes-"
BACK_LINK = "run"            # in the socket directory: -> its run directory


def _kill_recorded(rec):
    """SIGKILL the process a state record names, if it is still that process."""
    if isinstance(rec, dict) and _same_process(rec.get("pid"), rec.get("create_time"),
                                               rec.get("cmdline")):
        try:
            os.kill(rec["pid"], signal.SIGKILL)
        except OSError:
            pass
        return True
    return False


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
    sweep_sock_dirs(root)
    try:
        d = tempfile.mkdtemp(prefix=SOCK_PREFIX + os.path.basename(run_dir)[:24] + "-", dir=root)
    except OSError:
        return run_dir
    try:
        os.symlink(os.path.abspath(run_dir), os.path.join(d, BACK_LINK))
        os.symlink(d, os.path.join(run_dir, SOCK_LINK))
    except OSError:
        shutil.rmtree(d, ignore_errors=True)
        return run_dir
    return d


def sweep_sock_dirs(root):
    """Remove the socket directories in root whose run directory is gone (a
    run base removed by hand, or by a benchmark after SIGKILL of its
    orchestrator, leaves them behind): only ours, mode 0700, named as we
    name them, whose back link names a run directory that no longer exists."""
    try:
        names = os.listdir(root)
    except OSError:
        return
    me = os.getuid()
    for name in names:
        if not name.startswith(SOCK_PREFIX):
            continue
        d = os.path.join(root, name)
        try:
            st = os.lstat(d)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != me or st.st_mode & 0o077:
                continue
            run = os.readlink(os.path.join(d, BACK_LINK))
        except OSError:
            continue                 # no back link (yet): not ours to judge
        if os.path.isabs(run) and not os.path.lexists(run):
            shutil.rmtree(d, ignore_errors=True)


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


class LabError(RuntimeError):
    """The lab could not start; the message names the node and what it said."""


def check_run_base(base, create=False):
    """The run base must be a real directory of ours with mode 0700, or emu refuses it.

    Anyone who could write there could plant a lab.json naming processes for
    `emu down` to kill, or sockets for our nodes to talk to.
    """
    if create:
        try:
            os.makedirs(base, mode=0o700, exist_ok=True)
        except OSError as e:
            raise LabError("run base %s: %s" % (base, e.strerror or e)) from None
    try:
        st = os.lstat(base)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise LabError("run base %s: %s" % (base, e.strerror or e)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise LabError("run base %s is not a directory (a symlink?): emu refuses to use it" % base)
    if st.st_uid != os.getuid():
        raise LabError("run base %s is owned by uid %d, not you (uid %d): emu refuses to use it"
                       % (base, st.st_uid, os.getuid()))
    if st.st_mode & 0o077:
        raise LabError("run base %s has mode %04o, not 0700: emu refuses to use it "
                       "(chmod 700 %s)" % (base, stat.S_IMODE(st.st_mode), base))
    return True


def _owned_dir(path):
    """A real directory (not a symlink) owned by us."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()


# ----------------------------------------------------------------- other labs

def list_labs(base=None):
    """State of every lab under the run base (running or left behind).

    Only lab.json files in directories we own, under a run base we own with
    mode 0700, are read: a lab trusts only what it made.
    """
    base = base or run_base()
    labs: list[dict] = []
    if not check_run_base(base):
        return labs
    for entry in sorted(os.listdir(base)):
        d = os.path.join(base, entry)
        if not _owned_dir(d):
            continue
        path = os.path.join(d, STATE_FILE)
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
            with open(path) as f:
                st = json.load(f)
        except (OSError, ValueError):
            continue
        if not isinstance(st, dict) or not isinstance(st.get("run_dir"), str) or \
                os.path.realpath(st["run_dir"]) != os.path.realpath(d):
            continue             # a state file must describe the directory it is in
        st.setdefault("name", entry)
        st["alive"] = _same_process(st.get("orchestrator_pid"), st.get("orchestrator_create_time"),
                                    st.get("orchestrator_cmdline"))
        labs.append(st)
    return labs


def _same_process(pid, create_time, cmdline=None):
    """True only if pid is still the process we recorded: same start time and, when
    recorded, the same command line. Without a recorded start time nothing is
    trusted (a planted or recycled PID is never hit)."""
    if not isinstance(pid, int) or pid <= 1 or not isinstance(create_time, (int, float)):
        return False
    try:
        p = psutil.Process(pid)
        if abs(p.create_time() - create_time) >= 0.01:
            return False
        return cmdline is None or p.cmdline() == cmdline
    except psutil.Error:
        return False


def match_labs(labs, name):
    """The labs --lab name means: an exact run-directory match, else an exact
    name match, else those whose run directory starts with name."""
    for test in (lambda l: os.path.basename(l["run_dir"]) == name,
                 lambda l: l["name"] == name,
                 lambda l: os.path.basename(l["run_dir"]).startswith(name)):
        found = [l for l in labs if test(l)]
        if found:
            return found
    return []


def find_lab(name=None, base=None):
    """The lab called name (see match_labs); the only one if name is None."""
    labs = list_labs(base)
    if name is not None:
        labs = match_labs(labs, name)
    if not labs:
        raise LabError("no lab is running%s" % ("" if name is None else " called %r" % name))
    live = [l for l in labs if l["alive"]] or labs
    if len(live) > 1:
        raise LabError("several labs are running%s (%s): choose one with --lab RUN_DIR"
                       % ("" if name is None else " that match %r" % name,
                          ", ".join(os.path.basename(l["run_dir"]) for l in live)))
    return live[0]


def stop_lab(st, timeout=10.0):
    """Stop a lab started elsewhere: signal its orchestrator, or clean up after it.

    Returns the PIDs it refused to touch: named in the state file, alive, but
    not provably the processes emu started.
    """
    refused = []
    pid = st.get("orchestrator_pid")
    ident = (st.get("orchestrator_create_time"), st.get("orchestrator_cmdline"))
    nodes = st.get("nodes")
    if isinstance(nodes, dict):
        timeout += 0.01 * len(nodes)         # its own stop gives 1000 nodes a few more seconds
    if isinstance(pid, int) and pid != os.getpid() and psutil.pid_exists(pid) and \
            not _same_process(pid, *ident):
        refused.append(pid)
    elif _same_process(pid, *ident):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _same_process(pid, *ident):
            time.sleep(0.05)
    # The orchestrator is gone: end any node it left (recorded PIDs only), and
    # the fork server (its nodes die with it: PR_SET_PDEATHSIG).
    _kill_recorded(st.get("forkserver"))
    nodes = st.get("nodes")
    for node in (nodes.values() if isinstance(nodes, dict) else ()):
        if isinstance(node, dict) and node.get("machine") is not None:
            continue                         # a cluster machine's: its actor (and Ray) end it
        if not _kill_recorded(node) and isinstance(node, dict) and \
                isinstance(node.get("pid"), int) and \
                node["pid"] not in refused and psutil.pid_exists(node["pid"]) and \
                node.get("state", "running") == "running" and node.get("create_time") is None:
            refused.append(node["pid"])
    run_dir = st.get("run_dir")
    if run_dir and os.path.isfile(os.path.join(run_dir, STATE_FILE)):
        remove_run_dir(run_dir)
    return refused
