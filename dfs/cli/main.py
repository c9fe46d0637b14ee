"""`dfs` entry point: one argparse tree, one place that turns errors into exit codes.

Exit codes: 0 success, 1 failure (one line on stderr: `dfs: CMD: PATH: REASON`),
2 usage error (one line too), 141 stdout's reader went away (quietly, as `cat`).
Tracebacks only with --debug. The choices SPEC leaves open are in docs/cli.md.
"""

from __future__ import annotations

import argparse
import logging
import select
import sys

from dfs import errors
from dfs.cli import admin, fs, servers
from dfs.cli import args as cli_args
from dfs.cli.args import EXIT_BROKEN_PIPE, Parser, UsageError, discard_stdout
from dfs.cli.common import CheckedStdout, ClosedStdout, StdoutError, error_line, namenode_of
from dfs.config import SettingError, check_settings, split_url, url_user
from dfs.tuning import tune_malloc


class CliError(Exception):
    """A failure already phrased for the user: `path: reason`."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}" if path else reason)




def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="dfs", description="dfs: a distributed file system")
    p.add_argument("--namenode", metavar="HOST:PORT", type=cli_args.namenode,
                   help="namenode address: HOST:PORT, HOST (port 8020) or dfs://HOST:PORT "
                        "(default $DFS_NAMENODE or 127.0.0.1:8020)")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    servers.add_parsers(sub)
    fs.add_parsers(sub)
    admin.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    tune_malloc()
    parser = build_parser()
    args, extra = parser.parse_known_args(cli_args.mode_as_operand(sys.argv[1:] if argv is None else argv))
    # Client commands keep stderr to the one error line (SPEC §3): replica
    # failover and pipeline retries are logged only with --debug.
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.CRITICAL,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A server logs what it does; so does a mount served here (--foreground), whose
    # stderr is its log: "changes lost" went nowhere at CRITICAL.
    if args.command in ("namenode", "datanode", "cluster") or (args.command == "mount" and args.foreground):
        logging.getLogger().setLevel(logging.DEBUG if args.debug else logging.INFO)
    sub = {"admin": "admin_command", "cluster": "cluster_command"}.get(args.command)
    name = f"{args.command} {getattr(args, sub, '') or ''}".strip() if sub else args.command
    args.command_name = name
    if extra:   # argparse would name no command: `dfs: unrecognized arguments: ...`
        print(f"dfs: {name}: unrecognized arguments: {' '.join(extra)}; see 'dfs {name} --help'", file=sys.stderr)
        return 2
    stdout = sys.stdout
    if stdout is None:   # fd 1 closed
        stdout = ClosedStdout()
    elif hasattr(stdout, "reconfigure"):
        # A name the terminal's encoding cannot show (LC_ALL=C) is printed escaped,
        # as \u0301, rather than ending the listing (JSON output is ASCII anyway).
        stdout.reconfigure(errors="backslashreplace")
    sys.stdout = CheckedStdout(stdout)
    try:
        return _run(args, name)
    finally:
        sys.stdout = stdout


def _run(args, name: str) -> int:
    try:
        check_settings()   # every $DFS_* number, whichever this command would meet
        _check_addresses(args)
        status = int(args.func(args) or 0)
        sys.stdout.flush()   # here, not at exit: a closed stdout is reported below
        return status
    except KeyboardInterrupt:
        print(f"dfs: {name}: interrupted", file=sys.stderr)
        return 130
    except (UsageError, SettingError) as e:   # SettingError: a bad $DFS_* number
        print(f"dfs: {name}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError as e:
        if _stdout_closed():
            return EXIT_BROKEN_PIPE
        if args.debug:
            raise
        print(error_line(name, e, _subject(args)), file=sys.stderr)
        return 1
    except StdoutError as e:   # `stdout: No space left on device`
        discard_stdout()
        if args.debug:
            raise
        print(error_line(name, e), file=sys.stderr)
        return 1
    except (errors.DfsError, CliError, OSError, ValueError) as e:
        if args.debug:
            raise
        print(error_line(name, e, _subject(args, e)), file=sys.stderr)
        return 1
    except Exception as e:   # a bug: still one line (SPEC §3: no traceback unless --debug)
        if args.debug or args.command in ("namenode", "datanode", "cluster"):
            raise   # a server's crash keeps its traceback in its log
        print(f"dfs: {name}: internal error: {type(e).__name__}: {e} (--debug shows the traceback)",
              file=sys.stderr)
        return 1


# The arguments that are dfs paths (local ones are taken literally, never as URLs).
_DFS_PATHS = ("path", "paths", "sources", "dest")
_LOCAL = {"put": ("sources",), "get": ("dest",)}


def _check_addresses(args) -> None:
    """Every namenode a client command names (dfs:// URLs, $DFS_NAMENODE) is checked
    before the first RPC: a malformed one is a usage error, not a failure found after
    half of the paths were done."""
    if args.command in ("namenode", "datanode", "cluster", "umount"):
        return
    namenode_of(args)
    for name in _DFS_PATHS:
        if name in _LOCAL.get(args.command, ()):
            continue
        value = getattr(args, name, None)
        for arg in value if isinstance(value, list) else [value] if isinstance(value, str) else []:
            try:
                split_url(arg)
                url_user(arg)
            except ValueError as e:
                raise UsageError(str(e)) from None


def _stdout_closed() -> bool:
    """True if our stdout's reader went away; then stdout is pointed at /dev/null so
    that the exit's flush of what is still buffered cannot fail again."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        closed = any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False
    if closed:
        discard_stdout()
    return closed


def _subject(args, e: BaseException | None = None) -> str:
    """The dfs path a command was about, for an error that names none (an unreachable
    namenode, safe mode): SPEC §3's lines are `dfs: <command>: <path>: <reason>`. An
    unreachable namenode: the first path on it (cp's target on another cluster)."""
    if args.command == "put":
        return args.dest
    address = getattr(e, "address", None)
    if address and args.command == "cp":
        for arg in [*args.sources, args.dest]:
            host, _ = split_url(arg)
            if (host or namenode_of(args)) == address:
                return arg
    for name in ("path", "paths", "sources", "mountpoint"):
        v = getattr(args, name, None)
        if v:
            return v[0] if isinstance(v, list) else v
    return ""


if __name__ == "__main__":
    sys.exit(main())
