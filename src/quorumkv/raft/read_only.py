"""Read-only requests waiting for a leader to confirm its leadership (ReadIndex, thesis §6.4).

A linearizable read must not be answered by a deposed leader. With ReadIndex the leader records
its commit index when the request arrives (the read index), then sends a round of heartbeats
carrying the request's context; once a quorum of voters has answered that round, no other
leader can have been elected before the request arrived, and the read is safe at the read index
as soon as the state machine has applied it.

Requests are kept in arrival order. A heartbeat round confirms every request that arrived before
the one whose context it carried, so one round per batch of requests suffices: confirming the
newest request confirms all older ones (`advance`). Contexts identify requests and must be
unique among pending ones (a duplicate is ignored: it would be answered with the first).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from quorumkv.raft.types import Message


@dataclass(slots=True)
class ReadIndexStatus:
    """One pending request: the message that asked, its read index, who confirmed so far."""

    message: Message
    index: int
    acks: dict[int, bool] = field(default_factory=dict)


class ReadOnly:
    """Pending ReadIndex requests of a leader, in arrival order."""

    __slots__ = ("pending", "queue")

    def __init__(self) -> None:
        self.pending: dict[bytes, ReadIndexStatus] = {}
        self.queue: deque[bytes] = deque()

    def add_request(self, index: int, message: Message) -> None:
        """Queue a request for `message.context` at read index `index` (duplicates ignored)."""
        context = message.context
        if context in self.pending:
            return
        self.pending[context] = ReadIndexStatus(message, index)
        self.queue.append(context)

    def receive_ack(self, replica: int, context: bytes) -> dict[int, bool] | None:
        """Record that `replica` answered the heartbeat round carrying `context`; returns who
        confirmed that request so far, or None if it is not pending."""
        status = self.pending.get(context)
        if status is None:
            return None
        status.acks[replica] = True
        return status.acks

    def advance(self, context: bytes) -> list[ReadIndexStatus]:
        """Remove and return every request up to and including the one for `context`."""
        if context not in self.pending:
            return []
        confirmed: list[ReadIndexStatus] = []
        while self.queue:
            head = self.queue.popleft()
            confirmed.append(self.pending.pop(head))
            if head == context:
                break
        return confirmed

    def last_pending_context(self) -> bytes:
        """Context of the newest pending request, or b"" if none."""
        return self.queue[-1] if self.queue else b""

    def __len__(self) -> int:
        return len(self.queue)
