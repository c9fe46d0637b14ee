"""The client CLI's argument handling without a cluster (SPEC §3): namenode address
forms, dfs:// URLs taken literally, usage errors, multi-path status, a closed stdout."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from dfs import errors
from dfs.cli import args as a
from dfs.cli.args import UsageError
from dfs.cli.common import each, namenode_of, resolve
from dfs.cli.main import build_parser, main
from dfs.config import parse_namenode, split_url


@pytest.mark.parametrize("text, want", [
    ("nn1:9000", "nn1:9000"),
    ("nn1", "nn1:8020"),
    ("127.0.0.1", "127.0.0.1:8020"),
    ("dfs://nn1:9000", "nn1:9000"),
    ("dfs://nn1:9000/", "nn1:9000"),
    ("dfs://nn1", "nn1:8020"),
    ("[::1]:9000", "[::1]:9000"),
    ("[::1]", "[::1]:8020"),
    ("my_host.example-1.org:1", "my_host.example-1.org:1"),
])
def test_namenode_address_forms(text, want):
    assert parse_namenode(text) == want


@pytest.mark.parametrize("text", [
    "", ":8020", "nn1:", "nn1:port", "nn1:0", "nn1:65536", "nn1:80:80", "::1", "[::1", "[zz]:80",
    "dfs://", "dfs://nn1:9000/data", "dfs:nn1", "nn 1:80", "http://nn1:80", "nn1/x", "-nn1", "[::1]x",
])
def test_malformed_namenode_addresses_are_refused(text):
    with pytest.raises(ValueError, match="invalid namenode address"):
        parse_namenode(text)


def test_url_paths_are_taken_literally():
    assert split_url("dfs://nn1:9000/a/b") == ("nn1:9000", "/a/b")
    assert split_url("dfs://nn1/a") == ("nn1:8020", "/a")
    assert split_url("dfs:///a/b/") == (None, "/a/b/")
    assert split_url("dfs://nn1:9000") == ("nn1:9000", "/")
    # '?', '#' and '%' are characters of a dfs name, not a query, a fragment or an escape.
    assert split_url("dfs://nn1:9000/a?b#c%20d") == ("nn1:9000", "/a?b#c%20d")
    assert split_url("/plain?name#x") == (None, "/plain?name#x")
    assert split_url("rel/p") == (None, "rel/p")
    for bad in ("dfs:/a", "dfs:a", "dfs://nn1:x/a", "dfs://:9000/a"):
        with pytest.raises(ValueError):
            split_url(bad)


def _args(**kw):
    return argparse.Namespace(namenode=None, debug=False, command="ls", command_name="ls", **kw)


def test_namenode_from_flag_then_env_then_default(monkeypatch):
    monkeypatch.delenv("DFS_NAMENODE", raising=False)
    assert namenode_of(_args()) == "127.0.0.1:8020"
    monkeypatch.setenv("DFS_NAMENODE", "nn2")
    assert namenode_of(_args()) == "nn2:8020"
    assert namenode_of(argparse.Namespace(namenode="nn3:1")) == "nn3:1"
    monkeypatch.setenv("DFS_NAMENODE", "nn2:http")
    with pytest.raises(UsageError, match=r"\$DFS_NAMENODE: invalid namenode address"):
        namenode_of(_args())


def test_a_malformed_url_is_a_usage_error_before_any_rpc(monkeypatch, capsys):
    # No namenode runs on these addresses: an RPC would fail with exit 1, not 2.
    monkeypatch.setenv("DFS_NAMENODE", "127.0.0.1:9")
    for argv in (["ls", "dfs://nn1:99999/a"], ["cat", "dfs:/a"], ["rm", "/a", "dfs://:1/b"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("dfs: "), err
    monkeypatch.setenv("DFS_NAMENODE", "not a host")
    assert main(["stat", "/"]) == 2
    assert "$DFS_NAMENODE" in capsys.readouterr().err
    with pytest.raises(UsageError):
        resolve(_args(), "dfs://bad:port/x")


@pytest.mark.parametrize("argv, words", [
    (["put", "--replication", "0", "a", "/b"], "put: argument --replication: invalid replication '0'"),
    (["put", "--replication", "-1", "a", "/b"], "invalid replication '-1'"),
    (["put", "--block-size", "12Q", "a", "/b"], "put: argument --block-size: invalid size '12Q'"),
    (["put", "--block-size", "1K", "a", "/b"], "invalid block size '1K'"),
    # a multiple of 512 only: 512-byte chunks (ranged reads ~800x slower)
    (["put", "--block-size", "1049088", "a", "/b"], "invalid block size '1049088'"),
    (["setrep", "0", "/a"], "setrep: argument N: invalid replication '0'"),
    (["setrep", "x", "/a"], "invalid replication 'x'"),
    (["--namenode", "h:0", "ls"], "dfs: argument --namenode: invalid namenode address 'h:0'"),
    (["admin", "decommission", "dn1"], "admin decommission: argument HOST:PORT: invalid address 'dn1'"),
    (["chown", "", "/a"], "chown: argument OWNER[:GROUP]: invalid owner ''"),
    (["chown", "a:b:c", "/a"], "invalid owner 'a:b:c'"),
    # too large: the message names the upper bound too, not only "> 0"
    (["admin", "safemode", "wait", "--timeout", "1e300"],
     "admin safemode: argument --timeout: invalid interval '1e300' (a number of seconds > 0 and < 1e9)"),
    ([], "the following arguments are required: COMMAND"),
])
def test_usage_errors_are_one_line(capsys, argv, words):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


def test_unrecognized_arguments_name_the_command(capsys):
    assert main(["chmod", "644", "/a", "/b"]) == 2
    assert capsys.readouterr().err == "dfs: chmod: unrecognized arguments: /b; see 'dfs chmod --help'\n"
    assert main(["admin", "report", "--bogus"]) == 2
    assert capsys.readouterr().err.startswith("dfs: admin report: unrecognized arguments: --bogus;")


def test_sizes_take_spec_units():
    assert [a.size(t) for t in ("65536", "64K", "64KiB", "1M", "1MiB", "2G", "1GiB", "7")] == \
        [65536, 65536, 65536, 1 << 20, 1 << 20, 2 << 30, 1 << 30, 7]
    for bad in ("12Q", "", "1.5M", "-1", "M"):
        with pytest.raises(argparse.ArgumentTypeError, match="invalid size"):
            a.size(bad)


def test_each_goes_on_past_failures_and_reports_each_once(capsys):
    done = []

    def fn(p):
        if p.startswith("/bad"):
            raise errors.DfsFileNotFoundError(path=p)
        if p == "/local":
            raise IsADirectoryError(21, "Is a directory", "/tmp/x")
        done.append(p)
    assert each(_args(), ["/a", "/bad1", "/b", "/local", "/bad2", "/c"], fn) == 1
    assert done == ["/a", "/b", "/c"]
    assert capsys.readouterr().err.splitlines() == [
        "dfs: ls: /bad1: No such file or directory",
        "dfs: ls: /tmp/x: Is a directory",
        "dfs: ls: /bad2: No such file or directory",
    ]
    assert each(_args(), ["/a"], fn) == 0


def test_each_stops_at_an_unreachable_namenode():
    seen = []

    def fn(p):
        seen.append(p)
        raise errors.NamenodeUnreachableError("cannot reach namenode 127.0.0.1:9")
    with pytest.raises(errors.NamenodeUnreachableError):
        each(_args(), ["/a", "/b", "/c"], fn)
    assert seen == ["/a"]   # not 3 x the 15 s deadline


PRINT_MANY = """
import sys
import dfs.cli.fs as fs
from dfs.cli.main import main

