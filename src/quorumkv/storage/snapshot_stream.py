"""The snapshot stream: how one shard's applied state travels as bounded, checksummed chunks.

Every store streams the same format, so an image read from RocksDB installs into the memory
store and back. A stream is a sequence of self-describing chunks:

    magic "QKSS" | version u8 | kind u8 | shard id u32 | sequence u32 | payload length u32
    | crc32 u32 (over every header byte before it and the payload) | payload

- sequence 0 is a META chunk: the applied point (SnapshotMeta) the image covers;
- then DATA chunks: msgpack of a flat list [key, value, key, value...], keys strictly
  ascending across the whole stream, each chunk at most about `bytes_max` (one pair always fits,
  however large);
- last, an END chunk: msgpack [pair count, crc32 of every DATA payload in order].

`ChunkedSnapshotReader` produces the stream from a meta and an iterator of blocks of pairs
(each store supplies a consistent one: a copy for memory, a RocksDB iterator's implicit
snapshot for RocksDB).
`SnapshotStreamVerifier` consumes it: it checks magic, version, shard, order, checksums, the
meta against the one the transfer announced, key order, and at the end the count and the overall
checksum; any failure raises errors.SnapshotCorrupt and the caller discards what it staged. It
hands verified pairs to the store's writer, which stages them (memory: a list; RocksDB: SST
files) until `finish`.
"""

from __future__ import annotations

import operator
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NoReturn

import msgpack  # type: ignore[import-untyped]

from quorumkv import limits
from quorumkv.errors import SnapshotCorrupt
from quorumkv.raft.types import SnapshotMeta
from quorumkv.storage import encoding

STREAM_MAGIC = b"QKSS"
STREAM_FORMAT_VERSION = 1

KIND_META = 1
KIND_DATA = 2
KIND_END = 3

_HEADER = struct.Struct(">4sBBIII")  # magic, version, kind, shard, sequence, payload length
_CHECKSUM = struct.Struct(">I")
HEADER_BYTES = _HEADER.size + _CHECKSUM.size
_PAIR_OVERHEAD_BYTES = 10  # msgpack bin headers of one key and one value, at most

CHUNK_BYTES_ACCEPTED_MAX = limits.snapshot_chunk_bytes_max + limits.proposal_bytes_max + 4096
"""A chunk no sender following the chunk bound can produce (one pair is at most a proposal)."""


def encode_chunk(kind: int, shard_id: int, sequence: int, payload: bytes) -> bytes:
    header = _HEADER.pack(STREAM_MAGIC, STREAM_FORMAT_VERSION, kind, shard_id, sequence,
                          len(payload))
    checksum = zlib.crc32(payload, zlib.crc32(header))
    return header + _CHECKSUM.pack(checksum) + payload


@dataclass(frozen=True, slots=True)
class Chunk:
    kind: int
    sequence: int
    payload: memoryview


def decode_chunk(data: bytes, shard_id: int) -> Chunk:
    """Parse and checksum one chunk of shard `shard_id`'s stream; raises SnapshotCorrupt."""
    if len(data) < HEADER_BYTES:
        raise SnapshotCorrupt(shard_id, f"chunk of {len(data)} bytes is shorter than a header")
    if len(data) > CHUNK_BYTES_ACCEPTED_MAX:
        raise SnapshotCorrupt(shard_id, f"chunk of {len(data)} bytes exceeds the chunk bound")
    magic, version, kind, chunk_shard, sequence, length = _HEADER.unpack_from(data)
    (checksum,) = _CHECKSUM.unpack_from(data, _HEADER.size)
    payload = memoryview(data)[HEADER_BYTES:]
    if zlib.crc32(payload, zlib.crc32(memoryview(data)[:_HEADER.size])) != checksum:
        raise SnapshotCorrupt(shard_id, f"chunk {sequence} failed its checksum")
    if magic != STREAM_MAGIC or version != STREAM_FORMAT_VERSION:
        raise SnapshotCorrupt(shard_id, f"chunk {sequence} has an unknown format "
                              f"(magic {magic!r}, version {version})")
    if chunk_shard != shard_id:
        raise SnapshotCorrupt(shard_id, f"chunk {sequence} belongs to shard {chunk_shard}")
    if length != len(payload):
        raise SnapshotCorrupt(shard_id, f"chunk {sequence} is truncated")
    return Chunk(kind, sequence, payload)


