"""Commands that run on several shards for one client: the parts, and how replies combine.

Theory of operation. A plain client (one that does not route by itself) may send MGET, DEL,
EXISTS or UNLINK with keys on several shards, or a keyless command (DBSIZE, KEYS, FLUSHALL,
FLUSHDB, RANDOMKEY) that concerns every shard. The node splits such a command into `Part`s, one
per shard, each the same command over that shard's keys (in the client's order, duplicates
kept), runs every part wherever its shard's leader is, and `gather`s the replies into the one
reply the client expects:

    SUM             DEL, UNLINK, EXISTS, DBSIZE: the integers added
    BY_POSITION     MGET: each value put back at its key's position
    CONCATENATE     KEYS: the lists joined (in shard order)
    ALL_OK          FLUSHALL, FLUSHDB: +OK if every part said +OK
    FIRST_NON_NULL  RANDOMKEY: the first part's key that is not nil

Parts are independent commands: the whole is not atomic across shards (a DEL may delete on one
shard and fail on another; an MGET reads each shard at its own moment). The first error reply
of any part is the reply, since the client cannot be told which parts took effect.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from quorumkv.kv.reply import OK, ErrorReply, Reply, SimpleString


class Gather(enum.Enum):
    SUM = "sum"
    BY_POSITION = "by-position"
    CONCATENATE = "concatenate"
    ALL_OK = "all-ok"
    FIRST_NON_NULL = "first-non-null"


@dataclass(frozen=True, slots=True)
class Part:
    """Command `name` with `args` on shard `shard_id`; `positions` are the indexes, in the
    client's key list, of the keys this part carries (BY_POSITION)."""

    shard_id: int
    name: bytes
    args: tuple[bytes, ...]
    positions: tuple[int, ...] = ()


def split_keys(name: bytes, keys: Sequence[bytes], shard_ids: Sequence[int]) -> tuple[Part, ...]:
    """One part per shard for a command whose arguments are all keys (MGET, DEL, EXISTS,
    UNLINK); `shard_ids[i]` is the shard of `keys[i]`. Parts follow first appearance."""
    groups: dict[int, list[int]] = {}
    for position, shard_id in enumerate(shard_ids):
        groups.setdefault(shard_id, []).append(position)
    return tuple(Part(shard_id, name, tuple(keys[p] for p in positions), tuple(positions))
                 for shard_id, positions in groups.items())


def same_command(name: bytes, args: tuple[bytes, ...], shard_ids: Sequence[int]
                 ) -> tuple[Part, ...]:
    """The same keyless command on each of `shard_ids`."""
    return tuple(Part(shard_id, name, args) for shard_id in shard_ids)


def gather(how: Gather, parts: Sequence[Part], replies: Sequence[Reply]) -> Reply:
    """The client's reply from the replies of `parts` (in the same order)."""
    for reply in replies:
        if isinstance(reply, ErrorReply):
            return reply
    if how is Gather.SUM:
        return _sum(replies)
    if how is Gather.BY_POSITION:
        return _by_position(parts, replies)
    if how is Gather.CONCATENATE:
        return [item for reply in replies if isinstance(reply, list) for item in reply]
    if how is Gather.ALL_OK:
        return _all_ok(parts, replies)
    return next((reply for reply in replies if reply is not None), None)


def _all_ok(parts: Sequence[Part], replies: Sequence[Reply]) -> Reply:
    for part, reply in zip(parts, replies, strict=True):
        if not (isinstance(reply, SimpleString) and reply.value == b"OK"):
            return ErrorReply(b"ERR shard %d did not answer OK to %b" % (part.shard_id, part.name))
    return OK


def _sum(replies: Sequence[Reply]) -> Reply:
    total = 0
    for reply in replies:
        if not isinstance(reply, int) or isinstance(reply, bool):
            return ErrorReply(b"ERR a shard answered a non-integer where a count was expected")
        total += reply
    return total


def _by_position(parts: Sequence[Part], replies: Sequence[Reply]) -> Reply:
    values: list[Reply] = [None] * sum(len(part.positions) for part in parts)
    for part, reply in zip(parts, replies, strict=True):
        if not isinstance(reply, list) or len(reply) != len(part.positions):
            return ErrorReply(b"ERR shard %d answered %d values for %d keys" % (
                part.shard_id, len(reply) if isinstance(reply, list) else -1,
                len(part.positions)))
        for position, value in zip(part.positions, reply, strict=True):
            values[position] = value
    return values
