"""The one module that imports the FUSE binding (mfusepy); everything else imports from here.

mfusepy (the maintained fork of fusepy, same API) loads libfuse2 when both
libfuse2 and libfuse3 are installed. libfuse3 is what we want: the kernel then
sends 1 MiB writes instead of 128 KiB, and big_writes/max_write stop being
options that break mounts (ECOSYSTEM.md 4.2-4.3). So unless the user chose a
library with FUSE_LIBRARY_PATH, point it at libfuse3 before the import.

``DfsFUSE`` passes rename's flags (RENAME_NOREPLACE, RENAME_EXCHANGE) on to the
operations object: mfusepy's own libfuse3 wrapper drops them, which would turn
``renameat2(RENAME_NOREPLACE)`` into a silent overwrite.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

if not os.environ.get("FUSE_LIBRARY_PATH") and not os.environ.get("FUSE_LIBRARY_NAME"):
    _lib3 = ctypes.util.find_library("fuse3")
    if _lib3:
        os.environ["FUSE_LIBRARY_PATH"] = _lib3

try:
    from mfusepy import (
        FUSE,
        FuseOSError,
        Operations,
        fuse_get_context,
        fuse_version_major,
        fuse_version_minor,
    )
except ImportError as e:  # the package itself is missing
    raise ImportError(
        f"the FUSE binding mfusepy is not installed ({e}); pip install -e '.[fuse]' in dfs's checkout"
    ) from None
except OSError as e:  # mfusepy found no libfuse
    raise ImportError(
        f"libfuse is not available ({e}); install fuse3 (apt-get install fuse3)"
    ) from None

__all__ = [
    "DfsFUSE",
    "FuseOSError",
    "Operations",
    "fuse_get_context",
    "fuse_version_major",
    "fuse_version_minor",
    "FUSE_CAP_HANDLE_KILLPRIV",
]

#: libfuse3's fuse_common.h: the file system clears SUID/SGID itself on write,
#: chown and truncate. libfuse3 asks for it by default; we leave it to the kernel.
FUSE_CAP_HANDLE_KILLPRIV = 1 << 20


_thread = threading.local()


class DfsFUSE(FUSE):
    """mfusepy's FUSE, with rename flags passed through, and a Python thread state
    kept per libfuse worker thread.

    libfuse's threads are foreign to Python: ctypes builds a thread state at the
    start of every callback and frees it at the end (an allocation, a 16 KiB
    mmap/munmap and the GIL dance each time). Taking one extra reference on the
    first callback of a thread keeps its state alive for the next ones.
    """

    def _wrapper(self, func, *args, **kwargs):
        if not getattr(_thread, "held", False):
            ctypes.pythonapi.PyGILState_Ensure()
            _thread.held = True
        return super()._wrapper(func, *args, **kwargs)

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        return self.operations.rename(
            old.decode(self.encoding, self.errors), new.decode(self.encoding, self.errors), flags
        )
