"""A write to a FileWriter aborted because its sending failed raises that failure, not
"write to closed file": fsspec's close() flushes what is left into the writer its failed
write aborted, and the ValueError hid the OSError (docs/fsspec.md: every I/O failure is
one). After close() or a plain abort(), a write is io's ValueError."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from dfs import errors
from dfs.client.writer import FileWriter


class _Client:
    def __init__(self):
        self.nn = SimpleNamespace(call=self._call)

    @staticmethod
    def _call(method, req, **kw):
        if method == "AbandonFile":
            return None
        assert method == "Create" and req.complete, method   # an empty file's close
        return SimpleNamespace(file_id=7, status="status")

    def _lease_released(self, writer):
        pass


@pytest.fixture
def writer():
    with ThreadPoolExecutor(1) as pool:
        yield FileWriter(_Client(), "/f", pool=pool)


def test_a_write_after_an_abort_that_a_send_failure_caused_raises_that_failure(writer):
    failure = errors.NoDatanodesError(errors.NO_DATANODE_LEFT, "/f")
    writer._error = failure                  # as the sender thread leaves it
    writer.abort()
    for _ in range(2):
        with pytest.raises(errors.NoDatanodesError) as e:
            writer.write(b"x")
        assert e.value is failure


def test_a_write_after_an_abort_without_failure_is_a_write_to_a_closed_file(writer):
    writer.abort()
    with pytest.raises(ValueError, match="write to closed file"):
        writer.write(b"x")


def test_a_write_after_close_is_a_write_to_a_closed_file(writer):
    assert writer.close() == "status"
    writer._error = errors.NoDatanodesError(errors.NO_DATANODE_LEFT, "/f")   # set meanwhile
    writer.abort()
    with pytest.raises(ValueError, match="write to closed file"):
        writer.write(b"x")
