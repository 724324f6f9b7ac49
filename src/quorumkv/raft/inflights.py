"""The window of append messages in flight to one follower: the leader's flow control.

In the replicate state the leader pipelines appends without waiting for each answer (thesis
§10.2.2), but not without bound: every append sent is recorded here by the index of its last
entry (and its bytes); an acknowledgement up to an index frees every record at or below it. The
window is full when `count_max` messages or (if nonzero) `bytes_max` bytes are outstanding, and
then the leader sends no more appends to that follower until some are acknowledged.

Records are freed in order (acknowledgements are cumulative), so a deque of (index, bytes)
suffices: appends at the right, frees from the left.
"""

from __future__ import annotations

from collections import deque

from quorumkv.invariant import InvariantViolation, invariant


class Inflights:
    """A bounded FIFO of (last index, bytes) of the appends sent and not yet acknowledged."""

    __slots__ = ("count_max", "bytes_max", "_records", "bytes")

    def __init__(self, count_max: int, bytes_max: int = 0) -> None:
        invariant(count_max > 0, "an inflights window holds at least one message")
        self.count_max = count_max
        self.bytes_max = bytes_max  # 0: no bound on bytes
        self._records: deque[tuple[int, int]] = deque()
        self.bytes = 0

    def add(self, index: int, size_bytes: int) -> None:
        """Record an append whose last entry is `index`, carrying `size_bytes` bytes."""
        # Checked with `if` first: this runs per append, and the message is formatted lazily.
        if self.full() or (self._records and self._records[-1][0] >= index):
            raise InvariantViolation(
                f"cannot record append up to {index}: window full ({self.full()}) or not "
                f"after the newest in flight ({self.last_index()})"
            )
        self._records.append((index, size_bytes))
        self.bytes += size_bytes

    def free_to(self, index: int) -> None:
        """Forget every append whose last entry is at or below `index` (acknowledged)."""
        records = self._records
        while records and records[0][0] <= index:
            self.bytes -= records.popleft()[1]

    def free_first(self) -> None:
        """Forget the oldest append (a heartbeat answer shows the follower is alive)."""
        if self._records:
            self.bytes -= self._records.popleft()[1]

    def full(self) -> bool:
        return len(self._records) >= self.count_max or (
            self.bytes_max > 0 and self.bytes >= self.bytes_max
        )

    def count(self) -> int:
        return len(self._records)

    def last_index(self) -> int:
        """Last index of the newest append in flight, or 0 if none."""
        return self._records[-1][0] if self._records else 0

    def reset(self) -> None:
        self._records.clear()
        self.bytes = 0
