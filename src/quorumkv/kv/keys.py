"""The generic key commands: DEL, UNLINK, EXISTS, TYPE, RENAME, RENAMENX, DBSIZE, FLUSHDB,
FLUSHALL, MEMORY USAGE (the iterating ones, SCAN, KEYS and RANDOMKEY, live in kv/scan.py; the
expiry ones in kv/expiry.py).

UNLINK is DEL: a shard's deletion costs the same either way here, and for a collection it is
already lazy (its members are released: kv/members.py). DBSIZE adds up the per-slot key counts
(kv/layout.py), so like Redis it counts keys that have expired but are not yet deleted. FLUSHDB
and FLUSHALL are the same command (there is one database) and remove every key of the shard,
walking the keys in bounded pages and releasing collections' members as DEL does; ASYNC and
SYNC are accepted and mean the same.

RENAME moves a collection's metadata record only when both keys are in one hash slot (members
are filed under the slot and the collection's version, not the key): O(1) whatever its size,
like Redis. Across slots (possible for plain clients when both slots are on one shard) its
members are copied under the destination's slot, one record each, in the same entry; a
collection of more than limits.collection_read_members_max members is refused there.

MEMORY USAGE answers the bytes of the key's records in the store (a collection's members
estimated from a sample, as Redis samples); MEMORY's other subcommands have no meaning here.

QKV.SWEEP is the internal entry the leader proposes while released members remain: it deletes
up to limits.sweep_records_per_entry_max of them, the same ones on every replica.
"""

from __future__ import annotations

from quorumkv import limits
from quorumkv.kv import collection, layout, members
from quorumkv.kv.keyspace import Keyspace
from quorumkv.kv.numbers import parse_integer
from quorumkv.kv.reply import (
    NO_SUCH_KEY,
    NOT_AN_INTEGER,
    OK,
    SYNTAX_ERROR,
    ErrorReply,
    Reply,
    SimpleString,
)
from quorumkv.kv.spec import Arguments, CommandDefinition, define
from quorumkv.kv.store import KeyValueStore

_NONE = SimpleString(b"none")
_TYPE_REPLIES = {tag: SimpleString(name) for tag, name in layout.TYPE_NAMES.items()}


def _delete(keyspace: Keyspace, args: Arguments) -> Reply:
    deleted = 0
    for key in args:
        if keyspace.lookup(key) is not None:
            keyspace.remove(key)
            deleted += 1
    return deleted


def _exists(keyspace: Keyspace, args: Arguments) -> Reply:
    return sum(1 for key in args if keyspace.lookup(key) is not None)


def _type(keyspace: Keyspace, args: Arguments) -> Reply:
    record = keyspace.lookup(args[0])
    return _NONE if record is None else _TYPE_REPLIES[layout.ValueType(record.type_tag)]


def _rename(keyspace: Keyspace, args: Arguments) -> Reply:
    return _move(keyspace, args[0], args[1], only_if_absent=False)


def _renamenx(keyspace: Keyspace, args: Arguments) -> Reply:
    return _move(keyspace, args[0], args[1], only_if_absent=True)


def _move(keyspace: Keyspace, source: bytes, destination: bytes, only_if_absent: bool) -> Reply:
    """RENAME and RENAMENX: the value moves with its type and expiry."""
    record = keyspace.lookup(source)
    if record is None:
        return NO_SUCH_KEY
    if source == destination:
        return 0 if only_if_absent else OK
    if keyspace.lookup(destination) is not None and only_if_absent:
        return 0
    payload = record.payload
    if layout.is_collection(record.type_tag):
        moved = _move_members(keyspace, source, destination, record)
        if isinstance(moved, ErrorReply):
            return moved
        payload = moved
    keyspace.write(destination, record.type_tag, payload, record.expiry_ms)
    keyspace.remove(source, release_members=False)
    return 1 if only_if_absent else OK


def _move_members(keyspace: Keyspace, source: bytes, destination: bytes,
                  record: layout.Record) -> bytes | ErrorReply:
    """The metadata payload `destination` gets for the collection `record` at `source`: the
    same one within a slot; across slots, a new version whose members are copied there (and
    the old ones deleted)."""
    source_key, destination_key = layout.data_key(source), layout.data_key(destination)
    if layout.slot_bytes(source_key) == layout.slot_bytes(destination_key):
        return record.payload
    found = collection.find(keyspace, source, record.type_tag)
    assert isinstance(found, collection.Collection)
    rows = collection.all_members(keyspace.store, found)
    if rows is None:
        return collection.too_many_members_error(b"RENAME across hash slots", b"a {hash tag}")
    target = collection.new_collection(destination, record.type_tag)
    for member, value in rows:
        collection.put(keyspace, target, member, value, exists=False)
        keyspace.store.delete(layout.member_key(found.prefix, member))
    return layout.encode_collection(target.version, target.count)


def key_count(store: KeyValueStore) -> int:
    """Keys stored in the shard (expired ones not yet deleted included)."""
    total, start = 0, layout.COUNT_START
    while True:
        rows = store.scan(start, layout.COUNT_END, limits.store_page_records_max)
        total += sum(layout.decode_count(raw) for _, raw in rows)
        if len(rows) < limits.store_page_records_max:
            return total
        start = rows[-1][0] + b"\0"


