"""How `serve` (fuse/dfs_fuse/mount.py) reads the end of libfuse's loop, with a stand-in
for the binding: an error after an unmount is a clean end, any other one a failure.
Each case runs in its own process, since serve() blocks signals for its threads."""

from __future__ import annotations

import subprocess
import sys

import pytest

SERVE = r"""
import sys
import dfs_fuse._binding as binding
from dfs_fuse.mount import MountOptions, serve

mountpoint, init = sys.argv[1], sys.argv[2] == "init"

class Loop:    # what libfuse does: init once mounted, then its loop's end status
    def __init__(self, ops, mountpoint, **kwargs):
        if init:
            ops.init_with_config(None, None)
        raise RuntimeError(8)

binding.DfsFUSE = Loop
sys.exit(serve("127.0.0.1:9", mountpoint, MountOptions.parse({})))
"""


@pytest.mark.parametrize(
    "mounted, listed, code",
    [
        (True, False, 0),    # unmounted (lazily, say): whatever the loop said, it is over
        (False, False, 1),   # never mounted: a real failure
        (True, True, 1),     # still mounted: the loop failed under a live mount
    ],
)
def test_loop_end(tmp_path, mounted, listed, code):
    mnt = "/proc" if listed else str(tmp_path)
    r = subprocess.run(
        [sys.executable, "-c", SERVE, mnt, "init" if mounted else "none"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == code, r.stderr
    assert ("FUSE failed (8)" in r.stderr) == (code == 1), r.stderr
    assert "Traceback" not in r.stderr
