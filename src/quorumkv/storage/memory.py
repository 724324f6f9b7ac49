"""The memory store: every NodeStore rule, kept in dicts, durable for as long as the process.

It is the reference the other stores are tested against (one conformance suite), the store of
unit tests, and the state underneath the simulator's faulty disk. A batch's operations are
applied in order, at once, when it is written, so a written batch is visible immediately and no
reader ever sees half of one (there is no concurrency to interleave with).

Per shard it keeps: the log (entries by index, and its shape in `LogTerms`), the hard state, the
applied point, and the data (a dict plus a sorted key list for scans). Views returned by
`log()` and `shard()` look the shard up on every call, so a view the host holds on to keeps
reflecting installs and drops.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from quorumkv.invariant import invariant
from quorumkv.raft.types import ConfState, Entry, HardState, SnapshotMeta
from quorumkv.storage import batch as ops
from quorumkv.storage.batch import OperationBatch, SnapshotImage
from quorumkv.storage.log_terms import LogTerms
from quorumkv.storage.protocols import WriteBatch
from quorumkv.storage.snapshot_stream import ChunkedSnapshotReader, SnapshotStreamVerifier

EMPTY_APPLIED = SnapshotMeta(0, 0, ConfState())
"""The applied point of a shard that was never bootstrapped."""


class MemoryShard:
    """Everything the store holds for one shard."""

    __slots__ = ("applied", "data", "entries", "hard_state", "keys", "terms")

    def __init__(self, shard_id: int) -> None:
        self.terms = LogTerms(shard_id)
        self.entries: dict[int, Entry] = {}
        self.hard_state = HardState()
        self.applied = EMPTY_APPLIED
        self.data: dict[bytes, bytes] = {}
        self.keys: list[bytes] = []  # sorted keys of `data`

    def copy(self) -> MemoryShard:
        other = MemoryShard(self.terms.shard_id)
        other.terms = self.terms.copy()
        other.entries = dict(self.entries)
        other.hard_state = self.hard_state
        other.applied = self.applied
        other.data = dict(self.data)
        other.keys = list(self.keys)
        return other


class MemoryLog:
    """A live view of one shard's log (implements protocols.LogStore)."""

    def __init__(self, store: MemoryStore, shard_id: int) -> None:
        self._store = store
        self._shard_id = shard_id

    def initial_state(self) -> tuple[HardState, ConfState]:
        shard = self._store.lookup(self._shard_id)
        return shard.hard_state, shard.applied.conf_state

    def hard_state(self) -> HardState:
        return self._store.lookup(self._shard_id).hard_state

    def first_index(self) -> int:
        return self._store.lookup(self._shard_id).terms.first_index()

    def last_index(self) -> int:
        return self._store.lookup(self._shard_id).terms.last_index

    def term(self, index: int) -> int:
        return self._store.lookup(self._shard_id).terms.term(index)

    def entries(self, low: int, high: int, bytes_max: int) -> list[Entry]:
        shard = self._store.lookup(self._shard_id)
        shard.terms.check_range(low, high)
        found: list[Entry] = []
        size = 0
        for index in range(low, high):
            entry = shard.entries[index]
            size += entry.size_bytes()
            if found and size > bytes_max:
                break
            found.append(entry)
        return found

    def snapshot_meta(self) -> SnapshotMeta:
        return self._store.lookup(self._shard_id).applied


