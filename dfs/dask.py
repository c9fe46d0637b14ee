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
import socket
import uuid
from dataclasses import dataclass

import dask
import distributed
import fsspec
from fsspec.core import get_compression
from fsspec.utils import read_block

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
    try:
        return tuple({host, *(ai[4][0] for ai in socket.getaddrinfo(host, None))})
    except OSError:
        return (host,)


def hosts_to_workers(client: distributed.Client, hosts) -> list[str]:
    """The hosts (as the scheduler knows them) of the workers on any of ``hosts``.

    Datanode hosts are matched to a worker's host address directly, after name
    resolution, or through the worker's name (start workers with
    ``--name $(hostname)`` when hosts are names the resolver does not know).
    """
    return _Placement(client).hosts_for(hosts)


class _Placement:
    def __init__(self, client: distributed.Client):
        self.index: dict[str, str] = {}
        for addr, w in client.scheduler_info(n_workers=-1)["workers"].items():
            host = w.get("host") or distributed.comm.get_address_host(addr)
            self.index.setdefault(host, host)
            if w.get("name") is not None:
                self.index.setdefault(str(w["name"]), host)

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
    place = _Placement(client)
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
    place = _Placement(client)
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


def _csv_part(fs, split, headers: dict, kwargs: dict):
    import pandas as pd
    data = read_split(fs, split, b"\n")
    if split.offset > 0 and headers.get(split.path):
        data = headers[split.path] + data
    return pd.read_csv(io.BytesIO(data), **kwargs)


def read_csv(client: distributed.Client, urlpath, *, blocksize: int | None = None, sample: int = 256 << 10,
             compression: str | None = "infer", fs: DFSFileSystem | None = None,
             storage_options: dict | None = None, **kwargs):
    """A Dask DataFrame of CSV files, one partition per line-aligned split, read where it lives.

    ``kwargs`` go to ``pandas.read_csv`` for every split (so ``skiprows``/``nrows``
    apply per split, not per file). Column types are inferred from the first
    ``sample`` bytes and imposed on every partition (unless ``dtype`` is given).
    Records must not contain quoted newlines (splits are cut at lines).
    """
    import dask.dataframe as dd
    import pandas as pd
    fs = _filesystem(urlpath, fs, storage_options)
    parts = splits(fs, urlpath, blocksize, compression)
    if not parts:
        raise ValueError(f"no data in {urlpath}")
    first = _sample(fs, parts[0].path, sample, parts[0].compression)
    meta = pd.read_csv(io.BytesIO(first), **kwargs).iloc[:0]
    header_row = kwargs.get("header", "infer")
    has_header = header_row == 0 or (header_row == "infer" and kwargs.get("names") is None)
    headers = {}
    if has_header:
        for p in {s.path for s in parts if s.offset > 0}:
            line = _sample(fs, p, 64 << 10)
            headers[p] = line[:line.find(b"\n") + 1]
    part_kwargs = dict(kwargs)
    if "dtype" not in kwargs and "converters" not in kwargs:
        dates = kwargs.get("parse_dates") or ()
        part_kwargs["dtype"] = {c: t for c, t in meta.dtypes.items() if c not in dates}
    futures = _submit_splits(client, fs, parts, "dfs-read-csv", _csv_part, headers, part_kwargs)
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


def _hive_values(base: str, path: str) -> dict[str, str]:
    rel = path[len(base):].strip("/").split("/")[:-1] if path.startswith(base) else []
    return dict(part.split("=", 1) for part in rel if "=" in part)


def _parquet_part(fs, path: str, rg: int, lo: int, hi: int, metadata, columns, partition_values: dict, meta):
    import pyarrow.parquet as pq
    host = _worker_host()
    with fs.open(path, "rb", window=(lo, max(1, hi - lo)), prefer_hosts=[host] if host else None,
                 cache_options={"readahead": 0}) as f:
        table = pq.ParquetFile(f, metadata=metadata).read_row_group(
            rg, columns=[c for c in columns if c not in partition_values] if columns else None)
    df = table.to_pandas()
    for k, v in partition_values.items():
        if columns is None or k in columns:
            df[k] = v
    if list(df.columns) != list(meta.columns):
        df = df[list(meta.columns)]
    return df.astype(meta.dtypes.to_dict()) if partition_values else df


def read_parquet(client: distributed.Client, urlpath, *, columns: list[str] | None = None,
                 fs: DFSFileSystem | None = None, storage_options: dict | None = None):
    """A Dask DataFrame of Parquet files, one partition per row group, read where it lives.

    ``urlpath``: a file, a glob, a list, or a directory (every file under it, not
    those starting with ``_`` or ``.``). ``key=value`` directories (hive
    partitioning) become string columns.
    """
    import dask.dataframe as dd
    import pandas as pd
    import pyarrow.parquet as pq
    fs = _filesystem(urlpath, fs, storage_options)
    files = _expand(fs, urlpath)
    base = fs._strip_protocol(urlpath) if isinstance(urlpath, str) and fs.isdir(urlpath) else ""
    locations = fs.get_block_locations_many(files)
    meta = None
    tasks = []
    for f in files:
        with fs.open(f, "rb") as fh:
            md = pq.ParquetFile(fh).metadata
        values = _hive_values(base, f) if base else {}
        if meta is None:
            schema = md.schema.to_arrow_schema()
            meta = schema.empty_table().to_pandas()
            for k in values:
                meta[k] = pd.Series([], dtype="str")
            if columns is not None:
                meta = meta[list(columns)]
        for rg in range(md.num_row_groups):
            lo, hi = _row_group_range(md.row_group(rg))
            tasks.append((_best_hosts(locations[f], lo, hi), f, rg, lo, hi, md, columns, values, meta))
    if not tasks:
        raise ValueError(f"no row groups in {urlpath}")
    place = _Placement(client)
    name = _name("dfs-read-parquet")
    futures = [client.submit(_parquet_part, fs, *t[1:], key=f"{name}-{i}", pure=False, **place.restrict(t[0]))
               for i, t in enumerate(tasks)]
    return dd.from_delayed(futures, meta=meta, verify_meta=False)
