"""The durable log as the Raft core sees it: a read-only view of what the host persisted.

The core keeps entries it has not yet handed to the host in memory (the unstable log); every
entry the host has persisted and acknowledged through `advance` is read back through this
protocol. It is implemented by the storage layer (memory, simulated disk, RocksDB) and must
reflect a batch as soon as the host has written it.
"""

from __future__ import annotations

from typing import Protocol

from quorumkv.raft.types import ConfState, Entry, HardState, SnapshotMeta


class LogReader(Protocol):
    """Read access to one group's persisted log, hard state and snapshot point."""

    def initial_state(self) -> tuple[HardState, ConfState]:
        """The persisted hard state and the membership as of the last applied configuration."""
        ...

    def first_index(self) -> int:
        """Index of the first entry still in the log (the compaction point plus one)."""
        ...

    def last_index(self) -> int:
        """Index of the last persisted entry, or the compaction point if the log is empty."""
        ...

    def term(self, index: int) -> int:
        """Term of the entry at `index`; valid from first_index() - 1 (the compaction point).

        Raises errors.LogCompacted below that and errors.LogUnavailable past last_index().
        """
        ...

    def entries(self, low: int, high: int, bytes_max: int) -> list[Entry]:
        """Entries with index in [low, high), stopping before `bytes_max` is exceeded (but
        always at least one entry when low < high). Raises LogCompacted / LogUnavailable."""
        ...

    def snapshot_meta(self) -> SnapshotMeta:
        """The point of the newest snapshot the host can send to a lagging follower right now.

        Its index is at least the compaction point (first_index() - 1).
        """
        ...
