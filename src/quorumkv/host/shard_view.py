"""The key-value views the state machine works on: a shard's data as applied so far.

`ApplyView` is what committed entries are applied through: reads see the shard's stored data
overlaid with the writes of entries applied earlier in the same batch (which is not yet
written), and writes go both into that overlay and into the WriteBatch. So entry N+1 sees
entry N's effects although the batch that carries both is written once, at the end.

`ReadView` is the read-only view for queries answered after ReadIndex; writing through it is
a bug.
"""

from __future__ import annotations

import bisect

from quorumkv.invariant import invariant
from quorumkv.storage.protocols import ShardState, WriteBatch

_DELETED = None


class ReadView:
    """Read-only access to one shard's applied data."""

    def __init__(self, state: ShardState) -> None:
        self._state = state

    def get(self, key: bytes) -> bytes | None:
        return self._state.get(key)

    def scan(self, start: bytes, end: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        return self._state.scan(start, end, limit)

    def put(self, key: bytes, value: bytes) -> None:
        invariant(False, "a read-only command tried to write")

    def delete(self, key: bytes) -> None:
        invariant(False, "a read-only command tried to delete")


class ApplyView:
    """Applied data plus the not-yet-written writes of this batch, for one shard."""

    def __init__(self, shard_id: int, state: ShardState, batch: WriteBatch) -> None:
        self._shard_id = shard_id
        self._state = state
        self._batch = batch
        self._overlay: dict[bytes, bytes | None] = {}
        self._overlay_keys: list[bytes] = []  # sorted, for scans

    def get(self, key: bytes) -> bytes | None:
        if key in self._overlay:
            return self._overlay[key]
        return self._state.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._remember(key, value)
        self._batch.put(self._shard_id, key, value)

    def delete(self, key: bytes) -> None:
        self._remember(key, _DELETED)
        self._batch.delete(self._shard_id, key)

    def scan(self, start: bytes, end: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        """Merge stored rows with the overlay; asks the store for enough rows to fill `limit`
        even when overlay deletions hide some of them."""
        overlay = self._overlay_range(start, end)
        stored = self._state.scan(start, end, limit + len(overlay))
        merged = {k: v for k, v in stored}
        for key in overlay:
            value = self._overlay[key]
            if value is _DELETED:
                merged.pop(key, None)
            else:
                merged[key] = value
        rows = sorted(merged.items())
        if len(stored) == limit + len(overlay) and stored:
            # The store may hold more rows past the last one read: keep only what is complete.
            boundary = stored[-1][0]
            rows = [row for row in rows if row[0] <= boundary]
        return rows[:limit]

    def _overlay_range(self, start: bytes, end: bytes | None) -> list[bytes]:
        low = bisect.bisect_left(self._overlay_keys, start)
        high = len(self._overlay_keys) if end is None else bisect.bisect_left(self._overlay_keys, end)
        return self._overlay_keys[low:high]

    def _remember(self, key: bytes, value: bytes | None) -> None:
        if key not in self._overlay:
            bisect.insort(self._overlay_keys, key)
        self._overlay[key] = value
