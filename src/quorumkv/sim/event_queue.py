"""The simulator's agenda: what happens next, in simulated time.

A binary heap of (time, sequence, event). The sequence number, taken from a counter at push
time, breaks ties so that events due at the same microsecond run in the order they were
scheduled: the order never depends on comparing payloads or on hashing, so a seed replays
exactly.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from quorumkv.invariant import invariant


@dataclass(slots=True)
class Event:
    """Something due at `time_us`: `kind` names the handler, `payload` is its argument."""

    time_us: int
    sequence: int
    kind: str
    payload: Any = None


class EventQueue:
    """Events ordered by (time, scheduling order)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Event]] = []  # (time, sequence, event): fast compare
        self._sequence = 0
        self.now_us = 0

    def push(self, time_us: int, kind: str, payload: Any = None) -> Event:
        """Schedule an event; it may not be in the past."""
        invariant(time_us >= self.now_us, f"event {kind} scheduled in the past")
        self._sequence += 1
        event = Event(time_us, self._sequence, kind, payload)
        heapq.heappush(self._heap, (time_us, self._sequence, event))
        return event

    def pop(self) -> Event | None:
        """The next event, advancing the clock to its time; None when nothing is scheduled."""
        if not self._heap:
            return None
        event = heapq.heappop(self._heap)[2]
        self.now_us = event.time_us
        return event

    def peek_time_us(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)
