"""Slot ranges: the inclusive [start, end] runs of hash slots a shard owns.

Redis Cluster describes slot ownership as inclusive ranges everywhere (CLUSTER SLOTS, CLUSTER
SHARDS, CLUSTER NODES), so quorumkv keeps them in that form too. A shard's ranges are always
kept *normalized*: sorted, non-overlapping, and with adjacent ranges merged, so that two equal
sets of slots have one representation and the metadata encodes deterministically.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from quorumkv.cluster.slots import SLOT_COUNT


class SlotRange(NamedTuple):
    """Slots `start` to `end`, both included."""

    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start + 1

    def __contains__(self, slot: object) -> bool:
        return isinstance(slot, int) and self.start <= slot <= self.end

    def is_valid(self) -> bool:
        """Whether both ends are slots and start <= end."""
        return 0 <= self.start <= self.end < SLOT_COUNT


FULL_RANGE = SlotRange(0, SLOT_COUNT - 1)


def normalize(ranges: Iterable[SlotRange]) -> tuple[SlotRange, ...]:
    """`ranges` sorted, with overlapping and adjacent ranges merged."""
    merged: list[SlotRange] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1].end + 1:
            if end > merged[-1].end:
                merged[-1] = SlotRange(merged[-1].start, end)
        else:
            merged.append(SlotRange(start, end))
    return tuple(merged)


def ranges_of_slots(slots: Iterable[int]) -> tuple[SlotRange, ...]:
    """The normalized ranges covering exactly `slots`."""
    return normalize(SlotRange(slot, slot) for slot in slots)


def slot_total(ranges: Iterable[SlotRange]) -> int:
    """How many slots `ranges` cover (they must not overlap)."""
    return sum(len(slot_range) for slot_range in ranges)


def overlap(first: Iterable[SlotRange], second: Iterable[SlotRange]) -> tuple[SlotRange, ...]:
    """The normalized ranges of the slots in both `first` and `second`."""
    result: list[SlotRange] = []
    right = normalize(second)
    for left in normalize(first):
        for other in right:
            start, end = max(left.start, other.start), min(left.end, other.end)
            if start <= end:
                result.append(SlotRange(start, end))
    return normalize(result)


def subtract(ranges: Iterable[SlotRange], removed: Iterable[SlotRange]) -> tuple[SlotRange, ...]:
    """The normalized ranges of the slots in `ranges` but not in `removed`."""
    remaining = list(normalize(ranges))
    for cut in normalize(removed):
        pieces: list[SlotRange] = []
        for piece in remaining:
            if cut.end < piece.start or cut.start > piece.end:
                pieces.append(piece)
                continue
            if piece.start < cut.start:
                pieces.append(SlotRange(piece.start, cut.start - 1))
            if cut.end < piece.end:
                pieces.append(SlotRange(cut.end + 1, piece.end))
        remaining = pieces
    return normalize(remaining)


def format_ranges(ranges: Iterable[SlotRange]) -> str:
    """Ranges as CLUSTER NODES writes them: "0-5460 5462", for messages and tables."""
    return " ".join(
        str(start) if start == end else f"{start}-{end}" for start, end in normalize(ranges))
