"""The set commands: SADD, SREM, SISMEMBER, SMEMBERS, SPOP, SMOVE, SINTER/SUNION/SDIFF...

A set is a collection (kv/collection.py): a metadata record at its key (version, member count)
and one member record per member (member -> b""). SADD, SREM, SISMEMBER, SMISMEMBER and SMOVE
cost one point read or write per member named. SINTER and SINTERCARD walk the smallest set and
look its members up in the others; SDIFF walks the first set; SUNION reads them all; each set
read whole is bounded by limits.collection_read_members_max (beyond it: iterate with SSCAN).

SPOP is a write, so its choice must be the same on every replica: it draws from a generator
seeded by the entry's timestamp (stamped by the leader) and the set's version and size, all of
them part of the replicated state (collection.random_source). SRANDMEMBER is a read and draws
from the read's seed, as HRANDFIELD does.

Replies and errors are Redis 7.0's (t_set.c), including its order of checks: every key of
SINTER/SUNION/SDIFF is type-checked before an empty set short-cuts the answer; SMEMBERS and the
set operations answer a set (RESP3 `~`), SPOP with a count too, SRANDMEMBER an array.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quorumkv import limits
from quorumkv.kv import collection
from quorumkv.kv.collection import Collection
from quorumkv.kv.hashes import (
    MemberScanRequest,
    members_full_error,
    parse_member_scan,
    parse_random_count,
    pick_random,
    random_reply_error,
    scan_collection,
)
from quorumkv.kv.keyspace import Keyspace
from quorumkv.kv.layout import ValueType
from quorumkv.kv.numbers import parse_integer
from quorumkv.kv.reply import SYNTAX_ERROR, ErrorReply, Reply, SetReply
from quorumkv.kv.spec import Arguments, CommandDefinition, define

SET = ValueType.SET
_EMPTY_SET = SetReply([])
_NOT_POSITIVE = ErrorReply(b"ERR value is out of range, must be positive")


def _set(keyspace: Keyspace, key: bytes) -> Collection | ErrorReply | None:
    return collection.find(keyspace, key, SET)


def _is_member(keyspace: Keyspace, found: Collection, member: bytes) -> bool:
    return collection.get(keyspace, found, member) is not None


# ---- SADD (SREM, SCARD, SISMEMBER: collection.py) -----------------------------------------------------------------------------


def _sadd(keyspace: Keyspace, args: Arguments) -> Reply:
    found = collection.find_or_create(keyspace, args[0], SET)
    if isinstance(found, ErrorReply):
        return found
    full = members_full_error(found.count + len(args) - 1)
    if full is not None:
        return full
    added = sum(collection.put(keyspace, found, member, b"") for member in args[1:])
    if added:
        collection.save(keyspace, found)
    return added


# ---- SCARD, SISMEMBER, SMISMEMBER, SMEMBERS -------------------------------------------------


def _smismember(keyspace: Keyspace, args: Arguments) -> Reply:
    found = _set(keyspace, args[0])
    if isinstance(found, ErrorReply):
        return found
    if found is None:
        return [0] * (len(args) - 1)
    return [int(_is_member(keyspace, found, member)) for member in args[1:]]


# ---- SRANDMEMBER, SPOP ----------------------------------------------------------------------


def _parse_srandmember(args: Arguments) -> tuple[bytes, int | None] | ErrorReply:
    if len(args) > 2:
        return SYNTAX_ERROR
    if len(args) == 1:
        return args[0], None
    count = parse_random_count(args[1])
    return count if isinstance(count, ErrorReply) else (args[0], count)


def _srandmember(keyspace: Keyspace, request: tuple[bytes, int | None]) -> Reply:
    key, count = request
    found = _set(keyspace, key)
    if count is None:
        if found is None or isinstance(found, ErrorReply):
            return found
        return collection.random_members(keyspace, found, 1, distinct=True)[0][0]
    if found is None or isinstance(found, ErrorReply):
        return [] if found is None else found
    refused = random_reply_error(count, found.count)
    if refused is not None:
        return refused
    rows = pick_random(keyspace, found, count)
    if rows is None:
        return collection.too_many_members_error(b"SRANDMEMBER", b"SSCAN")
    return [member for member, _ in rows]


def _parse_spop(args: Arguments) -> tuple[bytes, int | None] | ErrorReply:
    if len(args) > 2:
        return SYNTAX_ERROR
    if len(args) == 1:
        return args[0], None
    count = parse_integer(args[1])
    if count is None or count < 0:
        return _NOT_POSITIVE
    return args[0], count


def _spop(keyspace: Keyspace, request: tuple[bytes, int | None]) -> Reply:
    key, count = request
    found = _set(keyspace, key)
    if found is None or isinstance(found, ErrorReply):
        return (None if count is None else _EMPTY_SET) if found is None else found
    if count is None:
        member = collection.random_members(keyspace, found, 1, distinct=True)[0][0]
        collection.delete(keyspace, found, member)
        collection.save(keyspace, found)
        return member
    if count == 0:
        return _EMPTY_SET
    refused = random_reply_error(count, found.count)
    if refused is not None:
        return refused
    if count >= found.count:
        rows = collection.all_members(keyspace.store, found)
        if rows is None:
            return collection.too_many_members_error(b"SPOP", b"SSCAN")
        keyspace.remove(key)  # the members are released with the key, as DEL does
        return SetReply([member for member, _ in rows])
    popped = [member for member, _ in
              collection.random_members(keyspace, found, count, distinct=True)]
    for member in popped:
        collection.delete(keyspace, found, member)
    collection.save(keyspace, found)
    return SetReply(list(popped))


# ---- SMOVE ----------------------------------------------------------------------------------


def _smove(keyspace: Keyspace, args: Arguments) -> Reply:
    source_key, destination_key, member = args
    source = _set(keyspace, source_key)
    destination = _set(keyspace, destination_key)
    if source is None:
        return 0
    if isinstance(source, ErrorReply):
        return source
    if isinstance(destination, ErrorReply):
        return destination
    if source_key == destination_key:
        return int(_is_member(keyspace, source, member))
    if not collection.delete(keyspace, source, member):
        return 0
    collection.save(keyspace, source)
    target = destination if destination is not None else collection.new_collection(
        destination_key, SET)
    if collection.put(keyspace, target, member, b""):
        collection.save(keyspace, target)
    return 1


# ---- SINTER, SUNION, SDIFF, their STORE variants, SINTERCARD --------------------------------


def _sources(keyspace: Keyspace, keys: Arguments) -> list[Collection | None] | ErrorReply:
    """The sets named by `keys` (None for a missing key), or WRONGTYPE if any is not a set:
    every key is checked before anything is computed, as Redis does."""
    sources: list[Collection | None] = []
    for key in keys:
        found = _set(keyspace, key)
        if isinstance(found, ErrorReply):
            return found
        sources.append(found)
    return sources


def _read_all(keyspace: Keyspace, found: Collection, command_name: bytes) -> list[bytes] | ErrorReply:
    rows = collection.all_members(keyspace.store, found)
    if rows is None:
        return collection.too_many_members_error(command_name, b"SSCAN")
    return [member for member, _ in rows]


def _intersection(keyspace: Keyspace, sources: list[Collection | None], limit: int,
                  command_name: bytes) -> list[bytes] | ErrorReply:
    """Members of every set (at most `limit` of them, 0: no limit): the smallest set walked,
    its members looked up in the others."""
    present = [found for found in sources if found is not None]
    if len(present) < len(sources):
        return []
    present.sort(key=lambda found: found.count)
    smallest = _read_all(keyspace, present[0], command_name)
    if isinstance(smallest, ErrorReply):
        return smallest
    result: list[bytes] = []
    for member in smallest:
        if all(_is_member(keyspace, other, member) for other in present[1:]):
            result.append(member)
            if limit and len(result) >= limit:
                break
    return result


def _union(keyspace: Keyspace, sources: list[Collection | None],
           command_name: bytes) -> list[bytes] | ErrorReply:
    seen: dict[bytes, None] = {}
    for found in sources:
        if found is None:
            continue
        members = _read_all(keyspace, found, command_name)
        if isinstance(members, ErrorReply):
            return members
        seen.update(dict.fromkeys(members))
        if len(seen) > limits.collection_read_members_max:
            return collection.too_many_members_error(command_name, b"SSCAN")
    return list(seen)


def _difference(keyspace: Keyspace, sources: list[Collection | None],
                command_name: bytes) -> list[bytes] | ErrorReply:
    first = sources[0]
    if first is None:
        return []
    members = _read_all(keyspace, first, command_name)
    if isinstance(members, ErrorReply):
        return members
    others = [found for found in sources[1:] if found is not None]
    return [member for member in members
            if not any(_is_member(keyspace, other, member) for other in others)]


_OPERATIONS: dict[bytes, Callable[[Keyspace, list[Collection | None], bytes],
                                  list[bytes] | ErrorReply]] = {
    b"SINTER": lambda keyspace, sources, name: _intersection(keyspace, sources, 0, name),
    b"SUNION": _union,
    b"SDIFF": _difference,
}


_TOO_MANY_KEYS = ErrorReply(b"ERR a set operation names at most %d keys"
                            % limits.set_operation_keys_max)


def _parse_keys(args: Arguments) -> Arguments | ErrorReply:
    return _TOO_MANY_KEYS if len(args) > limits.set_operation_keys_max else args


def _set_operation(operation: bytes) -> Callable[[Keyspace, Arguments], Reply]:
    def execute(keyspace: Keyspace, args: Arguments) -> Reply:
        sources = _sources(keyspace, args)
        if isinstance(sources, ErrorReply):
            return sources
        result = _OPERATIONS[operation](keyspace, sources, operation)
        return result if isinstance(result, ErrorReply) else SetReply(list(result))
    return execute


def _set_operation_store(operation: bytes) -> Callable[[Keyspace, Arguments], Reply]:
    def execute(keyspace: Keyspace, args: Arguments) -> Reply:
        destination, keys = args[0], args[1:]
        sources = _sources(keyspace, keys)
        if isinstance(sources, ErrorReply):
            return sources
        result = _OPERATIONS[operation](keyspace, sources, operation + b"STORE")
        if isinstance(result, ErrorReply):
            return result
        keyspace.lookup(destination)
        if not result:
            keyspace.remove(destination)
            return 0
        target = collection.new_collection(destination, SET)
        for member in result:
            collection.put(keyspace, target, member, b"", exists=False)
        collection.save(keyspace, target)
        return len(result)
    return execute


@dataclass(frozen=True, slots=True)
class IntercardRequest:
    keys: Arguments
    limit: int


_NUMKEYS_NOT_POSITIVE = ErrorReply(b"ERR numkeys should be greater than 0")


def _parse_sintercard(args: Arguments) -> IntercardRequest | ErrorReply:
    numkeys = parse_integer(args[0])
    if numkeys is None or numkeys <= 0:
        return _NUMKEYS_NOT_POSITIVE
    if numkeys > len(args) - 1:
        return ErrorReply(b"ERR Number of keys can't be greater than number of args")
    if numkeys > limits.set_operation_keys_max:
        return _TOO_MANY_KEYS
    limit, position = 0, numkeys + 1
    while position < len(args):
        if args[position].upper() == b"LIMIT" and position + 1 < len(args):
            parsed = parse_integer(args[position + 1])
            if parsed is None or parsed < 0:
                return ErrorReply(b"ERR LIMIT can't be negative")
            limit = parsed
            position += 2
        else:
            return SYNTAX_ERROR
    return IntercardRequest(args[1 : numkeys + 1], limit)


def _sintercard(keyspace: Keyspace, request: IntercardRequest) -> Reply:
    sources = _sources(keyspace, request.keys)
    if isinstance(sources, ErrorReply):
        return sources
    result = _intersection(keyspace, sources, request.limit, b"SINTERCARD")
    return result if isinstance(result, ErrorReply) else len(result)


# ---- SSCAN ----------------------------------------------------------------------------------


def _sscan(keyspace: Keyspace, request: MemberScanRequest) -> Reply:
    return scan_collection(keyspace, request, SET, with_values=False)


DEFINITIONS: list[CommandDefinition] = [
    define(b"SADD", -3, "write denyoom fast", (1, 1, 1), "@write @set @fast", _sadd),
    define(b"SREM", -3, "write fast", (1, 1, 1), "@write @set @fast",
           collection.remove_command(SET)),
    define(b"SCARD", 2, "readonly fast", (1, 1, 1), "@read @set @fast",
           collection.count_command(SET)),
    define(b"SISMEMBER", 3, "readonly fast", (1, 1, 1), "@read @set @fast",
           collection.contains_command(SET)),
    define(b"SMISMEMBER", -3, "readonly fast", (1, 1, 1), "@read @set @fast", _smismember),
    define(b"SMEMBERS", 2, "readonly", (1, 1, 1), "@read @set @slow",
           collection.whole_command(SET, b"SMEMBERS", b"SSCAN",
                                    lambda rows: SetReply([m for m, _ in rows]), _EMPTY_SET)),
    define(b"SRANDMEMBER", -2, "readonly", (1, 1, 1), "@read @set @slow",
           _srandmember, _parse_srandmember, random=True),
    define(b"SPOP", -2, "write fast", (1, 1, 1), "@write @set @fast", _spop, _parse_spop),
    define(b"SMOVE", 4, "write fast", (1, 2, 1), "@write @set @fast", _smove),
    define(b"SINTER", -2, "readonly", (1, -1, 1), "@read @set @slow",
           _set_operation(b"SINTER"), _parse_keys),
    define(b"SUNION", -2, "readonly", (1, -1, 1), "@read @set @slow",
           _set_operation(b"SUNION"), _parse_keys),
    define(b"SDIFF", -2, "readonly", (1, -1, 1), "@read @set @slow",
           _set_operation(b"SDIFF"), _parse_keys),
    define(b"SINTERSTORE", -3, "write denyoom", (1, -1, 1), "@write @set @slow",
           _set_operation_store(b"SINTER"), _parse_keys),
    define(b"SUNIONSTORE", -3, "write denyoom", (1, -1, 1), "@write @set @slow",
           _set_operation_store(b"SUNION"), _parse_keys),
    define(b"SDIFFSTORE", -3, "write denyoom", (1, -1, 1), "@write @set @slow",
           _set_operation_store(b"SDIFF"), _parse_keys),
    define(b"SINTERCARD", -3, "readonly movablekeys", (0, 0, 0), "@read @set @slow",
           _sintercard, _parse_sintercard, numkeys_index=1),
    define(b"SSCAN", -3, "readonly", (1, 1, 1), "@read @set @slow", _sscan, parse_member_scan),
]
