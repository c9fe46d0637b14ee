"""`put --replication N` and `setrep N` take 1..512 (SPEC §3: a usage error exits 2);
0 or a negative number was taken as "the cluster default" or failed inside protobuf."""

from __future__ import annotations

import pytest

from dfs.cli.main import main


@pytest.mark.parametrize("argv", [
    ["put", "--replication", "0", "local", "/x"],
    ["put", "--replication", "-1", "local", "/x"],
    ["put", "--replication", "513", "local", "/x"],
    ["setrep", "0", "/x"],
    ["setrep", "two", "/x"],
])
def test_a_replication_outside_1_to_512_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "replication" in err and "Traceback" not in err


def test_a_replication_in_range_is_taken(tmp_path, capsys):
    # Parsed, then the put fails at the missing local file: not a usage error.
    missing = str(tmp_path / "none")
    assert main(["--namenode", "127.0.0.1:1", "put", "--replication", "512", missing, "/x"]) == 1
    assert "No such file" in capsys.readouterr().err
