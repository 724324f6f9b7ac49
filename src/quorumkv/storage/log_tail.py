"""The most recently appended entries of one shard's log, kept in memory (RocksDB's store).

Why. The core asks the store for committed entries to apply (RaftLog.next_committed_entries)
and for entries to send to a follower that is a little behind, a cycle or two after the same
entries were appended: they are almost always the last few hundred of the log. Reading them
back from RocksDB and decoding them again cost about 8% of a leader (docs/performance.md).
etcd keeps an entry cache for the same reason.

What it holds. A contiguous run of entries that ends at the log's last index (or nothing).
It is kept exactly equal to what the store holds: an append truncates the run where the new
entries start and extends it, as the store deletes the stored entries past the new end; a
compaction drops the entries it removes; a snapshot install or a shard drop empties it. The
store applies these changes only after RocksDB accepted the batch (`RocksDBStore.write`), so a
failed write leaves the tail as it was, like every other cache of the store.

Bounds. At most `limits.log_tail_entries_max` entries and `limits.log_tail_bytes_max` bytes
(Entry.size_bytes) per shard: the oldest entries leave first. A read the tail does not cover
entirely goes to RocksDB.
"""

from __future__ import annotations

from collections.abc import Sequence

from quorumkv import limits
from quorumkv.invariant import invariant
from quorumkv.raft.log import limit_size
from quorumkv.raft.types import Entry


class LogTail:
    """A contiguous run of the last entries of one shard's log."""

    __slots__ = ("_bytes", "_entries", "_first_index", "bytes_max", "entries_max")

    def __init__(self, entries_max: int = limits.log_tail_entries_max,
                 bytes_max: int = limits.log_tail_bytes_max) -> None:
        self.entries_max = entries_max
        self.bytes_max = bytes_max
        self._entries: list[Entry] = []
        self._first_index = 0
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def first_index(self) -> int:
        """Index of the first entry held (meaningless when empty)."""
        return self._first_index

    def append(self, entries: Sequence[Entry]) -> None:
        """The log now ends with `entries` (which replace any held from their first index on)."""
        if not entries:
            return
        first = entries[0].index
        end = self._first_index + len(self._entries)
        if not self._entries or first < self._first_index or first > end:
            self._entries, self._first_index, self._bytes = [], first, 0
        elif first < end:
            removed = self._entries[first - self._first_index:]
            del self._entries[first - self._first_index:]
            self._bytes -= sum(entry.size_bytes() for entry in removed)
        invariant(self._first_index + len(self._entries) == first,
                  f"log tail: appending {first} after {end - 1}")
        self._entries.extend(entries)
        self._bytes += sum(entry.size_bytes() for entry in entries)
        self._trim()

    def compact(self, index: int) -> None:
        """Entries up to `index` are no longer in the log."""
        drop = min(len(self._entries), index - self._first_index + 1)
        if drop > 0:
            self._drop_oldest(drop)

    def clear(self) -> None:
        self._entries, self._first_index, self._bytes = [], 0, 0

    def entries(self, low: int, high: int, bytes_max: int) -> list[Entry] | None:
        """Entries [low, high), bytes-bounded as RocksDBStore.read_entries (the first always
        kept), or None when the tail does not hold all of them."""
        start = low - self._first_index
        if start < 0 or high - self._first_index > len(self._entries) or not self._entries:
            return None
        return limit_size(self._entries[start:high - self._first_index], bytes_max)

    def _trim(self) -> None:
        excess = len(self._entries) - self.entries_max
        if excess > 0:
            self._drop_oldest(excess)
        while self._bytes > self.bytes_max and len(self._entries) > 1:
            self._drop_oldest(max(1, len(self._entries) // 4))

    def _drop_oldest(self, count: int) -> None:
        self._bytes -= sum(entry.size_bytes() for entry in self._entries[:count])
        del self._entries[:count]
        self._first_index += count
