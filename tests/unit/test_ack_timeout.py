"""A write pipeline's acknowledgement deadlines: each waiter outlasts the ones after it."""

from dfs.rpc import frames


def test_each_node_waits_longer_than_the_nodes_after_it_within_the_data_timeout():
    waits = [frames.ack_timeout(n) for n in range(0, 7)]
    # the client (3 nodes after it) > the head (2) > the middle (1): the node right
    # before a silent one gives up first, and names it in its acknowledgement
    assert waits[1] < waits[2] < waits[3] < waits[4]
    assert waits[3] - waits[2] >= frames.DATA_TIMEOUT / 10   # room for one node's fsync
    assert waits[0] == waits[1] and waits[4] == waits[6] == frames.DATA_TIMEOUT
    assert min(waits) >= frames.DATA_TIMEOUT / 2
