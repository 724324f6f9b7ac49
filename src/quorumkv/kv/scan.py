"""Walking the keyspace: SCAN, KEYS and RANDOMKEY.

SCAN's cursor is a position in the data keys' order (kv/layout.py): slot << 32 | crc32(key),
a 46-bit unsigned number, which is what clients expect a cursor to be (redis-cli and go-redis
parse it as an unsigned 64-bit integer). A call reads the keys at positions from the cursor on,
always finishing the last position it touches (keys whose CRC32 collide share one), and
answers the next position as the new cursor; 0 once the end is reached. Because the order is
fixed by the keys themselves, a key present during the whole iteration is returned however
the keyspace changes in between, which is SCAN's guarantee; keys added or deleted meanwhile
may or may not be. COUNT bounds the keys read per call (at most limits.scan_records_max);
MATCH and TYPE filter what was read, so a call may answer few or no keys with a non-zero
cursor, as in Redis.

The cursor's top bits are the slot, so a server spreading slots over several shards can send
each part of the iteration to the shard that owns it. When a MATCH pattern fixes the hash
slot of every key it can match (a literal `{tag}` before any wildcard), SCAN and KEYS read
that slot alone, as Redis 8 does.

RANDOMKEY takes its randomness from the caller as a number (`choice`): it looks for the first
live key at or after the position `choice` names, wrapping around once.
"""

from __future__ import annotations

from dataclasses import dataclass

from quorumkv import limits
from quorumkv.cluster.slots import crc16
from quorumkv.kv import glob, layout
from quorumkv.kv.keyspace import Keyspace
from quorumkv.kv.numbers import parse_cursor, parse_integer
from quorumkv.kv.reply import INVALID_CURSOR, NOT_AN_INTEGER, SYNTAX_ERROR, ErrorReply, Reply
from quorumkv.kv.spec import Arguments, CommandDefinition, define
from quorumkv.kv.store import KeyValueStore

_SLOT_MASK = 0x3FFF


def pattern_slot(pattern: bytes) -> int | None:
    """The one hash slot every key matching `pattern` must be in, or None if it can be any."""
    opening = -1
    for index, byte in enumerate(pattern):
        if byte in b"*?[\\":
            return None
        if opening == -1 and byte == ord("{"):
            opening = index
        elif opening >= 0 and byte == ord("}"):
            if index == opening + 1:
                opening = -2  # "{}": the whole key is hashed
            else:
                return crc16(pattern[opening + 1 : index]) & _SLOT_MASK
    return crc16(pattern) & _SLOT_MASK


def _bounds(pattern: bytes | None) -> tuple[int, int]:
    """The positions [start, end) that keys matching `pattern` can occupy."""
    slot = None if pattern is None else pattern_slot(pattern)
    if slot is None:
        return 0, layout.POSITION_END
    return slot << 32, (slot + 1) << 32


def _end_key(end_position: int) -> bytes:
    return layout.DATA_END if end_position >= layout.POSITION_END else layout.position_key(
        end_position)


# ---- SCAN -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanRequest:
    cursor: int
    count: int
    pattern: bytes | None
    type_name: bytes | None


def _parse_scan(args: Arguments) -> ScanRequest | ErrorReply:
    return parse_scan_options(args, allow_type=True)


def parse_scan_options(args: Arguments, allow_type: bool) -> ScanRequest | ErrorReply:
    """SCAN's cursor and options, args[0] being the cursor; HSCAN and SSCAN take no TYPE."""
    cursor = parse_cursor(args[0])
    if cursor is None:
        return INVALID_CURSOR
    count, pattern, type_name = 10, None, None
    position = 1
    while position < len(args):
        option = args[position].upper()
        if position + 1 >= len(args):
            return SYNTAX_ERROR
        value = args[position + 1]
        if option == b"COUNT":
            parsed = parse_integer(value)
            if parsed is None:
                return NOT_AN_INTEGER
            if parsed < 1:
                return SYNTAX_ERROR
            count = parsed
        elif option == b"MATCH":
            pattern = None if value == b"*" else value
        elif option == b"TYPE" and allow_type:
            type_name = value.lower()
        else:
            return SYNTAX_ERROR
        position += 2
    return ScanRequest(cursor, count, pattern, type_name)


