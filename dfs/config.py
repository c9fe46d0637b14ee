"""Parsing of user-facing values (sizes, addresses, namenode URLs) and defaults."""

from __future__ import annotations

import ipaddress
import math
import os
import re

DEFAULT_NAMENODE = "127.0.0.1:8020"
DEFAULT_DATANODE = "127.0.0.1:9866"
DEFAULT_REPLICATION = 3
DEFAULT_BLOCK_SIZE = 64 * 1024 * 1024
MIN_BLOCK_SIZE = 64 * 1024
# A block size is a multiple of this: a block's chunks (at most 1 MiB) divide it, and
# one that only a multiple of 512 allowed got 512-byte chunks (1 MiB + 512 blocks:
# ranged reads 800x slower, 5.7% more disk, a mount stalled for minutes).
BLOCK_SIZE_UNIT = 16 * 1024
# A writer keeps each block's plaintext until its pipeline acknowledges it, and streams
# blocks back to back, so it holds up to two blocks: `put`'s peak RSS was 198 MiB with
# 64 MiB blocks, 578 MiB with 256 MiB, 822 MiB with one 768 MiB block. At 2 GiB a
# writer may hold 4 GiB; a larger block (2^63 used to reach SQLite) would cost more
# memory than a node has. HDFS caps it as well (dfs.namenode.fs-limits.max-block-size).
MAX_BLOCK_SIZE = 2 << 30
MAX_REPLICATION = 512
# Modification times a client may set (epoch seconds): the years 1 to 9999, which
# datetime and `ls`'s strftime can show. 1e300 used to be stored, and then every
# listing of its directory failed (OverflowError in localtime).
MIN_MTIME = -62135596800.0       # 0001-01-01T00:00:00Z
MAX_MTIME = 253402300799.0       # 9999-12-31T23:59:59Z
# SQLite's largest INTEGER: no id, offset or length is larger. A client clamps read
# offsets and lengths to it; the namenode refuses any request with a larger one.
INT64_MAX = (1 << 63) - 1
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


def block_size_problem(n: int) -> str:
    """Why ``n`` is not a block size (the namenode's rule, checked by every client), or ''."""
    if not MIN_BLOCK_SIZE <= n <= MAX_BLOCK_SIZE or n % BLOCK_SIZE_UNIT:
        return "block size must be a multiple of 16KiB from 64KiB to 2GiB"
    return ""


def block_size_of_copy(n: int) -> int:
    """The block size for a copy, or a new version, of a file of block size ``n``: the
    same, except that a file made before MAX_BLOCK_SIZE was a limit may have larger
    blocks, and a new file cannot (DfsClient.create refused it: such files could no
    longer be copied, nor changed through a mount)."""
    return min(n, MAX_BLOCK_SIZE)


def replication_problem(n: int) -> str:
    """Why ``n`` is not a replication factor, or ''."""
    return "" if 1 <= n <= MAX_REPLICATION else f"replication must be 1..{MAX_REPLICATION}"


def mtime_problem(t: float) -> str:
    """Why ``t`` is not a modification time a client may set, or '' (NaN is not one:
    SQLite would store it as NULL)."""
    return "" if MIN_MTIME <= t <= MAX_MTIME else "mtime must be a time in the years 1 to 9999"


def clamp_mtime(t: float) -> float:
    """``t`` brought into the range a client may set, as Linux's file systems clamp a
    time they cannot keep (timestamp_truncate; ext4: 1901..2446)."""
    return min(max(t, MIN_MTIME), MAX_MTIME)


def mode_problem(mode: int) -> str:
    """Why ``mode`` is not a file mode (permission bits, perhaps with st_mode's file
    type bits, which the namenode drops: fsspec's ``info()["mode"]`` has them), or ''."""
    return "" if 0 <= mode <= 0o177777 else (f"invalid mode {mode!r} (permission bits 0..0o7777, "
                                             "or an st_mode up to 0o177777)")


