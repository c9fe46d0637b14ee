"""dfs: a distributed file system for Python data engineering."""

__version__ = "0.1.0"
