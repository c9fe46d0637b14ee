"""Namespace rules over an in-memory SqliteStore: paths, directories, rename,
files under construction, leases, permissions, and store durability."""

from __future__ import annotations

import sqlite3

import pytest

from dfs import errors
from dfs.namenode.namespace import (
    LEASE_SOFT_LIMIT,
    MAX_NAME,
    MAX_PATH,
    Caller,
    Namespace,
    check_principal,
    normalize,
    split_path,
)
from dfs.namenode.store import SqliteStore

ROOT = Caller("root", ("supergroup",), client_name="root-client")
ALICE = Caller("alice", ("users",), client_name="alice-1")
ALICE2 = Caller("alice", ("users",), client_name="alice-2")
BOB = Caller("bob", ("users",), client_name="bob-1")
EVE = Caller("eve", ("others",), client_name="eve-1")
BS = 64 * 1024


@pytest.fixture
def ns() -> Namespace:
    return Namespace(SqliteStore(":memory:"), superuser="root")


def names(ns: Namespace, path: str, caller: Caller = ROOT) -> list[str]:
    _, entries, _ = ns.list(path, caller)
    return [e.path.rsplit("/", 1)[-1] for e in entries]


def create(ns: Namespace, path: str, caller: Caller = ROOT, now: float = 1.0, **kw) -> dict:
    """Namespace.create with test defaults; returns the new row."""
    row, dropped = create_full(ns, path, caller, now, **kw)
    assert dropped == []
    return row


def create_full(
    ns: Namespace,
    path: str,
    caller: Caller = ROOT,
    now: float = 1.0,
    *,
    overwrite: bool = False,
    create_parent: bool = False,
    replication: int = 3,
    mode: int = 0o644,
    block_size: int = BS,
    **kw,
) -> tuple[dict, list[int]]:
    return ns.create(
        path,
        caller,
        now,
        overwrite=overwrite,
        replication=replication,
        block_size=block_size,
        mode=mode,
        create_parent=create_parent,
        **kw,
    )


_next_block = [1000]


def write_file(
    ns: Namespace, path: str, lengths: list[int], caller: Caller = ROOT, now: float = 1.0, **kw
) -> tuple[list[int], object]:
    """create + add/commit blocks + complete; returns (block ids, status)."""
    row = create(ns, path, caller, now, **kw)
    f = ns.open_file(row["id"], caller)
    ids = []
    for n in lengths:
        _next_block[0] += 1
        bid = _next_block[0]
        ns.add_block(f, bid, 1, now)
        ns.commit_block(f, bid, n)
        ids.append(bid)
    st, dropped = ns.complete(f, caller, now)
    assert dropped == [] or kw.get("overwrite")
    return ids, st


# -- paths ---------------------------------------------------------------------


def test_split_path_good():
    assert split_path("/") == []
    assert split_path("/a") == ["a"]
    assert split_path("/a/b/c") == ["a", "b", "c"]
    assert split_path("/a/b/") == ["a", "b"]
    assert split_path("/ü/名前 with space") == ["ü", "名前 with space"]
    assert split_path("/" + "x" * MAX_NAME) == ["x" * MAX_NAME]
    assert normalize("/a/b/") == "/a/b"


@pytest.mark.parametrize(
    "bad",
    ["", "a", "a/b", "./a", "/a/../b", "/..", "/.", "/a/./b", "//", "/a//b", "//a", "/a\0b", "/\0"],
)
def test_split_path_rejects(bad):
    with pytest.raises(errors.InvalidPathError):
        split_path(bad)


def test_split_path_rejects_non_str():
    with pytest.raises(errors.InvalidPathError):
        split_path(b"/a")  # type: ignore[arg-type]


def test_name_too_long():
    with pytest.raises(errors.NameTooLongError):
        split_path("/" + "x" * (MAX_NAME + 1))
    # the limit is in bytes, not characters
    with pytest.raises(errors.NameTooLongError):
        split_path("/" + "é" * 128)
    assert split_path("/" + "é" * 127) == ["é" * 127]
    with pytest.raises(errors.NameTooLongError):
        split_path("/a" * 3000, new=True)
    with pytest.raises(errors.NameTooLongError):   # bytes, not characters
        split_path("/é" * 1400, new=True)
    assert len(split_path("/a" * 3000)) == 3000    # an existing path is found at any length


def test_a_rename_that_takes_files_past_max_path_leaves_them_reachable(ns):
    deep = "/d" + "".join(f"/{i:0200d}" for i in range(20))     # ~4.0 KB
    ns.mkdir(deep, ROOT, 1.0, parents=True)
    create(ns, deep + "/f")
    ns.mkdir("/" + "z" * 250, ROOT, 1.0)
    ns.rename("/d", "/" + "z" * 250 + "/d", ROOT, 1.0)
    moved = "/" + "z" * 250 + deep
    assert len(moved) > MAX_PATH and ns.stat(moved, ROOT).path == moved
    assert ns.list(moved, ROOT)[0].path == moved
    with pytest.raises(errors.NameTooLongError):                 # but nothing new is made there
        create(ns, moved + "/g")
    assert issubclass(errors.NameTooLongError, errors.InvalidPathError)


def test_ops_validate_paths(ns):
    with pytest.raises(errors.InvalidPathError):
        ns.mkdir("rel", ROOT, 1.0)
    with pytest.raises(errors.InvalidPathError):
        ns.stat("/a/../b", ROOT)
    with pytest.raises(errors.NameTooLongError):
        create(ns, "/" + "n" * 300)


# -- directories -----------------------------------------------------------------


def test_root_exists(ns):
    st = ns.stat("/", ROOT)
    assert st.is_dir and st.path == "/" and st.owner == "root"


def test_mkdir(ns):
    ns.chmod("/", 0o777, ROOT)
    st = ns.mkdir("/a", ALICE, 5.0, mode=0o750)
    assert (
        st.is_dir
        and st.path == "/a"
        and st.owner == "alice"
        and st.mode == 0o750
        and st.mtime == 5.0
    )
    assert ns.stat("/", ROOT).mtime == 5.0
    assert ns.stat("/a", ALICE).is_dir


def test_directory_status_counts_entries_and_subdirectories(ns):
    ns.mkdir("/d/a/deep", ROOT, 1.0, parents=True)
    ns.mkdir("/d/b", ROOT, 1.0)
    create_full(ns, "/d/f", complete=True)
    create_full(ns, "/d/pending", complete=False)   # invisible until complete
    st = ns.stat("/d", ROOT)
    assert (st.children, st.subdirs) == (3, 2)
    assert (ns.stat("/d/a", ROOT).children, ns.stat("/d/a", ROOT).subdirs) == (1, 1)
    assert ns.stat("/d/f", ROOT).subdirs == 0
    ns.delete("/d/b", ROOT, 2.0)
    assert ns.stat("/d", ROOT).subdirs == 1


def test_mkdir_without_parents_needs_parent(ns):
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.mkdir("/x/y", ROOT, 1.0)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat("/x", ROOT)


def test_mkdir_parents(ns):
    st = ns.mkdir("/x/y/z", ROOT, 1.0, parents=True)
    assert st.path == "/x/y/z"
    for p in ("/x", "/x/y", "/x/y/z"):
        assert ns.stat(p, ROOT).is_dir
    # idempotent with parents
    assert ns.mkdir("/x/y/z", ROOT, 2.0, parents=True).inode_id == st.inode_id
    assert ns.mkdir("/", ROOT, 2.0, parents=True).path == "/"


def test_mkdir_existing(ns):
    ns.mkdir("/a", ROOT, 1.0)
    with pytest.raises(errors.DfsFileExistsError):
        ns.mkdir("/a", ROOT, 1.0)
    with pytest.raises(errors.DfsFileExistsError):
        ns.mkdir("/", ROOT, 1.0)
    write_file(ns, "/f", [10])
    with pytest.raises(errors.DfsFileExistsError):
        ns.mkdir("/f", ROOT, 1.0)
    with pytest.raises(errors.DfsFileExistsError):
        ns.mkdir("/f", ROOT, 1.0, parents=True)


def test_mkdir_under_file(ns):
    write_file(ns, "/f", [10])
    with pytest.raises(errors.DfsNotADirectoryError):
        ns.mkdir("/f/x", ROOT, 1.0)
    with pytest.raises(errors.DfsNotADirectoryError):
        ns.mkdir("/f/x/y", ROOT, 1.0, parents=True)
    with pytest.raises(errors.DfsNotADirectoryError):
        ns.stat("/f/x", ROOT)


# -- listing ---------------------------------------------------------------------


def test_list_sorted_and_paginated(ns):
    ns.mkdir("/d", ROOT, 1.0)
    wanted = ["b", "a", "c10", "c2", "Z", "e.txt"]
    for n in wanted:
        if n.endswith(".txt"):
            write_file(ns, f"/d/{n}", [3, 4])
        else:
            ns.mkdir(f"/d/{n}", ROOT, 1.0)
    st, entries, more = ns.list("/d", ROOT)
    assert st.path == "/d" and st.children == len(wanted) and not more
    assert [e.path for e in entries] == ["/d/" + n for n in sorted(wanted)]
    f = [e for e in entries if e.path == "/d/e.txt"][0]
    assert f.type == "file" and f.size == 7

    seen, after = [], ""
    while True:
        _, page, more = ns.list("/d/", ROOT, start_after=after, limit=2)
        seen += [e.path.rsplit("/", 1)[1] for e in page]
        assert len(page) <= 2
        if not more:
            break
        after = seen[-1]
    assert seen == sorted(wanted)
    _, page, more = ns.list("/d", ROOT, start_after="c2", limit=10)
    assert [e.path for e in page] == ["/d/e.txt"] and not more
    _, page, more = ns.list("/d", ROOT, limit=len(wanted))
    assert len(page) == len(wanted) and not more


