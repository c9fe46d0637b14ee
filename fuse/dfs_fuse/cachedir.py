"""The mount's own files in cache_dir (its log and spill files), kept from other users.

The default cache_dir, ``$TMPDIR/dfs-fuse-UID``, is a name anyone can guess in a
directory anyone can write. Another user could make it first, plant a symbolic
link at the log's name, and the mount (as root, say) appended its log to whatever
that pointed to; the directory was also made 0755 and the log 0644, so others read
the paths of the files written. So, as ssh and tmux do with theirs: the directory
is made 0700, and one already there, the default or one given with ``-o
cache_dir=``, must be a real directory (not a symbolic link) of the mounting user
that no other user can write, or the mount is refused. The log is opened without
following a symbolic link, made 0600 and must be a regular file of ours.

Spill files need nothing more: staging.py makes them with mkstemp (O_EXCL, 0600)
and unlinks them at once.
"""

from __future__ import annotations

import errno
import os
import stat

from dfs import errors


def unsafe(st: os.stat_result, euid: int) -> str | None:
    """Why a directory whose lstat() is ``st`` cannot hold the files of a mount made by
    ``euid``, or None if it can."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid != euid:
        return f"is owned by another user (uid {st.st_uid})"
    if st.st_mode & 0o022:
        return f"is writable by other users (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def ensure(path: str) -> None:
    """Make ``path`` (mode 0700, parents as usual) or check the directory there; a
    DfsError naming the problem if it cannot hold the mount's files."""
    try:
        os.makedirs(path, mode=0o700)
    except FileExistsError:   # also a symbolic link, dangling or not: lstat tells
        pass
    except OSError as e:
        raise errors.DfsError(f"cannot make cache_dir: {e.strerror}", path) from None
    try:
        st = os.lstat(path)
    except OSError as e:
        raise errors.DfsError(f"cache_dir: {e.strerror}", path) from None
    why = unsafe(st, os.geteuid())
    if why:
        raise errors.DfsError(f"cache_dir {why}; refusing to keep the mount's log and spill files there "
                              f"(use a directory of your own, mode 0700, or -o cache_dir=DIR)", path)


def open_log(path: str) -> int:
    """A descriptor appending to the log at ``path``: made 0600 if new, and refused
    (DfsError) if a symbolic link, not a regular file, or another user's."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:   # O_NONBLOCK: a FIFO there must not hang the mount (ENXIO without a reader)
        fd = os.open(path, flags | os.O_NONBLOCK, 0o600)
    except OSError as e:
        why = "is a symbolic link" if e.errno == errno.ELOOP else e.strerror
        raise errors.DfsError(f"cannot open the mount's log: {why}", path) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise errors.DfsError("cannot open the mount's log: not a regular file", path)
        if st.st_uid != os.geteuid():
            raise errors.DfsError(f"cannot open the mount's log: owned by another user (uid {st.st_uid})", path)
        if st.st_mode & 0o077:   # a log made 0644 by an older dfs
            os.fchmod(fd, 0o600)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
