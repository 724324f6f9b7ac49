"""One command's handle on a collection (hash, set): its metadata and its member records.

`find(keyspace, key, type_tag)` looks the key up as any command does and answers the live
collection, None if the key is absent, or WRONGTYPE. `find_or_create` answers a new, empty
collection where there is none; its version is allocated on its first member write. Member
reads and writes go straight to the store under the collection's prefix (kv/layout.py): one
point read or write per member, whatever the collection's size. A command that changed members
ends with `save`, which rewrites the metadata record (the member count) or, when the last
member went, deletes the key, as Redis does with an empty collection.

Reading many members (`page`, `all_members`) walks the member records in their order (CRC32 of
the member, then its bytes) in pages of `limits.store_page_records_max`; `all_members` refuses
(returns None) a collection of more than `limits.collection_read_members_max` members, and the
commands answer an error naming HSCAN/SSCAN, as KEYS names SCAN. HSCAN/SSCAN (`scan_members`)
page through the same order by 32-bit position, as SCAN does through keys; random picks
(`random_members`) draw from SplitMix64, seeded from the entry or the read, never from a
replica's own generator. The command bodies HLEN/SCARD, HEXISTS/SISMEMBER and HDEL/SREM share
are at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quorumkv import limits
from quorumkv.invariant import invariant
from quorumkv.kv import layout, members
from quorumkv.kv.keyspace import Keyspace
from quorumkv.kv.reply import WRONGTYPE, ErrorReply, Reply
from quorumkv.kv.spec import Arguments
from quorumkv.kv.store import KeyValueStore


@dataclass(slots=True)
class Collection:
    """A collection as one command sees and changes it."""

    key: bytes
    type_tag: int
    slot: bytes
    version: int  # 0: new, not allocated yet
    count: int
    expiry_ms: int
    stored: bool  # whether a metadata record exists for it

    @property
    def prefix(self) -> bytes:
        invariant(self.version != 0, "member prefix of a collection without a version")
        return layout.collection_prefix(self.slot, self.version)


def find(keyspace: Keyspace, key: bytes, type_tag: int) -> Collection | ErrorReply | None:
    """The live collection at `key`, None if there is none, WRONGTYPE if it holds another type."""
    record = keyspace.lookup(key)
    if record is None:
        return None
    if record.type_tag != type_tag:
        return WRONGTYPE
    stored_key = layout.data_key(key)
    version, count = layout.decode_collection(record.payload, stored_key)
    return Collection(key, type_tag, layout.slot_bytes(stored_key), version, count,
                      record.expiry_ms, True)


def find_or_create(keyspace: Keyspace, key: bytes, type_tag: int) -> Collection | ErrorReply:
    """The live collection at `key`, a new empty one if there is none, or WRONGTYPE."""
    found = find(keyspace, key, type_tag)
    return new_collection(key, type_tag) if found is None else found


def new_collection(key: bytes, type_tag: int) -> Collection:
    """A new, empty collection at `key`; saving it replaces whatever the key holds (the STORE
    commands), which must have been looked up in the same Keyspace."""
    return Collection(key, type_tag, layout.slot_bytes(layout.data_key(key)), 0, 0, 0, False)


def get(keyspace: Keyspace, collection: Collection, member: bytes) -> bytes | None:
    """The value of `member` (b"" for a set member), or None if it is not there."""
    if collection.version == 0:
        return None
    return keyspace.store.get(layout.member_key(collection.prefix, member))


def put(keyspace: Keyspace, collection: Collection, member: bytes, value: bytes,
        exists: bool | None = None) -> bool:
    """Store `member` with `value`; returns whether it is new. `exists` spares the lookup when
    the caller just made it."""
    if collection.version == 0:
        collection.version = members.allocate_version(keyspace.store, collection.slot)
        exists = False
    stored_key = layout.member_key(collection.prefix, member)
    if exists is None:
        exists = keyspace.store.get(stored_key) is not None
    keyspace.store.put(stored_key, value)
    if not exists:
        collection.count += 1
    return not exists


def delete(keyspace: Keyspace, collection: Collection, member: bytes) -> bool:
    """Remove `member`; returns whether it was there."""
    if collection.version == 0:
        return False
    stored_key = layout.member_key(collection.prefix, member)
    if keyspace.store.get(stored_key) is None:
        return False
    keyspace.store.delete(stored_key)
    collection.count -= 1
    invariant(collection.count >= 0, f"member count of {collection.key[:64]!r} went negative")
    return True


def save(keyspace: Keyspace, collection: Collection) -> None:
    """Write the collection's metadata after member changes: its count, or the key's deletion
    when it holds no member any more (its members are all deleted already)."""
    if collection.count == 0:
        if collection.stored:
            keyspace.remove(collection.key, release_members=False)
            collection.stored = False
        return
    keyspace.write(collection.key, collection.type_tag,
                   layout.encode_collection(collection.version, collection.count),
                   collection.expiry_ms)
    collection.stored = True


def page(store: KeyValueStore, collection: Collection, start: bytes,
         limit: int) -> list[tuple[bytes, bytes]]:
    """Up to `limit` (stored member key, value) rows from stored key `start` on."""
    return store.scan(start, layout.member_part_end(collection.prefix), limit)


def all_members(store: KeyValueStore,
                collection: Collection) -> list[tuple[bytes, bytes]] | None:
    """Every (member, value) of the collection in stored order, or None if it holds more than
    limits.collection_read_members_max."""
    if collection.count > limits.collection_read_members_max:
        return None
    if collection.version == 0:
        return []
    found: list[tuple[bytes, bytes]] = []
    start = layout.member_position_key(collection.prefix, 0)
    while True:
        rows = page(store, collection, start, limits.store_page_records_max)
        found.extend((layout.member_of(stored_key), value) for stored_key, value in rows)
        if len(rows) < limits.store_page_records_max:
            return found
        start = rows[-1][0] + b"\0"


def too_many_members_error(command_name: bytes, scan_command: bytes) -> ErrorReply:
    """The refusal of a command that would have to read a collection bigger than the bound."""
    return ErrorReply(b"ERR %b would read more than %d members of one collection; iterate with "
                      b"%b instead" % (command_name, limits.collection_read_members_max,
                                       scan_command))


# ---- HSCAN and SSCAN --------------------------------------------------------------------------


def scan_members(store: KeyValueStore, collection: Collection, cursor: int,
                 count: int) -> tuple[int, list[tuple[bytes, bytes]]]:
    """(next cursor, [(member, value)]) for one HSCAN/SSCAN call: about `count` members from
    the 32-bit position `cursor` on, finishing the last position touched (members whose CRC32
    collide share one); the next cursor is 0 once the end is reached. As with SCAN, a member
    present during the whole iteration is returned whatever is written in between."""
    if collection.version == 0 or cursor >= layout.MEMBER_POSITION_END:
        return 0, []
    budget = max(1, min(count, limits.scan_records_max))
    rows = page(store, collection, layout.member_position_key(collection.prefix, cursor),
                budget)
    if len(rows) < budget:
        return 0, [(layout.member_of(key), value) for key, value in rows]
    last_position = layout.member_position(rows[-1][0])
    end = layout.member_position_key(collection.prefix, last_position + 1) \
        if last_position + 1 < layout.MEMBER_POSITION_END \
        else layout.member_part_end(collection.prefix)
    last_key = rows[-1][0]
    while True:  # the rest of the last position
        rest = store.scan(last_key + b"\0", end, limits.store_page_records_max)
        rows.extend(rest)
        if len(rest) < limits.store_page_records_max:
            break
        last_key = rest[-1][0]
    following = last_position + 1
    return (0 if following >= layout.MEMBER_POSITION_END else following), [
        (layout.member_of(key), value) for key, value in rows]


# ---- deterministic randomness -------------------------------------------------------------------

_MASK64 = (1 << 64) - 1


class SplitMix64:
    """Steele, Lea and Flood's SplitMix64: a small, fast, well-mixed generator. kv may not use
    the `random` module (its state would differ between replicas); every seed here comes from
    the entry (its timestamp) and the replicated state, or from the read's unique context."""

    __slots__ = ("state",)

    def __init__(self, *seeds: int) -> None:
        self.state = 0
        for seed in seeds:
            self.state = (self.state ^ (seed & _MASK64)) & _MASK64
            self.state = self.next()

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    def below(self, bound: int) -> int:
        """A uniform integer in [0, bound), bound >= 1 (rejection sampling: no modulo bias)."""
        limit = (1 << 64) - (1 << 64) % bound
        while True:
            value = self.next()
            if value < limit:
                return value % bound

    def shuffle(self, items: list[tuple[bytes, bytes]]) -> None:
        for index in range(len(items) - 1, 0, -1):
            other = self.below(index + 1)
            items[index], items[other] = items[other], items[index]


