"""Dask work scheduled where the blocks live (SPEC §4).

``map_blocks(client, func, path)`` runs ``func(block_bytes)`` once per block of
``path``, each task restricted -- softly -- to the Dask workers on the hosts
that hold a replica of its block, and returns the futures in block order.

``read_bytes``, ``read_text`` (Bag), ``read_csv``, ``read_json`` (JSON lines)
and ``read_parquet`` (DataFrames) build collections whose partitions are read
where their bytes are: line-aligned splits of the files' blocks for text
formats, one partition per row group for Parquet. A compressed text file
(``compression``, inferred from the name by default, as Dask does) cannot be
cut: it is one split, read on the host holding most of it.

How: the block locations come from the namenode (``fs.get_block_locations``);
their hosts are matched to the workers' hosts as the scheduler knows them
(datanode host names are resolved to addresses), and each partition is
submitted with ``workers=[those hosts], allow_other_workers=True``. The
restriction is a preference: a task whose hosts have no live worker runs on
any worker, so a dead host never stalls a job. Inside the task the reader
tries the replica on its own host first.

The collections are built from futures (``client.submit`` +
``dd.from_delayed``), so reading starts as soon as they are created, as with
``persist()``: Dask ignores ``dask.annotate`` restrictions on the tasks of
``dd.from_map``/``from_delayed`` graphs, futures are the way that holds.
Dask's work stealing honours the restriction too, but when every worker
holding a block is busy and another is idle it may move that block's task to
the idle one (trading locality for balance); set
``distributed.scheduler.work-stealing: False`` for strictly local placement.
"""

from __future__ import annotations

import functools
import io
import re
import socket
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

import dask
import distributed
import fsspec
from fsspec.core import get_compression
from fsspec.utils import read_block

from dfs import config
from dfs.client.filesystem import DFSFileSystem
from dfs.client.fsspec_file import _read_parallel

__all__ = ["Split", "map_blocks", "splits", "hosts_to_workers", "read_bytes", "read_text",
           "read_csv", "read_json", "read_parquet"]

#: A line-aligned split reads past its end to the next delimiter: block
#: locations are loaded for this much beyond it (more only if a line is longer).
_SLACK = 1 << 20


@dataclass(frozen=True)
class Split:
    """A byte range of one file and the hosts holding its bytes (most bytes first)."""

    path: str
    offset: int
    length: int
    hosts: tuple[str, ...]
    compression: str | None = None   # a whole compressed file: read it all, decompressed
    # The hosts holding the most of its bytes (empty: as many as any other): where its
    # task is placed. A Dask restriction is a set, so placing it by all of ``hosts``
    # ran a 10-block split on a host holding 4 of them beside one holding all 10.
    best: tuple[str, ...] = ()


# -- resolving paths and workers ------------------------------------------------
def _filesystem(urlpath, fs=None, storage_options=None) -> DFSFileSystem:
    if fs is None:
        first = urlpath[0] if isinstance(urlpath, (list, tuple)) else urlpath
        if isinstance(first, str) and first.startswith("dfs://"):
            # Not url_to_fs: it cuts "dfs://[::1]:8020/x" at "::" (fsspec's URL chaining).
            return DFSFileSystem(**{**DFSFileSystem._get_kwargs_from_urls(first), **(storage_options or {})})
        fs, _ = fsspec.core.url_to_fs(first, **(storage_options or {}))
    if not isinstance(fs, DFSFileSystem):
        raise TypeError(f"dfs.dask needs a dfs:// path or a DFSFileSystem, got {type(fs).__name__}")
    return fs


def _expand(fs: DFSFileSystem, urlpath, skip_hidden: bool = True) -> list[str]:
    """Files named by a path, a glob, a directory (recursively) or a list of those."""
    out: list[str] = []
    for p in (urlpath if isinstance(urlpath, (list, tuple)) else [urlpath]):
        sp = fs._strip_protocol(p)
        if any(c in sp for c in "*?["):
            found = [f for f, i in fs.glob(sp, detail=True).items() if i["type"] == "file"]
        elif fs.isdir(sp):
            found = fs.find(sp)
            if skip_hidden:   # _SUCCESS, _metadata, .crc and the like
                found = [f for f in found
                         if not any(part[:1] in "._" for part in f[len(sp):].split("/") if part)]
        else:
            found = [sp]
        out += sorted(found)
    if not out:
        raise FileNotFoundError(urlpath)
    return out