def test_list_root_and_file(ns):
    ns.mkdir("/a", ROOT, 1.0)
    assert [e.path for e in ns.list("/", ROOT)[1]] == ["/a"]
    write_file(ns, "/a/f", [5])
    st, entries, more = ns.list("/a/f", ROOT)
    assert entries == [st] and st.type == "file" and not more
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.list("/nope", ROOT)


# -- delete ----------------------------------------------------------------------


def test_delete_file_returns_blocks(ns):
    ids, _ = write_file(ns, "/f", [10, 20])
    assert sorted(ns.delete("/f", ROOT, 2.0)) == sorted(ids)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat("/f", ROOT)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.delete("/f", ROOT, 2.0)


def test_delete_dir(ns):
    ns.mkdir("/d/e", ROOT, 1.0, parents=True)
    ids1, _ = write_file(ns, "/d/f1", [1, 2])
    ids2, _ = write_file(ns, "/d/e/f2", [3])
    with pytest.raises(errors.DirectoryNotEmptyError):
        ns.delete("/d", ROOT, 2.0)
    assert ns.stat("/d/e/f2", ROOT).size == 3
    assert sorted(ns.delete("/d", ROOT, 2.0, recursive=True)) == sorted(ids1 + ids2)
    for p in ("/d", "/d/e", "/d/f1", "/d/e/f2"):
        with pytest.raises(errors.DfsFileNotFoundError):
            ns.stat(p, ROOT)
    ns.mkdir("/empty", ROOT, 1.0)
    assert ns.delete("/empty", ROOT, 1.0) == []


def test_delete_dir_holding_only_a_file_being_written_is_not_empty(ns):
    """A file under construction is a child (as in HDFS): rm without -r refuses."""
    ns.mkdir("/d", ROOT, 1.0)
    row = create(ns, "/d/f")
    f = ns.open_file(row["id"], ROOT)
    ns.add_block(f, 31, 1, 1.0)
    assert ns.stat("/d", ROOT).children == 0          # still invisible to listings
    with pytest.raises(errors.DirectoryNotEmptyError):
        ns.delete("/d", ROOT, 2.0)
    ns.mkdir("/e", ROOT, 1.0)
    with pytest.raises(errors.DirectoryNotEmptyError):  # nor replaced by a rename
        ns.rename("/e", "/d", ROOT, 2.0, overwrite=True)
    ns.commit_block(f, 31, 5)
    st, _ = ns.complete(f, ROOT, 3.0)                 # the writer was not cut off
    assert st.path == "/d/f" and st.size == 5
    assert ns.delete("/d", ROOT, 4.0, recursive=True) == [31]


def test_delete_root_refused(ns):
    with pytest.raises(errors.InvalidPathError):
        ns.delete("/", ROOT, 1.0, recursive=True)


# -- rename ----------------------------------------------------------------------


def test_rename_file(ns):
    ids, st0 = write_file(ns, "/a", [7])
    ns.mkdir("/d", ROOT, 1.0)
    st, dropped = ns.rename("/a", "/d/b", ROOT, 3.0)
    assert dropped == [] and st.path == "/d/b" and st.size == 7 and st.inode_id == st0.inode_id
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat("/a", ROOT)
    assert ns.stat("/d/b", ROOT).size == 7
    assert ns.stat("/d", ROOT).mtime == 3.0 and ns.stat("/", ROOT).mtime == 3.0


def test_rename_dir_moves_subtree(ns):
    ns.mkdir("/a/b", ROOT, 1.0, parents=True)
    write_file(ns, "/a/b/f", [4])
    ns.rename("/a", "/z", ROOT, 2.0)
    assert ns.stat("/z/b/f", ROOT).size == 4
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat("/a", ROOT)


def test_rename_into_own_subtree_refused(ns):
    ns.mkdir("/a/b", ROOT, 1.0, parents=True)
    with pytest.raises(errors.InvalidArgumentError):
        ns.rename("/a", "/a/b/c", ROOT, 1.0)
    with pytest.raises(errors.InvalidArgumentError):
        ns.rename("/a", "/a/x", ROOT, 1.0)
    assert ns.stat("/a/b", ROOT).is_dir
    # a sibling that merely shares a prefix is fine
    assert ns.rename("/a", "/ab", ROOT, 1.0)[0].path == "/ab"


def test_rename_to_itself_is_noop(ns):
    write_file(ns, "/f", [1])
    st, dropped = ns.rename("/f", "/f", ROOT, 1.0)
    assert st.path == "/f" and dropped == []


def test_rename_root_refused(ns):
    ns.mkdir("/a", ROOT, 1.0)
    with pytest.raises(errors.InvalidPathError):
        ns.rename("/", "/a/b", ROOT, 1.0)
    with pytest.raises(errors.InvalidPathError):
        ns.rename("/a", "/", ROOT, 1.0)


def test_rename_missing(ns):
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.rename("/nope", "/x", ROOT, 1.0)
    write_file(ns, "/f", [1])
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.rename("/f", "/no/dir/x", ROOT, 1.0)
    assert ns.stat("/f", ROOT).size == 1


def test_rename_over_existing_file(ns):
    ids_a, _ = write_file(ns, "/a", [1])
    ids_b, _ = write_file(ns, "/b", [2, 3])
    with pytest.raises(errors.DfsFileExistsError):
        ns.rename("/a", "/b", ROOT, 1.0)
    assert ns.stat("/a", ROOT).size == 1 and ns.stat("/b", ROOT).size == 5
    st, dropped = ns.rename("/a", "/b", ROOT, 2.0, overwrite=True)
    assert sorted(dropped) == sorted(ids_b)
    assert st.size == 1 and ns.stat("/b", ROOT).size == 1
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat("/a", ROOT)
    assert ns.delete("/b", ROOT, 3.0) == ids_a


def test_rename_type_conflicts(ns):
    write_file(ns, "/f", [1])
    ns.mkdir("/d", ROOT, 1.0)
    ns.mkdir("/full/x", ROOT, 1.0, parents=True)
    with pytest.raises(errors.DfsIsADirectoryError):
        ns.rename("/f", "/d", ROOT, 1.0, overwrite=True)
    with pytest.raises(errors.DfsNotADirectoryError):
        ns.rename("/d", "/f", ROOT, 1.0, overwrite=True)
    with pytest.raises(errors.DirectoryNotEmptyError):
        ns.rename("/d", "/full", ROOT, 1.0, overwrite=True)
    with pytest.raises(errors.DfsFileExistsError):
        ns.rename("/full", "/d", ROOT, 1.0)
    st, dropped = ns.rename("/full", "/d", ROOT, 1.0, overwrite=True)  # empty dir replaced
    assert dropped == [] and ns.stat("/d/x", ROOT).is_dir


# -- files under construction -------------------------------------------------------


def test_create_invisible_until_complete(ns):
    ns.chmod("/", 0o777, ROOT)
    row = create(ns, "/f", ALICE2, 1.0)
    assert row["state"] == "U" and row["name"] is None and row["pending_name"] == "f"
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat("/f", ROOT)
    assert names(ns, "/") == []
    assert ns.stat("/", ROOT).children == 0

    f = ns.open_file(row["id"], ALICE2)
    assert f.blocks == []
    b1 = ns.add_block(f, 11, 1, 2.0)
    assert b1.offset == 0
    ns.commit_block(f, 11, BS)
    b2 = ns.add_block(f, 12, 2, 2.0)
    assert b2.offset == BS
    ns.commit_block(f, 12, 100)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat("/f", ROOT)
    st, dropped = ns.complete(f, ALICE2, 9.0)
    assert dropped == []
    assert st.path == "/f" and st.size == BS + 100 and st.mtime == 9.0 and st.owner == "alice"
    assert ns.stat("/f", ROOT) == st
    assert names(ns, "/") == ["f"]
    # reopened block list carries offsets
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.open_file(row["id"], ALICE2)


def test_complete_drops_uncommitted_last_block(ns):
    row = create(ns, "/f")
    f = ns.open_file(row["id"], ROOT)
    ns.add_block(f, 21, 1, 1.0)
    ns.commit_block(f, 21, 50)
    ns.add_block(f, 22, 1, 1.0)
    st, dropped = ns.complete(f, ROOT, 2.0)
    assert dropped == [22] and st.size == 50
    assert [b["id"] for b in ns.store.blocks(st.inode_id)] == [21]


def test_open_file_lists_blocks_with_offsets(ns):
    row = create(ns, "/f")
    f = ns.open_file(row["id"], ROOT)
    ns.add_block(f, 31, 1, 1.0)
    ns.commit_block(f, 31, 1000)
    ns.add_block(f, 32, 1, 1.0)
    again = ns.open_file(row["id"], ROOT)
    assert [(b.block_id, b.offset, b.committed) for b in again.blocks] == [
        (31, 0, True),
        (32, 1000, False),
    ]


def test_create_existing(ns):
    write_file(ns, "/f", [5])
    with pytest.raises(errors.DfsFileExistsError):
        create(ns, "/f")
    ns.mkdir("/d", ROOT, 1.0)
    with pytest.raises(errors.DfsIsADirectoryError):
        create(ns, "/d", overwrite=True)


def test_create_overwrite_replaces_at_complete(ns):
    old_ids, old = write_file(ns, "/f", [5, 6])
    row = create(ns, "/f", overwrite=True)
    f = ns.open_file(row["id"], ROOT)
    ns.add_block(f, 41, 1, 1.0)
    ns.commit_block(f, 41, 3)
    assert ns.stat("/f", ROOT).size == 11  # old file visible while writing
    st, dropped = ns.complete(f, ROOT, 2.0)
    assert sorted(dropped) == sorted(old_ids)
    assert st.size == 3 and st.inode_id != old.inode_id
    assert ns.stat("/f", ROOT).size == 3
    assert names(ns, "/") == ["f"]


