"""ChunkCodec.decode_into: same plaintext as decode, same refusals, nothing unverified left behind."""

import mmap
import os

import pytest

from dfs.codec import ChunkCodec, chunk
from dfs.codec.chunk import FLAG_ZSTD, HEADER
from dfs.errors import ChecksumError, DecryptionError

KEY = bytes(range(32))
TEXT = b"".join(b"%d,row,%d,widget\n" % (i, i * 7) for i in range(80_000))[:1 << 20]


@pytest.fixture(autouse=True, params=["libzstd", "python-zstandard"])
def zstd_path(request, monkeypatch):
    """Every test runs with both ways of decompressing into ``out``."""
    into = chunk._load_zstd_into() if request.param == "libzstd" else None
    if request.param == "libzstd" and into is None:
        pytest.skip("no libzstd on this system")
    monkeypatch.setattr(chunk, "_zstd_loaded", [into])


def record(codec, plain, block_id=7, index=3):
    enc = codec.encode(plain, block_id, index)
    return b"".join(enc.parts), enc


@pytest.mark.parametrize("plain", [b"", b"x", os.urandom(1000), os.urandom(1 << 20), TEXT, TEXT[:5000]],
                         ids=["empty", "one", "small", "random-1MiB", "text-1MiB", "text-small"])
def test_decode_into_matches_decode(plain):
    codec = ChunkCodec(KEY)
    rec, enc = record(codec, plain)
    out = mmap.mmap(-1, (1 << 20) + 4096)
    with memoryview(out) as view:
        n = codec.decode_into(rec, 7, 3, len(plain), enc.checksum, view[4096:])
        assert n == len(plain)
        assert view[4096:4096 + n] == plain == codec.decode(rec, 7, 3, len(plain), enc.checksum)
        assert view[:4096] == bytes(4096) and view[4096 + n:] == bytes(len(view) - 4096 - n)
    # into a bytearray, without a checksum
    ba = bytearray(len(plain) + 10)
    assert codec.decode_into(memoryview(rec), 7, 3, len(plain), None, ba) == len(plain)
    assert ba[:len(plain)] == plain


def test_compressible_chunks_are_stored_compressed():
    rec, _ = record(ChunkCodec(KEY), TEXT)
    assert rec[0] & FLAG_ZSTD and len(rec) < len(TEXT) // 2


@pytest.mark.parametrize("plain", [os.urandom(70_000), TEXT], ids=["raw", "zstd"])
def test_decode_into_refuses_tampering_and_leaves_no_plaintext(plain):
    codec = ChunkCodec(KEY)
    rec, enc = record(codec, plain)
    n = len(plain)

    def refused(data, *, block_id=7, index=3, length=n, checksum=None, exc=DecryptionError):
        out = bytearray(os.urandom(n))
        with pytest.raises(exc):
            codec.decode_into(data, block_id, index, length, checksum, out)
        assert plain[:64] not in out and plain[-64:] not in out
        return out

    flipped = bytearray(rec)
    flipped[len(rec) // 2] ^= 0x01
    refused(flipped, checksum=enc.checksum, exc=ChecksumError)     # caught by xxh3
    assert refused(flipped) == bytes(n)        # no checksum given: caught by the tag, and zeroed
    refused(rec, index=4)                                          # moved to another position: wrong AAD
    refused(rec, block_id=8)                                       # or another block
    refused(rec, length=n - 1)                                     # a lying length
    other = bytearray(rec)
    other[0] ^= FLAG_ZSTD                                          # flags are authenticated too
    refused(other)
    nonce = bytearray(rec)
    nonce[HEADER - 1] ^= 0x80
    refused(nonce)
    refused(rec[:-1])                                              # truncated
    refused(rec[:20])                                              # shorter than the overhead
    # and decode refuses the same records
    for bad in (flipped, other, rec[:-1]):
        with pytest.raises(DecryptionError):
            codec.decode(bad, 7, 3, n)
    with pytest.raises(DecryptionError):
        ChunkCodec(bytes(32)).decode_into(rec, 7, 3, n, enc.checksum, bytearray(n))   # another file's key


def test_decode_into_needs_room_for_the_whole_chunk():
    codec = ChunkCodec(KEY)
    rec, enc = record(codec, os.urandom(5000))
    with pytest.raises(ValueError):
        codec.decode_into(rec, 7, 3, 5000, enc.checksum, bytearray(4999))
