"""The simulator's faulty disk loses exactly what a real disk may lose, and nothing else."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumkv.errors import DiskFull
from quorumkv.raft.types import ConfState, Entry, HardState, SnapshotMeta
from quorumkv.storage import batch as ops
from quorumkv.storage import encoding
from quorumkv.storage.faulty_disk import FaultyDiskStore

KEYS_PER_BATCH = 4


def write_batches(store: FaultyDiskStore, syncs: list[bool]) -> None:
    """Batch i appends entry i + 1 and puts KEYS_PER_BATCH keys "i/j"; synced where syncs[i]."""
    for number, sync in enumerate(syncs):
        batch = store.batch()
        batch.append_entries(1, [Entry(1, number + 1, data=b"%d" % number)])
        for part in range(KEYS_PER_BATCH):
            batch.put(1, b"%d/%d" % (number, part), b"x" * 30)
        batch.set_applied(1, SnapshotMeta(number + 1, 1, ConfState(voters=(1,))))
        store.write(batch, sync=sync)


def surviving_batches(store: FaultyDiskStore, written: int) -> int:
    """How many batches survived, checking they form a prefix and none is partial."""
    present = [[store.shard(1).get(b"%d/%d" % (n, p)) is not None for p in range(KEYS_PER_BATCH)]
               for n in range(written)]
    for number, parts in enumerate(present):
        assert all(parts) or not any(parts), f"batch {number} survived partly: {parts}"
    whole = [all(parts) for parts in present]
    count = whole.count(True)
    assert whole == [True] * count + [False] * (written - count), "survivors are not a prefix"
    assert store.log(1).last_index() == count
    assert store.shard(1).applied().index == count
    return count


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32), syncs=st.lists(st.booleans(), max_size=30),
       torn=st.sampled_from([0.0, 0.5, 1.0]))
def test_a_crash_loses_only_an_unsynced_suffix_whole(seed: int, syncs: list[bool],
                                                     torn: float) -> None:
    """After a crash, the surviving batches are a prefix reaching at least the last sync."""
    store = FaultyDiskStore(random.Random(seed), torn_probability=torn)
    write_batches(store, syncs)
    last_synced = max((n + 1 for n, sync in enumerate(syncs) if sync), default=0)
    survivor = store.crash()
    assert last_synced <= surviving_batches(survivor, len(syncs)) <= len(syncs)


def test_torn_batches_are_detected_and_dropped() -> None:
    """With tearing certain, some crashes drop a torn record, and it is never half-applied."""
    dropped = 0
    for seed in range(100):
        store = FaultyDiskStore(random.Random(seed), torn_probability=1.0)
        write_batches(store, [True] + [False] * 6)
        survivor = store.crash()
        surviving_batches(survivor, 7)
        dropped += survivor.torn_records_dropped
    assert dropped > 50


def test_a_crash_right_after_a_sync_keeps_everything() -> None:
    """Nothing unsynced means nothing to lose: the crash image equals the live state."""
    store = FaultyDiskStore(random.Random(1), torn_probability=1.0)
    write_batches(store, [False, False, True])
    assert store.unsynced_batches == 0
    assert surviving_batches(store.crash(), 3) == 3


@pytest.mark.parametrize("seed", range(5))
def test_same_seed_same_crash(seed: int) -> None:
    """Two runs with the same seed survive the same crashes identically."""
    outcomes = []
    for _ in range(2):
        store = FaultyDiskStore(random.Random(seed), torn_probability=0.5)
        counts = []
        for _round in range(5):
            write_batches(store, [False] * 8)
            store = store.crash()
            counts.append(store.shard(1).applied().index)
            batch = store.batch()
            batch.drop_shard(1)
            store.write(batch, sync=True)
        outcomes.append(counts)
    assert outcomes[0] == outcomes[1]
    assert len(set(outcomes[0])) > 1  # the rng really chooses


def test_crashed_store_refuses_further_writes() -> None:
    """Using the dead store after crash() is a bug and says so."""
    store = FaultyDiskStore(random.Random(0))
    store.crash()
    with pytest.raises(AssertionError):
        write_batches(store, [True])


def test_injected_disk_full_applies_nothing_then_writes_resume() -> None:
    """fail_writes_next(n): n writes raise DiskFull with no effect; the next one succeeds."""
    store = FaultyDiskStore(random.Random(0))
    store.fail_writes_next(2)
    for _ in range(2):
        with pytest.raises(DiskFull):
            write_batches(store, [True])
        assert store.log(1).last_index() == 0 and store.shard_ids() == []
    write_batches(store, [True])
    assert surviving_batches(store.crash(), 1) == 1


def test_disk_full_probability_fails_some_writes_deterministically() -> None:
    """disk_full_probability makes a seeded share of writes fail, the rest apply."""
    store = FaultyDiskStore(random.Random(3), disk_full_probability=0.5)
    failures = 0
    for _ in range(40):
        batch = store.batch()
        batch.set_hard_state(1, HardState(1, 0, 0))
        try:
            store.write(batch, sync=True)
        except DiskFull:
            failures += 1
    assert 5 < failures < 35


def test_installed_images_survive_through_the_journal() -> None:
    """An install_snapshot batch journals its whole image and replays it after a crash."""
    source = FaultyDiskStore(random.Random(0))
    batch = source.batch()
    for number in range(20):
        batch.put(3, b"k%02d" % number, b"v")
    meta = SnapshotMeta(9, 2, ConfState(voters=(1, 2)))
    batch.set_applied(3, meta)
    source.write(batch, sync=True)
    reader = source.open_snapshot(3)
    target = FaultyDiskStore(random.Random(0))
    writer = target.snapshot_writer(3, reader.meta)
    while chunk := reader.read_chunk(100):
        writer.write_chunk(chunk)
    batch = target.batch()
    batch.install_snapshot(3, writer.finish())
    target.write(batch, sync=True)
    survivor = target.crash()
    assert survivor.shard(3).scan(b"", None, 100) == source.shard(3).scan(b"", None, 100)
    assert survivor.log(3).first_index() == 10 and survivor.shard(3).applied() == meta


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_damaged_batch_record_fails_its_checksum(data: st.DataObject) -> None:
    """A batch record with any byte changed, or cut short, never decodes."""
    operations: list[ops.Operation] = [
        ops.AppendEntries(1, (Entry(2, 5, data=b"abc"),)),
        ops.SetHardState(1, HardState(2, 1, 5)),
        ops.Put(1, b"k", b"v"),
        ops.SetApplied(1, SnapshotMeta(5, 2, ConfState(voters=(1, 2, 3)))),
        ops.PutMeta("node_id", b"\x01"),
    ]
    record = encoding.encode_batch(operations)
    assert encoding.decode_batch(record) == operations
    position = data.draw(st.integers(0, len(record) - 1))
    damaged = bytearray(record)
    damaged[position] ^= data.draw(st.integers(1, 255))
    for bad in (bytes(damaged), record[:position]):
        with pytest.raises(encoding.RecordCorrupt):
            encoding.decode_batch(bad)
