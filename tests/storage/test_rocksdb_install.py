"""Installing a snapshot into RocksDB at the two dangerous moments: after the ingestion, before
the batch that switches the shard to the new generation (docs/storage.md, "Installing")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quorumkv.errors import DiskFull
from quorumkv.raft.types import ConfState, SnapshotMeta
from quorumkv.storage.memory import MemoryStore
from quorumkv.storage.rocksdb import RocksDBStore

OLD = SnapshotMeta(5, 1, ConfState(voters=(1,)))
NEW = SnapshotMeta(50, 3, ConfState(voters=(1, 2)))


def shard_with(store: Any, meta: SnapshotMeta, prefix: bytes, count: int) -> None:
    batch = store.batch()
    for number in range(count):
        batch.put(1, prefix + b"%04d" % number, prefix)
    batch.set_applied(1, meta)
    store.write(batch, sync=True)


def staged_image(target: RocksDBStore) -> Any:
    source = MemoryStore()
    shard_with(source, NEW, b"new-", 500)
    reader = source.open_snapshot(1)
    writer = target.snapshot_writer(1, reader.meta)
    while chunk := reader.read_chunk(4096):
        writer.write_chunk(chunk)
    return writer.finish()


@pytest.fixture
def target(tmp_path: Path) -> RocksDBStore:
    store = RocksDBStore(str(tmp_path / "node"))
    shard_with(store, OLD, b"old-", 300)
    return store


def failing_switch(store: RocksDBStore, error: Exception) -> None:
    """Make the next batch write fail after the ingestion (as a crash or a full disk would)."""
    real = store._write_raw

    def fail_once(batch: Any, sync: bool, doing: str) -> None:
        store._write_raw = real  # type: ignore[method-assign]
        raise error

    store._write_raw = fail_once  # type: ignore[method-assign]


class Crash(Exception):
    """Stands for the process dying at this point."""


def test_a_crash_between_ingestion_and_switch_keeps_the_old_state(target: RocksDBStore) -> None:
    """Ingested but not switched to: the old data and applied point stay, and the next open
    removes the ingested pairs."""
    image = staged_image(target)
    batch = target.batch()
    batch.install_snapshot(1, image)
    failing_switch(target, Crash())
    with pytest.raises(Crash):
        target.write(batch, sync=True)
    assert target.shard(1).applied() == OLD
    target.close()
    reopened = RocksDBStore(target.path)
    assert reopened.shard(1).applied() == OLD
    assert [k for k, _ in reopened.shard(1).scan(b"", None, 1000)] == [
        b"old-%04d" % number for number in range(300)]
    assert reopened._find_data_generations() == []  # the orphan generation was collected
    assert reopened.staged_files() == []
    reopened.close()


def test_an_install_refused_for_a_full_disk_succeeds_when_retried(target: RocksDBStore) -> None:
    """The host retries a batch after DiskFull: the same install then goes through whole."""
    image = staged_image(target)
    batch = target.batch()
    batch.install_snapshot(1, image)
    failing_switch(target, DiskFull(target.path))
    with pytest.raises(DiskFull):
        target.write(batch, sync=True)
    assert target.shard(1).applied() == OLD
    assert target.shard(1).get(b"new-0000") is None
    target.write(batch, sync=True)
    assert target.shard(1).applied() == NEW
    assert len(target.shard(1).scan(b"", None, 1000)) == 500
    assert target.staged_files() == []
    target.close()
    reopened = RocksDBStore(target.path)
    assert len(reopened.shard(1).scan(b"", None, 1000)) == 500
    assert reopened.shard(1).get(b"old-0000") is None
    reopened.close()


def test_a_staged_image_never_installed_can_be_discarded(target: RocksDBStore) -> None:
    """discard() removes the staged files of an image the host dropped."""
    image = staged_image(target)
    assert target.staged_files() != []
    image.discard()
    assert target.staged_files() == []
    target.close()
