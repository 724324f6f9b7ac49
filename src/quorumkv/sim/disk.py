"""The simulated disks: one NodeStore per node, and what a crash leaves of it.

`memory` (the default) gives every node a FaultyDiskStore: a crash keeps every synced batch
and the ones before it, loses a suffix of the unsynced ones, and may tear the last survivor,
which its checksum then drops whole (storage/faulty_disk.py). Each node's disk draws from its
own child Random of the seed.

`rocksdb` gives every node a RocksDBStore in a temporary directory: a crash closes it and opens
it again (a process crash keeps what RocksDB wrote; nothing is torn). Slower, used to run the
simulator's schedules against the production store.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

from quorumkv.invariant import invariant
from quorumkv.storage.faulty_disk import FaultyDiskStore
from quorumkv.storage.protocols import NodeStore


class Disks:
    """Creates and crashes the stores of one run's nodes."""

    def __init__(self, kind: str, rng: random.Random, torn_write_rate: float) -> None:
        invariant(kind in ("memory", "rocksdb"), f"unknown disk kind {kind!r}")
        self.kind = kind
        self._rng = rng
        self._torn_write_rate = torn_write_rate
        self._directory: Path | None = None
        self.torn_batches = 0  # records a recovery dropped for a failed checksum
        self.unsynced_at_crash = 0  # batches at risk when crashes struck

    def create(self, node_id: int) -> NodeStore:
        """A fresh, empty store for a node that has never run."""
        if self.kind == "memory":
            disk_rng = random.Random(self._rng.getrandbits(64))
            return FaultyDiskStore(disk_rng, torn_probability=self._torn_write_rate)
        return self._open_rocksdb(node_id)

    def crash(self, node_id: int, store: NodeStore) -> NodeStore:
        """The store as the node finds it when it starts again after a crash."""
        if isinstance(store, FaultyDiskStore):
            unsynced = store.unsynced_batches
            recovered = store.crash()
            self.unsynced_at_crash += unsynced
            self.torn_batches += recovered.torn_records_dropped
            return recovered
        store.close()
        return self._open_rocksdb(node_id)

    def fail_writes(self, store: NodeStore, count: int) -> bool:
        """Make the store's next `count` writes fail with DiskFull; False if it cannot."""
        if not isinstance(store, FaultyDiskStore):
            return False
        store.fail_writes_next(count)
        return True

    def _open_rocksdb(self, node_id: int) -> NodeStore:
        from quorumkv.storage.rocksdb import RocksDBStore  # only when asked: it opens files

        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="quorumkv-sim-"))
        return RocksDBStore(str(self._directory / f"node-{node_id}"))

    def close(self, stores: list[NodeStore]) -> None:
        """Close every store and remove temporary directories."""
        for store in stores:
            store.close()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
