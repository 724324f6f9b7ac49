"""SCAN over several shards: a cursor naming the shard and the position inside it.

Theory of operation. Inside one shard, kv's SCAN cursor is a position in the shard's data
order, slot << 32 | crc32(key), 46 bits (kv/scan.py). The slot is there, but the position alone
cannot say which shard to continue on: a shard may own several slot ranges with other shards'
ranges between them (after slots move), and a shard's SCAN walks all of its own ranges in
position order before it ends, so positions are not increasing across shards. The cluster-wide
cursor therefore names the shard explicitly:

    cursor = shard_id << 46 | the shard's own cursor        (0: start)

A SCAN walks the shards of an `order` (ascending shard ids: every serving shard for a plain
client, the shards this node leads for a cluster client, or the one shard a MATCH pattern's
hash tag pins), one shard at a time: `plan_scan` turns the client's cursor into the shard and
the SCAN arguments to run there; `finish_scan` turns that shard's reply into the client's reply,
moving on to the next shard of the order (cursor = next_shard << 46) when the shard answers 0.
Shard ids stay at most limits.shard_id_max, so every cursor stays below 2**63.

SCAN's guarantee (a key present for the whole iteration is returned) holds while the shards
and their slots stay the same. A cursor naming a shard that no longer exists continues with the
next shard of the order; keys of slots that moved between shards during the iteration may be
missed or returned twice, as in Redis Cluster during resharding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from quorumkv.kv.reply import ErrorReply, Reply

SHARD_CURSOR_BITS = 46
"""Bits of a shard's own SCAN cursor (kv/layout.py: 14 bits of slot, 32 of CRC32)."""

_SHARD_CURSOR_MASK = (1 << SHARD_CURSOR_BITS) - 1


@dataclass(frozen=True, slots=True)
class ScanStep:
    """Run `args` (SCAN with the shard's own cursor) on shard `shard_id`, then pass its reply
    to `finish_scan`."""

    shard_id: int
    args: tuple[bytes, ...]
    order: tuple[int, ...]


def encode_cursor(shard_id: int, shard_cursor: int) -> int:
    """The cluster cursor continuing at `shard_cursor` inside shard `shard_id`."""
    return shard_id << SHARD_CURSOR_BITS | shard_cursor


def decode_cursor(cursor: int) -> tuple[int, int]:
    """(shard id, the shard's own cursor) of a cluster cursor; (0, 0) for 0, the start."""
    return cursor >> SHARD_CURSOR_BITS, cursor & _SHARD_CURSOR_MASK


def plan_scan(cursor: int, order: Sequence[int], args: tuple[bytes, ...]) -> ScanStep | None:
    """The step continuing the client's SCAN `args` (args[0] is its cursor, already parsed as
    `cursor`) over the shards of `order`, or None when nothing is left to scan."""
    shard_id, shard_cursor = decode_cursor(cursor)
    ordered = tuple(sorted(order))
    if shard_id not in ordered:
        later = [s for s in ordered if s > shard_id]
        if not later:
            return None
        shard_id, shard_cursor = later[0], 0
    return ScanStep(shard_id, (b"%d" % shard_cursor, *args[1:]), ordered)


def finish_scan(step: ScanStep, reply: Reply) -> Reply:
    """The client's reply for the shard's SCAN `reply`: its keys with the cluster cursor."""
    if isinstance(reply, ErrorReply):
        return reply
    if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[0], bytes)
            and reply[0].isdigit()):
        return ErrorReply(b"ERR shard %d answered SCAN with a malformed reply" % step.shard_id)
    shard_cursor = int(reply[0])
    if shard_cursor:
        return [b"%d" % encode_cursor(step.shard_id, shard_cursor), reply[1]]
    later = [s for s in step.order if s > step.shard_id]
    return [b"%d" % (encode_cursor(later[0], 0) if later else 0), reply[1]]
