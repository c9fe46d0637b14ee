"""Upper limits on what a client sends (SPEC §3: a bad value is an error that names it,
never an internal error): block size, replication, mode, mtime, and any integer the
namenode's SQLite cannot store. A block size of 2^63 used to reach SQLite
(OverflowError: a traceback in the namenode, "internal error in namenode" for the
client), and one of 2^64 failed in the client's protobuf with "Value out of range"."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from dfs import config, errors
from dfs.cli import args as a
from dfs.client import DfsClient
from dfs.namenode.namespace import Caller, Namespace
from dfs.namenode.service import out_of_range
from dfs.namenode.store import SqliteStore
from dfs.rpc.v1 import namenode_pb2 as pb

ROOT = Caller("root", ("supergroup",), client_name="root-1")
HUGE = (2**63, 2**64, 2**70)


@pytest.fixture
def ns() -> Namespace:
    return Namespace(SqliteStore(":memory:"), superuser="root")


def test_the_pure_checks():
    assert config.block_size_problem(config.MAX_BLOCK_SIZE) == ""
    assert config.block_size_problem(64 << 20) == ""
    for bad in (config.MAX_BLOCK_SIZE + config.BLOCK_SIZE_UNIT, *HUGE, 0, -65536):
        assert "from 64KiB to 2GiB" in config.block_size_problem(bad)
    assert config.replication_problem(512) == "" and config.replication_problem(1) == ""
    for bad in (0, 513, -1, *HUGE):
        assert config.replication_problem(bad) == "replication must be 1..512"
    assert config.mtime_problem(time.time()) == "" and config.mtime_problem(-1.5) == ""
    assert config.mtime_problem(config.MIN_MTIME) == config.mtime_problem(config.MAX_MTIME) == ""
    for bad in (float("nan"), float("inf"), -float("inf"), 1e300, 2**70, config.MAX_MTIME + 1):
        assert config.mtime_problem(bad), bad
    assert config.mode_problem(0o644) == config.mode_problem(0o100644) == ""
    assert config.mode_problem(0o177777) == ""        # fsspec's info()["mode"] is an st_mode
    for bad in (-1, 0o200000, 2**32, 2**40):
        assert "invalid mode" in config.mode_problem(bad) and "0o177777" in config.mode_problem(bad)


@pytest.mark.parametrize("text", ["8388608T", "16777216T", "4G", "2049M", str(2**63)])
def test_the_parser_refuses_a_block_size_beyond_2_gib(text):
    with pytest.raises(Exception, match="from 64KiB to 2GiB"):
        a.block_size(text)


def test_the_parser_takes_2_gib():
    assert a.block_size("2G") == 2 << 30


@pytest.mark.parametrize("block_size", [2**31 + 16384, 2**40, 2**63 - 16384, 2**63])
def test_the_namespace_refuses_a_huge_block_size_as_a_bad_argument(ns, block_size):
    with pytest.raises(errors.InvalidArgumentError, match="from 64KiB to 2GiB"):
        ns.create("/f", ROOT, 1.0, overwrite=False, replication=3, block_size=block_size, mode=0o644,
                  create_parent=False)
    assert ns.store.lookup(1, "f") is None and list(ns.store.pending(1, "f")) == []


def test_the_namespace_refuses_huge_replication_and_mtimes(ns):
    ns.create("/f", ROOT, 1.0, overwrite=False, replication=3, block_size=1 << 20, mode=0o644,
              create_parent=False, complete=True)
    for bad in (513, 2**32 - 1):
        with pytest.raises(errors.InvalidArgumentError, match="1..512"):
            ns.set_replication("/f", bad, ROOT)
    for bad in (1e300, -1e300, float(2**70), float("inf")):
        with pytest.raises(errors.InvalidArgumentError, match="years 1 to 9999"):
            ns.set_times("/f", bad, ROOT)
    assert ns.stat("/f", ROOT).mtime == 1.0


@pytest.mark.parametrize("kw", [dict(default_block_size=2**63), dict(default_block_size=4 << 30),
                                dict(default_replication=1000)])
def test_a_namenode_with_an_impossible_default_does_not_start(kw):
    # It used to start, and then every create failed with an internal error.
    with pytest.raises(ValueError, match="default"):
        Namespace(SqliteStore(":memory:"), superuser="root", **kw)


def test_a_request_with_an_integer_sqlite_cannot_store_is_named():
    assert out_of_range(pb.CreateRequest(path="/f", block_size=2**63 - 1)) == ""
    assert out_of_range(pb.CreateRequest(path="/f", block_size=2**63)) == "block_size"
    assert out_of_range(pb.AddBlockRequest(file_id=2**64 - 1)) == "file_id"
    assert out_of_range(pb.GetBlockLocationsRequest(path="/f", inode_id=2**63)) == "inode_id"
    bad = pb.ReportBadBlocksRequest(replicas=[pb.BadReplica(block_id=1), pb.BadReplica(block_id=2**63)])
    assert out_of_range(bad) == "replicas.block_id"


def test_the_client_refuses_bad_arguments_before_any_rpc():
    # An unreachable namenode: a check that let the call through would fail otherwise.
    c = DfsClient("127.0.0.1:9", retry_seconds=0)
    cases = [
        lambda: c.create("/f", block_size=2**63), lambda: c.create("/f", block_size=2**64),
        lambda: c.create("/f", block_size=1000), lambda: c.create("/f", replication=2**63),
        lambda: c.create("/f", mode=2**40), lambda: c.set_replication("/f", 2**63),
        lambda: c.set_times("/f", 1e300), lambda: c.set_times("/f", float("nan")),
        lambda: c.chmod("/f", 2**40), lambda: c.mkdir("/d", mode=-1),
    ]
    for call in cases:
        with pytest.raises(errors.InvalidArgumentError) as e:
            call()
        assert isinstance(e.value, ValueError) and e.value.path in ("/f", "/d")


def test_env_number_takes_a_finite_number_in_range_or_the_default(monkeypatch):
    monkeypatch.delenv("DFS_X", raising=False)
    assert config.env_number("DFS_X", 8.0, 0, 3600) == 8.0
    for text, want in (("", 8.0), (" 2.5 ", 2.5), ("0", 0.0), ("3600", 3600.0)):
        monkeypatch.setenv("DFS_X", text)
        assert config.env_number("DFS_X", 8.0, 0, 3600) == want
    monkeypatch.setenv("DFS_X", "12")
    assert config.env_number("DFS_X", 4, 1, 1024, whole=True) == 12
    for text in ("abc", "nan", "inf", "-inf", "1e400", "-1", "3601", "0x10"):
        monkeypatch.setenv("DFS_X", text)
        with pytest.raises(config.SettingError) as e:
            config.env_number("DFS_X", 8.0, 0, 3600)
        assert str(e.value) == f"$DFS_X: invalid value {text!r} (a number from 0 to 3600)"
    for text in ("2.5", "0", "abc", "2592001"):
        monkeypatch.setenv("DFS_X", text)
        with pytest.raises(config.SettingError, match=r"\(a whole number from 1 to 2592000\)"):
            config.env_number("DFS_X", 4, 1, 30 * 86400, whole=True)


def test_a_bad_retry_setting_fails_a_client_at_once_not_a_call_for_ever(monkeypatch):
    # DFS_RETRY_SECONDS=nan made every call to an unreachable namenode retry for ever.
    for text in ("nan", "inf", "abc"):
        monkeypatch.setenv("DFS_RETRY_SECONDS", text)
        with pytest.raises(config.SettingError, match="DFS_RETRY_SECONDS"):
            DfsClient("127.0.0.1:9")
        with pytest.raises(ValueError, match="DFS_RETRY_SECONDS"):   # fsspec: a ValueError
            DfsClient("127.0.0.1:9")


def test_every_numeric_setting_is_read_through_the_checked_helper():
    root = Path(__file__).resolve().parents[2]
    sources = [*(root / "dfs").rglob("*.py"), *(root / "fuse" / "dfs_fuse").rglob("*.py")]
    used = set()
    for path in sources:
        text = path.read_text()
        assert not re.search(r"(float|int)\(\s*os\.environ", text), path   # a bare float(): 'nan' hung
        used |= set(re.findall(r'\bsetting\("(DFS_\w+)"', text))
    assert used == set(config.SETTINGS)


def test_check_settings_names_the_first_bad_one(monkeypatch):
    for name in config.SETTINGS:
        monkeypatch.delenv(name, raising=False)
    config.check_settings()
    monkeypatch.setenv("DFS_REPAIR_YIELD", "nan")
    with pytest.raises(config.SettingError, match=r"^\$DFS_REPAIR_YIELD: invalid value 'nan'"):
        config.check_settings()


@pytest.mark.parametrize("kw", [{"replication": 0}, {"replication": 2.5}, {"replication": "x"},
                                {"dfs_block_size": 0}, {"dfs_block_size": 100_000}, {"permissions": -1}])
def test_fsspec_write_options_are_checked_not_defaulted_or_truncated(kw):
    """fs.open(p, "wb", replication=0) wrote at the default replication and 2.5 at 2:
    each option given is checked, as the CLI checks it."""
    from dfs.client.fsspec_file import _write_opts
    with pytest.raises(errors.InvalidArgumentError, match=next(iter(kw))):
        _write_opts(kw)


def test_fsspec_write_options_in_range_pass():
    from dfs.client.fsspec_file import _write_opts
    assert _write_opts({"replication": 2, "dfs_block_size": 1 << 20, "permissions": 0o640}) == \
        {"replication": 2, "block_size": 1 << 20, "mode": 0o640}
    assert _write_opts({"replication": 2.0, "dfs_block_size": None}) == {"replication": 2}
