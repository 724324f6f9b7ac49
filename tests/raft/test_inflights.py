"""The inflights window (inflights.py): bounded by count and bytes, freed in order."""

from __future__ import annotations

import pytest

from quorumkv.invariant import InvariantViolation
from quorumkv.raft.inflights import Inflights


def test_full_by_count_and_freed_by_acknowledgement() -> None:
    """The window fills at count_max records and an acknowledgement frees every record at or
    below its index."""
    window = Inflights(3)
    for index in (5, 7, 9):
        window.add(index, 10)
    assert window.full()
    window.free_to(7)
    assert window.count() == 1 and not window.full() and window.bytes == 10
    window.free_to(100)
    assert window.count() == 0 and window.bytes == 0


def test_full_by_bytes() -> None:
    """With a byte bound, the window is full once that many bytes are in flight."""
    window = Inflights(100, bytes_max=25)
    window.add(1, 10)
    window.add(2, 10)
    assert not window.full()
    window.add(3, 10)
    assert window.full()


def test_free_first_and_reset() -> None:
    """free_first drops the oldest record; reset empties the window."""
    window = Inflights(4)
    window.add(1, 1)
    window.add(2, 2)
    window.free_first()
    assert window.last_index() == 2 and window.bytes == 2
    window.reset()
    assert window.count() == 0 and window.last_index() == 0


def test_adding_to_full_window_or_out_of_order_is_a_bug() -> None:
    """The leader never sends past a full window, nor records indexes out of order."""
    window = Inflights(1)
    window.add(3, 1)
    with pytest.raises(InvariantViolation):
        window.add(4, 1)
    window = Inflights(2)
    window.add(3, 1)
    with pytest.raises(InvariantViolation):
        window.add(3, 1)
