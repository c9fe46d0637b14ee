"""Public test support: a real multi-process cluster with fault injection."""

from dfs.testing.cluster import Cluster, Node

__all__ = ["Cluster", "Node"]
