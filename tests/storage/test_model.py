"""Random batches applied to every store leave the same observable state (hypothesis).

The memory store is the model; the faulty disk and RocksDB (before and after a reopen) must
agree with it on every shard's log bounds, terms, entries, hard state, applied point and data.
"""

from __future__ import annotations

import random
import tempfile
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quorumkv.raft.types import ConfState, Entry, HardState, SnapshotMeta
from quorumkv.storage.faulty_disk import FaultyDiskStore
from quorumkv.storage.memory import MemoryStore
from quorumkv.storage.rocksdb import RocksDBStore

SHARDS = (1, 2)
KEYS = [b"", b"a", b"b", b"c\x00", b"\xff"]
CONF = ConfState(voters=(1,))

drawn_operation = st.one_of(
    st.tuples(st.just("append"), st.sampled_from(SHARDS), st.integers(0, 6), st.integers(1, 5),
              st.integers(0, 2)),
    st.tuples(st.just("compact"), st.sampled_from(SHARDS), st.integers(0, 12)),
    st.tuples(st.just("put"), st.sampled_from(SHARDS), st.sampled_from(KEYS),
              st.binary(max_size=8)),
    st.tuples(st.just("delete"), st.sampled_from(SHARDS), st.sampled_from(KEYS)),
    st.tuples(st.just("set_hard_state"), st.sampled_from(SHARDS), st.integers(0, 9)),
    st.tuples(st.just("set_applied"), st.sampled_from(SHARDS), st.integers(0, 9)),
    st.tuples(st.just("drop_shard"), st.sampled_from(SHARDS)),
)


class Planner:
    """Turns drawn operations into valid batch calls, tracking each shard's log as the Raft
    core would (appends never leave a gap, compaction never passes the end by accident)."""

    def __init__(self) -> None:
        self.terms: dict[int, dict[int, int]] = {}  # shard -> index -> term, base included
        self.base: dict[int, int] = {}

    def calls(self, drawn: tuple[Any, ...]) -> list[tuple[str, tuple[Any, ...]]]:
        kind, shard = drawn[0], drawn[1]
        terms = self.terms.setdefault(shard, {0: 0})
        base, last = self.base.get(shard, 0), max(terms)
        if kind == "append":
            back, count, term_step = drawn[2:]
            first = max(base + 1, last + 1 - back)
            term = terms[first - 1] + term_step if first - 1 in terms else term_step + 1
            term = max(term, max(terms.values()))
            for index in [i for i in terms if i >= first]:
                del terms[index]
            entries = [Entry(term, index, data=b"%d" % index) for index in range(first, first + count)]
            terms.update({entry.index: term for entry in entries})
            return [("append_entries", (shard, entries))]
        if kind == "compact":
            index = min(drawn[2], last)
            if index <= base:
                return []
            self.base[shard] = index
            meta = SnapshotMeta(index, terms[index], CONF)
            for gone in [i for i in terms if i < index]:
                del terms[gone]
            return [("compact_log", (shard, meta))]
        if kind == "put":
            return [("put", (shard, drawn[2], drawn[3]))]
        if kind == "delete":
            return [("delete", (shard, drawn[2]))]
        if kind == "set_hard_state":
            return [("set_hard_state", (shard, HardState(drawn[2], 1, drawn[2])))]
        if kind == "set_applied":
            return [("set_applied", (shard, SnapshotMeta(drawn[2], 1, CONF)))]
        self.terms.pop(shard, None)
        self.base.pop(shard, None)
        return [("drop_shard", (shard,))]


def observe(store: Any) -> dict[int, tuple[Any, ...]]:
    seen = {}
    for shard in SHARDS:
        log = store.log(shard)
        first, last = log.first_index(), log.last_index()
        seen[shard] = (first, last, [log.term(i) for i in range(first - 1, last + 1)],
                       log.entries(first, last + 1, 10**9), log.hard_state(),
                       store.shard(shard).applied(), store.shard(shard).scan(b"", None, 100))
    return seen


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(drawn_operation, min_size=1, max_size=6), min_size=1,
                        max_size=8))
def test_every_store_agrees_with_the_memory_model(batches: list[list[tuple[Any, ...]]]) -> None:
    """Same batches, same state: memory, faulty disk, RocksDB and RocksDB reopened."""
    planner = Planner()
    with tempfile.TemporaryDirectory() as directory:
        stores: list[Any] = [MemoryStore(), FaultyDiskStore(random.Random(0), 0.0),
                             RocksDBStore(directory + "/db")]
        for drawn_batch in batches:
            calls = [call for drawn in drawn_batch for call in planner.calls(drawn)]
            for store in stores:
                batch = store.batch()
                for name, arguments in calls:
                    getattr(batch, name)(*arguments)
                store.write(batch, sync=False)  # close() below persists RocksDB anyway
        expected = observe(stores[0])
        assert observe(stores[1]) == expected
        assert observe(stores[2]) == expected
        assert stores[2].shard_ids() == stores[0].shard_ids()
        stores[2].close()
        reopened = RocksDBStore(directory + "/db")
        assert observe(reopened) == expected
        reopened.close()
