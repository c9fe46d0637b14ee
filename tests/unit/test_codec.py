"""ChunkCodec (compress → encrypt → checksum) and data-key wrapping. Pure, no I/O."""

from __future__ import annotations

import os
import random

import pytest
from cryptography.exceptions import InvalidTag

from dfs.codec import ChunkCodec, checksum_of, keys
from dfs.codec.chunk import FLAG_ZSTD, HEADER, OVERHEAD, TAG
from dfs.errors import ChecksumError, DataIntegrityError, DecryptionError

KEY = bytes(range(32))
BLOCK = 0x1122334455667788


@pytest.fixture(scope="module")
def codec() -> ChunkCodec:
    return ChunkCodec(KEY)


def record_of(enc) -> bytes:
    return b"".join(bytes(p) for p in enc.parts)


def compressible(n: int, seed: int = 0) -> bytes:
    words = [b"alpha ", b"beta ", b"gamma ", b"delta ", b"\n"]
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words)
    return bytes(out[:n])


def rand(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


# -- round trips ---------------------------------------------------------------

SIZES = [
    0,
    1,
    2,
    15,
    16,
    17,
    511,
    512,
    513,
    4095,
    4097,
    65535,
    65537,
    2 * 65536,
    2 * 65536 + 1,
    300_001,
]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["random", "compressible", "zeros"])
def test_round_trip(codec, size, kind):
    plain = {"random": rand, "compressible": compressible, "zeros": lambda n, seed=0: bytes(n)}[
        kind
    ](size, size)
    idx = size % 7
    enc = codec.encode(plain, BLOCK, idx)
    rec = record_of(enc)
    assert enc.plain_length == size
    assert enc.stored_length == len(rec)
    assert enc.checksum == checksum_of(rec) == checksum_of(*enc.parts)
    assert codec.decode(rec, BLOCK, idx, size, enc.checksum) == plain
    assert codec.decode(rec, BLOCK, idx, size) == plain  # checksum optional
    assert codec.decode(memoryview(rec), BLOCK, idx, size, enc.checksum) == plain
    assert codec.decode(bytearray(rec), BLOCK, idx, size, enc.checksum) == plain


def test_buffer_inputs_encode(codec):
    plain = compressible(70_000)
    for buf in (bytearray(plain), memoryview(plain)):
        enc = codec.encode(buf, 7, 3)
        assert codec.decode(record_of(enc), 7, 3, len(plain), enc.checksum) == plain


def test_empty_chunk(codec):
    enc = codec.encode(b"", 1, 0)
    assert enc.plain_length == 0
    assert enc.stored_length == OVERHEAD
    rec = record_of(enc)
    assert rec[0] & FLAG_ZSTD == 0
    assert codec.decode(rec, 1, 0, 0, enc.checksum) == b""


def test_decoded_type_is_bytes(codec):
    enc = codec.encode(b"hello world" * 100, 2, 0)
    out = codec.decode(record_of(enc), 2, 0, 1100, enc.checksum)
    assert type(out) is bytes


def test_many_random_sizes_round_trip(codec):
    rng = random.Random(1234)
    for i in range(60):
        n = rng.randrange(0, 200_000)
        plain = rng.randbytes(n) if i % 2 else compressible(n, i)
        enc = codec.encode(plain, i, i)
        assert codec.decode(record_of(enc), i, i, n, enc.checksum) == plain


# -- compression decisions -----------------------------------------------------


@pytest.mark.parametrize("size", [4096, 65536, 1 << 20])
def test_compressible_is_stored_compressed(codec, size):
    plain = compressible(size)
    enc = codec.encode(plain, 5, 0)
    rec = record_of(enc)
    assert rec[0] & FLAG_ZSTD
    assert enc.stored_length < size // 3
    # and no plaintext appears in the record
    assert plain[:64] not in rec


@pytest.mark.parametrize("size", [600, 4096, 65536, 2 * 65536 + 1, 1 << 20])
def test_random_is_stored_raw(codec, size):
    plain = rand(size, size)
    enc = codec.encode(plain, 5, 0)
    rec = record_of(enc)
    assert rec[0] & FLAG_ZSTD == 0
    assert enc.stored_length == size + OVERHEAD


