"""Configuration changes: the record a CONF_CHANGE entry carries, and its byte encoding.

A `ConfChange` lists single changes (add a voter, remove a replica, add a learner, promote a
learner) and says how to apply them. When at most one voter changes, the change is applied
directly ("simple" change, thesis §4.1: any two majorities of configurations differing by one
voter overlap). Otherwise the group passes through a joint configuration (thesis §4.3) in which
decisions need a majority of both the old and the new voters; with `transition` AUTO or
JOINT_IMPLICIT the leader leaves it on its own (by proposing an empty ConfChange) once it has
applied the entry that entered it; with JOINT_EXPLICIT the host must propose the empty change.

An empty `changes` tuple means "leave the joint configuration".

`apply_conf_change(conf_state, change, group_id)` computes the membership after a change (the
pure "changer": etcd-io/raft's confchange package); it raises InvalidConfChange, leaving
nothing changed, when the change is not valid against the given membership.

The encoding is versioned msgpack: `[version, transition, [[type, replica_id], ...], context]`.
`context` is opaque to the core (a host can put the new replica's address there).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import msgpack

from quorumkv.errors import InvalidConfChange
from quorumkv.raft.types import ConfState

CONF_CHANGE_FORMAT_VERSION = 1


class ConfChangeType(enum.IntEnum):
    ADD_VOTER = 0  # add a new voter, or promote an existing learner
    REMOVE = 1  # remove a voter or a learner
    ADD_LEARNER = 2  # add a learner, or demote an existing voter to learner
    PROMOTE_LEARNER = 3  # turn an existing learner into a voter


class ConfChangeTransition(enum.IntEnum):
    AUTO = 0  # simple when possible, otherwise joint with automatic leave
    JOINT_IMPLICIT = 1  # always joint, left automatically
    JOINT_EXPLICIT = 2  # always joint, left when the host proposes an empty ConfChange


@dataclass(slots=True, frozen=True)
class ConfChangeSingle:
    """One change to the membership of a group."""

    type: ConfChangeType
    replica_id: int


@dataclass(slots=True, frozen=True)
class ConfChange:
    """A set of membership changes applied together; empty `changes`: leave the joint config."""

    changes: tuple[ConfChangeSingle, ...] = ()
    transition: ConfChangeTransition = ConfChangeTransition.AUTO
    context: bytes = b""

    @classmethod
    def add_voter(cls, replica_id: int, context: bytes = b"") -> ConfChange:
        return cls((ConfChangeSingle(ConfChangeType.ADD_VOTER, replica_id),), context=context)

    @classmethod
    def remove(cls, replica_id: int, context: bytes = b"") -> ConfChange:
        return cls((ConfChangeSingle(ConfChangeType.REMOVE, replica_id),), context=context)

    @classmethod
    def add_learner(cls, replica_id: int, context: bytes = b"") -> ConfChange:
        return cls((ConfChangeSingle(ConfChangeType.ADD_LEARNER, replica_id),), context=context)

    @classmethod
    def promote_learner(cls, replica_id: int, context: bytes = b"") -> ConfChange:
        single = ConfChangeSingle(ConfChangeType.PROMOTE_LEARNER, replica_id)
        return cls((single,), context=context)

    @classmethod
    def leave_joint(cls) -> ConfChange:
        return cls()

    def is_leave_joint(self) -> bool:
        """True for the empty change that leaves a joint configuration."""
        return not self.changes

    def encode(self) -> bytes:
        """The bytes stored as the `data` of a CONF_CHANGE entry."""
        singles = [[int(single.type), single.replica_id] for single in self.changes]
        record = [CONF_CHANGE_FORMAT_VERSION, int(self.transition), singles, self.context]
        encoded: bytes = msgpack.packb(record, use_bin_type=True)
        return encoded

    @classmethod
    def decode(cls, data: bytes) -> ConfChange:
        """Parse a CONF_CHANGE entry's data. Raises ValueError if it is not a valid encoding
        (entries are checksummed by storage, so this means a bug or a foreign writer)."""
        try:
            record = msgpack.unpackb(data, raw=False, strict_map_key=True)
            version, transition, singles, context = record
            if version != CONF_CHANGE_FORMAT_VERSION:
                raise ValueError(f"conf change format version {version} is not supported")
            changes = tuple(
                ConfChangeSingle(ConfChangeType(kind), _replica_id(replica_id))
                for kind, replica_id in singles
            )
            if not isinstance(context, bytes):
                raise ValueError("conf change context must be bytes")
            return cls(changes, ConfChangeTransition(transition), context)
        except (msgpack.UnpackException, TypeError, ValueError) as error:
            raise ValueError(f"not a valid conf change encoding: {error}") from error

    def __str__(self) -> str:
        if not self.changes:
            return "leave-joint"
        words = " ".join(f"{_WORDS[single.type]} {single.replica_id}" for single in self.changes)
        if self.transition != ConfChangeTransition.AUTO:
            words += f" ({self.transition.name.lower()})"
        return words


_WORDS = {
    ConfChangeType.ADD_VOTER: "add-voter",
    ConfChangeType.REMOVE: "remove",
    ConfChangeType.ADD_LEARNER: "add-learner",
    ConfChangeType.PROMOTE_LEARNER: "promote-learner",
}


def _replica_id(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"replica id {value!r} must be a positive integer")
    return value


# ---- the changer: membership after a change ---------------------------------------------------


def is_simple(conf_state: ConfState, change: ConfChange) -> bool:
    """True if `change` is applied directly: AUTO transition, not joint now, and at most one
    voter added or removed (so that old and new majorities overlap, thesis §4.1)."""
    if change.transition != ConfChangeTransition.AUTO or not change.changes:
        return False
    if conf_state.voters_outgoing:
        return False
    voters, _ = _apply_singles(set(conf_state.voters), set(conf_state.learners), change)
    return len(voters ^ set(conf_state.voters)) <= 1


def apply_conf_change(conf_state: ConfState, change: ConfChange, group_id: int) -> ConfState:
    """The membership after applying `change` to `conf_state`.

    Raises InvalidConfChange if the change cannot apply: leaving a configuration that is not
    joint, entering a joint configuration from a joint one, promoting a replica that is not a
    learner, a replica id that is not positive, or ending with no voters.
    """
    if change.is_leave_joint():
        return _leave_joint(conf_state, group_id)
    _check_singles(conf_state, change, group_id)
    simple = is_simple(conf_state, change)
    if not simple and conf_state.voters_outgoing:
        raise InvalidConfChange(
            group_id, "the configuration is already joint; leave it before another change"
        )
    if not simple and not conf_state.voters:
        raise InvalidConfChange(group_id, "a configuration without voters cannot become joint")
    voters, learners = _apply_singles(set(conf_state.voters), set(conf_state.learners), change)
    if not voters:
        raise InvalidConfChange(group_id, "the change would remove every voter")
    if simple:
        return ConfState(voters=_sorted(voters), learners=_sorted(learners))
    outgoing = set(conf_state.voters)
    # A voter of the outgoing half cannot be a learner until the joint configuration is left.
    learners_next = learners & outgoing
    return ConfState(
        voters=_sorted(voters),
        learners=_sorted(learners - learners_next),
        voters_outgoing=_sorted(outgoing),
        learners_next=_sorted(learners_next),
        auto_leave=change.transition != ConfChangeTransition.JOINT_EXPLICIT,
    )


def _leave_joint(conf_state: ConfState, group_id: int) -> ConfState:
    if not conf_state.voters_outgoing:
        raise InvalidConfChange(group_id, "the configuration is not joint; nothing to leave")
    learners = set(conf_state.learners) | set(conf_state.learners_next)
    return ConfState(voters=conf_state.voters, learners=_sorted(learners))


def _check_singles(conf_state: ConfState, change: ConfChange, group_id: int) -> None:
    learners = set(conf_state.learners)
    for single in change.changes:
        if single.replica_id <= 0:
            raise InvalidConfChange(group_id, f"replica id {single.replica_id} must be positive")
        if single.type == ConfChangeType.PROMOTE_LEARNER and single.replica_id not in learners:
            raise InvalidConfChange(
                group_id, f"replica {single.replica_id} is not a learner; it cannot be promoted"
            )
        _, learners = _apply_singles(set(), learners, ConfChange((single,)))


def _apply_singles(
    voters: set[int], learners: set[int], change: ConfChange
) -> tuple[set[int], set[int]]:
    """The (voters, learners) sets after each single change, in order (sets are updated)."""
    for single in change.changes:
        replica = single.replica_id
        if single.type in (ConfChangeType.ADD_VOTER, ConfChangeType.PROMOTE_LEARNER):
            learners.discard(replica)
            voters.add(replica)
        elif single.type == ConfChangeType.ADD_LEARNER:
            voters.discard(replica)
            learners.add(replica)
        else:
            voters.discard(replica)
            learners.discard(replica)
    return voters, learners


def _sorted(replicas: set[int]) -> tuple[int, ...]:
    return tuple(sorted(replicas))
