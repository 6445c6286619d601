"""Run directories and the socket directory they link to (emu/rundir.py)."""
import os

from emu import rundir


def test_a_socket_directory_goes_with_its_run_directory(tmp_path, monkeypatch):
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setenv("EMU_SOCK_BASE", str(shm))
    run = tmp_path / "lab-x"
    run.mkdir()
    sock = rundir.make_sock_dir(str(run))
    if sock == str(run):                 # the test's tmp dir is on tmpfs: nothing to link
        assert rundir._mount_fstype(str(run)) == "tmpfs"
        return
    assert os.path.dirname(sock) == str(shm) and os.path.basename(sock).startswith(rundir.SOCK_PREFIX + "lab-x-")
    assert os.stat(sock).st_mode & 0o777 == 0o700
    assert os.readlink(run / rundir.SOCK_LINK) == sock
    assert rundir.sock_dir_of(str(run)) == sock
    (tmp_path / "shm" / os.path.basename(sock) / "h1.sys").write_text("")
    rundir.remove_run_dir(str(run))
    assert not run.exists() and not os.path.exists(sock)


def test_a_link_to_a_directory_emu_did_not_make_is_not_followed(tmp_path):
    run = tmp_path / "lab-y"
    run.mkdir()
    for name, mode in ((rundir.SOCK_PREFIX + "open", 0o755), ("someone-else", 0o700)):
        target = tmp_path / name
        target.mkdir()
        (target / "keep").write_text("x")
        os.chmod(target, mode)
        link = run / rundir.SOCK_LINK
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target)
        assert rundir.sock_dir_of(str(run)) is None, name
    rundir.remove_run_dir(str(run))
    assert not run.exists()
    # Only the link went: what it pointed at is not ours to remove.
    assert (tmp_path / (rundir.SOCK_PREFIX + "open") / "keep").exists()
    assert (tmp_path / "someone-else" / "keep").exists()


def test_no_socket_directory_when_told_so(tmp_path, monkeypatch):
    monkeypatch.setenv("EMU_SOCK_BASE", "")
    run = tmp_path / "lab-z"
    run.mkdir()
    assert rundir.make_sock_dir(str(run)) == str(run)
    assert not (run / rundir.SOCK_LINK).exists()


def test_a_socket_directory_left_behind_is_swept_by_the_next_lab(tmp_path, monkeypatch):
    """A run base removed by hand leaves its socket directories on tmpfs;
    the next lab that makes one removes those whose run directory is gone,
    and nothing else."""
    import shutil
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setenv("EMU_SOCK_BASE", str(shm))
    monkeypatch.setattr(rundir, "_mount_fstype", lambda path: "tmpfs" if str(path).startswith(str(shm)) else "ext4")
    gone, kept = tmp_path / "gone-1", tmp_path / "kept-1"
    gone.mkdir()
    kept.mkdir()
    a, b = rundir.make_sock_dir(str(gone)), rundir.make_sock_dir(str(kept))
    stranger = shm / (rundir.SOCK_PREFIX + "stranger")      # no back link
    stranger.mkdir(mode=0o700)
    shutil.rmtree(gone)                       # removed by hand: its socket dir stays
    assert os.path.isdir(a)
    new = tmp_path / "new-1"
    new.mkdir()
    c = rundir.make_sock_dir(str(new))
    assert not os.path.exists(a)
    assert os.path.isdir(b) and os.path.isdir(c) and stranger.is_dir()