@functools.lru_cache(maxsize=1024)
def _addresses(host: str) -> tuple[str, ...]:
    """``host`` and the addresses it resolves to, each as ``config.bare_host`` gives it
    (a block's IPv6 host is '[::1]': resolving it as such failed)."""
    host = config.bare_host(host)
    try:
        return tuple({host, *(config.bare_host(ai[4][0]) for ai in socket.getaddrinfo(host, None))})
    except OSError:
        return (host,)


def hosts_to_workers(client: distributed.Client, hosts) -> list[str]:
    """The hosts (as the scheduler knows them) of the workers on any of ``hosts``.

    Datanode hosts are matched to a worker's host address directly, after name
    resolution, or through the worker's name (start workers with
    ``--name $(hostname)`` when hosts are names the resolver does not know).
    """
    return _Placement.of(client).hosts_for(hosts)


class _Placement:
    """Block hosts -> the hosts of the Dask workers on them, as the scheduler knows them."""

    def __init__(self, workers: dict):
        """``workers``: the scheduler's ``{address: info}`` (``scheduler_info()["workers"]``)."""
        self.index: dict[str, str] = {}
        for addr, w in workers.items():
            host = w.get("host") or distributed.comm.get_address_host(addr)
            self.index.setdefault(config.bare_host(host), host)
            if w.get("name") is not None:
                self.index.setdefault(str(w["name"]), host)

    @classmethod
    def of(cls, client: distributed.Client) -> _Placement:
        return cls(client.scheduler_info(n_workers=-1)["workers"])

    def restrict(self, hosts) -> dict:
        """``client.submit`` keywords: a soft restriction to the workers on ``hosts`` (none if none)."""
        workers = self.hosts_for(hosts)
        return {"workers": workers, "allow_other_workers": True} if workers else {}

    def hosts_for(self, hosts) -> list[str]:
        out: list[str] = []
        for h in hosts:
            for cand in _addresses(h):
                wh = self.index.get(cand)
                if wh is not None and wh not in out:
                    out.append(wh)
        return out


def _worker_host() -> str | None:
    try:
        return distributed.comm.get_address_host(distributed.get_worker().address)
    except ValueError:   # not inside a worker
        return None


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# -- blocks -------------------------------------------------------------------
def _block_task(fs: DFSFileSystem, path: str, offset: int, length: int, func):
    reader = fs.client.open_read(path, start=offset, length=length)   # this block's locations only
    host = _worker_host()
    if host:
        reader.prefer([host])
    return func(_read_parallel(reader, offset, offset + length) if length else b"")


def map_blocks(client: distributed.Client, func, path, *, fs: DFSFileSystem | None = None,
               storage_options: dict | None = None, **submit_kwargs) -> list[distributed.Future]:
    """Run ``func(block_bytes)`` once per block of ``path`` on a worker holding it.

    Returns the futures in block order. ``path`` is a ``dfs://HOST:PORT/...`` URL
    or a path of ``fs``. Each task is restricted softly (``allow_other_workers``)
    to the workers on the hosts of the block's replicas.
    """
    fs = _filesystem(path, fs, storage_options)
    p = fs._strip_protocol(path)
    blocks = fs.get_block_locations(p)
    place = _Placement.of(client)
    name = _name(f"dfs-map-blocks-{dask.utils.funcname(func)}")
    futures = []
    for i, b in enumerate(blocks):
        futures.append(client.submit(_block_task, fs, p, b["offset"], b["length"], func, key=f"{name}-{i}",
                                     pure=False, **place.restrict(b["hosts"]), **submit_kwargs))
    return futures


# -- splits -----------------------------------------------------------------------
def _weights(blocks: list[dict], lo: int, hi: int) -> dict[str, int]:
    """Bytes of [lo, hi) each host holds."""
    weight: dict[str, int] = {}
    for b in blocks:
        n = min(hi, b["offset"] + b["length"]) - max(lo, b["offset"])
        if n > 0:
            for h in b["hosts"]:
                weight[h] = weight.get(h, 0) + n
    return weight


