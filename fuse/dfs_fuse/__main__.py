"""`python -m dfs_fuse --namenode HOST:PORT [-o OPTIONS] MOUNTPOINT`: serve a mount, in front.

`dfs mount` starts this in the background (see mount.py); it can also be run
by hand or under a supervisor. Options are mount.py's.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from dfs.config import default_namenode
from dfs.tuning import tune_malloc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dfs_fuse", description="serve a dfs FUSE mount")
    p.add_argument("--namenode", metavar="HOST:PORT", default=None)
    p.add_argument("-o", dest="options", action="append", default=[], metavar="OPTIONS")
    p.add_argument("mountpoint", metavar="MOUNTPOINT")
    args = p.parse_args(argv)
    from dfs_fuse.mount import MountOptions, parse_option_strings, serve

    raw = parse_option_strings(args.options)
    opts = MountOptions.parse(raw)
    logging.basicConfig(
        level=logging.DEBUG if opts.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("fuse").setLevel(logging.DEBUG if opts.debug else logging.WARNING)
    tune_malloc()
    return serve(args.namenode or default_namenode(), os.path.abspath(args.mountpoint), opts)


if __name__ == "__main__":
    sys.exit(main())
