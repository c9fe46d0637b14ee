"""The FUSE mount's late removal of libfuse's hidden files (fuse/dfs_fuse/hidden.py): no mount."""

import threading
import time

from dfs_fuse.hidden import HiddenReaper, is_hidden


def _reaper(open_paths=()):
    removed, done = [], threading.Event()
    opened = set(open_paths)

    def remove(p):
        removed.append(p)
        done.set()
    return HiddenReaper(remove, lambda p: p in opened, grace=0.2), removed, done, opened


def test_removed_after_the_grace_and_listed_as_pending_until_then():
    r, removed, done, _ = _reaper()
    assert is_hidden("/d/.fuse_hidden0000000a00000001") and not is_hidden("/d/file")
    t = time.monotonic()
    r.later("/d/.fuse_hidden1")
    assert r.pending() == {"/d/.fuse_hidden1"} and removed == []
    assert done.wait(5)
    assert time.monotonic() - t >= 0.2
    assert removed == ["/d/.fuse_hidden1"] and r.pending() == set()


def test_not_removed_while_open():
    r, removed, done, opened = _reaper(["/d/.fuse_hidden1"])
    r.later("/d/.fuse_hidden1")
    time.sleep(0.7)
    assert removed == [] and r.pending() == {"/d/.fuse_hidden1"}
    opened.clear()                       # closed: removed at the next due time
    assert done.wait(5)
    assert removed == ["/d/.fuse_hidden1"]


def test_now_removes_what_waits_under_a_tree_at_once():
    r, removed, _, _ = _reaper()
    for p in ("/a/.fuse_hidden1", "/a/b/.fuse_hidden2", "/ab/.fuse_hidden3"):
        r.later(p)
    r.now("/a")
    assert sorted(removed) == ["/a/.fuse_hidden1", "/a/b/.fuse_hidden2"]
    assert r.pending() == {"/ab/.fuse_hidden3"}
    r.now()
    assert len(removed) == 3 and r.pending() == set()
