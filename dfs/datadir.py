"""A server's --data-dir: checked before it is touched, locked while in use, and
(a datanode's) tied to one cluster.

A datanode empties tmp/ and deletes uncommitted data files at start, and a
namenode opens a database there: pointed at the wrong directory by mistake
(a home directory, a disk of user files, a file), either would destroy or
adopt somebody's files. So a directory is only used when it is ours (it holds
our identity file), or is new or empty; anything else is refused with one
line naming what is in the way. ``lost+found`` (the root of a fresh file
system) does not count.

Two processes on one directory would wipe each other's tmp/ (datanodes) or
serve one namespace twice (namenodes), so the directory is locked with
flock(2) on ``in_use.lock`` (HDFS's name). The kernel drops the lock when the
process exits, however it exits: a SIGKILL leaves no stale lock behind.

A datanode's directory records the cluster id of the namenode it first
registered with (datanode.json). Another namenode would take its replicas
for its own block ids -- and delete them as surplus or unknown -- so it
refuses the datanode, which stops with one line (HDFS: "Incompatible
clusterIDs").
"""

from __future__ import annotations

import errno
import fcntl
import os

LOCK_NAME = "in_use.lock"
_NOT_OURS_OK = {"lost+found", LOCK_NAME}


class DataDirError(OSError):
    """A data dir that cannot be used; the CLI prints `dfs: CMD: PATH: REASON`."""

    def __init__(self, path: str, reason: str, code: int = errno.EINVAL):
        super().__init__(code, reason, path)


def strangers(entries: list[str], identity: tuple[str, ...]) -> list[str]:
    """The entries that make a directory somebody else's: none when it holds one of
    our ``identity`` files (it is ours) or only what any empty file system holds."""
    if any(name in entries for name in identity):
        return []
    return sorted(e for e in entries if e not in _NOT_OURS_OK)


def check(path: str, role: str, identity: tuple[str, ...]) -> None:
    """Create ``path`` if missing; refuse a file, or a directory that is not ours and not empty."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise DataDirError(path, "not a directory", errno.ENOTDIR)
    os.makedirs(path, exist_ok=True)
    found = strangers(os.listdir(path), identity)
    if found:
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise DataDirError(path, f"not a dfs {role} data dir and not empty ({shown}); "
                                 f"give an empty or new directory")


def lock(path: str, role: str) -> int:
    """Lock the directory for this process (until it exits). -> the lock's fd, to keep open."""
    lock_path = os.path.join(path, LOCK_NAME)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise DataDirError(path, f"in use by another {role} (pid {holder or '?'})", errno.EBUSY) from None
    pid = f"{os.getpid()}\n".encode()
    try:
        # Over the old pid, then cut to length: the file's block is reused, not freed
        # and asked for again (a restart on a full disk).
        os.pwrite(fd, pid, 0)
        os.ftruncate(fd, len(pid))
    except OSError as e:   # a full disk: named (SPEC: `dfs: CMD: PATH: REASON`)
        os.close(fd)
        raise OSError(e.errno, e.strerror, lock_path) from None
    return fd


def open_data_dir(path: str, role: str, identity: tuple[str, ...]) -> int:
    """check() then lock(); the check is repeated under the lock (another process may
    have been starting on it meanwhile). -> the lock fd."""
    check(path, role, identity)
    fd = lock(path, role)
    try:
        check(path, role, identity)
    except BaseException:
        os.close(fd)
        raise
    return fd


def foreign_cluster(ours: str, theirs: str) -> str:
    """Why a data dir of cluster ``theirs`` may not join ``ours`` ("" if it may: a new
    one has no cluster yet and joins the first namenode it registers with)."""
    if not theirs or not ours or theirs == ours:
        return ""
    return (f"belongs to cluster {theirs}, but this namenode's is {ours} "
            f"(a data dir of another cluster: start the datanode on an empty directory)")