def _ranked_hosts(blocks: list[dict], lo: int, hi: int) -> tuple[str, ...]:
    weight = _weights(blocks, lo, hi)
    return tuple(sorted(weight, key=lambda h: -weight[h]))


def _best_hosts(blocks: list[dict], lo: int, hi: int) -> tuple[str, ...]:
    """The hosts holding the most of [lo, hi) (all of them when they hold as much)."""
    weight = _weights(blocks, lo, hi)
    top = max(weight.values(), default=0)
    return tuple(h for h in _ranked_hosts(blocks, lo, hi) if weight[h] == top)


def _split(f: str, blocks: list[dict], codec: str | None = None) -> Split:
    lo, hi = _span(blocks, end=True)
    return Split(f, lo, hi - lo, _ranked_hosts(blocks, lo, hi), codec, _best_hosts(blocks, lo, hi))


def _span(blocks: list[dict], end: bool = False) -> tuple[int, int]:
    lo, hi = blocks[0]["offset"], blocks[-1]["offset"] + blocks[-1]["length"]
    return (lo, hi) if end else (lo, hi - lo)


def splits(fs: DFSFileSystem, paths, blocksize: int | None = None,
           compression: str | None = None) -> list[Split]:
    """Byte-range splits of files, aligned to their blocks (Hadoop's FileInputFormat).

    With ``blocksize=None`` a split is one block. A larger ``blocksize`` groups
    consecutive blocks; a smaller one cuts blocks, every piece keeping its
    block's hosts. Empty files give no split. A file compressed with
    ``compression`` ("infer": by its name) is one split (as Hadoop's
    non-splittable codecs are).
    """
    if isinstance(blocksize, str):   # "64MiB", "100kB", as Dask's own readers take
        from dask.utils import parse_bytes
        blocksize = parse_bytes(blocksize)
    if isinstance(blocksize, float) and blocksize.is_integer():
        blocksize = int(blocksize)
    if blocksize is not None and (isinstance(blocksize, bool) or not isinstance(blocksize, int)
                                  or blocksize <= 0):
        raise ValueError(f"blocksize must be a positive number of bytes or None, not {blocksize!r}")
    files = _expand(fs, paths)
    locations = fs.get_block_locations_many(files)
    out: list[Split] = []
    for f in files:
        blocks = locations[f]
        codec = get_compression(f, compression)
        if codec is not None:
            if blocks:
                out.append(_split(f, blocks, codec))
            continue
        cur: list[dict] = []
        for b in blocks:
            if blocksize and b["length"] > blocksize:
                for off in range(b["offset"], b["offset"] + b["length"], blocksize):
                    n = min(blocksize, b["offset"] + b["length"] - off)
                    out.append(Split(f, off, n, tuple(b["hosts"])))
                continue
            cur.append(b)
            if not blocksize or _span(cur)[1] >= blocksize:
                out.append(_split(f, cur))
                cur = []
        if cur:
            out.append(_split(f, cur))
    return [s for s in out if s.length > 0]


def read_split(fs: DFSFileSystem, split: Split, delimiter: bytes | None = b"\n") -> bytes:
    """The bytes of a split; with a delimiter, from the first record starting in it
    through the end of the last record starting in it (fsspec ``read_block`` rules)."""
    host = _worker_host()
    if split.compression is not None:
        with fs.open(split.path, "rb", compression=split.compression,
                     prefer_hosts=[host] if host else None) as f:
            return f.read()
    window = (split.offset, split.length + (_SLACK if delimiter else 0))
    with fs.open(split.path, "rb", window=window, prefer_hosts=[host] if host else None,
                 cache_options={"readahead": 0}) as f:
        if delimiter:
            return read_block(f, split.offset, split.length, delimiter)
        f.seek(split.offset)
        return f.read(split.length)


