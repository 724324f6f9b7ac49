"""The membership a replica acts on, the progress of every member, and the votes it received.

The configuration is a `ConfState` (voters, learners, and during a change the outgoing voters
and the learners to be); from it the tracker derives the `JointConfig` quorum and keeps one
`Progress` per member. Every question about the group as a whole goes through here: the
committed index (a quorum of voters' match indexes, learners excluded), whether an election or a
read-index round is won, whether a quorum was recently active (check-quorum), and how long a
leader lease holds. The rules themselves live in quorum.py.
"""

from __future__ import annotations

from collections.abc import Iterator

from quorumkv.raft.inflights import Inflights
from quorumkv.raft.progress import Progress
from quorumkv.raft.quorum import JointConfig, VoteResult
from quorumkv.raft.types import ConfState


class ProgressTracker:
    """Configuration, per-member progress and votes of one replica."""

    __slots__ = (
        "conf_state",
        "quorum",
        "progress",
        "votes",
        "inflight_messages_max",
        "inflight_bytes_max",
        "_voter_ids",
        "_member_ids",
    )

    def __init__(self, inflight_messages_max: int, inflight_bytes_max: int = 0) -> None:
        self.conf_state = ConfState()
        self.quorum = JointConfig()
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.inflight_messages_max = inflight_messages_max
        self.inflight_bytes_max = inflight_bytes_max
        self._voter_ids: tuple[int, ...] = ()
        self._member_ids: tuple[int, ...] = ()

    def switch_to(self, conf_state: ConfState, next_index: int) -> None:
        """Act on `conf_state` from now on: new members start probing at `next_index` and are
        marked recently active (so a check-quorum right after the change does not count them
        as silent); members no longer in the configuration are forgotten."""
        self.conf_state = conf_state
        self.quorum = JointConfig.of(conf_state.voters, conf_state.voters_outgoing)
        self._voter_ids = tuple(sorted(self.quorum.ids()))
        # learners_next are still voters of the outgoing half: not learners yet.
        learners = set(conf_state.learners)
        members = set(self._voter_ids) | learners
        self._member_ids = tuple(sorted(members))
        for replica in list(self.progress):
            if replica not in members:
                del self.progress[replica]
        for replica in sorted(members):
            progress = self.progress.get(replica)
            if progress is None:
                progress = Progress(next_index, self.new_inflights())
                progress.recent_active = True
                self.progress[replica] = progress
            progress.is_learner = replica in learners

    def new_inflights(self) -> Inflights:
        return Inflights(self.inflight_messages_max, self.inflight_bytes_max)

    def voter_ids(self) -> tuple[int, ...]:
        """Voters of both halves, ascending."""
        return self._voter_ids

    def is_voter(self, replica: int) -> bool:
        return replica in self.quorum.incoming.voters or replica in self.quorum.outgoing.voters

    def is_single_voter(self, replica: int) -> bool:
        """True if `replica` is the only voter (it decides alone)."""
        return self._voter_ids == (replica,)

    def committed(self) -> int:
        """The highest index a quorum of voters has in its log; 0 without voters."""
        if not self._voter_ids:
            return 0
        progress = self.progress
        return self.quorum.committed_index({voter: progress[voter].match for voter in self._voter_ids})

    # ---- votes ------------------------------------------------------------------------------

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, replica: int, granted: bool) -> None:
        """Record the first answer of `replica` in this election; later ones are ignored."""
        self.votes.setdefault(replica, granted)

    def tally_votes(self) -> tuple[int, int, VoteResult]:
        """(granted, rejected, result) of the current election among voters."""
        granted = sum(1 for replica, vote in self.votes.items() if vote and self.is_voter(replica))
        rejected = sum(1 for replica, vote in self.votes.items() if not vote and self.is_voter(replica))
        return granted, rejected, self.quorum.vote_result(self.votes)

    # ---- liveness ---------------------------------------------------------------------------

    def quorum_active(self, self_id: int) -> bool:
        """True if a quorum of voters (this replica counting as active) answered recently."""
        active = {
            voter: progress.recent_active or voter == self_id
            for voter, progress in self.voter_progress()
        }
        return self.quorum.vote_result(active) == VoteResult.WON

    def lease_start(self, self_id: int, now: int) -> int:
        """The newest heartbeat send tick answered by a quorum of voters (this replica counting
        as `now`); -1 if none."""
        if not self._voter_ids:
            return -1
        ticks = {
            voter: now if voter == self_id else progress.lease_tick
            for voter, progress in self.voter_progress()
        }
        start = self.quorum.committed_index(ticks)
        return -1 if start < 0 else start

    def voter_progress(self) -> Iterator[tuple[int, Progress]]:
        progress = self.progress
        for voter in self._voter_ids:
            yield voter, progress[voter]

    def peers(self, self_id: int) -> Iterator[tuple[int, Progress]]:
        """Every member but this replica, ascending by id (deterministic message order)."""
        progress = self.progress
        for replica in self._member_ids:
            if replica != self_id:
                yield replica, progress[replica]
