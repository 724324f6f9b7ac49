"""The string commands: GET, SET and its variants, MGET/MSET, APPEND, ranges, counters.

Semantics, replies and error texts follow Redis 7 (t_string.c), including the order in which
errors are found: what SET's options say is checked before the data is looked at (so it is
refused before proposing), while GETEX looks the key up before it checks its expiry number,
as Redis does. Writes that replace a value (SET, GETSET, MSET) drop the key's expiry unless
KEEPTTL; writes that modify a value in place (APPEND, SETRANGE, INCR...) keep it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quorumkv import limits
from quorumkv.kv.expiry import absolute_expiry, positive_milliseconds
from quorumkv.kv.keyspace import Keyspace
from quorumkv.kv.layout import Record, ValueType
from quorumkv.kv.numbers import (
    INT64_MAX,
    INT64_MIN,
    add_long_doubles,
    format_long_double,
    parse_integer,
    parse_long_double,
)
from quorumkv.kv.reply import (
    DECREMENT_OVERFLOW,
    INCREMENT_NOT_FINITE,
    INCREMENT_OVERFLOW,
    NOT_A_FLOAT,
    NOT_AN_INTEGER,
    OFFSET_OUT_OF_RANGE,
    OK,
    STRING_TOO_LONG,
    SYNTAX_ERROR,
    WRONGTYPE,
    ErrorReply,
    Reply,
    arity_error,
)
from quorumkv.kv.spec import Arguments, CommandDefinition, define

STRING = ValueType.STRING
_EXPIRY_OPTIONS = {b"EX": (True, True), b"PX": (False, True),  # (seconds, relative)
                   b"EXAT": (True, False), b"PXAT": (False, False)}


def string_record(keyspace: Keyspace, key: bytes) -> Record | ErrorReply | None:
    """The live string at `key`, None if there is none, WRONGTYPE if it holds another type."""
    record = keyspace.lookup(key)
    if record is not None and record.type_tag != STRING:
        return WRONGTYPE
    return record


# ---- SET and GETEX options ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StringOptions:
    """The options of SET (NX, XX, GET, KEEPTTL, an expiry) or of GETEX (PERSIST, an expiry)."""

    nx: bool = False
    xx: bool = False
    get: bool = False
    keep_ttl: bool = False
    persist: bool = False
    expiry_option: bytes = b""  # b"EX", b"PX", b"EXAT", b"PXAT" or b"" for none
    expiry_text: bytes = b""


def parse_string_options(args: Arguments, for_set: bool) -> StringOptions | ErrorReply:
    """SET's or GETEX's options, accepted and refused as Redis's
    parseExtendedStringArgumentsOrReply does (an option may repeat; conflicting ones may not)."""
    nx = xx = get = keep_ttl = persist = False
    expiry_option = expiry_text = b""
    position, count = 0, len(args)
    while position < count:
        option = args[position].upper()
        if option == b"NX" and for_set and not xx:
            nx = True
        elif option == b"XX" and for_set and not nx:
            xx = True
        elif option == b"GET" and for_set:
            get = True
        elif option == b"KEEPTTL" and for_set and not expiry_option:
            keep_ttl = True
        elif option == b"PERSIST" and not for_set and not expiry_option:
            persist = True
        elif (option in _EXPIRY_OPTIONS and not keep_ttl and not persist
              and expiry_option in (b"", option) and position + 1 < count):
            expiry_option, expiry_text = option, args[position + 1]
            position += 1
        else:
            return SYNTAX_ERROR
        position += 1
    return StringOptions(nx, xx, get, keep_ttl, persist, expiry_option, expiry_text)


def _expiry_at(options: StringOptions, now_ms: int, command_name: bytes) -> int | ErrorReply:
    """The absolute expiry the options ask for (0: none), or Redis's error."""
    if not options.expiry_option:
        return 0
    seconds, relative = _EXPIRY_OPTIONS[options.expiry_option]
    milliseconds = positive_milliseconds(options.expiry_text, seconds, command_name)
    if isinstance(milliseconds, ErrorReply):
        return milliseconds
    return absolute_expiry(milliseconds, relative, now_ms, command_name)


# ---- GET, SET, SETNX, SETEX, PSETEX, GETSET, GETDEL, GETEX ----------------------------------


