"""The history of a verify run, recorded as it happens by many client threads.

Theory of operation. Every client thread appends its events (invoke, then ok / fail / info) here
under one lock, stamped with the run's monotonic clock in nanoseconds since the run began; the
lock also orders the events, so the recorded order agrees with the times. Each event is
written to `history.jsonl` at once (the format of `quorumkv.history.json_lines`), so a run
that dies still leaves the history it had.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import IO

from quorumkv.history import Event, History, OpType, to_json_lines


class Recorder:
    """A thread-safe history, mirrored to a JSON-lines file."""

    def __init__(self, path: Path, start_ns: int) -> None:
        self.path = path
        self.start_ns = start_ns
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._file: IO[str] | None = path.open("w")

    def now(self) -> int:
        """Nanoseconds since the run began (monotonic)."""
        return time.monotonic_ns() - self.start_ns

    def record(self, kind: OpType, process: int, function: str, key: str | None,
               value: object) -> int:
        """Append one event stamped now; return its time."""
        with self._lock:
            event = Event(kind, process, function, key, value, self.now())
            self._events.append(event)
            if self._file is not None:
                self._file.write(to_json_lines(History([event])))
            return event.time

    def history(self) -> History:
        with self._lock:
            return History(self._events)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
