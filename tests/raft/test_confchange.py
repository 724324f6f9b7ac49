"""ConfChange records: their encoding, and the membership after a change (confchange.py)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quorumkv.errors import InvalidConfChange
from quorumkv.raft.confchange import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    apply_conf_change,
    is_simple,
)
from quorumkv.raft.types import ConfState

singles = st.builds(
    ConfChangeSingle, st.sampled_from(list(ConfChangeType)), st.integers(1, 2**63 - 1)
)
changes = st.builds(
    ConfChange,
    st.lists(singles, max_size=6).map(tuple),
    st.sampled_from(list(ConfChangeTransition)),
    st.binary(max_size=64),
)


@given(changes)
def test_encoding_round_trips(change: ConfChange) -> None:
    """decode(encode(change)) == change for every change."""
    assert ConfChange.decode(change.encode()) == change


@given(st.binary(max_size=64))
def test_decoding_garbage_raises_value_error(data: bytes) -> None:
    """Arbitrary bytes either decode to a valid change or raise ValueError, nothing else."""
    with contextlib.suppress(ValueError):
        ConfChange.decode(data)


def test_simple_change_of_one_voter() -> None:
    """Adding or removing one voter applies directly (thesis §4.1)."""
    base = ConfState(voters=(1, 2, 3))
    assert is_simple(base, ConfChange.add_voter(4))
    assert apply_conf_change(base, ConfChange.add_voter(4), 1) == ConfState(voters=(1, 2, 3, 4))
    assert apply_conf_change(base, ConfChange.add_learner(5), 1) == ConfState(
        voters=(1, 2, 3), learners=(5,)
    )


def test_two_voters_change_through_joint_configuration() -> None:
    """Changing two voters enters a joint configuration (auto-leave), and leaving it keeps
    the incoming voters and makes demoted voters learners (thesis §4.3)."""
    base = ConfState(voters=(1, 2, 3))
    change = ConfChange(
        (
            ConfChangeSingle(ConfChangeType.ADD_VOTER, 4),
            ConfChangeSingle(ConfChangeType.ADD_LEARNER, 3),
        )
    )
    joint = apply_conf_change(base, change, 1)
    assert joint == ConfState(
        voters=(1, 2, 4), voters_outgoing=(1, 2, 3), learners_next=(3,), auto_leave=True
    )
    left = apply_conf_change(joint, ConfChange.leave_joint(), 1)
    assert left == ConfState(voters=(1, 2, 4), learners=(3,))


def test_explicit_joint_transition_does_not_auto_leave() -> None:
    """JOINT_EXPLICIT enters a joint configuration even for one change, without auto-leave."""
    change = ConfChange(ConfChange.add_voter(4).changes, ConfChangeTransition.JOINT_EXPLICIT)
    joint = apply_conf_change(ConfState(voters=(1, 2, 3)), change, 1)
    assert joint.voters_outgoing == (1, 2, 3) and not joint.auto_leave


@pytest.mark.parametrize(
    ("conf_state", "change"),
    [
        (ConfState(voters=(1,)), ConfChange.remove(1)),
        (ConfState(voters=(1, 2)), ConfChange.promote_learner(2)),
        (ConfState(voters=(1, 2)), ConfChange.leave_joint()),
        (ConfState(voters=(1, 2), voters_outgoing=(1,)), ConfChange.add_voter(3).__class__(
            ConfChange.add_voter(3).changes + ConfChange.add_voter(4).changes)),
    ],
)
def test_invalid_changes_are_refused(conf_state: ConfState, change: ConfChange) -> None:
    """Removing the last voter, promoting a non-learner, leaving a non-joint configuration,
    or entering a joint configuration twice raises InvalidConfChange."""
    with pytest.raises(InvalidConfChange):
        apply_conf_change(conf_state, change, 1)
