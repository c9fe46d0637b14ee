"""The dfs client: namespace calls, block reader and writer, fsspec filesystem."""

from dfs.client.client import DfsClient

__all__ = ["DfsClient"]
