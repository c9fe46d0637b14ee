"""Where a CSV file's data rows begin, for dfs.dask.read_csv's later splits, without a cluster."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from dfs.dask import Split, _file_headers, _file_start, _FileStart, _hive_values, _later_split_kwargs, _lines

ROWS = "".join(f"{i},{i * 7 % 11}\n" for i in range(40))
PREAMBLE = "# exported by tool\n"


def read_in_splits(data: bytes, kwargs: dict, cut: int) -> pd.DataFrame:
    """As read_csv reads a file cut into two splits at the line boundary after ``cut``."""
    cut = data.index(b"\n", cut) + 1
    start = _file_start(data[:4096], kwargs, whole=len(data) <= 4096)
    assert start.end <= cut
    first = pd.read_csv(io.BytesIO(data[:cut]), **kwargs)
    rest = pd.read_csv(io.BytesIO(start.header + data[cut:]), **_later_split_kwargs(kwargs))
    return pd.concat([first, rest], ignore_index=True)


CASES = [
    ("a,b\n" + ROWS, {}),
    (PREAMBLE + "a,b\n" + ROWS, {"comment": "#"}),
    (PREAMBLE + "a,b\n" + ROWS, {"header": 1}),
    ("junk\nmore junk\na,b\n" + ROWS, {"skiprows": 2}),
    ("junk\na,b\nskip me\n" + ROWS, {"skiprows": [0, 2]}),
    ("\n" + PREAMBLE + "\na,b\n" + ROWS, {"comment": "#"}),
    ("x,y\n" + ROWS, {"header": 0, "names": ["p", "q"]}),
    ("x,y\n" + ROWS, {"skiprows": 1, "header": None, "names": ["p", "q"]}),
    (ROWS, {"header": None}),
    (ROWS, {"names": ["p", "q"]}),
    (ROWS, {"header": None, "skiprows": 3}),
    ("a,b\r\n" + ROWS.replace("\n", "\r\n"), {}),
]


@pytest.mark.parametrize("text,kwargs", CASES, ids=[str(k) for _, k in CASES])
def test_later_splits_read_as_pandas_reads_the_whole_file(text, kwargs):
    data = text.encode()
    want = pd.read_csv(io.BytesIO(data), **kwargs)
    for cut in (len(data) // 3, len(data) // 2, len(data) - 10):
        pd.testing.assert_frame_equal(read_in_splits(data, kwargs, cut), want)


def test_the_header_is_the_line_pandas_takes():
    data = (PREAMBLE + "\na,b\n" + ROWS).encode()
    assert _file_start(data, {"comment": "#"}, whole=True).header == b"a,b\n"
    assert _file_start(data, {"comment": "#"}, whole=True).end == len(PREAMBLE) + 5
    assert _file_start(data, {"header": 1}, whole=True).header == b"a,b\n"   # blank line not a row
    assert _file_start(data, {}, whole=True).header == PREAMBLE.encode()
    assert _file_start(b"a,b", {}, whole=True).header == b"a,b\n"
    assert _file_start(b"1,2\n", {"header": None, "skiprows": 1}, whole=True) == _FileStart(b"", 4)


def test_what_later_splits_cannot_do_is_refused():
    data = ("a,b\n" + ROWS).encode()
    with pytest.raises(ValueError, match="function"):
        _file_start(data, {"skiprows": lambda i: i == 3}, whole=False)
    with pytest.raises(ValueError, match="header"):
        _file_start(data, {"header": [0, 1]}, whole=False)
    assert _file_start(data[:20], {"header": 10}, whole=False) is None     # past the sample


def test_a_header_line_crossing_the_first_splits_length_is_in_that_split():
    # The first split reads through the end of the line it ends in (fsspec read_block),
    # so a header starting inside it is its own, however far the line runs.
    data = ("a" * 30 + ",b\n" + ROWS).encode()
    for length in (1, 20, 32, 33):
        parts = [Split("/f.csv", 0, length, ()), Split("/f.csv", length, len(data) - length, ())]
        assert _file_headers(None, parts, data, 4096, {}, {"header": 0}) == {"/f.csv": data[:33]}
    junk = b"skip me\n" + data
    parts = [Split("/f.csv", 0, 5, ()), Split("/f.csv", 5, len(junk) - 5, ())]
    with pytest.raises(ValueError, match="past the first split"):     # the header is in the second
        _file_headers(None, parts, junk, 4096, {"skiprows": 1}, {"header": 0})
    parts = [Split("/f.csv", 0, 8, ()), Split("/f.csv", 8, len(junk) - 8, ())]
    assert _file_headers(None, parts, junk, 4096, {"skiprows": 1}, {"header": 0}) == {"/f.csv": data[:33]}


def test_lines_are_cut_at_newlines_only():
    assert list(_lines(b"a\rb\nc\r\n\nd")) == [b"a\rb\n", b"c\r\n", b"\n", b"d"]


def test_hive_values_are_decoded_as_pyarrow_decodes_them():
    assert _hive_values("/h/j=z%20w/k=1/part.parquet") == {"j": "z w", "k": "1"}
    assert _hive_values("/h/j=a%2Fb/x.parquet") == {"j": "a/b"}
    assert _hive_values("/h/j=x%3Dy/x.parquet") == {"j": "x=y"}
    assert _hive_values("/h/k%20b=v/x.parquet") == {"k b": "v"}
    assert _hive_values("/h/j=__HIVE_DEFAULT_PARTITION__/x.parquet") == {"j": None}
    assert _hive_values("/h/plain/x=1.parquet") == {}           # the file's own name is no partition
    # dask counts the directories above the one read too (it hands pyarrow a list of files)
    assert _hive_values("/wh/run=3/table/k=1/p.parquet") == {"run": "3", "k": "1"}
