"""Shard-level load figures, kept for placement decisions (which shard to split or move).

Theory of operation. A node samples each shard it leads now and then: a `ShardSample` holds
the shard's key count, its stored bytes, and its running totals of reads and writes served,
with the time of the sample (the server's clock, passed in: nothing here reads a clock). Two
samples of the same shard give its `ShardStatistics`: keys and bytes as of the later sample,
reads and writes per second over the interval between them. Rates are computed from totals
rather than counted per interval so that a lost or late sample widens the interval instead of
losing operations.

Statistics travel between nodes (to whichever node plans placement) as versioned msgpack.
They are observations, not replicated state: a leader change restarts a shard's totals on the
new leader, and a sample whose totals went backwards is treated as a restart (rates from zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped,unused-ignore]

from quorumkv.errors import InvalidCommand

STATISTICS_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ShardSample:
    """One shard's figures at `timestamp_ms`; the totals count since the leader started."""

    shard_id: int
    timestamp_ms: int
    keys: int
    bytes: int
    reads_total: int
    writes_total: int


@dataclass(frozen=True, slots=True)
class ShardStatistics:
    """One shard's size and load."""

    shard_id: int
    keys: int
    bytes: int
    reads_per_second: float
    writes_per_second: float


def statistics_between(earlier: ShardSample | None, later: ShardSample) -> ShardStatistics:
    """The shard's statistics from two samples (or from one: rates 0 until a second comes)."""
    if earlier is None or earlier.shard_id != later.shard_id or (
            later.timestamp_ms <= earlier.timestamp_ms):
        return ShardStatistics(later.shard_id, later.keys, later.bytes, 0.0, 0.0)
    seconds = (later.timestamp_ms - earlier.timestamp_ms) / 1000
    return ShardStatistics(later.shard_id, later.keys, later.bytes,
                           _rate(earlier.reads_total, later.reads_total, seconds),
                           _rate(earlier.writes_total, later.writes_total, seconds))


def _rate(before: int, after: int, seconds: float) -> float:
    # Totals that went backwards mean the counting restarted (a new leader): count from zero.
    return (after - before if after >= before else after) / seconds


def encode_statistics(statistics: list[ShardStatistics]) -> bytes:
    """The versioned msgpack record of several shards' statistics."""
    rows = [[s.shard_id, s.keys, s.bytes, s.reads_per_second, s.writes_per_second]
            for s in statistics]
    return msgpack.packb(  # type: ignore[no-any-return,unused-ignore]
        [STATISTICS_FORMAT_VERSION, rows], use_bin_type=True)


def decode_statistics(data: bytes) -> list[ShardStatistics]:
    """The statistics `encode_statistics` produced `data` from; raises InvalidCommand."""
    try:
        record = msgpack.unpackb(data, raw=False)
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise InvalidCommand(f"shard statistics are not msgpack ({error})") from error
    try:
        version, rows = record
        if version != STATISTICS_FORMAT_VERSION:
            raise ValueError(f"format version {version!r} (this build reads "
                             f"{STATISTICS_FORMAT_VERSION})")
        return [_row(row) for row in rows]
    except (ValueError, TypeError) as error:
        raise InvalidCommand(f"shard statistics: {error}") from error


def _row(row: Any) -> ShardStatistics:
    shard_id, keys, size, reads, writes = row
    if not all(type(v) is int for v in (shard_id, keys, size)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (reads, writes)):
        raise ValueError(f"malformed statistics row {row!r:.80}")
    return ShardStatistics(shard_id, keys, size, float(reads), float(writes))
