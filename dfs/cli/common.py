"""Helpers shared by the CLI commands: namenode resolution, paths, progress, formats."""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Callable

from dfs import errors
from dfs.cli.args import UsageError
from dfs.client import DfsClient
from dfs.client.namenode import acting_user
from dfs.config import DEFAULT_NAMENODE, SettingError, parse_namenode, split_url, url_user
from dfs.text import printable

# One client per (namenode, user acted as): `dfs://bob@nn/a` and `/b` with DFS_USER=bob
# share one, so mv can tell "same cluster, same user" by identity.
_clients: dict[tuple[str, str], DfsClient] = {}


def namenode_of(args) -> str:
    """--namenode (checked by the parser), else $DFS_NAMENODE, else 127.0.0.1:8020.
    A malformed $DFS_NAMENODE is a usage error, before any RPC."""
    if getattr(args, "namenode", None):
        return args.namenode
    env = os.environ.get("DFS_NAMENODE")
    if not env:
        return DEFAULT_NAMENODE
    try:
        return parse_namenode(env)
    except ValueError as e:
        raise UsageError(f"$DFS_NAMENODE: {e}") from None


def resolve(args, arg: str) -> tuple[DfsClient, str]:
    """A CLI path argument -> (client for its namenode, absolute dfs path).

    The namenode comes from a dfs://HOST:PORT/ URL, else --namenode, else
    $DFS_NAMENODE, else 127.0.0.1:8020. Relative paths are taken from /.
    A trailing '/' (kept in the path) says the path is a directory: naming
    an existing file so fails with `Not a directory`, as coreutils do.
    """
    try:
        named = url_user(arg)   # dfs://USER@HOST:PORT/path: that user instead of $DFS_USER
        host, path = split_url(arg)
    except ValueError as e:
        raise UsageError(str(e)) from None
    address = host or namenode_of(args)
    if path == "":
        raise errors.DfsFileNotFoundError(path="''")
    if not path.startswith("/"):
        path = "/" + path
    user = acting_user(named)
    if (address, user) not in _clients:
        _clients[address, user] = DfsClient(address, user=user)
    client = _clients[address, user]
    if len(path) > 1 and path.endswith("/") and not path.endswith("//"):
        try:
            st = client.stat(path.rstrip("/"))
        except errors.DfsFileNotFoundError:
            st = None
        if st is not None and not st.is_dir:
            raise errors.DfsNotADirectoryError(path=arg)
    return client, path


def error_line(command: str, e: BaseException, subject: str = "") -> str:
    """The one stderr line for a failure (SPEC §3): `dfs: <command>: <path>: <reason>`."""
    if isinstance(e, errors.DfsError):
        path = e.path or subject
        line = f"dfs: {command}: {path}: {e.detail}" if path else f"dfs: {command}: {e.detail}"
    else:
        line = f"dfs: {command}: {os_message(e)}"
    return printable(line)


def names_shown_on(stream) -> Callable[[str], str]:
    """How text holding names from the namespace is written to ``stream``: escaped by
    ``printable`` on a terminal, where a name holding ESC drove another user's terminal
    and one holding a newline split its line in two; as it is to a pipe or a file,
    which scripts read the names back from (GNU ls quotes only for a terminal too)."""
    return printable if is_terminal(stream) else _as_is


def _as_is(text: str) -> str:
    return text


def is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):   # a closed stdout (ClosedStdout) is none
        return False


def os_message(e: BaseException) -> str:
    if isinstance(e, UnicodeEncodeError) and isinstance(e.object, str):
        # A name from the command line that is not UTF-8 (dfs names are protobuf strings).
        shown = e.object.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return f"{shown}: invalid name (not UTF-8)"
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return str(e)


class StdoutError(OSError):
    """Writing our standard output failed (a full disk, EIO): the line's subject is
    `stdout`, not the path being listed, and no further path is tried (GNU tools stop
    at a write error too). A reader that went away (EPIPE) is not one: see main.py."""

    def __init__(self, e: OSError):
        super().__init__(e.errno, e.strerror, "stdout")


class CheckedStdout:
    """sys.stdout (or its ``buffer``) whose failed write or flush raises StdoutError.
    Every command prints through it, so `dfs ls / >/dev/full` says `dfs: ls: stdout:
    No space left on device` as `dfs cat` did, not a bare reason or a dfs path."""

    def __init__(self, stream):
        self._stream = stream

    def __getattr__(self, name):
        return getattr(self._stream, name)

    @property
    def buffer(self):
        return CheckedStdout(self._stream.buffer)

    def write(self, data):
        try:
            return self._stream.write(data)
        except (BrokenPipeError, StdoutError):
            raise
        except OSError as e:
            raise StdoutError(e) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (BrokenPipeError, StdoutError):
            raise
        except OSError as e:
            raise StdoutError(e) from None


class StdoutClosedError(StdoutError):
    """Our stdout was closed before we started (`dfs cat f >&-`)."""

    def __init__(self):
        super().__init__(OSError(errno.EBADF, "Bad file descriptor"))


