"""Peer reachability in the log: one line per change, a bounded number per peer per interval."""

from __future__ import annotations

import logging

import pytest

from quorumkv.server.reachability_log import ReachabilityLog


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    found = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "quorumkv.peer"]
    caplog.clear()
    return found


def test_a_peer_going_away_and_coming_back_is_two_lines(
        caplog: pytest.LogCaptureFixture) -> None:
    """First contact, loss (a warning, with the reason) and return (with how long it was
    away) are one line each, at once; redial failures while it is away add nothing."""
    caplog.set_level(logging.INFO, logger="quorumkv.peer")
    reach = ReachabilityLog(1, interval_ms=10_000, lines_max=4)
    assert reach.changed(2, False, 0, "cannot connect: refused") is None
    assert reach.changed(2, True, 100) is None
    assert messages(caplog) == [
        (logging.INFO, "node 1: node 2 unreachable: cannot connect: refused"),
        (logging.INFO, "node 1: node 2 reachable")]
    assert reach.changed(2, False, 50_000, "connection lost") is None
    for attempt in range(20):
        assert reach.changed(2, False, 50_100 + attempt, "cannot connect") is None
    assert messages(caplog) == [(logging.WARNING, "node 1: node 2 unreachable: connection "
                                                  "lost")]
    assert reach.changed(2, True, 73_500) is None
    assert messages(caplog) == [(logging.INFO, "node 1: node 2 reachable again after 23.5 s "
                                               "unreachable")]


def test_a_flapping_peer_costs_a_bounded_number_of_lines_and_the_last_one_is_true(
        caplog: pytest.LogCaptureFixture) -> None:
    """A link that goes down and up 100 times within an interval is told in at most
    lines_max lines then, and one more at the end of the window, saying the state it is in
    then and how many changes it went through."""
    caplog.set_level(logging.INFO, logger="quorumkv.peer")
    reach = ReachabilityLog(1, interval_ms=10_000, lines_max=2)
    reach.changed(3, True, 0)
    messages(caplog)
    settle_times = []
    for flap in range(100):
        settle_times.append(reach.changed(3, False, 1_000 + 20 * flap, "connection lost"))
        settle_times.append(reach.changed(3, True, 1_010 + 20 * flap))
    assert messages(caplog) == [(logging.WARNING, "node 1: node 3 unreachable: connection lost")]
    assert [t for t in settle_times if t is not None] == [10_000]
    reach.changed(3, False, 9_000, "connection reset")
    reach.settle(3, 10_000)
    lines = messages(caplog)
    assert lines == [(logging.WARNING, "node 1: node 3 unreachable: connection reset (200 "
                                       "changes of its connection in the last 9.0 s)")]
    reach.settle(3, 10_001)  # nothing held back any more
    assert messages(caplog) == []
