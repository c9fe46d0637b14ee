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
