"""Guard for the fuse/ layout (fuse/README.md, AESTHETICS §3.7).

fuse/ must stay a plain folder: a `fuse/__init__.py` would make it a regular
package that shadows the FUSE binding's top-level `fuse` module whenever the
repository root is on sys.path.
"""

import importlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_fuse_folder_is_not_a_package():
    assert (ROOT / "fuse" / "dfs_fuse" / "__init__.py").is_file()
    assert not (ROOT / "fuse" / "__init__.py").exists(), "fuse/__init__.py would shadow `fuse`"


def test_import_fuse_from_repo_root_is_not_shadowed():
    # `python -c` puts the cwd first on sys.path: the worst case.
    result = subprocess.run(
        [sys.executable, "-c", "import fuse, sys; print(getattr(fuse, '__file__', None))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        # No top-level `fuse` anywhere is fine; only shadowing is not.
        assert "ModuleNotFoundError" in result.stderr, result.stderr
        return
    origin = result.stdout.strip()
    if origin != "None":
        assert not Path(origin).resolve().is_relative_to(ROOT / "fuse"), (
            f"`import fuse` resolved to {origin}, inside the repository"
        )


def test_dfs_fuse_importable():
    # Installed through pyproject's package-dir mapping (fuse/dfs_fuse), not via sys.path.
    mod = importlib.import_module("dfs_fuse")
    assert mod.__doc__ and "fuse/README.md" in mod.__doc__