class MemoryShardState:
    """A live view of one shard's applied data (implements protocols.ShardState)."""

    def __init__(self, store: MemoryStore, shard_id: int) -> None:
        self._store = store
        self._shard_id = shard_id

    def get(self, key: bytes) -> bytes | None:
        return self._store.lookup(self._shard_id).data.get(key)

    def scan(self, start: bytes, end: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        invariant(limit >= 0, f"scan limit {limit} is negative")
        shard = self._store.lookup(self._shard_id)
        keys = shard.keys
        position = bisect.bisect_left(keys, start)
        stop = len(keys) if end is None else bisect.bisect_left(keys, end)
        return [(key, shard.data[key]) for key in keys[position:min(stop, position + limit)]]

    def applied(self) -> SnapshotMeta:
        return self._store.lookup(self._shard_id).applied


class MemorySnapshotWriter:
    """Stages a verified image in memory (implements protocols.SnapshotWriter)."""

    def __init__(self, shard_id: int, meta: SnapshotMeta) -> None:
        self._verifier = SnapshotStreamVerifier(shard_id, meta)
        self._pairs: list[tuple[bytes, bytes]] = []
        self._open = True

    def write_chunk(self, data: bytes) -> None:
        invariant(self._open, "a snapshot writer was used after finish or abort")
        self._pairs.extend(self._verifier.feed(data))

    def finish(self) -> SnapshotImage:
        invariant(self._open, "a snapshot writer was finished after finish or abort")
        self._verifier.finish()
        self._open = False
        return SnapshotImage(self._verifier.shard_id, self._verifier.meta, tuple(self._pairs))

    def abort(self) -> None:
        self._open = False
        self._pairs = []


class MemoryStore:
    """All durable state of one node, in dicts (implements protocols.NodeStore)."""

    def __init__(self) -> None:
        self._shards: dict[int, MemoryShard] = {}
        self._meta: dict[str, bytes] = {}
        self._closed = False

    # ---- writing ---------------------------------------------------------------------------

    def batch(self) -> OperationBatch:
        return OperationBatch()

    def write(self, batch: WriteBatch, sync: bool) -> None:
        """Apply the batch at once (memory is as durable as it gets; `sync` changes nothing)."""
        invariant(not self._closed, "write to a closed store")
        for operation in ops.operations_of(batch):
            self.apply(operation)

    def put_meta(self, name: str, value: bytes) -> None:
        batch = self.batch()
        batch.put_meta(name, value)
        self.write(batch, sync=True)

    def apply(self, operation: ops.Operation) -> None:
        """Apply one operation of a batch."""
        match operation:
            case ops.AppendEntries(shard_id, entries):
                self._append(self._shard(shard_id), entries)
            case ops.SetHardState(shard_id, hard_state):
                self._shard(shard_id).hard_state = hard_state
            case ops.CompactLog(shard_id, meta):
                self._compact(self._shard(shard_id), meta)
            case ops.Put(shard_id, key, value):
                self._put(self._shard(shard_id), key, value)
            case ops.Delete(shard_id, key):
                self._delete(self._shard(shard_id), key)
            case ops.SetApplied(shard_id, meta):
                self._shard(shard_id).applied = meta
            case ops.InstallSnapshot(shard_id, image):
                self._install(self._shard(shard_id), ops.in_memory_image(image))
            case ops.DropShard(shard_id):
                self._shards.pop(shard_id, None)
            case ops.PutMeta(name, value):
                self._meta[name] = value

    def _append(self, shard: MemoryShard, entries: tuple[Entry, ...]) -> None:
        kept = [entry for entry in entries if entry.index > shard.terms.base_index]
        if not kept:
            return  # entries at or below the compaction point are committed, hence identical
        previous_last = shard.terms.append(kept[0].index, [entry.term for entry in kept])
        for entry in kept:
            shard.entries[entry.index] = entry
        for index in range(shard.terms.last_index + 1, previous_last + 1):
            del shard.entries[index]

    def _compact(self, shard: MemoryShard, meta: SnapshotMeta) -> None:
        base, last = shard.terms.base_index, shard.terms.last_index
        shard.terms.compact(meta.index, meta.term)
        for index in range(base + 1, min(meta.index, last) + 1):
            del shard.entries[index]

    def _put(self, shard: MemoryShard, key: bytes, value: bytes) -> None:
        if key not in shard.data:
            bisect.insort(shard.keys, key)
        shard.data[key] = value

    def _delete(self, shard: MemoryShard, key: bytes) -> None:
        if shard.data.pop(key, None) is not None:
            del shard.keys[bisect.bisect_left(shard.keys, key)]

    def _install(self, shard: MemoryShard, image: SnapshotImage) -> None:
        shard.data = dict(image.pairs)
        shard.keys = [key for key, _ in image.pairs]
        shard.entries = {}
        shard.terms.reset(image.meta.index, image.meta.term)
        shard.applied = image.meta

    # ---- reading ---------------------------------------------------------------------------

    def log(self, shard_id: int) -> MemoryLog:
        return MemoryLog(self, shard_id)

    def shard(self, shard_id: int) -> MemoryShardState:
        return MemoryShardState(self, shard_id)

    def shard_ids(self) -> list[int]:
        return sorted(self._shards)

    def get_meta(self, name: str) -> bytes | None:
        return self._meta.get(name)

    def lookup(self, shard_id: int) -> MemoryShard:
        """The shard's state, or an empty one (not stored) if it has none."""
        shard = self._shards.get(shard_id)
        return shard if shard is not None else MemoryShard(shard_id)

    def _shard(self, shard_id: int) -> MemoryShard:
        shard = self._shards.get(shard_id)
        if shard is None:
            shard = self._shards[shard_id] = MemoryShard(shard_id)
        return shard

    # ---- snapshots -------------------------------------------------------------------------

    def open_snapshot(self, shard_id: int) -> ChunkedSnapshotReader:
        """A consistent image: a copy of the shard's pairs and applied point, taken now."""
        shard = self.lookup(shard_id)
        pairs = [(key, shard.data[key]) for key in shard.keys]
        blocks: Iterator[list[tuple[bytes, bytes]]] = iter([pairs] if pairs else [])
        return ChunkedSnapshotReader(shard_id, shard.applied, blocks)

    def snapshot_writer(self, shard_id: int, meta: SnapshotMeta) -> MemorySnapshotWriter:
        return MemorySnapshotWriter(shard_id, meta)

    # ---- lifecycle -------------------------------------------------------------------------

    def copy(self) -> MemoryStore:
        """An independent store with the same contents (the faulty disk's crash image)."""
        other = MemoryStore()
        other._shards = {shard_id: shard.copy() for shard_id, shard in self._shards.items()}
        other._meta = dict(self._meta)
        return other

    def close(self) -> None:
        self._closed = True