def _get(keyspace: Keyspace, args: Arguments) -> Reply:
    record = string_record(keyspace, args[0])
    if record is None or isinstance(record, ErrorReply):
        return record
    return record.payload


@dataclass(frozen=True, slots=True)
class SetRequest:
    key: bytes
    value: bytes
    options: StringOptions


def _parse_set(args: Arguments) -> SetRequest | ErrorReply:
    if len(args) == 2:
        return SetRequest(args[0], args[1], _NO_OPTIONS)
    options = parse_string_options(args[2:], for_set=True)
    if isinstance(options, ErrorReply):
        return options
    if options.expiry_option:  # Redis checks the number before it looks at the data
        seconds = _EXPIRY_OPTIONS[options.expiry_option][0]
        checked = positive_milliseconds(options.expiry_text, seconds, b"set")
        if isinstance(checked, ErrorReply):
            return checked
    return SetRequest(args[0], args[1], options)


_NO_OPTIONS = StringOptions()


def _set(keyspace: Keyspace, request: SetRequest) -> Reply:
    options = request.options
    if options is _NO_OPTIONS:  # the hot path: SET key value
        keyspace.lookup(request.key)
        keyspace.write(request.key, STRING, request.value, 0)
        return OK
    expiry_ms = _expiry_at(options, keyspace.now_ms, b"set")
    if isinstance(expiry_ms, ErrorReply):
        return expiry_ms
    record = keyspace.lookup(request.key)
    if options.get and record is not None and record.type_tag != STRING:
        return WRONGTYPE
    previous = record.payload if record is not None else None
    if (options.nx and record is not None) or (options.xx and record is None):
        return previous if options.get else None
    if options.keep_ttl and record is not None:
        expiry_ms = record.expiry_ms
    keyspace.write(request.key, STRING, request.value, expiry_ms)
    return previous if options.get else OK


def _setnx(keyspace: Keyspace, args: Arguments) -> Reply:
    if keyspace.lookup(args[0]) is not None:
        return 0
    keyspace.write(args[0], STRING, args[1], 0)
    return 1


@dataclass(frozen=True, slots=True)
class SetExpiringRequest:
    key: bytes
    milliseconds: int
    value: bytes


def _parse_setex(seconds: bool,
                 command_name: bytes) -> Callable[[Arguments], SetExpiringRequest | ErrorReply]:
    def parse(args: Arguments) -> SetExpiringRequest | ErrorReply:
        milliseconds = positive_milliseconds(args[1], seconds, command_name)
        if isinstance(milliseconds, ErrorReply):
            return milliseconds
        return SetExpiringRequest(args[0], milliseconds, args[2])
    return parse


def _setex_executor(command_name: bytes) -> Callable[[Keyspace, SetExpiringRequest], Reply]:
    def execute(keyspace: Keyspace, request: SetExpiringRequest) -> Reply:
        expiry_ms = absolute_expiry(request.milliseconds, True, keyspace.now_ms, command_name)
        if isinstance(expiry_ms, ErrorReply):
            return expiry_ms
        keyspace.lookup(request.key)
        keyspace.write(request.key, STRING, request.value, expiry_ms)
        return OK
    return execute


def _getset(keyspace: Keyspace, args: Arguments) -> Reply:
    record = string_record(keyspace, args[0])
    if isinstance(record, ErrorReply):
        return record
    keyspace.write(args[0], STRING, args[1], 0)
    return None if record is None else record.payload


def _getdel(keyspace: Keyspace, args: Arguments) -> Reply:
    record = string_record(keyspace, args[0])
    if record is None or isinstance(record, ErrorReply):
        return record
    keyspace.remove(args[0])
    return record.payload


def _parse_getex(args: Arguments) -> tuple[bytes, StringOptions] | ErrorReply:
    options = parse_string_options(args[1:], for_set=False)
    return options if isinstance(options, ErrorReply) else (args[0], options)


