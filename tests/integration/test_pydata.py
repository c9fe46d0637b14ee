"""Real consumers through dfs:// URLs: pandas, pyarrow, dask (process workers), duckdb."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dfs.client.filesystem import DFSFileSystem


@pytest.fixture(scope="module")
def fs(shared_cluster):
    return DFSFileSystem(namenode=shared_cluster.namenode_address)


@pytest.fixture(scope="module")
def url(shared_cluster):
    return f"dfs://{shared_cluster.namenode_address}"


@pytest.fixture(scope="module")
def frame():
    n = 120_000
    rng = np.random.default_rng(7)
    return pd.DataFrame({
        "id": np.arange(n, dtype="int64"),
        "x": rng.normal(size=n),
        "cat": pd.Series(rng.choice(["a", "b", "c"], size=n)).astype("str"),
        "k": (np.arange(n) % 4).astype("int64"),
    })


# -- pandas ---------------------------------------------------------------------
def test_pandas_parquet_round_trip(fs, url, frame):
    frame.to_parquet(f"{url}/pd/one.parquet", row_group_size=30_000)
    assert fs.info("/pd/one.parquet")["size"] > 1 << 20       # several blocks
    back = pd.read_parquet(f"{url}/pd/one.parquet")
    pd.testing.assert_frame_equal(back, frame)
    cols = pd.read_parquet(f"{url}/pd/one.parquet", columns=["id", "cat"], filters=[("k", "==", 1)])
    assert len(cols) == len(frame) // 4 and list(cols.columns) == ["id", "cat"]
    # storage_options instead of a host in the URL
    back2 = pd.read_parquet("dfs:///pd/one.parquet", storage_options={"namenode": fs.namenode})
    pd.testing.assert_frame_equal(back2, frame)


def test_pandas_csv_round_trip(fs, url, frame):
    frame.to_csv(f"{url}/pd/one.csv", index=False)
    pd.testing.assert_frame_equal(pd.read_csv(f"{url}/pd/one.csv"), frame)
    frame.head(1000).to_csv(f"{url}/pd/small.csv.gz", index=False)          # compression inferred
    pd.testing.assert_frame_equal(pd.read_csv(f"{url}/pd/small.csv.gz"), frame.head(1000))
    assert fs.cat_file("/pd/small.csv.gz")[:2] == b"\x1f\x8b"


# -- pyarrow --------------------------------------------------------------------
def test_pyarrow_filesystem_and_partitioned_dataset(fs, frame):
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    from pyarrow.fs import FileSelector, FileType, FSSpecHandler, PyFileSystem

    pafs = PyFileSystem(FSSpecHandler(fs))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, "/pa/t.parquet", filesystem=pafs, row_group_size=40_000)
    assert pq.read_table("/pa/t.parquet", filesystem=pafs).equals(table)
    info = pafs.get_file_info("/pa/t.parquet")
    assert info.type == FileType.File and info.size == fs.size("/pa/t.parquet") and info.mtime is not None
    with pafs.open_input_file("/pa/t.parquet") as f:
        assert f.size() == info.size
        f.seek(info.size - 4)
        assert f.read(4) == b"PAR1"

    ds.write_dataset(table, "/pa/ds", format="parquet", filesystem=pafs,
                     partitioning=ds.partitioning(pa.schema([("k", pa.int64())]), flavor="hive"))
    listed = pafs.get_file_info(FileSelector("/pa/ds", recursive=True))
    assert {i.path for i in listed if i.type == FileType.Directory} == {f"/pa/ds/k={k}" for k in range(4)}
    dataset = ds.dataset("/pa/ds", format="parquet", filesystem=pafs, partitioning="hive")
    back = dataset.to_table(filter=ds.field("k") == 2).to_pandas()
    assert len(back) == len(frame) // 4 and set(back["k"]) == {2}
    whole = dataset.to_table().to_pandas().sort_values("id").reset_index(drop=True)
    assert whole["x"].equals(frame["x"])

    pq.write_to_dataset(table, "/pa/hive", filesystem=pafs, partition_cols=["cat"])
    assert sorted(fs.ls("/pa/hive", detail=False)) == ["/pa/hive/cat=a", "/pa/hive/cat=b", "/pa/hive/cat=c"]
    assert pq.read_table("/pa/hive", filesystem=fs).num_rows == len(frame)   # fsspec fs auto-wrapped
    pafs.move("/pa/hive", "/pa/hive2")
    pafs.delete_dir("/pa/hive2")
    assert not fs.exists("/pa/hive2")


# -- dask, with a distributed cluster of process workers --------------------------
@pytest.fixture(scope="module")
def dask_client():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as lc, Client(lc) as client:
        yield client


def test_dask_parquet_and_csv(fs, url, frame, dask_client):
    import dask.dataframe as dd
    pids = set(dask_client.run(lambda: __import__("os").getpid()).values())
    assert len(pids) == 2 and __import__("os").getpid() not in pids          # really other processes
    ddf = dd.from_pandas(frame, npartitions=4)
    ddf.to_parquet(f"{url}/dask/pq", write_index=False)
    assert len([p for p in fs.ls("/dask/pq", detail=False) if p.endswith(".parquet")]) == 4
    back = dd.read_parquet(f"{url}/dask/pq").compute().sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)

    ddf.to_csv(f"{url}/dask/csv/part-*.csv", index=False)
    assert len(fs.ls("/dask/csv")) == 4
    csv = dd.read_csv(f"{url}/dask/csv/part-*.csv", blocksize=256 << 10)
    assert csv.npartitions > 4                                               # split inside files
    got = csv.compute().sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, frame, check_dtype=False)
    assert csv.x.sum().compute() == pytest.approx(frame.x.sum())


def test_dfs_dask_readers_on_process_workers(fs, url, frame, dask_client):
    import dfs.dask
    frame.to_csv(f"{url}/dd/t.csv", index=False)
    frame.to_parquet(f"{url}/dd/t.parquet", row_group_size=20_000)
    csv = dfs.dask.read_csv(dask_client, f"{url}/dd/t.csv")
    assert csv.npartitions == len(fs.get_block_locations("/dd/t.csv"))
    pd.testing.assert_frame_equal(csv.compute().reset_index(drop=True), frame, check_dtype=False)
    pq = dfs.dask.read_parquet(dask_client, f"{url}/dd/t.parquet", columns=["id", "x"])
    assert pq.npartitions == 6
    pd.testing.assert_frame_equal(pq.compute().reset_index(drop=True), frame[["id", "x"]])
    frame.head(5000).to_json(f"{url}/dd/t.jsonl", orient="records", lines=True)
    js = dfs.dask.read_json(dask_client, f"{url}/dd/t.jsonl", blocksize=64 << 10)
    assert js.npartitions > 1
    pd.testing.assert_frame_equal(js.compute().reset_index(drop=True), frame.head(5000), check_dtype=False)
    sizes = dask_client.gather(dfs.dask.map_blocks(dask_client, len, f"{url}/dd/t.csv"))
    assert sum(sizes) == fs.size("/dd/t.csv")


CSV_PREAMBLE = "# exported by tool\n# 2 comment lines\n"


@pytest.mark.parametrize("text,kwargs", [
    (CSV_PREAMBLE + "a,b\n", {"comment": "#"}),
    ("# exported by tool\na,b\n", {"header": 1}),
    (CSV_PREAMBLE + "a,b\n", {"skiprows": 2}),
    ("junk\na,b\njunk\n", {"skiprows": [0, 2]}),
    ("a,b\n", {"names": ["p", "q"], "header": 0}),
    ("", {"names": ["p", "q"], "header": None}),
    ("", {"header": None}),
], ids=["comment", "header=1", "skiprows=2", "skiprows=[0,2]", "names,header=0", "names", "header=None"])
def test_dfs_dask_csv_whose_first_line_is_not_the_header_reads_as_pandas(fs, url, dask_client, text, kwargs):
    # Every later split got the file's first physical line glued on as its header:
    # with a "# exported by tool" line, 299,998 rows and columns a, b, 128852, 1, 245360.
    import dfs.dask
    rows = pd.DataFrame({"a": np.arange(20_000), "b": np.arange(20_000) % 7}).to_csv(index=False, header=False)
    fs.pipe_file("/dd/pre.csv", (text + rows).encode())
    ddf = dfs.dask.read_csv(dask_client, f"{url}/dd/pre.csv", blocksize=32 << 10, **kwargs)
    assert ddf.npartitions > 3
    pd.testing.assert_frame_equal(ddf.compute().reset_index(drop=True), pd.read_csv(f"{url}/dd/pre.csv", **kwargs))


def test_dfs_dask_csv_refuses_what_later_splits_cannot_honour(fs, url, dask_client):
    import dfs.dask
    fs.pipe_file("/dd/fn.csv", ("a,b\n" + "1,2\n" * 20_000).encode())
    with pytest.raises(ValueError, match="skiprows as a function"):
        dfs.dask.read_csv(dask_client, f"{url}/dd/fn.csv", blocksize=32 << 10, skiprows=lambda i: i == 1)
    with pytest.raises(ValueError, match="blocksize"):     # skipped rows in the second split
        dfs.dask.read_csv(dask_client, f"{url}/dd/fn.csv", blocksize=32 << 10, skiprows=[1, 10_000])
    one = dfs.dask.read_csv(dask_client, f"{url}/dd/fn.csv", skiprows=lambda i: i == 1)   # one split: fine
    assert len(one.compute()) == 19_999


@pytest.mark.filterwarnings("ignore:Could not infer format")
@pytest.mark.parametrize("kwargs", [{"parse_dates": ["t"]}, {"parse_dates": [0]},
                                    {"parse_dates": True, "index_col": "t"}, {"parse_dates": ["s"]}],
                         ids=["names", "positions", "True,index_col", "not a date"])
def test_dfs_dask_csv_parse_dates_in_the_forms_pandas_takes(fs, url, dask_client, kwargs):
    # [0] failed in every task ("the dtype datetime64[us] is not supported for parsing"),
    # True with index_col on the client ("argument of type 'bool' is not iterable").
    import dfs.dask
    t = pd.date_range("2024-01-01", periods=8000, freq="min")
    dates = pd.DataFrame({"t": t, "v": np.arange(8000), "s": [f"s{i}" for i in range(8000)]})
    dates.to_csv(f"{url}/dd/dates.csv", index=False)
    got = dfs.dask.read_csv(dask_client, f"{url}/dd/dates.csv", blocksize=32 << 10, **kwargs)
    assert got.npartitions > 3
    want = pd.read_csv(f"{url}/dd/dates.csv", **kwargs)
    out = got.compute()
    pd.testing.assert_frame_equal(out if "index_col" in kwargs else out.reset_index(drop=True), want)
    assert dict(got.dtypes) == dict(want.dtypes)


def test_dfs_dask_parquet_hive_partitions_as_pyarrow_and_dask_read_them(fs, url, dask_client):
    # Values came back still URI-encoded ('z%20w'), the null partition as its
    # directory name, and a glob lost the partition column.
    import dask.dataframe as dd
    import pyarrow as pa
    import pyarrow.parquet as pq

    import dfs.dask
    j = ["z w", "a/b", "x=y", "plain", "z w", "plain"]
    table = pa.table({"a": list(range(6)), "j": j, "k": [1, 2, 3, 1, 2, 10]})
    pq.write_to_dataset(table, "/dd/hive", partition_cols=["j", "k"], filesystem=fs)
    assert "/dd/hive/j=z%20w" in fs.ls("/dd/hive", detail=False)
    for path in ("/dd/hive", "/dd/hive/*/*/*.parquet"):
        got = dfs.dask.read_parquet(dask_client, url + path)
        want = dd.read_parquet(url + path)
        assert dict(got.dtypes) == dict(want.dtypes)              # categoricals: str and int32
        pd.testing.assert_frame_equal(got.compute().sort_values("a").reset_index(drop=True),
                                      want.compute().sort_values("a").reset_index(drop=True))
    k = dfs.dask.read_parquet(dask_client, f"{url}/dd/hive", columns=["a", "k"]).compute()
    assert list(k.columns) == ["a", "k"] and k.sort_values("a").k.tolist() == [1, 2, 3, 1, 2, 10]

    pq.write_to_dataset(pa.table({"a": [1, 2, 3], "j": ["x y", None, "x y"]}), "/dd/hive_null",
                        partition_cols=["j"], filesystem=fs)
    got = dfs.dask.read_parquet(dask_client, f"{url}/dd/hive_null").compute().sort_values("a")
    want = [r["j"] for r in sorted(pq.read_table("/dd/hive_null", filesystem=fs).to_pylist(), key=lambda r: r["a"])]
    assert want == ["x y", None, "x y"] and got.j.tolist() == ["x y", np.nan, "x y"]
    assert list(got.j.cat.categories) == ["x y"]


def test_dfs_dask_parquet_key_value_directories_above_the_dataset_count_as_in_dask(fs, url, dask_client):
    # dask.dataframe.read_parquet lists a directory's *.parquet files and gives pyarrow
    # the list, so a "run=3" above the directory named is a column too, as for a glob.
    import dask.dataframe as dd
    import pyarrow as pa
    import pyarrow.parquet as pq

    import dfs.dask
    pq.write_to_dataset(pa.table({"a": [1, 2, 3], "k": [1, 2, 1]}), "/dd/wh/run=3/table",
                        partition_cols=["k"], filesystem=fs)
    files = [url + f for f in sorted(fs.find("/dd/wh/run=3/table"))]
    for path in (url + "/dd/wh/run=3/table", url + "/dd/wh/run=3/table/*/*.parquet", files):
        got = dfs.dask.read_parquet(dask_client, path)
        want = dd.read_parquet(path)
        assert list(want.columns) == ["a", "run", "k"] and dict(got.dtypes) == dict(want.dtypes)
        pd.testing.assert_frame_equal(got.compute().sort_values("a").reset_index(drop=True),
                                      want.compute().sort_values("a").reset_index(drop=True))


# -- duckdb ---------------------------------------------------------------------
def test_duckdb(fs, url, frame):
    import duckdb
    frame.to_parquet(f"{url}/duck/t.parquet")
    frame.head(500).to_csv(f"{url}/duck/t.csv", index=False)
    con = duckdb.connect()
    con.register_filesystem(fs)
    q = f"SELECT count(*), sum(id) FROM read_parquet('{url}/duck/t.parquet')"
    n, total = con.execute(q).fetchall()[0]
    assert n == len(frame) and total == frame.id.sum()
    got = con.execute(f"SELECT * FROM read_csv('{url}/duck/t.csv') ORDER BY id").df()
    assert got["id"].tolist() == frame.head(500)["id"].tolist()
    con.execute(f"COPY (SELECT k, count(*) AS n FROM read_parquet('{url}/duck/t.parquet') "
                f"GROUP BY k ORDER BY k) TO '{url}/duck/out.parquet' (FORMAT parquet)")
    out = pd.read_parquet(f"{url}/duck/out.parquet")
    assert out["n"].tolist() == [len(frame) // 4] * 4
    con.execute(f"COPY (SELECT id, cat FROM read_parquet('{url}/duck/t.parquet') WHERE id < 10) "
            f"TO '{url}/duck/out.csv' (HEADER)")
    assert pd.read_csv(f"{url}/duck/out.csv")["id"].tolist() == list(range(10))
    con.close()
