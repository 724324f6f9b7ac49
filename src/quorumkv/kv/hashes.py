"""The hash commands: HSET, HGET, HDEL, HINCRBY, HGETALL, HRANDFIELD, HSCAN and the rest.

A hash is a collection (kv/collection.py): a metadata record at its key (version, field count)
and one member record per field, field -> value. Every command that names fields costs one
point read or write per field, whatever the hash's size; HGETALL, HKEYS and HVALS read the
whole hash (refused beyond limits.collection_read_members_max: iterate with HSCAN).

Replies and error texts are Redis 7.0's (t_hash.c), in Redis's order of checks: arguments that
do not depend on the data are refused before the key is looked up (and so before a write is
proposed), WRONGTYPE next, then errors that depend on the stored value (HINCRBY on a value that
is not an integer). HGETALL answers a map (RESP3 `%`), HRANDFIELD WITHVALUES an array of
[field, value] pairs in RESP3, flat in RESP2.

HRANDFIELD is a read: its randomness is the read's seed (Keyspace.seed: the host gives each
read one, from its unique ReadIndex context), never a replica's own generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quorumkv import limits
from quorumkv.kv import collection, glob
from quorumkv.kv.collection import Collection
from quorumkv.kv.keyspace import Keyspace
from quorumkv.kv.layout import ValueType
from quorumkv.kv.numbers import (
    INT64_MAX,
    INT64_MIN,
    add_long_doubles,
    format_long_double,
    parse_cursor,
    parse_integer,
    parse_long_double,
)
from quorumkv.kv.reply import (
    INCREMENT_NOT_FINITE,
    INCREMENT_OVERFLOW,
    INVALID_CURSOR,
    NOT_A_FLOAT,
    NOT_AN_INTEGER,
    OK,
    OUT_OF_RANGE,
    SYNTAX_ERROR,
    ErrorReply,
    Map,
    Pairs,
    Reply,
    arity_error,
)
from quorumkv.kv.scan import ScanRequest, parse_scan_options
from quorumkv.kv.spec import Arguments, CommandDefinition, define

HASH = ValueType.HASH
_COUNT_RANGE_ERROR = ErrorReply(b"ERR value is out of range, value must between "
                                b"-9223372036854775807 and 9223372036854775807")


def _hash(keyspace: Keyspace, key: bytes) -> Collection | ErrorReply | None:
    return collection.find(keyspace, key, HASH)


def members_full_error(adding: int) -> ErrorReply | None:
    """The refusal of a write that would take a collection past limits.collection_members_max."""
    return None if adding <= limits.collection_members_max else ErrorReply(
        b"ERR a collection holds at most %d members" % limits.collection_members_max)


# ---- HSET, HMSET, HSETNX --------------------------------------------------------------------


def _parse_field_values(command_name: bytes) -> Callable[[Arguments], Arguments | ErrorReply]:
    def parse(args: Arguments) -> Arguments | ErrorReply:
        return arity_error(command_name) if len(args) % 2 == 0 else args
    return parse


def _set_fields(keyspace: Keyspace, args: Arguments) -> int | ErrorReply:
    """Store the field/value pairs args[1:] in the hash args[0]; the number of new fields."""
    found = collection.find_or_create(keyspace, args[0], HASH)
    if isinstance(found, ErrorReply):
        return found
    full = members_full_error(found.count + (len(args) - 1) // 2)
    if full is not None:
        return full
    added = 0
    for position in range(1, len(args), 2):
        added += collection.put(keyspace, found, args[position], args[position + 1])
    collection.save(keyspace, found)
    return added


def _hset(keyspace: Keyspace, args: Arguments) -> Reply:
    return _set_fields(keyspace, args)


def _hmset(keyspace: Keyspace, args: Arguments) -> Reply:
    added = _set_fields(keyspace, args)
    return added if isinstance(added, ErrorReply) else OK


def _hsetnx(keyspace: Keyspace, args: Arguments) -> Reply:
    key, field, value = args
    found = collection.find_or_create(keyspace, key, HASH)
    if isinstance(found, ErrorReply):
        return found
    if collection.get(keyspace, found, field) is not None:
        return 0
    collection.put(keyspace, found, field, value, exists=False)
    collection.save(keyspace, found)
    return 1


# ---- HGET, HMGET, HSTRLEN (HEXISTS, HLEN, HDEL: collection.py) ------------------------------


def _hget(keyspace: Keyspace, args: Arguments) -> Reply:
    found = _hash(keyspace, args[0])
    if found is None or isinstance(found, ErrorReply):
        return found
    return collection.get(keyspace, found, args[1])


def _hmget(keyspace: Keyspace, args: Arguments) -> Reply:
    found = _hash(keyspace, args[0])
    if isinstance(found, ErrorReply):
        return found
    if found is None:
        return [None] * (len(args) - 1)
    return [collection.get(keyspace, found, field) for field in args[1:]]


def _hstrlen(keyspace: Keyspace, args: Arguments) -> Reply:
    found = _hash(keyspace, args[0])
    if found is None or isinstance(found, ErrorReply):
        return 0 if found is None else found
    value = collection.get(keyspace, found, args[1])
    return 0 if value is None else len(value)


# ---- HINCRBY, HINCRBYFLOAT ------------------------------------------------------------------


def _parse_hincrby(args: Arguments) -> tuple[bytes, bytes, int] | ErrorReply:
    increment = parse_integer(args[2])
    return NOT_AN_INTEGER if increment is None else (args[0], args[1], increment)


def _hincrby(keyspace: Keyspace, request: tuple[bytes, bytes, int]) -> Reply:
    key, field, increment = request
    found = collection.find_or_create(keyspace, key, HASH)
    if isinstance(found, ErrorReply):
        return found
    current = collection.get(keyspace, found, field)
    value = 0 if current is None else parse_integer(current)
    if value is None:
        return ErrorReply(b"ERR hash value is not an integer")
    total = value + increment
    if not INT64_MIN <= total <= INT64_MAX:
        return INCREMENT_OVERFLOW
    collection.put(keyspace, found, field, b"%d" % total, exists=current is not None)
    collection.save(keyspace, found)
    return total


def _parse_hincrbyfloat(args: Arguments) -> Arguments | ErrorReply:
    increment = parse_long_double(args[2])
    if increment is None:
        return NOT_A_FLOAT
    if not increment.is_finite():
        return ErrorReply(b"ERR value is NaN or Infinity")
    return args


def _hincrbyfloat(keyspace: Keyspace, args: Arguments) -> Reply:
    key, field, increment_text = args
    found = collection.find_or_create(keyspace, key, HASH)
    if isinstance(found, ErrorReply):
        return found
    current = collection.get(keyspace, found, field)
    value = parse_long_double(b"0" if current is None else current)
    if value is None:
        return ErrorReply(b"ERR hash value is not a float")
    increment = parse_long_double(increment_text)
    assert increment is not None  # checked by the parse
    total = add_long_doubles(value, increment)
    if total is None:
        return INCREMENT_NOT_FINITE
    text = format_long_double(total)
    collection.put(keyspace, found, field, text, exists=current is not None)
    collection.save(keyspace, found)
    return text


# ---- HRANDFIELD -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RandomRequest:
    key: bytes
    count: int | None  # None: one field, answered as a bulk string
    with_values: bool


def parse_random_count(text: bytes) -> int | ErrorReply:
    """The count of HRANDFIELD/SRANDMEMBER: any integer but INT64_MIN (Redis reads it with
    getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX))."""
    count = parse_integer(text)
    if count is None:
        return NOT_AN_INTEGER
    return _COUNT_RANGE_ERROR if count == INT64_MIN else count


def _parse_hrandfield(args: Arguments) -> RandomRequest | ErrorReply:
    if len(args) == 1:
        return RandomRequest(args[0], None, False)
    count = parse_random_count(args[1])
    if isinstance(count, ErrorReply):
        return count
    if len(args) > 3 or (len(args) == 3 and args[2].upper() != b"WITHVALUES"):
        return SYNTAX_ERROR
    with_values = len(args) == 3
    if with_values and not -(INT64_MAX // 2) <= count <= INT64_MAX // 2:
        return OUT_OF_RANGE
    return RandomRequest(args[0], count, with_values)


def random_reply_error(count: int, size: int) -> ErrorReply | None:
    """The refusal of a random pick whose reply would exceed limits.collection_read_members_max
    elements (a negative count repeats members, so it is not bounded by the size)."""
    elements = -count if count < 0 else min(count, size)
    if elements <= limits.collection_read_members_max:
        return None
    return ErrorReply(b"ERR the reply would hold more than %d elements; ask for fewer"
                      % limits.collection_read_members_max)


def pick_random(keyspace: Keyspace, found: Collection,
                count: int) -> list[tuple[bytes, bytes]] | None:
    """HRANDFIELD's and SRANDMEMBER's members for a count: all of them (stored order) when
    count >= size, else random ones (None when the whole collection is too big to read)."""
    if count >= found.count:
        return collection.all_members(keyspace.store, found)
    return collection.random_members(keyspace, found, abs(count), distinct=count >= 0)


def _hrandfield(keyspace: Keyspace, request: RandomRequest) -> Reply:
    found = _hash(keyspace, request.key)
    if request.count is None:
        if found is None or isinstance(found, ErrorReply):
            return found
        return collection.random_members(keyspace, found, 1, distinct=True)[0][0]
    if found is None or isinstance(found, ErrorReply):
        return [] if found is None else found
    refused = random_reply_error(request.count, found.count)
    if refused is not None:
        return refused
    rows = pick_random(keyspace, found, request.count)
    if rows is None:
        return collection.too_many_members_error(b"HRANDFIELD", b"HSCAN")
    if request.with_values:
        return Pairs([(field, value) for field, value in rows])
    return [field for field, _ in rows]


# ---- HSCAN ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberScanRequest:
    key: bytes
    scan: ScanRequest | ErrorReply  # an option error is answered after the key's type check


def parse_member_scan(args: Arguments) -> MemberScanRequest | ErrorReply:
    """HSCAN's and SSCAN's arguments: a bad cursor is refused first, as in Redis; a bad option
    only after the key is looked up (Redis parses options in scanGenericCommand)."""
    if parse_cursor(args[1]) is None:
        return INVALID_CURSOR
    return MemberScanRequest(args[0], parse_scan_options(args[1:], allow_type=False))


def scan_collection(keyspace: Keyspace, request: MemberScanRequest, type_tag: int,
                    with_values: bool) -> Reply:
    """One HSCAN (with values) or SSCAN call."""
    found = collection.find(keyspace, request.key, type_tag)
    if found is None:
        return [b"0", []]
    if isinstance(found, ErrorReply):
        return found
    if isinstance(request.scan, ErrorReply):
        return request.scan
    scan = request.scan
    cursor, rows = collection.scan_members(keyspace.store, found, scan.cursor, scan.count)
    matches = glob.compile_pattern(scan.pattern or b"*")
    items: list[Reply] = []
    for member, value in rows:
        if scan.pattern is None or matches(member):
            items.append(member)
            if with_values:
                items.append(value)
    return [b"%d" % cursor, items]


def _hscan(keyspace: Keyspace, request: MemberScanRequest) -> Reply:
    return scan_collection(keyspace, request, HASH, with_values=True)


DEFINITIONS: list[CommandDefinition] = [
    define(b"HSET", -4, "write denyoom fast", (1, 1, 1), "@write @hash @fast",
           _hset, _parse_field_values(b"hset")),
    define(b"HMSET", -4, "write denyoom fast", (1, 1, 1), "@write @hash @fast",
           _hmset, _parse_field_values(b"hmset")),
    define(b"HSETNX", 4, "write denyoom fast", (1, 1, 1), "@write @hash @fast", _hsetnx),
    define(b"HGET", 3, "readonly fast", (1, 1, 1), "@read @hash @fast", _hget),
    define(b"HMGET", -3, "readonly fast", (1, 1, 1), "@read @hash @fast", _hmget),
    define(b"HEXISTS", 3, "readonly fast", (1, 1, 1), "@read @hash @fast",
           collection.contains_command(HASH)),
    define(b"HSTRLEN", 3, "readonly fast", (1, 1, 1), "@read @hash @fast", _hstrlen),
    define(b"HLEN", 2, "readonly fast", (1, 1, 1), "@read @hash @fast",
           collection.count_command(HASH)),
    define(b"HDEL", -3, "write fast", (1, 1, 1), "@write @hash @fast",
           collection.remove_command(HASH)),
    define(b"HGETALL", 2, "readonly", (1, 1, 1), "@read @hash @slow",
           collection.whole_command(HASH, b"HGETALL", b"HSCAN",
                                    lambda rows: Map([(f, v) for f, v in rows]), Map([]))),
    define(b"HKEYS", 2, "readonly", (1, 1, 1), "@read @hash @slow",
           collection.whole_command(HASH, b"HKEYS", b"HSCAN",
                                    lambda rows: [f for f, _ in rows], [])),
    define(b"HVALS", 2, "readonly", (1, 1, 1), "@read @hash @slow",
           collection.whole_command(HASH, b"HVALS", b"HSCAN",
                                    lambda rows: [v for _, v in rows], [])),
    define(b"HINCRBY", 4, "write denyoom fast", (1, 1, 1), "@write @hash @fast",
           _hincrby, _parse_hincrby),
    define(b"HINCRBYFLOAT", 4, "write denyoom fast", (1, 1, 1), "@write @hash @fast",
           _hincrbyfloat, _parse_hincrbyfloat),
    define(b"HRANDFIELD", -2, "readonly", (1, 1, 1), "@read @hash @slow",
           _hrandfield, _parse_hrandfield, random=True),
    define(b"HSCAN", -3, "readonly", (1, 1, 1), "@read @hash @slow", _hscan, parse_member_scan),
]