def test_complete_conflict_when_name_taken_meanwhile(ns):
    row = create(ns, "/f")
    write_file(ns, "/f", [1])
    f = ns.open_file(row["id"], ROOT)
    with pytest.raises(errors.DfsFileExistsError):
        ns.complete(f, ROOT, 2.0)


def test_create_parent(ns):
    with pytest.raises(errors.DfsFileNotFoundError):
        create(ns, "/p/q/f")
    row = create(ns, "/p/q/f", create_parent=True)
    assert ns.stat("/p/q", ROOT).is_dir
    st, _ = ns.complete(ns.open_file(row["id"], ROOT), ROOT, 1.0)
    assert st.path == "/p/q/f"


def test_create_under_file(ns):
    write_file(ns, "/f", [1])
    with pytest.raises(errors.DfsNotADirectoryError):
        create(ns, "/f/g")
    with pytest.raises(errors.DfsNotADirectoryError):
        create(ns, "/f/g", create_parent=True)


def test_create_validates_sizes(ns):
    for bad in (1000, BS - 512, BS + 1):
        with pytest.raises(errors.InvalidArgumentError):
            create(ns, "/f", block_size=bad)
    for bad in (-1, 513):
        with pytest.raises(errors.InvalidArgumentError):
            create(ns, "/f", replication=bad)
    row = create(ns, "/f", replication=0, block_size=0)
    assert row["replication"] == ns.default_replication
    assert row["block_size"] == ns.default_block_size
    assert row["block_size"] % row["chunk_size"] == 0
    row = create(ns, "/g", replication=1, block_size=BS + 16384)
    assert row["chunk_size"] <= row["block_size"] and row["block_size"] % row["chunk_size"] == 0


def test_create_stores_key(ns):
    row = create(ns, "/f", key_for=lambda fid: b"key-%d" % fid)
    assert row["key"] == b"key-%d" % row["id"]


def test_create_complete_at_once(ns):
    row, dropped = create_full(ns, "/empty", complete=True, mode=0o600)
    assert dropped == [] and row["state"] == "C"
    st = ns.stat("/empty", ROOT)
    assert st.size == 0 and st.mode == 0o600 and st.inode_id == row["id"]
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.open_file(row["id"], ROOT)
    with pytest.raises(errors.DfsFileExistsError):
        create_full(ns, "/empty", complete=True)
    ids, _ = write_file(ns, "/full", [4, 5])
    row, dropped = create_full(ns, "/full", complete=True, overwrite=True)
    assert sorted(dropped) == sorted(ids) and ns.stat("/full", ROOT).size == 0


def test_open_file_lease(ns):
    ns.mkdir("/home", ROOT, 1.0)
    ns.chmod("/home", 0o777, ROOT)
    row = create(ns, "/home/f", ALICE, 1.0)
    ns.open_file(row["id"], ALICE)
    ns.open_file(row["id"], None)  # internal use: no lease check
    with pytest.raises(errors.LeaseError):
        ns.open_file(row["id"], ALICE2)  # same user, other client
    with pytest.raises(errors.LeaseError):
        ns.open_file(row["id"], BOB)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.open_file(99999, ALICE)


def test_add_block_requires_previous_committed(ns):
    row = create(ns, "/f")
    f = ns.open_file(row["id"], ROOT)
    ns.add_block(f, 51, 1, 1.0)
    with pytest.raises(errors.InvalidArgumentError):
        ns.add_block(f, 52, 1, 1.0)
    ns.commit_block(f, 51, 10)
    ns.add_block(f, 52, 1, 1.0)
    with pytest.raises(errors.InvalidArgumentError):
        ns.commit_block(f, 999, 10)  # not this file's block
    with pytest.raises(errors.InvalidArgumentError):
        ns.commit_block(f, 52, BS + 1)  # longer than the block size


def test_abandon_block(ns):
    row = create(ns, "/f")
    f = ns.open_file(row["id"], ROOT)
    ns.add_block(f, 61, 1, 1.0)
    ns.commit_block(f, 61, 10)
    ns.add_block(f, 62, 1, 1.0)
    with pytest.raises(errors.InvalidArgumentError):
        ns.abandon_block(f, 61)  # only the last block
    ns.abandon_block(f, 62)
    assert [b.block_id for b in f.blocks] == [61]
    assert [b.block_id for b in ns.open_file(row["id"], ROOT).blocks] == [61]
    ns.add_block(f, 63, 2, 1.0)  # previous (61) is committed
    ns.commit_block(f, 63, 5)
    st, dropped = ns.complete(f, ROOT, 1.0)
    assert st.size == 15 and dropped == []


def test_an_open_file_holds_its_last_blocks_and_keeps_its_committed_length(ns):
    """The writer's steps read the file's last two blocks and its row, whose length is
    that of its committed blocks: never the whole block list (n^2 for n blocks)."""
    row = create(ns, "/f")
    other = create(ns, "/g")
    f = ns.open_file(row["id"], ROOT)
    for bid, n in ((81, 10), (82, 20), (83, 30)):
        ns.add_block(f, bid, 1, 1.0)
        ns.commit_block(f, bid, n)
    assert ns.store.get(row["id"])["length"] == 60
    again = ns.open_file(row["id"], ROOT)
    assert [(b.block_id, b.offset, b.length) for b in again.blocks] == [(82, 10, 20), (83, 30, 30)]
    ns.commit_block(again, 81, 15)   # a retry may commit an earlier block again, by id
    assert ns.add_block(again, 84, 1, 1.0).offset == 65
    with pytest.raises(errors.InvalidArgumentError, match="not part of this file"):
        ns.commit_block(again, ns.add_block(ns.open_file(other["id"], ROOT), 91, 1, 1.0).block_id, 1)
    ns.abandon_block(again, 84)
    ns.abandon_block(again, 83)      # committed: its length goes with it
    ns.abandon_block(again, 82)      # past the blocks it loaded: the file's last is read
    assert [b.block_id for b in again.blocks] == [81]
    assert ns.add_block(again, 85, 1, 1.0).offset == 15
    ns.commit_block(again, 85, 5)
    st, dropped = ns.complete(again, ROOT, 2.0)
    assert st.size == 20 and dropped == []
    assert [(b["id"], b["idx"]) for b in ns.store.blocks(row["id"])] == [(81, 0), (85, 1)]


def test_a_file_being_written_by_an_older_namenode_completes_with_its_whole_length(tmp_path):
    """An older namenode left a file's length 0 until Complete; a store it wrote gets
    the committed length of every file under construction summed when opened."""
    db = str(tmp_path / "meta.db")
    store = SqliteStore(db)
    ns = Namespace(store, superuser="root")
    row = create(ns, "/f")
    f = ns.open_file(row["id"], ROOT)
    for bid, n in ((101, 7), (102, 8)):
        ns.add_block(f, bid, 1, 1.0)
        ns.commit_block(f, bid, n)
    ns.add_block(f, 103, 1, 1.0)
    store.update(row["id"], length=0)   # as the older namenode had it
    store.close()

    ns2 = Namespace(SqliteStore(db), superuser="root")
    f = ns2.open_file(row["id"], ROOT)
    assert [(b.block_id, b.offset) for b in f.blocks] == [(102, 7), (103, 15)]
    ns2.commit_block(f, 103, 9)
    st, _ = ns2.complete(f, ROOT, 2.0)
    assert st.size == 24


def test_complete_after_parent_removed(ns):
    ns.mkdir("/d", ROOT, 1.0)
    row = create(ns, "/d/f")
    with pytest.raises(errors.DirectoryNotEmptyError):  # a file being written is a child
        ns.delete("/d", ROOT, 1.0)
    ns.delete("/d", ROOT, 1.0, recursive=True)
    f_row = ns.store.get(row["id"])
    assert f_row is None  # removed with its parent


def test_leases_expire_and_recover(ns):
    row = create(ns, "/f", now=100.0)
    f = ns.open_file(row["id"], ROOT)
    ns.add_block(f, 71, 1, 100.0)
    ns.commit_block(f, 71, 10)
    assert ns.expired_leases(100.0 + LEASE_SOFT_LIMIT - 1) == []
    ns.renew_leases("root-client", 150.0)
    assert ns.expired_leases(100.0 + LEASE_SOFT_LIMIT + 1) == []
    ns.renew_leases("someone-else", 500.0)
    expired = ns.expired_leases(150.0 + LEASE_SOFT_LIMIT + 1)
    assert expired == [row["id"]]
    what, dropped = ns.recover_lease(row["id"], 300.0)
    assert "f" in what and dropped == [71]
    assert ns.store.get(row["id"]) is None
    assert ns.expired_leases(1e9) == []
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat("/f", ROOT)


# -- permissions -------------------------------------------------------------------


@pytest.fixture
def shared(ns) -> Namespace:
    """/home (root 0755), /home/alice (alice 0755), /tmp (root 1777)."""
    ns.mkdir("/home/alice", ROOT, 1.0, parents=True)
    ns.chown("/home/alice", "alice", "users", ROOT)
    ns.mkdir("/tmp", ROOT, 1.0, mode=0o1777)
    return ns


