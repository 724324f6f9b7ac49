"""Slot range arithmetic agrees with plain sets of slots."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from quorumkv.cluster.slot_ranges import (
    SlotRange,
    format_ranges,
    normalize,
    overlap,
    ranges_of_slots,
    slot_total,
    subtract,
)

slot_sets = st.sets(st.integers(0, 200), max_size=60)


def slots_of(ranges: tuple[SlotRange, ...]) -> set[int]:
    return {slot for start, end in ranges for slot in range(start, end + 1)}


def is_normal(ranges: tuple[SlotRange, ...]) -> bool:
    return all(a.end + 1 < b.start for a, b in zip(ranges, ranges[1:], strict=False)) and all(
        r.start <= r.end for r in ranges)


@given(slot_sets)
def test_ranges_of_slots_cover_exactly_the_slots(slots: set[int]) -> None:
    """ranges_of_slots is normalized and covers exactly its slots."""
    ranges = ranges_of_slots(slots)
    assert slots_of(ranges) == slots
    assert is_normal(ranges)
    assert slot_total(ranges) == len(slots)


@given(slot_sets, slot_sets)
def test_overlap_and_subtract_are_set_operations(first: set[int], second: set[int]) -> None:
    """overlap is intersection and subtract is difference, both normalized."""
    a, b = ranges_of_slots(first), ranges_of_slots(second)
    assert slots_of(overlap(a, b)) == first & second
    assert slots_of(subtract(a, b)) == first - second
    assert is_normal(overlap(a, b)) and is_normal(subtract(a, b))


def test_normalize_merges_adjacent_and_overlapping_ranges() -> None:
    """Adjacent and overlapping ranges become one, in order."""
    ranges = normalize([SlotRange(10, 20), SlotRange(0, 4), SlotRange(5, 9), SlotRange(15, 30)])
    assert ranges == (SlotRange(0, 30),)
    assert format_ranges([SlotRange(0, 5460), SlotRange(5462, 5462)]) == "0-5460 5462"