def _submit_splits(client, fs, parts: list[Split], prefix: str, func, *args) -> list[distributed.Future]:
    place = _Placement.of(client)
    name = _name(prefix)
    return [client.submit(func, fs, s, *args, key=f"{name}-{i}", pure=False, **place.restrict(s.best or s.hosts))
            for i, s in enumerate(parts)]


# -- bytes and text -------------------------------------------------------------
def read_bytes(client: distributed.Client, urlpath, *, delimiter: bytes | None = None,
               blocksize: int | None = None, compression: str | None = None,
               fs: DFSFileSystem | None = None,
               storage_options: dict | None = None) -> list[distributed.Future]:
    """Futures of the bytes of each split (one per block unless ``blocksize``), read locally;
    with ``compression``, a compressed file's decompressed bytes as one split."""
    fs = _filesystem(urlpath, fs, storage_options)
    return _submit_splits(client, fs, splits(fs, urlpath, blocksize, compression), "dfs-read-bytes",
                          read_split, delimiter)


def _text_part(fs, split, encoding, errors):
    # Lines as Python's text files and dask.bag.read_text make them (universal
    # newlines): str.splitlines would also cut at U+2028, form feeds and the like,
    # which JSON lines may hold inside strings.
    data = read_split(fs, split, b"\n")
    return list(io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors=errors, newline=None))


def read_text(client: distributed.Client, urlpath, *, encoding: str = "utf-8", errors: str = "strict",
              blocksize: int | None = None, compression: str | None = "infer",
              fs: DFSFileSystem | None = None, storage_options: dict | None = None):
    """A ``dask.bag`` of the lines of text files, one partition per split."""
    import dask.bag as db
    fs = _filesystem(urlpath, fs, storage_options)
    futures = _submit_splits(client, fs, splits(fs, urlpath, blocksize, compression), "dfs-read-text",
                             _text_part, encoding, errors)
    # dask.bag.from_delayed drops its references to bare futures; delayed() keeps them.
    return db.from_delayed([dask.delayed(f) for f in futures])


# -- DataFrames ---------------------------------------------------------------------
def _sample(fs: DFSFileSystem, path: str, nbytes: int, compression: str | None = None) -> bytes:
    """About ``nbytes`` from the start of ``path``, cut at the last complete line; at
    least the whole first line (a wide CSV's header can be longer than the sample: cut
    to nothing, every later split lost its header and pandas took a row for it)."""
    with fs.open(path, "rb", compression=compression) as f:
        data = f.read(nbytes)
        if len(data) < nbytes:
            return data                # the whole file
        if b"\n" not in data:
            data += f.readline()
            if not data.endswith(b"\n"):
                return data            # the whole file is one line
            more = f.read(nbytes)      # rows after it, for the types
            data += more
            if len(more) < nbytes:
                return data
    return data[:data.rfind(b"\n") + 1]


@dataclass(frozen=True)
class _FileStart:
    """Where a CSV file's data rows begin, as pandas reads the file's start."""

    header: bytes   # the line pandas takes for the header (b"": none)
    end: int        # bytes of the file's start that ``skiprows`` and the header consume


def _file_start(sample: bytes, kwargs: dict, *, whole: bool) -> _FileStart | None:
    """The header line and the end of the rows ``skiprows``/``header`` take, in the
    first bytes of a CSV file (``whole``: all of it), counted as pandas counts them:
    ``skiprows`` by physical line, ``header`` by row after those, blank and
    comment-only lines not counted. None when they are not all in ``sample``; a
    ValueError for what later splits cannot honour."""
    header = kwargs.get("header", "infer")
    if header == "infer":
        header = 0 if kwargs.get("names") is None else None
    if not (header is None or (isinstance(header, int) and not isinstance(header, bool) and header >= 0)):
        raise ValueError(f"header={header!r} is not supported for a file of several splits "
                         "(one header row, or None)")
    skiprows = kwargs.get("skiprows")
    if callable(skiprows):
        raise ValueError("skiprows as a function is not supported for a file of several splits "
                         "(later splits cannot know their line numbers); pass a number or a list")
    skip = set(range(skiprows)) if isinstance(skiprows, int) else set(skiprows or ())
    comment = kwargs.get("comment")
    comment = comment.encode(kwargs.get("encoding") or "utf-8") if comment else None
    skip_blank = kwargs.get("skip_blank_lines", True)
    line_header, end, row, pos = b"", 0, -1, 0
    for i, line in enumerate(_lines(sample)):
        pos += len(line)
        if not line.endswith(b"\n") and not whole:
            break                                  # cut by the sample
        done_skipping = not skip or i >= max(skip)
        if i in skip:
            end = pos
        elif not (comment and line.startswith(comment)) and not (skip_blank and not line.strip(b" \t\r\n")):
            row += 1
            if header is not None and row == header:
                line_header, end = line if line.endswith(b"\n") else line + b"\n", pos
        if done_skipping and (header is None or row >= header):
            return _FileStart(line_header, end)
    return _FileStart(line_header, end) if whole else None