def test_write_permission_on_parent(shared):
    ns = shared
    with pytest.raises(errors.DfsPermissionError):
        ns.mkdir("/home/bob", BOB, 1.0)
    with pytest.raises(errors.DfsPermissionError):
        create(ns, "/home/x", BOB)
    with pytest.raises(errors.DfsPermissionError):
        ns.mkdir("/home/alice/sub", BOB, 1.0)
    with pytest.raises(errors.DfsPermissionError):
        ns.mkdir("/home/alice/a/b", BOB, 1.0, parents=True)
    ns.mkdir("/home/alice/sub", ALICE, 1.0)
    write_file(ns, "/home/alice/f", [1], caller=ALICE)
    with pytest.raises(errors.DfsPermissionError):
        ns.delete("/home/alice/f", BOB, 1.0)
    with pytest.raises(errors.DfsPermissionError):
        ns.rename("/home/alice/f", "/tmp/f", BOB, 1.0)
    with pytest.raises(errors.DfsPermissionError):
        ns.rename("/tmp", "/home/tmp2", BOB, 1.0)
    # superuser (by name or by supergroup) bypasses
    ns.mkdir("/home/alice/by-root", ROOT, 1.0)
    ns.mkdir("/home/alice/by-admin", Caller("admin", ("supergroup",)), 1.0)
    ns.delete("/home/alice/f", ROOT, 1.0)


def test_rename_needs_write_on_destination_parent(shared):
    ns = shared
    write_file(ns, "/tmp/bobs", [1], caller=BOB)
    with pytest.raises(errors.DfsPermissionError):
        ns.rename("/tmp/bobs", "/home/alice/bobs", BOB, 1.0)
    assert ns.stat("/tmp/bobs", BOB).size == 1
    st, _ = ns.rename("/tmp/bobs", "/tmp/bobs2", BOB, 1.0)
    assert st.path == "/tmp/bobs2"


def test_group_and_other_bits(shared):
    ns = shared
    ns.chmod("/home/alice", 0o770, ALICE)
    ns.mkdir("/home/alice/g", BOB, 1.0)  # bob is in group users
    with pytest.raises(errors.DfsPermissionError):
        ns.mkdir("/home/alice/e", EVE, 1.0)
    with pytest.raises(errors.DfsPermissionError):
        ns.stat("/home/alice/g", EVE)  # no x on /home/alice
    with pytest.raises(errors.DfsPermissionError):
        ns.list("/home/alice", EVE)
    # owner bits apply to the owner even when "other" would allow
    ns.chmod("/home/alice", 0o077, ALICE)
    with pytest.raises(errors.DfsPermissionError):
        ns.mkdir("/home/alice/o", ALICE, 1.0)


def test_list_needs_read(shared):
    ns = shared
    ns.chmod("/home/alice", 0o711, ALICE)
    with pytest.raises(errors.DfsPermissionError):
        ns.list("/home/alice", BOB)
    assert ns.stat("/home/alice", BOB).is_dir
    ns.list("/home/alice", ALICE)


def test_sticky_bit(shared):
    ns = shared
    write_file(ns, "/tmp/a", [1], caller=ALICE)
    write_file(ns, "/tmp/b", [1], caller=ALICE)
    with pytest.raises(errors.DfsPermissionError):
        ns.delete("/tmp/a", BOB, 1.0)
    with pytest.raises(errors.DfsPermissionError):
        ns.rename("/tmp/a", "/tmp/c", BOB, 1.0)
    ns.delete("/tmp/a", ALICE, 1.0)  # owner of the file
    ns.delete("/tmp/b", ROOT, 1.0)  # superuser
    ns.mkdir("/tmp/bobdir", BOB, 1.0)
    ns.delete("/tmp/bobdir", BOB, 1.0)
    # without the sticky bit, write on the parent is enough
    ns.chmod("/tmp", 0o777, ROOT)
    write_file(ns, "/tmp/c", [1], caller=ALICE)
    ns.delete("/tmp/c", BOB, 1.0)


def test_rename_over_a_file_in_a_sticky_directory_is_a_delete_of_it(shared):
    ns = shared
    write_file(ns, "/tmp/bobs", [1], caller=BOB)
    write_file(ns, "/tmp/eves", [2], caller=EVE)
    with pytest.raises(errors.DfsPermissionError):
        ns.rename("/tmp/eves", "/tmp/bobs", EVE, 1.0, overwrite=True)
    assert ns.stat("/tmp/bobs", ROOT).owner == "bob"
    ns.rename("/tmp/eves", "/tmp/new", EVE, 1.0)               # to a free name: fine


def test_a_recursive_delete_needs_full_access_to_every_directory_it_empties(shared):
    # As HDFS (subAccess=ALL): bob may write /tmp2 but not alice's tree inside it.
    ns = shared
    ns.mkdir("/tmp2", ROOT, 1.0, mode=0o777)
    ns.mkdir("/tmp2/priv/deeper", ALICE, 1.0, parents=True)
    write_file(ns, "/tmp2/priv/deeper/s", [1], caller=ALICE)
    ns.chmod("/tmp2/priv/deeper", 0o700, ALICE)
    ns.chmod("/tmp2/priv", 0o777, ALICE)                        # bob may empty this one
    with pytest.raises(errors.DfsPermissionError) as e:
        ns.delete("/tmp2/priv", BOB, 1.0, recursive=True)
    assert e.value.path == "/tmp2/priv/deeper"
    ns.chmod("/tmp2/priv/deeper", 0o755, ALICE)                # still not bob's to write
    with pytest.raises(errors.DfsPermissionError):
        ns.delete("/tmp2/priv", BOB, 1.0, recursive=True)
    assert ns.stat("/tmp2/priv/deeper/s", ROOT).size == 1
    ns.mkdir("/tmp2/alices-empty", ALICE, 1.0, mode=0o500)     # an empty one is an unlink
    ns.delete("/tmp2/alices-empty", BOB, 1.0, recursive=True)
    ns.delete("/tmp2/priv", ALICE, 1.0, recursive=True)        # its owner may
    ns.mkdir("/tmp2/w/writing", ALICE, 1.0, parents=True)       # a file being written is content
    ns.chmod("/tmp2/w", 0o777, ALICE)
    create(ns, "/tmp2/w/writing/f", ALICE)
    ns.chmod("/tmp2/w/writing", 0o700, ALICE)
    with pytest.raises(errors.DfsPermissionError) as e:
        ns.delete("/tmp2/w", BOB, 1.0, recursive=True)
    assert e.value.path == "/tmp2/w/writing"


def test_supergroup_members_are_superusers_for_chmod_chown_and_sticky(shared):
    ns = shared
    admin = Caller("ann", ("supergroup",), client_name="ann-1")
    write_file(ns, "/tmp/bobs", [1], caller=BOB)
    ns.chmod("/tmp/bobs", 0o600, admin)
    ns.chown("/tmp/bobs", "eve", "others", admin)
    ns.set_times("/tmp/bobs", 5.0, admin)
    ns.delete("/tmp/bobs", admin, 1.0)                          # sticky /tmp


def test_overwrite_needs_write_permission_on_another_users_file(shared):
    # As HDFS's create with overwrite: bob's 0644 file in a directory alice may write
    # is not alice's to replace, at create nor at complete. (/tmp made not sticky: a
    # sticky one refuses more, see test_overwrite_in_a_sticky_directory_...)
    ns = shared
    ns.chmod("/tmp", 0o777, ROOT)
    write_file(ns, "/tmp/bobs", [1], caller=BOB)
    with pytest.raises(errors.DfsPermissionError):
        create(ns, "/tmp/bobs", ALICE, overwrite=True)
    with pytest.raises(errors.DfsPermissionError):
        create(ns, "/tmp/bobs", ALICE, overwrite=True, complete=True)
    row = create(ns, "/tmp/later", ALICE, overwrite=True)   # nothing there yet
    write_file(ns, "/tmp/bobtmp", [2], caller=BOB)
    ns.rename("/tmp/bobtmp", "/tmp/later", BOB, 1.5)         # bob's file lands meanwhile
    with pytest.raises(errors.DfsPermissionError):
        ns.complete(ns.open_file(row["id"], ALICE), ALICE, 2.0)
    assert ns.stat("/tmp/later", BOB).owner == "bob" and ns.stat("/tmp/bobs", BOB).size == 1
    ns.chmod("/tmp/bobs", 0o666, BOB)                        # writable by all: may be replaced
    write_file(ns, "/tmp/bobs", [3], caller=ALICE, overwrite=True)
    assert ns.stat("/tmp/bobs", BOB).owner == "alice"
    # its owner always may (the FUSE mount commits files made read-only while written),
    # and so may the superuser
    ns.chmod("/tmp/bobs", 0o444, ALICE)
    write_file(ns, "/tmp/bobs", [4], caller=ALICE, overwrite=True, mode=0o444)
    write_file(ns, "/tmp/bobs", [5], caller=ROOT, overwrite=True)
    assert ns.stat("/tmp/bobs", ROOT).size == 5


