"""The spare-file stock keeper runs at normal priority: as SCHED_IDLE it held the
GIL and the spare directory's lock while starved, freezing the whole datanode."""

import os
import threading
import time

from dfs.datanode.filepool import FilePool


def test_stock_keeper_thread_is_not_idle_class(tmp_path):
    before = set(threading.enumerate())
    pool = FilePool(str(tmp_path / "spare"), stock=8)
    try:
        deadline = time.monotonic() + 10
        while len(pool) < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        [keeper] = [t for t in set(threading.enumerate()) - before if t.name == "spare-keeper"]
        assert len(pool) == 8
        assert os.sched_getscheduler(keeper.native_id) == os.SCHED_OTHER
    finally:
        pool.close()
