"""The FUSE mount's late removal of libfuse's hidden files (fuse/dfs_fuse/hidden.py): no mount."""

import threading
import time

from dfs_fuse.hidden import HiddenReaper, is_hidden

H1, H2, H3 = (f"{d}/.fuse_hidden0000000a0000000{i}" for i, d in ((1, "/d"), (2, "/d/e"), (3, "/de")))


def _reaper(open_paths=()):
    removed, done = [], threading.Event()
    opened = set(open_paths)

    def remove(p, inode_id):
        removed.append((p, inode_id))
        done.set()
    return HiddenReaper(remove, lambda p: p in opened, grace=0.2), removed, done, opened


def test_only_libfuses_names_are_hidden_names():
    assert is_hidden(H1) and not is_hidden("/d/file")
    for user in (".fuse_hiddenmine", ".fuse_hidden0000000a0000000", ".fuse_hidden0000000A00000001",
                 ".fuse_hidden0000000a00000001x", "x.fuse_hidden0000000a00000001"):
        assert not is_hidden("/d/" + user), user


def test_removed_after_the_grace_by_its_inode_and_listed_as_pending_until_then():
    r, removed, done, _ = _reaper()
    r.made(H1, 7)
    t = time.monotonic()
    assert r.unlinked(H1, open_here=False)
    assert set(r.waiting()) == {H1} and removed == []
    assert done.wait(5)
    assert time.monotonic() - t >= 0.2
    assert removed == [(H1, 7)] and set(r.waiting()) == set()


def test_an_unlink_of_a_name_libfuse_did_not_hide_here_is_the_callers_to_do_now():
    """A user's own file of that name (a copied tree's leftover, made again after an rm)
    was removed two seconds later, and left out of listings meanwhile."""
    r, removed, _, _ = _reaper()
    assert not r.unlinked(H1, open_here=False)
    r.made(H1, 7)
    assert r.unlinked(H1, open_here=False)
    r.now()
    assert not r.unlinked(H1, open_here=False)          # asked once: the next is a user's
    r.made(H2, 8)
    assert not r.unlinked(H2, open_here=True)           # open here again: removed now
    r.made(H3, 9)
    r.replaced(H3)                                      # a new file made at the name here
    assert not r.unlinked(H3, open_here=False)
    assert removed == [(H1, 7)] and set(r.waiting()) == set()


def test_a_rename_carries_what_libfuse_hid_along():
    r, _, _, _ = _reaper()
    r.made(H2, 8)
    r.made(H1, 7)
    r.moved("/d/e", "/x")
    assert r.unlinked("/x/" + H2.rpartition("/")[2], open_here=False)
    r.moved("/d/other", H1)                             # another file renamed onto the name
    assert not r.unlinked(H1, open_here=False)


def test_not_removed_while_open():
    r, removed, done, opened = _reaper([H1])
    r.made(H1, 7)
    r.unlinked(H1, open_here=False)
    time.sleep(0.7)
    assert removed == [] and set(r.waiting()) == {H1}
    opened.clear()                       # closed: removed at the next due time
    assert done.wait(5)
    assert removed == [(H1, 7)]


def test_now_removes_what_waits_at_a_name_or_under_a_tree_at_once():
    r, removed, _, _ = _reaper()
    for i, p in enumerate((H1, H2, H3)):
        r.made(p, i)
        r.unlinked(p, open_here=False)
    r.now(H1)
    assert removed == [(H1, 0)]
    r.now("/d")
    assert sorted(removed) == [(H1, 0), (H2, 1)]
    assert set(r.waiting()) == {H3}
    r.now()
    assert len(removed) == 3 and set(r.waiting()) == set()


def test_a_hidden_file_gone_before_its_late_removal_leaves_no_cached_status():
    """The late removal finds the file gone (or another file at the name): what the
    mount's cache holds of that name is forgotten, as after a removal that worked;
    it was kept (a stat, and the kernel, saw the old file) until the cache expired."""
    from dfs import errors
    from dfs.model import FileStatus
    from dfs_fuse.files import MountContext
    from dfs_fuse.meta import MetaCache
    from dfs_fuse.operations import DfsOperations

    class Client:
        stats = 0

        def delete(self, path, recursive=False, inode_id=0):
            raise errors.DfsFileNotFoundError(path=path)

        def stat(self, path):
            self.stats += 1
            return _status(path, 8)

    def _status(path, inode_id):
        return FileStatus(path=path, type="file", size=3, replication=1, block_size=1 << 20, mode=0o644,
                          owner="u", group="g", mtime=1.0, inode_id=inode_id)

    client = Client()
    meta = MetaCache(client, ttl=60.0)
    ops = DfsOperations(MountContext(client=client, meta=meta, cache=None, budget=None, ids=None))
    meta.put(H1, _status(H1, 7))
    ops._remove_hidden(H1, 7)
    assert meta.get(H1).inode_id == 8 and client.stats == 1
