"""The key-value views the state machine works on: a shard's data as applied so far.

`ApplyView` is what committed entries are applied through: reads see the shard's stored data
overlaid with the writes of entries applied earlier in the same batch (which is not yet
written), and writes go both into that overlay and into the WriteBatch. So entry N+1 sees
entry N's effects although the batch that carries both is written once, at the end.

`ApplyCache` keeps, across batches, the values of the keys every write reads again and
again: the per-slot key counts of kv (layout.COUNT_PREFIX), read and rewritten by every SET of
a new key and every DEL; without it each such command read RocksDB twice (docs/performance.md),
and the per-slot collection version counters (layout.VERSION_PREFIX), read and bumped by every
new hash or set.
It is written through: an ApplyView stores every value it reads or writes under those keys in
the cache at once, before the batch is written. That is exact because the host writes the
apply batch of a cycle before anything else reads or applies (a full disk stalls the cycle and
retries the same batch; any other storage failure stops the node, and the cache with it); an
installed snapshot replaces the data, so the replica clears its cache then. The cache never
changes what apply computes, only where a value comes from, so replicas stay identical.

`ReadView` is the read-only view for queries answered after ReadIndex; writing through it is
a bug.
"""

from __future__ import annotations

import bisect

from quorumkv import limits
from quorumkv.invariant import invariant
from quorumkv.kv.layout import COUNT_PREFIX, VERSION_PREFIX
from quorumkv.storage.protocols import ShardState, WriteBatch

_DELETED = None
_CACHED_PREFIXES = (COUNT_PREFIX, VERSION_PREFIX)


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


class ApplyCache:
    """Values of one shard's often-rewritten keys (slot key counts, and the slots' collection
    version counters, read and bumped by every new hash or set), as applied so far."""

    __slots__ = ("_values", "entries_max")

    def __init__(self, entries_max: int = limits.apply_cache_entries_max) -> None:
        self.entries_max = entries_max
        self._values: dict[bytes, bytes | None] = {}

    def __len__(self) -> int:
        return len(self._values)

    @staticmethod
    def holds(key: bytes) -> bool:
        """Whether `key` is one the cache keeps."""
        return key[:1] in _CACHED_PREFIXES

    def lookup(self, key: bytes) -> tuple[bool, bytes | None]:
        """(found, value): value None with found True means the key is known absent."""
        try:
            return True, self._values[key]
        except KeyError:
            return False, None

    def remember(self, key: bytes, value: bytes | None) -> None:
        if len(self._values) >= self.entries_max and key not in self._values:
            self._values.clear()  # rare (more slots than the bound): start over
        self._values[key] = value

    def clear(self) -> None:
        self._values.clear()


class ApplyView:
    """Applied data plus the not-yet-written writes of this batch, for one shard."""

    def __init__(self, shard_id: int, state: ShardState, batch: WriteBatch,
                 cache: ApplyCache | None = None) -> None:
        self._shard_id = shard_id
        self._state = state
        self._batch = batch
        self._cache = cache if cache is not None else ApplyCache()
        self._overlay: dict[bytes, bytes | None] = {}
        self._overlay_keys: list[bytes] = []  # sorted, for scans

    def get(self, key: bytes) -> bytes | None:
        if key in self._overlay:
            return self._overlay[key]
        if not ApplyCache.holds(key):
            return self._state.get(key)
        found, value = self._cache.lookup(key)
        if not found:
            value = self._state.get(key)
            self._cache.remember(key, value)
        return value

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
        if ApplyCache.holds(key):
            self._cache.remember(key, value)
        if key not in self._overlay:
            bisect.insort(self._overlay_keys, key)
        self._overlay[key] = value
