"""The snapshot stream format: what the verifier accepts and what it refuses."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import msgpack
import pytest

from quorumkv.errors import SnapshotCorrupt
from quorumkv.raft.types import ConfState, SnapshotMeta
from quorumkv.storage import encoding
from quorumkv.storage.snapshot_stream import (
    KIND_DATA,
    KIND_END,
    KIND_META,
    ChunkedSnapshotReader,
    SnapshotStreamVerifier,
    encode_chunk,
)

META = SnapshotMeta(9, 2, ConfState(voters=(1, 2, 3)))


def stream(*data_chunks: list[bytes], count: int | None = None) -> list[bytes]:
    """META, the given DATA payloads (flat key/value lists), END with the true totals."""
    chunks = [encode_chunk(KIND_META, 1, 0, msgpack.packb(encoding.meta_fields(META)))]
    checksum, pairs = 0, 0
    for flat in data_chunks:
        payload = msgpack.packb(flat, use_bin_type=True)
        checksum = zlib.crc32(payload, checksum)
        pairs += len(flat) // 2
        chunks.append(encode_chunk(KIND_DATA, 1, len(chunks), payload))
    total = pairs if count is None else count
    chunks.append(encode_chunk(KIND_END, 1, len(chunks), msgpack.packb([total, checksum])))
    return chunks


def verify(chunks: list[bytes]) -> list[tuple[bytes, bytes]]:
    verifier = SnapshotStreamVerifier(1, META)
    pairs = []
    for chunk in chunks:
        pairs.extend(verifier.feed(chunk))
    verifier.finish()
    return pairs


def test_a_well_formed_stream_yields_its_pairs() -> None:
    """Pairs come out in order, across chunks."""
    assert verify(stream([b"a", b"1", b"b", b"2"], [b"c", b"3"])) == [
        (b"a", b"1"), (b"b", b"2"), (b"c", b"3")]


@pytest.mark.parametrize("chunks", [
    [[b"b", b"1", b"a", b"2"]],  # descending inside a chunk
    [[b"a", b"1"], [b"a", b"2"]],  # a key repeated across chunks
    [[b"b", b"1"], [b"a", b"2"]],  # descending across chunks
    [[b"a", "text"]],  # not bytes
    [[b"a"]],  # odd length
])
def test_malformed_data_is_refused(chunks: list[list[bytes]]) -> None:
    """Keys must ascend strictly across the stream; items must be bytes, in pairs."""
    with pytest.raises(SnapshotCorrupt):
        verify(stream(*chunks))


def test_a_wrong_count_at_the_end_is_refused() -> None:
    """The END chunk's count must match the pairs received."""
    with pytest.raises(SnapshotCorrupt, match="totals differ"):
        verify(stream([b"a", b"1"], count=2))


def test_the_reader_splits_by_bytes_and_round_trips() -> None:
    """ChunkedSnapshotReader output verifies and carries every pair once, in order."""
    pairs = [(b"k%04d" % n, b"v" * (n % 50)) for n in range(500)]
    reader = ChunkedSnapshotReader(1, META, iter([pairs[:123], pairs[123:]]))
    chunks = []
    while chunk := reader.read_chunk(300):
        chunks.append(chunk)
    assert len(chunks) > 20
    assert verify(chunks) == pairs


def test_a_reader_whose_source_failed_never_ends_the_image() -> None:
    """After the pairs source fails, every later read fails too: no END chunk is made."""

    def failing_blocks() -> Iterator[list[tuple[bytes, bytes]]]:
        yield [(b"a", b"1")]
        raise OSError("the disk went away")

    reader = ChunkedSnapshotReader(1, META, failing_blocks())
    reader.read_chunk(100)  # META
    for _ in range(3):
        with pytest.raises(OSError):
            reader.read_chunk(100)
