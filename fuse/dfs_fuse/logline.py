"""One log record, one line: control characters in the mount's log messages escaped.

The mount logs file names, and with allow_other anyone can choose them: a file
named ``x\\n* * * * * root echo pwned`` put a line of the user's choosing in the
log (one that looks like a crontab's), and an ESC reached the terminal of whoever
read it (or of a foreground mount's stderr). Escaping here, on the handlers, covers
every message, ours, the client's and the binding's, without each call site
remembering to.
"""

from __future__ import annotations

import logging

from dfs.text import printable


class EscapeControls(logging.Filter):
    """Replaces a record's message by its text with control characters escaped (\\n,
    \\x1b). A traceback keeps its line breaks; other control characters in it are
    escaped too."""

    _plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = printable(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = "\n".join(printable(ln) for ln in record.exc_text.split("\n"))
        return True


def escape_logs() -> None:
    """Escape what every handler of the root logger writes (once per handler)."""
    for h in logging.getLogger().handlers:
        if not any(isinstance(f, EscapeControls) for f in h.filters):
            h.addFilter(EscapeControls())
