"""The storage conformance suite: one set of rules, every NodeStore implementation.

Each test runs against the memory store, the faulty disk (no faults) and RocksDB in tmp_path
(conftest.py). Snapshot round trips run across every pair of implementations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from quorumkv.errors import LogCompacted, LogUnavailable, SnapshotCorrupt
from quorumkv.raft.types import ConfState, Entry, EntryType, HardState, SnapshotMeta
from quorumkv.storage.protocols import NodeStore, iterate_scan

from .conftest import StoreFactory

VOTERS = ConfState(voters=(1, 2, 3))


def bootstrap(store: NodeStore, shard_id: int, conf: ConfState = VOTERS) -> SnapshotMeta:
    meta = SnapshotMeta(0, 0, conf)
    batch = store.batch()
    batch.compact_log(shard_id, meta)
    batch.set_applied(shard_id, meta)
    store.write(batch, sync=True)
    return meta


def entries(first: int, last: int, term: int, size: int = 8) -> list[Entry]:
    return [Entry(term, index, EntryType.NORMAL, bytes([index % 251]) * size)
            for index in range(first, last + 1)]


def append(store: NodeStore, shard_id: int, new: list[Entry], sync: bool = True) -> None:
    batch = store.batch()
    batch.append_entries(shard_id, new)
    store.write(batch, sync=sync)


def write(store: NodeStore, sync: bool = True, **changes: Any) -> None:
    """One batch of puts to shard 1: write(store, a=b"1")."""
    batch = store.batch()
    for key, value in changes.items():
        batch.put(1, key.encode(), value)
    store.write(batch, sync=sync)


def before_and_after_reopen(stores: StoreFactory, store: Any) -> Iterator[Any]:
    """The store, then (once the caller is done with it) the store reopened."""
    yield store
    yield stores.reopen(store)


def transfer(source: NodeStore, target: NodeStore, shard_id: int, chunk_bytes: int = 64) -> Any:
    reader = source.open_snapshot(shard_id)
    writer = target.snapshot_writer(shard_id, reader.meta)
    while chunk := reader.read_chunk(chunk_bytes):
        writer.write_chunk(chunk)
    reader.close()
    return writer.finish()


# ---- the log --------------------------------------------------------------------------------


def test_empty_shard_has_an_empty_log_at_zero(stores: StoreFactory) -> None:
    """A shard never written has first index 1, last index 0, term(0) = 0 and no state."""
    store = stores.make()
    log = store.log(5)
    assert (log.first_index(), log.last_index(), log.term(0)) == (1, 0, 0)
    assert log.hard_state() == HardState()
    assert log.entries(1, 1, 100) == []
    with pytest.raises(LogUnavailable):
        log.term(1)
    assert store.shard(5).applied() == SnapshotMeta(0, 0, ConfState())
    assert store.shard_ids() == []


def test_bootstrap_sets_base_applied_point_and_membership(stores: StoreFactory) -> None:
    """Bootstrap (compact to (0, 0) plus set_applied) gives the membership to initial_state."""
    store = stores.make()
    meta = bootstrap(store, 3)
    log = store.log(3)
    assert log.initial_state() == (HardState(), VOTERS)
    assert log.snapshot_meta() == meta
    assert (log.first_index(), log.last_index(), log.term(0)) == (1, 0, 0)
    assert store.shard_ids() == [3]


def test_bootstrap_at_a_later_point_starts_the_log_after_it(stores: StoreFactory) -> None:
    """A founding replica's log compacted to (1, 1) starts at 2 and keeps term(1) = 1."""
    store = stores.make()
    meta = SnapshotMeta(1, 1, VOTERS)
    batch = store.batch()
    batch.compact_log(4, meta)
    batch.set_applied(4, meta)
    batch.set_hard_state(4, HardState(1, 0, 1))
    store.write(batch, sync=True)
    append(store, 4, entries(2, 3, 1))
    for current in before_and_after_reopen(stores, store):
        log = current.log(4)
        assert (log.first_index(), log.last_index(), log.term(1)) == (2, 3, 1)
        assert log.initial_state() == (HardState(1, 0, 1), VOTERS)
        assert log.entries(2, 4, 10**9) == entries(2, 3, 1)


