"""fsspec's own abstract test suite (shipped in fsspec.tests.abstract) against a live cluster."""

from __future__ import annotations

import pytest
from fsspec.tests.abstract import (
    AbstractCopyTests,
    AbstractFixtures,
    AbstractGetTests,
    AbstractOpenTests,
    AbstractPipeTests,
    AbstractPutTests,
)

from dfs.client.filesystem import DFSFileSystem


class DFSFixtures(AbstractFixtures):
    @pytest.fixture
    def fs(self, shared_cluster):
        fs = DFSFileSystem(namenode=shared_cluster.namenode_address, skip_instance_cache=True)
        fs.makedirs("/abstract", exist_ok=True)
        return fs

    @pytest.fixture
    def fs_join(self):
        return lambda *parts: "/".join(parts)   # keeps a trailing "/" on the last part

    @pytest.fixture
    def fs_path(self):
        return "/abstract"


class TestDFSCopy(AbstractCopyTests, DFSFixtures):
    pass


class TestDFSGet(AbstractGetTests, DFSFixtures):
    pass


class TestDFSPut(AbstractPutTests, DFSFixtures):
    pass


class TestDFSOpen(AbstractOpenTests, DFSFixtures):
    pass


class TestDFSPipe(AbstractPipeTests, DFSFixtures):
    pass