def _lines(data: bytes):
    """The lines of ``data``, each with its ``\\n`` (splits are cut there only)."""
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        yield data[pos:end]
        pos = end


def _later_split_kwargs(kwargs: dict) -> dict:
    """pandas.read_csv keywords for a split after a file's first: its rows are data rows,
    behind the file's header line (glued on) when it has one."""
    rest = {k: v for k, v in kwargs.items() if k != "skiprows"}
    header = kwargs.get("header", "infer")
    if header is not None and not (header == "infer" and kwargs.get("names") is not None):
        rest["header"] = 0
    return rest


def _check_file_start(sample: bytes, start: _FileStart, kwargs: dict, rest: dict, path: str) -> None:
    """Refuse, rather than read wrong columns, a file whose later splits would not parse
    as its first does: its header line found, glued onto the rows after it, must give
    the columns pandas gives the file's start."""
    import pandas as pd
    def head(kw):
        return {k: v for k, v in kw.items() if k != "skipfooter"} | {"nrows": 5}
    want = pd.read_csv(io.BytesIO(sample), **head(kwargs)).columns
    got = pd.read_csv(io.BytesIO(start.header + sample[start.end:]), **head(rest)).columns
    if list(got) != list(want):
        raise ValueError(f"cannot find the header row of {path} for its later splits (found "
                         f"{start.header[:80]!r}, columns {list(got)[:5]} instead of {list(want)[:5]}); "
                         "read it with blocksize= larger than the file")


def _file_headers(fs, parts: list[Split], first: bytes, sample: int, kwargs: dict, rest_kwargs: dict) -> dict:
    """{path: the header line its later splits get} for the files of several splits
    (``first``: the sample of the first file)."""
    first_split = {s.path: s for s in parts if s.offset == 0}
    size = {s.path: s.offset + s.length for s in parts}    # the last split of a file ends it
    headers = {}
    for p in sorted({s.path for s in parts if s.offset > 0}):
        for nbytes in (min(sample, 64 << 10), sample):    # a header is rarely far in
            data = first if p == parts[0].path else _sample(fs, p, nbytes)
            start = _file_start(data, kwargs, whole=len(data) >= size[p])
            if start is not None:
                break
        else:
            raise ValueError(f"the rows header={kwargs.get('header', 'infer')!r}, skiprows="
                             f"{kwargs.get('skiprows')!r} take are not within the first {len(data)} bytes "
                             f"of {p}: pass a larger sample=")
        # The first split reads through the end of the line its length ends in (read_block).
        first_end = data.find(b"\n", first_split[p].length) + 1
        if start.end > first_end > 0:
            raise ValueError(f"the rows skiprows/header take ({start.end} bytes) reach past the first "
                             f"split of {p}: pass a larger blocksize=")
        _check_file_start(data, start, kwargs, rest_kwargs, p)
        headers[p] = start.header
    return headers


def _csv_part(fs, split, headers: dict, first_kwargs: dict, rest_kwargs: dict):
    import pandas as pd
    data = read_split(fs, split, b"\n")
    if split.offset == 0:
        return pd.read_csv(io.BytesIO(data), **first_kwargs)
    return pd.read_csv(io.BytesIO(headers.get(split.path, b"") + data), **rest_kwargs)


