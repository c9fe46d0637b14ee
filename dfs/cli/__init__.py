"""The `dfs` command line."""
