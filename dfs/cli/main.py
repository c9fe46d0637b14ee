"""`dfs` entry point: one argparse tree, one place that turns errors into exit codes.

Exit codes: 0 success, 1 failure (one line on stderr: `dfs: CMD: PATH: REASON`),
2 usage error. Tracebacks only with --debug.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from dfs import errors
from dfs.cli import admin, fs, servers
from dfs.tuning import tune_malloc


class CliError(Exception):
    """A failure already phrased for the user: `path: reason`."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}" if path else reason)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dfs", description="dfs: a distributed file system")
    p.add_argument("--namenode", metavar="HOST:PORT", help="namenode address (default $DFS_NAMENODE or 127.0.0.1:8020)")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    servers.add_parsers(sub)
    fs.add_parsers(sub)
    admin.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    tune_malloc()
    parser = build_parser()
    args = parser.parse_args(argv)
    # Client commands keep stderr to the one error line (SPEC §3): replica
    # failover and pipeline retries are logged only with --debug.
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.CRITICAL,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command in ("namenode", "datanode", "cluster"):
        logging.getLogger().setLevel(logging.DEBUG if args.debug else logging.INFO)
    name = args.command if args.command != "admin" else f"admin {getattr(args, 'admin_command', '')}".strip()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"dfs: {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Reader went away (e.g. `dfs cat | head`): not an error.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except errors.DfsError as e:
        if args.debug:
            raise
        path = e.path or _subject(args)
        reason = e.detail
        print(f"dfs: {name}: {path}: {reason}" if path else f"dfs: {name}: {reason}", file=sys.stderr)
        return 1
    except (CliError, OSError, ValueError) as e:
        if args.debug:
            raise
        print(f"dfs: {name}: {_os_message(e)}", file=sys.stderr)
        return 1


def _subject(args) -> str:
    """The dfs path a command was about, for an error that names none (an unreachable
    namenode, safe mode): SPEC §3's lines are `dfs: <command>: <path>: <reason>`."""
    if args.command == "put":
        return args.dest
    for name in ("path", "paths", "sources", "mountpoint"):
        v = getattr(args, name, None)
        if v:
            return v[0] if isinstance(v, list) else v
    return ""


def _os_message(e: BaseException) -> str:
    if isinstance(e, UnicodeEncodeError) and isinstance(e.object, str):
        # A name from the command line that is not UTF-8 (dfs names are protobuf strings).
        shown = e.object.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return f"{shown}: invalid name (not UTF-8)"
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return str(e)


if __name__ == "__main__":
    sys.exit(main())
