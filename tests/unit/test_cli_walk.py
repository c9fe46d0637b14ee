"""The CLI's tree walk (ls -R, get, cp -r, du, setrep -R) without a cluster."""

from __future__ import annotations

import errno
from types import SimpleNamespace

import pytest

from dfs import errors
from dfs.cli.common import walk


class Tree:
    """A client whose listdir answers from a dict: path -> child names (dirs end in /)."""

    def __init__(self, tree: dict[str, list[str]], unreadable=()):
        self.tree, self.unreadable = tree, set(unreadable)

    def listdir(self, path):
        if path in self.unreadable:
            raise errors.DfsPermissionError(path=path)
        base = path.rstrip("/")
        return [SimpleNamespace(path=f"{base}/{n.rstrip('/')}", is_dir=n.endswith("/"))
                for n in self.tree[path]]


def test_depth_first_in_listing_order_past_unreadable_directories():
    t = Tree({"/": ["a/", "b", "c/"], "/a": ["x", "y/"], "/a/y": ["z"], "/c": []}, unreadable={"/c"})
    seen = []
    got = [st.path for st in walk(t, "/", on_error=lambda d, e: seen.append((d, e.errno)))]
    assert got == ["/a", "/a/x", "/a/y", "/a/y/z", "/b", "/c"]
    assert seen == [("/c", errno.EACCES)]
    with pytest.raises(errors.DfsPermissionError):
        list(walk(t, "/"))


def test_a_tree_deeper_than_the_recursion_limit():
    # ls -R / get / cp -r of a 1,000-level tree failed with RecursionError.
    depth = 5000
    tree = {"/": ["d/"]}
    path = "/d"
    for _ in range(depth - 1):
        tree[path] = ["d/"]
        path += "/d"
    tree[path] = ["f"]
    got = list(walk(Tree(tree), "/"))
    assert len(got) == depth + 1 and got[-1].path == path + "/f"