def test_appended_entries_read_back_with_terms(stores: StoreFactory) -> None:
    """Appended entries are visible at once, with their terms, across several appends."""
    store = stores.make()
    bootstrap(store, 1)
    append(store, 1, entries(1, 5, 1))
    append(store, 1, entries(6, 9, 2), sync=False)
    log = store.log(1)
    assert log.last_index() == 9
    assert log.entries(1, 10, 10**9) == entries(1, 5, 1) + entries(6, 9, 2)
    assert [log.term(i) for i in range(0, 10)] == [0, 1, 1, 1, 1, 1, 2, 2, 2, 2]
    assert log.entries(3, 5, 10**9) == entries(3, 4, 1)


def test_append_replaces_the_conflicting_suffix(stores: StoreFactory) -> None:
    """Appending at index i replaces entries from i on, including those past the new end."""
    store = stores.make()
    bootstrap(store, 1)
    append(store, 1, entries(1, 10, 1))
    append(store, 1, entries(5, 6, 2))
    log = store.log(1)
    assert log.last_index() == 6
    assert log.entries(1, 7, 10**9) == entries(1, 4, 1) + entries(5, 6, 2)
    with pytest.raises(LogUnavailable):
        log.term(7)
    with pytest.raises(LogUnavailable):
        log.entries(5, 8, 10**9)
    append(store, 1, entries(7, 8, 3))
    assert log.entries(5, 9, 10**9) == entries(5, 6, 2) + entries(7, 8, 3)
    reopened = stores.reopen(store)
    assert reopened.log(1).entries(1, 9, 10**9) == entries(1, 4, 1) + entries(5, 6, 2) + entries(7, 8, 3)
    assert reopened.log(1).last_index() == 8


def test_entries_are_bounded_by_bytes_but_never_empty(stores: StoreFactory) -> None:
    """A range read stops before exceeding bytes_max, and returns at least one entry."""
    store = stores.make()
    bootstrap(store, 1)
    append(store, 1, entries(1, 10, 1, size=100))  # each counts 124 bytes
    log = store.log(1)
    assert len(log.entries(1, 11, 124 * 3)) == 3
    assert len(log.entries(1, 11, 124 * 3 + 100)) == 3
    assert log.entries(4, 11, 1) == entries(4, 4, 1, size=100)
    assert len(log.entries(1, 11, 10**9)) == 10


def test_compaction_moves_the_base(stores: StoreFactory) -> None:
    """Compacting to i drops entries up to i; term(i) stays readable, below it LogCompacted."""
    store = stores.make()
    bootstrap(store, 1)
    append(store, 1, entries(1, 4, 1) + entries(5, 10, 2))
    batch = store.batch()
    batch.compact_log(1, SnapshotMeta(6, 2, VOTERS))
    store.write(batch, sync=True)
    log = store.log(1)
    assert (log.first_index(), log.last_index(), log.term(6)) == (7, 10, 2)
    with pytest.raises(LogCompacted):
        log.term(5)
    with pytest.raises(LogCompacted):
        log.entries(6, 8, 10**9)
    assert log.entries(7, 11, 10**9) == entries(7, 10, 2)
    reopened = stores.reopen(store).log(1)
    assert (reopened.first_index(), reopened.last_index(), reopened.term(6)) == (7, 10, 2)
    with pytest.raises(LogCompacted):
        reopened.term(5)


def test_compaction_past_the_end_empties_the_log(stores: StoreFactory) -> None:
    """Compacting beyond the last entry leaves an empty log based at the compaction point."""
    store = stores.make()
    bootstrap(store, 1)
    append(store, 1, entries(1, 3, 1))
    batch = store.batch()
    batch.compact_log(1, SnapshotMeta(20, 4, VOTERS))
    store.write(batch, sync=True)
    log = store.log(1)
    assert (log.first_index(), log.last_index(), log.term(20)) == (21, 20, 4)
    append(store, 1, entries(21, 22, 4))
    assert stores.reopen(store).log(1).entries(21, 23, 10**9) == entries(21, 22, 4)


