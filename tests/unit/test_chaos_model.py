"""dfs.testing.chaos.Model: the outcomes a path may have after acknowledged and failed operations."""

from __future__ import annotations

from dfs.testing.chaos import Model


def test_acknowledged_operations_are_certain():
    m = Model()
    m.write("/a", "A", ok=True)
    assert m.definite("/a") == "A" and m.check("/a", "A") is None
    assert m.check("/a", None) and m.check("/a", "B")
    m.rename("/a", "/b", ok=True)
    assert m.definite("/a") is None and m.definite("/b") == "A"
    m.delete("/b", ok=True)
    assert m.check("/b", None) is None and m.check("/b", "A")
    assert m.live_paths() == [] and m.acked_writes == 1 and m.failed_ops == 0


def test_failed_operations_may_or_may_not_have_happened():
    m = Model()
    m.write("/a", "A", ok=True)
    m.write("/a", "B", ok=False)                       # overwrite: old or new, never absent
    assert m.possible("/a") == {"A", "B"} and m.check("/a", None)
    m.rename("/a", "/c", ok=False)
    assert m.possible("/a") == {"A", "B", None} and m.possible("/c") == {None, "A", "B"}
    m.delete("/c", ok=False)
    assert m.possible("/c") == {None, "A", "B"}
    m.write("/n", "N", ok=False)                       # a create that failed: absent or whole
    assert m.possible("/n") == {None, "N"} and m.check("/n", "X")
    assert sorted(m.live_paths()) == ["/a", "/c", "/n"] and m.failed_ops == 4


def test_history_holds_every_content_ever_possible():
    m = Model()
    m.intend("/a", {"A"})                              # before the write: readers may see it at once
    m.write("/a", "A", ok=True)
    m.write("/a", "B", ok=True)
    m.rename("/a", "/b", ok=True)
    assert m.ever() == {"/a": {"A", "B"}, "/b": {"B"}}
