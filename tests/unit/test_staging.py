"""The FUSE mount's staged pages (fuse/dfs_fuse/staging.py): pure, no mount."""

import os

from dfs_fuse.staging import PAGE, PageBudget, Pages


def test_memory_pages_hold_only_what_was_written_and_read_back_zeros(tmp_path):
    budget = PageBudget(4 * PAGE, str(tmp_path))
    p = Pages(budget)
    p.new(0, b"")
    p.write(0, 0, b"abc")
    assert len(p.mem[0]) == 3                      # no zero-filled 1 MiB buffer
    assert p.read(0, 0, 3) == b"abc"
    assert p.read(0, 0, 8) == b"abc" + bytes(5)    # past the written end: zeros
    p.write(0, 10, b"xy")                          # a hole is zero-filled
    assert p.read(0, 0, 12) == b"abc" + bytes(7) + b"xy"
    assert len(p.read(0)) == PAGE and p.read(0)[:3] == b"abc"
    p.zero_from(0, 2)
    assert p.read(0, 0, 12) == b"ab" + bytes(10)
    page = p.take(0)
    assert len(page) == PAGE and page[:2] == b"ab" and not any(page[2:])
    assert budget.used == 0


def test_pages_spill_to_disk_past_the_budget(tmp_path):
    budget = PageBudget(PAGE, str(tmp_path))
    p = Pages(budget)
    p.new(0, b"in memory")
    p.new(1, b"on disk")            # over budget: spill file
    assert 0 in p.mem and 1 in p.disk
    p.write(1, 100, b"!")
    assert p.read(1, 0, 7) == b"on disk" and p.read(1, 100, 1) == b"!"
    assert p.take(1)[:7] == b"on disk"
    p.clear()
    assert budget.used == 0 and len(p) == 0


def test_a_spill_directory_remade_by_another_user_is_not_used(tmp_path):
    # A tmp cleaner took the mount's spill directory and another user made one at its
    # name: a spill file there could be renamed away by its owner before our unlink.
    import pytest

    from dfs import errors
    spill = tmp_path / "spill"
    spill.mkdir(mode=0o700)
    os.chown(spill, 65534, 65534)
    p = Pages(PageBudget(0, str(spill)))
    with pytest.raises(errors.DfsError, match="owned by another user"):
        p.new(0, b"data")
    assert os.listdir(spill) == []
