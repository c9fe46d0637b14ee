"""Parsing of user-facing values (sizes, addresses, namenode URLs) and defaults."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

DEFAULT_NAMENODE = "127.0.0.1:8020"
DEFAULT_DATANODE = "127.0.0.1:9866"
DEFAULT_REPLICATION = 3
DEFAULT_BLOCK_SIZE = 64 * 1024 * 1024
MIN_BLOCK_SIZE = 64 * 1024
DEFAULT_HEARTBEAT = 3.0
DEFAULT_DEAD_TIMEOUT = 30.0

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """'64MiB', '64M', '65536' -> bytes (binary units). Raises ValueError."""
    if isinstance(text, int):
        return text
    m = _SIZE_RE.match(str(text))
    if not m:
        raise ValueError(f"invalid size: {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def parse_address(text: str, default_port: int = 0) -> tuple[str, int]:
    """'host:port' -> (host, port)."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        host, port = str(text), str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid address: {text!r} (expected HOST:PORT)")
    return host.strip("[]"), int(port)


def split_url(arg: str) -> tuple[str | None, str]:
    """'dfs://host:port/p' -> ('host:port', '/p'); 'dfs:///p' -> (None, '/p'); '/p' -> (None, '/p')."""
    if arg.startswith("dfs://"):
        u = urlsplit(arg)
        return (u.netloc or None), (u.path or "/")
    return None, arg


def default_namenode() -> str:
    return os.environ.get("DFS_NAMENODE") or DEFAULT_NAMENODE
