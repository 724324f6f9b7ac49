"""Quorums: when does a set of voters agree (a majority of one configuration, or of two).

A majority configuration is a set of voters; any two majorities of it overlap, which is what
makes a committed entry or a won election unique (Raft paper §5.2, §5.3). A joint configuration
(thesis §4.3) is a pair (incoming, outgoing) that needs a majority of EACH during a membership
change, so that neither the old nor the new voters can decide alone.

Two questions are answered here, and nowhere else:

- `committed_index(acked)`: the highest index acknowledged by a quorum, given what each voter
  acknowledged (its match index). For a majority configuration of n voters, sort the acked
  indexes in decreasing order and take the one at position n // 2: that many plus one voters
  have at least it. A joint configuration takes the smaller of its two halves.
- `vote_result(votes)`: whether an election (or a read-index confirmation round) is won, lost
  or still pending, given the yes/no answers received so far.

An empty majority configuration agrees to everything (committed index UNBOUNDED_INDEX, vote
WON); that makes a joint configuration with an empty outgoing half behave like its incoming half.
Callers with no voters at all must handle that case themselves.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

UNBOUNDED_INDEX = 1 << 63
"""What an empty configuration answers for its committed index: no constraint."""


class VoteResult(enum.IntEnum):
    PENDING = 0  # neither won nor lost yet: some voters have not answered
    LOST = 1  # a quorum can no longer be reached
    WON = 2  # a quorum said yes


@dataclass(slots=True, frozen=True)
class MajorityConfig:
    """A set of voters; decisions need more than half of them."""

    voters: frozenset[int] = frozenset()

    def committed_index(self, acked: Mapping[int, int]) -> int:
        """Highest index acknowledged by a majority; voters absent from `acked` count as 0."""
        count = len(self.voters)
        if count == 0:
            return UNBOUNDED_INDEX
        if count == 1:
            (voter,) = self.voters
            return acked.get(voter, 0)
        indexes = sorted((acked.get(voter, 0) for voter in self.voters), reverse=True)
        return indexes[count // 2]

    def vote_result(self, votes: Mapping[int, bool]) -> VoteResult:
        """WON once a majority voted yes, LOST once a majority cannot be reached."""
        if not self.voters:
            return VoteResult.WON
        granted = missing = 0
        for voter in self.voters:
            vote = votes.get(voter)
            if vote is None:
                missing += 1
            elif vote:
                granted += 1
        quorum = len(self.voters) // 2 + 1
        if granted >= quorum:
            return VoteResult.WON
        if granted + missing >= quorum:
            return VoteResult.PENDING
        return VoteResult.LOST

    def __str__(self) -> str:
        return "(" + " ".join(str(voter) for voter in sorted(self.voters)) + ")"


@dataclass(slots=True, frozen=True)
class JointConfig:
    """Two majority configurations that must both agree; `outgoing` is empty outside a change."""

    incoming: MajorityConfig = MajorityConfig()
    outgoing: MajorityConfig = MajorityConfig()

    @classmethod
    def of(cls, incoming: tuple[int, ...], outgoing: tuple[int, ...] = ()) -> JointConfig:
        return cls(MajorityConfig(frozenset(incoming)), MajorityConfig(frozenset(outgoing)))

    def ids(self) -> frozenset[int]:
        """Every voter of either half."""
        return self.incoming.voters | self.outgoing.voters

    def is_joint(self) -> bool:
        return bool(self.outgoing.voters)

    def committed_index(self, acked: Mapping[int, int]) -> int:
        """Highest index acknowledged by a majority of both halves."""
        incoming = self.incoming.committed_index(acked)
        if not self.outgoing.voters:
            return incoming
        return min(incoming, self.outgoing.committed_index(acked))

    def vote_result(self, votes: Mapping[int, bool]) -> VoteResult:
        """WON if both halves won, LOST if either lost, else PENDING."""
        incoming = self.incoming.vote_result(votes)
        outgoing = self.outgoing.vote_result(votes)
        if incoming == outgoing:
            return incoming
        if VoteResult.LOST in (incoming, outgoing):
            return VoteResult.LOST
        return VoteResult.PENDING

    def __str__(self) -> str:
        if not self.outgoing.voters:
            return str(self.incoming)
        return f"{self.incoming}&&{self.outgoing}"