class ChunkedSnapshotReader:
    """Streams `meta` and the pairs of `blocks` (lists of pairs, keys ascending across all,
    a consistent view) as chunks."""

    def __init__(self, shard_id: int, meta: SnapshotMeta,
                 blocks: Iterator[list[tuple[bytes, bytes]]],
                 on_close: Callable[[], None] | None = None) -> None:
        self._shard_id = shard_id
        self._meta = meta
        self._blocks = blocks
        self._block: list[tuple[bytes, bytes]] = []
        self._position = 0  # next pair of self._block to send
        self._sequence = 0
        self._count = 0
        self._data_checksum = 0
        self._done = False
        self._failure: Exception | None = None
        self._on_close = on_close

    @property
    def meta(self) -> SnapshotMeta:
        return self._meta

    def read_chunk(self, bytes_max: int) -> bytes:
        """The next chunk, about `bytes_max` long at most; b"" once the END chunk was read."""
        if self._done:
            return b""
        if self._failure is not None:
            raise self._failure  # never an END after a failed read: it would end the image early
        if self._sequence == 0:
            return self._emit(KIND_META, msgpack.packb(encoding.meta_fields(self._meta)))
        try:
            flat = self._take_pairs(bytes_max - HEADER_BYTES)
        except Exception as error:
            self._failure = error
            raise
        if flat:
            payload = msgpack.packb(flat, use_bin_type=True)
            self._data_checksum = zlib.crc32(payload, self._data_checksum)
            return self._emit(KIND_DATA, payload)
        self._done = True
        self.close()
        return self._emit(KIND_END, msgpack.packb([self._count, self._data_checksum]))

    def close(self) -> None:
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    def _emit(self, kind: int, payload: bytes) -> bytes:
        chunk = encode_chunk(kind, self._shard_id, self._sequence, payload)
        self._sequence += 1
        return chunk

    def _take_pairs(self, bytes_max: int) -> list[bytes]:
        """Pairs for one chunk, flattened: as many as fit in `bytes_max`, at least one."""
        flat: list[bytes] = []
        size = 0
        while True:
            if self._position == len(self._block):
                self._block, self._position = next(self._blocks, []), 0
                if not self._block:
                    return flat
            block, position = self._block, self._position
            while position < len(block):
                key, value = block[position]
                pair_bytes = len(key) + len(value) + _PAIR_OVERHEAD_BYTES
                if flat and size + pair_bytes > bytes_max:
                    self._count += (position - self._position)
                    self._position = position
                    return flat
                flat.append(key)
                flat.append(value)
                size += pair_bytes
                position += 1
            self._count += position - self._position
            self._position = position


class SnapshotStreamVerifier:
    """Checks a stream chunk by chunk; returns the verified pairs of each DATA chunk."""

    def __init__(self, shard_id: int, meta: SnapshotMeta) -> None:
        self.shard_id = shard_id
        self.meta = meta
        self.count = 0
        self._sequence = 0
        self._data_checksum = 0
        self._last_key: bytes | None = None
        self._ended = False

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """Verify one chunk; the (key, value) pairs it carries. Raises SnapshotCorrupt."""
        chunk = decode_chunk(data, self.shard_id)
        if chunk.sequence != self._sequence:
            self._corrupt(f"chunk {chunk.sequence} arrived out of order "
                          f"(expected {self._sequence})")
        if self._ended:
            self._corrupt(f"chunk {chunk.sequence} follows the end of the image")
        self._sequence += 1
        allowed = (KIND_META,) if chunk.sequence == 0 else (KIND_DATA, KIND_END)
        if chunk.kind not in allowed:
            self._corrupt(f"chunk {chunk.sequence} has unexpected kind {chunk.kind}")
        if chunk.kind == KIND_META:
            self._check_meta(chunk)
            return []
        if chunk.kind == KIND_END:
            self._check_end(chunk)
            return []
        return self._data(chunk)

    def finish(self) -> int:
        """The number of pairs, once the whole image was verified; raises SnapshotCorrupt."""
        if not self._ended:
            self._corrupt(f"the image is incomplete (no end after {self._sequence} chunks)")
        return self.count

    def _check_meta(self, chunk: Chunk) -> None:
        try:
            meta = encoding.meta_from(msgpack.unpackb(chunk.payload))
        except (ValueError, encoding.RecordCorrupt) as error:
            self._corrupt(f"undecodable meta chunk: {error}")
        if meta != self.meta:
            self._corrupt(f"image covers {meta}, the transfer announced {self.meta}")

    def _check_end(self, chunk: Chunk) -> None:
        try:
            count, checksum = msgpack.unpackb(chunk.payload)
        except (ValueError, TypeError) as error:
            self._corrupt(f"undecodable end chunk: {error}")
        if count != self.count or checksum != self._data_checksum:
            self._corrupt(f"image totals differ: {self.count} pairs with checksum "
                          f"{self._data_checksum}, the sender counted {count} with {checksum}")
        self._ended = True

    def _data(self, chunk: Chunk) -> list[tuple[bytes, bytes]]:
        try:
            flat = msgpack.unpackb(chunk.payload)
        except ValueError as error:
            self._corrupt(f"undecodable data chunk {chunk.sequence}: {error}")
        if not isinstance(flat, list) or not flat or len(flat) % 2 or set(map(type, flat)) != {
                bytes}:
            self._corrupt(f"data chunk {chunk.sequence} is not a list of key/value pairs")
        keys = flat[0::2]
        previous = [self._last_key, *keys[:-1]] if self._last_key is not None else keys[:-1]
        following = keys if self._last_key is not None else keys[1:]
        if not all(map(operator.lt, previous, following)):
            self._corrupt(f"keys in chunk {chunk.sequence} are out of order")
        self._last_key = keys[-1]
        self._data_checksum = zlib.crc32(chunk.payload, self._data_checksum)
        self.count += len(keys)
        return list(zip(keys, flat[1::2], strict=True))

    def _corrupt(self, detail: str) -> NoReturn:
        raise SnapshotCorrupt(self.shard_id, detail)
