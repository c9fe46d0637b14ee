"""How many stored replicas a block needs before the writer acknowledges it."""

import pytest

from dfs.client.writer import required_replicas


@pytest.mark.parametrize("replication, allocated, need", [
    (1, 1, 1),
    (2, 2, 2), (2, 1, 1),
    (3, 3, 2), (3, 2, 2), (3, 1, 1),     # HDFS DEFAULT: replace when <= r/2 remain
    (4, 4, 3), (4, 2, 2),
    (5, 5, 3), (6, 6, 4), (10, 10, 6),
    (0, 3, 2), (0, 1, 1),                 # replication unknown: the pipeline's size
])
def test_required_replicas(replication, allocated, need):
    assert required_replicas(replication, allocated) == need
