"""Key layout of the RocksDB store: every key of every column family is built here.

All integers are fixed-width big-endian, so byte order is numeric order and a shard's keys are
one contiguous range (snapshotted, moved or dropped as a unit with one range delete).

Column family `raft` (one kind byte, then the shard id):

    b"E" shard u32 index u64   log entry            encoding.encode_entry (checksummed)
    b"H" shard u32             hard state           encoding.encode_hard_state
    b"B" shard u32             log base (compaction point, a SnapshotMeta)
    b"A" shard u32             applied point (SnapshotMeta)
    b"G" shard u32             data generation (u32, msgpack) of the shard's live data

Column family `data`:

    shard u32 generation u32 user-key    raw value (RocksDB's block checksums cover it)

Column family `meta`:

    b"format_version"          msgpack [FORMAT_VERSION], checksummed frame
    b"node:" name (utf-8)      node metadata value, checksummed frame

The generation lets a snapshot install be crash-safe although SST ingestion is not part of a
WriteBatch: the image is ingested under a generation no record points to, and one WriteBatch
then switches the shard's `G` record to it (docs/storage.md, "Installing a snapshot").
"""

from __future__ import annotations

import struct

from quorumkv.invariant import invariant
from quorumkv.storage.batch import SHARD_ID_MAX

__all__ = ["SHARD_ID_MAX"]

FORMAT_VERSION = 1
"""Version of this layout, stored in the database; a database with another one is refused."""

GENERATION_MAX = 2**32 - 2
INDEX_MAX = 2**64 - 2

KIND_ENTRY = b"E"
KIND_HARD_STATE = b"H"
KIND_BASE = b"B"
KIND_APPLIED = b"A"
KIND_GENERATION = b"G"
RAFT_KINDS = (KIND_APPLIED, KIND_BASE, KIND_ENTRY, KIND_GENERATION, KIND_HARD_STATE)

FORMAT_VERSION_KEY = b"format_version"
NODE_META_PREFIX = b"node:"

_SHARD = struct.Struct(">I")
_SHARD_INDEX = struct.Struct(">IQ")
_SHARD_GENERATION = struct.Struct(">II")
SHARD_BYTES = _SHARD.size
DATA_PREFIX_BYTES = _SHARD_GENERATION.size


def shard_record_key(kind: bytes, shard_id: int) -> bytes:
    """Key of a per-shard record (hard state, base, applied, generation) in `raft`."""
    return kind + _SHARD.pack(shard_id)


_ENTRY_KEY = struct.Struct(">cIQ")


def entry_key(shard_id: int, index: int) -> bytes:
    if not 0 <= index <= INDEX_MAX + 1:
        invariant(False, f"log index {index} out of range")
    return _ENTRY_KEY.pack(KIND_ENTRY, shard_id, index)


def entries_end_key(shard_id: int) -> bytes:
    """Upper bound (exclusive) of every entry key of the shard."""
    return KIND_ENTRY + _SHARD.pack(shard_id + 1)


def parse_raft_key(key: bytes) -> tuple[bytes, int, int]:
    """(kind, shard id, index or -1) of a `raft` key; ValueError if it has no known shape."""
    kind = key[:1]
    if kind == KIND_ENTRY and len(key) == 1 + _SHARD_INDEX.size:
        shard_id, index = _SHARD_INDEX.unpack_from(key, 1)
        return kind, shard_id, index
    if kind in RAFT_KINDS and kind != KIND_ENTRY and len(key) == 1 + SHARD_BYTES:
        return kind, _SHARD.unpack_from(key, 1)[0], -1
    raise ValueError(f"unknown raft key {key!r}")


def data_prefix(shard_id: int, generation: int) -> bytes:
    return _SHARD_GENERATION.pack(shard_id, generation)


def data_key(shard_id: int, generation: int, key: bytes) -> bytes:
    return _SHARD_GENERATION.pack(shard_id, generation) + key


def shard_data_start(shard_id: int) -> bytes:
    """Lower bound of every data key of the shard, any generation."""
    return _SHARD.pack(shard_id)


def shard_data_end(shard_id: int) -> bytes:
    """Upper bound (exclusive) of every data key of the shard, any generation."""
    return _SHARD.pack(shard_id + 1)


def parse_data_prefix(key: bytes) -> tuple[int, int]:
    """(shard id, generation) of a data key."""
    if len(key) < DATA_PREFIX_BYTES:
        raise ValueError(f"data key {key!r} is shorter than its prefix")
    shard_id, generation = _SHARD_GENERATION.unpack_from(key)
    return shard_id, generation


def node_meta_key(name: str) -> bytes:
    return NODE_META_PREFIX + name.encode()
