"""fsck: the health of a subtree's files and blocks. Pure: no I/O.

A block is HEALTHY with its target number of live, non-corrupt replicas,
DEGRADED (readable, under-replicated) with fewer, and CORRUPT when no good
replica is live (``missing`` if none is known at all, ``corrupt`` if the only
ones are corrupt). A file and the whole tree take their worst block's state.
"""

from __future__ import annotations

from typing import Callable

from dfs.model import DatanodeDescriptor
from dfs.namenode.blockmap import BlockMap


def check_tree(rows: list[dict], root_id: int, root_path: str, blocks_of: Callable[[int], list[dict]],
               bmap: BlockMap, live: set[str], nodes: dict[str, DatanodeDescriptor]) -> dict:
    """``rows``: the subtree's inode rows, in any order."""
    files = dirs = nblocks = under = missing = corrupt = total = 0
    details = []
    by_id = {r["id"]: r for r in rows}
    paths = {root_id: root_path.rstrip("/") or "/"}

    def path_of(i: int) -> str:
        if i not in paths:
            r = by_id[i]
            name = r["name"] if r["name"] is not None else r["pending_name"] + " (being written)"
            paths[i] = path_of(r["parent"]).rstrip("/") + "/" + name
        return paths[i]

    for r in rows:
        path_of(r["id"])
        if r["is_dir"]:
            dirs += 1
            continue
        if r["state"] != "C":
            continue
        files += 1
        total += r["length"]
        fstatus = "HEALTHY"
        blocks = []
        for b in blocks_of(r["id"]):
            nblocks += 1
            good = bmap.replicas.get(b["id"], set()) & live
            if not good:
                if bmap.corrupt.get(b["id"]):
                    corrupt += 1
                else:
                    missing += 1
                fstatus = "CORRUPT"
            elif len(good) < r["replication"]:
                under += 1
                if fstatus == "HEALTHY":
                    fstatus = "DEGRADED"
            blocks.append((b, [nodes[u] for u in good if u in nodes]))
        details.append({"path": paths[r["id"]], "length": r["length"], "replication": r["replication"],
                        "status": fstatus, "blocks": blocks})
    status = "CORRUPT" if (missing or corrupt) else "DEGRADED" if under else "HEALTHY"
    return {"status": status, "files": files, "directories": dirs, "blocks": nblocks,
            "under_replicated": under, "missing": missing, "corrupt": corrupt,
            "total_size": total, "details": details}
