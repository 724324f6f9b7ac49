"""The records the Raft core exchanges with its host: entries, states, messages, Ready.

These are plain data, shared by the core, the host, the storage layer, the peer codec and the
simulator. Field names follow the Raft paper (term, index, commit, vote). Identifiers:
`group_id` is the shard id (one Raft group per shard); replica ids (`source`, `target`,
`voters`...) identify the members of one group and are unique within it, never reused.

Entries with empty `data` and type NORMAL are the no-op a new leader appends (Raft paper §8).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class EntryType(enum.IntEnum):
    NORMAL = 0
    CONF_CHANGE = 1


@dataclass(slots=True, frozen=True)
class Entry:
    """One record of a Raft log: `data` is opaque to the core unless type is CONF_CHANGE."""

    term: int
    index: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""

    def size_bytes(self) -> int:
        """The bytes this entry counts for in message and batch bounds."""
        return len(self.data) + 24


@dataclass(slots=True, frozen=True)
class HardState:
    """What a replica must persist before it answers: current term, vote in it, commit index."""

    term: int = 0
    vote: int = 0
    commit: int = 0


EMPTY_HARD_STATE = HardState()


@dataclass(slots=True, frozen=True)
class ConfState:
    """A group's membership. In a joint configuration `voters_outgoing` is non-empty.

    `learners_next` holds voters of the outgoing configuration that become learners when the
    joint configuration is left (they cannot be both voter and learner at once).
    """

    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()
    voters_outgoing: tuple[int, ...] = ()
    learners_next: tuple[int, ...] = ()
    auto_leave: bool = False


@dataclass(slots=True, frozen=True)
class SnapshotMeta:
    """The point a snapshot covers: the state after applying every entry up to `index`."""

    index: int
    term: int
    conf_state: ConfState


class Role(enum.IntEnum):
    FOLLOWER = 0
    PRE_CANDIDATE = 1
    CANDIDATE = 2
    LEADER = 3


@dataclass(slots=True, frozen=True)
class SoftState:
    """Volatile state the host may want to observe: who leads, and this replica's role."""

    leader_id: int
    role: Role


class MessageType(enum.IntEnum):
    # Local intents, stepped by the host into its own core; never sent.
    HUP = 0  # start an election (campaign)
    BEAT = 1  # leader: send heartbeats now
    PROPOSE = 2  # append entries (client commands) as leader
    UNREACHABLE = 3  # the transport could not reach `source`
    SNAPSHOT_STATUS = 4  # the transfer of a snapshot to `source` finished (reject: failed)
    CHECK_QUORUM = 5  # leader: step down unless a quorum was heard from recently
    TRANSFER_LEADER = 6  # hand leadership to `source` (the transferee)
    # Between replicas of a group.
    APPEND = 10
    APPEND_RESPONSE = 11
    VOTE = 12
    VOTE_RESPONSE = 13
    PRE_VOTE = 14
    PRE_VOTE_RESPONSE = 15
    SNAPSHOT = 16  # install the snapshot named by `snapshot` (data delivered by the host)
    HEARTBEAT = 17
    HEARTBEAT_RESPONSE = 18
    READ_INDEX = 19  # local intent, or forwarded by a follower to its leader
    READ_INDEX_RESPONSE = 20
    TIMEOUT_NOW = 21  # leader transfer: the target campaigns at once (thesis §3.10)


LOCAL_MESSAGE_TYPES = frozenset(
    {
        MessageType.HUP,
        MessageType.BEAT,
        MessageType.PROPOSE,
        MessageType.UNREACHABLE,
        MessageType.SNAPSHOT_STATUS,
        MessageType.CHECK_QUORUM,
    }
)

RESPONSE_MESSAGE_TYPES = frozenset(
    {
        MessageType.APPEND_RESPONSE,
        MessageType.VOTE_RESPONSE,
        MessageType.PRE_VOTE_RESPONSE,
        MessageType.HEARTBEAT_RESPONSE,
        MessageType.READ_INDEX_RESPONSE,
    }
)


@dataclass(slots=True)
class Message:
    """A message between two replicas of one group, or a local intent (see MessageType).

    `log_term`/`index`: for APPEND, the term and index of the entry preceding `entries`; for
    votes, the candidate's last log term and index; for responses, the index acknowledged (or,
    when `reject`, the index rejected, with `reject_hint` and `log_term` for fast back-off).
    `context` carries the read-index request id, or b"transfer" on a campaign that a leader
    transfer started.
    """

    type: MessageType
    group_id: int
    source: int = 0
    target: int = 0
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    snapshot: SnapshotMeta | None = None
    context: bytes = b""


@dataclass(slots=True, frozen=True)
class ReadState:
    """A read-index answer: once applied index >= `index`, a read for `context` is linearizable."""

    index: int
    context: bytes


@dataclass(slots=True)
class Ready:
    """What the host must do next, in this order (ARCHITECTURE.md, "The Raft core"):

    1. persist `snapshot` (install), `entries` and `hard_state` durably, synced if `must_sync`;
    2. send `messages`;
    3. apply `committed_entries`, and answer `read_states` once applied reaches their index;
    4. call `advance(ready)`.
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: SnapshotMeta | None = None
    messages: list[Message] = field(default_factory=list)
    committed_entries: list[Entry] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)
    must_sync: bool = False