def test_out_of_range_reads_raise_typed_errors(stores: StoreFactory) -> None:
    """Reads past the end raise LogUnavailable; below the base, LogCompacted."""
    store = stores.make()
    bootstrap(store, 1)
    append(store, 1, entries(1, 5, 1))
    log = store.log(1)
    with pytest.raises(LogUnavailable):
        log.entries(4, 7, 10**9)
    with pytest.raises(LogUnavailable):
        log.term(6)
    with pytest.raises(LogCompacted):
        log.entries(0, 2, 10**9)
    with pytest.raises(LogCompacted):
        log.term(-1)


def test_one_batch_can_append_compact_and_append_again(stores: StoreFactory) -> None:
    """Operations of one batch apply in order, each seeing the previous ones."""
    store = stores.make()
    bootstrap(store, 1)
    batch = store.batch()
    batch.append_entries(1, entries(1, 6, 1))
    batch.compact_log(1, SnapshotMeta(3, 1, VOTERS))
    batch.append_entries(1, entries(5, 8, 2))
    store.write(batch, sync=True)
    for _ in range(2):
        log = store.log(1)
        assert (log.first_index(), log.last_index()) == (4, 8)
        assert log.entries(4, 9, 10**9) == entries(4, 4, 1) + entries(5, 8, 2)
        store = stores.reopen(store)


def test_hard_state_is_kept_per_shard(stores: StoreFactory) -> None:
    """set_hard_state is read back per shard, and initial_state pairs it with the membership."""
    store = stores.make()
    bootstrap(store, 1)
    bootstrap(store, 2, ConfState(voters=(4,)))
    batch = store.batch()
    batch.set_hard_state(1, HardState(3, 2, 7))
    batch.set_hard_state(2, HardState(1, 4, 0))
    store.write(batch, sync=True)
    store = stores.reopen(store)
    assert store.log(1).hard_state() == HardState(3, 2, 7)
    assert store.log(2).initial_state() == (HardState(1, 4, 0), ConfState(voters=(4,)))


def test_entry_types_and_empty_data_round_trip(stores: StoreFactory) -> None:
    """Conf-change entries and empty no-op entries read back exactly."""
    store = stores.make()
    bootstrap(store, 1)
    new = [Entry(1, 1), Entry(1, 2, EntryType.CONF_CHANGE, b"\x00conf"), Entry(2, 3, data=b"x" * 5000)]
    append(store, 1, new)
    assert stores.reopen(store).log(1).entries(1, 4, 10**9) == new


# ---- data and applied point -----------------------------------------------------------------


def test_data_put_delete_scan_are_isolated_per_shard(stores: StoreFactory) -> None:
    """Keys of one shard never show in another; scans honour start, end and limit."""
    store = stores.make()
    batch = store.batch()
    for key in (b"a", b"b", b"c", b"d"):
        batch.put(1, key, b"one-" + key)
        batch.put(2, key, b"two-" + key)
    batch.put(1, b"\xff\xff", b"high")
    batch.delete(2, b"b")
    store.write(batch, sync=True)
    for current in before_and_after_reopen(stores, store):
        one, two = current.shard(1), current.shard(2)
        assert one.get(b"a") == b"one-a" and two.get(b"a") == b"two-a"
        assert two.get(b"b") is None and current.shard(3).get(b"a") is None
        assert one.scan(b"b", b"d", 10) == [(b"b", b"one-b"), (b"c", b"one-c")]
        assert one.scan(b"", None, 2) == [(b"a", b"one-a"), (b"b", b"one-b")]
        assert [k for k, _ in two.scan(b"", None, 100)] == [b"a", b"c", b"d"]
        assert one.scan(b"c", None, 100)[-1] == (b"\xff\xff", b"high")
        assert len(list(iterate_scan(one, b"", None, 2))) == 5
        store = current


def test_overwrite_and_delete_of_missing_key(stores: StoreFactory) -> None:
    """A put overwrites; deleting a missing key is harmless."""
    store = stores.make()
    write(store, k=b"1")
    write(store, k=b"2")
    batch = store.batch()
    batch.delete(1, b"missing")
    store.write(batch, sync=True)
    assert store.shard(1).get(b"k") == b"2"
    assert store.shard(1).scan(b"", None, 10) == [(b"k", b"2")]