def random_source(keyspace: Keyspace, collection: Collection) -> SplitMix64:
    """The generator for one random choice in `collection`: seeded by the command's time and
    seed (a write's entry timestamp; a read's unique context), the collection's version and size
    and its key, so every replica applying the same entry draws the same numbers."""
    return SplitMix64(keyspace.seed, keyspace.now_ms, collection.version, collection.count,
                      int.from_bytes(collection.key[:8].ljust(8, b"\0"), "big"), len(collection.key))


def random_members(keyspace: Keyspace, collection: Collection, count: int,
                   distinct: bool) -> list[tuple[bytes, bytes]]:
    """`count` random (member, value) pairs, in random order: distinct ones (count at most the
    collection's size) or drawn independently (repeats allowed).

    Up to limits.collection_read_members_max members the choice is exactly uniform: indexes are
    drawn (Floyd's algorithm for distinct ones) and the members walked once in stored order.
    Beyond that each pick seeks to a random 32-bit position and takes the next member, which
    favours members after wide gaps of CRC32 values: close to uniform, not exactly."""
    rng = random_source(keyspace, collection)
    size = collection.count
    if size == 0 or count == 0:
        return []
    if size > limits.collection_read_members_max:
        return _random_by_position(keyspace.store, collection, rng, count, distinct)
    if distinct:
        chosen: set[int] = set()
        for high in range(size - count, size):  # Floyd: count distinct indexes in [0, size)
            pick = rng.below(high + 1)
            chosen.add(high if pick in chosen else pick)
        indexes = sorted(chosen)
    else:
        indexes = sorted(rng.below(size) for _ in range(count))
    picked = _members_at(keyspace.store, collection, indexes)
    rng.shuffle(picked)
    return picked


