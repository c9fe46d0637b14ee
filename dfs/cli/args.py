"""Command-line values checked when the command line is parsed (SPEC §2-3).

A bad value is a usage error: exit 2 and one line on stderr,
`dfs: <command>: <reason>`, before any process starts or any RPC is made.
These are pure functions (no sockets): tests/unit/test_server_args.py and
tests/unit/test_cli_args.py exercise them directly.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import re
import signal
import sys

from dfs import config

MAX_REPLICATION = config.MAX_REPLICATION      # the bound the namenode checks too (config.replication_problem)
SIZE_FORMS = "bytes, or a K/M/G/T or KiB/MiB/GiB/TiB suffix"
MAX_SECONDS = 1e9   # ~31 years; a longer wait overflows (threading.TIMEOUT_MAX, time_t)


class UsageError(Exception):
    """A malformed argument found after parsing (a dfs:// URL's host, $DFS_NAMENODE):
    exit 2 with one line, as argparse's own usage errors."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: `dfs: put: argument --block-size: ...`."""

    def error(self, message: str):  # type: ignore[override]
        command = self.prog.removeprefix("dfs").strip()
        where = f"dfs: {command}: " if command else "dfs: "
        sys.stderr.write(f"{where}{message}; see '{self.prog} --help'\n")
        sys.exit(2)

    def print_help(self, file=None) -> None:
        """--help. argparse drops a failed write of the text, so `dfs --help >/dev/full`
        exited 0 having printed nothing; here it fails as any command's output does
        (`dfs: stdout: No space left on device`, 1; closed: `Bad file descriptor`, 1;
        a reader gone away: quietly, 141)."""
        out = file or sys.stdout
        try:
            if out is None:   # fd 1 closed (`dfs --help >&-`): Python made no sys.stdout
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            out.write(self.format_help())
            out.flush()
        except OSError as e:
            discard_stdout()   # the exit's flush would fail again ("Exception ignored")
            if isinstance(e, BrokenPipeError):
                sys.exit(EXIT_BROKEN_PIPE)
            command = self.prog.removeprefix("dfs").strip()
            sys.stderr.write(f"dfs: {command + ': ' if command else ''}stdout: {e.strerror}\n")
            sys.exit(1)


# A reader that closed our stdout (`dfs cat f | head -c1`): exit quietly with the
# status a Unix tool killed by SIGPIPE has (128 + 13), as `cat` does. See docs/cli.md.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def discard_stdout() -> None:
    """Point fd 1 at /dev/null: what is still buffered for it cannot be written, and
    the flush at exit would fail again ("Exception ignored ... OSError")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


_MODE_LIKE = re.compile(r"-(?:[rwxXst]+|[0-7]+)")


def mode_as_operand(argv: list[str]) -> list[str]:
    """``argv`` with a chmod MODE that starts with '-' (`dfs chmod -w f`, as GNU chmod
    takes it) put after '--', the options that follow it (-R) before: argparse took
    `-w` for an unknown option and the path for MODE ("invalid mode: '/f'")."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):   # dfs's own options come first
        i += 2 if argv[i] == "--namenode" else 1
    if i >= len(argv) or argv[i] != "chmod":
        return argv
    for j in range(i + 1, len(argv)):
        a = argv[j]
        if a == "--" or not a.startswith("-"):
            return argv   # the first operand is the MODE, or '--' is there already
        if _MODE_LIKE.fullmatch(a):
            rest = argv[j + 1:]
            k = next((n for n, r in enumerate(rest) if not r.startswith("-") or r == "--"), len(rest))
            opts, operands = rest[:k], rest[k:]
            if operands[:1] == ["--"]:
                operands = operands[1:]
            return argv[:j] + opts + ["--", a] + operands
    return argv


def _fail(what: str, text: str, expected: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"invalid {what} {text!r} ({expected})")


def size(text: str) -> int:
    """SIZE: plain bytes or binary suffixes (SPEC §2)."""
    try:
        return config.parse_size(text)
    except ValueError:
        raise _fail("size", text, SIZE_FORMS) from None


def block_size(text: str) -> int:
    """A block size: a SIZE from 64KiB to 2GiB, a multiple of 16KiB (the namenode's rule)."""
    n = size(text)
    if config.block_size_problem(n):
        raise _fail("block size", text, "a multiple of 16KiB from 64KiB to 2GiB")
    return n


def replication(text: str) -> int:
    """A replication factor: 1..512."""
    try:
        n = int(text)
    except ValueError:
        raise _fail("replication", text, f"a whole number from 1 to {MAX_REPLICATION}") from None
    if not 1 <= n <= MAX_REPLICATION:
        raise _fail("replication", text, f"a whole number from 1 to {MAX_REPLICATION}")
    return n


def _whole(text: str, least: int) -> int:
    try:
        n = int(text)
    except ValueError:
        n = least - 1
    if n < least:
        raise _fail("number", text, f"a whole number >= {least}")
    return n


def count(text: str) -> int:
    """A whole number >= 0 (e.g. the mount's read_ahead_kb)."""
    return _whole(text, 0)


def positive_count(text: str) -> int:
    """A whole number >= 1 (`cluster up --datanodes`: a cluster without a datanode
    cannot store a block; 0 used to pass the parser and fail in the namenode)."""
    return _whole(text, 1)


def seconds(text: str) -> float:
    """An interval: seconds, 0 < x < 1e9 (0 would make a loop spin; inf overflows a wait).
    The message names both bounds: '1e300' refused as "not > 0" read as a contradiction."""
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not 0 < x < MAX_SECONDS:
        raise _fail("interval", text, "a number of seconds > 0 and < 1e9")
    return x


def port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _fail("port", text, "1-65535")
    return int(text)


def listen_address(text: str) -> str:
    """HOST:PORT a server listens on and is known by."""
    try:
        return config.parse_namenode(text, default_port=0)   # the port is required
    except ValueError:
        raise _fail("address", text, "HOST:PORT") from None


def datanode_address(text: str) -> str:
    """A datanode's --listen: also the address the namenode gives clients and other
    datanodes, so a wildcard (which each would take for its own host) is refused."""
    address = listen_address(text)
    if config.parse_address(address)[0] in ("0.0.0.0", "::"):
        raise argparse.ArgumentTypeError(
            f"wildcard address {text!r}: clients and other datanodes are given this address "
            "(use this host's name or IP)")
    return address


def namenode(text: str) -> str:
    """A namenode address: dfs://HOST:PORT, HOST:PORT or HOST (port 8020) -> 'HOST:PORT'."""
    try:
        return config.parse_namenode(text)
    except ValueError:
        raise _fail("namenode address", text, "HOST:PORT, HOST or dfs://HOST:PORT") from None


def rack(text: str) -> str:
    """A rack path: starts with '/', like Hadoop's topology (/dc1/rack3)."""
    if not text.startswith("/") or len(text) < 2 or any(c.isspace() for c in text) or "//" in text:
        raise _fail("rack", text, "a path like /rack1")
    return text.rstrip("/")