def test_overwrite_in_a_sticky_directory_is_a_removal_unless_the_file_stays_its_owners(shared):
    # put -f / cp -f of bob's 0666 file in 1777 /tmp made it alice's, 0644: she could
    # chmod it 0600 and lock bob out, though rm of it is refused her (sticky).
    ns = shared
    write_file(ns, "/tmp/bobs", [1], caller=BOB)
    ns.chmod("/tmp/bobs", 0o666, BOB)
    with pytest.raises(errors.DfsPermissionError):
        create(ns, "/tmp/bobs", ALICE, overwrite=True)
    with pytest.raises(errors.DfsPermissionError):
        create(ns, "/tmp/bobs", ALICE, overwrite=True, complete=True)
    row = create(ns, "/tmp/later", ALICE, overwrite=True)      # nothing there yet
    write_file(ns, "/tmp/bobtmp", [2], caller=BOB)
    ns.chmod("/tmp/bobtmp", 0o666, BOB)
    ns.rename("/tmp/bobtmp", "/tmp/later", BOB, 1.5)            # bob's file lands meanwhile
    with pytest.raises(errors.DfsPermissionError) as e:
        ns.complete(ns.open_file(row["id"], ALICE), ALICE, 2.0)
    assert e.value.path == "/tmp/later"
    st = ns.stat("/tmp/bobs", BOB)
    assert (st.owner, st.mode, st.size) == ("bob", 0o666, 1)
    assert ns.stat("/tmp/later", BOB).owner == "bob"
    # A new version that keeps bob's attributes (the mount's O_TRUNC write, an fsspec
    # append) is a write into his file, which 0666 lets alice make: it stays his.
    row = create(ns, "/tmp/bobs", ALICE, overwrite=True, keep_attributes=True)
    st, _ = ns.complete(ns.open_file(row["id"], ALICE), ALICE, 2.0, keep_attributes=True)
    assert (st.owner, st.mode) == ("bob", 0o666)
    # but not one that keeps them at create only: the file would be alice's new one
    row = create(ns, "/tmp/bobs", ALICE, overwrite=True, keep_attributes=True)
    with pytest.raises(errors.DfsPermissionError):
        ns.complete(ns.open_file(row["id"], ALICE), ALICE, 2.0)
    ns.store.delete_subtree(row["id"])                          # abandoned (AbandonFile)
    # the directory's owner and the superuser may replace it
    ns.mkdir("/tmp/alices", ALICE, 1.0, mode=0o1777)
    write_file(ns, "/tmp/alices/bobs", [4], caller=BOB)
    ns.chmod("/tmp/alices/bobs", 0o666, BOB)
    write_file(ns, "/tmp/alices/bobs", [5], caller=ALICE, overwrite=True)
    assert ns.stat("/tmp/alices/bobs", ALICE).owner == "alice"
    write_file(ns, "/tmp/bobs", [6], caller=ROOT, overwrite=True)
    assert ns.stat("/tmp/bobs", ROOT).owner == "root"


def test_a_new_version_kept_its_owners_takes_write_on_the_file_not_on_its_directory(shared):
    # An fsspec append or a mount's O_APPEND/O_TRUNC commit of bob's 0666 log in his 0755
    # directory: a write into the file, which POSIX and HDFS's append allow alice.
    # Create asked write on the directory whatever was written: refused, the mount's
    # close EACCES with the data lost.
    ns = shared
    ns.mkdir("/bobdir", ROOT, 1.0)
    ns.chown("/bobdir", "bob", "users", ROOT)                   # 0755: alice may not write it
    _, log = write_file(ns, "/bobdir/log", [1], caller=BOB, mode=0o666)

    def kept(caller=ALICE, at_complete=True, **kw):
        row = create(ns, "/bobdir/log", caller, overwrite=True, keep_attributes=True, **kw)
        return ns.complete(ns.open_file(row["id"], caller), caller, 2.0, keep_attributes=at_complete)[0]

    st = kept(replaces=log.inode_id)                           # fsspec "ab"
    assert (st.owner, st.mode, st.path) == ("bob", 0o666, "/bobdir/log")
    st = kept()                                                # the mount's O_TRUNC: no replaces
    assert (st.owner, st.mode) == ("bob", 0o666) and ns.stat("/bobdir/log", BOB).inode_id == st.inode_id
    # Anything that puts a new file at the name is a change of the directory: refused.
    for kw in ({}, {"complete": True}, {"mode": 0o666}):
        with pytest.raises(errors.DfsPermissionError):
            create(ns, "/bobdir/log", ALICE, overwrite=True, **kw)
    with pytest.raises(errors.DfsPermissionError):
        create(ns, "/bobdir/new", ALICE, keep_attributes=True)  # nothing to keep: a new name
    row = create(ns, "/bobdir/log", ALICE, overwrite=True, keep_attributes=True)
    with pytest.raises(errors.DfsPermissionError):             # kept at create only: alice's file
        ns.complete(ns.open_file(row["id"], ALICE), ALICE, 2.0)
    ns.store.delete_subtree(row["id"])                          # abandoned (AbandonFile)
    # Judged by the file the name holds at complete, not the one it held at create.
    row = create(ns, "/bobdir/log", ALICE, overwrite=True, keep_attributes=True)
    write_file(ns, "/bobdir/new", [2], caller=BOB, mode=0o644)
    ns.rename("/bobdir/new", "/bobdir/log", BOB, 1.5, overwrite=True)   # bob's 0644 one now
    with pytest.raises(errors.DfsPermissionError):
        ns.complete(ns.open_file(row["id"], ALICE), ALICE, 2.0, keep_attributes=True)
    ns.store.delete_subtree(row["id"])                          # abandoned (AbandonFile)
    ns.chmod("/bobdir/log", 0o666, BOB)
    row = create(ns, "/bobdir/log", ALICE, overwrite=True, keep_attributes=True)
    ns.rename("/bobdir/log", "/bobdir/old", BOB, 2.0)          # gone: completing it adds a name
    with pytest.raises(errors.DfsPermissionError):
        ns.complete(ns.open_file(row["id"], ALICE), ALICE, 3.0, keep_attributes=True)
    ns.store.delete_subtree(row["id"])
    assert names(ns, "/bobdir") == ["old"]
    # Without write permission on the file, no version of it either.
    _, log = write_file(ns, "/bobdir/log", [1], caller=BOB, mode=0o644)
    with pytest.raises(errors.DfsPermissionError):
        kept(replaces=log.inode_id)
    assert ns.stat("/bobdir/log", BOB).inode_id == log.inode_id
    assert kept(caller=BOB).owner == "bob" and kept(caller=ROOT).owner == "bob"


def test_a_recursive_delete_keeps_the_sticky_rule_inside_the_tree(shared):
    # carol's 0777 /tmp/c holds alice's 1777 /tmp/c/s holding bob's file: carol may not
    # rm it, nor rm -r /tmp/c (GNU rm -r refuses it; it took bob's file). Nothing goes.
    ns = shared
    carol = Caller("carol", ("users",), client_name="carol-1")
    ns.mkdir("/tmp/c", carol, 1.0, mode=0o777)
    ns.mkdir("/tmp/c/s", ALICE, 1.0, mode=0o1777)
    write_file(ns, "/tmp/c/s/bobfile", [1], caller=BOB)
    write_file(ns, "/tmp/c/carols", [2], caller=carol)
    with pytest.raises(errors.DfsPermissionError):
        ns.delete("/tmp/c/s/bobfile", carol, 1.0)
    for top in ("/tmp/c", "/tmp/c/s"):
        with pytest.raises(errors.DfsPermissionError) as e:
            ns.delete(top, carol, 1.0, recursive=True)
        assert e.value.path == "/tmp/c/s/bobfile"
    assert names(ns, "/tmp/c") == ["carols", "s"] and names(ns, "/tmp/c/s") == ["bobfile"]
    # a file being written there is an entry too
    ns.delete("/tmp/c/s/bobfile", BOB, 1.0)
    create(ns, "/tmp/c/s/writing", BOB)
    with pytest.raises(errors.DfsPermissionError) as e:
        ns.delete("/tmp/c", carol, 1.0, recursive=True)
    assert e.value.path == "/tmp/c/s/writing"
    # the sticky directory's owner may, and anyone may take their own entries
    ns.delete("/tmp/c/s", ALICE, 1.0, recursive=True)
    ns.mkdir("/tmp/c/s", ALICE, 1.0, mode=0o1777)
    write_file(ns, "/tmp/c/s/carols", [3], caller=carol)
    ns.delete("/tmp/c", carol, 1.0, recursive=True)
    assert names(ns, "/tmp") == []
    # and the superuser
    ns.mkdir("/tmp/d/s", ALICE, 1.0, parents=True, mode=0o1777)
    write_file(ns, "/tmp/d/s/bobfile", [1], caller=BOB)
    ns.delete("/tmp/d", ROOT, 1.0, recursive=True)


def test_summaries_need_read_and_search_over_the_whole_tree(shared):
    # du -s / fsck would otherwise tell what a listing refuses to (HDFS's
    # getContentSummary checks READ_EXECUTE over the subtree).
    ns = shared
    ns.mkdir("/home/alice/priv/deep", ALICE, 1.0, parents=True)
    write_file(ns, "/home/alice/priv/deep/f", [7], caller=ALICE)
    write_file(ns, "/home/alice/open", [3], caller=ALICE)
    ns.chmod("/home/alice/priv", 0o700, ALICE)
    assert ns.content_summary("/home/alice/priv", ALICE)["length"] == 7
    assert ns.content_summary("/home/alice/priv", ROOT)["length"] == 7
    for path in ("/home/alice/priv", "/home/alice", "/"):
        with pytest.raises(errors.DfsPermissionError) as e:
            ns.content_summary(path, BOB)
        assert e.value.path == "/home/alice/priv"
    ns.chmod("/home/alice/priv", 0o755, ALICE)
    assert ns.content_summary("/home/alice", BOB)["length"] == 10


def test_chmod_owner_rules(shared):
    ns = shared
    with pytest.raises(errors.DfsPermissionError):
        ns.chmod("/home/alice", 0o777, BOB)
    assert ns.chmod("/home/alice", 0o10700, ALICE).mode == 0o0700
    assert ns.chmod("/home/alice", 0o1755, ROOT).mode == 0o1755
    assert ns.stat("/home/alice", BOB).mode == 0o1755


def test_chown_owner_rules(shared):
    ns = shared
    with pytest.raises(errors.DfsPermissionError):
        ns.chown("/home/alice", "bob", "", ALICE)  # only the superuser gives away
    with pytest.raises(errors.DfsPermissionError):
        ns.chown("/home/alice", "", "others", ALICE)  # alice is not in "others"
    with pytest.raises(errors.DfsPermissionError):
        ns.chown("/home/alice", "", "users", BOB)  # not the owner
    st = ns.chown("/home/alice", "", "users", ALICE)
    assert st.owner == "alice" and st.group == "users"
    st = ns.chown("/home/alice", "bob", "staff", ROOT)
    assert st.owner == "bob" and st.group == "staff"
    st = ns.chown("/home/alice", "", "", ROOT)
    assert st.owner == "bob" and st.group == "staff"