def _members_at(store: KeyValueStore, collection: Collection,
                indexes: list[int]) -> list[tuple[bytes, bytes]]:
    """The members at sorted `indexes` (repeats allowed) of the stored order."""
    picked: list[tuple[bytes, bytes]] = []
    start = layout.member_position_key(collection.prefix, 0)
    base, wanted = 0, 0
    while wanted < len(indexes):
        rows = page(store, collection, start, limits.store_page_records_max)
        invariant(bool(rows), f"collection {collection.key[:64]!r} has fewer members than "
                  f"its count {collection.count}")
        while wanted < len(indexes) and indexes[wanted] < base + len(rows):
            stored_key, value = rows[indexes[wanted] - base]
            picked.append((layout.member_of(stored_key), value))
            wanted += 1
        base += len(rows)
        start = rows[-1][0] + b"\0"
    return picked


def _random_by_position(store: KeyValueStore, collection: Collection, rng: SplitMix64,
                        count: int, distinct: bool) -> list[tuple[bytes, bytes]]:
    picked: dict[bytes, bytes] = {}
    drawn: list[tuple[bytes, bytes]] = []
    attempts = 0
    while len(drawn) < count and attempts < 4 * count + 16:
        attempts += 1
        start = layout.member_position_key(collection.prefix, rng.below(layout.MEMBER_POSITION_END))
        rows = page(store, collection, start, 1) or page(
            store, collection, layout.member_position_key(collection.prefix, 0), 1)
        member, value = layout.member_of(rows[0][0]), rows[0][1]
        if distinct and member in picked:
            continue
        picked[member] = value
        drawn.append((member, value))
    return drawn


# ---- command bodies shared by hashes and sets ---------------------------------------------------


def count_command(type_tag: int) -> Callable[[Keyspace, Arguments], Reply]:
    """HLEN, SCARD: the member count, 0 for a missing key."""
    def execute(keyspace: Keyspace, args: Arguments) -> Reply:
        found = find(keyspace, args[0], type_tag)
        if found is None or isinstance(found, ErrorReply):
            return 0 if found is None else found
        return found.count
    return execute


def whole_command(type_tag: int, command_name: bytes, scan_name: bytes,
                  shape: Callable[[list[tuple[bytes, bytes]]], Reply],
                  empty: Reply) -> Callable[[Keyspace, Arguments], Reply]:
    """HGETALL, HKEYS, HVALS, SMEMBERS: every member shaped into one reply, `empty` for a
    missing key; a collection too large to answer whole names `scan_name` instead."""
    def execute(keyspace: Keyspace, args: Arguments) -> Reply:
        found = find(keyspace, args[0], type_tag)
        if found is None or isinstance(found, ErrorReply):
            return empty if found is None else found
        rows = all_members(keyspace.store, found)
        if rows is None:
            return too_many_members_error(command_name, scan_name)
        return shape(rows)
    return execute


def contains_command(type_tag: int) -> Callable[[Keyspace, Arguments], Reply]:
    """HEXISTS, SISMEMBER: 1 if the member is there, else 0."""
    def execute(keyspace: Keyspace, args: Arguments) -> Reply:
        found = find(keyspace, args[0], type_tag)
        if found is None or isinstance(found, ErrorReply):
            return 0 if found is None else found
        return int(get(keyspace, found, args[1]) is not None)
    return execute


def remove_command(type_tag: int) -> Callable[[Keyspace, Arguments], Reply]:
    """HDEL, SREM: how many of the named members were removed (the key goes with the last)."""
    def execute(keyspace: Keyspace, args: Arguments) -> Reply:
        found = find(keyspace, args[0], type_tag)
        if found is None or isinstance(found, ErrorReply):
            return 0 if found is None else found
        removed = sum(delete(keyspace, found, member) for member in args[1:])
        if removed:
            save(keyspace, found)
        return removed
    return execute
