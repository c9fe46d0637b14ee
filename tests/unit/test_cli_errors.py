"""The one stderr line of a failure (SPEC §3) stays one line whatever a name holds."""

from __future__ import annotations

from dfs import errors
from dfs.cli.common import error_line, printable


def test_control_characters_in_a_name_are_escaped():
    line = error_line("cat", errors.DfsFileNotFoundError(path="/odd/no\nsuch\x1b[31m\r\u2028"))
    assert line == "dfs: cat: /odd/no\\nsuch\\x1b[31m\\r\\u2028: No such file or directory"
    assert "\n" not in line and line.isprintable()


def test_printable_text_is_kept_as_it_is():
    text = "dfs: ls: /données/a b/#?%*[]: Permission denied"
    assert printable(text) is text