def test_set_times(shared):
    ns = shared
    assert ns.set_times("/home/alice", 42.0, ALICE).mtime == 42.0
    with pytest.raises(errors.DfsPermissionError):
        ns.set_times("/home/alice", 43.0, BOB)


# -- replication, summaries -----------------------------------------------------------


def test_set_replication(ns):
    ids, _ = write_file(ns, "/f", [1, 2], replication=3)
    st, blocks = ns.set_replication("/f", 2, ROOT)
    assert st.replication == 2 and sorted(blocks) == sorted(ids)
    assert ns.set_replication("/f", 1, ROOT)[0].replication == 1
    assert ns.set_replication("/f", 512, ROOT)[0].replication == 512
    for bad in (0, -1, 513):
        with pytest.raises(errors.InvalidArgumentError):
            ns.set_replication("/f", bad, ROOT)
    ns.mkdir("/d", ROOT, 1.0)
    with pytest.raises(errors.DfsIsADirectoryError):
        ns.set_replication("/d", 2, ROOT)
    with pytest.raises(errors.DfsPermissionError):
        ns.set_replication("/f", 2, BOB)  # 0644 root file


def test_content_summary(ns):
    ns.mkdir("/s/t", ROOT, 1.0, parents=True)
    write_file(ns, "/s/a", [10, 20], replication=3)
    write_file(ns, "/s/t/b", [5], replication=2)
    create(ns, "/s/t/pending")  # not counted
    cs = ns.content_summary("/s", ROOT)
    assert cs == {"length": 35, "files": 2, "directories": 2, "space_consumed": 30 * 3 + 5 * 2}
    assert ns.content_summary("/s/a", ROOT) == {
        "length": 30,
        "files": 1,
        "directories": 0,
        "space_consumed": 90,
    }


# -- durability -------------------------------------------------------------------------


def test_store_persists_after_sync(tmp_path):
    db = str(tmp_path / "meta.db")
    store = SqliteStore(db)
    ns = Namespace(store, superuser="root")
    ns.mkdir("/kept/deep", ROOT, 1.0, parents=True)
    ids, _ = write_file(ns, "/kept/f", [100, 23])
    store.set_meta("cluster", "abc")
    store.sync()
    ns.mkdir("/lost", ROOT, 2.0)  # never synced
    write_file(ns, "/kept/lost-file", [5])
    store.set_meta("cluster", "zzz")
    store._db.close()  # crash: no commit

    store2 = SqliteStore(db)
    ns2 = Namespace(store2, superuser="root")
    assert ns2.stat("/kept/deep", ROOT).is_dir
    assert ns2.stat("/kept/f", ROOT).size == 123
    assert [b["id"] for b in store2.blocks(ns2.stat("/kept/f", ROOT).inode_id)] == ids
    assert store2.get_meta("cluster") == "abc"
    for p in ("/lost", "/kept/lost-file"):
        with pytest.raises(errors.DfsFileNotFoundError):
            ns2.stat(p, ROOT)
    assert names(ns2, "/") == ["kept"]
    store2.close()

    store3 = SqliteStore(db)  # close() syncs
    assert Namespace(store3, superuser="root").stat("/kept/f", ROOT).size == 123


def test_store_counters_and_rollback():
    store = SqliteStore(":memory:")
    assert [store.next_id("block_id") for _ in range(3)] == [1, 2, 3]
    store.sync()
    store.next_id("block_id")
    store.rollback()
    assert store.next_id("block_id") > 4   # an id handed out is never handed out again
    assert store.get_meta("missing") is None
    store.begin_op()
    used = store.next_id("block_id")
    store.undo_op()
    assert store.next_id("block_id") > used


def test_undoing_one_operation_keeps_the_others_in_the_open_transaction():
    store = SqliteStore(":memory:")
    ns = Namespace(store, superuser="root")
    store.begin_op()
    ns.mkdir("/a", ROOT, 1.0)
    store.end_op()
    store.begin_op()
    ns.mkdir("/b", ROOT, 1.0)
    store.undo_op()
    store.sync()
    assert ns.stat("/a", ROOT).is_dir
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat("/b", ROOT)


def test_insert_returns_the_row_as_stored():
    store = SqliteStore(":memory:")
    ns = Namespace(store, superuser="root")
    row = store.insert(parent=1, name="f", is_dir=0, mode=0o640, owner="u", grp="g", mtime=1.5,
                       ctime=1.5, replication=2, block_size=1 << 20, chunk_size=1 << 20, key=b"k")
    assert row == store.get(row["id"]) == store.lookup(1, "f")
    assert row["state"] == "C" and row["nchildren"] == 0 and row["key"] == b"k"
    assert ns.stat("/", ROOT).children == 1   # the trigger counted it in its parent


def test_rows_of_a_store_made_before_columns_were_added(tmp_path):
    # Columns added later (replaces, nchildren, nsubdirs) come last in an old store's
    # table: rows are read by name, not by position.
    db = str(tmp_path / "old.db")
    old = sqlite3.connect(db)
    old.executescript("""
        CREATE TABLE inode (
          id INTEGER PRIMARY KEY, parent INTEGER, name TEXT, is_dir INTEGER NOT NULL,
          mode INTEGER NOT NULL, owner TEXT NOT NULL, grp TEXT NOT NULL,
          mtime REAL NOT NULL, ctime REAL NOT NULL, replication INTEGER DEFAULT 0,
          block_size INTEGER DEFAULT 0, chunk_size INTEGER DEFAULT 0,
          length INTEGER DEFAULT 0, state TEXT NOT NULL DEFAULT 'C',
          pending_name TEXT, overwrite INTEGER DEFAULT 0, key BLOB,
          lease_holder TEXT, lease_expiry REAL);
        INSERT INTO inode (id, parent, name, is_dir, mode, owner, grp, mtime, ctime)
          VALUES (1, NULL, '', 1, 493, 'root', 'supergroup', 0, 0),
                 (2, 1, 'd', 1, 448, 'alice', 'staff', 7, 7);
        INSERT INTO inode (id, parent, name, is_dir, mode, owner, grp, mtime, ctime, replication,
                           block_size, chunk_size, length, key)
          VALUES (3, 2, 'f', 0, 416, 'alice', 'staff', 8, 8, 2, 1048576, 1048576, 42, x'00ff');
        """)
    old.commit()
    old.close()
    store = SqliteStore(db)
    ns = Namespace(store, superuser="root")
    d, f = ns.stat("/d", ROOT), ns.stat("/d/f", ROOT)
    assert (d.mode, d.owner, d.group, d.children) == (0o700, "alice", "staff", 1)
    assert (f.size, f.replication, f.mode, f.mtime) == (42, 2, 0o640, 8.0)
    assert store.get(3)["key"] == b"\x00\xff" and store.get(3)["replaces"] is None
    store.close()


def test_ids_are_reserved_durably_and_never_reused(tmp_path):
    """Block ids come from fsynced reservations, so losing the commits that used
    them (they are not fsynced) can never give an id out twice."""
    db = str(tmp_path / "meta.db")
    store = SqliteStore(db)
    first = [store.next_id("block_id") for _ in range(5)]
    store.sync()
    more = [store.next_id("block_id") for _ in range(3)]
    store._db.close()  # crash before the next commit
    store2 = SqliteStore(db)
    again = store2.next_id("block_id")
    assert first == [1, 2, 3, 4, 5] and more == [6, 7, 8]
    assert again > 8
    store2.close()


def test_only_commits_that_want_it_are_fsynced(tmp_path, monkeypatch):
    import os as _os
    synced = []
    real = _os.fdatasync
    monkeypatch.setattr("dfs.namenode.store.os.fdatasync", lambda fd: (synced.append(fd), real(fd)))
    store = SqliteStore(str(tmp_path / "meta.db"))
    store.set_meta("a", "1")
    store.sync()
    assert synced == []
    store.set_meta("b", "2")
    store.want_durable()
    store.sync()
    assert len(synced) == 1
    store.sync()   # nothing open: nothing to do
    assert len(synced) == 1
    store.close()


# -- directory entry counts ------------------------------------------------------------


def _true_counts(store: SqliteStore) -> dict[int, tuple[int, int]]:
    q = store._db.execute(
        "SELECT d.id, (SELECT count(*) FROM inode c WHERE c.parent=d.id AND c.name IS NOT NULL),"
        " (SELECT count(*) FROM inode c WHERE c.parent=d.id AND c.is_dir=1 AND c.name IS NOT NULL)"
        " FROM inode d WHERE d.is_dir=1")
    return {r[0]: (r[1], r[2]) for r in q}


def _kept_counts(store: SqliteStore) -> dict[int, tuple[int, int]]:
    return {r[0]: (store.count_children(r[0]), store.count_subdirs(r[0]))
            for r in store._db.execute("SELECT id FROM inode WHERE is_dir=1")}


