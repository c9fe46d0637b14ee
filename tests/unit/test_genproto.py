"""The committed generated code in dfs/rpc/v1 matches proto/ (SPEC §1)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto" / "dfs" / "rpc" / "v1"
GEN_DIR = ROOT / "dfs" / "rpc" / "v1"


def test_every_proto_has_generated_modules():
    protos = sorted(PROTO_DIR.glob("*.proto"))
    assert protos, f"no .proto files under {PROTO_DIR}"
    for proto in protos:
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            gen = GEN_DIR / f"{proto.stem}{suffix}"
            assert gen.is_file(), f"{gen.relative_to(ROOT)} missing; run scripts/genproto"
    assert (GEN_DIR / "__init__.py").is_file()


def test_generated_code_is_current():
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "genproto"), "--check"],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
