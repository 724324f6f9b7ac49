"""One command's view of a shard's Redis keys: expiry-aware lookups and consistent writes.

Every command works through a `Keyspace` made for it with the time that decides expiry: the
entry's `timestamp_ms` when applying a committed write, the reader's `now_ms` for a read. A key
whose expiry is before that time is invisible to every command at once (Redis's rule: during
the millisecond it expires, a key is still there, with a PTTL of 0).

Writes keep the three record families of kv/layout.py consistent: the data record, its entry
in the expiry index, and its slot's key count. To know what to change, a write needs the key's
stored record as it was, so every key must be looked up in the same Keyspace before it is
written or removed; the Keyspace remembers what it saw (`_known`) and checks that rule.

A collection's metadata record is a key like any other here; its members (kv/members.py) are
released whenever the record goes or is replaced by another value (another type, or another
incarnation: a different version), unless the caller moved them (RENAME: `remove(key,
release_members=False)`).

In a write, a lookup that finds an expired key deletes it there and then. This is as
deterministic as the rest of apply (the same entry timestamp on every replica), and it keeps
expired keys from lingering when a command touches them; the rest are deleted by the
leader-proposed QKV.EXPIRE-DELETE entries (state_machine.expired_keys).
"""

from __future__ import annotations

from quorumkv.invariant import InvariantViolation, invariant
from quorumkv.kv import layout, members
from quorumkv.kv.layout import Record
from quorumkv.kv.store import KeyValueStore


class Keyspace:
    """The Redis keys of one shard as of `now_ms`; writable only when applying an entry."""

    __slots__ = ("store", "now_ms", "writable", "seed", "_known")

    def __init__(self, store: KeyValueStore, now_ms: int, writable: bool, seed: int = 0) -> None:
        self.store = store
        self.now_ms = now_ms
        self.writable = writable
        self.seed = seed  # a read's randomness (HRANDFIELD, SRANDMEMBER); 0 when applying
        self._known: dict[bytes, tuple[bytes, Record | None]] = {}

    # ---- reading ------------------------------------------------------------------------------

    def lookup(self, key: bytes) -> Record | None:
        """The live record of `key`, or None if it is absent or expired."""
        stored_key = layout.data_key(key)
        raw = self.store.get(stored_key)
        record = None if raw is None else layout.decode_record(raw, stored_key)
        if record is not None and record.expiry_ms and record.expiry_ms < self.now_ms:
            if self.writable:
                self._erase(stored_key, record)
            record = None
        if self.writable:
            self._known[key] = (stored_key, record)
        return record

    def lookup_stored(self, key: bytes) -> Record | None:
        """The stored record of `key` even if it has expired (for QKV.EXPIRE-DELETE)."""
        invariant(self.writable, "lookup_stored is for applying QKV.EXPIRE-DELETE")
        stored_key = layout.data_key(key)
        raw = self.store.get(stored_key)
        record = None if raw is None else layout.decode_record(raw, stored_key)
        self._known[key] = (stored_key, record)
        return record

    # ---- writing ------------------------------------------------------------------------------

    def write(self, key: bytes, type_tag: int, payload: bytes, expiry_ms: int) -> None:
        """Store `payload` as `key`'s value with absolute expiry `expiry_ms` (0: none). An
        expiry already past at this command's time removes the key instead (it could never
        be seen)."""
        stored_key, previous = self._known_record(key)
        if expiry_ms and expiry_ms < self.now_ms:
            self.remove(key)
            return
        self.store.put(stored_key, layout.encode_record(type_tag, expiry_ms, payload))
        if previous is None:
            self._add_to_count(stored_key, 1)
        else:
            if layout.is_collection(previous.type_tag) and (
                    previous.type_tag != type_tag or previous.payload[:8] != payload[:8]):
                members.release_record(self.store, stored_key, previous)  # overwritten
            if previous.expiry_ms != expiry_ms and previous.expiry_ms:
                self.store.delete(layout.expiry_key(previous.expiry_ms, stored_key))
        if expiry_ms and (previous is None or previous.expiry_ms != expiry_ms):
            self.store.put(layout.expiry_key(expiry_ms, stored_key), b"")
        previous_expiry_ms = 0 if previous is None else previous.expiry_ms
        if previous_expiry_ms != expiry_ms:
            self._add_to_count(stored_key, 0, previous_expiry_ms, expiry_ms)
        self._known[key] = (stored_key, Record(type_tag, expiry_ms, payload))

    def remove(self, key: bytes, release_members: bool = True) -> bool:
        """Delete `key`; returns whether it existed (as last looked up). A collection's members
        go with it unless `release_members` is False (the caller moved or deleted them)."""
        stored_key, previous = self._known_record(key)
        if previous is None:
            return False
        self._erase(stored_key, previous, release_members)
        self._known[key] = (stored_key, None)
        return True

    def _known_record(self, key: bytes) -> tuple[bytes, Record | None]:
        invariant(self.writable, "a read-only command tried to write")
        try:
            return self._known[key]
        except KeyError:
            raise InvariantViolation(
                f"key {key[:64]!r} written before it was looked up") from None

    def _erase(self, stored_key: bytes, record: Record, release_members: bool = True) -> None:
        self.store.delete(stored_key)
        if record.expiry_ms:
            self.store.delete(layout.expiry_key(record.expiry_ms, stored_key))
            self._add_to_count(stored_key, 0, record.expiry_ms)
        self._add_to_count(stored_key, -1)
        if release_members:
            members.release_record(self.store, stored_key, record)

    def _add_to_count(self, stored_key: bytes, delta: int, expiry_removed_ms: int = 0,
                      expiry_added_ms: int = 0) -> None:
        """Count `delta` keys more in the key's slot, one whose expiry was
        `expiry_removed_ms` less and one whose expiry is `expiry_added_ms` more (0: none)."""
        counter = layout.count_key(stored_key)
        raw = self.store.get(counter)
        counts = layout.SlotCounts(0) if raw is None else layout.decode_counts(raw)
        keys = counts.keys + delta
        invariant(keys >= 0, f"slot key count of {counter!r} went negative")
        expiring = counts.expiring + bool(expiry_added_ms) - bool(expiry_removed_ms)
        expiry_sum_ms = counts.expiry_sum_ms + expiry_added_ms - expiry_removed_ms
        if expiring <= 0 or expiry_sum_ms <= 0:
            # Stores written before the expiry figures existed counted no expiries: their
            # figures start from zero rather than going negative (the same on every replica).
            expiring = expiry_sum_ms = 0
        if keys:
            self.store.put(counter, layout.encode_count(
                layout.SlotCounts(keys, expiring, expiry_sum_ms)))
        else:
            self.store.delete(counter)
