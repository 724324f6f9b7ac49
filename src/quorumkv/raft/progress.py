"""What a leader knows about one follower's log, and how it feeds it (etcd-io/raft's Progress).

`match` is the highest index known to be in the follower's log (the paper's matchIndex);
`next` is the index of the next entry to send (nextIndex). A follower is in one of three states:

- PROBE: the leader does not know where the follower's log matches its own. It sends one
  append at a time and waits for the answer (or a heartbeat answer) before sending the next,
  moving `next` back on each rejection (using the follower's hint, see node.py).
- REPLICATE: the logs match up to `match`; the leader streams appends optimistically, advancing
  `next` as it sends, bounded by the inflights window.
- SNAPSHOT: the entries the follower needs were compacted; the leader asked the host to send a
  snapshot up to `pending_snapshot` and sends nothing else until it is acknowledged or fails.

`recent_active` says the follower answered since the last check-quorum round; `lease_tick` is
the send time (leader ticks) of the newest heartbeat it answered, for lease reads.
"""

from __future__ import annotations

import enum

from quorumkv.raft.inflights import Inflights


class ProgressState(enum.IntEnum):
    PROBE = 0
    REPLICATE = 1
    SNAPSHOT = 2


# Bound to module names: reading `ProgressState.REPLICATE` goes through the enum machinery
# (about five times a global's cost), and these are compared on every append.
PROBE = ProgressState.PROBE
REPLICATE = ProgressState.REPLICATE
SNAPSHOT = ProgressState.SNAPSHOT


class Progress:
    """A leader's view of one replica of its group (itself included)."""

    __slots__ = (
        "match",
        "next",
        "state",
        "pending_snapshot",
        "probe_sent",
        "recent_active",
        "is_learner",
        "inflights",
        "commit_sent",
        "lease_tick",
    )

    def __init__(
        self,
        next_index: int,
        inflights: Inflights,
        is_learner: bool = False,
        match: int = 0,
    ) -> None:
        self.match = match
        self.next = next_index
        self.state = PROBE
        self.pending_snapshot = 0
        self.probe_sent = False  # PROBE: an append is out, wait for its answer
        self.recent_active = False
        self.is_learner = is_learner
        self.inflights = inflights
        self.commit_sent = 0  # the commit index last sent to this follower
        self.lease_tick = -1  # send tick of the newest heartbeat answered; -1: none

    def _reset_state(self, state: ProgressState) -> None:
        self.probe_sent = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        """Probe from after `match` (or after a snapshot that was being sent)."""
        if self.state == SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def sent_entries(self, last_index: int, size_bytes: int) -> None:
        """Record an append carrying entries up to `last_index` (nothing if it carried none)."""
        if self.state == REPLICATE:
            self.next = last_index + 1
            self.inflights.add(last_index, size_bytes)
        elif self.state == PROBE:
            self.probe_sent = True

    def maybe_update(self, index: int) -> bool:
        """The follower acknowledged `index`; False if that told nothing new (stale answer)."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decrease_to(self, rejected: int, match_hint: int) -> bool:
        """The follower rejected an append after `rejected`; its log may match up to
        `match_hint`. Moves `next` back; False if the rejection is stale."""
        if self.state == REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        """True when the leader must not send appends to this follower now."""
        state = self.state
        if state == REPLICATE:
            return self.inflights.full()
        if state == PROBE:
            return self.probe_sent
        return True

    def describe(self) -> str:
        text = f"{self.state.name} match={self.match} next={self.next}"
        if self.is_learner:
            text += " learner"
        if self.state == SNAPSHOT:
            text += f" pending_snapshot={self.pending_snapshot}"
        if self.is_paused() and self.state != SNAPSHOT:
            text += " paused"
        if self.inflights.count():
            text += f" inflight={self.inflights.count()}"
        return text
