"""Key expiry: EXPIRE and friends, TTL and friends, PERSIST, and the background deletion.

Every expiry is stored as an absolute time in milliseconds. Relative times (EX, PX, EXPIRE,
PEXPIRE) are made absolute with the time of the command: the entry's `timestamp_ms`, stamped
by the leader when it proposed it, so all replicas compute the same expiry.

A key is expired once the command's time is past its expiry (as in Redis, a key is still
there during the very millisecond it expires; its PTTL is then 0): from then on no command
sees it. Physically it goes away when a write touches it (kv/keyspace.py) or when the leader
proposes `QKV.EXPIRE-DELETE key expiry_ms [key expiry_ms ...]` for the due keys that
`expired_keys` lists from the expiry index. That internal command deletes a key only if it
still has exactly that expiry and the entry's timestamp is past it, so a key
rewritten since the leader looked is left alone, and every replica decides the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quorumkv.kv import layout
from quorumkv.kv.keyspace import Keyspace
from quorumkv.kv.numbers import INT64_MAX, INT64_MIN, parse_integer
from quorumkv.kv.reply import (
    NOT_AN_INTEGER,
    ErrorReply,
    Reply,
    arity_error,
    c_string,
    invalid_expire_time_error,
)
from quorumkv.kv.spec import Arguments, CommandDefinition, define
from quorumkv.kv.store import KeyValueStore

EXPIRE_DELETE = b"QKV.EXPIRE-DELETE"

_SECONDS_MAX = INT64_MAX // 1000
_SECONDS_MIN = -(-INT64_MIN // 1000)  # C truncates the quotient toward zero


def positive_milliseconds(text: bytes, seconds: bool, command_name: bytes) -> int | ErrorReply:
    """The positive duration or timestamp `text` gives (EX, PX, EXAT, PXAT, SETEX), in
    milliseconds, or Redis's error for it."""
    value = parse_integer(text)
    if value is None:
        return NOT_AN_INTEGER
    if value <= 0 or (seconds and value > _SECONDS_MAX):
        return invalid_expire_time_error(command_name)
    return value * 1000 if seconds else value


def absolute_expiry(milliseconds: int, relative: bool, now_ms: int,
                    command_name: bytes) -> int | ErrorReply:
    """The absolute expiry of a positive duration (relative) or timestamp, or Redis's error
    when adding the command's time overflows."""
    when = milliseconds + now_ms if relative else milliseconds
    if when > INT64_MAX:
        return invalid_expire_time_error(command_name)
    return when


# ---- EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExpireRequest:
    key: bytes
    milliseconds: int  # relative to the command's time, or absolute (at=True)
    at: bool
    nx: bool
    xx: bool
    gt: bool
    lt: bool
    command_name: bytes


def _parse_expire(command_name: bytes, seconds: bool,
                  at: bool) -> Callable[[Arguments], ExpireRequest | ErrorReply]:
    def parse(args: Arguments) -> ExpireRequest | ErrorReply:
        flags = {b"NX": False, b"XX": False, b"GT": False, b"LT": False}
        for option in args[2:]:
            upper = option.upper()
            if upper not in flags:
                return ErrorReply(b"ERR Unsupported option %b" % c_string(option))
            flags[upper] = True
        nx, xx, gt, lt = flags[b"NX"], flags[b"XX"], flags[b"GT"], flags[b"LT"]
        if nx and (xx or gt or lt):
            return ErrorReply(b"ERR NX and XX, GT or LT options at the same time are not compatible")
        if gt and lt:
            return ErrorReply(b"ERR GT and LT options at the same time are not compatible")
        value = parse_integer(args[1])
        if value is None:
            return NOT_AN_INTEGER
        if seconds:
            if not _SECONDS_MIN <= value <= _SECONDS_MAX:
                return invalid_expire_time_error(command_name)
            value *= 1000
        return ExpireRequest(args[0], value, at, nx, xx, gt, lt, command_name)
    return parse


