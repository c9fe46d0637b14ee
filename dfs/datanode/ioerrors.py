"""Which errors met opening or reading a replica say something about the replica.

One rule for the read path (transfer.py), the block scanner and a failed copy's
local check (replicator.py): a replica is marked corrupt only on evidence about
the replica itself. Running short of descriptors or memory says nothing about
it: the scanner and the copy check used to take EMFILE for damage, and a
datanode out of descriptors marked every healthy replica it scanned corrupt.
"""

from __future__ import annotations

import errno

# The process is short of descriptors (its own, or the system's) or of memory, or
# the call was interrupted: a later try may succeed, and the replica may well be fine.
# EIO is not among them: the disk failed to read the replica back.
_TRANSIENT = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EINTR, errno.EAGAIN))


def not_the_replica(e: BaseException) -> bool:
    """Does ``e``, raised opening or reading a replica, leave the replica's state unknown
    (try again later) rather than show it damaged?"""
    return isinstance(e, OSError) and e.errno in _TRANSIENT
