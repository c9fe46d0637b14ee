"""Namespace operations: paths, inodes, permissions, leases, block lists.

The rules live here; durability lives in the ``MetaStore``. Every method is
called under the namesystem lock and takes ``now`` explicitly; none of them
touches sockets, threads or the clock. The caller makes the result durable
with ``store.sync()`` before replying (see service.py).
"""

from __future__ import annotations

import stat as _stat
from dataclasses import dataclass, field

from dfs import config, errors
from dfs.model import FileStatus
from dfs.namenode.store import ROOT_ID, MetaStore

MAX_NAME = 255
MAX_PATH = 4096
LEASE_SOFT_LIMIT = 60.0   # seconds; the namenode may set Namespace.lease_limit
# Only a file's last two blocks can be uncommitted (the one draining, the one allocated
# after it: add_block refuses a third), so a writer's steps need no more of its blocks.
OPEN_TAIL = 2


@dataclass(frozen=True)
class Caller:
    user: str
    groups: tuple[str, ...] = ()
    client_name: str = ""
    host: str = ""
    call_id: int = 0        # the client's number for this call, the same for its retries


@dataclass
class BlockRef:
    block_id: int
    genstamp: int
    length: int
    committed: bool
    offset: int = 0
    idx: int = 0       # its place in the file (the store orders blocks by it)


@dataclass
class OpenFile:
    """An inode under construction and its last blocks (for the writer): not all of
    them, which would make each step of a write of n blocks cost n. ``row["length"]``
    is the length of its committed blocks, kept by the steps that change it."""

    row: dict
    blocks: list[BlockRef] = field(default_factory=list)


