"""The unstable log: entries (and possibly a snapshot) not yet persisted by the host.

New entries (a leader's proposals, a follower's appends) live here until the host has written
them and called `advance`; then `stable_to` drops them, and they are read back through the
LogReader. A received snapshot likewise waits here until installed. Entries are handed to the
host once: `offset_in_progress` marks the first entry not yet handed out in a Ready, so a host
that steps messages between `ready()` and `advance()` is never handed an entry twice.

The unstable entries cover [offset, offset + len(entries)); an unstable snapshot, if any, sits
just before `offset`. Entries may overwrite a suffix of the persisted log (a follower fixing a
divergent log): lookups check here first, so the newer entries shadow the persisted ones.
"""

from __future__ import annotations

from quorumkv.invariant import InvariantViolation
from quorumkv.raft.types import Entry, SnapshotMeta


class UnstableLog:
    """Entries and a snapshot received or proposed but not yet persisted."""

    __slots__ = ("snapshot", "entries", "offset", "offset_in_progress", "snapshot_in_progress")

    def __init__(self, offset: int) -> None:
        self.snapshot: SnapshotMeta | None = None
        self.entries: list[Entry] = []
        self.offset = offset
        self.offset_in_progress = offset
        self.snapshot_in_progress = False

    def maybe_first_index(self) -> int | None:
        """The first index of the log if an unstable snapshot defines it."""
        return self.snapshot.index + 1 if self.snapshot is not None else None

    def maybe_last_index(self) -> int | None:
        """The last index held here, if any entry or snapshot is held."""
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.index
        return None

    def maybe_term(self, index: int) -> int | None:
        """The term of `index` if this log knows it."""
        offset = self.offset
        if index < offset:
            snapshot = self.snapshot
            if snapshot is not None and snapshot.index == index:
                return snapshot.term
            return None
        position = index - offset
        if position < len(self.entries):
            return self.entries[position].term
        return None

    def next_entries(self) -> list[Entry]:
        """Entries not yet handed to the host."""
        start = self.offset_in_progress - self.offset
        entries = self.entries
        if start >= len(entries):
            return []
        return entries[start:] if start else list(entries)

    def next_snapshot(self) -> SnapshotMeta | None:
        """The snapshot if not yet handed to the host."""
        if self.snapshot is None or self.snapshot_in_progress:
            return None
        return self.snapshot

    def accept_in_progress(self) -> None:
        """Everything held is now handed to the host (in a Ready)."""
        self.offset_in_progress = self.offset + len(self.entries)
        if self.snapshot is not None:
            self.snapshot_in_progress = True

    def stable_to(self, index: int, term: int) -> None:
        """The host persisted entries up to `index` (whose term was `term`): drop them.

        Ignored if the entry was since replaced (its term changed) or is not held here.
        """
        held_term = self.maybe_term(index)
        if held_term is None or index < self.offset or held_term != term:
            return
        count = index + 1 - self.offset
        del self.entries[:count]
        self.offset = index + 1
        self.offset_in_progress = max(self.offset_in_progress, self.offset)

    def stable_snapshot_to(self, index: int) -> None:
        """The host installed the snapshot at `index`: forget it."""
        if self.snapshot is not None and self.snapshot.index == index:
            self.snapshot = None
            self.snapshot_in_progress = False

    def restore(self, snapshot: SnapshotMeta) -> None:
        """Replace everything with `snapshot`; the log restarts after it."""
        self.offset = snapshot.index + 1
        self.offset_in_progress = self.offset
        self.entries = []
        self.snapshot = snapshot
        self.snapshot_in_progress = False

    def truncate_and_append(self, entries: list[Entry]) -> None:
        """Append `entries`, first dropping any held entry at or after entries[0].index."""
        start = entries[0].index
        end = self.offset + len(self.entries)
        if start > end:
            raise InvariantViolation(f"appending index {start} would leave a gap after {end - 1}")
        if start == end:
            self.entries.extend(entries)
        elif start <= self.offset:
            # Replace everything held; the persisted entries from `start` on are shadowed.
            self.offset = start
            self.entries = list(entries)
        else:
            del self.entries[start - self.offset :]
            self.entries.extend(entries)
        self.offset_in_progress = min(self.offset_in_progress, start)

    def slice(self, low: int, high: int) -> list[Entry]:
        """Held entries with index in [low, high)."""
        if not self.offset <= low <= high <= self.offset + len(self.entries):
            raise InvariantViolation(
                f"unstable slice [{low}, {high}) is outside [{self.offset}, "
                f"{self.offset + len(self.entries)})"
            )
        return self.entries[low - self.offset : high - self.offset]
