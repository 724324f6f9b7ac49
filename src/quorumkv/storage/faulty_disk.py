"""The simulator's disk: a memory store that loses, tears and refuses writes, deterministically.

It models what a real disk promises and no more (protocols.py): a batch written with
`sync=True` survives a crash together with every batch before it; batches written since the
last sync may be lost, whole and in order, as a suffix; the last one that reached the disk may
be torn (partly written). It keeps two memory stores:

- `live`, what the running process sees (every written batch, at once);
- `durable`, the state as of the last sync;

and, between them, the journal of records written since the last sync. Each record is the
batch serialized for real (msgpack, framed with a crc32: encoding.encode_batch). A sync replays
the journal onto `durable` from the records themselves, so the serialization is exercised on
every sync, not only on crashes.

`crash()` is what a fresh process would find: the rng picks how many journal records reached
the disk (a prefix), and with `torn_probability` the last of them is torn (a byte flipped or
the tail cut off). Recovery replays records in order, verifying each checksum, and stops at the
first bad one: the torn batch is dropped whole. Disk-full faults (`fail_writes_next`, or
`disk_full_probability` per write) raise errors.DiskFull before anything is applied.

Everything random comes from the injected rng, so a seed replays exactly.
"""

from __future__ import annotations

from typing import Protocol

from quorumkv.errors import DiskFull
from quorumkv.invariant import invariant
from quorumkv.raft.types import SnapshotMeta
from quorumkv.storage import batch as ops
from quorumkv.storage import encoding
from quorumkv.storage.batch import OperationBatch
from quorumkv.storage.memory import MemoryLog, MemoryShardState, MemorySnapshotWriter, MemoryStore
from quorumkv.storage.protocols import WriteBatch
from quorumkv.storage.snapshot_stream import ChunkedSnapshotReader

SIMULATED_PATH = "<simulated disk>"


class RandomSource(Protocol):
    """The part of random.Random the faulty disk draws from."""

    def random(self) -> float: ...

    def randint(self, a: int, b: int) -> int: ...


class FaultyDiskStore:
    """A NodeStore over a simulated disk with crash, torn-write and disk-full faults."""

    def __init__(self, rng: RandomSource, torn_probability: float = 0.2,
                 disk_full_probability: float = 0.0, durable: MemoryStore | None = None) -> None:
        self._rng = rng
        self.torn_probability = torn_probability
        self.disk_full_probability = disk_full_probability
        self._durable = durable if durable is not None else MemoryStore()
        self._live = self._durable.copy()
        self._journal: list[bytes] = []  # records written since the last sync, in order
        self._failures_pending = 0
        self._crashed = False
        self.torn_records_dropped = 0  # by the recovery that built this store

    # ---- faults ----------------------------------------------------------------------------

    def fail_writes_next(self, count: int) -> None:
        """The next `count` writes raise errors.DiskFull (nothing applied)."""
        invariant(count >= 0, f"cannot fail {count} writes")
        self._failures_pending = count

    @property
    def unsynced_batches(self) -> int:
        """Batches written since the last sync: the ones a crash may lose."""
        return len(self._journal)

    def crash(self) -> FaultyDiskStore:
        """The store a fresh process finds after a crash now; this one is dead afterwards."""
        invariant(not self._crashed, "crash() of a store that already crashed")
        self._crashed = True
        reached = self._journal[:self._rng.randint(0, len(self._journal))]
        if reached and self._rng.random() < self.torn_probability:
            reached[-1] = self._tear(reached[-1])
        dropped = self._recover(reached)
        survivor = FaultyDiskStore(self._rng, self.torn_probability,
                                   self.disk_full_probability, self._durable)
        survivor.torn_records_dropped = dropped
        return survivor

    def _tear(self, record: bytes) -> bytes:
        """A partly written record: its tail cut off, or one byte changed."""
        if self._rng.random() < 0.5:
            return record[:self._rng.randint(0, len(record) - 1)]
        torn = bytearray(record)
        torn[self._rng.randint(0, len(torn) - 1)] ^= self._rng.randint(1, 255)
        return bytes(torn)

    def _recover(self, records: list[bytes]) -> int:
        """Replay verified records onto the durable state; returns how many were dropped."""
        for position, record in enumerate(records):
            try:
                operations = encoding.decode_batch(record)
            except encoding.RecordCorrupt:
                return len(records) - position
            self._replay(operations)
        return 0

    def _replay(self, operations: list[ops.Operation]) -> None:
        for operation in operations:
            self._durable.apply(operation)

    # ---- NodeStore -------------------------------------------------------------------------

    def batch(self) -> OperationBatch:
        return OperationBatch()

    def write(self, batch: WriteBatch, sync: bool) -> None:
        """Apply the batch; raises errors.DiskFull (nothing applied) when a fault says so."""
        invariant(not self._crashed, "write to a store that crashed; use the one crash() gave")
        if self._failures_pending > 0:
            self._failures_pending -= 1
            raise DiskFull(SIMULATED_PATH)
        if self.disk_full_probability and self._rng.random() < self.disk_full_probability:
            raise DiskFull(SIMULATED_PATH)
        operations = ops.operations_of(batch)
        record = encoding.encode_batch(operations)
        self._live.write(batch, sync)
        self._journal.append(record)
        if sync:
            for journaled in self._journal:
                self._replay(encoding.decode_batch(journaled))
            self._journal.clear()

    def put_meta(self, name: str, value: bytes) -> None:
        batch = self.batch()
        batch.put_meta(name, value)
        self.write(batch, sync=True)

    def get_meta(self, name: str) -> bytes | None:
        return self._live.get_meta(name)

    def log(self, shard_id: int) -> MemoryLog:
        return self._live.log(shard_id)

    def shard(self, shard_id: int) -> MemoryShardState:
        return self._live.shard(shard_id)

    def shard_ids(self) -> list[int]:
        return self._live.shard_ids()

    def open_snapshot(self, shard_id: int) -> ChunkedSnapshotReader:
        return self._live.open_snapshot(shard_id)

    def snapshot_writer(self, shard_id: int, meta: SnapshotMeta) -> MemorySnapshotWriter:
        return self._live.snapshot_writer(shard_id, meta)

    def close(self) -> None:
        self._live.close()
