"""The namenode's side of the datanode protocol: registration, heartbeats and
block reports (HDFS's DatanodeProtocol), and the commands a heartbeat reply
carries back.

``DatanodeProtocol`` is a part of ``NameSystem`` (namesystem.py), kept in a
module of its own: its methods use the namesystem's lock and state (the
membership, the block map, the ReplicationMonitor, the command queues) as
NameSystem's own do. The gRPC servicer for datanodes (service.py) calls them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from dfs import errors
from dfs.datadir import foreign_cluster
from dfs.model import DatanodeDescriptor
from dfs.namenode.membership import LIVE, admin_key
from dfs.rpc import protocol

log = logging.getLogger(__name__)

CLIENT_WINDOW = 1.0               # a datanode served clients this recently: copies keep yielding
# Replica deletions sent in one heartbeat reply (HDFS: dfs.block.invalidate.limit, 1000).
# The datanode carries them out on its heartbeat thread (~0.2 ms each here: two renames),
# so a recursive delete of a big tree, sent at once, would keep it from beating for
# longer than the dead-node timeout. The rest wait for the next beats, which come fast.
INVALIDATE_LIMIT = 1000


@dataclass
class NodeCommands:
    invalidate: set[int] = field(default_factory=set)
    transfers: list[tuple[int, int, int, list[str]]] = field(default_factory=list)  # (block, gs, len, target addrs)
    request_report: bool = False
    next_heartbeat: float = 0.0   # seconds until the node should beat again (0: its own interval)
    clients_active: bool = False  # some datanode serves clients: repair copies yield to them
    urgent: set[int] = field(default_factory=set)   # transfers of endangered blocks: no yielding


#: Meta key of the datanodes live when last recorded (a JSON list of uuids).
LIVE_DATANODES_KEY = "live_datanodes"


def older_protocol(number: int) -> str:
    """How the log and errors name an older datanode's data-transfer protocol."""
    said = f"protocol {number}" if number else "no protocol number"
    return f"{said}; writers need {protocol.WRITE_PIPELINE}"


def older_only(nodes: list[DatanodeDescriptor]) -> str:
    """Why a write has nowhere to go when every datanode that could take it runs an older
    dfs (``nodes``): not "every live one failed this write", which sent operators after
    failing disks during a rolling upgrade (the writer adds what each node said)."""
    n = len(nodes)
    return (f"no datanode can take this write: {n} live datanode{'s' * (n != 1)} run{'s' * (n == 1)} an "
            f"older dfs (upgrade {'them' if n != 1 else 'it'}): {', '.join(sorted(d.address for d in nodes))}")


