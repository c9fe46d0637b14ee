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


LOGS = r"""
import logging, sys
import dfs_fuse._binding as binding
from dfs_fuse.mount import MountOptions, serve

logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")   # as python -m dfs_fuse does

class Loop:    # a file name of another user's choosing, logged while serving
    def __init__(self, ops, mountpoint, **kwargs):
        ops.init_with_config(None, None)
        logging.getLogger("dfs_fuse.operations").warning("%s: cannot give it", "/x\n* * * * * root echo pwned")
        raise RuntimeError(0)

binding.DfsFUSE = Loop
sys.exit(serve("127.0.0.1:9", sys.argv[1], MountOptions.parse({})))
"""


def test_a_name_with_a_newline_is_one_log_line(tmp_path):
    """`touch $'x\\n* * * * * root echo pwned'` on an allow_other mount put a line that
    looked like a crontab's in the mount's log."""
    r = subprocess.run([sys.executable, "-c", LOGS, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r"WARNING dfs_fuse.operations: /x\n* * * * * root echo pwned: cannot give it" + "\n" in r.stderr
    assert not any(ln.startswith("* * *") for ln in r.stderr.splitlines()), r.stderr
