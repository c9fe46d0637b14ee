"""FUSE mount for dfs (see fuse/README.md)."""
