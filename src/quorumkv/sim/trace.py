"""The complete event trace of a run, folded into one SHA-256 as it is written.

Every delivery, drop, tick, fault and client event appends one line. Two runs of the same seed
must produce the same lines in the same order (that is what `--trace-hash` compares), so lines
are built only from simulated time, ids and message fields, never from object identities or
the iteration order of hashed collections. Lines are kept in memory only when asked (replaying
a failing seed with `--trace`), to keep sweeps cheap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable


class Trace:
    """An append-only sequence of event lines and their running hash."""

    def __init__(self, keep_lines: bool = False, sink: Callable[[str], None] | None = None) -> None:
        self._hash = hashlib.sha256()
        self.keep_lines = keep_lines
        self.lines: list[str] = []
        self._sink = sink
        self.count = 0

    def record(self, time_us: int, text: str) -> None:
        """Append one event line stamped with the simulated time."""
        line = f"{time_us} {text}"
        self._hash.update(line.encode())
        self._hash.update(b"\n")
        self.count += 1
        if self.keep_lines:
            self.lines.append(line)
        if self._sink is not None:
            self._sink(line)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
