"""Member records of collections, below the keys: versions, release and the garbage sweep.

A collection's members live under the prefix b"m" + slot + version (kv/layout.py), named by
the version its slot's counter gave the collection when it was created, not by its key. That
is what keeps deleting and overwriting cheap, and safe:

- `allocate_version` takes the next number of the slot's counter (b"v" + slot). Counters only
  grow and are never deleted (not even by FLUSHALL), so a version is never reused within a
  slot while members of an earlier incarnation may still be stored under it.
- `release` is called when a collection's metadata record goes (DEL, overwrite by another
  value, expiry, FLUSHALL): a small collection (at most
  `limits.collection_inline_release_members_max` members) has its members deleted in the same
  entry; a bigger one gets a garbage record (b"g" + slot + version) and nothing else, so DEL of
  a hash of 10,000,000 fields writes three records.
- `sweep` deletes up to `budget` member records named by garbage records, oldest slot and
  version first, and each garbage record once its range is empty. The leader proposes a
  QKV.SWEEP entry when `has_garbage` (host.py, next to expiry); every replica then deletes the
  same records, so stores stay identical record for record.

Nothing reads members through a garbage record: members are only ever reached through a live
metadata record's version.
"""

from __future__ import annotations

from quorumkv import limits
from quorumkv.invariant import invariant
from quorumkv.kv import layout
from quorumkv.kv.store import KeyValueStore

_VERSION_FIRST = 1


def allocate_version(store: KeyValueStore, slot: bytes) -> int:
    """A version never used in `slot` before, for a new collection there."""
    counter = layout.version_key(slot)
    raw = store.get(counter)
    version = _VERSION_FIRST if raw is None else int.from_bytes(raw, "big")
    store.put(counter, (version + 1).to_bytes(8, "big"))
    return version


def release(store: KeyValueStore, prefix: bytes, count: int) -> None:
    """Let go of the members under `prefix` (a collection of `count` members whose metadata
    record is being deleted): delete them now if few, else leave a garbage record."""
    if count <= limits.collection_inline_release_members_max:
        rows = store.scan(prefix, layout.prefix_end(prefix),
                          limits.collection_inline_release_members_max + 1)
        invariant(len(rows) <= count,
                  f"collection {prefix!r} holds {len(rows)} member records, counted {count}")
        for stored_key, _ in rows:
            store.delete(stored_key)
    else:
        store.put(layout.garbage_key(prefix), b"")


def release_record(store: KeyValueStore, stored_key: bytes, record: layout.Record) -> None:
    """Release the members of the collection whose metadata `record` under `stored_key` is
    being deleted or replaced (nothing for a string)."""
    if layout.is_collection(record.type_tag):
        version, count = layout.decode_collection(record.payload, stored_key)
        release(store, layout.collection_prefix(layout.slot_bytes(stored_key), version), count)


def has_garbage(store: KeyValueStore) -> bool:
    """Whether some collection's members wait to be swept."""
    return bool(store.scan(layout.GARBAGE_START, layout.GARBAGE_END, 1))


def sweep(store: KeyValueStore, budget: int) -> int:
    """Delete up to `budget` member records of released collections; returns how many."""
    deleted = 0
    while deleted < budget:
        pending = store.scan(layout.GARBAGE_START, layout.GARBAGE_END, 1)
        if not pending:
            break
        record_key = pending[0][0]
        prefix = layout.garbage_prefix(record_key)
        remaining = budget - deleted
        rows = store.scan(prefix, layout.prefix_end(prefix), remaining)
        for stored_key, _ in rows:
            store.delete(stored_key)
        deleted += len(rows)
        if len(rows) < remaining:
            store.delete(record_key)  # the range is empty now
    return deleted
