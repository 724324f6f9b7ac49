"""One replica's Raft log as the core sees it: persisted entries, unstable ones, and the cursors.

The log is the persisted part (read through the host's LogReader) followed by the unstable part
(held in memory until the host persists it; log_unstable.py). Lookups try the unstable part
first, which lets new entries shadow a persisted suffix they replace.

Cursors, always `applied <= applying <= committed <= last_index()`:
- `committed`: highest index known to be committed (paper's commitIndex);
- `applying`: highest index handed to the host for applying in a Ready;
- `applied`: highest index the host has applied (acknowledged by advance).

The consistency check of AppendEntries (paper §5.3) is `maybe_append`: accept entries only if
the log holds the entry preceding them with the same term, then drop any conflicting suffix.
`find_conflict_by_term` serves the fast back-off: it finds the last index whose term is at most
a given term, so the leader can skip a whole term of divergent entries per round trip.
"""

from __future__ import annotations

from operator import attrgetter

from quorumkv.errors import LogCompacted, LogUnavailable
from quorumkv.invariant import InvariantViolation, invariant
from quorumkv.raft.log_reader import LogReader
from quorumkv.raft.log_unstable import UnstableLog
from quorumkv.raft.types import Entry, EntryType, SnapshotMeta


class RaftLog:
    """The persisted log (via LogReader), the unstable log, and the commit/apply cursors."""

    __slots__ = (
        "storage",
        "unstable",
        "committed",
        "applying",
        "applied",
        "group_id",
        "committed_entries_bytes_max",
    )

    def __init__(self, storage: LogReader, group_id: int, committed_entries_bytes_max: int) -> None:
        self.storage = storage
        self.group_id = group_id
        self.committed_entries_bytes_max = committed_entries_bytes_max
        self.unstable = UnstableLog(storage.last_index() + 1)
        base = storage.first_index() - 1
        self.committed = base
        self.applying = base
        self.applied = base

    # ---- bounds and terms -------------------------------------------------------------------

    def first_index(self) -> int:
        first = self.unstable.maybe_first_index()
        return first if first is not None else self.storage.first_index()

    def last_index(self) -> int:
        unstable = self.unstable
        if unstable.entries:
            return unstable.offset + len(unstable.entries) - 1
        if unstable.snapshot is not None:
            return unstable.snapshot.index
        return self.storage.last_index()

    def term(self, index: int) -> int:
        """Term of the entry at `index`, valid from first_index() - 1 to last_index().

        Raises LogCompacted below that range and LogUnavailable above it."""
        term = self.unstable.maybe_term(index)
        if term is not None:
            return term
        first = self.first_index()
        if index < first - 1:
            raise LogCompacted(self.group_id, index, first)
        last = self.last_index()
        if index > last:
            raise LogUnavailable(self.group_id, index, last)
        return self.storage.term(index)

    def term_or_zero(self, index: int) -> int:
        """Term of `index`, or 0 if it is outside the log (compacted or not yet there)."""
        try:
            return self.term(index)
        except (LogCompacted, LogUnavailable):
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        """True if the log holds an entry at `index` with `term`."""
        try:
            return self.term(index) == term
        except (LogCompacted, LogUnavailable):
            return False

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Election restriction (paper §5.4.1): is a log ending at (last_term, last_index) at
        least as up to date as this one?"""
        our_term = self.last_term()
        return last_term > our_term or (last_term == our_term and last_index >= self.last_index())

    # ---- appending --------------------------------------------------------------------------

    def maybe_append(
        self, index: int, log_term: int, committed: int, entries: list[Entry]
    ) -> int | None:
        """The AppendEntries consistency check (paper §5.3): if the log holds (log_term, index),
        append `entries` (after it), dropping any conflicting suffix, and commit up to
        min(committed, last new index). Returns the last new index, or None on mismatch."""
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(entries)
        if entries:
            conflict = self.find_conflict(entries)
            if conflict:
                invariant(
                    conflict > self.committed,
                    f"entry {conflict} conflicts with the committed prefix (commit {self.committed})",
                )
                self.append(entries[conflict - entries[0].index :])
        self.commit_to(min(committed, last_new))
        return last_new

    def find_conflict(self, entries: list[Entry]) -> int:
        """Index of the first entry whose term differs from the log's (or that is past its
        end); 0 if the log already holds all of them."""
        if entries[0].index > self.last_index():
            return entries[0].index
        for entry in entries:
            if not self.match_term(entry.index, entry.term):
                return entry.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The last (index, term) at or before `index` whose term is <= `term`.

        Used for fast back-off: no entry after the result can match a log whose entry at
        `index` has `term`. An index whose term is unknown (compacted) is returned with term 0.
        """
        while index > 0:
            try:
                our_term = self.term(index)
            except (LogCompacted, LogUnavailable):
                return index, 0
            if our_term <= term:
                return index, our_term
            index -= 1
        return 0, 0

    def append(self, entries: list[Entry]) -> int:
        """Append entries (replacing any from entries[0].index on); returns the last index."""
        if not entries:
            return self.last_index()
        if entries[0].index <= self.committed:
            raise InvariantViolation(
                f"cannot overwrite committed entry {entries[0].index} (commit {self.committed})"
            )
        self.unstable.truncate_and_append(entries)
        return entries[-1].index

    # ---- cursors ----------------------------------------------------------------------------

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            if index > self.last_index():
                raise InvariantViolation(
                    f"commit index {index} is past the last index {self.last_index()}"
                )
            self.committed = index

    def maybe_commit(self, index: int, term: int) -> bool:
        """Commit up to `index` if its entry is of `term` (paper §5.4.2: a leader commits by
        counting replicas only entries of its own term)."""
        if index > self.committed and self.term_or_zero(index) == term:
            self.commit_to(index)
            return True
        return False

    def applied_to(self, index: int) -> None:
        if index <= self.applied:
            return
        if index > self.committed:
            raise InvariantViolation(
                f"applied index {index} is past the commit index {self.committed}"
            )
        self.applied = index
        self.applying = max(self.applying, index)

    def restore(self, snapshot: SnapshotMeta) -> None:
        """Reset the log to start after `snapshot`, which is committed."""
        self.committed = snapshot.index
        self.unstable.restore(snapshot)

    # ---- reading entries --------------------------------------------------------------------

    def entries_from(self, index: int, count_max: int, bytes_max: int) -> list[Entry]:
        """Up to `count_max` entries from `index`, within `bytes_max` (at least one)."""
        last = self.last_index()
        if index > last:
            return []
        return self.slice(index, min(last + 1, index + count_max), bytes_max)

    def slice(self, low: int, high: int, bytes_max: int) -> list[Entry]:
        """Entries in [low, high) within `bytes_max` bytes (at least one if low < high).

        Raises LogCompacted if `low` was compacted."""
        first = self.first_index()
        if low < first:
            raise LogCompacted(self.group_id, low, first)
        if high > self.last_index() + 1:
            raise InvariantViolation(f"slice end {high} is past the log end {self.last_index()}")
        if low >= high:
            return []
        offset = self.unstable.offset
        if high <= offset:
            return self.storage.entries(low, high, bytes_max)
        if low >= offset:
            return limit_size(self.unstable.slice(low, high), bytes_max)
        stored = list(self.storage.entries(low, offset, bytes_max))
        if len(stored) < offset - low:
            return stored
        size = sum(entry.size_bytes() for entry in stored)
        for entry in self.unstable.slice(offset, high):
            size += entry.size_bytes()
            if size > bytes_max:
                break
            stored.append(entry)
        return stored

    def has_next_committed_entries(self) -> bool:
        return self.committed > max(self.applying, self.first_index() - 1)

    def next_committed_entries(self) -> list[Entry]:
        """Committed entries not yet handed out for applying, within the Ready byte bound."""
        low = max(self.applying + 1, self.first_index())
        high = self.committed + 1
        if low >= high:
            return []
        return self.slice(low, high, self.committed_entries_bytes_max)