def _execute_expire(keyspace: Keyspace, request: ExpireRequest) -> Reply:
    base_ms = 0 if request.at else keyspace.now_ms
    if request.milliseconds > INT64_MAX - base_ms:
        return invalid_expire_time_error(request.command_name)
    when = request.milliseconds + base_ms
    record = keyspace.lookup(request.key)
    if record is None:
        return 0
    current = record.expiry_ms  # 0: no expiry, which GT and LT treat as infinite
    if ((request.nx and current) or (request.xx and not current)
            or (request.gt and (not current or when <= current))
            or (request.lt and current and when >= current)):
        return 0
    if when <= keyspace.now_ms:
        keyspace.remove(request.key)
    else:
        keyspace.write(request.key, record.type_tag, record.payload, when)
    return 1


# ---- TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST --------------------------------------------


def _time_to_live(milliseconds: bool, absolute: bool) -> Callable[[Keyspace, Arguments], Reply]:
    def execute(keyspace: Keyspace, args: Arguments) -> Reply:
        record = keyspace.lookup(args[0])
        if record is None:
            return -2
        if not record.expiry_ms:
            return -1
        remaining = record.expiry_ms if absolute else record.expiry_ms - keyspace.now_ms
        remaining = max(remaining, 0)
        return remaining if milliseconds else (remaining + 500) // 1000
    return execute


def _persist(keyspace: Keyspace, args: Arguments) -> Reply:
    record = keyspace.lookup(args[0])
    if record is None or not record.expiry_ms:
        return 0
    keyspace.write(args[0], record.type_tag, record.payload, 0)
    return 1


# ---- background deletion --------------------------------------------------------------------


def expired_keys(store: KeyValueStore, now_ms: int, limit: int) -> list[tuple[bytes, int]]:
    """Up to `limit` keys that have expired at `now_ms` (expiry before it), with that expiry,
    earliest first: what the leader proposes to delete with QKV.EXPIRE-DELETE."""
    rows = store.scan(layout.EXPIRY_START, layout.expiry_range_end(now_ms), limit)
    return [layout.parse_expiry_key(index_key) for index_key, _ in rows]


def _parse_expire_delete(args: Arguments) -> list[tuple[bytes, int]] | ErrorReply:
    if len(args) % 2:
        return arity_error(EXPIRE_DELETE)
    due: list[tuple[bytes, int]] = []
    for position in range(0, len(args), 2):
        expiry_ms = parse_integer(args[position + 1])
        if expiry_ms is None or expiry_ms <= 0:
            return NOT_AN_INTEGER
        due.append((args[position], expiry_ms))
    return due


def _execute_expire_delete(keyspace: Keyspace, due: list[tuple[bytes, int]]) -> Reply:
    deleted = 0
    for key, expiry_ms in due:
        record = keyspace.lookup_stored(key)
        if record is not None and record.expiry_ms == expiry_ms < keyspace.now_ms:
            deleted += keyspace.remove(key)
    return deleted


DEFINITIONS: list[CommandDefinition] = [
    define(b"EXPIRE", -3, "write fast", (1, 1, 1), "@keyspace @write @fast",
           _execute_expire, _parse_expire(b"expire", seconds=True, at=False)),
    define(b"PEXPIRE", -3, "write fast", (1, 1, 1), "@keyspace @write @fast",
           _execute_expire, _parse_expire(b"pexpire", seconds=False, at=False)),
    define(b"EXPIREAT", -3, "write fast", (1, 1, 1), "@keyspace @write @fast",
           _execute_expire, _parse_expire(b"expireat", seconds=True, at=True)),
    define(b"PEXPIREAT", -3, "write fast", (1, 1, 1), "@keyspace @write @fast",
           _execute_expire, _parse_expire(b"pexpireat", seconds=False, at=True)),
    define(b"TTL", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast",
           _time_to_live(milliseconds=False, absolute=False)),
    define(b"PTTL", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast",
           _time_to_live(milliseconds=True, absolute=False)),
    define(b"EXPIRETIME", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast",
           _time_to_live(milliseconds=False, absolute=True)),
    define(b"PEXPIRETIME", 2, "readonly fast", (1, 1, 1), "@keyspace @read @fast",
           _time_to_live(milliseconds=True, absolute=True)),
    define(b"PERSIST", 2, "write fast", (1, 1, 1), "@keyspace @write @fast", _persist),
    define(EXPIRE_DELETE, -3, "write fast", (1, -1, 2), "@keyspace @write @fast",
           _execute_expire_delete, _parse_expire_delete, internal=True),
]
