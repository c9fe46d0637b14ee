"""A rolling upgrade with real datanodes of an older dfs: the code of f64fcc4, the last
commit before the pipeline setup reply (26ae369), taken from this repository's history
and run on its PYTHONPATH, next to a current namenode, client and datanodes.

The namenode is upgraded first (docs/healing.md, "Upgrading"). Before datanodes said their
data-transfer protocol (dfs/rpc/protocol.py), every write failed while only older datanodes
were left, as "every live one failed this write": a current writer took an older node's
final acknowledgement for a missing setup reply. Now the write says that they run an
older dfs; once upgraded datanodes join, writes go to them, and the older ones still serve
reads, take deletions, and send and receive repair copies.

A real older datanode rather than a test switch making a current one act old: what has
to keep working is whatever that code does, not what a switch imitates of it. Taking it
costs a `git archive` of dfs/ (0.03 s); CI runs on a full clone of main."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dfs.testing.faults import locations

OLD_DFS = "f64fcc4588679374b19ff5a00120f43bbb3e084d"   # 2026-12-04, just before 26ae369
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def old_dfs(tmp_path_factory) -> str:
    """A directory holding the ``dfs`` package of OLD_DFS, for a datanode's PYTHONPATH."""
    r = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", OLD_DFS, "dfs"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, (f"git archive {OLD_DFS} failed (this test needs the repository's history; "
                               f"a shallow clone: git fetch --unshallow): {r.stderr.decode().strip()}")
    dest = str(tmp_path_factory.mktemp("dfs-f64fcc4"))
    subprocess.run(["tar", "-x", "-C", dest], input=r.stdout, check=True, timeout=60)
    return dest


def _json_node(cluster, address: str) -> dict:
    [n] = [n for n in cluster.report()["live"] if n["address"] == address]
    return n


def _holders(cluster, path: str) -> list[set[str]]:
    """The live replicas of each block of ``path``."""
    return [set(b["names"]) for b in locations(cluster, path)]


def test_a_rolling_upgrade_with_datanodes_from_before_the_setup_reply(make_cluster, old_dfs):
    c = make_cluster(datanodes=0, replication=3, start=False)
    # PYTHONSAFEPATH: `python -m dfs` would put the working directory (this checkout) first.
    old = c.add_datanode("/rack1", start=False, env={"PYTHONPATH": old_dfs, "PYTHONSAFEPATH": "1"})
    c.start()

    # Only the older datanode: the report flags it, and a write says why it cannot go there.
    n = _json_node(c, old.address)
    assert (n["protocol"], n["outdated"]) == (0, True)
    text = c.cli("admin", "report", check=True).stdout.decode()
    assert "1 running an older dfs (upgrade it)" in text and "runs an older dfs: upgrade it" in text
    r = c.cli("put", "-", "/hi", input=b"hi\n", timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert (f"no datanode can take this write: 1 live datanode runs an older dfs (upgrade it): {old.address}"
            in err), err
    assert f"datanode {old.address} runs an older dfs: it answered the pipeline setup" in err, err
    assert "every live one failed" not in err

    # Upgraded datanodes join: writes go to them at once (no pipeline retried), and the
    # third replica is copied to the older node (a repair copy TO it).
    new = [c.add_datanode("/rack2"), c.add_datanode("/rack1")]
    c.wait_for_datanodes(3)
    assert not _json_node(c, new[0].address)["outdated"]
    data = bytes(range(256)) * (6 << 10)              # 1.5 MiB: two blocks
    for path in ("/a", "/b"):
        r = c.cli("put", "-", path, input=data, timeout=60)
        assert r.returncode == 0 and not r.stderr, r.stderr.decode()
    c.wait_for_status("HEALTHY", timeout=30)
    assert all(old.address in h and len(h) == 3 for p in ("/a", "/b") for h in _holders(c, p))

    # The upgraded ones die: the older node alone serves reads, and its copies (FROM it)
    # give the new datanodes their replicas back; it takes deletions.
    for d in new:
        c.kill(d)
    c.wait_for(lambda: len(c.report()["dead"]) == 2, 15, "2 datanodes dead")
    assert c.cli("cat", "/a", check=True).stdout == data
    blocks_b = [b["block_id"] for b in locations(c, "/b")]
    assert len(blocks_b) == 2 and {d.name for b in blocks_b for d, _ in c.replica_files(b) if d.alive} == {old.name}
    c.cli("rm", "/b", check=True)
    again = [c.add_datanode("/rack2"), c.add_datanode("/rack1")]
    c.wait_for_datanodes(3)
    c.wait_for_status("HEALTHY", timeout=30)
    assert all(h == {old.address, *(d.address for d in again)} for h in _holders(c, "/a"))
    c.wait_for(lambda: not any(d is old for b in blocks_b for d, _ in c.replica_files(b)), 15,
               "the older datanode to delete /b's replicas")
    c.kill(old)                                       # what it copied reads back
    assert c.cli("cat", "/a", check=True).stdout == data