def read_csv(client: distributed.Client, urlpath, *, blocksize: int | None = None, sample: int = 256 << 10,
             compression: str | None = "infer", fs: DFSFileSystem | None = None,
             storage_options: dict | None = None, **kwargs):
    """A Dask DataFrame of CSV files, one partition per line-aligned split, read where it lives.

    ``kwargs`` go to ``pandas.read_csv``. ``skiprows`` and ``header`` apply to
    each file's first split; the later splits of a file get its header line
    (``nrows``/``skipfooter`` apply per split). Column types are inferred from
    the first ``sample`` bytes and imposed on every partition (unless ``dtype``
    is given). Records must not contain quoted newlines (splits are cut at lines).
    """
    import dask.dataframe as dd
    import pandas as pd
    fs = _filesystem(urlpath, fs, storage_options)
    parts = splits(fs, urlpath, blocksize, compression)
    if not parts:
        raise ValueError(f"no data in {urlpath}")
    first = _sample(fs, parts[0].path, sample, parts[0].compression)
    meta = pd.read_csv(io.BytesIO(first), **kwargs).iloc[:0]
    rest_kwargs = _later_split_kwargs(kwargs)
    headers = _file_headers(fs, parts, first, sample, kwargs, rest_kwargs)
    first_kwargs, rest_kwargs = dict(kwargs), dict(rest_kwargs)
    if "dtype" not in kwargs and "converters" not in kwargs:
        # Dates come from parse_dates in each split (in any of its forms): pandas
        # refuses a datetime dtype for parsing.
        dtype = {c: t for c, t in meta.dtypes.items() if not pd.api.types.is_datetime64_any_dtype(t)}
        first_kwargs["dtype"] = rest_kwargs["dtype"] = dtype
    futures = _submit_splits(client, fs, parts, "dfs-read-csv", _csv_part, headers, first_kwargs, rest_kwargs)
    return dd.from_delayed(futures, meta=meta, verify_meta=False)


def _json_part(fs, split, kwargs: dict):
    import pandas as pd
    data = read_split(fs, split, b"\n")
    if not data.strip():
        return None
    return pd.read_json(io.BytesIO(data), lines=True, **kwargs)


def _json_part_typed(fs, split, kwargs: dict, meta):
    df = _json_part(fs, split, kwargs)
    if df is None:
        return meta
    return df.astype({c: t for c, t in meta.dtypes.items() if c in df.columns}, errors="ignore")


def read_json(client: distributed.Client, urlpath, *, blocksize: int | None = None, sample: int = 256 << 10,
              compression: str | None = "infer", fs: DFSFileSystem | None = None,
              storage_options: dict | None = None, **kwargs):
    """A Dask DataFrame of JSON-lines files, one partition per line-aligned split."""
    import dask.dataframe as dd
    import pandas as pd
    kwargs.pop("lines", None)
    fs = _filesystem(urlpath, fs, storage_options)
    parts = splits(fs, urlpath, blocksize, compression)
    if not parts:
        raise ValueError(f"no data in {urlpath}")
    first = _sample(fs, parts[0].path, sample, parts[0].compression)
    meta = pd.read_json(io.BytesIO(first), lines=True, **kwargs).iloc[:0]
    futures = _submit_splits(client, fs, parts, "dfs-read-json", _json_part_typed, kwargs, meta)
    return dd.from_delayed(futures, meta=meta, verify_meta=False)


def _row_group_range(rg) -> tuple[int, int]:
    lo, hi = None, 0
    for c in range(rg.num_columns):
        col = rg.column(c)
        start = col.data_page_offset
        if col.has_dictionary_page and col.dictionary_page_offset and col.dictionary_page_offset < start:
            start = col.dictionary_page_offset
        lo = start if lo is None else min(lo, start)
        hi = max(hi, start + col.total_compressed_size)
    return lo or 0, hi


#: The directory name Hive and pyarrow give a partition whose value is null.
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_INT32 = re.compile(r"^-?[0-9]+$")