def scan_positions(store: KeyValueStore, cursor: int, count: int, pattern: bytes | None
                   ) -> tuple[int, list[tuple[bytes, bytes]]]:
    """(next cursor, stored rows) for one SCAN call: about `count` rows from `cursor` on,
    always ending at the end of a position; the next cursor is 0 when nothing is left."""
    start, end = _bounds(pattern)
    start = max(start, cursor)
    if start >= end:
        return 0, []
    budget = min(count, limits.scan_records_max)
    rows = store.scan(layout.position_key(start), _end_key(end), budget)
    if len(rows) < budget:
        return 0, rows
    last_position = layout.position_of(rows[-1][0])
    rows.extend(_rest_of_position(store, rows[-1][0], last_position))
    following = last_position + 1
    return (0 if following >= end else following), rows


def _rest_of_position(store: KeyValueStore, last_key: bytes,
                      position: int) -> list[tuple[bytes, bytes]]:
    """The rows after `last_key` that share its position (CRC32 collisions in one slot)."""
    rest: list[tuple[bytes, bytes]] = []
    end = _end_key(position + 1)
    while True:
        page = store.scan(last_key + b"\0", end, limits.store_page_records_max)
        rest.extend(page)
        if len(page) < limits.store_page_records_max:
            return rest
        last_key = page[-1][0]


def _scan(keyspace: Keyspace, request: ScanRequest) -> Reply:
    cursor, rows = scan_positions(keyspace.store, request.cursor, request.count,
                                  request.pattern)
    matches = glob.compile_pattern(request.pattern or b"*")
    wanted_type = None if request.type_name is None else layout.TYPES_BY_NAME.get(
        request.type_name, -1)
    keys: list[Reply] = []
    for stored_key, raw in rows:
        type_tag, expiry_ms = layout.record_header(raw)
        if expiry_ms and expiry_ms < keyspace.now_ms:
            continue
        if wanted_type is not None and type_tag != wanted_type:
            continue
        key = layout.user_key(stored_key)
        if matches(key):
            keys.append(key)
    return [b"%d" % cursor, keys]


# ---- KEYS -----------------------------------------------------------------------------------


def live_keys(store: KeyValueStore, now_ms: int, start_key: bytes, end_key: bytes,
              limit: int) -> tuple[list[bytes], bytes | None]:
    """Up to `limit` live keys stored in [start_key, end_key), and the stored key to resume
    from (None when the range is exhausted)."""
    rows = store.scan(start_key, end_key, limit)
    keys = [layout.user_key(stored_key) for stored_key, raw in rows
            if layout.is_live(raw, now_ms)]
    resume = rows[-1][0] + b"\0" if len(rows) == limit else None
    return keys, resume


def _keys(keyspace: Keyspace, args: Arguments) -> Reply:
    pattern = args[0]
    matches = glob.compile_pattern(pattern)
    start, end = _bounds(None if pattern == b"*" else pattern)
    found: list[Reply] = []
    resume: bytes | None = layout.position_key(start)
    while resume is not None:
        page, resume = live_keys(keyspace.store, keyspace.now_ms, resume, _end_key(end),
                                 limits.store_page_records_max)
        found.extend(key for key in page if matches(key))
        if len(found) > limits.keys_reply_max:
            return ErrorReply(b"ERR KEYS would answer more than %d keys; iterate with SCAN "
                              b"instead" % limits.keys_reply_max)
    return found


# ---- RANDOMKEY ------------------------------------------------------------------------------


def random_key(store: KeyValueStore, now_ms: int, choice: int) -> bytes | None:
    """A live key chosen by `choice` (any integer; the caller draws it at random), or None
    when the shard holds none among the keys looked at (limits.random_key_records_max)."""
    position = choice % layout.POSITION_END
    budget = limits.random_key_records_max
    for start, end in ((layout.position_key(position), layout.DATA_END),
                       (layout.DATA_START, layout.position_key(position))):
        rows = store.scan(start, end, budget)
        for stored_key, raw in rows:
            if layout.is_live(raw, now_ms):
                return layout.user_key(stored_key)
        budget -= len(rows)
        if budget <= 0:
            return None
    return None


def _randomkey(keyspace: Keyspace, args: Arguments) -> Reply:
    # A command run without a caller's choice derives one from its time: still deterministic.
    return random_key(keyspace.store, keyspace.now_ms, keyspace.now_ms * 0x9E3779B97F4A7C15)


DEFINITIONS: list[CommandDefinition] = [
    define(b"SCAN", -2, "readonly", (0, 0, 0), "@keyspace @read @slow", _scan, _parse_scan),
    define(b"KEYS", 2, "readonly", (0, 0, 0), "@keyspace @read @slow @dangerous", _keys),
    define(b"RANDOMKEY", 1, "readonly", (0, 0, 0), "@keyspace @read @slow", _randomkey),
]
