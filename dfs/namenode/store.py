"""The metadata store: durable inodes and block lists behind one small interface.

``MetaStore`` is the seam for a shared database later (namenode failover);
``SqliteStore`` is the embedded default. Only the namespace calls it, always
under the namesystem lock. Durability: WAL; mutations run inside an open
transaction that ``sync()`` commits, so mutations that pile up while one
commit is fsyncing share the next commit (group commit). Each mutation is
a savepoint in it (``begin_op``/``end_op``/``undo_op``), so one that fails
after writing undoes only its own writes.

A commit is fsynced only if one of its mutations asked for it
(``want_durable``): then the WAL file is fsynced after COMMIT, before any
reply - what synchronous=FULL does, made per commit (SQLite refuses to change
the synchronous level inside a transaction, and the connection runs with
NORMAL). ``commit()`` and ``flush()`` (the fsync) are separate so the
namesystem can fsync outside its lock, as HDFS's logSync does. Steps no
caller has been promised anything about yet - creating a file that stays
invisible until it is completed, allocating its blocks - are written to the
WAL (a SIGKILL of the namenode loses nothing) but not fsynced; the
completing call's fsync covers them, the WAL being one sequential file.
Block ids and genstamps are handed out from durable reservations of
``ID_BATCH``, so a power loss can never make an id that reached a datanode
be given out again.

Schema:
    inode(id, parent, name, is_dir, mode, owner, grp, mtime, ctime,
          replication, block_size, chunk_size, length, state, pending_name,
          overwrite, key, lease_holder, lease_expiry, nchildren, nsubdirs, replaces)
      state: 'C' complete | 'U' under construction. An inode under
      construction has name NULL (invisible to lookups) and pending_name set;
      completing it gives it its name in the same transaction (only while the
      name still holds file ``replaces``, when that is set); its length is
      that of its committed blocks so far. A directory's nchildren/nsubdirs
      count its named entries; triggers keep them.
    block(id, inode, idx, length, genstamp, committed)
    meta(k, v)  counters and cluster identity
    retry_cache(client, call, at, outcome)  the outcome of each recent mutation, by
      the client's call id, written in the mutation's own transaction: a retry of a
      call whose reply was lost (the namenode killed after its commit) is answered
      with it, as HDFS's RetryCache (which is rebuilt from its edit log)
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from dfs import errors

ROOT_ID = 1
ID_BATCH = 1024

# Fault injection for tests, off unless set: while the file this names exists, the
# WAL's fsync fails with EIO (a disk that stops taking writes under the namenode).
_FAIL_FSYNC = os.environ.get("DFS_TEST_FAIL_FSYNC_IF", "")


# Rows come back as tuples of these columns, named in every SELECT (a store made before a
# column was added has it last, so ``*`` would not match): dict(zip()) of a tuple costs a
# quarter of dict() of a sqlite3.Row (0.75 against 2.8 us), and every call reads a few.
INODE_COLUMNS = ("id", "parent", "name", "is_dir", "mode", "owner", "grp", "mtime", "ctime",
                 "replication", "block_size", "chunk_size", "length", "state", "pending_name",
                 "overwrite", "key", "lease_holder", "lease_expiry", "replaces", "nchildren", "nsubdirs")
BLOCK_COLUMNS = ("id", "inode", "idx", "length", "genstamp", "committed")
_INODE = ",".join(INODE_COLUMNS)
_INODE_I = ",".join(f"i.{c}" for c in INODE_COLUMNS)
_SUBTREE_IDS = """WITH RECURSIVE t(id) AS (SELECT ? UNION ALL
                  SELECT inode.id FROM inode JOIN t ON inode.parent=t.id)"""
_SUBTREE = f"{_SUBTREE_IDS} SELECT {_INODE_I} FROM inode i JOIN t USING(id)"
_SUBDIRS = f"""WITH RECURSIVE t(id) AS (SELECT ? UNION ALL
                  SELECT inode.id FROM inode JOIN t ON inode.parent=t.id WHERE inode.is_dir)
               SELECT {_INODE_I} FROM inode i JOIN t USING(id)"""
_BLOCK = ",".join(BLOCK_COLUMNS)


def _inode(r: tuple | None) -> dict | None:
    return dict(zip(INODE_COLUMNS, r, strict=True)) if r is not None else None


def _inodes(rows: Iterable[tuple]) -> list[dict]:
    return [dict(zip(INODE_COLUMNS, r, strict=True)) for r in rows]


def store_error(e: BaseException) -> errors.MetadataStoreError:
    """The one error a client sees when the metadata cannot be written (a full disk)."""
    return errors.MetadataStoreError(f"namenode cannot store its metadata: {e}")


def read_error(e: BaseException, path: str) -> errors.MetadataStoreError:
    """The one error a client sees when the metadata cannot be read (no file descriptor
    left, a failing disk). SQLite says only "unable to open database file", so the OS
    is asked why, by opening the file once more."""
    return errors.MetadataStoreError(f"namenode cannot read its metadata: {e}{_os_reason(path)}")


def _os_reason(path: str) -> str:
    """' (Too many open files)' when opening ``path`` fails now, else ''."""
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as e:
        return f" ({e.strerror})"
    return ""


class MetaStore(Protocol):
    def get(self, inode_id: int) -> dict | None: ...
    def lookup(self, parent: int, name: str) -> dict | None: ...
    def children(self, parent: int, start_after: str = "", limit: int = -1) -> list[dict]: ...
    def count_children(self, parent: int) -> int: ...
    def count_subdirs(self, parent: int) -> int: ...
    def has_pending(self, parent: int) -> bool: ...
    def entry_not_owned_by(self, parent: int, user: str) -> dict | None: ...
    def insert(self, **fields: Any) -> dict: ...
    def next_inode_id(self) -> int: ...
    def update(self, inode_id: int, **fields: Any) -> None: ...
    def delete_subtree(self, inode_id: int) -> list[int]: ...
    def subtree(self, inode_id: int) -> list[dict]: ...
    def subdirs(self, inode_id: int) -> list[dict]: ...
    def snapshot(self) -> Snapshot | None: ...   # see SqliteStore.snapshot
    def blocks(self, inode_id: int) -> list[dict]: ...
    def last_blocks(self, inode_id: int, n: int) -> list[dict]: ...
    def block(self, block_id: int) -> dict | None: ...
    def add_block(self, inode_id: int, idx: int, block_id: int, genstamp: int) -> None: ...
    def set_block(self, block_id: int, length: int, committed: bool) -> None: ...
    def remove_block(self, block_id: int) -> None: ...
    def all_blocks(self) -> Iterable[tuple]: ...
    def under_construction(self) -> list[dict]: ...
    def pending(self, parent: int, name: str) -> list[dict]: ...
    def next_id(self, counter: str) -> int: ...
    def any_wrapped_key(self) -> tuple[bytes, int] | None: ...   # (a file's wrapped key, its id)
    def get_meta(self, key: str) -> str | None: ...
    def recorded_call(self, client: str, call: int) -> bytes | None: ...
    def record_call(self, client: str, call: int, at: float, outcome: bytes) -> None: ...
    def expire_calls(self, before: float, keep: int = -1) -> int: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def want_durable(self) -> None: ...
    def commit(self) -> bool: ...
    def flush(self) -> None: ...
    def sync(self) -> None: ...
    def begin_op(self) -> None: ...
    def end_op(self) -> None: ...
    def undo_op(self) -> bool: ...
    def rollback(self) -> None: ...


class SqliteStore:
    def __init__(self, path: str):
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")   # + an fsync of the WAL per durable commit
        self._wal_path = path + "-wal"
        self._wal_fd = -1
        self._wal_ino = 0
        self._wal_link = ""
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS inode (
              id INTEGER PRIMARY KEY, parent INTEGER, name TEXT, is_dir INTEGER NOT NULL,
              mode INTEGER NOT NULL, owner TEXT NOT NULL, grp TEXT NOT NULL,
              mtime REAL NOT NULL, ctime REAL NOT NULL, replication INTEGER DEFAULT 0,
              block_size INTEGER DEFAULT 0, chunk_size INTEGER DEFAULT 0,
              length INTEGER DEFAULT 0, state TEXT NOT NULL DEFAULT 'C',
              pending_name TEXT, overwrite INTEGER DEFAULT 0, key BLOB,
              lease_holder TEXT, lease_expiry REAL, replaces INTEGER,
              nchildren INTEGER NOT NULL DEFAULT 0, nsubdirs INTEGER NOT NULL DEFAULT 0);
            CREATE UNIQUE INDEX IF NOT EXISTS inode_by_name ON inode(parent, name);
            CREATE INDEX IF NOT EXISTS inode_uc ON inode(state) WHERE state = 'U';
            CREATE INDEX IF NOT EXISTS inode_pending ON inode(parent, pending_name) WHERE state = 'U';
            CREATE TABLE IF NOT EXISTS block (
              id INTEGER PRIMARY KEY, inode INTEGER NOT NULL, idx INTEGER NOT NULL,
              length INTEGER NOT NULL DEFAULT 0, genstamp INTEGER NOT NULL,
              committed INTEGER NOT NULL DEFAULT 0);
            CREATE INDEX IF NOT EXISTS block_by_inode ON block(inode, idx);
            CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);
            CREATE TABLE IF NOT EXISTS retry_cache (
              client TEXT NOT NULL, call INTEGER NOT NULL, at REAL NOT NULL, outcome BLOB NOT NULL,
              PRIMARY KEY (client, call)) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS retry_cache_by_age ON retry_cache(at);
            """
        )
        self._count_children()
        self._sum_open_files()
        if "replaces" not in {r[1] for r in self._db.execute("PRAGMA table_info(inode)")}:
            self._db.execute("ALTER TABLE inode ADD COLUMN replaces INTEGER")   # a store made before it
        # Inode ids are never reused (a file's id is part of its checksum and names the
        # file to its writer): the highest ever given, past deletions and restarts.
        self._last_inode = max(
            int(self._db.execute("SELECT coalesce(max(id), 0) FROM inode").fetchone()[0]),
            int((self._db.execute("SELECT v FROM meta WHERE k='inode_hwm'").fetchone() or ["0"])[0]))
        self._in_tx = False
        self._durable = False                      # the open transaction must be fsynced
        self._ids: dict[str, tuple[int, int]] = {}  # counter -> (next id, last reserved id)

    def _count_children(self) -> None:
        """Keep every directory's count of named entries (and of subdirectories) in its
        own row, maintained by triggers on whatever inserts, deletes, names or moves a
        row: a directory's stat is then O(1), not a scan of its entries (9 ms at
        300,000). A store made before the columns existed gets them, counted once."""
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(inode)")}
        if "nchildren" not in cols:
            self._db.executescript(
                """
                BEGIN IMMEDIATE;
                ALTER TABLE inode ADD COLUMN nchildren INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE inode ADD COLUMN nsubdirs INTEGER NOT NULL DEFAULT 0;
                UPDATE inode SET
                  nchildren = (SELECT count(*) FROM inode c WHERE c.parent = inode.id AND c.name IS NOT NULL),
                  nsubdirs = (SELECT count(*) FROM inode c WHERE c.parent = inode.id AND c.is_dir = 1
                              AND c.name IS NOT NULL)
                  WHERE is_dir = 1;
                COMMIT;
                """)
        self._db.executescript(
            """
            DROP INDEX IF EXISTS inode_subdirs;
            CREATE TRIGGER IF NOT EXISTS inode_counted_in AFTER INSERT ON inode WHEN NEW.name IS NOT NULL
            BEGIN
              UPDATE inode SET nchildren = nchildren + 1, nsubdirs = nsubdirs + NEW.is_dir WHERE id = NEW.parent;
            END;
            CREATE TRIGGER IF NOT EXISTS inode_counted_out AFTER DELETE ON inode WHEN OLD.name IS NOT NULL
            BEGIN
              UPDATE inode SET nchildren = nchildren - 1, nsubdirs = nsubdirs - OLD.is_dir WHERE id = OLD.parent;
            END;
            CREATE TRIGGER IF NOT EXISTS inode_counted_moved AFTER UPDATE OF name, parent ON inode
            BEGIN
              UPDATE inode SET nchildren = nchildren - 1, nsubdirs = nsubdirs - OLD.is_dir
                WHERE id = OLD.parent AND OLD.name IS NOT NULL;
              UPDATE inode SET nchildren = nchildren + 1, nsubdirs = nsubdirs + NEW.is_dir
                WHERE id = NEW.parent AND NEW.name IS NOT NULL;
            END;
            """)

    def _sum_open_files(self) -> None:
        """A file under construction keeps the length of its committed blocks in its row
        (AddBlock and Complete then read only its last blocks: reading them all made a
        write of n blocks cost n^2). A store written by a namenode that kept it 0 until
        Complete gets it summed here, at every start: it is derived, so always right to."""
        self._db.execute("UPDATE inode SET length = (SELECT coalesce(sum(b.length), 0) FROM block b "
                         "WHERE b.inode = inode.id) WHERE state = 'U'")

    # -- transactions ---------------------------------------------------
    def _w(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        if not self._in_tx or not self._db.in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
            self._in_tx = True
        return self._db.execute(sql, args)

    def want_durable(self) -> None:
        """The open transaction holds a mutation that must be on disk before its reply."""
        self._durable = True

    def commit(self) -> bool:
        """COMMIT every mutation applied so far. -> True if one of them wants to be
        on disk before its reply: then ``flush()`` is owed before any reply.

        A COMMIT that fails (SQLITE_FULL: "database or disk is full", an I/O error)
        is rolled back - nothing of the transaction is kept, on disk or in this
        connection - and raises MetadataStoreError; the caller restores whatever
        it changed in memory for those mutations."""
        if not self._in_tx:
            return False
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            self._abort()
            raise store_error(e) from None
        durable, self._in_tx, self._durable = self._durable, False, False
        return durable and self._wal_path != ":memory:-wal"

    def flush(self) -> None:
        """fdatasync the WAL, as SQLite itself syncs it: every commit made so far is
        then durable. Needs no lock against mutations being applied meanwhile (they
        write an open transaction, or frames a checkpoint has made redundant); the
        caller keeps commits from running concurrently with it."""
        try:
            if _FAIL_FSYNC and os.path.exists(_FAIL_FSYNC):
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            os.fdatasync(self._wal())
        except OSError as e:
            raise store_error(e) from None

    def _abort(self) -> None:
        """Drop the open transaction, whatever state a failed statement left it in."""
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        self._in_tx = self._durable = False
        self._ids.clear()   # reservations made in the rolled-back transaction are gone

    def sync(self) -> None:
        """Commit every mutation applied so far; fsync (once for all) if any wants it."""
        if self.commit():
            self.flush()

    def _wal(self) -> int:
        """A descriptor of the WAL file, reopened if SQLite ever replaced the file.
        Whether it did is read from the descriptor's /proc link (it names another
        path, or ends in " (deleted)"), not with a stat(): a stat marks the file's
        timestamps as seen, after which (Linux 6.13+, multigrain timestamps) every
        write stamps a new fine-grained mtime, and fdatasync then writes the inode
        as well as the data - on this VM's ext4, 149-155 us per WAL fsync instead of
        113-114 (in-process creates, medians of 2,000)."""
        if self._wal_fd >= 0:
            try:
                if os.readlink(f"/proc/self/fd/{self._wal_fd}") == self._wal_link:
                    return self._wal_fd
            except OSError:   # no /proc: compare inode numbers instead
                if os.stat(self._wal_path).st_ino == self._wal_ino:
                    return self._wal_fd
            os.close(self._wal_fd)
            self._wal_fd = -1
        self._wal_fd = os.open(self._wal_path, os.O_RDONLY)
        self._wal_ino = os.fstat(self._wal_fd).st_ino
        try:
            self._wal_link = os.readlink(f"/proc/self/fd/{self._wal_fd}")
        except OSError:
            self._wal_link = ""
        return self._wal_fd

    # One mutation inside the shared transaction: a savepoint, so that a mutation that
    # fails after writing undoes its own writes only, not those of mutations applied
    # before it whose callers are waiting for the same commit.
    def begin_op(self) -> None:
        if not self._in_tx:
            self._db.execute("BEGIN IMMEDIATE")
            self._in_tx = True
        self._db.execute("SAVEPOINT op")

    def end_op(self) -> None:
        self._db.execute("RELEASE op")

    def undo_op(self) -> bool:
        """Undo this mutation's writes. -> False if the whole open transaction is gone
        instead: a statement that fails with SQLITE_FULL or an I/O error may make
        SQLite roll back the transaction itself, taking other mutations with it."""
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK TO op")
                self._db.execute("RELEASE op")
                self._ids.clear()   # reload id reservations as the savepoint left them
                return True
            except sqlite3.Error:
                pass
        self._abort()
        return False

    def rollback(self) -> None:
        if self._in_tx:
            self._abort()

    def close(self) -> None:
        self.want_durable()
        self.sync()
        self._db.close()
        if self._wal_fd >= 0:
            os.close(self._wal_fd)
            self._wal_fd = -1

    # -- inodes ---------------------------------------------------------
    def get(self, inode_id: int) -> dict | None:
        return _inode(self._db.execute(f"SELECT {_INODE} FROM inode WHERE id=?", (inode_id,)).fetchone())

    def lookup(self, parent: int, name: str) -> dict | None:
        return _inode(self._db.execute(
            f"SELECT {_INODE} FROM inode WHERE parent=? AND name=?", (parent, name)).fetchone())

    def children(self, parent: int, start_after: str = "", limit: int = -1) -> list[dict]:
        rows = self._db.execute(
            f"SELECT {_INODE} FROM inode WHERE parent=? AND name IS NOT NULL AND name>? ORDER BY name LIMIT ?",
            (parent, start_after, limit)).fetchall()
        return _inodes(rows)

    def count_children(self, parent: int) -> int:
        r = self._db.execute("SELECT nchildren FROM inode WHERE id=?", (parent,)).fetchone()
        return r[0] if r else 0

    def count_subdirs(self, parent: int) -> int:
        r = self._db.execute("SELECT nsubdirs FROM inode WHERE id=?", (parent,)).fetchone()
        return r[0] if r else 0

    def next_inode_id(self) -> int:
        """The id the next insert would get (call under the namesystem lock)."""
        return self._last_inode + 1

    def insert(self, **fields: Any) -> dict:
        """Add an inode. -> its row as stored. (Read back with a SELECT, not RETURNING:
        that needs SQLite 3.35, newer than some systems' Python links, e.g. RHEL 9's 3.34.)"""
        if "id" not in fields:
            fields = {"id": self._last_inode + 1, **fields}
        cols = ",".join(fields)
        marks = ",".join("?" * len(fields))
        cur = self._w(f"INSERT INTO inode ({cols}) VALUES ({marks})", tuple(fields.values()))
        self._last_inode = max(self._last_inode, int(cur.lastrowid))
        return self.get(int(cur.lastrowid))  # type: ignore[return-value]

    def update(self, inode_id: int, **fields: Any) -> None:
        sets = ",".join(f"{k}=?" for k in fields)
        self._w(f"UPDATE inode SET {sets} WHERE id=?", (*fields.values(), inode_id))

    def subtree(self, inode_id: int) -> list[dict]:
        return _inodes(self._db.execute(_SUBTREE, (inode_id,)).fetchall())

    def subdirs(self, inode_id: int) -> list[dict]:
        """The directories of ``inode_id``'s subtree (itself included), without its files."""
        return _inodes(self._db.execute(_SUBDIRS, (inode_id,)).fetchall())

    def snapshot(self) -> Snapshot | None:
        """A read of the namespace as last committed, on a connection of its own (WAL
        readers do not wait for the writer, nor it for them): a whole-tree read (fsck,
        du -s of a million files: seconds) needs no namesystem lock, which every other
        call would wait for past its deadline. None for an in-memory store."""
        return None if self._wal_path == ":memory:-wal" else Snapshot(self._wal_path[:-4])

    def delete_subtree(self, inode_id: int) -> list[int]:
        # ids only: whole rows made into dicts were two thirds of an rm -r's time
        ids = [r[0] for r in self._db.execute(f"{_SUBTREE_IDS} SELECT id FROM t", (inode_id,))]
        blocks: list[int] = []
        for i in range(0, len(ids), 500):
            part = ids[i:i + 500]
            marks = ",".join("?" * len(part))
            blocks += [r[0] for r in self._db.execute(
                f"SELECT id FROM block WHERE inode IN ({marks})", part)]
            self._w(f"DELETE FROM block WHERE inode IN ({marks})", tuple(part))
            self._w(f"DELETE FROM inode WHERE id IN ({marks})", tuple(part))
        if self._last_inode in ids:   # max(id) no longer shows it after a restart
            self.set_meta("inode_hwm", str(self._last_inode))
        return blocks

    def under_construction(self) -> list[dict]:
        return _inodes(self._db.execute(f"SELECT {_INODE} FROM inode WHERE state='U'"))

    def has_pending(self, parent: int) -> bool:
        """Whether any file is being written in directory ``parent`` (not counted by nchildren)."""
        return self._db.execute(
            "SELECT 1 FROM inode WHERE state='U' AND parent=? LIMIT 1", (parent,)).fetchone() is not None

    def entry_not_owned_by(self, parent: int, user: str) -> dict | None:
        """An entry of directory ``parent``, or a file being written in it, whose owner is
        not ``user``; None when it has none. (A scan of its entries in the database, no
        rows made into dicts: a recursive delete asks it of every sticky directory.)"""
        return _inode(self._db.execute(
            f"SELECT {_INODE} FROM inode WHERE parent=? AND owner<>? LIMIT 1", (parent, user)).fetchone())

    def pending(self, parent: int, name: str) -> list[dict]:
        """Files under construction that will take ``name`` in ``parent`` when completed."""
        return _inodes(self._db.execute(
            f"SELECT {_INODE} FROM inode WHERE state='U' AND parent=? AND pending_name=?", (parent, name)))

    # -- blocks ---------------------------------------------------------
    def blocks(self, inode_id: int) -> list[dict]:
        return [dict(zip(BLOCK_COLUMNS, r, strict=True)) for r in self._db.execute(
            f"SELECT {_BLOCK} FROM block WHERE inode=? ORDER BY idx", (inode_id,))]

    def last_blocks(self, inode_id: int, n: int) -> list[dict]:
        """The file's last ``n`` blocks, in order (read through the index, whatever its size)."""
        rows = self._db.execute(f"SELECT {_BLOCK} FROM block WHERE inode=? ORDER BY idx DESC LIMIT ?",
                                (inode_id, n)).fetchall()
        return [dict(zip(BLOCK_COLUMNS, r, strict=True)) for r in reversed(rows)]

    def block(self, block_id: int) -> dict | None:
        r = self._db.execute(f"SELECT {_BLOCK} FROM block WHERE id=?", (block_id,)).fetchone()
        return dict(zip(BLOCK_COLUMNS, r, strict=True)) if r is not None else None

    def add_block(self, inode_id: int, idx: int, block_id: int, genstamp: int) -> None:
        self._w("INSERT INTO block (id, inode, idx, genstamp) VALUES (?,?,?,?)",
                (block_id, inode_id, idx, genstamp))

    def set_block(self, block_id: int, length: int, committed: bool) -> None:
        self._w("UPDATE block SET length=?, committed=? WHERE id=?", (length, int(committed), block_id))

    def remove_block(self, block_id: int) -> None:
        self._w("DELETE FROM block WHERE id=?", (block_id,))

    def all_blocks(self) -> Iterable[tuple]:
        """(block_id, inode, genstamp, length, replication, committed) for every block: the
        blocks of complete files, and those of unfinished files their writer committed (they
        are repaired like any other; only a block still being written is not)."""
        return self._db.execute(
            """SELECT b.id, b.inode, b.genstamp, b.length, i.replication, i.state='C' OR b.committed=1
               FROM block b JOIN inode i ON i.id=b.inode""").fetchall()

    def block_owner(self, block_id: int) -> dict | None:
        return _inode(self._db.execute(
            f"SELECT {_INODE_I} FROM block b JOIN inode i ON i.id=b.inode WHERE b.id=?", (block_id,)).fetchone())

    # -- counters -------------------------------------------------------
    def next_id(self, counter: str) -> int:
        """A never-reused id. The stored value is the highest id reserved so far."""
        nxt, reserved = self._ids.get(counter, (0, 0))
        if not nxt:
            reserved = int(self.get_meta(counter) or "0")
            nxt = reserved + 1
        if nxt > reserved:
            reserved = nxt + ID_BATCH - 1
            self.set_meta(counter, str(reserved))
            self.want_durable()
        self._ids[counter] = (nxt + 1, reserved)
        return nxt

    def any_wrapped_key(self) -> tuple[bytes, int] | None:
        r = self._db.execute("SELECT key, id FROM inode WHERE length(key) > 0 LIMIT 1").fetchone()
        return (bytes(r[0]), r[1]) if r else None

    def get_meta(self, key: str) -> str | None:
        r = self._db.execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
        return r[0] if r else None

    def set_meta(self, key: str, value: str) -> None:
        self._w("INSERT INTO meta(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
                (key, value))

    # -- retry cache --------------------------------------------------
    def recorded_call(self, client: str, call: int) -> bytes | None:
        r = self._db.execute("SELECT outcome FROM retry_cache WHERE client=? AND call=?",
                             (client, call)).fetchone()
        return r[0] if r else None

    def record_call(self, client: str, call: int, at: float, outcome: bytes) -> None:
        self._w("INSERT OR REPLACE INTO retry_cache(client, call, at, outcome) VALUES (?,?,?,?)",
                (client, call, at, outcome))

    def expire_calls(self, before: float, keep: int = -1) -> int:
        """Forget outcomes recorded before ``before``, and all but the newest ``keep``."""
        if keep >= 0:
            r = self._db.execute("SELECT at FROM retry_cache ORDER BY at DESC LIMIT 1 OFFSET ?",
                                 (keep,)).fetchone()
            if r is not None:
                before = max(before, r[0] + 1e-6)
        old = self._db.execute("SELECT 1 FROM retry_cache WHERE at < ? LIMIT 1", (before,)).fetchone()
        if old is None:
            return 0
        return self._w("DELETE FROM retry_cache WHERE at < ?", (before,)).rowcount

    def stats(self) -> tuple[int, int]:
        files = self._db.execute("SELECT count(*) FROM inode WHERE is_dir=0 AND state='C'").fetchone()[0]
        dirs = self._db.execute("SELECT count(*) FROM inode WHERE is_dir=1").fetchone()[0]
        return files, dirs


class Snapshot:
    """``with store.snapshot() as snap``: one read transaction on a read-only
    connection, so the subtree and its blocks are of the same committed state."""

    def __init__(self, path: str):
        self._path = path
        self._db: sqlite3.Connection | None = None

    def __enter__(self) -> Snapshot:
        # A URI (for mode=ro): the path quoted, or a data dir named with '#', '?' or '%'
        # would open another file.
        uri = f"file:{urllib.parse.quote(os.path.abspath(self._path))}?mode=ro"
        try:
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
            self._db.execute("BEGIN")
        except sqlite3.OperationalError as e:   # out of file descriptors: a reply, not an internal error
            self._close()
            raise read_error(e, self._path) from None
        return self

    def __exit__(self, *exc) -> None:
        self._close()   # ends the read transaction

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The first read opens the WAL and its index: it fails as the connect may."""
        assert self._db is not None
        try:
            yield self._db
        except sqlite3.OperationalError as e:
            raise read_error(e, self._path) from None

    def subtree(self, inode_id: int) -> list[dict]:
        with self._reading() as db:
            return _inodes(db.execute(_SUBTREE, (inode_id,)).fetchall())

    def blocks_under(self, inode_id: int) -> dict[int, list[dict]]:
        """Every block of the files under ``inode_id``, by file, in order."""
        out: dict[int, list[dict]] = {}
        cols = ",".join(f"block.{c}" for c in BLOCK_COLUMNS)
        with self._reading() as db:
            for r in db.execute(f"{_SUBTREE_IDS} SELECT {cols} FROM block JOIN t ON block.inode=t.id "
                                "ORDER BY block.inode, block.idx", (inode_id,)):
                b = dict(zip(BLOCK_COLUMNS, r, strict=True))
                out.setdefault(b["inode"], []).append(b)
        return out