def split_path(path: str, new: bool = False) -> list[str]:
    """'/a/b' -> ['a', 'b']. Refuses relative paths, '.', '..', empty components.
    ``new``: a path being made (create, mkdir, a rename's target) must fit MAX_PATH
    bytes. Existing paths are found at any length, as in HDFS: renaming a directory
    may take its deepest files past the limit, and they must stay reachable."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise errors.InvalidPathError("path must be absolute", path)
    if new and len(path.encode("utf-8", "surrogatepass")) > MAX_PATH:
        raise errors.NameTooLongError(path=path[:64] + "...")
    if path == "/":
        return []
    parts = path[1:].rstrip("/").split("/") if path != "/" else []
    for p in parts:
        if p in ("", ".", ".."):
            raise errors.InvalidPathError("empty, '.' or '..' path component", path)
        if "\0" in p:
            raise errors.InvalidPathError("NUL in path", path)
        if len(p.encode()) > MAX_NAME:
            raise errors.NameTooLongError(path=path)
    return parts


MAX_PRINCIPAL = 256


def check_principal(name: str, what: str = "user") -> None:
    """A user or group name: printable, without white space or ':' (OWNER:GROUP),
    at most MAX_PRINCIPAL characters. Any other was stored as given (DFS_USER is the
    client's word) and came back to break listings across lines and a mount's
    name-to-id mapping."""
    if not name or len(name) > MAX_PRINCIPAL or ":" in name or not name.isprintable() or any(
            c.isspace() for c in name):
        raise errors.InvalidArgumentError(f"invalid {what} name {name!r}")


def join(parts: list[str]) -> str:
    return "/" + "/".join(parts)


class Namespace:
    def __init__(self, store: MetaStore, *, superuser: str, supergroup: str = "supergroup",
                 default_replication: int = 3, default_block_size: int = 64 << 20,
                 chunk_size: int = 1 << 20):
        for problem in (config.block_size_problem(default_block_size), config.replication_problem(default_replication)):
            if problem:   # every create of a file would fail (`dfs namenode` checks its arguments)
                raise ValueError(f"default {problem}")
        self.store = store
        self.superuser = superuser
        self.supergroup = supergroup
        self.default_replication = default_replication
        self.default_block_size = default_block_size
        self.chunk_size = chunk_size
        self.lease_limit = LEASE_SOFT_LIMIT
        # When this namenode started (its clock): leases restart with it, so for a lease
        # period after it no writer's lease counts as lapsed (the NameSystem sets it).
        self.started = float("-inf")
        if store.get(ROOT_ID) is None:
            store.insert(id=ROOT_ID, parent=None, name="", is_dir=1, mode=0o755,
                         owner=superuser, grp=supergroup, mtime=0.0, ctime=0.0)
            store.sync()

    # -- resolution and permissions -----------------------------------
    def _walk(self, parts: list[str], caller: Caller, path: str) -> list[dict]:
        """Rows from the root down to the last existing component."""
        rows = [self.store.get(ROOT_ID)]
        for name in parts:
            cur = rows[-1]
            if not cur["is_dir"]:
                raise errors.DfsNotADirectoryError(path=path)
            self._check(cur, caller, _stat.S_IXOTH, path)
            nxt = self.store.lookup(cur["id"], name)
            if nxt is None:
                break
            rows.append(nxt)
        return rows  # type: ignore[return-value]

    def resolve(self, path: str, caller: Caller) -> dict:
        parts = split_path(path)
        rows = self._walk(parts, caller, path)
        if len(rows) != len(parts) + 1:
            raise errors.DfsFileNotFoundError(path=path)
        return rows[-1]

    def readable_file(self, inode_id: int, caller: Caller, path: str) -> dict:
        """The complete file ``inode_id`` for a reader who opened it by path (``path``, named
        in errors only) and reads on wherever it is now (renamed, or a directory above it).
        As a lookup of its path now would: search permission on every directory above it
        and read permission on the file (HDFS's /.reserved/.inodes/ID checks its path too).
        Only the file's was checked at first, and inode ids are small numbers: any user
        got the blocks and key of a file in another's 0700 directory by guessing its id.
        A file deleted since is not found; so is one under construction."""
        row = self.store.get(inode_id)
        if row is None or row["is_dir"] or row["state"] != "C":
            raise errors.DfsFileNotFoundError(path=path)
        if not self.is_superuser(caller):
            parent = row["parent"]
            while True:
                d = self.store.get(parent)
                if d is None:   # (a row's parent is never removed before it)
                    raise errors.DfsFileNotFoundError(path=path)
                self._check(d, caller, _stat.S_IXOTH, path)
                if d["id"] == ROOT_ID:
                    break
                parent = d["parent"]
        self._check(row, caller, _stat.S_IROTH, path)
        return row

    def _parent(self, path: str, caller: Caller, *, create: bool = False, now: float = 0.0,
                new: bool = False) -> tuple[dict, str]:
        parts = split_path(path, new)
        if not parts:
            raise errors.InvalidPathError("cannot operate on the root", path)
        if create:
            try:
                parent = self._mkdirs(parts[:-1], caller, now, 0o755, path)
            except errors.DfsFileExistsError:  # the would-be parent is a file
                raise errors.DfsNotADirectoryError(path=join(parts[:-1])) from None
        else:
            rows = self._walk(parts[:-1], caller, path)
            if len(rows) != len(parts):
                raise errors.DfsFileNotFoundError(path=join(parts[:-1]))
            parent = rows[-1]
        if not parent["is_dir"]:
            raise errors.DfsNotADirectoryError(path=join(parts[:-1]))
        return parent, parts[-1]

    def is_superuser(self, caller: Caller) -> bool:
        return caller.user == self.superuser or self.supergroup in caller.groups

    def allowed(self, row: dict, caller: Caller, bits_other: int) -> bool:
        """POSIX permission check; bits_other is the 'other' form (r=4, w=2, x=1):
        any one of them set passes."""
        if self.is_superuser(caller):
            return True
        mode = row["mode"]
        if caller.user == row["owner"]:
            return bool(mode & (bits_other << 6))
        if row["grp"] in caller.groups:
            return bool(mode & (bits_other << 3))
        return bool(mode & bits_other)

    def _check(self, row: dict, caller: Caller, bits_other: int, path: str) -> None:
        if not self.allowed(row, caller, bits_other):
            raise errors.DfsPermissionError(path=path)

    def _may_replace(self, parent: dict, existing: dict, caller: Caller, path: str,
                     keeps_attributes: bool) -> None:
        """Overwriting another user's file takes write permission on it, as HDFS's create
        with overwrite: a 0644 file of bob's is not alice's to replace, even in a
        directory she may write. Its owner may always (a chmod away; the FUSE mount
        commits files made read-only while written: tar, cp -p).

        In a sticky directory a new file in its place (``put -f``: the caller's, with
        the caller's mode) is a removal of it, as a rename over it: only its owner, the
        directory's owner or the superuser may (else bob took alice's 0666 file in /tmp
        and could chmod it 0600). A new version that ``keeps_attributes`` (the mount's
        O_TRUNC write, an fsspec append) stays hers: a write into it, which write
        permission on it allows (POSIX)."""
        if existing["owner"] != caller.user:
            self._check(existing, caller, _stat.S_IWOTH, path)
            if not keeps_attributes:
                self._check_sticky(parent, existing, caller, path)

    def _may_write_name(self, parent: dict, existing: dict | None, caller: Caller, path: str,
                        keeps_attributes: bool) -> None:
        """Write permission on the directory, unless what is written is a new version of
        the file at the name that ``keeps_attributes`` (stays its owner's: an fsspec
        append, the mount's commit of a write or an O_TRUNC): that is a write into the
        file, which only write permission on it allows (``_may_replace``), as POSIX's
        open(O_APPEND or O_TRUNC) and HDFS's append; carol could not append to bob's
        0666 log in his 0755 directory. Anything else gives the name a new file (the
        caller's: a new name, ``put -f``), a change of the directory. Asked at create
        and again at complete, of the file there then and of complete's own
        ``keep_attributes``: one kept at create only, or a file gone or replaced by a
        writable one meanwhile, is judged by what the name holds when it is given."""
        if not (keeps_attributes and existing is not None and not existing["is_dir"]):
            self._check(parent, caller, _stat.S_IWOTH, path)

    def check_block_readable(self, block_id: int, caller: Caller) -> None:
        """Only a caller who may read a block's file can have read it, and so report one
        of its replicas corrupt: a report is believed (a datanode cannot check what it
        cannot decrypt), so without this any user could make any block unreadable."""
        row = self.store.block_owner(block_id)
        if row is None:
            raise errors.DfsFileNotFoundError(path=f"block {block_id}")
        path = f"block {block_id}"
        d = self.store.get(row["parent"])
        while d is not None:
            self._check(d, caller, _stat.S_IXOTH, path)
            d = self.store.get(d["parent"]) if d["id"] != ROOT_ID else None
        self._check(row, caller, _stat.S_IROTH, path)

    def _check_owner(self, row: dict, caller: Caller, path: str) -> None:
        if caller.user != row["owner"] and not self.is_superuser(caller):
            raise errors.DfsPermissionError(path=path)

    # -- status ---------------------------------------------------------
    def status(self, row: dict, path: str) -> FileStatus:
        d = bool(row["is_dir"])
        return FileStatus(
            path=path, type="directory" if d else "file", size=0 if d else row["length"],
            replication=0 if d else row["replication"], block_size=0 if d else row["block_size"],
            mode=row["mode"], owner=row["owner"], group=row["grp"], mtime=row["mtime"],
            ctime=row["ctime"], inode_id=row["id"],
            children=self.store.count_children(row["id"]) if d else 0,
            subdirs=self.store.count_subdirs(row["id"]) if d else 0)

    def stat(self, path: str, caller: Caller) -> FileStatus:
        return self.status(self.resolve(path, caller), normalize(path))

    def list(self, path: str, caller: Caller, start_after: str = "",
             limit: int = 10000) -> tuple[FileStatus, list[FileStatus], bool]:
        row = self.resolve(path, caller)
        base = normalize(path)
        st = self.status(row, base)
        if not row["is_dir"]:
            return st, [st], False
        # Read and search, as HDFS's getListing (READ_EXECUTE): the entries' sizes, owners
        # and times are what stat of each tells, which takes search permission.
        self._check(row, caller, _stat.S_IROTH, path)
        self._check(row, caller, _stat.S_IXOTH, path)
        rows = self.store.children(row["id"], start_after, limit + 1)
        prefix = base.rstrip("/") + "/"
        out = [self.status(r, prefix + r["name"]) if r["is_dir"] else self._file_status(r, prefix + r["name"])
               for r in rows[:limit]]
        return st, out, len(rows) > limit

    def _file_status(self, r: dict, path: str) -> FileStatus:
        return FileStatus(path=path, type="file", size=r["length"], replication=r["replication"],
                          block_size=r["block_size"], mode=r["mode"], owner=r["owner"],
                          group=r["grp"], mtime=r["mtime"], ctime=r["ctime"], inode_id=r["id"])

    # -- directories ----------------------------------------------------
    def _mkdirs(self, parts: list[str], caller: Caller, now: float, mode: int, path: str) -> dict:
        rows = self._walk(parts, caller, path)
        for name in parts[len(rows) - 1:]:
            parent = rows[-1]
            if not parent["is_dir"]:
                raise errors.DfsNotADirectoryError(path=path)
            self._check(parent, caller, _stat.S_IWOTH, path)
            new = self.store.insert(parent=parent["id"], name=name, is_dir=1, mode=mode,
                                    owner=caller.user, grp=parent["grp"], mtime=now, ctime=now)
            self.store.update(parent["id"], mtime=now)
            rows.append(new)
        if not rows[-1]["is_dir"]:
            if len(rows) - 1 < len(parts):
                raise errors.DfsNotADirectoryError(path=path)
            raise errors.DfsFileExistsError(path=path)
        return rows[-1]

    def mkdir(self, path: str, caller: Caller, now: float, *, parents: bool = False, mode: int = 0o755) -> FileStatus:
        parts = split_path(path, new=True)
        if not parts:
            if parents:
                return self.stat("/", caller)
            raise errors.DfsFileExistsError(path=path)
        if parents:
            row = self._mkdirs(parts, caller, now, mode & 0o7777, path)
            return self.status(row, join(parts))
        parent, name = self._parent(path, caller)
        if self.store.lookup(parent["id"], name) is not None:
            raise errors.DfsFileExistsError(path=path)
        self._check(parent, caller, _stat.S_IWOTH, path)
        new = self.store.insert(parent=parent["id"], name=name, is_dir=1, mode=mode & 0o7777,
                                owner=caller.user, grp=parent["grp"], mtime=now, ctime=now)
        self.store.update(parent["id"], mtime=now)
        return self.status(new, join(parts))

    # -- delete / rename ------------------------------------------------
    def delete(self, path: str, caller: Caller, now: float, *, recursive: bool = False,
               files_only: bool = False, inode_id: int = 0) -> list[int]:
        """Remove path; returns the block ids to invalidate on datanodes. ``files_only``:
        a directory there is refused (rm without -r: a check made by the client before
        the call would race with a directory made at that name meanwhile). ``inode_id``:
        only while the path holds that file, and not its writers (a FUSE mount's late
        removal of a file libfuse hid: one put at the name since is not removed)."""
        parts = split_path(path)
        if not parts:
            raise errors.InvalidPathError("cannot delete the root", path)
        rows = self._walk(parts, caller, path)
        row = rows[-1] if len(rows) == len(parts) + 1 else None
        # Files being written to this name go too (as HDFS's delete of a file under
        # construction): their writer's next AddBlock/Complete fails, nothing appears.
        writing = self.store.pending(rows[-1]["id"], parts[-1]) if len(rows) == len(parts) else []
        if row is not None and not row["is_dir"]:
            writing = self.store.pending(row["parent"], parts[-1])
        if inode_id:
            writing = []
            if row is not None and row["id"] != inode_id:
                row = None
        if row is None and not writing:
            raise errors.DfsFileNotFoundError(path=path)
        parent = self.store.get(row["parent"]) if row is not None else rows[-1]
        self._check(parent, caller, _stat.S_IWOTH, path)  # type: ignore[arg-type]
        for r in ([row] if row is not None else []) + writing:
            self._check_sticky(parent, r, caller, path)  # type: ignore[arg-type]
        if row is not None and row["is_dir"] and files_only:
            raise errors.DfsIsADirectoryError(path=path)
        if row is not None and row["is_dir"] and not recursive and not self._empty_dir(row["id"]):
            raise errors.DirectoryNotEmptyError(path=path)
        if row is not None and row["is_dir"] and not self.is_superuser(caller):
            self._check_may_empty(row, caller)
        dropped: list[int] = []
        for r in writing:
            dropped += self.store.delete_subtree(r["id"])
        if row is not None:
            self.store.update(row["parent"], mtime=now)
            dropped += self.store.delete_subtree(row["id"])
        return dropped

    def _check_may_empty(self, top: dict, caller: Caller) -> None:
        """A recursive delete needs read, write and search permission on every non-empty
        directory it empties (HDFS's subAccess=ALL): alice's 0700 directory in a 0777 one
        is not bob's to remove, though bob may unlink entries of the 0777 one."""
        # Directories only: a tree of a million files read whole took ~20 s under the lock.
        dirs = [r for r in self.store.subdirs(top["id"]) if r["nchildren"] or self.store.has_pending(r["id"])]
        self._check_dirs(dirs, caller, (_stat.S_IROTH, _stat.S_IWOTH, _stat.S_IXOTH))
        self._check_sticky_entries(dirs, caller)

    def _check_sticky_entries(self, dirs: list[dict], caller: Caller) -> None:
        """The sticky rule inside a tree being removed whole, for a caller who is not the
        superuser: an entry of a sticky directory goes only by its owner or the
        directory's. POSIX rm -r unlinks entry by entry, each checked, and so does the
        mount; one Delete RPC (dfs rm -r, fsspec rm) was a way around it, taking bob's
        file from alice's 1777 directory inside carol's. A refusal names the entry.
        Only entries of sticky directories not the caller's are looked at."""
        for d in dirs:
            if d["mode"] & _stat.S_ISVTX and d["owner"] != caller.user:
                other = self.store.entry_not_owned_by(d["id"], caller.user)
                if other is not None:
                    name = other["name"] if other["name"] is not None else other["pending_name"]
                    raise errors.DfsPermissionError(path=self._path_of(d) + name)

    def _check_dirs(self, dirs: list[dict], caller: Caller, bits: tuple[int, ...]) -> None:
        """Every one of ``bits`` on every directory of ``dirs`` (``_check`` passes when
        any bit it is given is set); a refusal names the first directory lacking one,
        its path found only then."""
        for r in dirs:
            try:
                for b in bits:
                    self._check(r, caller, b, "")
            except errors.DfsPermissionError:
                raise errors.DfsPermissionError(path=self._path_of(r).rstrip("/") or "/") from None

    def _empty_dir(self, dir_id: int) -> bool:
        """No entries and no file being written in it: as in HDFS, where a file under
        construction is a child, a non-recursive delete (or a rename over the directory)
        must not silently take an unfinished file with it."""
        return not self.store.count_children(dir_id) and not self.store.has_pending(dir_id)

    def _check_sticky(self, parent: dict, row: dict, caller: Caller, path: str) -> None:
        if (parent["mode"] & _stat.S_ISVTX and caller.user not in (row["owner"], parent["owner"])
                and not self.is_superuser(caller)):
            raise errors.DfsPermissionError(path=path)

    def rename(self, src: str, dst: str, caller: Caller, now: float, *,
               overwrite: bool = False) -> tuple[FileStatus, list[int]]:
        """Atomic rename of src to exactly dst. Returns (new status, blocks to invalidate)."""
        sparts, dparts = split_path(src), split_path(dst, new=True)
        if not sparts or not dparts:
            raise errors.InvalidPathError("cannot rename the root", src if not sparts else dst)
        row = self.resolve(src, caller)
        if dparts[:len(sparts)] == sparts:
            if dparts == sparts:
                return self.status(row, join(dparts)), []
            raise errors.InvalidArgumentError("cannot move a directory into itself", dst)
        sparent = self.store.get(row["parent"])
        self._check(sparent, caller, _stat.S_IWOTH, src)  # type: ignore[arg-type]
        self._check_sticky(sparent, row, caller, src)  # type: ignore[arg-type]
        dparent, dname = self._parent(dst, caller)
        self._check(dparent, caller, _stat.S_IWOTH, dst)
        dropped: list[int] = []
        existing = self.store.lookup(dparent["id"], dname)
        if existing is not None:
            if existing["is_dir"]:
                if not row["is_dir"]:
                    raise errors.DfsIsADirectoryError(path=dst)
                if not overwrite:   # first: a caller may then move it into the directory
                    raise errors.DfsFileExistsError(path=dst)
                if not self._empty_dir(existing["id"]):
                    raise errors.DirectoryNotEmptyError(path=dst)
            elif row["is_dir"]:
                raise errors.DfsNotADirectoryError(path=dst)
            elif not overwrite:
                raise errors.DfsFileExistsError(path=dst)
            self._check_sticky(dparent, existing, caller, dst)   # replacing it removes it
            dropped = self.store.delete_subtree(existing["id"])
        self.store.update(row["id"], parent=dparent["id"], name=dname)
        self.store.update(sparent["id"], mtime=now)  # type: ignore[index]
        self.store.update(dparent["id"], mtime=now)
        return self.status(self.store.get(row["id"]), join(dparts)), dropped  # type: ignore[arg-type]

    # -- attributes -----------------------------------------------------
    def chmod(self, path: str, mode: int, caller: Caller) -> FileStatus:
        row = self.resolve(path, caller)
        self._check_owner(row, caller, path)
        self.store.update(row["id"], mode=mode & 0o7777)
        return self.stat(path, caller)

    def chown(self, path: str, owner: str, group: str, caller: Caller) -> FileStatus:
        row = self.resolve(path, caller)
        for name, what in ((owner, "owner"), (group, "group")):
            if name:
                check_principal(name, what)
        su = self.is_superuser(caller)   # the superuser, or a member of the supergroup (HDFS)
        if owner and owner != row["owner"] and not su:
            raise errors.DfsPermissionError(path=path)
        if group and not su and (caller.user != row["owner"] or group not in caller.groups):
            raise errors.DfsPermissionError(path=path)
        self.store.update(row["id"], owner=owner or row["owner"], grp=group or row["grp"])
        return self.stat(path, caller)

    def set_times(self, path: str, mtime: float, caller: Caller) -> FileStatus:
        _check_time(mtime, path)
        row = self.resolve(path, caller)
        if caller.user != row["owner"]:
            self._check(row, caller, _stat.S_IWOTH, path)   # lets the superuser through
        self.store.update(row["id"], mtime=mtime)
        return self.stat(path, caller)

    def set_replication(self, path: str, replication: int, caller: Caller) -> tuple[FileStatus, list[int]]:
        if problem := config.replication_problem(replication):
            raise errors.InvalidArgumentError(f"{problem}, not {replication}", path)
        row = self.resolve(path, caller)
        if row["is_dir"]:
            raise errors.DfsIsADirectoryError(path=path)
        self._check(row, caller, _stat.S_IWOTH, path)
        self.store.update(row["id"], replication=replication)
        return self.stat(path, caller), [b["id"] for b in self.store.blocks(row["id"])]

    def check_subtree(self, rows: list[dict], caller: Caller) -> None:
        """A summary of a whole tree (du -s, fsck; ``rows``: its ``store.subtree``) takes
        read and search permission on every directory in it, as HDFS's
        getContentSummary (READ_EXECUTE over the subtree): otherwise it would tell what
        a listing refuses to."""
        if not self.is_superuser(caller):
            self._check_dirs([r for r in rows if r["is_dir"]], caller, (_stat.S_IROTH, _stat.S_IXOTH))

    def content_summary(self, path: str, caller: Caller) -> dict:
        rows = self.store.subtree(self.resolve(path, caller)["id"])
        self.check_subtree(rows, caller)
        return summarize(rows)

    # -- files under construction ---------------------------------------
    def create(self, path: str, caller: Caller, now: float, *, overwrite: bool, replication: int,
               block_size: int, mode: int, create_parent: bool, key_for=None,
               complete: bool = False, replaces: int = 0,
               keep_attributes: bool = False) -> tuple[dict, list[int]]:
        """Start writing path: the inode stays invisible until complete().

        With ``complete`` the file is created empty and visible at once (one
        RPC for `touch` or an empty upload). With ``replaces`` (a file id) the
        new file may only take the place of that file: checked here and again
        by complete(), so a file another client put at the path meanwhile (a
        rename over it) is never overwritten unseen (a compare-and-swap, for
        the FUSE mount's read-modify-write commits). With ``keep_attributes`` the
        new file is a new version of the one it replaces (``_inherited``), here and
        again at complete(). Returns (row, blocks to invalidate)."""
        parent, name = self._parent(path, caller, create=create_parent, now=now, new=True)
        existing = self.store.lookup(parent["id"], name)
        self._may_write_name(parent, existing, caller, path, keep_attributes and overwrite)
        if existing is not None:
            if existing["is_dir"]:
                raise errors.DfsIsADirectoryError(path=path)
            if not overwrite:
                raise errors.DfsFileExistsError(path=path)
            self._may_replace(parent, existing, caller, path, keep_attributes)
        if replaces and (existing is None or existing["id"] != replaces or not overwrite):
            raise errors.StaleVersionError(path=path)
        dropped: list[int] = self._check_lease_free(parent["id"], name, caller, now, path)
        replication = replication or self.default_replication
        block_size = block_size or self.default_block_size
        for problem in (config.block_size_problem(block_size), config.replication_problem(replication)):
            if problem:
                raise errors.InvalidArgumentError(problem, path)
        chunk = min(self.chunk_size, block_size)
        while block_size % chunk:
            chunk //= 2
        if key_for is not None:
            # The wrapped key is bound to the inode id, so learn the id first
            # and write the row once.
            file_id = self.store.next_inode_id()
            fields_key = dict(id=file_id, key=key_for(file_id))
        else:
            fields_key = {}
        fields = dict(parent=parent["id"], is_dir=0, mode=mode & 0o7777, owner=caller.user, grp=parent["grp"],
                      mtime=now, ctime=now, replication=replication, block_size=block_size,
                      chunk_size=chunk, length=0, **fields_key)
        if keep_attributes and existing is not None:
            fields.update(self._inherited(existing, caller))
        if complete:
            if existing is not None:
                dropped += self.store.delete_subtree(existing["id"])
            row = self.store.insert(name=name, state="C", **fields)
            self.store.update(parent["id"], mtime=now)
        else:
            row = self.store.insert(name=None, pending_name=name, state="U", overwrite=int(overwrite),
                                    replaces=replaces or None, lease_holder=caller.client_name,
                                    lease_expiry=now + self.lease_limit, **fields)
        return row, dropped

    def _inherited(self, existing: dict, caller: Caller | None) -> dict:
        """What a new version of ``existing`` keeps of it (a FUSE mount's commit: to its
        users it is the same file, written to): mode, owner, group and replication, as
        they are now, so a chmod, chown or setrep made by anyone while it was being
        written holds, as on a local disk (the mount used to restore those it saw at
        open, undoing another client's).

        Set-user-ID, and set-group-ID with group execute, are cleared when the caller
        is neither the file's owner nor the superuser: the content is the caller's,
        and must not run as the owner. Linux clears them at every write without
        CAP_FSETID, the owner's too; here that is the writer's part, at the write (the
        mount does, as the kernel asks it to), since the namenode sees only the commit,
        which comes after a chmod u+s that followed the writes (cp -p, tar -p,
        install -m 4755): cleared here even for the owner, that chmod was undone."""
        mode = existing["mode"]
        if caller is not None and caller.user != existing["owner"] and not self.is_superuser(caller):
            mode &= ~(_stat.S_ISUID | (_stat.S_ISGID if mode & _stat.S_IXGRP else 0))
        return dict(mode=mode, owner=existing["owner"], grp=existing["grp"],
                    replication=existing["replication"])

    def _check_lease_free(self, parent_id: int, name: str, caller: Caller, now: float, path: str) -> list[int]:
        """Refuse to create ``name`` while another client writes it (holds a live lease on a
        file under construction there), as HDFS's AlreadyBeingCreatedException. The same
        client may (a create it retries, a second handle of one process: the last to
        complete wins). A lapsed lease is recovered here, as HDFS's create does: its file
        is removed. -> blocks to invalidate."""
        dropped: list[int] = []
        for row in self.store.pending(parent_id, name):
            if row["lease_holder"] == caller.client_name:
                continue
            # Within a lease period of a restart every lease is live, whatever its stored
            # expiry: its writer has that long to renew (the lease monitor waits as long).
            # Else another client's create right after a restart removed a live writer's file.
            if (row["lease_expiry"] or 0) >= now or now < self.started + self.lease_limit:
                raise errors.AlreadyBeingCreatedError(
                    f"file is being created by another client ({row['lease_holder']})", path)
            dropped += self.store.delete_subtree(row["id"])
        return dropped

    def open_file(self, file_id: int, caller: Caller | None) -> OpenFile:
        row = self.store.get(file_id)
        if row is None or row["state"] != "U":
            raise errors.DfsFileNotFoundError(
                "file is not open for writing (removed, completed or its lease expired)", f"#{file_id}")
        if caller is not None and row["lease_holder"] != caller.client_name:
            raise errors.LeaseError(path=row["pending_name"] or "")
        return OpenFile(row, self._last_blocks(row))

    def _last_blocks(self, row: dict) -> list[BlockRef]:
        tail = self.store.last_blocks(row["id"], OPEN_TAIL)
        off = row["length"] - sum(b["length"] for b in tail)   # uncommitted blocks are 0 long
        blocks = []
        for b in tail:
            blocks.append(BlockRef(b["id"], b["genstamp"], b["length"], bool(b["committed"]), off, b["idx"]))
            off += b["length"]
        return blocks

    def commit_block(self, f: OpenFile, block_id: int, length: int) -> None:
        """Commit any block of the file (a retry may commit one again), looked up by id."""
        ref = next((b for b in f.blocks if b.block_id == block_id), None)
        stored = self.store.block(block_id) if ref is None else None
        if ref is None and (stored is None or stored["inode"] != f.row["id"]):
            raise errors.InvalidArgumentError(f"block {block_id} is not part of this file")
        if length > f.row["block_size"]:
            raise errors.InvalidArgumentError("block longer than the block size")
        before = ref.length if ref is not None else stored["length"]  # type: ignore[index]
        if ref is not None:
            ref.length, ref.committed = length, True
        self.store.set_block(block_id, length, True)
        if length != before:
            f.row["length"] += length - before
            self.store.update(f.row["id"], length=f.row["length"])

    def add_block(self, f: OpenFile, block_id: int, genstamp: int, now: float, draining: int = 0) -> BlockRef:
        """Append a block. Every earlier block must be committed, except the last
        when it is ``draining`` (sent, its acknowledgement not yet read)."""
        pending = [b for b in f.blocks if not b.committed]
        if pending and not (len(pending) == 1 and pending[0] is f.blocks[-1] and pending[0].block_id == draining):
            raise errors.InvalidArgumentError("previous block not committed")
        idx = f.blocks[-1].idx + 1 if f.blocks else 0
        self.store.add_block(f.row["id"], idx, block_id, genstamp)
        self.store.update(f.row["id"], lease_expiry=now + self.lease_limit)
        ref = BlockRef(block_id, genstamp, 0, False, f.row["length"], idx)
        f.blocks.append(ref)
        return ref

    def abandon_block(self, f: OpenFile, block_id: int) -> None:
        if not f.blocks or f.blocks[-1].block_id != block_id:
            raise errors.InvalidArgumentError(f"block {block_id} is not the last block")
        self.store.remove_block(block_id)
        gone = f.blocks.pop()
        if gone.length:
            f.row["length"] -= gone.length
            self.store.update(f.row["id"], length=f.row["length"])
        if not f.blocks:   # those loaded are all gone: the file's last ones are before them
            f.blocks = self._last_blocks(f.row)

    def complete(self, f: OpenFile, caller: Caller | None, now: float,
                 mtime: float | None = None, keep_attributes: bool = False) -> tuple[FileStatus, list[int]]:
        """Give the file its name with its final length and ``mtime`` (default: now); with
        ``keep_attributes``, the attributes the file it replaces has now (``_inherited``),
        or, when the name is empty, the caller's ownership (the mode stays as taken at
        create). Returns (status, blocks to invalidate)."""
        row = f.row
        if mtime is not None:
            _check_time(mtime, row["pending_name"])
        dropped: list[int] = []
        for b in [b for b in f.blocks if not b.committed]:   # 0 long: the length stays
            self.store.remove_block(b.block_id)
            dropped.append(b.block_id)
        length = row["length"]
        parent = self.store.get(row["parent"])
        if parent is None:
            self.store.delete_subtree(row["id"])
            raise errors.DfsFileNotFoundError("parent directory was removed", row["pending_name"])
        existing = self.store.lookup(parent["id"], row["pending_name"])
        path = self._path_of(parent) + row["pending_name"]
        if row["replaces"] and (existing is None or existing["id"] != row["replaces"]):
            raise errors.StaleVersionError(path=path)
        if caller is not None:
            self._may_write_name(parent, existing, caller, path, keep_attributes and bool(row["overwrite"]))
        kept: dict = {}
        if existing is not None:
            if existing["is_dir"]:
                raise errors.DfsIsADirectoryError(path=path)
            if not row["overwrite"]:
                raise errors.DfsFileExistsError(path=path)
            if caller is not None:
                self._may_replace(parent, existing, caller, path, keep_attributes)
            if keep_attributes:
                kept = self._inherited(existing, caller)
            dropped += self.store.delete_subtree(existing["id"])
        elif keep_attributes and caller is not None:
            # Nothing to be a new version of (renamed away meanwhile): a new file, the
            # caller's in its directory's group, whoever owned the one there at create.
            kept = dict(owner=caller.user, grp=parent["grp"])
        self.store.update(row["id"], name=row["pending_name"], pending_name=None, state="C",
                          length=length, mtime=now if mtime is None else mtime, lease_holder=None,
                          lease_expiry=None, **kept)
        self.store.update(parent["id"], mtime=now)
        return self.status(self.store.get(row["id"]), path), dropped  # type: ignore[arg-type]

    def completed_already(self, file_id: int, last: tuple[int, int] | None,
                          previous: tuple[int, int] | None) -> FileStatus | None:
        """A Complete of a file that is already complete, with the same last block (id and
        length; no block at all for ``last`` None) and block before it: a retry the retry
        cache cannot recognise (sent without a call id, or retried after its outcome
        expired). -> the file's status, the first call's outcome, as HDFS answers a
        retried completeFile; None when it is not such a retry."""
        row = self.store.get(file_id)
        if row is None or row["is_dir"] or row["state"] != "C":
            return None
        blocks = [(b["id"], b["length"]) for b in self.store.last_blocks(file_id, 2)]
        if last is None:
            same = not blocks and previous is None
        else:
            same = bool(blocks) and blocks[-1] == tuple(last) and (
                previous is None or len(blocks) > 1 and blocks[-2] == tuple(previous))
        parent = self.store.get(row["parent"]) if same else None
        if parent is None:
            return None
        return self.status(row, self._path_of(parent) + row["name"])

    def _path_of(self, dir_row: dict) -> str:
        names = []
        row: dict | None = dir_row
        while row is not None and row["id"] != ROOT_ID:
            names.append(row["name"])
            row = self.store.get(row["parent"])
        return "/" + "".join(n + "/" for n in reversed(names))

    def renew_leases(self, client_name: str, now: float) -> None:
        for row in self.store.under_construction():
            if row["lease_holder"] == client_name:
                self.store.update(row["id"], lease_expiry=now + self.lease_limit)

    def expired_leases(self, now: float) -> list[int]:
        return [r["id"] for r in self.store.under_construction() if (r["lease_expiry"] or 0) < now]

    def recover_lease(self, file_id: int, now: float) -> tuple[str, list[int]]:
        """A writer vanished without closing: the file is removed.

        A file appears only when its writer closes it (SPEC §4), so the
        blocks it wrote are dropped rather than published as a truncated
        file. Returns (what happened, blocks to invalidate)."""
        row = self.store.get(file_id)
        name = (row or {}).get("pending_name") or f"#{file_id}"
        # Not "removed file": the name, and any file completed at it, is untouched; a reader
        # of the log took a mount's orphaned version for the loss of the user's file.
        return (f"dropped the unfinished version of {name} (never closed; what is at that name is untouched)",
                self.store.delete_subtree(file_id))


def summarize(rows: list[dict]) -> dict:
    """A subtree's content summary (du -s): complete files only."""
    length = files = dirs = space = 0
    for r in rows:
        if r["is_dir"]:
            dirs += 1
        elif r["state"] == "C":
            files += 1
            length += r["length"]
            space += r["length"] * r["replication"]
    return {"length": length, "files": files, "directories": dirs, "space_consumed": space}


def normalize(path: str) -> str:
    return join(split_path(path))


def _check_time(mtime: float, path: str) -> None:
    if problem := config.mtime_problem(mtime):
        raise errors.InvalidArgumentError(f"invalid mtime {mtime}: {problem}", path)
