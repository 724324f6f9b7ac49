"""The in-memory log tail of the RocksDB store (storage/log_tail.py) stays equal to the log."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from quorumkv.errors import DiskFull
from quorumkv.raft.types import ConfState, Entry, SnapshotMeta
from quorumkv.storage.log_tail import LogTail
from quorumkv.storage.memory import MemoryStore
from quorumkv.storage.rocksdb import RocksDBStore

SHARD = 1


def entry(index: int, term: int) -> Entry:
    return Entry(index=index, term=term, data=b"x" * (index % 7))


def stored_entries(store: RocksDBStore, low: int, high: int) -> list[Entry]:
    """What RocksDB itself holds, bypassing the tail."""
    return store.read_entries(SHARD, low, high, 1 << 62) if low < high else []


def check_tail_matches(store: RocksDBStore) -> None:
    log = store.log(SHARD)
    tail = store.tail(SHARD)
    first, last = log.first_index(), log.last_index()
    if len(tail):
        assert tail.first_index() >= first
        assert tail.first_index() + len(tail) - 1 == last
    for low in range(first, last + 1):
        for bytes_max in (0, 30, 1 << 62):
            assert log.entries(low, last + 1, bytes_max) == \
                store.read_entries(SHARD, low, last + 1, bytes_max)


def test_log_tail_serves_only_ranges_it_holds_whole() -> None:
    """A tail answers a read only when it holds every entry of it, and bounds it by bytes."""
    tail = LogTail(entries_max=5, bytes_max=1 << 20)
    tail.append([entry(index, 1) for index in range(1, 9)])
    assert tail.first_index() == 4 and len(tail) == 5
    assert tail.entries(3, 6, 1 << 20) is None
    assert tail.entries(8, 10, 1 << 20) is None
    assert [e.index for e in tail.entries(4, 9, 1 << 20) or []] == [4, 5, 6, 7, 8]
    assert [e.index for e in tail.entries(5, 9, 0) or []] == [5]
    tail.append([entry(6, 2)])  # truncates 6..8
    assert [(e.index, e.term) for e in tail.entries(4, 7, 1 << 20) or []] == \
        [(4, 1), (5, 1), (6, 2)]
    tail.compact(5)
    assert tail.entries(5, 7, 1 << 20) is None and len(tail) == 1
    tail.compact(100)
    assert len(tail) == 0 and tail.entries(6, 7, 1 << 20) is None


def test_log_tail_respects_its_byte_bound() -> None:
    """The oldest entries leave when the tail holds more bytes than its bound."""
    tail = LogTail(entries_max=1_000, bytes_max=1_000)
    tail.append([Entry(index=i, term=1, data=b"y" * 100) for i in range(1, 51)])
    assert 1 <= len(tail) <= 1_000 // 124 + 1
    assert tail.first_index() + len(tail) - 1 == 50


@pytest.mark.parametrize("seed", range(6))
def test_rocksdb_tail_equals_stored_log_through_appends_truncations_and_compactions(
        tmp_path: Path, seed: int) -> None:
    """After random appends (with truncations) and compactions, every read through the tail
    returns exactly what RocksDB holds, and a reopened store (empty tail) agrees."""
    store = RocksDBStore(str(tmp_path / "node"))
    store.tail(SHARD).entries_max = 12
    chooser = random.Random(seed)
    term, last, base = 1, 0, 0
    for _ in range(60):
        batch = store.batch()
        if chooser.random() < 0.15 and last > base:
            base = chooser.randint(base + 1, last)
            batch.compact_log(SHARD, SnapshotMeta(base, store.log(SHARD).term(base), ConfState()))
        else:
            start = chooser.randint(max(base + 1, last - 4), last + 1)
            term += chooser.random() < 0.3
            count = chooser.randint(1, 8)
            batch.append_entries(SHARD, [entry(i, term) for i in range(start, start + count)])
            last = start + count - 1
        store.write(batch, sync=False)
        check_tail_matches(store)
    expected = stored_entries(store, base + 1, last + 1)
    store.close()
    reopened = RocksDBStore(str(tmp_path / "node"))
    assert len(reopened.tail(SHARD)) == 0
    assert reopened.log(SHARD).entries(base + 1, last + 1, 1 << 62) == expected
    reopened.close()


def test_a_failed_write_leaves_the_tail_unchanged(tmp_path: Path) -> None:
    """A batch RocksDB refuses changes neither the log nor its tail."""
    store = RocksDBStore(str(tmp_path / "node"))
    batch = store.batch()
    batch.append_entries(SHARD, [entry(i, 1) for i in range(1, 6)])
    store.write(batch, sync=False)
    real = store._write_raw

    def refuse(raw: Any, sync: bool, doing: str) -> None:
        store._write_raw = real  # type: ignore[method-assign]
        raise DiskFull(store.path)

    store._write_raw = refuse  # type: ignore[method-assign]
    batch = store.batch()
    batch.append_entries(SHARD, [entry(i, 2) for i in range(3, 9)])
    with pytest.raises(DiskFull):
        store.write(batch, sync=False)
    store._disk_full = False
    assert [(e.index, e.term) for e in store.log(SHARD).entries(1, 6, 1 << 62)] == \
        [(i, 1) for i in range(1, 6)]
    check_tail_matches(store)
    store.close()


def test_install_and_drop_empty_the_tail(tmp_path: Path) -> None:
    """A snapshot install replaces the log, and a dropped shard has none: no entry is served
    from memory afterwards, and entries appended after the install are."""
    store = RocksDBStore(str(tmp_path / "node"))
    batch = store.batch()
    batch.append_entries(SHARD, [entry(i, 1) for i in range(1, 20)])
    store.write(batch, sync=False)
    source = MemoryStore()
    meta = SnapshotMeta(30, 2, ConfState(voters=(1,)))
    seed = source.batch()
    seed.put(SHARD, b"k", b"v")
    seed.set_applied(SHARD, meta)
    source.write(seed, sync=True)
    reader = source.open_snapshot(SHARD)
    writer = store.snapshot_writer(SHARD, reader.meta)
    while chunk := reader.read_chunk(4096):
        writer.write_chunk(chunk)
    batch = store.batch()
    batch.install_snapshot(SHARD, writer.finish())
    store.write(batch, sync=True)
    assert len(store.tail(SHARD)) == 0
    batch = store.batch()
    batch.append_entries(SHARD, [entry(i, 2) for i in range(31, 35)])
    store.write(batch, sync=False)
    assert store.tail(SHARD).first_index() == 31 and len(store.tail(SHARD)) == 4
    check_tail_matches(store)
    batch = store.batch()
    batch.drop_shard(SHARD)
    store.write(batch, sync=True)
    assert len(store.tail(SHARD)) == 0
    store.close()
