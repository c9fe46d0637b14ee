"""A passthrough FUSE file system whose reads of chosen files fail with EIO, for tests:
a disk that cannot read a replica back, with the kernel's own error path (open and
stat work, read(2) and sendfile(2) fail), where no device-mapper error target exists.

    python -m dfs.testing.eiofs BACKING_DIR MOUNTPOINT SUBSTRING

mounts BACKING_DIR at MOUNTPOINT in the foreground; every read of a file whose name
contains SUBSTRING fails with EIO. Unmount with `fusermount3 -u MOUNTPOINT`.
"""

from __future__ import annotations

import errno
import os
import sys

from dfs_fuse._binding import FUSE, FuseOSError, Operations  # the one module that imports mfusepy


class EIOFS(Operations):
    use_ns = True

    def __init__(self, root: str, bad: str):
        self.root, self.bad = root, bad

    def _p(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def _os(self, fn, *args):
        try:
            return fn(*args)
        except OSError as e:
            raise FuseOSError(e.errno or errno.EIO) from None

    def getattr(self, path, fh=None):
        st = self._os(os.lstat, self._p(path))
        return {k: getattr(st, k) for k in ("st_mode", "st_nlink", "st_size", "st_uid", "st_gid",
                                             "st_atime", "st_mtime", "st_ctime")}

    def readdir(self, path, fh):
        return [".", "..", *self._os(os.listdir, self._p(path))]

    def open(self, path, flags):
        return self._os(os.open, self._p(path), flags & ~os.O_CREAT)

    def read(self, path, size, offset, fh):
        if self.bad in os.path.basename(path):
            raise FuseOSError(errno.EIO)
        return self._os(os.pread, fh, size, offset)

    def release(self, path, fh):
        return self._os(os.close, fh)

    def unlink(self, path):
        return self._os(os.unlink, self._p(path))

    def rename(self, old, new):
        return self._os(os.rename, self._p(old), self._p(new))

    def statfs(self, path):
        st = self._os(os.statvfs, self._p(path))
        return {k: getattr(st, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                             "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}


def main() -> None:
    root, mountpoint, bad = sys.argv[1:4]
    FUSE(EIOFS(root, bad), mountpoint, foreground=True, allow_other=False)


if __name__ == "__main__":
    main()
