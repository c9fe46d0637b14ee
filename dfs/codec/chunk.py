"""The chunk codec: compress, then encrypt, then checksum. Pure: no I/O.

A block is a sequence of chunks of ``chunk_size`` plaintext bytes (the last
may be shorter). Each chunk becomes one *stored record*:

    offset  size  field
    0       1     flags      bit 0: payload is zstd-compressed (else raw)
    1       12    nonce      fresh random 96-bit AES-GCM nonce
    13      n+16  sealed     AES-256-GCM(key, nonce, payload, aad) incl. 16-byte tag

    aad = b"dfs1" | flags (u8) | block_id (u64 BE) | chunk_index (u32 BE) | plain_length (u32 BE)

The record's xxh3_64 checksum is kept beside it (datanode meta file, wire
ChunkMeta), so a datanode can verify a record without any key. Binding the
block id, chunk index and length into the AAD means a record moved to another
block or position, or a lying length, fails authentication instead of
decoding to wrong bytes. Compression is tried on a 64 KiB sample first, so
incompressible data costs one small attempt, not a full zstd pass.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import threading
import weakref
from dataclasses import dataclass

import xxhash
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dfs.errors import ChecksumError, DecryptionError

FLAG_ZSTD = 0x01
HEADER = 13          # flags + nonce
TAG = 16
OVERHEAD = HEADER + TAG
_SAMPLE = 64 * 1024
_AAD = struct.Struct(">4sBQII")


def checksum_of(*parts) -> int:
    """xxh3_64 of the concatenation of ``parts`` (a stored record)."""
    h = xxhash.xxh3_64()
    for p in parts:
        h.update(p)
    return h.intdigest()


@dataclass(frozen=True)
class EncodedChunk:
    parts: tuple            # buffers whose concatenation is the stored record
    stored_length: int
    plain_length: int
    checksum: int


class ChunkCodec:
    """Encodes and decodes the chunks of one file (one data key).

    Thread-safe: zstd contexts are per thread, because sharing one between
    threads crashes the interpreter (see BASELINES.md).
    """

    def __init__(self, key: bytes, *, level: int = 1):
        if len(key) != 32:
            raise ValueError("data key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)
        self._level = level
        self._local = threading.local()
        # The last chunk compressed well: skip the next one's trial on a sample (a file's
        # chunks are mostly alike; a wrong guess costs one chunk's compression). A hint
        # shared by the encoding threads: a racy read only chooses between two valid paths.
        self._packing = False

    def _zc(self) -> zstandard.ZstdCompressor:
        zc = getattr(self._local, "zc", None)
        if zc is None:
            zc = self._local.zc = zstandard.ZstdCompressor(level=self._level)
        return zc

    def _zd(self) -> zstandard.ZstdDecompressor:
        zd = getattr(self._local, "zd", None)
        if zd is None:
            zd = self._local.zd = zstandard.ZstdDecompressor()
        return zd

    def _compress(self, plain) -> tuple[int, object]:
        if len(plain) >= 512:
            zc = self._zc()
            if len(plain) > 2 * _SAMPLE and not self._packing:
                sample = memoryview(plain)[:_SAMPLE]
                if len(zc.compress(sample)) > 0.9 * _SAMPLE:
                    return 0, plain
            packed = zc.compress(plain)
            self._packing = len(packed) < len(plain) * 0.97
            if self._packing:
                return FLAG_ZSTD, packed
        return 0, plain

    def encode(self, plain, block_id: int, index: int) -> EncodedChunk:
        flags, payload = self._compress(plain)
        nonce = os.urandom(12)
        aad = _AAD.pack(b"dfs1", flags, block_id, index, len(plain))
        sealed = self._aead.encrypt(nonce, payload, aad)
        head = bytes((flags,)) + nonce
        return EncodedChunk((head, sealed), HEADER + len(sealed), len(plain),
                            checksum_of(head, sealed))

    def decode(self, record, block_id: int, index: int, plain_length: int,
               checksum: int | None = None) -> bytes:
        """Verify and decode one stored record. Raises ChecksumError or DecryptionError."""
        mv = memoryview(record)
        if checksum is not None and checksum_of(mv) != checksum:
            raise ChecksumError(f"chunk {index} of block {block_id}: checksum mismatch")
        if len(mv) < OVERHEAD:
            raise DecryptionError(f"chunk {index} of block {block_id}: truncated record")
        flags = mv[0]
        aad = _AAD.pack(b"dfs1", flags, block_id, index, plain_length)
        try:
            payload = self._aead.decrypt(mv[1:HEADER], mv[HEADER:], aad)
        except InvalidTag:
            raise DecryptionError(f"chunk {index} of block {block_id}: authentication failed") from None
        if flags & FLAG_ZSTD:
            try:
                payload = self._zd().decompress(payload, max_output_size=plain_length)
            except zstandard.ZstdError as e:
                raise DecryptionError(f"chunk {index} of block {block_id}: {e}") from None
        if len(payload) != plain_length:
            raise DecryptionError(f"chunk {index} of block {block_id}: wrong length")
        return payload

    def decode_into(self, record, block_id: int, index: int, plain_length: int,
                    checksum: int | None, out) -> int:
        """``decode`` writing the plaintext into ``out[:plain_length]`` (a writable
        buffer, e.g. a slice of a page-aligned mmap for O_DIRECT) instead of a new
        bytes object; returns ``plain_length``. Raw chunks are decrypted straight
        into ``out``; zstd chunks are decrypted into a per-thread scratch buffer,
        then decompressed into ``out`` (by the system's libzstd; without it,
        python-zstandard's output is copied). Raises as ``decode`` does; on an
        error the first ``plain_length`` bytes of ``out`` are zeroed, so no
        unauthenticated plaintext is left in it."""
        mv = memoryview(record)
        if checksum is not None and checksum_of(mv) != checksum:
            raise ChecksumError(f"chunk {index} of block {block_id}: checksum mismatch")
        if len(mv) < OVERHEAD:
            raise DecryptionError(f"chunk {index} of block {block_id}: truncated record")
        dst = memoryview(out).cast("B")
        if len(dst) < plain_length:
            raise ValueError(f"output buffer of {len(dst)} bytes is smaller "
                             f"than the chunk ({plain_length})")
        dst = dst[:plain_length]
        flags = mv[0]
        aad = _AAD.pack(b"dfs1", flags, block_id, index, plain_length)
        payload_length = len(mv) - OVERHEAD
        try:
            if flags & FLAG_ZSTD:
                scratch = self._scratch(payload_length)
                self._aead.decrypt_into(mv[1:HEADER], mv[HEADER:], aad, scratch)
                into = _zstd_into()
                if into is not None:
                    got, err = into(self._local, scratch, dst)
                else:
                    try:
                        plain = self._zd().decompress(scratch, max_output_size=plain_length)
                        got, err = len(plain), ""
                    except zstandard.ZstdError as e:
                        got, err = 0, str(e)
                    if got == plain_length:
                        dst[:] = plain
                if err:
                    raise DecryptionError(f"chunk {index} of block {block_id}: {err}")
                if got != plain_length:
                    raise DecryptionError(f"chunk {index} of block {block_id}: wrong length")
            else:
                if payload_length != plain_length:
                    raise DecryptionError(f"chunk {index} of block {block_id}: wrong length")
                self._aead.decrypt_into(mv[1:HEADER], mv[HEADER:], aad, dst)
        except InvalidTag:
            dst[:] = bytes(plain_length)
            raise DecryptionError(f"chunk {index} of block {block_id}: authentication failed") from None
        except BaseException:
            dst[:] = bytes(plain_length)
            raise
        return plain_length

    def _scratch(self, n: int) -> memoryview:
        buf = getattr(self._local, "scratch", None)
        if buf is None or len(buf) < n:
            buf = self._local.scratch = bytearray(max(n, 1 << 20))
        return memoryview(buf)[:n]


def _load_zstd_into():
    """Decompression straight into a caller's buffer, through the system's
    libzstd (python-zstandard can only return new bytes, which then have to be
    copied). None where there is no libzstd: decode_into then copies."""
    if os.environ.get("DFS_NO_LIBZSTD"):
        return None
    try:
        try:
            lib = ctypes.CDLL("libzstd.so.1")
        except OSError:
            lib = ctypes.CDLL(ctypes.util.find_library("zstd") or "libzstd.so")
        lib.ZSTD_createDCtx.restype = ctypes.c_void_p
        lib.ZSTD_createDCtx.argtypes = []
        lib.ZSTD_freeDCtx.restype = ctypes.c_size_t
        lib.ZSTD_freeDCtx.argtypes = [ctypes.c_void_p]
        lib.ZSTD_decompressDCtx.restype = ctypes.c_size_t
        lib.ZSTD_decompressDCtx.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                            ctypes.c_void_p, ctypes.c_size_t]
        lib.ZSTD_isError.restype = ctypes.c_uint
        lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
        lib.ZSTD_getErrorName.restype = ctypes.c_char_p
        lib.ZSTD_getErrorName.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None

    class _DCtx:        # one per thread, freed with the thread's locals
        def __init__(self):
            self.ptr = lib.ZSTD_createDCtx()
            if not self.ptr:
                raise MemoryError("ZSTD_createDCtx failed")
            weakref.finalize(self, lib.ZSTD_freeDCtx, self.ptr)

    def zstd_into(local, src, dst) -> tuple[int, str]:
        """Decompress all of ``src`` into ``dst`` (both writable buffers): (bytes written, error)."""
        dctx = getattr(local, "dctx", None)
        if dctx is None:
            dctx = local.dctx = _DCtx()
        n_src, n_dst = len(src), len(dst)
        s = (ctypes.c_char * max(n_src, 1)).from_buffer(src if n_src else bytearray(1))
        d = (ctypes.c_char * max(n_dst, 1)).from_buffer(dst if n_dst else bytearray(1))
        try:
            r = lib.ZSTD_decompressDCtx(dctx.ptr, ctypes.addressof(d), n_dst,
                                        ctypes.addressof(s), n_src)
        finally:
            del s, d
        if lib.ZSTD_isError(r):
            return 0, lib.ZSTD_getErrorName(r).decode(errors="replace")
        return r, ""

    return zstd_into


_zstd_loaded: list = []


def _zstd_into():
    if not _zstd_loaded:        # on first use: loading needs no lock, it only wastes a load when raced
        _zstd_loaded.append(_load_zstd_into())
    return _zstd_loaded[0]
