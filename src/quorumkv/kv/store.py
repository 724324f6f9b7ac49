"""The key-value store the state machine reads and writes: one shard's data, as raw bytes.

The host provides it (host/shard_view.py): for applying committed entries, an overlay over
the shard's stored data plus the writes of the batch being built; for reads after ReadIndex, a
read-only view. The state machine owns the layout of keys and values inside it (kv/layout.py,
docs/kv.md); the store knows nothing of Redis.

`MemoryKeyValueStore` is the dict-backed implementation the tests use: a dict for point
lookups plus a sorted key list for ordered scans.
"""

from __future__ import annotations

import bisect
from typing import Protocol


class KeyValueStore(Protocol):
    """One shard's data: point reads and writes, and ordered range scans."""

    def get(self, key: bytes) -> bytes | None:
        """The value stored under `key`, or None."""
        ...

    def put(self, key: bytes, value: bytes) -> None:
        """Store `value` under `key`, replacing any previous value."""
        ...

    def delete(self, key: bytes) -> None:
        """Remove `key` if present."""
        ...

    def scan(self, start: bytes, end: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to `limit` (key, value) pairs with start <= key < end, ascending (end None: to
        the last key)."""
        ...


class MemoryKeyValueStore:
    """A KeyValueStore in memory, for tests and the simulator."""

    def __init__(self) -> None:
        self._values: dict[bytes, bytes] = {}
        self._sorted_keys: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        return self._values.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        if key not in self._values:
            bisect.insort(self._sorted_keys, key)
        self._values[key] = value

    def delete(self, key: bytes) -> None:
        if self._values.pop(key, None) is not None:
            del self._sorted_keys[bisect.bisect_left(self._sorted_keys, key)]

    def scan(self, start: bytes, end: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        first = bisect.bisect_left(self._sorted_keys, start)
        last = len(self._sorted_keys) if end is None else bisect.bisect_left(
            self._sorted_keys, end)
        keys = self._sorted_keys[first : min(last, first + max(limit, 0))]
        return [(key, self._values[key]) for key in keys]

    def items(self) -> list[tuple[bytes, bytes]]:
        """Every (key, value) pair, ascending: for comparing two stores in tests."""
        return [(key, self._values[key]) for key in self._sorted_keys]

    def __len__(self) -> int:
        return len(self._values)
