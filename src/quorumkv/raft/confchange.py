"""Configuration changes: the record a CONF_CHANGE entry carries, and its byte encoding.

A `ConfChange` lists single changes (add a voter, remove a replica, add a learner, promote a
learner) and says how to apply them. When at most one voter changes, the change is applied
directly ("simple" change, thesis §4.1: any two majorities of configurations differing by one
voter overlap). Otherwise the group passes through a joint configuration (thesis §4.3) in which
decisions need a majority of both the old and the new voters; with `transition` AUTO or
JOINT_IMPLICIT the leader leaves it on its own (by proposing an empty ConfChange) once it has
applied the entry that entered it; with JOINT_EXPLICIT the host must propose the empty change.

An empty `changes` tuple means "leave the joint configuration".

The encoding is versioned msgpack: `[version, transition, [[type, replica_id], ...], context]`.
`context` is opaque to the core (a host can put the new replica's address there).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import msgpack  # type: ignore[import-untyped]

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