def parse_address(text: str, default_port: int = 0) -> tuple[str, int]:
    """'host:port' -> (host, port)."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        host, port = str(text), str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid address: {text!r} (expected HOST:PORT)")
    return host.strip("[]"), int(port)


def bare_host(host: str) -> str:
    """A host as sockets and Dask name it, for comparing hosts: an IPv6 literal without
    its brackets, in its canonical form ('[0:0::1]' -> '::1'); a name as it is. Block
    locations' ``hosts`` keep the brackets (the host part of '[::1]:9866'), a Dask
    worker's host has none: compared as they came, no IPv6 replica was ever local."""
    host = host.strip("[]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def format_address(host: str, port: int) -> str:
    """(host, port) -> 'host:port', an IPv6 host in brackets ('[::1]:8020')."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


_HOST_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9._-]*[A-Za-z0-9_])?$")
_IPV6_RE = re.compile(r"^[0-9A-Fa-f:.]+(%[A-Za-z0-9._-]+)?$")


def parse_namenode(text: str, default_port: int = 8020) -> str:
    """A namenode address in any form SPEC §3 allows -> canonical 'HOST:PORT'.

    'dfs://HOST:PORT' (an optional trailing '/'), 'HOST:PORT', 'HOST' (the
    default port), '[v6]:PORT'. Anything else raises ValueError, so a typo is
    reported at once instead of as an unreachable namenode 15 s later."""
    netloc = text
    if text.startswith("dfs://"):
        netloc, _, rest = text[len("dfs://"):].partition("/")
        if rest:
            raise ValueError(f"invalid namenode address: {text!r} (an address, not a path)")
    if netloc.startswith("["):
        host, close, tail = netloc[1:].partition("]")
        ok = bool(close) and bool(_IPV6_RE.match(host)) and ":" in host
        if tail.startswith(":"):
            port_text = tail[1:]
        elif tail == "":
            port_text = str(default_port)
        else:
            ok = False
            port_text = ""
    else:
        host, sep, port_text = netloc.partition(":")
        ok = bool(_HOST_RE.match(host)) and ":" not in port_text
        if not sep:
            port_text = str(default_port)
    if not ok or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid namenode address: {text!r} (expected HOST:PORT, HOST or dfs://HOST:PORT)")
    return format_address(host, int(port_text))


_OTHER_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def split_url(arg: str) -> tuple[str | None, str]:
    """A path argument -> (namenode 'HOST:PORT' or None for the default, path).

    'dfs://host:port/p' -> ('host:port', '/p'); 'dfs:///p' -> (None, '/p');
    '/p' -> (None, '/p'); 'dfs://user@host:port/p' as the first. The path after the address is taken literally: '?',
    '#' and '%' are ordinary characters of a dfs name, not a query, a fragment
    or an escape. A malformed address, or 'dfs:' not followed by '//', raises
    ValueError."""
    if arg.startswith("dfs://"):
        netloc, _, path = arg[len("dfs://"):].partition("/")
        netloc = netloc.rpartition("@")[2]      # the user, if any: url_user()
        return (parse_namenode(netloc) if netloc else None), "/" + path
    if arg.startswith("dfs:"):
        raise ValueError(f"invalid dfs URL: {arg!r} (expected dfs://HOST:PORT/PATH or dfs:///PATH)")
    scheme = _OTHER_SCHEME.match(arg)
    if scheme:   # hdfs://, file://, s3://: not ours (as a path it would be a relative one)
        raise ValueError(f"not a dfs URL: {arg!r} ({scheme[1]}:// is another file system; "
                         "expected dfs://HOST:PORT/PATH or a path)")
    return None, arg


def url_user(arg: str) -> str | None:
    """The USER of 'dfs://USER@HOST:PORT/path' (fsspec's form too), else None."""
    if not arg.startswith("dfs://"):
        return None
    user, at, _ = arg[len("dfs://"):].partition("/")[0].rpartition("@")
    if at and not user:
        raise ValueError(f"invalid dfs URL: {arg!r} (an empty user before '@')")
    return user or None


class SettingError(ValueError):
    """A bad value of a $DFS_* environment setting: a usage error. The CLI exits 2
    with its one line; a server refuses to start; the Python client raises it."""


def env_number(name: str, default: float, low: float, high: float, *, whole: bool = False):
    """$``name``, a number from ``low`` to ``high`` (a whole one if ``whole``), or
    ``default`` when it is unset or empty. Anything else raises SettingError naming the
    variable and its value: a bare float() let 'abc' fail a command with a line about
    neither, and 'nan' or 'inf' made every wait on it endless."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:   # NaN is never in range
        kind = "a whole number" if whole else "a number"
        raise SettingError(f"${name}: invalid value {text!r} ({kind} from {_plain(low)} to {_plain(high)})")
    return value


def _plain(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)   # 2592000, not 2.592e+06


DAY = 86400.0
# Every numeric $DFS_* setting: (least, most, whole number?). The defaults stay where
# they are used; docs/cli.md lists them all. The CLI, the servers and the mount check
# every one that is set before they start (check_settings), so a bad one is one line
# and exit 2 whichever command meets it, before any RPC, port or data dir.
SETTINGS: dict[str, tuple[float, float, bool]] = {
    "DFS_RETRY_SECONDS": (0, 3600, False),               # client: retrying an unreachable namenode
    "DFS_DATA_TIMEOUT": (0.01, 3600, False),             # client, datanode: a silent peer
    "DFS_READ_FAILOVER_SECONDS": (0.01, 3600, False),    # client: a silent replica
    "DFS_WRITE_SETUP_SECONDS": (0.01, 3600, False),      # client: a pipeline's first datanode
    "DFS_SETREP_TIMEOUT": (0.01, 1e9, False),            # `setrep -w`
    "DFS_LEASE_SOFT_LIMIT": (0.01, DAY, False),          # namenode
    "DFS_REPLICATION_MAX_STREAMS": (1, 1024, True),      # namenode
    "DFS_REPLICATION_HARD_LIMIT": (1, 1024, True),       # namenode
    "DFS_REPLICATION_MAX_INCOMING": (1, 1024, True),     # namenode
    "DFS_REPLICATION_MAX_INFLIGHT_GB": (0.001, 1 << 20, False),   # namenode
    "DFS_REPLICATION_STREAM_MB": (0, 1 << 20, False),    # namenode (0: streams counted, not bytes)
    "DFS_REPLICATION_TIMEOUT": (0.01, DAY, False),       # namenode
    "DFS_REPAIR_YIELD": (0, 1000, False),                # datanode (0: copies never yield)
    "DFS_BLOCK_REPORT_INTERVAL": (0.01, 30 * DAY, False),   # datanode
    "DFS_DATANODE_MAX_TRANSFERS": (1, 1024, True),       # datanode
}


def setting(name: str, default: float):
    """$``name``, one of SETTINGS, checked (``env_number``), or ``default`` if unset."""
    low, high, whole = SETTINGS[name]
    return env_number(name, default, low, high, whole=whole)


def check_settings() -> None:
    """Raise SettingError for the first bad one of SETTINGS set in the environment."""
    for name in SETTINGS:
        setting(name, 0)


def default_namenode() -> str:
    return os.environ.get("DFS_NAMENODE") or DEFAULT_NAMENODE