def ls(args):
    for i in range(3):
        print("line", i)   # buffered: it fails only when flushed
    return 0

fs.cmd_ls = ls   # the parser is built inside main(), after this
sys.exit(main(["ls", "/"]))
"""


def test_a_closed_stdout_exits_quietly_with_the_sigpipe_status():
    r, w = os.pipe()
    os.close(r)   # the reader is gone before anything is written (`dfs ls | true`)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    p = subprocess.run([sys.executable, "-c", PRINT_MANY], stdout=w, stderr=subprocess.PIPE, env=env, timeout=60)
    os.close(w)
    assert p.stderr == b""
    assert p.returncode == 141


def test_a_stdout_closed_from_the_start_is_one_line_not_a_traceback():
    # fd 1 closed by a shell, not by a preexec_fn: that runs Python in the forked child
    # of this process, where grpc (used by other tests here) restarts its poller, which
    # met the fds closed and aborted the child (SIGABRT, once in a CI run).
    p = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-c", PRINT_MANY],
                       stderr=subprocess.PIPE, timeout=60)
    assert (p.returncode, p.stderr) == (1, b"dfs: ls: stdout: Bad file descriptor\n")


def test_an_unexpected_exception_is_one_line_and_a_traceback_only_with_debug(monkeypatch, capsys):
    import dfs.cli.fs as fs

    def broken(args):
        raise KeyError("boom")
    monkeypatch.setattr(fs, "cmd_stat", broken)
    assert main(["stat", "/x"]) == 1
    assert capsys.readouterr().err == \
        "dfs: stat: internal error: KeyError: 'boom' (--debug shows the traceback)\n"
    with pytest.raises(KeyError):
        main(["--debug", "stat", "/x"])


def test_a_chmod_mode_starting_with_a_dash_is_an_operand():
    # `dfs chmod -w f` said "invalid mode: '/f'": argparse took -w for an option.
    from dfs.cli.args import mode_as_operand as m
    assert m(["chmod", "-w", "/f"]) == ["chmod", "--", "-w", "/f"]
    assert m(["--namenode", "h:1", "chmod", "-R", "-rwx", "/f"]) == \
        ["--namenode", "h:1", "chmod", "-R", "--", "-rwx", "/f"]
    assert m(["--debug", "chmod", "-w", "-R", "/f", "/g"]) == ["--debug", "chmod", "-R", "--", "-w", "/f", "/g"]
    assert m(["chmod", "-w", "--", "/f"]) == ["chmod", "--", "-w", "/f"]
    assert m(["chmod", "-6000", "/f"]) == ["chmod", "--", "-6000", "/f"]
    for same in (["chmod", "755", "/f"], ["chmod", "--", "-w", "/f"], ["chmod", "-R", "a-w", "/f"],
                 ["chmod", "-h"], ["put", "chmod", "-w"], ["ls", "-w"]):
        assert m(same) == same