class ClosedStdout:
    """Stands in for sys.stdout when fd 1 is closed: commands that print nothing
    (put, rm) work; one that prints fails with `stdout: Bad file descriptor`, as
    coreutils do, instead of a traceback."""

    @property
    def buffer(self):
        return self

    def write(self, data):
        raise StdoutClosedError()

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        raise StdoutClosedError()


def each(args, items, fn) -> int:
    """``fn(item)`` for every item of a multi-path command: a failed item prints its
    one line and the rest go on; -> 1 if any failed (as coreutils and `hdfs dfs`).

    An unreachable namenode and usage errors stop at once: each further path would
    only wait out the same 15 s, and a usage error is about the whole command."""
    status = 0
    for item in items:
        try:
            fn(item)
        except STOPS_ALL:
            raise
        except PER_ITEM as e:
            if getattr(args, "debug", False):
                raise
            report(args, e, item)
            status = 1
    return status


# Failures that end a multi-path command at once (see ``each``), and those that are
# one item's own: reported, and the other items go on.
# Failures of the cluster, not of one path: the next path would fail the same way, after
# the same retries (8 s each in safe mode: chmod -R of N entries took N x 8 s).
STOPS_ALL = (errors.NamenodeUnreachableError, errors.SafeModeError, BrokenPipeError, StdoutError,
             UsageError, SettingError)
PER_ITEM = (errors.DfsError, OSError, ValueError)


def report(args, e: BaseException, subject: str = "") -> None:
    """Print one item's failure line (``dfs: <command>: <path>: <reason>``)."""
    print(error_line(getattr(args, "command_name", args.command), e, subject), file=sys.stderr)


def join(parent: str, name: str) -> str:
    return parent.rstrip("/") + "/" + name


def basename(path: str) -> str:
    return path.rstrip("/").rpartition("/")[2] or "/"


def mode_string(is_dir: bool, mode: int) -> str:
    chars = "d" if is_dir else "-"
    for shift in (6, 3, 0):
        bits = (mode >> shift) & 7
        chars += ("r" if bits & 4 else "-") + ("w" if bits & 2 else "-") + ("x" if bits & 1 else "-")
    # setuid, setgid, sticky: s/S and t/T in the x places, as ls -l (stored, not acted on)
    for bit, at, letter in ((0o4000, 3, "s"), (0o2000, 6, "s"), (0o1000, 9, "t")):
        if mode & bit:
            chars = chars[:at] + (letter if chars[at] == "x" else letter.upper()) + chars[at + 1:]
    return chars


def human(n: float) -> str:
    for unit in ("", "K", "M", "G", "T", "P"):
        if n < 1024 or unit == "P":
            return f"{n:.0f}" if unit == "" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str, total: int | None):
        self.enabled = sys.stderr.isatty()
        # Only ever drawn on a terminal: a name in the label is shown escaped.
        self.label, self.total, self.done = printable(label), total, 0
        self.start = self.last = time.monotonic()

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self.last > 0.2:
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.done / max(now - self.start, 1e-6)
        if self.total:
            pct = min(100.0, 100.0 * self.done / self.total)
            bar = "#" * int(pct / 5)
            line = f"{self.label[:30]:30} [{bar:20}] {pct:5.1f}% {human(rate)}B/s"
        else:
            line = f"{self.label[:30]:30} {human(self.done)}B {human(rate)}B/s"
        sys.stderr.write("\r" + line)
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            sys.stderr.write("\n")
            sys.stderr.flush()


# -- paths in dfs ---------------------------------------------------------------
def stat_or_none(client, path):
    try:
        return client.stat(path)
    except errors.DfsFileNotFoundError:
        return None


def target_for(client, dest: str, name: str, many: bool):
    """Where SRC named ``name`` lands for DEST (cp semantics)."""
    st = stat_or_none(client, dest)
    if st is not None and st.is_dir:
        return join(dest, name)
    if many:
        raise errors.DfsNotADirectoryError(path=dest) if st is not None else errors.DfsFileNotFoundError(path=dest)
    if dest.endswith("/") and dest != "/":
        raise errors.DfsNotADirectoryError(path=dest) if st is not None else errors.DfsFileNotFoundError(path=dest)
    return dest


def check_many(client, dest: str, many: bool) -> None:
    """Several sources need DEST to be a directory: checked once, before any source,
    so that the failure is one line about DEST (cp: target 'x' is not a directory)."""
    if many:
        target_for(client, dest, "", True)


def walk(client, path, on_error=None):
    """Every entry under directory ``path``, depth first (pre-order, each directory's
    entries in listing order). With ``on_error(dir, e)`` a subdirectory that cannot be
    listed (no read permission) is reported there and skipped and the walk goes on, as
    ls -R and cp -r do; without it, the error ends the walk. A directory is listed
    only when the caller asks for the entry after it, so the caller may change it
    first (chmod -R). A stack of iterators, not recursion: the namespace allows trees
    deeper than Python's recursion limit."""
    stack = [iter(client.listdir(path))]
    while stack:
        st = next(stack[-1], None)
        if st is None:
            stack.pop()
            continue
        yield st
        if not st.is_dir:
            continue
        try:
            entries = client.listdir(st.path)
        except STOPS_ALL:
            raise
        except PER_ITEM as e:
            if on_error is None:
                raise
            on_error(st.path, e)
            continue
        stack.append(iter(entries))
