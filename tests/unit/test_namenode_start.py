"""What a namenode checks in its data dir before it starts (dfs/namenode/server.py)."""

from __future__ import annotations

import os
import sqlite3

from dfs.namenode.namesystem import NameSystem
from dfs.namenode.server import key_too_open, lost_namespace
from dfs.namenode.store import SqliteStore


def test_a_namespace_beside_master_key_must_hold_its_cluster_id(tmp_path):
    db = str(tmp_path / "namespace.db")
    assert lost_namespace(db) == "missing"
    open(db, "wb").close()
    assert lost_namespace(db) == "empty (0 bytes)"
    os.remove(db)
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    assert lost_namespace(db) == "holds no namespace (no dfs tables)"
    os.remove(db)

    store = SqliteStore(db)   # the schema, but no cluster id and no root directory
    store.close()
    assert lost_namespace(db) == "holds no namespace (no cluster id, no root directory)"
    store = SqliteStore(db)
    NameSystem(store, os.urandom(32), superuser="me")   # the root directory and a cluster id
    store.close()
    assert lost_namespace(db) == ""
    con = sqlite3.connect(db)
    con.execute("DELETE FROM meta WHERE k='cluster_id'")   # one made before cluster ids
    con.commit()
    con.close()
    assert lost_namespace(db) == ""

    with open(db, "wb") as f:   # SqliteStore refuses it: "cannot open the metadata store"
        f.write(os.urandom(8192))
    assert lost_namespace(db) == ""


def test_a_master_key_open_to_group_or_others_is_refused():
    assert key_too_open(0o100600) == key_too_open(0o100400) == ""
    for mode in (0o100644, 0o100640, 0o100604, 0o100610, 0o100660, 0o100777):
        assert key_too_open(mode) == (f"permissions {mode & 0o777:04o} are too open "
                                      "(the key decrypts every file)"), oct(mode)


def test_a_key_made_over_a_leftover_tmp_file_is_0600(tmp_path):
    # O_CREAT keeps the mode of a master.key.tmp left from before (0644): dfs refused,
    # as too open, the key it had just made.
    from dfs.namenode.server import load_master_key
    tmp = tmp_path / "master.key.tmp"
    tmp.write_bytes(b"junk")
    tmp.chmod(0o644)
    assert len(load_master_key(str(tmp_path / "master.key"))) == 32
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
