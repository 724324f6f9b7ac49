"""The write batch shared by every store: an ordered list of operations, applied atomically.

A `WriteBatch` only records what to do; the store's `write` interprets the operations in order
(so a batch may append, compact and append again to one shard, and later operations see the
effects of earlier ones). Keeping the batch as plain data is what lets one class serve all three
stores: the memory store applies the operations to dicts, the faulty disk also serializes them
into a checksummed record (encoding.py), and RocksDB translates them into one rocksdict
WriteBatch across column families.

Shapes are checked here, when the operation is added, so a bug is reported where it is made:
entries must be consecutive, an image must belong to the shard it is installed into.
"""

from __future__ import annotations

from dataclasses import dataclass

from quorumkv.invariant import InvariantViolation, invariant
from quorumkv.raft.types import Entry, HardState, SnapshotMeta
from quorumkv.storage.protocols import StagedSnapshot


@dataclass(frozen=True, slots=True)
class AppendEntries:
    shard_id: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class SetHardState:
    shard_id: int
    hard_state: HardState


@dataclass(frozen=True, slots=True)
class CompactLog:
    shard_id: int
    meta: SnapshotMeta


@dataclass(frozen=True, slots=True)
class Put:
    shard_id: int
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Delete:
    shard_id: int
    key: bytes


@dataclass(frozen=True, slots=True)
class SetApplied:
    shard_id: int
    meta: SnapshotMeta


@dataclass(frozen=True, slots=True)
class SnapshotImage:
    """A verified image held in memory: the StagedSnapshot of the memory and faulty-disk stores
    (the RocksDB store stages SST files instead)."""

    shard_id: int
    meta: SnapshotMeta
    pairs: tuple[tuple[bytes, bytes], ...]

    def discard(self) -> None:
        """Nothing to release: the image lives in memory."""


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    shard_id: int
    image: StagedSnapshot


@dataclass(frozen=True, slots=True)
class DropShard:
    shard_id: int


@dataclass(frozen=True, slots=True)
class PutMeta:
    name: str
    value: bytes


Operation = (AppendEntries | SetHardState | CompactLog | Put | Delete | SetApplied
             | InstallSnapshot | DropShard | PutMeta)

SHARD_ID_MAX = 2**32 - 2
"""Shard ids are fixed-width 32-bit big-endian key prefixes; the top value is kept free so
that `shard + 1` bounds every key range of a shard."""


class OperationBatch:
    """An atomic set of changes across shards (implements protocols.WriteBatch)."""

    __slots__ = ("operations",)

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def __len__(self) -> int:
        return len(self.operations)

    def append_entries(self, shard_id: int, entries: list[Entry]) -> None:
        """Append entries; any persisted entry at index >= entries[0].index is replaced."""
        if not entries:
            return
        _check_shard(shard_id)
        first = entries[0].index
        invariant([entry.index for entry in entries] == list(range(first, first + len(entries))),
                  f"shard {shard_id}: appended entries are not consecutive from {first}")
        terms = [entry.term for entry in entries]
        invariant(terms == sorted(terms), f"shard {shard_id}: appended entry terms go down")
        self.operations.append(AppendEntries(shard_id, tuple(entries)))

    def set_hard_state(self, shard_id: int, hard_state: HardState) -> None:
        _check_shard(shard_id)
        self.operations.append(SetHardState(shard_id, hard_state))

    def compact_log(self, shard_id: int, meta: SnapshotMeta) -> None:
        """Drop log entries up to meta.index (inclusive); meta becomes the log's base."""
        _check_shard(shard_id)
        self.operations.append(CompactLog(shard_id, meta))

    def put(self, shard_id: int, key: bytes, value: bytes) -> None:
        if not 0 <= shard_id <= SHARD_ID_MAX:  # inlined _check_shard: puts are the hot path
            _check_shard(shard_id)
        self.operations.append(Put(shard_id, bytes(key), bytes(value)))

    def delete(self, shard_id: int, key: bytes) -> None:
        _check_shard(shard_id)
        self.operations.append(Delete(shard_id, bytes(key)))

    def set_applied(self, shard_id: int, meta: SnapshotMeta) -> None:
        """Record the last applied entry (index, term) and membership, with its effects."""
        _check_shard(shard_id)
        self.operations.append(SetApplied(shard_id, meta))

    def install_snapshot(self, shard_id: int, image: StagedSnapshot) -> None:
        """Replace the shard's data with the image, reset its log to start after
        image.meta.index, and set applied to image.meta."""
        _check_shard(shard_id)
        invariant(image.shard_id == shard_id,
                  f"an image of shard {image.shard_id} installed into shard {shard_id}")
        self.operations.append(InstallSnapshot(shard_id, image))

    def drop_shard(self, shard_id: int) -> None:
        """Remove every trace of the shard: data, log, hard state, applied point."""
        _check_shard(shard_id)
        self.operations.append(DropShard(shard_id))

    def put_meta(self, name: str, value: bytes) -> None:
        """Node metadata written with the batch (NodeStore.put_meta is a synced batch of one)."""
        self.operations.append(PutMeta(name, bytes(value)))


def operations_of(batch: object) -> list[Operation]:
    """The operations of a batch this package made; any other object is a bug."""
    if not isinstance(batch, OperationBatch):
        raise InvariantViolation(f"a {type(batch).__name__} was written as a batch; use "
                                 "NodeStore.batch() to make one")
    return batch.operations


def in_memory_image(image: StagedSnapshot) -> SnapshotImage:
    """`image` as a SnapshotImage; a store handed another store's staged image is a bug."""
    if not isinstance(image, SnapshotImage):
        raise InvariantViolation(f"shard {image.shard_id}: a {type(image).__name__} was handed "
                                 "to a store that stages images in memory")
    return image


def _check_shard(shard_id: int) -> None:
    invariant(0 <= shard_id <= SHARD_ID_MAX, f"shard id {shard_id} is outside [0, 2**32 - 1)")