def test_directory_counts_follow_every_operation_that_names_or_unnames_an_entry():
    """stat of a directory reads its entry counts from its own row (O(1)); they must
    match a count of its entries after any mix of operations, including a failed one."""
    import random
    store = SqliteStore(":memory:")
    ns = Namespace(store, superuser="root")
    rng = random.Random(7)
    dirs, files = ["/"], []
    open_files = []
    done: dict[str, int] = {}
    for step in range(600):
        op = rng.choice(["mkdir", "file", "file", "open", "complete", "abandon", "rm", "mv", "mvover"] * 4
                        + ["rmr"])
        parent = rng.choice(dirs)
        name = f"{parent.rstrip('/')}/n{step}"
        try:
            if op == "mkdir":
                ns.mkdir(name + "/x" if rng.random() < 0.3 else name, ROOT, 1.0, parents=True)
                dirs += [name] + ([name + "/x"] if ns.stat(name, ROOT).children else [])
            elif op == "file":
                target = rng.choice(files) if files and rng.random() < 0.3 else name
                write_file(ns, target, [10], overwrite=True)
                files.append(target)
            elif op == "open":
                open_files.append((create(ns, name)["id"], name))
            elif op in ("complete", "abandon") and open_files:
                fid, path = open_files.pop(rng.randrange(len(open_files)))
                if op == "complete":
                    ns.complete(ns.open_file(fid, ROOT), ROOT, 2.0)
                    files.append(path)
                else:
                    ns.recover_lease(fid, 2.0)
            elif op == "rm" and files:
                ns.delete(files.pop(rng.randrange(len(files))), ROOT, 1.0)
            elif op == "rmr" and len(dirs) > 1:
                victim = rng.choice(dirs[1:])
                ns.delete(victim, ROOT, 1.0, recursive=True)
                dirs = [d for d in dirs if d != victim and not d.startswith(victim + "/")]
                files = [f for f in files if not f.startswith(victim + "/")]
            elif op in ("mv", "mvover") and files:
                src = rng.choice(files)
                dst = rng.choice(files) if op == "mvover" else f"{rng.choice(dirs).rstrip('/')}/m{step}"
                ns.rename(src, dst, ROOT, 1.0, overwrite=True)
                files = [f for f in files if f not in (src, dst)] + [dst]
            done[op] = done.get(op, 0) + 1
        except errors.DfsError:
            pass   # e.g. moving a file onto itself, or a path under a removed directory
        if step % 50 == 0:
            assert _kept_counts(store) == _true_counts(store), step
    assert _kept_counts(store) == _true_counts(store)
    assert min(done.values()) >= 5 and len(done) == 9, done
    assert sum(c for c, _ in _true_counts(store).values()) > 50


def test_a_store_made_before_directory_counts_gets_them_counted(tmp_path):
    import sqlite3
    db = str(tmp_path / "old.db")
    store = SqliteStore(db)
    ns = Namespace(store, superuser="root")
    ns.mkdir("/a/b", ROOT, 1.0, parents=True)
    write_file(ns, "/a/f", [1])
    store.sync()
    store.close()
    old = sqlite3.connect(db)   # back to the schema before the counts
    old.executescript("""
        DROP TRIGGER inode_counted_in; DROP TRIGGER inode_counted_out; DROP TRIGGER inode_counted_moved;
        ALTER TABLE inode DROP COLUMN nchildren; ALTER TABLE inode DROP COLUMN nsubdirs;""")
    old.close()
    store = SqliteStore(db)
    ns = Namespace(store, superuser="root")
    st = ns.stat("/a", ROOT)
    assert (st.children, st.subdirs) == (2, 1)
    assert ns.stat("/", ROOT).children == 1
    write_file(ns, "/a/g", [1])
    assert ns.stat("/a", ROOT).children == 3


# -- create while another client writes (AlreadyBeingCreated) ---------------------

def test_create_refused_while_another_client_writes(ns):
    ns.mkdir("/home", ROOT, 1.0)
    ns.chmod("/home", 0o777, ROOT)
    row = create(ns, "/home/f", ALICE, 1.0)
    for other, kw in ((ALICE2, {}), (BOB, {"overwrite": True}), (BOB, {"complete": True, "overwrite": True})):
        with pytest.raises(errors.AlreadyBeingCreatedError) as e:
            create_full(ns, "/home/f", other, 2.0, **kw)
        # a lease error, and a FileExistsError to fsspec/pathlib callers
        assert isinstance(e.value, errors.LeaseError) and isinstance(e.value, FileExistsError)
        assert e.value.path == "/home/f" and "alice-1" in str(e.value)
    # the same client may (a retried create): the last one to complete wins
    again = create(ns, "/home/f", ALICE, 3.0)
    assert again["id"] != row["id"]
    # another name in the same directory is free
    create(ns, "/home/g", BOB, 3.0)


def test_create_recovers_a_lapsed_lease(ns):
    ns.chmod("/", 0o777, ROOT)
    row = create(ns, "/f", ALICE, 1.0)
    f = ns.open_file(row["id"], ALICE)
    ns.add_block(f, 7001, 1, 1.0)
    ns.commit_block(f, 7001, 10)
    late = 1.0 + LEASE_SOFT_LIMIT + 1
    new, dropped = create_full(ns, "/f", BOB, late)
    assert dropped == [7001]                   # the abandoned writer's blocks go
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.open_file(row["id"], ALICE)         # its next AddBlock/Complete fails
    ns.open_file(new["id"], BOB)


def test_overwrite_of_a_closed_file_is_not_a_lease_conflict(ns):
    ns.chmod("/", 0o777, ROOT)
    write_file(ns, "/f", [5], ALICE)
    ns.chmod("/f", 0o666, ALICE)   # bob may replace it (test_overwrite_needs_write_permission...)
    row, dropped = create_full(ns, "/f", BOB, 2.0, overwrite=True)
    assert dropped == [] and ns.stat("/f", ROOT).size == 5   # the old version stays until complete
    st, dropped = ns.complete(ns.open_file(row["id"], BOB), BOB, 3.0)
    assert len(dropped) == 1 and st.inode_id == row["id"]


def test_delete_of_a_file_being_written_fails_its_writer(ns):
    ns.chmod("/", 0o777, ROOT)
    # a first version, not visible yet: rm finds it (as HDFS), its writer is cut off
    row = create(ns, "/new", ALICE, 1.0)
    f = ns.open_file(row["id"], ALICE)
    ns.add_block(f, 7101, 1, 1.0)
    assert ns.delete("/new", ROOT, 2.0) == [7101]
    for call in (lambda: ns.open_file(row["id"], ALICE), lambda: ns.delete("/new", ROOT, 2.0)):
        with pytest.raises(errors.DfsFileNotFoundError):
            call()
    # an overwrite under way: rm removes the old version and the new one
    ids, _ = write_file(ns, "/old", [3])
    ns.chmod("/old", 0o666, ROOT)
    row = create(ns, "/old", ALICE, 3.0, overwrite=True)
    assert sorted(ns.delete("/old", ROOT, 4.0)) == ids
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.open_file(row["id"], ALICE)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat("/old", ROOT)
    # a file being written elsewhere in the directory is untouched
    keep = create(ns, "/keep", ALICE, 5.0)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.delete("/other", ROOT, 5.0)
    ns.open_file(keep["id"], ALICE)


def test_delete_of_a_file_being_written_checks_permission(ns):
    ns.mkdir("/home", ROOT, 1.0)
    ns.chmod("/home", 0o755, ROOT)
    create(ns, "/home/f", ROOT, 1.0)
    with pytest.raises(errors.DfsPermissionError):
        ns.delete("/home/f", BOB, 2.0)


def test_inode_ids_are_never_reused(tmp_path):
    db = str(tmp_path / "meta.db")
    ns = Namespace(SqliteStore(db), superuser="root")
    first = create(ns, "/a", ROOT, 1.0)
    ns.delete("/a", ROOT, 2.0)                       # the highest id goes
    second = create(ns, "/a", ROOT, 3.0)             # a writer of the old id must not find this one
    assert second["id"] > first["id"]
    ns.delete("/a", ROOT, 4.0)
    ns.store.close()
    ns = Namespace(SqliteStore(db), superuser="root")   # nor after a restart
    assert create(ns, "/b", ROOT, 5.0)["id"] > second["id"]
    assert ns.mkdir("/d", ROOT, 6.0).inode_id > second["id"] + 1


def test_recursive_delete_of_the_directory_cuts_its_writers_off(ns):
    ns.mkdir("/d", ROOT, 1.0)
    row = create(ns, "/d/f", ROOT, 1.0)
    f = ns.open_file(row["id"], ROOT)
    ns.add_block(f, 7201, 1, 1.0)
    assert ns.delete("/d", ROOT, 2.0, recursive=True) == [7201]
    with pytest.raises(errors.DfsFileNotFoundError, match="not open for writing"):
        ns.open_file(row["id"], ROOT)


# -- compare-and-swap create (the FUSE mount's read-modify-write commits) ----------


def test_create_with_replaces_completes_only_over_that_file(ns):
    _, old = write_file(ns, "/f", [10])
    row = create(ns, "/f", overwrite=True, replaces=old.inode_id)
    st, _ = ns.complete(ns.open_file(row["id"], ROOT), ROOT, 2.0)
    assert st.inode_id == row["id"] and ns.stat("/f", ROOT).inode_id == row["id"]


def test_create_with_replaces_refused_when_the_path_holds_another_file(ns):
    _, old = write_file(ns, "/f", [10])
    _, other = write_file(ns, "/g", [20])
    ns.rename("/g", "/f", ROOT, 2.0, overwrite=True)
    with pytest.raises(errors.StaleVersionError):
        create_full(ns, "/f", overwrite=True, replaces=old.inode_id)
    ns.delete("/f", ROOT, 3.0)
    with pytest.raises(errors.StaleVersionError):          # removed: nothing to replace either
        create_full(ns, "/f", overwrite=True, replaces=other.inode_id)


