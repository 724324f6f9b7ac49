"""How Redis keys and values are laid out in a shard's key-value store (docs/kv.md).

Three families of records, told apart by their first byte:

    data      b"d" + slot (2 bytes BE) + crc32(key) (4 bytes BE) + key   -> record
    expiry    b"x" + expiry_ms (8 bytes BE) + slot + crc32(key) + key  -> b""
    count     b"c" + slot (2 bytes BE)                                 -> SlotCounts of the slot

Data keys sort by slot first, so one slot's keys are contiguous: a slot can be listed, counted,
moved or dropped as one range. Inside a slot they sort by the key's CRC32, then the key. That
ordering gives every key a *position*, the 46-bit integer slot << 32 | crc32, which is what a
SCAN cursor holds: a cursor must be an unsigned 64-bit number for clients (redis-cli and
go-redis parse it so), and resuming at a position never skips a key that was there all along,
whatever was written in between (kv/scan.py).

A record is a 10-byte header, format version (1 byte), type (1 byte) and absolute expiry in
milliseconds (8 bytes BE, 0 for none), followed by the type's payload (a string's bytes).

The expiry index orders keys with an expiry by that expiry, so the leader finds due keys with
one range scan from b"x" (state_machine.expired_keys). The per-slot counts make DBSIZE cost a
scan of at most 16384 small records instead of one of every key. kv/keyspace.py keeps all three
families consistent on every write.

Collections (hashes, sets; lists and sorted sets next) are stored member by member, so a write
to a collection of 10,000,000 members touches as many records as one to a collection of 10.
Their data record is the collection's *metadata*: the usual header (type, expiry) and a payload
of version (u64 BE) and member count (u64 BE). Three more families hold the rest:

    member    b"m" + slot (2) + version (8 BE) + part (1) + crc32(member) (4 BE) + member -> value
    garbage   b"g" + slot (2) + version (8 BE)                                       -> b""
    version   b"v" + slot (2)                                                        -> next version (8 BE)

A collection incarnation is named by (slot, version), never by its key: the version comes from
its slot's counter (b"v"), which only grows, so a key deleted and created again gets new member
keys, and RENAME within a slot moves the metadata record alone. Deleting or overwriting a big
collection deletes its metadata record and leaves a garbage record; its members, invisible
from then on (nothing points at their version), are deleted in bounded steps by QKV.SWEEP
entries (kv/members.py). Members sort by CRC32 then bytes, like keys in a slot, which gives
HSCAN/SSCAN a 32-bit cursor and random picks a place to seek to. The part byte leaves room for
a second ordering of the same members (a sorted set's score index) under the same prefix.
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple
from zlib import crc32

from quorumkv.cluster.slots import SLOT_COUNT, key_slot
from quorumkv.errors import CorruptStorage

RECORD_FORMAT_VERSION = 1

DATA_PREFIX = b"d"
EXPIRY_PREFIX = b"x"
COUNT_PREFIX = b"c"
MEMBER_PREFIX = b"m"
GARBAGE_PREFIX = b"g"
VERSION_PREFIX = b"v"

DATA_KEY_HEADER_BYTES = 7  # b"d" + slot + crc32
EXPIRY_KEY_HEADER_BYTES = 9  # b"x" + expiry_ms
POSITION_END = SLOT_COUNT << 32
"""One past the last position: a scan that reaches it is complete."""

_DATA_KEY_HEADER = struct.Struct(">cHI")
_RECORD_HEADER = struct.Struct(">BBQ")
_RECORD_HEADER_BYTES = RECORD_HEADER_BYTES = _RECORD_HEADER.size
_COUNT = struct.Struct(">Q")
_EXPIRY_COUNT = struct.Struct(">QQ")
_EXPIRY_SUM_BYTES = 16  # a sum of up to 2**64 expiries of up to 2**64 ms


class ValueType(enum.IntEnum):
    """The type tag of a record, and TYPE's answer for it."""

    STRING = 1
    HASH = 2
    LIST = 3
    SET = 4
    ZSET = 5


TYPE_NAMES = {
    ValueType.STRING: b"string",
    ValueType.HASH: b"hash",
    ValueType.LIST: b"list",
    ValueType.SET: b"set",
    ValueType.ZSET: b"zset",
}
TYPES_BY_NAME = {name: tag for tag, name in TYPE_NAMES.items()}


class Record(NamedTuple):
    """A decoded value: its type, its absolute expiry (0: none) and its payload."""

    type_tag: int
    expiry_ms: int
    payload: bytes


# ---- data keys ------------------------------------------------------------------------------


