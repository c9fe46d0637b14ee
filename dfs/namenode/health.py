"""fsck: the health of a subtree's files and blocks. Pure: no I/O.

A block is HEALTHY with its target number of live, non-corrupt replicas on
nodes in service, DEGRADED (readable, under-replicated) with fewer, and CORRUPT
when no good replica is live (``missing`` if none is known at all, ``corrupt``
if the only ones are corrupt). A file and the whole tree take their worst
block's state. As HDFS's, replicas on decommissioning or decommissioned (live)
nodes do not count toward the target -- they are about to go -- but keep the
block readable: a block only they hold is DEGRADED, and they are counted apart
(``decommissioning_replicas``, ``decommissioned_replicas``).

``unreported``: the namenode has just started (its startup safe mode is on)
and a block no datanode has reported yet is counted as ``unreported``, not
missing: its holders may simply not have sent their block report. The tree is
then DEGRADED (not HEALTHY, not CORRUPT) unless something is really missing.
"""

from __future__ import annotations

from collections.abc import Callable

from dfs.model import DatanodeDescriptor
from dfs.namenode.blockmap import BlockMap


def check_tree(rows: list[dict], root_id: int, root_path: str, blocks_of: Callable[[int], list[dict]],
               bmap: BlockMap, live: set[str], nodes: dict[str, DatanodeDescriptor],
               unreported_ok: bool = False, breathe: Callable[[], None] = lambda: None,
               all_files: bool = True, may_read: Callable[[dict], bool] = lambda r: True) -> dict:
    """``rows``: the subtree's inode rows, in any order. ``live``: live (or stale)
    datanodes, in service or not; ``nodes[u].admin_state`` says which.
    ``unreported_ok``: the startup safe mode is on (see the module doc).
    ``breathe()`` is called every few thousand files (the caller lets other calls
    take the lock it holds). ``all_files``: details of every file, else only of
    those not HEALTHY (what fsck prints by default, as HDFS's). ``may_read(row)``:
    whether the caller may see a file's blocks and their locations (what locate
    refuses without read permission); a file it may not read is listed without."""
    files = dirs = nblocks = under = missing = corrupt = total = unreported = 0
    decommissioning = decommissioned = 0
    details = []
    by_id = {r["id"]: r for r in rows}
    paths = {root_id: root_path.rstrip("/") or "/"}

    def path_of(i: int) -> str:
        if i not in paths:
            r = by_id[i]
            name = r["name"] if r["name"] is not None else r["pending_name"] + " (being written)"
            paths[i] = path_of(r["parent"]).rstrip("/") + "/" + name
        return paths[i]

    for i, r in enumerate(rows):
        if i % 5000 == 4999:
            breathe()
        path_of(r["id"])
        if r["is_dir"]:
            dirs += 1
            continue
        if r["state"] != "C":
            continue
        file_blocks = blocks_of(r["id"])
        if any(b["id"] not in bmap.blocks for b in file_blocks):
            # Read from a snapshot, checked against the block map now: the file was
            # replaced or removed meanwhile (its blocks went with it). Not missing: it is
            # skipped, as HDFS's fsck skips a file that vanishes during its walk (it
            # said CORRUPT whenever files were being overwritten).
            continue
        files += 1
        total += r["length"]
        fstatus = "HEALTHY"
        blocks = []
        for b in file_blocks:
            nblocks += 1
            good = bmap.replicas.get(b["id"], set()) & live
            leaving = [u for u in good if u in nodes and nodes[u].admin_state != "normal"]
            for u in leaving:
                if nodes[u].admin_state == "decommissioned":
                    decommissioned += 1
                else:
                    decommissioning += 1
            if not good:
                if bmap.corrupt.get(b["id"]):
                    corrupt += 1
                elif unreported_ok:
                    unreported += 1
                    if fstatus == "HEALTHY":
                        fstatus = "DEGRADED"
                    blocks.append((b, []))
                    continue
                else:
                    missing += 1
                fstatus = "CORRUPT"
            elif len(good) - len(leaving) < r["replication"]:
                under += 1
                if fstatus == "HEALTHY":
                    fstatus = "DEGRADED"
            blocks.append((b, [nodes[u] for u in good if u in nodes]))
        if all_files or fstatus != "HEALTHY":
            details.append({"path": paths[r["id"]], "length": r["length"], "replication": r["replication"],
                            "status": fstatus, "blocks": blocks if may_read(r) else []})
    status = "CORRUPT" if (missing or corrupt) else "DEGRADED" if (under or unreported) else "HEALTHY"
    return {"status": status, "files": files, "directories": dirs, "blocks": nblocks,
            "under_replicated": under, "missing": missing, "corrupt": corrupt, "unreported": unreported,
            "decommissioning_replicas": decommissioning, "decommissioned_replicas": decommissioned,
            "total_size": total, "details": details}
