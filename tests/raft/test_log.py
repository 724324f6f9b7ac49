"""The Raft log (log.py, log_unstable.py) over a MemoryLog (memory_log.py)."""

from __future__ import annotations

import pytest

from quorumkv.errors import LogCompacted, LogUnavailable
from quorumkv.raft.log import RaftLog, limit_size
from quorumkv.raft.memory_log import MemoryLog
from quorumkv.raft.types import ConfState, Entry, SnapshotMeta


def entries(*terms: int, start: int = 1) -> list[Entry]:
    return [Entry(term, start + offset, data=b"d") for offset, term in enumerate(terms)]


def test_memory_log_append_replaces_conflicting_suffix() -> None:
    """MemoryLog.append overwrites entries from the first new index on."""
    log = MemoryLog()
    log.append(entries(1, 1, 1))
    log.append(entries(2, 2, start=2))
    assert [e.term for e in log.entries(1, 4, 1 << 30)] == [1, 2, 2]
    assert log.last_index() == 3


def test_memory_log_compaction_and_errors() -> None:
    """After compaction, terms below the compaction point raise LogCompacted and reads past
    the end raise LogUnavailable."""
    log = MemoryLog()
    log.append(entries(1, 1, 2, 2))
    log.compact(SnapshotMeta(2, 1, ConfState(voters=(1,))))
    assert log.first_index() == 3 and log.term(2) == 1
    with pytest.raises(LogCompacted):
        log.term(1)
    with pytest.raises(LogUnavailable):
        log.term(5)
    assert log.snapshot_meta().index == 2


def test_memory_log_apply_snapshot_resets_log() -> None:
    """Installing a snapshot empties the log and moves its start past the snapshot."""
    log = MemoryLog()
    log.append(entries(1, 1))
    meta = SnapshotMeta(10, 3, ConfState(voters=(1, 2)))
    log.apply_snapshot(meta)
    assert (log.first_index(), log.last_index()) == (11, 10)
    assert log.initial_state()[1] == ConfState(voters=(1, 2))


def test_raft_log_reads_across_stable_and_unstable() -> None:
    """Slices span persisted and unstable entries; unstable entries shadow persisted ones."""
    storage = MemoryLog()
    storage.append(entries(1, 1, 1))
    raft_log = RaftLog(storage, 1, 1 << 20)
    raft_log.append(entries(2, 2, start=3))  # replaces persisted 3
    assert raft_log.last_index() == 4
    assert [(e.term, e.index) for e in raft_log.slice(1, 5, 1 << 20)] == [(1, 1), (1, 2), (2, 3), (2, 4)]
    assert raft_log.term(3) == 2


def test_raft_log_maybe_append_consistency_check() -> None:
    """maybe_append refuses a mismatched predecessor and truncates a conflicting suffix."""
    storage = MemoryLog()
    storage.append(entries(1, 1, 1))
    raft_log = RaftLog(storage, 1, 1 << 20)
    assert raft_log.maybe_append(3, 2, 0, entries(2, start=4)) is None
    assert raft_log.maybe_append(1, 1, 2, entries(3, start=2)) == 2
    assert raft_log.last_index() == 2 and raft_log.committed == 2


def test_find_conflict_by_term() -> None:
    """find_conflict_by_term returns the last index at or before the given one whose term is
    at most the given term."""
    storage = MemoryLog()
    storage.append(entries(1, 1, 3, 3, 5))
    raft_log = RaftLog(storage, 1, 1 << 20)
    assert raft_log.find_conflict_by_term(5, 4) == (4, 3)
    assert raft_log.find_conflict_by_term(5, 2) == (2, 1)
    assert raft_log.find_conflict_by_term(5, 0) == (0, 0)


def test_unstable_in_progress_entries_handed_out_once() -> None:
    """Entries handed to the host are not handed again before advance; stable_to drops them."""
    raft_log = RaftLog(MemoryLog(), 1, 1 << 20)
    raft_log.append(entries(1, 1))
    unstable = raft_log.unstable
    assert len(unstable.next_entries()) == 2
    unstable.accept_in_progress()
    assert unstable.next_entries() == []
    raft_log.append(entries(1, start=3))
    assert [e.index for e in unstable.next_entries()] == [3]
    unstable.stable_to(2, 1)
    assert unstable.offset == 3


def test_limit_size_keeps_at_least_one_entry() -> None:
    """Byte bounds cut a batch but always keep one entry."""
    batch = entries(1, 1, 1)
    size = batch[0].size_bytes()
    assert len(limit_size(batch, 1)) == 1
    assert len(limit_size(batch, 2 * size)) == 2
    assert len(limit_size(batch, 10 * size)) == 3
