"""Helpers shared by the CLI commands: namenode resolution, paths, progress, formats."""

from __future__ import annotations

import sys
import time

from dfs.client import DfsClient
from dfs.config import default_namenode, split_url

_clients: dict[str, DfsClient] = {}


def resolve(args, arg: str) -> tuple[DfsClient, str]:
    """A CLI path argument -> (client for its namenode, absolute dfs path).

    The namenode comes from a dfs://HOST:PORT/ URL, else --namenode, else
    $DFS_NAMENODE, else 127.0.0.1:8020. Relative paths are taken from /.
    """
    host, path = split_url(arg)
    address = host or args.namenode or default_namenode()
    if not path.startswith("/"):
        path = "/" + path
    if address not in _clients:
        _clients[address] = DfsClient(address)
    return _clients[address], path


def join(parent: str, name: str) -> str:
    return parent.rstrip("/") + "/" + name


def basename(path: str) -> str:
    return path.rstrip("/").rpartition("/")[2] or "/"


def mode_string(is_dir: bool, mode: int) -> str:
    chars = "d" if is_dir else "-"
    for shift in (6, 3, 0):
        bits = (mode >> shift) & 7
        chars += ("r" if bits & 4 else "-") + ("w" if bits & 2 else "-") + ("x" if bits & 1 else "-")
    if mode & 0o1000:
        chars = chars[:-1] + ("t" if mode & 1 else "T")
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
        self.label, self.total, self.done = label, total, 0
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
