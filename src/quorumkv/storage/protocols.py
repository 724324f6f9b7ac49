"""The storage interfaces every store implements: memory, the simulator's faulty disk, RocksDB.

One `NodeStore` per node holds every shard replica hosted there. All writes go through a
`WriteBatch` applied atomically by `NodeStore.write(batch, sync)`: this is what makes group
commit possible (the new entries and hard states of every shard, the effects of applied
entries and each shard's applied index, in one synced batch; ARCHITECTURE.md, Storage).

Visibility and durability: a written batch is visible to readers at once, synced or not. A
crash keeps every batch written with `sync=True` and every batch before it; batches written
after the last synced one may be lost, whole and in order (never partly, never out of order).

Snapshots of a shard's data flow out through a `SnapshotReader` (a consistent view taken when
it is opened, read as bounded opaque chunks) and in through a `SnapshotWriter`, which stages
and verifies the whole image before `WriteBatch.install_snapshot` swaps it in.

The conformance suite in tests/storage/ runs against every implementation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from quorumkv.raft.log_reader import LogReader
from quorumkv.raft.types import ConfState, Entry, HardState, SnapshotMeta


class LogStore(LogReader, Protocol):
    """One shard's persisted Raft log and hard state (read side; writes go through batches)."""

    def hard_state(self) -> HardState:
        ...


class ShardState(Protocol):
    """One shard's replicated data as applied so far (read side)."""

    def get(self, key: bytes) -> bytes | None:
        ...

    def scan(self, start: bytes, end: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to `limit` (key, value) pairs with start <= key < end (end None: to the last)."""
        ...

    def applied(self) -> SnapshotMeta:
        """Index and term of the last applied entry, and the membership as of it."""
        ...


class SnapshotReader(Protocol):
    """A consistent image of one shard's data, as of `meta`, read in bounded chunks."""

    @property
    def meta(self) -> SnapshotMeta:
        ...

    def read_chunk(self, bytes_max: int) -> bytes:
        """The next chunk of the image, at most about `bytes_max` long; b"" once complete."""
        ...

    def close(self) -> None:
        ...


class StagedSnapshot(Protocol):
    """A received image, verified whole, ready to be installed by a WriteBatch."""

    @property
    def shard_id(self) -> int:
        ...

    @property
    def meta(self) -> SnapshotMeta:
        ...

    def discard(self) -> None:
        """Release what the image holds (staged files) when it will not be installed."""
        ...


class SnapshotWriter(Protocol):
    """Receives an image chunk by chunk; nothing is visible until installed."""

    def write_chunk(self, data: bytes) -> None:
        """Raises errors.SnapshotCorrupt if the chunk cannot be part of a valid image."""
        ...

    def finish(self) -> StagedSnapshot:
        """Verify the whole image; raises errors.SnapshotCorrupt if it is incomplete or bad."""
        ...

    def abort(self) -> None:
        """Discard everything staged so far."""
        ...


class WriteBatch(Protocol):
    """An atomic set of changes across shards, applied by NodeStore.write."""

    def append_entries(self, shard_id: int, entries: list[Entry]) -> None:
        """Append entries; any persisted entry at index >= entries[0].index is replaced."""
        ...

    def set_hard_state(self, shard_id: int, hard_state: HardState) -> None:
        ...

    def compact_log(self, shard_id: int, meta: SnapshotMeta) -> None:
        """Drop log entries up to meta.index (inclusive); meta becomes the log's base."""
        ...

    def put(self, shard_id: int, key: bytes, value: bytes) -> None:
        ...

    def delete(self, shard_id: int, key: bytes) -> None:
        ...

    def set_applied(self, shard_id: int, meta: SnapshotMeta) -> None:
        """Record the last applied entry (index, term) and membership, with its effects."""
        ...

    def install_snapshot(self, shard_id: int, image: StagedSnapshot) -> None:
        """Replace the shard's data with the image, reset its log to start after
        image.meta.index, and set applied to image.meta."""
        ...

    def drop_shard(self, shard_id: int) -> None:
        """Remove every trace of the shard: data, log, hard state, applied point."""
        ...


class NodeStore(Protocol):
    """All durable state of one node."""

    def batch(self) -> WriteBatch:
        ...

    def write(self, batch: WriteBatch, sync: bool) -> None:
        """Apply the batch atomically. Raises errors.DiskFull (nothing applied) when full."""
        ...

    def log(self, shard_id: int) -> LogStore:
        ...

    def shard(self, shard_id: int) -> ShardState:
        ...

    def shard_ids(self) -> list[int]:
        """Shards with any state on this node, ascending."""
        ...

    def open_snapshot(self, shard_id: int) -> SnapshotReader:
        ...

    def snapshot_writer(self, shard_id: int, meta: SnapshotMeta) -> SnapshotWriter:
        ...

    def get_meta(self, name: str) -> bytes | None:
        """Node metadata (cluster id, node id...), outside any shard."""
        ...

    def put_meta(self, name: str, value: bytes) -> None:
        """Write node metadata durably (synced)."""
        ...

    def close(self) -> None:
        ...


def iterate_scan(state: ShardState, start: bytes, end: bytes | None, page: int) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of `state` in [start, end), read `page` pairs at a time."""
    while True:
        rows = state.scan(start, end, page)
        yield from rows
        if len(rows) < page:
            return
        start = rows[-1][0] + b"\x00"


__all__ = [
    "ConfState",
    "LogStore",
    "NodeStore",
    "ShardState",
    "SnapshotReader",
    "SnapshotWriter",
    "StagedSnapshot",
    "WriteBatch",
]