def _hive_values(path: str) -> dict[str, str | None]:
    """The ``key=value`` directories of ``path``, URI-decoded as pyarrow writes and reads
    them (``j=a%2Fb``: "a/b"; Hive's default partition: None). Every directory counts,
    as in dask.dataframe.read_parquet, whatever path or glob named the file."""
    out: dict[str, str | None] = {}
    for part in path.split("/")[:-1]:
        if "=" in part:
            k, v = part.split("=", 1)
            out[unquote(k)] = None if v == _HIVE_NULL else unquote(v)
    return out


def _partition_dtype(values):
    """The categorical dtype of a partition column, as dask gives it: its values sorted,
    int32 when every one is an int32 (pyarrow's inference), else strings."""
    import pandas as pd
    present = {v for v in values if v is not None}
    if present and all(_INT32.match(v) and -(1 << 31) <= int(v) < (1 << 31) for v in present):
        return pd.CategoricalDtype(pd.Index(sorted(int(v) for v in present), dtype="int32"))
    return pd.CategoricalDtype(pd.Index(sorted(present), dtype="str"))


def _partition_column(dtype, value: str | None, n: int):
    import numpy as np
    import pandas as pd
    cats = dtype.categories
    code = -1 if value is None else cats.get_loc(int(value) if cats.dtype.kind == "i" else value)
    return pd.Categorical.from_codes(np.full(n, code), dtype=dtype)


def _parquet_part(fs, path: str, rg: int, lo: int, hi: int, metadata, columns, partition_values: dict, meta):
    import pyarrow.parquet as pq
    host = _worker_host()
    with fs.open(path, "rb", window=(lo, max(1, hi - lo)), prefer_hosts=[host] if host else None,
                 cache_options={"readahead": 0}) as f:
        table = pq.ParquetFile(f, metadata=metadata).read_row_group(
            rg, columns=[c for c in columns if c not in partition_values] if columns else None)
    df = table.to_pandas()
    for k, v in partition_values.items():
        if k in meta.columns:
            df[k] = _partition_column(meta.dtypes[k], v, len(df))
    if list(df.columns) != list(meta.columns):
        df = df[list(meta.columns)]
    return df


def read_parquet(client: distributed.Client, urlpath, *, columns: list[str] | None = None,
                 fs: DFSFileSystem | None = None, storage_options: dict | None = None):
    """A Dask DataFrame of Parquet files, one partition per row group, read where it lives.

    ``urlpath``: a file, a glob, a list, or a directory (every file under it, not
    those starting with ``_`` or ``.``). ``key=value`` directories (hive
    partitioning) in a file's path become categorical columns, as dask's own
    ``read_parquet`` makes them (int32 categories when every value is one).
    """
    import dask.dataframe as dd
    import pyarrow.parquet as pq
    fs = _filesystem(urlpath, fs, storage_options)
    files = _expand(fs, urlpath)
    locations = fs.get_block_locations_many(files)
    schema = None
    found = []
    for f in files:
        with fs.open(f, "rb") as fh:
            md = pq.ParquetFile(fh).metadata
        if schema is None:
            schema = md.schema.to_arrow_schema()
        # A column the files hold beats a directory of the same name.
        values = {k: v for k, v in _hive_values(f).items() if k not in schema.names}
        found.append((f, md, values))
    keys = list(dict.fromkeys(k for _, _, values in found for k in values))
    meta = schema.empty_table().to_pandas()
    for k in keys:
        meta[k] = _partition_column(_partition_dtype([v.get(k) for _, _, v in found]), None, 0)
    if columns is not None:
        meta = meta[list(columns)]
    tasks = []
    for f, md, values in found:
        values = {k: values.get(k) for k in keys}
        for rg in range(md.num_row_groups):
            lo, hi = _row_group_range(md.row_group(rg))
            tasks.append((_best_hosts(locations[f], lo, hi), f, rg, lo, hi, md, columns, values, meta))
    if not tasks:
        raise ValueError(f"no row groups in {urlpath}")
    place = _Placement.of(client)
    name = _name("dfs-read-parquet")
    futures = [client.submit(_parquet_part, fs, *t[1:], key=f"{name}-{i}", pure=False, **place.restrict(t[0]))
               for i, t in enumerate(tasks)]
    return dd.from_delayed(futures, meta=meta, verify_meta=False)