def test_sample_trial_is_skipped_while_chunks_keep_compressing():
    """Only the first of a run of compressible chunks is tried on a sample first; a chunk
    that then does not compress brings the sample trial back. Each still decodes."""
    codec = ChunkCodec(KEY)
    calls: list[int] = []

    class Counting:
        def __init__(self, zc):
            self.zc = zc

        def compress(self, data):
            calls.append(len(data))
            return self.zc.compress(data)

    codec._local.zc = Counting(codec._zc())
    mib = 1 << 20
    chunks = [compressible(mib, 1), compressible(mib, 2), rand(mib, 3), rand(mib, 4), compressible(mib, 5)]
    encoded = [codec.encode(c, BLOCK, i) for i, c in enumerate(chunks)]
    # sample + whole; whole; whole (guessed wrong, stored raw); sample only; sample + whole
    assert calls == [65536, mib, mib, mib, 65536, 65536, mib]
    assert [bool(record_of(e)[0] & FLAG_ZSTD) for e in encoded] == [True, True, False, False, True]
    for i, (c, e) in enumerate(zip(chunks, encoded, strict=True)):
        assert codec.decode(record_of(e), BLOCK, i, len(c), e.checksum) == c


def test_tiny_chunks_are_stored_raw(codec):
    enc = codec.encode(b"a" * 100, 5, 0)
    assert record_of(enc)[0] == 0
    assert enc.stored_length == 100 + OVERHEAD


# -- tampering -----------------------------------------------------------------