def test_applied_point_is_written_with_its_effects(stores: StoreFactory) -> None:
    """The applied point and the data it covers land in the same batch and survive reopen."""
    store = stores.make()
    bootstrap(store, 1)
    meta = SnapshotMeta(5, 2, ConfState(voters=(1, 2), learners=(9,)))
    batch = store.batch()
    batch.put(1, b"k", b"v")
    batch.set_applied(1, meta)
    store.write(batch, sync=True)
    store = stores.reopen(store)
    assert store.shard(1).applied() == meta
    assert store.log(1).snapshot_meta() == meta
    assert store.log(1).initial_state()[1] == meta.conf_state
    assert store.shard(1).get(b"k") == b"v"


def test_a_batch_is_invisible_until_written_then_whole(stores: StoreFactory) -> None:
    """Nothing of a batch shows before write; after it, every shard's part shows."""
    store = stores.make()
    bootstrap(store, 1)
    bootstrap(store, 2)
    batch = store.batch()
    batch.append_entries(1, entries(1, 3, 1))
    batch.append_entries(2, entries(1, 2, 1))
    batch.set_hard_state(2, HardState(1, 1, 2))
    batch.put(1, b"k", b"v")
    batch.set_applied(2, SnapshotMeta(2, 1, VOTERS))
    assert store.log(1).last_index() == 0 and store.shard(1).get(b"k") is None
    store.write(batch, sync=False)
    assert store.log(1).last_index() == 3 and store.log(2).last_index() == 2
    assert store.log(2).hard_state() == HardState(1, 1, 2)
    assert store.shard(1).get(b"k") == b"v"
    assert store.shard(2).applied().index == 2


def test_drop_shard_removes_every_trace_and_nothing_else(stores: StoreFactory) -> None:
    """drop_shard erases data, log, hard state and applied point of one shard only."""
    store = stores.make()
    for shard_id in (1, 2):
        bootstrap(store, shard_id)
        append(store, shard_id, entries(1, 4, 1))
        batch = store.batch()
        batch.put(shard_id, b"k", b"v")
        batch.set_hard_state(shard_id, HardState(1, 1, 4))
        batch.set_applied(shard_id, SnapshotMeta(4, 1, VOTERS))
        store.write(batch, sync=True)
    batch = store.batch()
    batch.drop_shard(1)
    store.write(batch, sync=True)
    for current in before_and_after_reopen(stores, store):
        assert current.shard_ids() == [2]
        log = current.log(1)
        assert (log.first_index(), log.last_index(), log.hard_state()) == (1, 0, HardState())
        assert current.shard(1).get(b"k") is None
        assert current.shard(1).applied() == SnapshotMeta(0, 0, ConfState())
        assert current.log(2).last_index() == 4 and current.shard(2).get(b"k") == b"v"
        store = current
    bootstrap(store, 1)
    append(store, 1, entries(1, 1, 5))
    assert store.log(1).entries(1, 2, 100) == entries(1, 1, 5)


def test_views_follow_later_writes(stores: StoreFactory) -> None:
    """A log or shard view taken early reflects every later write, drop and install."""
    store = stores.make()
    log, shard = store.log(1), store.shard(1)
    bootstrap(store, 1)
    append(store, 1, entries(1, 2, 1))
    write(store, k=b"v")
    assert log.last_index() == 2 and shard.get(b"k") == b"v"
    batch = store.batch()
    batch.drop_shard(1)
    store.write(batch, sync=True)
    assert log.last_index() == 0 and shard.get(b"k") is None


def test_node_metadata_survives_reopen(stores: StoreFactory) -> None:
    """put_meta is durable and get_meta reads it back; unknown names are None."""
    store = stores.make()
    store.put_meta("node_id", b"\x07")
    store = stores.reopen(store)
    assert store.get_meta("node_id") == b"\x07"
    assert store.get_meta("cluster_id") is None