def data_key(key: bytes) -> bytes:
    """The store key holding Redis key `key`."""
    return _DATA_KEY_HEADER.pack(DATA_PREFIX, key_slot(key), crc32(key)) + key


def user_key(stored_key: bytes) -> bytes:
    """The Redis key a data key (or the data part of an expiry key) holds."""
    return stored_key[DATA_KEY_HEADER_BYTES:]


def position_of(stored_data_key: bytes) -> int:
    """The 46-bit position (slot << 32 | crc32) of a data key."""
    return int.from_bytes(stored_data_key[1:DATA_KEY_HEADER_BYTES], "big")


def position_key(position: int) -> bytes:
    """The smallest data key at `position` or after it (position < POSITION_END)."""
    return DATA_PREFIX + position.to_bytes(6, "big")


def slot_range(slot: int) -> tuple[bytes, bytes]:
    """[start, end) of the data keys of one slot."""
    return position_key(slot << 32), position_key((slot + 1) << 32)


DATA_START = DATA_PREFIX
DATA_END = b"e"  # DATA_PREFIX + 1

# ---- records --------------------------------------------------------------------------------


def encode_record(type_tag: int, expiry_ms: int, payload: bytes) -> bytes:
    """The stored form of a value."""
    return _RECORD_HEADER.pack(RECORD_FORMAT_VERSION, type_tag, expiry_ms) + payload


def decode_record(raw: bytes, stored_key: bytes) -> Record:
    """The value stored as `raw` under `stored_key`; raises errors.CorruptStorage if `raw`
    is not a record this build can read."""
    if len(raw) < _RECORD_HEADER_BYTES or raw[0] != RECORD_FORMAT_VERSION:
        raise CorruptStorage(
            "shard data", f"record under {stored_key[:64]!r} has an unknown format "
            f"(first bytes {raw[:_RECORD_HEADER_BYTES]!r})")
    _, type_tag, expiry_ms = _RECORD_HEADER.unpack_from(raw)
    if type_tag not in TYPE_NAMES:
        raise CorruptStorage("shard data", f"record under {stored_key[:64]!r} has unknown "
                             f"type tag {type_tag}")
    return Record(type_tag, expiry_ms, raw[_RECORD_HEADER_BYTES:])


def record_header(raw: bytes) -> tuple[int, int]:
    """(type_tag, expiry_ms) of a stored record, without copying its payload."""
    _, type_tag, expiry_ms = _RECORD_HEADER.unpack_from(raw)
    return type_tag, expiry_ms


def is_live(raw: bytes, now_ms: int) -> bool:
    """Whether the stored record `raw` has not expired at `now_ms`."""
    expiry_ms: int = _RECORD_HEADER.unpack_from(raw)[2]
    return expiry_ms == 0 or expiry_ms >= now_ms


# ---- the expiry index -----------------------------------------------------------------------


def expiry_key(expiry_ms: int, stored_data_key: bytes) -> bytes:
    """The index entry saying that the key under `stored_data_key` expires at `expiry_ms`."""
    return EXPIRY_PREFIX + expiry_ms.to_bytes(8, "big") + stored_data_key[1:]


def expiry_range_end(now_ms: int) -> bytes:
    """The end (exclusive) of the index entries expired at `now_ms` (expiry_ms < now_ms)."""
    return EXPIRY_PREFIX + now_ms.to_bytes(8, "big")


def parse_expiry_key(index_key: bytes) -> tuple[bytes, int]:
    """(Redis key, expiry_ms) of an expiry index entry."""
    expiry_ms = int.from_bytes(index_key[1:EXPIRY_KEY_HEADER_BYTES], "big")
    return index_key[EXPIRY_KEY_HEADER_BYTES + DATA_KEY_HEADER_BYTES - 1 :], expiry_ms


EXPIRY_START = EXPIRY_PREFIX
EXPIRY_END = b"y"

# ---- per-slot key counts --------------------------------------------------------------------


def count_key(stored_data_key: bytes) -> bytes:
    """The record counting the keys of the slot `stored_data_key` belongs to."""
    return COUNT_PREFIX + stored_data_key[1:3]


class SlotCounts(NamedTuple):
    """What a slot's count record says: its keys (8 bytes BE) and, when some of them have an
    expiry, how many do (8 bytes BE) and the sum of their expiries in milliseconds (16 bytes
    BE), so that INFO keyspace's `expires` and `avg_ttl` cost what DBSIZE costs."""

    keys: int
    expiring: int = 0
    expiry_sum_ms: int = 0