def limit_size(entries: list[Entry], bytes_max: int) -> list[Entry]:
    """The longest prefix of `entries` within `bytes_max` bytes, but at least one entry."""
    if not entries:
        return entries
    # Fast path: the whole list fits (the usual case), summed without a Python-level loop.
    if sum(map(len, map(_data_of, entries))) + ENTRY_OVERHEAD_BYTES * len(entries) <= bytes_max:
        return entries
    total = entries[0].size_bytes()
    for position in range(1, len(entries)):
        total += entries[position].size_bytes()
        if total > bytes_max:
            return entries[:position]
    return entries


_data_of = attrgetter("data")

ENTRY_OVERHEAD_BYTES = Entry(0, 0).size_bytes()
"""What Entry.size_bytes() adds to the data length of every entry."""


_new_object = object.__new__
_set_term = Entry.__dict__["term"].__set__
_set_index = Entry.__dict__["index"].__set__
_set_type = Entry.__dict__["type"].__set__
_set_data = Entry.__dict__["data"].__set__


def make_entry(term: int, index: int, entry_type: EntryType, data: bytes) -> Entry:
    """The same as Entry(term, index, entry_type, data), built twice as fast.

    Entry is a frozen dataclass, whose __init__ sets each field through object.__setattr__;
    a leader builds one entry per proposal, so the slot descriptors are written directly.
    """
    entry: Entry = _new_object(Entry)
    _set_term(entry, term)
    _set_index(entry, index)
    _set_type(entry, entry_type)
    _set_data(entry, data)
    return entry