def test_synced_writes_survive_reopen(stores: StoreFactory) -> None:
    """Everything written up to and including a synced batch is there after a restart."""
    store = stores.make()
    bootstrap(store, 1)
    append(store, 1, entries(1, 3, 1), sync=False)
    write(store, sync=False, a=b"1")
    batch = store.batch()
    batch.append_entries(1, entries(4, 5, 1))
    batch.set_hard_state(1, HardState(1, 1, 5))
    batch.set_applied(1, SnapshotMeta(5, 1, VOTERS))
    store.write(batch, sync=True)
    store = stores.reopen(store)
    assert store.log(1).entries(1, 6, 10**9) == entries(1, 5, 1)
    assert store.log(1).hard_state() == HardState(1, 1, 5)
    assert store.shard(1).get(b"a") == b"1"
    assert store.shard(1).applied().index == 5


# ---- snapshots ----------------------------------------------------------------------------


def fill_shard(store: NodeStore, shard_id: int, count: int, applied: int = 40) -> SnapshotMeta:
    bootstrap(store, shard_id)
    append(store, shard_id, entries(1, applied, 3))
    meta = SnapshotMeta(applied, 3, ConfState(voters=(1, 2, 3), learners=(4,)))
    batch = store.batch()
    for number in range(count):
        batch.put(shard_id, b"key-%05d" % number, b"value-%d" % number * 3)
    batch.set_applied(shard_id, meta)
    store.write(batch, sync=True)
    return meta


def test_snapshot_round_trip_between_any_two_stores(stores: StoreFactory,
                                                    other_stores: StoreFactory) -> None:
    """An image streamed from one store installs into another: data, log base, applied."""
    source, target = stores.make(), other_stores.make()
    meta = fill_shard(source, 7, 300)
    bootstrap(target, 7)
    append(target, 7, entries(1, 3, 1))
    batch = target.batch()
    batch.put(7, b"stale", b"gone after install")
    batch.set_hard_state(7, HardState(3, 1, 3))
    batch.put(8, b"other shard", b"kept")
    target.write(batch, sync=True)
    image = transfer(source, target, 7, chunk_bytes=512)
    assert image.meta == meta and image.shard_id == 7
    batch = target.batch()
    batch.install_snapshot(7, image)
    target.write(batch, sync=True)
    for current in before_and_after_reopen(other_stores, target):
        rows = current.shard(7).scan(b"", None, 1000)
        assert rows == source.shard(7).scan(b"", None, 1000) and len(rows) == 300
        log = current.log(7)
        assert (log.first_index(), log.last_index(), log.term(40)) == (41, 40, 3)
        assert log.snapshot_meta() == meta and log.initial_state() == (HardState(3, 1, 3), meta.conf_state)
        assert current.shard(8).get(b"other shard") == b"kept"
        target = current
    append(target, 7, entries(41, 42, 4))
    assert target.log(7).entries(41, 43, 10**9) == entries(41, 42, 4)


def test_install_of_an_empty_image_clears_the_shard(stores: StoreFactory) -> None:
    """An image with no pairs installs: the shard's old data is gone."""
    source, target = stores.make(), stores.make()
    meta = bootstrap(source, 2)
    write(target, x=b"old")
    batch = target.batch()
    batch.put(2, b"old", b"value")
    target.write(batch, sync=True)
    image = transfer(source, target, 2)
    batch = target.batch()
    batch.install_snapshot(2, image)
    target.write(batch, sync=True)
    assert target.shard(2).scan(b"", None, 10) == []
    assert target.shard(2).applied() == meta
    assert target.shard(1).get(b"x") == b"old"


def test_snapshot_reader_sees_the_state_when_opened(stores: StoreFactory) -> None:
    """Writes after open_snapshot do not leak into the image being streamed."""
    store, target = stores.make(), stores.make()
    meta = fill_shard(store, 1, 50)
    reader = store.open_snapshot(1)
    batch = store.batch()
    batch.put(1, b"key-00000", b"changed")
    batch.put(1, b"new", b"added")
    batch.set_applied(1, SnapshotMeta(41, 3, meta.conf_state))
    store.write(batch, sync=True)
    assert reader.meta == meta
    writer = target.snapshot_writer(1, meta)
    while chunk := reader.read_chunk(100):
        writer.write_chunk(chunk)
    reader.close()
    image = writer.finish()
    batch = target.batch()
    batch.install_snapshot(1, image)
    target.write(batch, sync=True)
    assert target.shard(1).get(b"key-00000") == b"value-0" * 3
    assert target.shard(1).get(b"new") is None