def _getex(keyspace: Keyspace, request: tuple[bytes, StringOptions]) -> Reply:
    key, options = request
    record = string_record(keyspace, key)
    if record is None or isinstance(record, ErrorReply):
        return record
    expiry_ms = _expiry_at(options, keyspace.now_ms, b"getex")
    if isinstance(expiry_ms, ErrorReply):
        return expiry_ms
    if options.expiry_option and expiry_ms <= keyspace.now_ms:
        keyspace.remove(key)  # EXAT/PXAT not in the future: Redis deletes the key
    elif options.expiry_option:
        keyspace.write(key, STRING, record.payload, expiry_ms)
    elif options.persist and record.expiry_ms:
        keyspace.write(key, STRING, record.payload, 0)
    return record.payload


# ---- MGET, MSET, MSETNX ---------------------------------------------------------------------


def _mget(keyspace: Keyspace, args: Arguments) -> Reply:
    values: list[Reply] = []
    for key in args:
        record = keyspace.lookup(key)
        values.append(record.payload if record is not None and record.type_tag == STRING
                      else None)
    return values


def _parse_pairs(command_name: bytes) -> Callable[[Arguments], Arguments | ErrorReply]:
    def parse(args: Arguments) -> Arguments | ErrorReply:
        return arity_error(command_name) if len(args) % 2 else args
    return parse


def _mset(keyspace: Keyspace, args: Arguments) -> Reply:
    for position in range(0, len(args), 2):
        keyspace.lookup(args[position])
        keyspace.write(args[position], STRING, args[position + 1], 0)
    return OK


def _msetnx(keyspace: Keyspace, args: Arguments) -> Reply:
    if any(keyspace.lookup(args[position]) is not None for position in range(0, len(args), 2)):
        return 0
    _mset(keyspace, args)
    return 1


# ---- APPEND, STRLEN, GETRANGE, SETRANGE -----------------------------------------------------


def _append(keyspace: Keyspace, args: Arguments) -> Reply:
    key, addition = args
    record = string_record(keyspace, key)
    if isinstance(record, ErrorReply):
        return record
    if record is None:
        keyspace.write(key, STRING, addition, 0)
        return len(addition)
    total = len(record.payload) + len(addition)
    if total > limits.string_bytes_max:
        return STRING_TOO_LONG
    keyspace.write(key, STRING, record.payload + addition, record.expiry_ms)
    return total


def _strlen(keyspace: Keyspace, args: Arguments) -> Reply:
    record = string_record(keyspace, args[0])
    if record is None or isinstance(record, ErrorReply):
        return 0 if record is None else record
    return len(record.payload)


def _parse_getrange(args: Arguments) -> tuple[bytes, int, int] | ErrorReply:
    start, end = parse_integer(args[1]), parse_integer(args[2])
    if start is None or end is None:
        return NOT_AN_INTEGER
    return args[0], start, end


def _getrange(keyspace: Keyspace, request: tuple[bytes, int, int]) -> Reply:
    key, start, end = request
    record = string_record(keyspace, key)
    if record is None or isinstance(record, ErrorReply):
        return b"" if record is None else record
    return substring(record.payload, start, end)


def substring(value: bytes, start: int, end: int) -> bytes:
    """GETRANGE's slice: inclusive indexes, negative ones from the end, clamped to the value."""
    length = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    start = max(length + start if start < 0 else start, 0)
    end = max(length + end if end < 0 else end, 0)
    end = min(end, length - 1)
    if start > end or length == 0:
        return b""
    return value[start : end + 1]


def _parse_setrange(args: Arguments) -> tuple[bytes, int, bytes] | ErrorReply:
    offset = parse_integer(args[1])
    if offset is None:
        return NOT_AN_INTEGER
    if offset < 0:
        return OFFSET_OUT_OF_RANGE
    return args[0], offset, args[2]


def _setrange(keyspace: Keyspace, request: tuple[bytes, int, bytes]) -> Reply:
    key, offset, patch = request
    record = string_record(keyspace, key)
    if isinstance(record, ErrorReply):
        return record
    current = b"" if record is None else record.payload
    if not patch:
        return len(current)
    if offset + len(patch) > limits.string_bytes_max:
        return STRING_TOO_LONG
    padded = current.ljust(offset, b"\0")
    updated = padded[:offset] + patch + padded[offset + len(patch):]
    keyspace.write(key, STRING, updated, 0 if record is None else record.expiry_ms)
    return len(updated)


# ---- INCR, INCRBY, DECR, DECRBY, INCRBYFLOAT ------------------------------------------------


