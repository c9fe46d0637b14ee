"""The namenode: namespace, block map, placement, replication, liveness."""