def count_totals(store: KeyValueStore) -> layout.SlotCounts:
    """The shard's keys, those with an expiry and the sum of their expiries (INFO keyspace),
    expired ones not yet deleted included."""
    keys = expiring = expiry_sum_ms = 0
    start = layout.COUNT_START
    while True:
        rows = store.scan(start, layout.COUNT_END, limits.store_page_records_max)
        for _, raw in rows:
            counts = layout.decode_counts(raw)
            keys += counts.keys
            expiring += counts.expiring
            expiry_sum_ms += counts.expiry_sum_ms
        if len(rows) < limits.store_page_records_max:
            return layout.SlotCounts(keys, expiring, expiry_sum_ms)
        start = rows[-1][0] + b"\0"


def _dbsize(keyspace: Keyspace, args: Arguments) -> Reply:
    return key_count(keyspace.store)


def erase_all(store: KeyValueStore) -> None:
    """Delete every key of the shard: data, expiry index and counts; collections' members are
    released (kv/members.py). The slots' version counters stay: released members may still be
    stored under their versions."""
    for start, end in ((layout.COUNT_START, layout.COUNT_END),
                       (layout.DATA_START, layout.DATA_END),
                       (layout.EXPIRY_START, layout.EXPIRY_END)):
        while True:
            rows = store.scan(start, end, limits.store_page_records_max)
            for stored_key, raw in rows:
                store.delete(stored_key)
                if start[:1] == layout.DATA_PREFIX:
                    members.release_record(store, stored_key,
                                           layout.decode_record(raw, stored_key))
            if len(rows) < limits.store_page_records_max:
                break
            start = rows[-1][0] + b"\0"


def _parse_flush(args: Arguments) -> Arguments | ErrorReply:
    if len(args) > 1 or (args and args[0].upper() not in (b"ASYNC", b"SYNC")):
        return SYNTAX_ERROR
    return args


def _flush(keyspace: Keyspace, args: Arguments) -> Reply:
    erase_all(keyspace.store)
    return OK


# ---- MEMORY USAGE -----------------------------------------------------------------------------

_MEMORY_SAMPLES_DEFAULT = 5


def _parse_memory(args: Arguments) -> tuple[bytes, int] | ErrorReply:
    subcommand = args[0].upper()
    if subcommand != b"USAGE":
        return ErrorReply(b"ERR MEMORY %b is not available in quorumkv (MEMORY USAGE is)"
                          % subcommand[:64])
    if len(args) < 2:
        return ErrorReply(b"ERR wrong number of arguments for 'memory|usage' command")
    samples = _MEMORY_SAMPLES_DEFAULT
    position = 2
    while position < len(args):
        if args[position].upper() == b"SAMPLES" and position + 1 < len(args):
            parsed = parse_integer(args[position + 1])
            if parsed is None:
                return NOT_AN_INTEGER
            samples = parsed if parsed > 0 else 0  # 0 (or less): every member
            position += 2
        else:
            return SYNTAX_ERROR
    return args[1], samples


def _memory_usage(keyspace: Keyspace, request: tuple[bytes, int]) -> Reply:
    """The bytes the key's records take in the store (keys and values, before RocksDB's
    compression): exact for a string; for a collection, its metadata plus its member count
    times the average size of the first `samples` member records (all of them for 0), as Redis
    samples its collections."""
    key, samples = request
    record = keyspace.lookup(key)
    if record is None:
        return None
    stored_key = layout.data_key(key)
    total = len(stored_key) + layout.RECORD_HEADER_BYTES + len(record.payload)
    if record.expiry_ms:
        total += len(layout.expiry_key(record.expiry_ms, stored_key))
    if not layout.is_collection(record.type_tag):
        return total
    found = collection.find(keyspace, key, record.type_tag)
    assert isinstance(found, collection.Collection)
    limit = found.count if samples == 0 else min(samples, found.count)
    rows = collection.page(keyspace.store, found,
                           layout.member_position_key(found.prefix, 0),
                           min(limit, limits.collection_read_members_max))
    if rows:
        total += sum(len(k) + len(v) for k, v in rows) * found.count // len(rows)
    return total


SWEEP = b"QKV.SWEEP"


def _sweep(keyspace: Keyspace, args: Arguments) -> Reply:
    return members.sweep(keyspace.store, limits.sweep_records_per_entry_max)


DEFINITIONS: list[CommandDefinition] = [
    define(b"DEL", -2, "write", (1, -1, 1), "@keyspace @write @slow", _delete),
    define(b"UNLINK", -2, "write fast", (1, -1, 1), "@keyspace @write @fast", _delete),
    define(b"EXISTS", -2, "readonly fast", (1, -1, 1), "@keyspace @read @fast", _exists),
    define(b"TYPE", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast", _type),
    define(b"RENAME", 3, "write", (1, 2, 1), "@keyspace @write @slow", _rename),
    define(b"RENAMENX", 3, "write fast", (1, 2, 1), "@keyspace @write @fast", _renamenx),
    define(b"DBSIZE", 1, "readonly fast", (0, 0, 0), "@keyspace @read @fast", _dbsize),
    define(b"FLUSHDB", -1, "write", (0, 0, 0), "@keyspace @write @slow @dangerous",
           _flush, _parse_flush),
    define(b"FLUSHALL", -1, "write", (0, 0, 0), "@keyspace @write @slow @dangerous",
           _flush, _parse_flush),
    define(b"MEMORY", -2, "readonly", (2, 2, 1), "@read @slow", _memory_usage, _parse_memory),
    define(SWEEP, 1, "write", (0, 0, 0), "@keyspace @write @slow", _sweep, internal=True),
]
