"""The one stderr line of a failure (SPEC §3) stays one line whatever a name holds."""

from __future__ import annotations

import errno
import io

import pytest

from dfs import errors
from dfs.cli.common import (
    STOPS_ALL,
    CheckedStdout,
    ClosedStdout,
    StdoutError,
    error_line,
    names_shown_on,
    printable,
)


def test_control_characters_in_a_name_are_escaped():
    line = error_line("cat", errors.DfsFileNotFoundError(path="/odd/no\nsuch\x1b[31m\r\u2028"))
    assert line == "dfs: cat: /odd/no\\nsuch\\x1b[31m\\r\\u2028: No such file or directory"
    assert "\n" not in line and line.isprintable()


def test_printable_text_is_kept_as_it_is():
    text = "dfs: ls: /données/a b/#?%*[]: Permission denied"
    assert printable(text) is text


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_names_are_escaped_for_a_terminal_only():
    line = "-rw-r--r--   3 bob bob  1 2026-01-01 00:00 /red\x1b[31m\nx"
    assert names_shown_on(_Terminal())(line) == "-rw-r--r--   3 bob bob  1 2026-01-01 00:00 /red\\x1b[31m\\nx"
    for not_a_terminal in (io.StringIO(), CheckedStdout(io.StringIO()), ClosedStdout()):
        assert names_shown_on(not_a_terminal)(line) is line   # a pipe or file: what scripts read back
    assert names_shown_on(CheckedStdout(_Terminal()))(line).isprintable()


class _Failing(io.RawIOBase):
    def __init__(self, err: int):
        self.err = err

    def writable(self):
        return True

    def write(self, data):
        raise OSError(self.err, "No space left on device" if self.err == errno.ENOSPC else "Broken pipe")


def test_a_failed_write_to_stdout_names_stdout_and_stops_the_command():
    out = CheckedStdout(io.TextIOWrapper(io.BufferedWriter(_Failing(errno.ENOSPC), 16)))
    for write in (lambda: print("x" * 100_000, file=out), lambda: out.buffer.write(b"y" * 100_000),
                  lambda: (out.write("z"), out.flush())):
        with pytest.raises(StdoutError) as e:
            write()
        assert error_line("ls", e.value) == "dfs: ls: stdout: No space left on device"
        assert isinstance(e.value, STOPS_ALL)   # the next path would fail the same way


def test_a_reader_gone_away_stays_a_broken_pipe():
    # main.py's quiet exit 141, as `cat` killed by SIGPIPE
    out = CheckedStdout(io.BufferedWriter(_Failing(errno.EPIPE), 16))
    with pytest.raises(BrokenPipeError):
        out.write(b"y" * 64)


@pytest.mark.parametrize("argv", [["--help"], ["ls", "--help"], ["admin", "report", "--help"]])
def test_help_to_a_full_output_fails_naming_stdout(argv):
    """argparse drops a failed write of its help: `dfs --help >/dev/full` exited 0."""
    import subprocess
    import sys
    with open("/dev/full", "wb") as full:
        r = subprocess.run([sys.executable, "-m", "dfs", *argv], stdout=full, stderr=subprocess.PIPE, timeout=60)
    name = " ".join(argv[:-1])
    where = f"dfs: {name}: " if name else "dfs: "
    assert (r.returncode, r.stderr) == (1, f"{where}stdout: No space left on device\n".encode())
    ok = subprocess.run([sys.executable, "-m", "dfs", *argv], capture_output=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith(b"usage: dfs") and ok.stderr == b""
    # fd 1 closed (`dfs --help >&-`): Python has no sys.stdout; not a traceback
    # (closed by a shell: a preexec_fn runs Python in a fork of this grpc-using process)
    closed = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "dfs", *argv],
                            stderr=subprocess.PIPE, timeout=60)
    assert (closed.returncode, closed.stderr) == (1, f"{where}stdout: Bad file descriptor\n".encode())
