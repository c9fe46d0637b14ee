"""Text shown to people: names from the namespace made safe to print. Pure.

A dfs name may hold any character but / and NUL, as a local one may: a newline
split one error or log line in two, and ESC drove the reader's terminal. The
CLI's error lines and terminal output and the FUSE mount's log escape them here.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with control characters escaped (\\n, \\x1b); as it is when it has none."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)