def _positions(n: int) -> list[int]:
    """Every region: flags, nonce, body, tag."""
    fixed = {0, 1, 6, HEADER - 1, HEADER, HEADER + 1, n // 2, n - TAG - 1, n - TAG, n - 8, n - 1}
    return sorted(p for p in fixed if 0 <= p < n)


@pytest.mark.parametrize("kind", ["random", "compressible"])
def test_flipped_byte_never_decodes(codec, kind):
    plain = rand(3000) if kind == "random" else compressible(30_000)
    enc = codec.encode(plain, BLOCK, 4)
    rec = record_of(enc)
    for pos in _positions(len(rec)):
        for bit in (0x01, 0x80, 0xFF):
            bad = bytearray(rec)
            bad[pos] ^= bit
            with pytest.raises(ChecksumError):
                codec.decode(bytes(bad), BLOCK, 4, len(plain), enc.checksum)
            with pytest.raises(DecryptionError):
                codec.decode(bytes(bad), BLOCK, 4, len(plain), None)


def test_flipped_byte_exhaustive_small(codec):
    plain = b"x" * 600  # compressible: flag set, short record
    enc = codec.encode(plain, 9, 1)
    rec = record_of(enc)
    assert rec[0] & FLAG_ZSTD
    for pos in range(len(rec)):
        bad = bytearray(rec)
        bad[pos] ^= 0x04
        with pytest.raises(DecryptionError):
            codec.decode(bytes(bad), 9, 1, 600)


def test_flags_byte_toggle_compression_bit(codec):
    for plain in (rand(5000), compressible(5000)):
        enc = codec.encode(plain, 3, 3)
        bad = bytearray(record_of(enc))
        bad[0] ^= FLAG_ZSTD
        with pytest.raises(DecryptionError):
            codec.decode(bytes(bad), 3, 3, len(plain))


@pytest.mark.parametrize("cut", [0, 1, HEADER - 1, HEADER, OVERHEAD - 1, OVERHEAD, -1, -TAG])
def test_truncated_record(codec, cut):
    plain = compressible(5000)
    enc = codec.encode(plain, 3, 0)
    rec = record_of(enc)
    short = rec[:cut] if cut >= 0 else rec[: len(rec) + cut]
    assert len(short) < len(rec)
    with pytest.raises(DecryptionError):
        codec.decode(short, 3, 0, len(plain))
    with pytest.raises(ChecksumError):
        codec.decode(short, 3, 0, len(plain), enc.checksum)


def test_extended_record(codec):
    plain = rand(1000)
    enc = codec.encode(plain, 3, 0)
    with pytest.raises(DecryptionError):
        codec.decode(record_of(enc) + b"\0", 3, 0, len(plain))


# -- AAD binding ----------------------------------------------------------------


@pytest.mark.parametrize("plain", [rand(2000), compressible(20_000), b""])
def test_wrong_position_or_length_fails_authentication(codec, plain):
    n = len(plain)
    enc = codec.encode(plain, BLOCK, 5)
    rec = record_of(enc)
    for bid, idx, length in [
        (BLOCK + 1, 5, n),
        (BLOCK ^ (1 << 63), 5, n),
        (0, 5, n),
        (BLOCK, 4, n),
        (BLOCK, 6, n),
        (BLOCK, 0, n),
        (BLOCK, 5, n + 1),
        (BLOCK, 5, max(0, n - 1) if n else 1),
    ]:
        with pytest.raises(DecryptionError):
            # checksum still matches: the record itself is intact
            codec.decode(rec, bid, idx, length, enc.checksum)


def test_record_swapped_between_chunks(codec):
    a, b = compressible(4000, 1), compressible(4000, 2)
    ea, eb = codec.encode(a, 1, 0), codec.encode(b, 1, 1)
    with pytest.raises(DecryptionError):
        codec.decode(record_of(eb), 1, 0, 4000, eb.checksum)
    with pytest.raises(DecryptionError):
        codec.decode(record_of(ea), 1, 1, 4000, ea.checksum)


# -- nonces, keys, checksums ---------------------------------------------------


def test_fresh_nonce_per_encode(codec):
    plain = compressible(10_000)
    records = {record_of(codec.encode(plain, 1, 0)) for _ in range(20)}
    assert len(records) == 20
    nonces = {r[1:HEADER] for r in records}
    assert len(nonces) == 20
    for r in records:
        assert codec.decode(r, 1, 0, len(plain)) == plain


def test_wrong_key(codec):
    plain = compressible(10_000)
    enc = codec.encode(plain, 1, 0)
    other = ChunkCodec(bytes(32))
    with pytest.raises(DecryptionError):
        other.decode(record_of(enc), 1, 0, len(plain), enc.checksum)


def test_key_must_be_32_bytes():
    for bad in (b"", bytes(16), bytes(24), bytes(33)):
        with pytest.raises(ValueError):
            ChunkCodec(bad)


def test_checksum_mismatch(codec):
    plain = rand(100)
    enc = codec.encode(plain, 1, 0)
    with pytest.raises(ChecksumError):
        codec.decode(record_of(enc), 1, 0, 100, enc.checksum ^ 1)


def test_errors_are_data_integrity_errors():
    assert issubclass(ChecksumError, DataIntegrityError)
    assert issubclass(DecryptionError, DataIntegrityError)


def test_compression_level_does_not_affect_decoding():
    plain = compressible(50_000)
    enc = ChunkCodec(KEY, level=19).encode(plain, 2, 2)
    assert ChunkCodec(KEY).decode(record_of(enc), 2, 2, len(plain), enc.checksum) == plain


# -- key wrapping --------------------------------------------------------------


def test_new_key_is_random_32_bytes():
    a, b = keys.new_key(), keys.new_key()
    assert len(a) == len(b) == 32 and a != b


def test_wrap_unwrap_round_trip():
    master = os.urandom(32)
    for fid in (1, 2, 12345, 2**63):
        k = keys.new_key()
        w = keys.wrap(master, k, fid)
        assert k not in w
        assert keys.unwrap(master, w, fid) == k
        assert keys.wrap(master, k, fid) != w  # fresh nonce


def test_unwrap_wrong_file_id_or_master_fails():
    master = os.urandom(32)
    k = keys.new_key()
    w = keys.wrap(master, k, 7)
    with pytest.raises(InvalidTag):
        keys.unwrap(master, w, 8)
    with pytest.raises(InvalidTag):
        keys.unwrap(os.urandom(32), w, 7)
    bad = bytearray(w)
    bad[-1] ^= 1
    with pytest.raises(InvalidTag):
        keys.unwrap(master, bytes(bad), 7)


def test_wrapped_key_drives_codec():
    master = os.urandom(32)
    k = keys.new_key()
    w = keys.wrap(master, k, 99)
    plain = compressible(9000)
    enc = ChunkCodec(k).encode(plain, 1, 0)
    assert ChunkCodec(keys.unwrap(master, w, 99)).decode(record_of(enc), 1, 0, len(plain)) == plain
