"""An in-memory persisted log: the LogReader of tests, benches and simple hosts.

Shaped after etcd-io/raft's MemoryStorage. It holds the entries after the compaction point,
the hard state, the membership (conf state) and the point of the newest snapshot. Position 0 of
the entry list is a placeholder standing for the compaction point (its index and term), so that
`term(first_index() - 1)` answers without a special case.

The host plays the role of the disk: after persisting a Ready it calls `append`,
`set_hard_state` and (for a received snapshot) `apply_snapshot`; after applying entries it may
`compact` the log up to a snapshot point. Nothing here is synchronised or durable.
"""

from __future__ import annotations

from quorumkv.errors import LogCompacted, LogUnavailable
from quorumkv.invariant import InvariantViolation, invariant
from quorumkv.raft.bootstrap import bootstrap_state
from quorumkv.raft.log import limit_size
from quorumkv.raft.types import ConfState, Entry, HardState, SnapshotMeta


class MemoryLog:
    """One group's log, hard state and snapshot point, kept in memory."""

    __slots__ = ("group_id", "_entries", "_hard_state", "_conf_state", "_snapshot")

    def __init__(
        self,
        group_id: int = 0,
        conf_state: ConfState | None = None,
        hard_state: HardState | None = None,
    ) -> None:
        self.group_id = group_id
        self._entries: list[Entry] = [Entry(term=0, index=0)]
        self._hard_state = hard_state or HardState()
        self._conf_state = conf_state or ConfState()
        self._snapshot = SnapshotMeta(index=0, term=0, conf_state=self._conf_state)

    @classmethod
    def bootstrap(cls, group_id: int, conf_state: ConfState) -> MemoryLog:
        """The log of a founding replica of a new group (see bootstrap.py)."""
        meta, hard_state = bootstrap_state(conf_state)
        log = cls(group_id, conf_state, hard_state)
        log._entries = [Entry(term=meta.term, index=meta.index)]
        log._snapshot = meta
        return log

    # ---- LogReader ----------------------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._conf_state

    def hard_state(self) -> HardState:
        return self._hard_state

    def first_index(self) -> int:
        return self._entries[0].index + 1

    def last_index(self) -> int:
        return self._entries[0].index + len(self._entries) - 1

    def term(self, index: int) -> int:
        offset = self._entries[0].index
        if index < offset:
            raise LogCompacted(self.group_id, index, offset + 1)
        if index - offset >= len(self._entries):
            raise LogUnavailable(self.group_id, index, self.last_index())
        return self._entries[index - offset].term

    def entries(self, low: int, high: int, bytes_max: int) -> list[Entry]:
        offset = self._entries[0].index
        if low <= offset:
            raise LogCompacted(self.group_id, low, offset + 1)
        if high > self.last_index() + 1:
            raise LogUnavailable(self.group_id, high - 1, self.last_index())
        selected = self._entries[low - offset : high - offset]
        return limit_size(selected, bytes_max)

    def snapshot_meta(self) -> SnapshotMeta:
        return self._snapshot

    # ---- writes (the host, after persisting) -------------------------------------------------

    def append(self, entries: list[Entry]) -> None:
        """Append entries; any held entry at an index >= entries[0].index is replaced.

        Entries at or below the compaction point are skipped (already covered by a snapshot).
        """
        if not entries:
            return
        offset = self._entries[0].index
        if entries[-1].index <= offset:
            return
        if entries[0].index <= offset:
            entries = entries[offset + 1 - entries[0].index :]
        position = entries[0].index - offset
        if position > len(self._entries):
            raise InvariantViolation(
                f"appending index {entries[0].index} would leave a gap after {self.last_index()}"
            )
        del self._entries[position:]
        self._entries.extend(entries)

    def set_hard_state(self, hard_state: HardState) -> None:
        self._hard_state = hard_state

    def set_conf_state(self, conf_state: ConfState) -> None:
        """Record the membership as of the last applied configuration change."""
        self._conf_state = conf_state

    def compact(self, meta: SnapshotMeta) -> None:
        """Drop entries up to meta.index inclusive; meta becomes the newest snapshot point.

        A point at or before the current compaction point is ignored.
        """
        offset = self._entries[0].index
        if meta.index <= offset:
            return
        invariant(
            meta.index <= self.last_index(),
            f"cannot compact to {meta.index}, past the last index {self.last_index()}",
        )
        invariant(
            self.term(meta.index) == meta.term,
            f"snapshot point {meta.index} has term {meta.term} but the log says "
            f"{self.term(meta.index)}",
        )
        self._entries = [Entry(term=meta.term, index=meta.index), *self._entries[meta.index - offset + 1 :]]
        if meta.index > self._snapshot.index:
            self._snapshot = meta

    def apply_snapshot(self, meta: SnapshotMeta) -> None:
        """Install a received snapshot: the log restarts empty after meta.index.

        A snapshot not newer than the current one is ignored.
        """
        if meta.index <= self._snapshot.index:
            return
        self._entries = [Entry(term=meta.term, index=meta.index)]
        self._snapshot = meta
        self._conf_state = meta.conf_state

    def set_snapshot_meta(self, meta: SnapshotMeta) -> None:
        """Name the newest snapshot the host can send (without compacting the log)."""
        invariant(
            meta.index >= self._entries[0].index,
            f"snapshot point {meta.index} is older than the compaction point "
            f"{self._entries[0].index}",
        )
        self._snapshot = meta

