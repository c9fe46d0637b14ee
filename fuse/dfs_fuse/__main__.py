"""`python -m dfs_fuse --namenode HOST:PORT [-o OPTIONS] MOUNTPOINT`: serve a mount, in front.

`dfs mount` starts this in the background (see mount.py); it can also be run
by hand or under a supervisor. Options are mount.py's.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from dfs.cli import args as cli_args
from dfs.cli.args import UsageError
from dfs.cli.common import namenode_of
from dfs.config import SettingError, check_settings
from dfs.tuning import tune_malloc


class _Parser(argparse.ArgumentParser):
    """A usage error is one line and exit 2, as dfs's own (dfs/cli/args.py)."""

    def error(self, message: str):  # type: ignore[override]
        sys.stderr.write(f"dfs_fuse: {message}; see '{self.prog} --help'\n")
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="python -m dfs_fuse", description="serve a dfs FUSE mount")
    p.add_argument("--namenode", metavar="HOST:PORT", default=None, type=cli_args.namenode,
                   help="HOST:PORT, HOST (port 8020) or dfs://HOST:PORT (default $DFS_NAMENODE)")
    p.add_argument("-o", dest="options", action="append", default=[], metavar="OPTIONS")
    p.add_argument("mountpoint", metavar="MOUNTPOINT")
    args = p.parse_args(argv)
    try:   # the same checks as `dfs mount`: a bad value is a usage error, before any RPC
        check_settings()   # all of them: the reader's are read only when a file is first read
        from dfs_fuse.mount import MountOptions, parse_option_strings, serve
        namenode = args.namenode or namenode_of(args)
        opts = MountOptions.parse(parse_option_strings(args.options))
    except (UsageError, SettingError) as e:
        p.error(str(e))
    logging.basicConfig(
        level=logging.DEBUG if opts.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("fuse").setLevel(logging.DEBUG if opts.debug else logging.WARNING)
    tune_malloc()
    mnt = os.path.abspath(args.mountpoint)
    import signal

    from dfs import errors
    from dfs.client import DfsClient
    from dfs_fuse import cachedir
    from dfs_fuse.mount import _SIGNALS

    try:   # as `dfs mount` does: see cachedir.py
        cachedir.ensure(opts.cache_dir)
    except errors.DfsError as e:
        print(f"dfs_fuse: {e}", file=sys.stderr)
        return 1
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # before gRPC's threads: see mount.py
    client = DfsClient(namenode)
    try:   # run by hand or a supervisor: one line, not a mount whose every call fails
        client.ping()
    except errors.DfsError as e:
        print(f"dfs_fuse: {mnt}: {e}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return serve(namenode, mnt, opts)


if __name__ == "__main__":
    sys.exit(main())