def test_a_file_renamed_over_the_path_while_writing_is_not_overwritten(ns):
    """The window the create-time check leaves: another client renames a file over the
    path after our create and before our complete. Complete refuses; theirs stays."""
    _, old = write_file(ns, "/f", [10])
    row = create(ns, "/f", overwrite=True, replaces=old.inode_id)
    _, theirs = write_file(ns, "/g", [20], caller=ROOT)
    ns.rename("/g", "/f", ROOT, 3.0, overwrite=True)
    with pytest.raises(errors.StaleVersionError):
        ns.complete(ns.open_file(row["id"], ROOT), ROOT, 4.0)
    assert ns.stat("/f", ROOT).inode_id == theirs.inode_id and ns.stat("/f", ROOT).size == 20


def test_a_new_version_keeps_the_attributes_the_file_has_at_complete(ns):
    """keep_attributes (the mount's commits): a chmod, chown or setrep made by anyone
    while the new version was written holds; it used to be undone by the writer's
    restore of the attributes it saw at open."""
    _, old = write_file(ns, "/f", [10], mode=0o644)
    row = create(ns, "/f", overwrite=True, replaces=old.inode_id, mode=0o644, replication=3,
                 keep_attributes=True)
    ns.chmod("/f", 0o600, ROOT)
    ns.chown("/f", "alice", "users", ROOT)
    ns.set_replication("/f", 1, ROOT)
    st, _ = ns.complete(ns.open_file(row["id"], ROOT), ROOT, 2.0, keep_attributes=True)
    assert (st.mode, st.owner, st.group, st.replication) == (0o600, "alice", "users", 1)
    assert st.inode_id == row["id"] and ns.stat("/f", ROOT).mode == 0o600


def test_a_new_version_begins_with_the_attributes_the_file_has_at_create(ns):
    """Kept at create too: the mode the file is put back with when another client
    renamed it away meanwhile (a last-close-wins commit, O_TRUNC), and the replication
    its blocks are placed for. Not its owner then (the next test)."""
    write_file(ns, "/f", [10], mode=0o640, replication=2)
    ns.chown("/f", "alice", "users", ROOT)
    row = create(ns, "/f", overwrite=True, mode=0o644, replication=3, keep_attributes=True)
    assert (row["mode"], row["owner"], row["grp"], row["replication"]) == (0o640, "alice", "users", 2)
    ns.rename("/f", "/g", ROOT, 2.0)
    st, _ = ns.complete(ns.open_file(row["id"], ROOT), ROOT, 3.0, keep_attributes=True)
    assert (st.mode, st.owner, st.group, st.replication) == (0o640, "root", "supergroup", 2)


def test_a_new_version_whose_file_is_gone_at_complete_is_the_writers(ns):
    """Nothing is replaced at complete (the file was renamed away while it was written;
    a delete removes its writers too): the new file is the caller's, in its directory's
    group, as any new file. It kept the owner taken at create: bob's content appeared
    at the name owned by alice after alice had moved her file away."""
    ns.mkdir("/d", ROOT, 1.0, mode=0o777)
    ns.chown("/d", "root", "staff", ROOT)
    write_file(ns, "/d/f", [10], ALICE, mode=0o666)
    row = create(ns, "/d/f", BOB, overwrite=True, keep_attributes=True)
    assert (row["owner"], row["mode"]) == ("alice", 0o666)
    ns.rename("/d/f", "/d/kept", ALICE, 2.0)
    st, _ = ns.complete(ns.open_file(row["id"], BOB), BOB, 3.0, keep_attributes=True)
    assert (st.owner, st.group, st.mode) == ("bob", "staff", 0o666)


def test_the_owners_chmod_u_s_after_the_writes_holds(ns):
    """cp -p, tar -p, install -m 4755 through a mount whose user is not the superuser:
    the file is written, then fchmod-ed 04755 (that goes to the committed version),
    then closed. Linux clears SUID at a write, not at the close after it; the bits
    were cleared at complete (0o755). The owner's writes clear them in the mount."""
    ns.mkdir("/d", ROOT, 1.0, mode=0o777)
    _, empty = write_file(ns, "/d/prog", [], BOB, 1.0, mode=0o644)
    row = create(ns, "/d/prog", BOB, overwrite=True, replaces=empty.inode_id, keep_attributes=True)
    ns.chmod("/d/prog", 0o4755, BOB)
    st, _ = ns.complete(ns.open_file(row["id"], BOB), BOB, 2.0, keep_attributes=True)
    assert st.mode == 0o4755


def test_a_new_version_by_another_user_loses_setuid_and_a_plain_overwrite_keeps_nothing(ns):
    ns.mkdir("/d", ROOT, 1.0, mode=0o777)
    _, old = write_file(ns, "/d/prog", [10], mode=0o6777)
    row = create(ns, "/d/prog", BOB, overwrite=True, replaces=old.inode_id, keep_attributes=True)
    st, _ = ns.complete(ns.open_file(row["id"], BOB), BOB, 2.0, keep_attributes=True)
    assert (st.mode, st.owner) == (0o777, "root")   # as Linux's write without CAP_FSETID
    row = create(ns, "/d/prog", BOB, overwrite=True, keep_attributes=True)
    ns.chmod("/d/prog", 0o6777, ROOT)                 # set again while bob writes: bob's
    st, _ = ns.complete(ns.open_file(row["id"], BOB), BOB, 2.5, keep_attributes=True)
    assert st.mode == 0o777                           # content never runs as root
    row = create(ns, "/d/prog", ROOT, overwrite=True, keep_attributes=True)
    ns.chmod("/d/prog", 0o4757, ROOT)
    st, _ = ns.complete(ns.open_file(row["id"], ROOT), ROOT, 3.0, keep_attributes=True)
    assert st.mode == 0o4757                          # the superuser's keeps them
    write_file(ns, "/d/prog", [5], BOB, 4.0, overwrite=True, mode=0o644)
    st = ns.stat("/d/prog", ROOT)                     # put -f, HDFS's create-overwrite
    assert (st.mode, st.owner) == (0o644, "bob")


def test_a_delete_by_inode_id_removes_only_that_file(ns):
    """A FUSE mount's late removal of a file libfuse hid: a file put at the name since
    (a user's, made again) is not removed with it, nor is a writer of the name."""
    _, old = write_file(ns, "/.fuse_hidden0000000a00000001", [10])
    ns.delete("/.fuse_hidden0000000a00000001", ROOT, 2.0)
    _, mine = write_file(ns, "/.fuse_hidden0000000a00000001", [5], now=3.0)
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.delete("/.fuse_hidden0000000a00000001", ROOT, 4.0, inode_id=old.inode_id)
    row = create(ns, "/.fuse_hidden0000000a00000001", overwrite=True)
    ns.delete("/.fuse_hidden0000000a00000001", ROOT, 5.0, inode_id=mine.inode_id)
    assert ns.open_file(row["id"], ROOT)                       # its writer goes on
    with pytest.raises(errors.DfsFileNotFoundError):
        ns.stat("/.fuse_hidden0000000a00000001", ROOT)


def test_a_delete_of_files_only_refuses_a_directory(ns):
    # rm without -r stat-ed, then deleted: a directory made at the name in between
    # was removed. The namenode refuses it where the delete happens.
    ns.mkdir("/d", ROOT, 1.0)
    with pytest.raises(errors.DfsIsADirectoryError):
        ns.delete("/d", ROOT, 2.0, files_only=True)
    assert ns.stat("/d", ROOT).is_dir
    create(ns, "/f", complete=True)
    ns.delete("/f", ROOT, 2.0, files_only=True)
    ns.delete("/d", ROOT, 2.0)                       # rmdir of an empty one, as before


def test_a_block_size_must_be_a_multiple_of_16_kib(ns):
    # 1 MiB + 512 was accepted and got 512-byte chunks: ranged reads ~800x slower.
    for bad in (64 * 1024 - 16384, 1048576 + 512, 3 * 1048576 - 512, 200_000_000):
        with pytest.raises(errors.InvalidArgumentError, match="multiple of 16KiB"):
            create(ns, f"/bs{bad}", block_size=bad)
    for good in (64 * 1024, 96 * 1024, 1048576 + 16384):
        row = create(ns, f"/bs{good}", block_size=good)
        assert row["chunk_size"] >= 16384 and good % row["chunk_size"] == 0


def test_listing_takes_read_and_search_permission(ns):
    """HDFS's getListing needs READ_EXECUTE: with read alone a listing told each
    entry's size, owner and mtime that stat of the same entry refused."""
    ns.mkdir("/r", ROOT, 1.0)
    write_file(ns, "/r/secret", [3])
    ns.chmod("/r", 0o744, ROOT)
    with pytest.raises(errors.DfsPermissionError):
        ns.list("/r", BOB)
    with pytest.raises(errors.DfsPermissionError):
        ns.stat("/r/secret", BOB)
    ns.chmod("/r", 0o711, ROOT)           # search alone: stat, no listing
    assert ns.stat("/r/secret", BOB).size == 3
    with pytest.raises(errors.DfsPermissionError):
        ns.list("/r", BOB)
    ns.chmod("/r", 0o755, ROOT)
    assert [e.path for e in ns.list("/r", BOB)[1]] == ["/r/secret"]


@pytest.mark.parametrize("name", ["a b", "a:b", "ev\nil", "tab\t", "esc\x1b[31m", "x" * 257, "\u2028"])
def test_chown_refuses_names_a_listing_cannot_show(ns, name):
    write_file(ns, "/f", [1])
    with pytest.raises(errors.InvalidArgumentError):
        ns.chown("/f", name, "", ROOT)
    with pytest.raises(errors.InvalidArgumentError):
        ns.chown("/f", "", name, ROOT)
    st = ns.stat("/f", ROOT)
    assert (st.owner, st.group) == ("root", "supergroup")


@pytest.mark.parametrize("name", ["alice", "alice@EXAMPLE.COM", "DOM\\bob", "é", "x" * 256, "1000"])
def test_check_principal_takes_ordinary_names(name):
    check_principal(name)