def encode_count(counts: SlotCounts) -> bytes:
    if not counts.expiring and not counts.expiry_sum_ms:
        return _COUNT.pack(counts.keys)  # the common case, and the only form of older stores
    return (_EXPIRY_COUNT.pack(counts.keys, counts.expiring)
            + counts.expiry_sum_ms.to_bytes(_EXPIRY_SUM_BYTES, "big"))


def decode_counts(raw: bytes) -> SlotCounts:
    if len(raw) == _COUNT.size:
        return SlotCounts(_COUNT.unpack(raw)[0])
    keys, expiring = _EXPIRY_COUNT.unpack_from(raw)
    return SlotCounts(keys, expiring, int.from_bytes(raw[_EXPIRY_COUNT.size:], "big"))


def decode_count(raw: bytes) -> int:
    """The keys of a slot's count record."""
    count: int = _COUNT.unpack_from(raw)[0]
    return count


COUNT_START = COUNT_PREFIX
COUNT_END = b"d"

# ---- collections: metadata payload, members, garbage, version counters --------------------

COLLECTION_TYPES = frozenset((ValueType.HASH, ValueType.LIST, ValueType.SET, ValueType.ZSET))
PART_MEMBERS = 1
"""The part byte of the records that map each member to its value (hash field -> value,
set member -> b""); a sorted set will add a score index as another part."""

_COLLECTION = struct.Struct(">QQ")
_MEMBER_KEY_HEADER = struct.Struct(">cHQBI")
MEMBER_KEY_HEADER_BYTES = _MEMBER_KEY_HEADER.size  # 16
COLLECTION_PREFIX_BYTES = 11  # b"m" + slot + version
POSITION_BITS_MEMBER = 32
MEMBER_POSITION_END = 1 << POSITION_BITS_MEMBER


def is_collection(type_tag: int) -> bool:
    return type_tag in COLLECTION_TYPES


def encode_collection(version: int, count: int) -> bytes:
    """The payload of a collection's metadata record."""
    return _COLLECTION.pack(version, count)


def decode_collection(payload: bytes, stored_key: bytes) -> tuple[int, int]:
    """(version, member count) of a collection's metadata payload; raises
    errors.CorruptStorage if it is not one."""
    if len(payload) < _COLLECTION.size:
        raise CorruptStorage("shard data", f"collection record under {stored_key[:64]!r} has "
                             f"a {len(payload)}-byte payload (expected {_COLLECTION.size})")
    version, count = _COLLECTION.unpack_from(payload)
    return version, count


def slot_bytes(stored_data_key: bytes) -> bytes:
    """The 2-byte slot of a data key."""
    return stored_data_key[1:3]


def collection_prefix(slot: bytes, version: int) -> bytes:
    """The prefix of every member record of the collection incarnation (slot, version)."""
    return MEMBER_PREFIX + slot + version.to_bytes(8, "big")


def member_key(prefix: bytes, member: bytes, part: int = PART_MEMBERS) -> bytes:
    """The record of `member` in the collection whose member records start with `prefix`."""
    return prefix + part.to_bytes(1, "big") + crc32(member).to_bytes(4, "big") + member


def member_position_key(prefix: bytes, position: int, part: int = PART_MEMBERS) -> bytes:
    """The smallest member record at 32-bit `position` or after it."""
    return prefix + part.to_bytes(1, "big") + position.to_bytes(4, "big")


def member_part_end(prefix: bytes, part: int = PART_MEMBERS) -> bytes:
    return prefix + (part + 1).to_bytes(1, "big")


def member_of(stored_member_key: bytes) -> bytes:
    return stored_member_key[MEMBER_KEY_HEADER_BYTES:]


def member_position(stored_member_key: bytes) -> int:
    return int.from_bytes(stored_member_key[12:MEMBER_KEY_HEADER_BYTES], "big")


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with `prefix` (prefix non-empty and
    not all 0xff, which no prefix here is)."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1])


def garbage_key(prefix: bytes) -> bytes:
    """The record saying the members under `prefix` (a collection prefix) are garbage."""
    return GARBAGE_PREFIX + prefix[1:]


def garbage_prefix(garbage_record_key: bytes) -> bytes:
    """The collection prefix a garbage record names."""
    return MEMBER_PREFIX + garbage_record_key[1:]


def version_key(slot: bytes) -> bytes:
    return VERSION_PREFIX + slot


MEMBER_START, MEMBER_END = MEMBER_PREFIX, b"n"
GARBAGE_START, GARBAGE_END = GARBAGE_PREFIX, b"h"
VERSION_START, VERSION_END = VERSION_PREFIX, b"w"
