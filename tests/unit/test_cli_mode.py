"""chmod's MODE argument, without a cluster: as GNU chmod applies it."""

from __future__ import annotations

import subprocess

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


# Each checked against GNU chmod 9.1 (umask 0) on a local file and directory.
@pytest.mark.parametrize("text, current, file_mode, dir_mode", [
    # = clears what it does not name: sticky always, set-ID bits on a file; a
    # directory keeps its set-ID bits unless the mode names them
    ("a=rx", 0o1777, 0o555, 0o555),
    ("a=r", 0o4755, 0o444, 0o4444),
    ("a=rx", 0o7777, 0o555, 0o6555),
    ("=rx", 0o7777, 0o555, 0o6555),
    ("u=rx", 0o7777, 0o3577, 0o7577),
    ("g=rx", 0o7777, 0o5757, 0o7757),
    ("o=rx", 0o7777, 0o6775, 0o6775),
    ("a=", 0o7777, 0o0, 0o6000),
    ("u=", 0o1777, 0o1077, 0o1077),
    ("go=", 0o755, 0o700, 0o700),
    # s and t act for the class that owns the bit
    ("u+s", 0o755, 0o4755, 0o4755),
    ("g+s", 0o755, 0o2755, 0o2755),
    ("+s", 0o755, 0o6755, 0o6755),
    ("a+s", 0o755, 0o6755, 0o6755),
    ("o+s", 0o755, 0o755, 0o755),
    ("u-s", 0o6755, 0o2755, 0o2755),
    ("g-s", 0o6755, 0o4755, 0o4755),
    ("a-s", 0o6755, 0o755, 0o755),
    ("+t", 0o755, 0o1755, 0o1755),
    ("o+t", 0o755, 0o1755, 0o1755),
    ("u+t", 0o755, 0o755, 0o755),
    ("u=rwxs", 0o755, 0o4755, 0o4755),
    ("g=s", 0o2777, 0o2707, 0o2707),
    # octal: up to 4 digits leaves a directory's set-ID bits it does not set
    ("755", 0o6755, 0o755, 0o6755),
    ("0755", 0o7777, 0o755, 0o6755),
    ("2755", 0o4777, 0o2755, 0o6755),
    ("00755", 0o7777, 0o755, 0o755),
    ("=755", 0o7777, 0o755, 0o755),
    ("-6000", 0o7777, 0o1777, 0o1777),
    ("+1000", 0o755, 0o1755, 0o1755),
    ("0", 0o7777, 0o0, 0o6000),
    # several actions in a clause, copies of a class, X
    ("u+r-w", 0o644, 0o444, 0o444),
    ("ug+-w", 0o640, 0o440, 0o440),
    ("u=rw+x", 0o640, 0o740, 0o740),
    ("g=u", 0o644, 0o664, 0o664),
    ("o+g", 0o640, 0o644, 0o644),
    ("u=g", 0o640, 0o440, 0o440),
    ("g=o", 0o640, 0o600, 0o600),
    ("u=g+x", 0o4640, 0o540, 0o4540),
    ("a-x+X", 0o755, 0o644, 0o755),
    ("a=X", 0o640, 0o0, 0o111),
    ("+", 0o7777, 0o7777, 0o7777),
    ("u+", 0o640, 0o640, 0o640),
    ("=", 0o7777, 0o0, 0o6000),
    ("uu+x", 0o640, 0o740, 0o740),
    ("ua+x", 0o640, 0o751, 0o751),
])
def test_modes_as_gnu_chmod(text, current, file_mode, dir_mode):
    assert (parse_mode(text, current, False), parse_mode(text, current, True)) == (file_mode, dir_mode)


BAD = ["8", "77777", "10000", "u+q", "z+x", "u", "", ",", "u+r,", ",u+r", "u+gw", "u=rg",
       "u=755", "=755+x", "755,u+x", "u+S", "a+T", "+ x", "0x1ff", "٧٥٥"]


@pytest.mark.parametrize("text", BAD)
def test_bad_modes(text):
    with pytest.raises(errors.InvalidArgumentError):
        parse_mode(text, 0)


GNU_MODES = ["755", "0644", "1777", "4711", "00755", "=755", "-6000", "+2000", "a=rx", "=rx",
             "u=rx", "g=", "o=rwx", "a=", "=", "u+s", "g+s", "o+s", "+s", "u-s", "g-s", "-s",
             "+t", "o+t", "u+t", "-t", "o=t", "a+X", "go=rX", "u=g", "g+u", "o=u-w", "a-x+X",
             "ug=rwxs,o=", "u+r-w+x", "g=o,o=g", "u=rwX,go=rX", "+", "a-rwx", "ug+t"]


def test_every_mode_on_every_start_as_the_local_gnu_chmod(tmp_path):
    # Debian's coreutils chmod is on every machine this runs on (CI included): no skip.
    assert "GNU coreutils" in subprocess.run(["chmod", "--version"], capture_output=True, text=True).stdout
    # umask 0: with no who letters GNU leaves the umask's bits alone; dfs means "a".
    # Each start is set with 5 digits, which clear a directory's set-ID bits too.
    starts = [0, 0o644, 0o755, 0o1000, 0o2750, 0o4711, 0o7777]
    script = ["umask 0", "cd \"$1\"", "mkdir d", "touch f"]
    for text in BAD + GNU_MODES:
        for start in starts:
            for node in ("f", "d"):
                script.append(f"chmod {start:05o} {node}; chmod -- '{text}' {node} 2>/dev/null"
                              f" && stat -c %a {node} || echo bad")
    out = subprocess.run(["sh", "-c", "\n".join(script), "sh", str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout.split()
    got = iter(out)
    for text in BAD + GNU_MODES:
        for start in starts:
            for is_dir in (False, True):
                want = next(got)
                try:
                    mine = format(parse_mode(text, start, is_dir), "o")
                except errors.InvalidArgumentError:
                    mine = "bad"
                assert mine == want, (text, oct(start), "dir" if is_dir else "file")


def test_mode_strings_show_setuid_setgid_and_sticky_as_ls_does():
    from dfs.cli.common import mode_string
    assert mode_string(True, 0o1777) == "drwxrwxrwt"
    assert mode_string(True, 0o1776) == "drwxrwxrwT"
    assert mode_string(False, 0o7777) == "-rwsrwsrwt"
    assert mode_string(False, 0o6644) == "-rwSr-Sr--"
    assert mode_string(False, 0o644) == "-rw-r--r--"