def chunks_of(store: NodeStore, shard_id: int, chunk_bytes: int = 200) -> tuple[SnapshotMeta, list[bytes]]:
    reader = store.open_snapshot(shard_id)
    found = []
    while chunk := reader.read_chunk(chunk_bytes):
        found.append(chunk)
    reader.close()
    return reader.meta, found


def flip(chunk: bytes, position: int) -> bytes:
    changed = bytearray(chunk)
    changed[position] ^= 0x40
    return bytes(changed)


@pytest.mark.parametrize("damage", ["flipped payload byte", "flipped header byte", "truncated",
                                    "out of order", "duplicate", "missing end", "wrong meta",
                                    "wrong shard"])
def test_a_damaged_stream_is_rejected_and_leaves_nothing(stores: StoreFactory, damage: str) -> None:
    """Every kind of damaged stream raises SnapshotCorrupt; after abort nothing is staged."""
    source, target = stores.make(), stores.make()
    fill_shard(source, 1, 60)
    meta, chunks = chunks_of(source, 1)
    assert len(chunks) > 4
    shard_id = 1
    if damage == "flipped payload byte":
        chunks[2] = flip(chunks[2], len(chunks[2]) - 3)
    elif damage == "flipped header byte":
        chunks[2] = flip(chunks[2], 9)
    elif damage == "truncated":
        chunks[2] = chunks[2][:-1]
    elif damage == "out of order":
        chunks[2], chunks[3] = chunks[3], chunks[2]
    elif damage == "duplicate":
        chunks.insert(3, chunks[2])
    elif damage == "missing end":
        chunks.pop()
    elif damage == "wrong meta":
        meta = SnapshotMeta(meta.index + 1, meta.term, meta.conf_state)
    else:
        shard_id = 2
    writer = target.snapshot_writer(shard_id, meta)
    with pytest.raises(SnapshotCorrupt):
        for chunk in chunks:
            writer.write_chunk(chunk)
        writer.finish()
    writer.abort()
    assert target.shard_ids() == []
    assert staging_leftovers(target) == []


def staging_leftovers(store: Any) -> list[str]:
    """Files a store staged for snapshots and still holds (RocksDB only)."""
    listing = getattr(store, "staged_files", None)
    return listing() if listing is not None else []


def test_chunks_respect_the_bound_and_keys_of_any_size_pass(stores: StoreFactory) -> None:
    """Chunks stay near bytes_max; a pair larger than the bound still travels alone."""
    source, target = stores.make(), stores.make()
    bootstrap(source, 1)
    batch = source.batch()
    batch.put(1, b"big", b"B" * 5000)
    for number in range(100):
        batch.put(1, b"small-%03d" % number, b"s" * 20)
    batch.put(1, b"", b"empty key")
    batch.put(1, b"\x00", b"")
    source.write(batch, sync=True)
    meta, chunks = chunks_of(source, 1, chunk_bytes=300)
    assert all(len(chunk) <= 300 for chunk in chunks if b"B" * 5000 not in chunk)
    writer = target.snapshot_writer(1, meta)
    for chunk in chunks:
        writer.write_chunk(chunk)
    batch = target.batch()
    batch.install_snapshot(1, writer.finish())
    target.write(batch, sync=True)
    assert target.shard(1).scan(b"", None, 1000) == source.shard(1).scan(b"", None, 1000)
    assert target.shard(1).get(b"\x00") == b""


def test_writes_in_the_install_batch_after_the_image_are_kept(stores: StoreFactory) -> None:
    """Operations after install_snapshot in the same batch apply on top of the image."""
    source, target = stores.make(), stores.make()
    meta = fill_shard(source, 1, 5)
    image = transfer(source, target, 1)
    batch = target.batch()
    batch.put(1, b"before", b"lost")
    batch.install_snapshot(1, image)
    batch.put(1, b"after", b"kept")
    batch.append_entries(1, entries(meta.index + 1, meta.index + 2, 5))
    target.write(batch, sync=True)
    target = stores.reopen(target)
    assert target.shard(1).get(b"before") is None and target.shard(1).get(b"after") == b"kept"
    assert target.log(1).last_index() == meta.index + 2
