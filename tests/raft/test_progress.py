"""A leader's per-follower progress (progress.py): the probe/replicate/snapshot states."""

from __future__ import annotations

from quorumkv.raft.inflights import Inflights
from quorumkv.raft.progress import Progress, ProgressState


def fresh(next_index: int = 5, match: int = 0, window: int = 2) -> Progress:
    return Progress(next_index, Inflights(window), match=match)


def test_probe_pauses_after_one_append_until_answer() -> None:
    """In PROBE one append is outstanding at a time; an acknowledgement unpauses."""
    progress = fresh()
    assert not progress.is_paused()
    progress.sent_entries(6, 10)
    assert progress.is_paused()
    assert progress.maybe_update(6)
    assert not progress.is_paused() and progress.match == 6 and progress.next == 7


def test_replicate_streams_until_window_full() -> None:
    """In REPLICATE next advances optimistically until the inflights window fills."""
    progress = fresh(match=4)
    progress.become_replicate()
    progress.sent_entries(6, 1)
    progress.sent_entries(8, 1)
    assert progress.next == 9 and progress.is_paused()
    progress.inflights.free_to(6)
    assert not progress.is_paused()


def test_rejection_moves_next_back_using_hint() -> None:
    """A rejection in PROBE moves next to just after the hint (never below match + 1);
    a stale rejection is ignored."""
    progress = fresh(next_index=10, match=2)
    assert not progress.maybe_decrease_to(5, 3)  # not the probe in flight
    assert progress.maybe_decrease_to(9, 4)
    assert progress.next == 5
    assert progress.maybe_decrease_to(4, 0)
    assert progress.next == 3


def test_rejection_in_replicate_falls_back_to_match() -> None:
    """In REPLICATE a rejection above match resets next to match + 1."""
    progress = fresh(match=4)
    progress.become_replicate()
    progress.sent_entries(8, 1)
    assert not progress.maybe_decrease_to(3, 0)
    assert progress.maybe_decrease_to(8, 2)
    assert progress.next == 5


def test_snapshot_state_pauses_and_probe_resumes_after_it() -> None:
    """In SNAPSHOT nothing is sent; back in PROBE the leader resumes after the snapshot."""
    progress = fresh(match=2)
    progress.become_snapshot(20)
    assert progress.is_paused() and progress.state == ProgressState.SNAPSHOT
    progress.become_probe()
    assert progress.next == 21 and progress.state == ProgressState.PROBE