class DatanodeProtocol:
    """Registration, heartbeats and block reports; mixed into NameSystem."""

    def register(self, node: DatanodeDescriptor, cluster_id: str = "", storage_failed: str = "",
                 storage_failed_for: float = 0.0) -> str:
        """-> our cluster id, for a datanode that has none yet to record.
        ``storage_failed``: why its data dir is dead, for ``storage_failed_for`` s (see heartbeat)."""
        reason = foreign_cluster(self.cluster_id, cluster_id)
        if reason:
            log.warning("refused datanode %s: %s", node.address, reason)
            raise errors.ForeignClusterError(reason)
        with self.lock:
            now = self.clock()
            old = self.members.nodes.get(node.uuid)
            if old is not None and old.address != node.address and self.members.state(old, now) == LIVE:
                # Two datanodes with one identity: a data dir copied (a cloned disk or VM
                # image). The newcomer silently took the node's place: the report lost a
                # node while both ran, their heartbeats and commands mixed. A node restarted
                # on another address is let in once its old self has missed two heartbeats.
                log.warning("refused datanode %s: its uuid %s is that of live datanode %s", node.address,
                            node.uuid, old.address)
                raise errors.DfsFileExistsError(
                    f"datanode uuid {node.uuid} is in use by the live datanode {old.address} (a copy of its "
                    f"data dir? each datanode needs its own); retried", node.address)
            was_dead = old is not None and node.uuid in self.members.dead
            replaced = [n for n in self.members.nodes.values() if n.address == node.address and n.uuid != node.uuid]
            for other in replaced:
                if self.members.state(other, now) == LIVE:
                    # Two datanodes giving one address (e.g. both --listen 127.0.0.1:9866 on
                    # two machines): each registration would evict the other.
                    log.warning("refused datanode %s (uuid %s): live datanode %s has that address",
                                node.address, node.uuid, other.uuid)
                    raise errors.DfsFileExistsError(
                        f"address in use by the live datanode {other.uuid} (give each datanode an "
                        f"address of its own in --listen); retried", node.address)
            for other in replaced:
                # Its replicas went with it (a wiped disk, a new machine on the old address):
                # lost now, not when a periodic scan comes across them.
                self._record_live(other.uuid, False)   # gone for good: not waited for
                lost = self.bmap.remove_node(other.uuid)
                self._forget_commands(other.uuid)
                self.monitor.node_gone(other.uuid, lost)
                log.warning("datanode %s has a new uuid %s (was %s): %d replicas of the old one are gone",
                            node.address, node.uuid, other.uuid, len(lost))
            self.members.register(node, now)
            self._storage_report(node, storage_failed, storage_failed_for, now)
            self._forget_commands(node.uuid)
            # Copies it was sending or receiving died with its previous life
            # (a datanode wipes tmp/ at start): plan them again.
            self.monitor.node_gone(node.uuid, ())
            self.monitor.nodes_changed()    # somewhere new for blocks that had nowhere to go
            if node.admin_state == "normal":
                saved = self.store.get_meta(admin_key(node.uuid))
                if saved in ("decommissioning", "decommissioned"):
                    node.admin_state = saved
            if was_dead:
                log.info("datanode %s is back (was dead); it re-registers and reports its blocks", node.address)
            if not protocol.takes_writes(node.protocol):
                log.warning("datanode %s runs an older dfs (%s): upgrade it. It serves reads and repair "
                            "copies, and takes %s", node.address, older_protocol(node.protocol),
                            "writes only when no upgraded datanode can"
                            if protocol.may_take_writes(node.protocol) else "no writes")
            recorded = self._record_live(node.uuid, True)
        if recorded:
            self._sync()
        return self.cluster_id

    def _record_live(self, uuid: str, live: bool) -> bool:
        """Keep the durable list of the datanodes live now (under the lock; the caller
        syncs). After a restart the namenode waits for these to register again before
        it places a block on fewer of them (``_awaiting_datanodes``). -> changed."""
        if (uuid in self.recorded_live) == live:
            return False
        if live:
            self.recorded_live.add(uuid)
        else:
            self.recorded_live.discard(uuid)
        self.store.set_meta(LIVE_DATANODES_KEY, json.dumps(sorted(self.recorded_live)))
        self.store.want_durable()
        return True

    def heartbeat(self, uuid: str, stats: dict, received: list[tuple[int, int, int]],
                  deleted: list[int], corrupt: list[int],
                  failed: list[tuple[int, list[str], str]] = (),
                  repair_bytes: int | None = None, client_ops: int = 0, storage_failed: str = "",
                  storage_failed_for: float = 0.0) -> tuple[bool, NodeCommands]:
        """A datanode's beat: its stats and news; the reply carries its commands.

        failed: copies this node was told to make and could not,
        as (block id, target addresses, reason); repair_bytes: the bytes its
        copies have delivered since it started (a counter, for the repair rate);
        client_ops: client reads/writes it serves now (copies everywhere yield to them);
        storage_failed: why its data dir is dead ("" while it works), for
        storage_failed_for seconds: no new replica goes there, the report shows it."""
        with self.lock:
            now = self.clock()
            before = self.members.nodes.get(uuid)
            had_room = before is not None and before.remaining > 0
            node = self.members.heartbeat(uuid, now, **stats)
            if node is None:
                return True, NodeCommands()
            self._storage_report(node, storage_failed, storage_failed_for, now)
            if had_room != (node.remaining > 0):   # its disk filled up / refused writes, or recovered
                if node.remaining > 0:
                    self.monitor.nodes_changed()
                log.warning("datanode %s %s", node.address, "reports room again: takes new blocks"
                            if node.remaining > 0 else "reports no free space: no new blocks go there")
            if client_ops:
                self._clients_seen[uuid] = now
            if repair_bytes is not None:
                self.monitor.repair_progress(uuid, repair_bytes, now)
            news = False
            dropping = self.commands[uuid].invalidate if uuid in self.commands else set()
            unknown = []
            for b, gs, length in received:
                if b in dropping:
                    # Reported before this node learns (in this very reply) that the copy
                    # is surplus: counting it again would undo the drop until it is gone.
                    continue
                if not self.bmap.add_replica(b, uuid, gs, length) and b not in self.bmap.blocks:
                    unknown.append(b)
                    continue
                if self.monitor.replica_landed(b, uuid, length, now):
                    news = True   # a stream slot is free again
                info = self.bmap.blocks.get(b)
                if info is not None and info.complete:
                    self.monitor.want((b,), wake=False)
            if unknown:
                future, reserved = self._never_made(unknown)
                if future:   # the block report's rule (below): kept, and said
                    log.error("datanode %s received %d replicas of blocks this namespace never made (ids "
                              "above %d, e.g. %d): kept, not deleted", node.address, len(future),
                              reserved, min(future))
                self.cmds(uuid).invalidate.update(b for b in unknown if b not in future)
            for b in deleted:
                self.bmap.remove_replica(b, uuid)
                if b in self.bmap.blocks:
                    # A lost replica (its files vanished; or one we trimmed, which costs
                    # only a plan round): plan its copy now, not at the next tick.
                    self.monitor.want((b,), wake=False)
                    news = True
            for b in corrupt:
                if uuid not in self.bmap.corrupt.get(b, ()):
                    log.warning("datanode %s reports its replica of block %d corrupt", node.address, b)
                    self.monitor.corrupt_found(b, now)
                self.bmap.mark_corrupt(b, uuid, by_holder=True)
                self.monitor.want((b,), wake=False)
                news = True
            for b, targets, reason in failed:
                log.warning("copy of block %d from %s to %s failed: %s", b, node.address,
                            ",".join(targets) or "?", reason)
                if self.monitor.copy_failed(b, uuid, self._ids_for(targets), now):
                    self.monitor.want((b,), wake=False)
                    news = True
            if news:
                self.monitor.wake()
            cmds = self.commands.pop(uuid, NodeCommands())
            more = len(cmds.invalidate) > INVALIDATE_LIMIT
            if more:   # set.pop, not a copy: a mass delete leaves ~10^6 here, 1000 go per beat
                rest = cmds.invalidate
                cmds.invalidate = {rest.pop() for _ in range(INVALIDATE_LIMIT)}
                self.cmds(uuid).invalidate = rest   # queued: still leaving (replicas_leaving)
            if cmds.invalidate:   # (the popped set: nothing adds to it any more)
                self._deleting[uuid] = cmds.invalidate
            else:
                self._deleting.pop(uuid, None)
            if more or self.monitor.busy(uuid):
                cmds.next_heartbeat = self.fast_heartbeat
                cmds.clients_active = any(t > now - CLIENT_WINDOW for t in self._clients_seen.values())
            return False, cmds

    def _storage_report(self, node: DatanodeDescriptor, failed: str, failed_for: float, now: float) -> None:
        """Take in what a node says of its data dir (under the lock); said once in the log."""
        if not self.members.storage_report(node, failed, failed_for, now):
            return
        if failed:
            log.error("datanode %s: its data dir is dead (%s), %.0f s ago: it holds and takes no replicas "
                      "until its disk is replaced and it restarts", node.address, failed, max(0.0, failed_for))
        else:
            log.warning("datanode %s: its data dir works again", node.address)
            self.monitor.nodes_changed()    # somewhere new for blocks that had nowhere to go

    @property
    def fast_heartbeat(self) -> float:
        """How often datanodes beat while repairs are under way or a node is stale (it may be dying)."""
        return min(self.members.heartbeat_interval, max(0.1, self.members.heartbeat_interval / 10))

    def block_report(self, uuid: str, blocks: list[tuple[int, int, int]]) -> None:
        with self.lock:
            if uuid not in self.members.nodes:
                return
            before = {b for b in self.bmap.by_node.get(uuid, ()) if uuid in self.bmap.holders(b)}
            unwanted = self.bmap.node_report(uuid, blocks)
            # Ids above any this namespace ever reserved were not made by it: its metadata
            # is older than the datanode's (a namenode dir restored from a backup, or an
            # older copy of it). Deleting them as unknown destroys whatever was written
            # since, for good; they are kept and the operator told (HDFS stays in safe
            # mode over blocks with future generation stamps for the same reason).
            future, reserved = self._never_made(unwanted)
            if future:
                log.error("block report from %s: %d replicas of blocks this namespace never made (ids above "
                          "%d, e.g. %d): kept, not deleted -- is this namenode's metadata older than its "
                          "datanodes' data (restored from a backup)?", self.members.nodes[uuid].address,
                          len(future), reserved, min(future))
                unwanted = [b for b in unwanted if b not in future]
            if unwanted:
                self.cmds(uuid).invalidate.update(unwanted)
            self.members.reported(uuid, len(blocks))
            self._update_safemode()
            # Replicas it no longer has (lost on disk) need copies; a node that comes
            # back brings replicas that may now be surplus.
            gone = {b for b in before if uuid not in self.bmap.holders(b)}
            if gone:
                log.warning("block report from %s: %d replicas no longer there", self.members.nodes[uuid].address,
                            len(gone))
            self.monitor.want(b for b in gone | {b for b, _, _ in blocks} if b in self.bmap.blocks)

    def _never_made(self, block_ids: list[int]) -> tuple[set[int], int]:
        """Those of ``block_ids`` above every id this namespace ever reserved: not made by
        it, so not its to delete (see block_report); and that highest reserved id."""
        reserved = int(self.store.get_meta("block_id") or "0")
        return {b for b in block_ids if b > reserved}, reserved
