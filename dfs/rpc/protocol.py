"""The version number of the data-transfer protocol (proto/dfs/rpc/v1/datatransfer.proto).

A new protobuf field is ignored by an older peer, which sends its zero value in turn
(proto/README.md). When that zero value is not safe, the change bumps DATA_TRANSFER: a
datanode says its number when it registers (RegisterRequest.protocol), and the namenode
puts in a client's write pipeline only the nodes that speak enough of it (HDFS: a
DataNode's registration carries its software version). Pure: no I/O.

What each number added:

- 0: nothing said: a datanode from before the number was sent. Those from before
  26ae369 (2026-12-05) speak the block protocol as first released; those from 26ae369
  on speak 1 without saying so.
- 1: OpHeader.ready_reply and setup_ms, answered with WriteAck{ready} as soon as the
  header is read (26ae369, c368459), and RegisterRequest.protocol itself. A writer asks
  every pipeline for that setup reply; a datanode from before 26ae369 ignores it and
  sends only the block's final acknowledgement, and the writer gave it up as failed:
  with only such datanodes alive every write failed ("every live one failed this write").
"""

from __future__ import annotations

#: The data-transfer protocol this code speaks.
DATA_TRANSFER = 1

#: The oldest a datanode may speak and be put in a client's write pipeline. An older one
#: still serves reads, takes deletions, and sends and receives repair copies: those are
#: the datanodes' own transfers, which ask for no setup reply.
WRITE_PIPELINE = 1

#: The newest protocol a datanode that says none (0) may speak: from 26ae369 until the
#: number was sent, datanodes spoke 1 without saying so.
UNNUMBERED_UP_TO = 1


def takes_writes(protocol: int) -> bool:
    """A datanode that said ``protocol`` at registration speaks what writers need."""
    return protocol >= WRITE_PIPELINE


def may_take_writes(protocol: int) -> bool:
    """It may: it said nothing (0), and some of those speak enough. Such a node is a write
    target of last resort, when no node that ``takes_writes`` can take the block: namenode
    first, then datanodes is the upgrade order, and an upgraded namenode refusing every
    datanode of the release before it stopped all writes until the first one was upgraded.
    One from before 26ae369 fails the write, and the writer says why (frames.py)."""
    return takes_writes(protocol) or (protocol == 0 and WRITE_PIPELINE <= UNNUMBERED_UP_TO)
