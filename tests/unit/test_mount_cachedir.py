"""The mount's own files and what it says about them (fuse/dfs_fuse/cachedir.py, logline.py,
mount.py's _failure): pure, on temporary directories, no mount.

Found by an exploratory tester: the default cache_dir, $TMPDIR/dfs-fuse-UID, was taken
as it was found, so another user who made it first (with a symbolic link at the log's
name) had root's mount append its log to any file; the log was 0644 and took file
names raw, newlines included."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from dfs import errors
from dfs_fuse import cachedir
from dfs_fuse.logline import EscapeControls
from dfs_fuse.mount import MountOptions, _failure

OTHER_UID = 65534   # nobody


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_new_cache_dir_is_private(tmp_path):
    d = tmp_path / "a" / "dfs-fuse-0"
    cachedir.ensure(str(d))
    assert mode(d) == 0o700
    cachedir.ensure(str(d))   # the second mount finds it and takes it
    fd = cachedir.open_log(str(d / "mount-x.log"))
    os.close(fd)
    assert mode(d / "mount-x.log") == 0o600


@pytest.mark.parametrize("make, words", [
    (lambda d, t: os.symlink(t, d), "is a symbolic link"),
    (lambda d, t: (os.mkdir(d), os.chown(d, OTHER_UID, OTHER_UID)), f"is owned by another user (uid {OTHER_UID})"),
    (lambda d, t: (os.mkdir(d), os.chmod(d, 0o777)), "is writable by other users (mode 0777)"),
    (lambda d, t: (os.mkdir(d), os.chmod(d, 0o1777)), "is writable by other users (mode 1777)"),
    (lambda d, t: (os.mkdir(d), os.chmod(d, 0o770)), "is writable by other users (mode 0770)"),
])
def test_a_cache_dir_others_can_change_is_refused(tmp_path, make, words):
    if os.geteuid() != 0 and "owned" in words:
        pytest.skip("chown to another user needs root")
    target = tmp_path / "theirs"
    target.mkdir(mode=0o700)
    d = tmp_path / "dfs-fuse-0"
    make(str(d), str(target))
    with pytest.raises(errors.DfsError) as e:
        cachedir.ensure(str(d))
    assert str(e.value).startswith(f"{d}: cache_dir {words}; refusing") and "\n" not in str(e.value)


def test_the_default_cache_dir_is_checked_too(tmp_path, monkeypatch):
    """The attack of the report: another user's directory at the default name."""
    if os.geteuid() == 0:
        want = "owned by another user"
        planted = tmp_path / f"dfs-fuse-{os.geteuid()}"
        planted.mkdir(mode=0o777)
        os.chmod(planted, 0o777)
        os.chown(planted, OTHER_UID, OTHER_UID)
    else:
        want = "writable by other users"
        planted = tmp_path / f"dfs-fuse-{os.geteuid()}"
        planted.mkdir()
        os.chmod(planted, 0o777)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    opts = MountOptions.parse({})
    assert opts.cache_dir == str(planted)
    with pytest.raises(errors.DfsError, match=want):
        cachedir.ensure(opts.cache_dir)


def test_the_log_is_never_a_symbolic_link_nor_another_users(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("secret\n")
    os.chmod(victim, 0o600)
    link = tmp_path / "mount-tmp_M.log"
    link.symlink_to(victim)
    with pytest.raises(errors.DfsError, match="cannot open the mount's log: is a symbolic link"):
        cachedir.open_log(str(link))
    assert victim.read_text() == "secret\n"
    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    with pytest.raises(errors.DfsError, match="cannot open the mount's log: No such device"):
        cachedir.open_log(str(fifo))   # a FIFO without a reader: ENXIO, not a hang
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(errors.DfsError, match="cannot open the mount's log: not a regular file"):
            cachedir.open_log(str(fifo))
    finally:
        os.close(reader)
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs.log"
        theirs.write_text("")
        os.chown(theirs, OTHER_UID, OTHER_UID)
        with pytest.raises(errors.DfsError, match=f"owned by another user \\(uid {OTHER_UID}\\)"):
            cachedir.open_log(str(theirs))


def test_an_old_readable_log_is_made_private_and_appended_to(tmp_path):
    old = tmp_path / "mount-x.log"
    old.write_bytes(b"before\n")
    os.chmod(old, 0o644)
    fd = cachedir.open_log(str(old))
    os.write(fd, b"after\n")
    os.close(fd)
    assert mode(old) == 0o600 and old.read_bytes() == b"before\nafter\n"


def test_log_messages_are_one_line_each():
    record = logging.LogRecord("dfs_fuse.operations", logging.WARNING, __file__, 1,
                               "%s: cannot give it to %s", ("/d/x\n* * * * * root echo pwned\r\x1b[2J", "bob"),
                               None)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(EscapeControls())
    assert handler.filter(record)
    line = handler.format(record)
    assert line == r"WARNING dfs_fuse.operations: /d/x\n* * * * * root echo pwned\r\x1b[2J: cannot give it to bob"
    assert handler.filter(record) and handler.format(record) == line   # a second handler: the same
    try:
        raise ValueError("bad\x1bname")
    except ValueError:
        import sys
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "%s failed", ("op\n",), sys.exc_info())
    assert handler.filter(record)
    text = handler.format(record)
    assert text.startswith(r"ERROR x: op\n failed" + "\nTraceback") and "bad\\x1bname" in text


@pytest.mark.parametrize("said", [
    "fusermount3: option allow_other only allowed if 'user_allow_other' is set in /etc/fuse.conf",
    "fusermount3: user has no write access to mountpoint /tmp/a",
    "fusermount: failed to open /dev/fuse: Permission denied",
    "fuse: unknown option(s): `-o bogus'",
])
def test_the_failure_is_fusermounts_reason(tmp_path, said):
    """It was "FUSE failed (4)", the reason left in the log."""
    log = tmp_path / "mount.log"
    log.write_text("an earlier attempt\nfusermount3: old reason\n")
    start = log.stat().st_size
    with open(log, "a") as f:
        f.write(f"2025-01-01 00:00:00,000 WARNING fuse: something\n{said}\n"
                "dfs: mount: /tmp/a: FUSE failed (4)\n")
    assert _failure(str(log), "/tmp/a", start) == said