def _add_integer(keyspace: Keyspace, key: bytes, increment: int) -> Reply:
    record = string_record(keyspace, key)
    if isinstance(record, ErrorReply):
        return record
    value = 0 if record is None else parse_integer(record.payload)
    if value is None:
        return NOT_AN_INTEGER
    total = value + increment
    if not INT64_MIN <= total <= INT64_MAX:
        return INCREMENT_OVERFLOW
    keyspace.write(key, STRING, b"%d" % total, 0 if record is None else record.expiry_ms)
    return total


def _parse_increment(negate: bool) -> Callable[[Arguments], tuple[bytes, int] | ErrorReply]:
    def parse(args: Arguments) -> tuple[bytes, int] | ErrorReply:
        increment = parse_integer(args[1])
        if increment is None:
            return NOT_AN_INTEGER
        if negate and increment == INT64_MIN:
            return DECREMENT_OVERFLOW
        return args[0], -increment if negate else increment
    return parse


def _incr(keyspace: Keyspace, args: Arguments) -> Reply:
    return _add_integer(keyspace, args[0], 1)


def _decr(keyspace: Keyspace, args: Arguments) -> Reply:
    return _add_integer(keyspace, args[0], -1)


def _incrby(keyspace: Keyspace, request: tuple[bytes, int]) -> Reply:
    return _add_integer(keyspace, request[0], request[1])


def _incrbyfloat(keyspace: Keyspace, args: Arguments) -> Reply:
    key, increment_text = args
    record = string_record(keyspace, key)
    if isinstance(record, ErrorReply):
        return record
    value = parse_long_double(b"0" if record is None else record.payload)
    increment = parse_long_double(increment_text)
    if value is None or increment is None:
        return NOT_A_FLOAT
    total = add_long_doubles(value, increment)
    if total is None:
        return INCREMENT_NOT_FINITE
    text = format_long_double(total)
    keyspace.write(key, STRING, text, 0 if record is None else record.expiry_ms)
    return text


DEFINITIONS: list[CommandDefinition] = [
    define(b"GET", 2, "readonly fast", (1, 1, 1), "@read @string @fast", _get),
    define(b"SET", -3, "write denyoom", (1, 1, 1), "@write @string @slow", _set, _parse_set),
    define(b"SETNX", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast", _setnx),
    define(b"SETEX", 4, "write denyoom", (1, 1, 1), "@write @string @slow",
           _setex_executor(b"setex"), _parse_setex(True, b"setex")),
    define(b"PSETEX", 4, "write denyoom", (1, 1, 1), "@write @string @slow",
           _setex_executor(b"psetex"), _parse_setex(False, b"psetex")),
    define(b"GETSET", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast", _getset),
    define(b"GETDEL", 2, "write fast", (1, 1, 1), "@write @string @fast", _getdel),
    define(b"GETEX", -2, "write fast", (1, 1, 1), "@write @string @fast", _getex, _parse_getex),
    define(b"MGET", -2, "readonly fast", (1, -1, 1), "@read @string @fast", _mget),
    define(b"MSET", -3, "write denyoom", (1, -1, 2), "@write @string @slow",
           _mset, _parse_pairs(b"mset")),
    define(b"MSETNX", -3, "write denyoom", (1, -1, 2), "@write @string @slow",
           _msetnx, _parse_pairs(b"msetnx")),
    define(b"APPEND", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast", _append),
    define(b"STRLEN", 2, "readonly fast", (1, 1, 1), "@read @string @fast", _strlen),
    define(b"GETRANGE", 4, "readonly", (1, 1, 1), "@read @string @slow",
           _getrange, _parse_getrange),
    define(b"SETRANGE", 4, "write denyoom", (1, 1, 1), "@write @string @slow",
           _setrange, _parse_setrange),
    define(b"INCR", 2, "write denyoom fast", (1, 1, 1), "@write @string @fast", _incr),
    define(b"DECR", 2, "write denyoom fast", (1, 1, 1), "@write @string @fast", _decr),
    define(b"INCRBY", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast",
           _incrby, _parse_increment(negate=False)),
    define(b"DECRBY", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast",
           _incrby, _parse_increment(negate=True)),
    define(b"INCRBYFLOAT", 3, "write denyoom fast", (1, 1, 1), "@write @string @fast",
           _incrbyfloat),
]
