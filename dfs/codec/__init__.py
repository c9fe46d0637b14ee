"""Block codec: turns plaintext chunks into stored records and back. Pure: no I/O."""

from dfs.codec.chunk import ChunkCodec, EncodedChunk, checksum_of

__all__ = ["ChunkCodec", "EncodedChunk", "checksum_of"]
