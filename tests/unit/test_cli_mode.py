"""chmod's MODE argument, without a cluster."""

from __future__ import annotations

import pytest

from dfs import errors
from dfs.cli.fs import parse_mode


@pytest.mark.parametrize("text, current, is_dir, want", [
    ("755", 0o600, False, 0o755),
    ("1777", 0o755, True, 0o1777),
    ("u+x,go-w", 0o666, False, 0o744),
    ("a=r", 0o777, False, 0o444),
    ("+t", 0o777, True, 0o1777),
    ("a+X", 0o644, False, 0o644),     # a file nobody may execute stays so
    ("a+X", 0o744, False, 0o755),     # ... one its owner may execute: all may
    ("a+X", 0o700, True, 0o711),      # a directory: searchable
    ("go=rX", 0o750, True, 0o755),
])
def test_modes(text, current, is_dir, want):
    assert parse_mode(text, current, is_dir) == want


@pytest.mark.parametrize("text", ["8", "77777", "u+q", "z+x", "u", ""])
def test_bad_modes(text):
    with pytest.raises(errors.InvalidArgumentError):
        parse_mode(text, 0)


def test_mode_strings_show_setuid_setgid_and_sticky_as_ls_does():
    from dfs.cli.common import mode_string
    assert mode_string(True, 0o1777) == "drwxrwxrwt"
    assert mode_string(True, 0o1776) == "drwxrwxrwT"
    assert mode_string(False, 0o7777) == "-rwsrwsrwt"
    assert mode_string(False, 0o6644) == "-rwSr-Sr--"
    assert mode_string(False, 0o644) == "-rw-r--r--"
