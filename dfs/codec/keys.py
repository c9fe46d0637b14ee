"""Data keys and their wrapping under the namenode's master key. Pure: no I/O.

Every file gets a fresh 256-bit data key at create. The namespace stores it
wrapped (AES-256-GCM under the master key, AAD = file id), so a copy of the
metadata database alone reveals nothing; clients receive the unwrapped key
with the file's block list. Datanodes never see either key.
"""

from __future__ import annotations

import functools
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def new_key() -> bytes:
    return os.urandom(32)


@functools.lru_cache(maxsize=4)
def _aead(master: bytes) -> AESGCM:
    return AESGCM(master)   # one per master key: building it costs more than wrapping a key


def wrap(master: bytes, key: bytes, file_id: int) -> bytes:
    nonce = os.urandom(12)
    return nonce + _aead(master).encrypt(nonce, key, struct.pack(">Q", file_id))


def unwrap(master: bytes, wrapped: bytes, file_id: int) -> bytes:
    return _aead(master).decrypt(wrapped[:12], wrapped[12:], struct.pack(">Q", file_id))


def opens(master: bytes, wrapped: bytes, file_id: int) -> bool:
    """Whether ``wrapped`` (a file's stored key) was wrapped under ``master``."""
    try:
        unwrap(master, wrapped, file_id)
        return True
    except (InvalidTag, ValueError):
        return False
