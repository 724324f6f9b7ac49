"""The simulated network between nodes: delay, loss, duplication, reordering, partitions.

`send` decides a message's fate at once, from the network's own Random: lost (dropped now),
or delivered after a delay drawn in [delay_min_us, delay_max_us], and possibly duplicated (a
second copy arrives later). Without `reorder`, each directed link is FIFO: a message never
overtakes one sent before it on the same link. Partitions block directed links: a message
crossing a blocked link is dropped when sent and also when it would arrive (messages in
flight when a partition starts are lost), so both symmetric and one-way partitions exist.

Each delivered copy is a fresh object: the receiver may keep or change what it is handed
without touching the sender's copy or a duplicate's (a real network copies bytes).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from operator import attrgetter

from quorumkv.codec.peer import PeerMessage, SnapshotChunk, SnapshotChunkAck
from quorumkv.raft.types import Message
from quorumkv.sim.trace import Trace


@dataclass(frozen=True, slots=True)
class Envelope:
    """One copy of a message on the wire."""

    number: int  # the send's sequence number, shared by a message and its duplicate
    source: int
    target: int
    message: PeerMessage
    duplicate: bool = False


def describe_message(message: PeerMessage) -> str:
    """A compact, deterministic rendering of a message for the trace."""
    if isinstance(message, Message):
        text = (f"{message.type.name} g={message.group_id} t={message.term} "
                f"lt={message.log_term} i={message.index} c={message.commit}")
        if message.entries:
            text += f" n={len(message.entries)}@{message.entries[0].index}"
        if message.reject:
            text += f" reject hint={message.reject_hint}"
        if message.snapshot is not None:
            text += f" snap={message.snapshot.index}/{message.snapshot.term}"
        return text
    if isinstance(message, SnapshotChunk):
        return (f"CHUNK g={message.group_id} stream={message.stream_id} seq={message.sequence} "
                f"bytes={len(message.data)} last={int(message.last)}")
    if isinstance(message, SnapshotChunkAck):
        return (f"CHUNK_ACK g={message.group_id} stream={message.stream_id} "
                f"seq={message.sequence} accepted={int(message.accepted)}")
    return type(message).__name__


_MESSAGE_FIELDS = attrgetter(*(item.name for item in fields(Message)))


def fresh_copy(message: PeerMessage) -> PeerMessage:
    """A copy the receiver may own: Raft messages are mutable, chunks are frozen."""
    if isinstance(message, Message):
        copied = Message(*_MESSAGE_FIELDS(message))  # every field, positionally: fast
        copied.entries = list(copied.entries)
        return copied
    if isinstance(message, SnapshotChunk):
        return replace(message, message=fresh_copy(message.message))  # type: ignore[arg-type]
    return copy.copy(message)


class Network:
    """Links between every pair of nodes, with the run's delay and fault rates."""

    def __init__(
        self,
        rng: random.Random,
        trace: Trace,
        schedule: Callable[[int, Envelope], None],
        delay_min_us: int,
        delay_max_us: int,
        reorder: bool = False,
        loss_rate: float = 0.0,
        duplicate_rate: float = 0.0,
    ) -> None:
        self._rng = rng
        self._trace = trace
        self._schedule = schedule
        self.delay_min_us = delay_min_us
        self.delay_max_us = delay_max_us
        self.reorder = reorder
        self.loss_rate = loss_rate
        self.duplicate_rate = duplicate_rate
        self._partitions: dict[str, frozenset[tuple[int, int]]] = {}
        # A directed fault may rewrite what a node sends: (source, message) -> the message
        # that goes on the wire instead (sim/directed.py: Figure 8 truncates appends).
        self.rewrite: Callable[[int, PeerMessage], PeerMessage] | None = None
        self._blocked: frozenset[tuple[int, int]] = frozenset()
        self._last_arrival: dict[tuple[int, int], int] = {}
        self._sent = 0
        self.counts = {"sent": 0, "delivered": 0, "lost": 0, "duplicated": 0, "blocked": 0}

    # ---- faults -----------------------------------------------------------------------------

    def partition(self, blocked: Iterable[tuple[int, int]], name: str = "partition") -> None:
        """Block these directed links (source, target) until `heal`. Partitions of different
        names hold at once (the blocked links are their union): a directed nemesis (Figure 8,
        a rejoining replica, a cut-off paused leader) does not undo a random partition, and
        replacing or healing one name leaves the others alone."""
        self._partitions[name] = frozenset(blocked)
        self._blocked = frozenset().union(*self._partitions.values())

    def heal(self, name: str | None = None) -> None:
        """Heal the partition of this name, or every partition."""
        if name is None:
            self._partitions.clear()
        else:
            self._partitions.pop(name, None)
        self._blocked = frozenset().union(*self._partitions.values())

    def is_partitioned(self, name: str) -> bool:
        return bool(self._partitions.get(name))

    def is_blocked(self, source: int, target: int) -> bool:
        return (source, target) in self._blocked

    @property
    def blocked_links(self) -> list[tuple[int, int]]:
        return sorted(self._blocked)

    def set_faults(self, loss_rate: float, duplicate_rate: float) -> None:
        """Change the loss and duplication rates (the liveness phase turns them off)."""
        self.loss_rate = loss_rate
        self.duplicate_rate = duplicate_rate

    # ---- traffic ----------------------------------------------------------------------------

    def send(self, now_us: int, source: int, target: int, message: PeerMessage) -> None:
        """Put a message on the wire (or lose it)."""
        self._sent += 1
        self.counts["sent"] += 1
        number = self._sent
        what = describe_message(message)
        if self.is_blocked(source, target):
            self.counts["blocked"] += 1
            self._trace.record(now_us, f"drop #{number} {source}->{target} partitioned {what}")
            return
        if self.rewrite is not None:
            rewritten = self.rewrite(source, message)
            if rewritten is not message:
                message = rewritten
                what = describe_message(message)
                self._trace.record(now_us, f"rewrite #{number} {source}->{target} to {what}")
        if self.loss_rate and self._rng.random() < self.loss_rate:
            self.counts["lost"] += 1
            self._trace.record(now_us, f"drop #{number} {source}->{target} lost {what}")
            return
        arrival = self._arrival_us(now_us, source, target)
        self._trace.record(now_us, f"send #{number} {source}->{target} at {arrival} {what}")
        self._schedule(arrival, Envelope(number, source, target, message))
        if self.duplicate_rate and self._rng.random() < self.duplicate_rate:
            self.counts["duplicated"] += 1
            again = arrival + self._rng.randint(0, self.delay_max_us)
            self._trace.record(now_us, f"duplicate #{number} at {again}")
            self._schedule(again, Envelope(number, source, target, message, duplicate=True))

    def _arrival_us(self, now_us: int, source: int, target: int) -> int:
        arrival = now_us + self._rng.randint(self.delay_min_us, self.delay_max_us)
        if not self.reorder:
            link = (source, target)
            arrival = max(arrival, self._last_arrival.get(link, 0))
            self._last_arrival[link] = arrival
        return arrival

    def arrive(self, now_us: int, envelope: Envelope) -> PeerMessage | None:
        """The message to hand to the target now, or None if a partition swallowed it."""
        tag = f"#{envelope.number}{'(dup)' if envelope.duplicate else ''}"
        if self.is_blocked(envelope.source, envelope.target):
            self.counts["blocked"] += 1
            self._trace.record(
                now_us, f"drop {tag} {envelope.source}->{envelope.target} partitioned in flight")
            return None
        self.counts["delivered"] += 1
        self._trace.record(now_us, f"deliver {tag} {envelope.source}->{envelope.target}")
        return fresh_copy(envelope.message)
