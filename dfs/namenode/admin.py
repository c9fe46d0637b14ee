"""Cluster administration on the namenode: the report, fsck, safemode and
decommissioning (what `dfs admin` and `dfs fsck` ask for).

``ClusterAdmin`` is a part of ``NameSystem`` (namesystem.py), kept in a module
of its own: its methods use the namesystem's lock and state as NameSystem's
own do.
"""

from __future__ import annotations

import logging
import stat
import time

from dfs import errors
from dfs.model import DatanodeDescriptor
from dfs.namenode import health
from dfs.namenode.membership import DEAD, admin_key
from dfs.namenode.namespace import Caller, normalize

log = logging.getLogger(__name__)


class ClusterAdmin:
    """Report, fsck, safemode, decommission; mixed into NameSystem."""

    def node_state(self, node: DatanodeDescriptor, now: float) -> str:
        s = self.members.state(node, now)
        if s != DEAD and node.admin_state != "normal":
            return node.admin_state
        return s

    def report(self) -> dict:
        with self.lock:
            now = self.clock()
            live = self.members.live_ids(now)
            in_service = {u for u in live if self.members.nodes[u].admin_state == "normal"}
            nblocks, under, missing, corrupt = self.bmap.counts(live, in_service)
            unreported = 0
            if self.safemode_auto:      # not reported yet is not missing (as fsck)
                unreported = sum(1 for b, info in self.bmap.blocks.items() if info.complete
                                 and not self.bmap.replicas.get(b) and not self.bmap.corrupt.get(b))
                missing -= unreported
            pending = self.monitor.pending_bytes(live)
            rate = self.monitor.repair_rate(now)
            files, dirs = self.store.stats()  # type: ignore[attr-defined]
            return {
                "safemode": self.in_safemode(),
                "nodes": [(n, self.node_state(n, now)) for n in self.members.nodes.values()],
                "under_replicated": under, "missing": missing, "corrupt": corrupt, "unreported": unreported,
                "blocks": nblocks, "files": files, "pending_repair_bytes": float(pending),
                "repair_rate": rate,
            }

    def fsck(self, caller: Caller, path: str, files: bool = True) -> dict:
        root, rows, blocks_of = self.read_subtree(caller, path, blocks=True)  # without the lock

        def breathe() -> None:   # a million files take seconds: others' calls go between
            self.lock.release()
            time.sleep(0)
            self.lock.acquire()

        with self.lock:
            # In the startup safe mode a block nobody has reported yet is not missing:
            # its holders may not have sent their block report (it said CORRUPT, exit 1).
            out = health.check_tree(rows, root,
                                    normalize(path), blocks_of, self.bmap,
                                    self.members.live_ids(self.clock()), self.members.nodes,
                                    unreported_ok=self.safemode_auto, breathe=breathe, all_files=files,
                                    may_read=lambda r: self.ns.allowed(r, caller, stat.S_IROTH))
            out["safemode"] = self.in_safemode()
            out["safemode_reason"] = ("entered by an administrator" if self.safemode_manual else
                                      self._safemode_progress() if self.safemode_auto else "")
            return out

    def _admin_only(self, caller: Caller | None, what: str, subject: str = "") -> None:
        """Cluster-wide switches are the superuser's (as HDFS's dfsadmin). ``subject``:
        what the refused call was about (a datanode's HOST:PORT), shown before the reason."""
        if caller is not None and not self.ns.is_superuser(caller):
            raise errors.DfsPermissionError(f"Permission denied: {what} needs the superuser", subject)

    def safemode(self, action: str, caller: Caller | None = None) -> tuple[bool, str]:
        if action != "get":
            self._admin_only(caller, f"safemode {action}")
        with self.lock:
            if action == "enter":
                self.safemode_manual = True
            elif action == "leave":
                self.safemode_manual = False
                self.safemode_auto = False
            elif action != "get":
                raise errors.InvalidArgumentError(f"unknown safemode action {action!r}")
            reason = ("entered by an administrator" if self.safemode_manual else
                      self._safemode_progress() if self.safemode_auto else "")
            return self.in_safemode(), reason

    def decommission(self, address: str, caller: Caller | None = None, cancel: bool = False) -> dict:
        """Returns ``stuck_blocks``: how many of the node's complete blocks have a
        replication above ``in_service`` (the other live datanodes in service), the
        highest being ``max_replication``: those cannot all be copied off, so the node
        stays decommissioning until datanodes join or the replication is lowered (HDFS
        accepts it too; the CLI warns: it used to be said only in the namenode's log)."""
        self._admin_only(caller, "decommission", address)
        out = {"stuck_blocks": 0, "in_service": 0, "max_replication": 0}
        with self.lock:
            d = self.members.by_address(address)
            if d is None:
                raise errors.DfsFileNotFoundError(_unknown_datanode(self.clock() - self.started), address)
            if cancel:
                # Back in service (a decommission by mistake was for good: remembered by
                # the node's uuid, it outlived restarts). Its replicas count again: the
                # copies made meanwhile are surplus and trimmed.
                if d.admin_state != "normal":
                    log.info("datanode %s is back in service (was %s)", d.address, d.admin_state)
                    d.admin_state = "normal"
                    self.store.set_meta(admin_key(d.uuid), "normal")
                    self.monitor.want(self.bmap.by_node.get(d.uuid, ()))
                    self.monitor.nodes_changed()
            elif d.admin_state == "normal":
                d.admin_state = "decommissioning"
                log.info("decommissioning datanode %s: %d blocks to move off", d.address,
                         len(self.bmap.by_node.get(d.uuid, ())))
                # Remembered across namenode restarts (like HDFS's exclude file).
                self.store.set_meta(admin_key(d.uuid), "decommissioning")
                self.monitor.want(self.bmap.by_node.get(d.uuid, ()))
            if not cancel and d.admin_state == "decommissioning":
                out = self._decommission_outlook(d)
        try:
            self._sync()
        except errors.MetadataStoreError:
            with self.lock:
                kept = self.store.get_meta(admin_key(d.uuid))
                if cancel and kept in ("decommissioning", "decommissioned"):
                    d.admin_state = kept         # not remembered: not back in service either
                elif not cancel and kept in (None, "normal") and d.admin_state == "decommissioning":
                    d.admin_state = "normal"     # not remembered: not decommissioning either
            raise
        return out

    def _decommission_outlook(self, d: DatanodeDescriptor) -> dict:
        """See decommission()."""
        now = self.clock()
        in_service = sum(1 for u in self.members.live_ids(now) if u != d.uuid
                         and self.members.nodes[u].admin_state == "normal" and not self.members.nodes[u].storage_failed)
        stuck = top = 0
        for b in self.bmap.by_node.get(d.uuid, ()):
            info = self.bmap.blocks.get(b)
            if info is None or not info.complete:
                continue
            top = max(top, info.replication)
            stuck += info.replication > in_service
        if stuck:
            log.warning("datanode %s will stay decommissioning: %d of its blocks have replication up to %d, "
                        "%d other datanodes are in service", d.address, stuck, top, in_service)
        return {"stuck_blocks": stuck, "in_service": in_service, "max_replication": top}


def _unknown_datanode(since_start: float) -> str:
    """Why an address names no datanode. The namenode knows only those that registered
    since it started (a decommission is remembered by uuid, and applies when the node
    is back): right after a restart "no such datanode" read as "the decommission was
    lost" for a node that had only not re-registered yet."""
    return (f"no such datanode: none has registered at this address since the namenode started "
            f"{_age(since_start)} ago (dfs admin report lists those that have)")


def _age(seconds: float) -> str:
    for unit, size, up_to in (("s", 1, 120), ("min", 60, 7200), ("h", 3600, 172800)):
        if seconds < up_to:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds / 86400:.0f} days"
