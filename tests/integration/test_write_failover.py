"""The write path fails over fast and retries safely (dfs/client/writer.py,
docs/transport.md). Real processes: a datanode frozen with SIGSTOP (the kernel
still accepts its connections), a namenode SIGKILLed between committing a call
and replying to it."""

from __future__ import annotations

import os
import signal
import time

from dfs.client.writer import required_replicas
from dfs.testing.faults import MiB, check_all, locations


def test_a_frozen_first_datanode_is_given_up_in_seconds_not_the_data_timeout(make_cluster, tmp_path):
    # The writer's own host is placed first: a client on the frozen node's address
    # heads every pipeline with it until it is named. Before the pipeline's setup
    # reply had a deadline of its own, the put waited the first block's whole ack
    # timeout (17.5 s of DFS_DATA_TIMEOUT's 20 s) on it.
    c = make_cluster(datanodes=4)
    frozen = c.datanodes[0]
    src = tmp_path / "src"
    data = os.urandom(8 * MiB)
    src.write_bytes(data)
    c.pause(frozen)
    try:
        t0 = time.monotonic()
        r = c.cli("put", "--replication", "3", str(src), "/f", timeout=90,
                  env={"DFS_CLIENT_HOST": frozen.address.rpartition(":")[0]})
        took = time.monotonic() - t0
        print(f"put of 8 MiB, replication 3, first datanode frozen: {took:.1f} s")
        assert r.returncode == 0, r.stderr.decode()
        assert took < 12, f"the put waited {took:.1f} s on the frozen node"
        blocks = locations(c, "/f")
    finally:
        c.resume(frozen)
    assert len(blocks) == 8
    for b in blocks:
        assert frozen.address not in b["names"], b
        assert len(set(b["names"])) >= required_replicas(3, 3), b
    check_all(c, {"/f": data})

