"""Quorum rules (quorum.py) against brute-force definitions."""

from __future__ import annotations

from itertools import combinations

from hypothesis import given
from hypothesis import strategies as st

from quorumkv.raft.quorum import UNBOUNDED_INDEX, JointConfig, MajorityConfig, VoteResult

voter_sets = st.frozensets(st.integers(1, 9), min_size=1, max_size=7)


def majorities(voters: frozenset[int]) -> list[frozenset[int]]:
    size = len(voters) // 2 + 1
    return [frozenset(c) for c in combinations(sorted(voters), size)]


def brute_committed(voters: frozenset[int], acked: dict[int, int]) -> int:
    """The largest index that every member of some majority has acknowledged."""
    return max(min(acked.get(v, 0) for v in majority) for majority in majorities(voters))


@given(voter_sets, st.dictionaries(st.integers(1, 9), st.integers(0, 50)))
def test_majority_committed_index_matches_brute_force(voters: frozenset[int], acked: dict[int, int]) -> None:
    """The committed index is the largest index held by some majority of voters."""
    assert MajorityConfig(voters).committed_index(acked) == brute_committed(voters, acked)


@given(voter_sets, voter_sets, st.dictionaries(st.integers(1, 9), st.integers(0, 50)))
def test_joint_committed_index_is_minimum_of_halves(
    incoming: frozenset[int], outgoing: frozenset[int], acked: dict[int, int]
) -> None:
    """A joint configuration commits what a majority of each half holds."""
    joint = JointConfig(MajorityConfig(incoming), MajorityConfig(outgoing))
    expected = min(brute_committed(incoming, acked), brute_committed(outgoing, acked))
    assert joint.committed_index(acked) == expected


@given(voter_sets, st.dictionaries(st.integers(1, 9), st.booleans()))
def test_vote_result_matches_brute_force(voters: frozenset[int], votes: dict[int, bool]) -> None:
    """WON iff a majority said yes; LOST iff no majority can still say yes."""
    yes = {v for v in voters if votes.get(v) is True}
    possible = {v for v in voters if votes.get(v) is not False}
    quorum = len(voters) // 2 + 1
    expected = (
        VoteResult.WON if len(yes) >= quorum
        else VoteResult.PENDING if len(possible) >= quorum
        else VoteResult.LOST
    )
    assert MajorityConfig(voters).vote_result(votes) == expected


def test_empty_configuration_agrees_to_everything() -> None:
    """An empty half imposes nothing, so a non-joint JointConfig acts as its incoming half."""
    assert MajorityConfig().committed_index({}) == UNBOUNDED_INDEX
    assert MajorityConfig().vote_result({}) == VoteResult.WON
    joint = JointConfig.of((1, 2, 3))
    assert joint.committed_index({1: 5, 2: 4, 3: 1}) == 4
    assert not joint.is_joint()


def test_joint_vote_lost_if_either_half_lost() -> None:
    """Joint elections need both halves: one half losing loses the election."""
    joint = JointConfig.of((1, 2, 3), (3, 4, 5))
    assert joint.vote_result({1: True, 2: True, 4: False, 5: False}) == VoteResult.LOST
    assert joint.vote_result({1: True, 2: True, 3: True}) == VoteResult.PENDING
    assert joint.vote_result({1: True, 3: True, 4: True}) == VoteResult.WON
