"""The Raft state machine of one replica: the consensus core (Raft paper, Ongaro's thesis).

Shaped after etcd-io/raft. Everything enters through `step(message)` and `tick()`; the public
methods (`campaign`, `propose`, `read_index`...) build a local message and step it, so there is
one path into the state machine. What the replica must do next accumulates and is handed out
by `ready()` as data: entries and hard state to persist, messages to send, committed entries to
apply, a snapshot to install, read states to answer. The host executes a Ready in order
(persist, send, apply) and calls `advance(ready)`; see docs/raft.md for the full contract.

Roles are swapped functions: `_become_follower`, `_become_candidate`, `_become_pre_candidate`
and `_become_leader` set `self._step` and `self._tick`. `step` first applies the rules common
to every role (terms, §5.1; votes, §5.2 and §5.4.1; pre-vote and leader stickiness, thesis
§9.6 and §4.2.3), then hands the message to the role's step function.

A leader does not send an append per proposal: proposals and commit advances set a flag, and
the appends are built when the host asks for `ready()` (`_flush`), one message per follower
carrying every new entry up to the batch bounds. Likewise ReadIndex requests arriving together
share one heartbeat round.

Local intents are messages with `target == 0`; messages from peers always carry this
replica's id as target. A HEARTBEAT's `index` carries, in lease mode, the leader's tick when it
was sent; the HEARTBEAT_RESPONSE echoes it, which is how a leader dates its lease.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from quorumkv import limits
from quorumkv.errors import (
    ConfChangePending,
    InvalidConfChange,
    LeaderTransferInProgress,
    LogCompacted,
    NotLeader,
    ProposalDropped,
    ProposalError,
    ReplicaStateLost,
)
from quorumkv.invariant import invariant
from quorumkv.raft.confchange import ConfChange, apply_conf_change
from quorumkv.raft.config import READ_ONLY_LEASE, Config
from quorumkv.raft.log import RaftLog, make_entry
from quorumkv.raft.log_reader import LogReader
from quorumkv.raft.progress import Progress, ProgressState
from quorumkv.raft.quorum import VoteResult
from quorumkv.raft.read_only import ReadOnly
from quorumkv.raft.tracker import ProgressTracker
from quorumkv.raft.types import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Ready,
    Role,
    SnapshotMeta,
    SoftState,
)

# Enum members bound to module-level names: in CPython 3.11 reading `MessageType.APPEND`
# goes through the enum class machinery (about five times the cost of a global), and the
# core compares message types, roles and progress states on every message.
CONF_CHANGE_ENTRY = EntryType.CONF_CHANGE
NORMAL_ENTRY = EntryType.NORMAL
APPEND = MessageType.APPEND
APPEND_RESPONSE = MessageType.APPEND_RESPONSE
BEAT = MessageType.BEAT
CHECK_QUORUM = MessageType.CHECK_QUORUM
HEARTBEAT = MessageType.HEARTBEAT
HEARTBEAT_RESPONSE = MessageType.HEARTBEAT_RESPONSE
HUP = MessageType.HUP
PRE_VOTE = MessageType.PRE_VOTE
PRE_VOTE_RESPONSE = MessageType.PRE_VOTE_RESPONSE
PROPOSE = MessageType.PROPOSE
READ_INDEX = MessageType.READ_INDEX
READ_INDEX_RESPONSE = MessageType.READ_INDEX_RESPONSE
SNAPSHOT = MessageType.SNAPSHOT
SNAPSHOT_STATUS = MessageType.SNAPSHOT_STATUS
TIMEOUT_NOW = MessageType.TIMEOUT_NOW
TRANSFER_LEADER = MessageType.TRANSFER_LEADER
UNREACHABLE = MessageType.UNREACHABLE
VOTE = MessageType.VOTE
VOTE_RESPONSE = MessageType.VOTE_RESPONSE
STATE_PROBE = ProgressState.PROBE
STATE_REPLICATE = ProgressState.REPLICATE
STATE_SNAPSHOT = ProgressState.SNAPSHOT
CANDIDATE = Role.CANDIDATE
FOLLOWER = Role.FOLLOWER
LEADER = Role.LEADER
PRE_CANDIDATE = Role.PRE_CANDIDATE

_ELECTION_MESSAGES = frozenset({HUP, VOTE, PRE_VOTE, VOTE_RESPONSE, PRE_VOTE_RESPONSE})

TRANSFER_CONTEXT = b"transfer"
"""Context of the vote requests of a campaign started by a leader transfer (TimeoutNow)."""

_VOTE_RESPONSE = {
    VOTE: VOTE_RESPONSE,
    PRE_VOTE: PRE_VOTE_RESPONSE,
}


class RandomSource(Protocol):
    """The part of random.Random the core uses (injected; the core never imports random)."""

    def randrange(self, start: int, stop: int) -> int: ...


class Node:
    """One replica's Raft core. See the module docstring and docs/raft.md."""

    __slots__ = (
        "config",
        "raft_log",
        "tracker",
        "messages",
        "read_states",
        "_log_reader",
        "_rng",
        "_id",
        "_group_id",
        "_term",
        "_vote",
        "_leader_id",
        "_role",
        "_step",
        "_tick",
        "_election_elapsed",
        "_heartbeat_elapsed",
        "_randomized_election_timeout",
        "_ticks",
        "_lead_transferee",
        "_pending_conf_index",
        "_uncommitted_bytes",
        "_read_only",
        "_pending_read_index",
        "_read_heartbeat_pending",
        "_broadcast_pending",
        "_lease_forfeited",
        "_previous_soft_state",
        "_previous_hard_state",
    )

    def __init__(self, config: Config, log: LogReader, rng: RandomSource) -> None:
        self.config = config
        self._log_reader = log
        self._rng = rng
        self._id = config.id
        self._group_id = config.group_id
        self.raft_log = RaftLog(log, config.group_id, config.committed_entries_bytes_max)
        self.tracker = ProgressTracker(config.inflight_messages_max, config.inflight_bytes_max)
        self.messages: list[Message] = []
        self.read_states: list[ReadState] = []
        self._term = 0
        self._vote = 0
        self._leader_id = 0
        self._role = FOLLOWER
        self._step: Callable[[Message], None] = self._step_follower
        self._tick: Callable[[], None] = self._tick_election
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_election_timeout = config.election_timeout_ticks
        self._ticks = 0
        self._lead_transferee = 0
        self._pending_conf_index = 0
        self._uncommitted_bytes = 0
        self._read_only = ReadOnly()
        self._pending_read_index: list[Message] = []
        self._read_heartbeat_pending = False
        self._broadcast_pending = False
        self._lease_forfeited = False
        hard_state, conf_state = log.initial_state()
        self._restart(hard_state, conf_state)
        self._previous_soft_state = SoftState(self._leader_id, self._role)
        self._previous_hard_state = hard_state

    def _restart(self, hard_state: HardState, conf_state: ConfState) -> None:
        self.tracker.switch_to(conf_state, self.raft_log.last_index() + 1)
        raft_log = self.raft_log
        # The host's applied index proves those entries committed, even if the hard state
        # persisted with them lags (it is only synced with new entries or votes).
        commit = max(hard_state.commit, raft_log.committed, self.config.applied)
        invariant(
            commit <= raft_log.last_index(),
            f"persisted commit {commit} is past the persisted last index {raft_log.last_index()}",
        )
        raft_log.commit_to(commit)
        self._term = hard_state.term
        self._vote = hard_state.vote
        if self.config.applied:
            raft_log.applied_to(self.config.applied)
        self._become_follower(self._term, 0)

    # ---- observation ------------------------------------------------------------------------

    @property
    def id(self) -> int:
        return self._id

    @property
    def group_id(self) -> int:
        return self._group_id

    @property
    def term(self) -> int:
        return self._term

    @property
    def vote(self) -> int:
        return self._vote

    @property
    def role(self) -> Role:
        return self._role

    @property
    def leader_id(self) -> int:
        return self._leader_id

    @property
    def commit_index(self) -> int:
        return self.raft_log.committed

    @property
    def applied_index(self) -> int:
        return self.raft_log.applied

    @property
    def lead_transferee(self) -> int:
        return self._lead_transferee

    @property
    def conf_state(self) -> ConfState:
        return self.tracker.conf_state

    def status(self) -> dict[str, Any]:
        """A snapshot of this replica's state for operators and tests (plain data)."""
        raft_log = self.raft_log
        status: dict[str, Any] = {
            "id": self._id,
            "group_id": self._group_id,
            "role": self._role.name.lower(),
            "term": self._term,
            "vote": self._vote,
            "leader_id": self._leader_id,
            "commit_index": raft_log.committed,
            "applied_index": raft_log.applied,
            "first_index": raft_log.first_index(),
            "last_index": raft_log.last_index(),
            "conf_state": self.tracker.conf_state,
            "lead_transferee": self._lead_transferee,
            "pending_conf_index": self._pending_conf_index,
        }
        if self._role == LEADER:
            status["progress"] = {
                replica: {
                    "state": progress.state.name.lower(),
                    "match": progress.match,
                    "next": progress.next,
                    "learner": progress.is_learner,
                    "recent_active": progress.recent_active,
                    "paused": progress.is_paused(),
                    "inflight": progress.inflights.count(),
                    "pending_snapshot": progress.pending_snapshot,
                }
                for replica, progress in sorted(self.tracker.progress.items())
            }
            status["lease_valid"] = self._lease_valid()
        return status

    # ---- inputs -----------------------------------------------------------------------------

    def tick(self) -> None:
        """One unit of logical time: may start an election, send heartbeats, check quorum."""
        self._ticks += 1
        self._tick()

    def missed_ticks(self, count: int) -> None:
        """The host could not tick for `count` ticks (its process was paused: GC, SIGSTOP, a
        VM migration). The lease clock moves on by them, so a lease that real time has
        outlived is no longer trusted; election and heartbeat timers do not fire in a burst."""
        invariant(count >= 0, f"missed {count} ticks")
        self._ticks += count

    def campaign(self) -> None:
        """Start an election now (pre-vote first if configured), as if the timeout expired."""
        self.step(Message(HUP, self._group_id))

    def propose(self, data: bytes) -> tuple[int, int]:
        """Append a command to the log as leader; returns the (term, index) of its entry.

        The entry is committed once a quorum has it; the host learns that when it shows up
        in Ready.committed_entries at that index with that term (any other term there means
        the proposal was lost to a leader change).

        Raises NotLeader on a non-leader (proposals are not forwarded: the host forwards),
        LeaderTransferInProgress during a leader transfer, ProposalDropped when the proposal
        is larger than limits.proposal_bytes_max or would push uncommitted bytes past
        config.uncommitted_bytes_max.
        """
        # Stamped with the term and index it gets if we lead, so the leader need not copy it.
        entry = make_entry(self._term, self.raft_log.last_index() + 1, NORMAL_ENTRY, data)
        return self._propose(entry)

    def propose_conf_change(self, change: ConfChange) -> tuple[int, int]:
        """Propose a membership change as leader; returns the (term, index) of its entry.

        It takes effect when applied: the host calls `apply_conf_change` as it applies the
        entry. Raises NotLeader, LeaderTransferInProgress, ConfChangePending (another change
        is not yet applied), InvalidConfChange (not valid for the current membership, or a
        change other than leave-joint while joint) and ProposalDropped.
        """
        return self._propose(Entry(0, 0, CONF_CHANGE_ENTRY, change.encode()))

    def _propose(self, entry: Entry) -> tuple[int, int]:
        if len(entry.data) > limits.proposal_bytes_max:
            raise ProposalDropped(
                self._group_id,
                f"a proposal of {len(entry.data)} bytes exceeds proposal_bytes_max "
                f"({limits.proposal_bytes_max})",
            )
        message = Message(PROPOSE, self._group_id, entries=[entry])
        self.step(message)
        last = message.entries[-1]  # stamped by the leader
        return last.term, last.index

    def read_index(self, context: bytes) -> None:
        """Ask for a linearizable read point; the answer arrives as a ReadState with this
        `context` in a later Ready (on this replica), once leadership is confirmed.

        On a follower the request is forwarded to the leader and answered back. `context`
        identifies the request and must be non-empty and unique among pending requests of the
        group (include the replica id). Requests pending when leadership is lost are dropped
        without an answer. Raises NotLeader when no leader is known, ProposalDropped when a
        new leader already holds limits.read_index_pending_max requests.
        """
        invariant(context, "a read-index context must be non-empty: it identifies the request")
        self.step(Message(READ_INDEX, self._group_id, context=context))

    def transfer_leader(self, target: int) -> None:
        """Hand leadership to voter `target` (thesis §3.10): the leader catches it up, then
        sends TimeoutNow; proposals are refused meanwhile; aborted after an election timeout.

        On a follower the request is forwarded to the leader. A target that is not a voter,
        or that already leads, is ignored. Raises NotLeader when no leader is known.
        """
        self.step(Message(TRANSFER_LEADER, self._group_id, source=target))

    def report_unreachable(self, peer: int) -> None:
        """The transport failed to deliver to `peer`: stop pipelining to it, probe instead."""
        self.step(Message(UNREACHABLE, self._group_id, source=peer))

    def report_snapshot(self, peer: int, succeeded: bool) -> None:
        """The host finished (or gave up) sending a snapshot to `peer`."""
        self.step(
            Message(SNAPSHOT_STATUS, self._group_id, source=peer, reject=not succeeded)
        )

    def apply_conf_change(self, change: ConfChange) -> ConfState:
        """Apply a committed CONF_CHANGE entry's change; returns the membership to persist
        with the applied index. Called by the host as it applies the entry, in log order.

        Raises InvalidConfChange, changing nothing, if the change is not valid for the current
        membership; every replica reaches the same verdict, so the host skips the entry.
        A leader that is removed (or demoted to learner) steps down.
        """
        conf_state = apply_conf_change(self.tracker.conf_state, change, self._group_id)
        self._switch_to_config(conf_state)
        return conf_state

    # ---- step: rules common to every role ---------------------------------------------------

    def step(self, message: Message) -> None:
        """Feed a message from a peer (or a local intent) into the state machine.

        Messages of another group or for another replica are ignored, and so are stale ones
        (older term). Raises the errors documented on the public method for local intents
        only.
        """
        if message.group_id != self._group_id:
            return
        target = message.target
        if target and target != self._id:
            return  # misrouted: meant for another replica of the group
        term = message.term
        if term:
            if term > self._term:
                if not self._observe_higher_term(message):
                    return
            elif term < self._term:
                self._answer_stale(message)
                return
        kind = message.type
        if kind in _ELECTION_MESSAGES:
            self._step_election(message)
        else:
            self._step(message)

    def _step_election(self, message: Message) -> None:
        """Election messages, handled alike in every role (the role's step gets the answers)."""
        kind = message.type
        if kind == HUP:
            self._hup(transfer=False)
        elif kind in (VOTE, PRE_VOTE):
            self._handle_vote_request(message)
        else:
            if self._role != LEADER:
                self._learn_commit(message)
            self._step(message)

    def _observe_higher_term(self, message: Message) -> bool:
        """Term rule (§5.1): a higher term makes us follower, except for pre-votes and for
        vote requests arriving while we still hear from a leader. False: ignore the message."""
        kind = message.type
        is_vote_request = kind in (VOTE, PRE_VOTE)
        if is_vote_request and message.context != TRANSFER_CONTEXT and self._in_leader_lease():
            return False
        if kind == PRE_VOTE:
            return True
        if kind == PRE_VOTE_RESPONSE and not message.reject:
            return True
        if kind in (APPEND, HEARTBEAT, SNAPSHOT):
            self._become_follower(message.term, message.source)
        else:
            self._become_follower(message.term, 0)
        return True

    def _in_leader_lease(self) -> bool:
        """Leader stickiness (thesis §4.2.3): we heard from a leader less than an election
        timeout ago, so a candidate is not needed. In lease mode a replica also refuses votes
        for an election timeout after it starts, as it cannot know when it last heard.

        Only with check-quorum, as in etcd: a leader without it never steps down on its own,
        so if it also ignored a higher-term candidate it could stay leader of a group that
        can no longer commit (found by simulator seed 1445)."""
        timeout = self.config.election_timeout_ticks
        sticky = self.config.check_quorum and self._leader_id != 0
        if sticky and self._election_elapsed < timeout:
            return True
        return self.config.read_only == READ_ONLY_LEASE and self._ticks < timeout

    def _answer_stale(self, message: Message) -> None:
        """A message from an older term. Tell a stale leader about our term, so that a replica
        partitioned away (whose term grew with pre-vote off) or a deposed leader catches up."""
        kind = message.type
        if kind in (APPEND, HEARTBEAT):
            if self.config.check_quorum or self.config.pre_vote:
                self._send(Message(APPEND_RESPONSE, self._group_id, target=message.source))
        elif kind == PRE_VOTE:
            self._send_vote_response(PRE_VOTE_RESPONSE, message.source, self._term, True)

    def _handle_vote_request(self, message: Message) -> None:
        """Grant a vote (§5.2) at most once per term, only to an up-to-date log (§5.4.1)."""
        kind = message.type
        can_vote = (
            self._vote == message.source
            or (self._vote == 0 and self._leader_id == 0)
            or (kind == PRE_VOTE and message.term > self._term)
        )
        response = _VOTE_RESPONSE[kind]
        if can_vote and self.raft_log.is_up_to_date(message.index, message.log_term):
            self._send_vote_response(response, message.source, message.term, False)
            if kind == VOTE:
                self._election_elapsed = 0
                self._vote = message.source
        else:
            self._send_vote_response(response, message.source, self._term, True)

    def _send_vote_response(self, kind: MessageType, target: int, term: int, reject: bool) -> None:
        """A vote answer also carries our commit index and its term (see _learn_commit)."""
        committed = self.raft_log.committed
        self._send(
            Message(
                kind,
                self._group_id,
                target=target,
                term=term,
                reject=reject,
                commit=committed,
                log_term=self.raft_log.term_or_zero(committed),
            )
        )

    def _learn_commit(self, message: Message) -> None:
        """Learn a commit index from a vote answer. A replica's commit index names an entry
        that is committed, and by Log Matching, if our log holds that entry (same index and
        term) our log up to it is the committed prefix: committing it is safe. This unblocks
        a voter that cannot win an election because it does not know that the entry changing
        the membership (to one where it needs fewer votes) is committed, while the replicas
        that know are no longer voters and hold longer logs."""
        commit = message.commit
        if commit > self.raft_log.committed and self.raft_log.match_term(commit, message.log_term):
            self.raft_log.commit_to(commit)

    def _send(self, message: Message) -> None:
        """Queue a message for the next Ready, stamped with our id and (if unset) term."""
        message.source = message.source or self._id
        if message.term == 0 and message.type not in (
            READ_INDEX,
            TRANSFER_LEADER,
        ):
            message.term = self._term
        self.messages.append(message)

    # ---- role transitions -------------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if self._term != term:
            self._term = term
            self._vote = 0
        self._leader_id = 0
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        timeout = self.config.election_timeout_ticks
        self._randomized_election_timeout = timeout + self._rng.randrange(0, timeout)
        self._lead_transferee = 0
        self.tracker.reset_votes()
        next_index = self.raft_log.last_index() + 1
        for replica, progress in self.tracker.progress.items():
            fresh = Progress(next_index, self.tracker.new_inflights(), progress.is_learner)
            if replica == self._id:
                fresh.match = next_index - 1
            self.tracker.progress[replica] = fresh
        self._pending_conf_index = 0
        self._uncommitted_bytes = 0
        self._read_only = ReadOnly()
        self._pending_read_index = []
        self._read_heartbeat_pending = False
        self._broadcast_pending = False
        self._lease_forfeited = False

    def _become_follower(self, term: int, leader_id: int) -> None:
        self._step = self._step_follower
        self._reset(term)
        self._tick = self._tick_election
        self._leader_id = leader_id
        self._role = FOLLOWER

    def _become_pre_candidate(self) -> None:
        invariant(self._role != LEADER, "a leader cannot become pre-candidate")
        # Pre-vote changes neither term nor vote (thesis §9.6): it only asks whether an
        # election could be won, so a partitioned replica does not inflate its term.
        self._step = self._step_candidate
        self.tracker.reset_votes()
        self._tick = self._tick_election
        self._leader_id = 0
        self._role = PRE_CANDIDATE

    def _become_candidate(self) -> None:
        invariant(self._role != LEADER, "a leader cannot become candidate")
        self._step = self._step_candidate
        self._reset(self._term + 1)
        self._tick = self._tick_election
        self._vote = self._id
        self._role = CANDIDATE

    def _become_leader(self) -> None:
        invariant(self._role != FOLLOWER, "a follower must campaign before leading")
        self._step = self._step_leader
        self._reset(self._term)
        self._tick = self._tick_heartbeat
        self._leader_id = self._id
        self._role = LEADER
        own = self.tracker.progress[self._id]
        own.become_replicate()
        own.recent_active = True
        # Conservatively assume the log may hold an unapplied conf change (we cannot know
        # cheaply), so no new one is accepted until everything up to here is applied.
        self._pending_conf_index = self.raft_log.last_index()
        # The no-op of thesis §6.4 / paper §8: commits the entries of earlier terms (§5.4.2)
        # and lets ReadIndex start.
        self._append_entries([Entry(0, 0)])

    # ---- elections --------------------------------------------------------------------------

    def _promotable(self) -> bool:
        """Can this replica campaign: a voter, not installing a snapshot."""
        return self.tracker.is_voter(self._id) and self.raft_log.unstable.snapshot is None

    def _hup(self, transfer: bool) -> None:
        if self._role == LEADER or not self._promotable():
            return
        if self._has_unapplied_conf_changes():
            # The membership we would campaign in may be about to change.
            return
        if transfer or not self.config.pre_vote:
            self._campaign(pre_vote=False, transfer=transfer)
        else:
            self._campaign(pre_vote=True, transfer=False)

    def _has_unapplied_conf_changes(self) -> bool:
        raft_log = self.raft_log
        low = max(raft_log.applied + 1, raft_log.first_index())
        high = raft_log.committed + 1
        while low < high:
            entries = raft_log.slice(low, high, self.config.committed_entries_bytes_max)
            if any(entry.type == CONF_CHANGE_ENTRY for entry in entries):
                return True
            low = entries[-1].index + 1
        return False

    def _campaign(self, pre_vote: bool, transfer: bool) -> None:
        if pre_vote:
            self._become_pre_candidate()
            kind, term = PRE_VOTE, self._term + 1
        else:
            self._become_candidate()
            kind, term = VOTE, self._term
        if self._poll(self._id, True) == VoteResult.WON:
            # A single voter wins alone.
            self._win_election()
            return
        last_index = self.raft_log.last_index()
        last_term = self.raft_log.last_term()
        context = TRANSFER_CONTEXT if transfer else b""
        for voter in self.tracker.voter_ids():
            if voter == self._id:
                continue
            self._send(
                Message(
                    kind,
                    self._group_id,
                    target=voter,
                    term=term,
                    index=last_index,
                    log_term=last_term,
                    context=context,
                )
            )

    def _poll(self, replica: int, granted: bool) -> VoteResult:
        self.tracker.record_vote(replica, granted)
        return self.tracker.tally_votes()[2]

    def _win_election(self) -> None:
        if self._role == PRE_CANDIDATE:
            self._campaign(pre_vote=False, transfer=False)
        else:
            self._become_leader()

    # ---- ticks ------------------------------------------------------------------------------

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._election_elapsed >= self._randomized_election_timeout and self._promotable():
            self._election_elapsed = 0
            self.step(Message(HUP, self._group_id))

    def _tick_heartbeat(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self.config.election_timeout_ticks:
            self._election_elapsed = 0
            if self.config.check_quorum:
                self.step(Message(CHECK_QUORUM, self._group_id))
            if self._role == LEADER and self._lead_transferee:
                # The transfer did not finish within an election timeout: give up on it
                # (a removed leader tries again, perhaps with another voter).
                self._lead_transferee = 0
                if self._removed():
                    self._hand_over()
        if self._role != LEADER:
            return
        if self._heartbeat_elapsed >= self.config.heartbeat_interval_ticks:
            self._heartbeat_elapsed = 0
            self.step(Message(BEAT, self._group_id))

    # ---- follower ---------------------------------------------------------------------------

    def _step_follower(self, message: Message) -> None:
        kind = message.type
        if kind == APPEND:
            self._heard_from_leader(message.source)
            self._handle_append(message)
        elif kind == HEARTBEAT:
            self._heard_from_leader(message.source)
            self._handle_heartbeat(message)
        elif kind == SNAPSHOT:
            self._heard_from_leader(message.source)
            self._handle_snapshot(message)
        elif kind == PROPOSE:
            raise NotLeader(self._group_id, self._leader_id)
        elif kind in (READ_INDEX, TRANSFER_LEADER):
            self._forward_to_leader(message)
        elif kind == READ_INDEX_RESPONSE:
            self.read_states.append(ReadState(message.index, message.context))
        elif kind == TIMEOUT_NOW:
            # Leader transfer (thesis §3.10): campaign at once, skipping pre-vote.
            self._hup(transfer=True)

    def _heard_from_leader(self, leader_id: int) -> None:
        self._election_elapsed = 0
        self._leader_id = leader_id

    def _forward_to_leader(self, message: Message) -> None:
        """READ_INDEX and TRANSFER_LEADER go to the leader; a local one without a known leader
        raises NotLeader, a forwarded one is dropped (its sender times out and retries)."""
        local = message.target == 0
        if self._leader_id == 0:
            if local:
                raise NotLeader(self._group_id, 0)
            return
        if not local:
            return
        message.target = self._leader_id
        self._send(message)

    def _handle_append(self, message: Message) -> None:
        raft_log = self.raft_log
        reply = Message(APPEND_RESPONSE, self._group_id, target=message.source)
        if message.index < raft_log.committed:
            reply.index = raft_log.committed
            self._send(reply)
            return
        last_new = raft_log.maybe_append(
            message.index, message.log_term, message.commit, message.entries
        )
        if last_new is not None:
            reply.index = last_new
            self._send(reply)
            return
        # Our log does not hold (log_term, index): hint the leader at the last entry that could
        # match, skipping every entry of a term newer than log_term (fast back-off).
        hint_index = min(message.index, raft_log.last_index())
        hint_index, hint_term = raft_log.find_conflict_by_term(hint_index, message.log_term)
        reply.index = message.index
        reply.reject = True
        reply.reject_hint = hint_index
        reply.log_term = hint_term
        self._send(reply)

    def _handle_heartbeat(self, message: Message) -> None:
        # A leader sends min(match, commit): an index this replica acknowledged as durable. A
        # log ending before it lost acknowledged entries (its storage was emptied or rolled
        # back): an operating condition with its own error, not a broken invariant of ours.
        if message.commit > self.raft_log.last_index():
            raise ReplicaStateLost(self._group_id, message.commit, self.raft_log.last_index(),
                                   message.source)
        self.raft_log.commit_to(message.commit)
        self._send(
            Message(
                HEARTBEAT_RESPONSE,
                self._group_id,
                target=message.source,
                index=message.index,
                context=message.context,
            )
        )

    def _handle_snapshot(self, message: Message) -> None:
        snapshot = message.snapshot
        if snapshot is None:
            invariant(False, "a SNAPSHOT message carries its meta")
            return
        reply = Message(APPEND_RESPONSE, self._group_id, target=message.source)
        if self._restore(snapshot):
            reply.index = self.raft_log.last_index()
        else:
            reply.index = self.raft_log.committed
        self._send(reply)

    def _restore(self, snapshot: SnapshotMeta) -> bool:
        """Install a snapshot newer than our commit index; False if it is not needed."""
        raft_log = self.raft_log
        if snapshot.index <= raft_log.committed:
            return False
        conf_state = snapshot.conf_state
        members = (*conf_state.voters, *conf_state.learners, *conf_state.voters_outgoing)
        if self._id not in members:
            # A snapshot from a configuration we are not part of: not meant for us.
            return False
        if raft_log.match_term(snapshot.index, snapshot.term):
            # We already hold the entries it covers: just learn they are committed.
            raft_log.commit_to(snapshot.index)
            return False
        raft_log.restore(snapshot)
        self.tracker.progress.clear()
        self._switch_to_config(conf_state)
        return True

    # ---- candidate --------------------------------------------------------------------------

    def _step_candidate(self, message: Message) -> None:
        kind = message.type
        own_response = (
            PRE_VOTE_RESPONSE
            if self._role == PRE_CANDIDATE
            else VOTE_RESPONSE
        )
        if kind == own_response:
            result = self._poll(message.source, not message.reject)
            if result == VoteResult.WON:
                self._win_election()
            elif result == VoteResult.LOST:
                self._become_follower(self._term, 0)
        elif kind in (APPEND, HEARTBEAT, SNAPSHOT):
            # Someone won this term's election (§5.2): follow it.
            self._become_follower(message.term, message.source)
            self._step_follower(message)
        elif kind == PROPOSE:
            raise NotLeader(self._group_id, 0)
        elif kind in (READ_INDEX, TRANSFER_LEADER):
            self._forward_to_leader(message)

    # ---- leader -----------------------------------------------------------------------------

    def _step_leader(self, message: Message) -> None:
        kind = message.type
        if kind == PROPOSE:
            self._handle_propose(message)
        elif kind == APPEND_RESPONSE:
            progress = self.tracker.progress.get(message.source)
            if progress is not None:
                self._handle_append_response(message, progress)
        elif kind == HEARTBEAT_RESPONSE:
            progress = self.tracker.progress.get(message.source)
            if progress is not None:
                self._handle_heartbeat_response(message, progress)
        elif kind == BEAT:
            self._broadcast_heartbeat(self._read_only.last_pending_context())
        elif kind == CHECK_QUORUM:
            self._check_quorum()
        elif kind == READ_INDEX:
            self._handle_read_index(message)
        elif kind == TRANSFER_LEADER:
            self._handle_transfer_leader(message)
        elif kind == SNAPSHOT_STATUS:
            self._handle_snapshot_status(message)
        elif kind == UNREACHABLE:
            progress = self.tracker.progress.get(message.source)
            if progress is not None and progress.state == STATE_REPLICATE:
                progress.become_probe()

    def _check_quorum(self) -> None:
        """Check-quorum (thesis §6.2): step down unless a quorum answered in the last election
        timeout, so a partitioned leader stops serving and stops blocking elections."""
        if not self.tracker.quorum_active(self._id):
            self._become_follower(self._term, 0)
        for replica, progress in self.tracker.progress.items():
            if replica != self._id:
                progress.recent_active = False

    def _handle_propose(self, message: Message) -> None:
        if self._removed():
            raise ProposalDropped(
                self._group_id,
                "this leader was removed from the voters and is handing leadership over",
            )
        if self._lead_transferee:
            raise LeaderTransferInProgress(self._group_id, self._lead_transferee)
        entries = message.entries
        conf_change_offset = 0
        for offset, entry in enumerate(entries):
            if entry.type == CONF_CHANGE_ENTRY:
                invariant(not conf_change_offset, "one conf change per proposal")
                self._check_conf_change(entry)
                conf_change_offset = offset + 1
        message.entries = entries = self._append_entries(entries)
        if conf_change_offset:
            self._pending_conf_index = entries[conf_change_offset - 1].index

    def _check_conf_change(self, entry: Entry) -> None:
        """Refuse a conf change while another is unapplied (only one may be in flight, so
        that each is validated against the configuration it will apply to)."""
        if self._pending_conf_index > self.raft_log.applied:
            raise ConfChangePending(self._group_id, self._pending_conf_index)
        change = ConfChange.decode(entry.data)
        conf_state = self.tracker.conf_state
        joint = bool(conf_state.voters_outgoing)
        if joint and not change.is_leave_joint():
            raise InvalidConfChange(
                self._group_id, "the configuration is joint; it must be left first"
            )
        apply_conf_change(conf_state, change, self._group_id)

    def _append_entries(self, entries: list[Entry]) -> list[Entry]:
        """Stamp proposals with our term and the next indexes, and append them; returns the
        stamped entries. Raises ProposalDropped past uncommitted_bytes_max."""
        raft_log = self.raft_log
        term = self._term
        last = raft_log.last_index()
        if len(entries) == 1:
            # The common case (one proposal), kept lean: reuse the entry if propose() stamped
            # it right.
            entry = entries[0]
            if entry.term != term or entry.index != last + 1:
                entries = [make_entry(term, last + 1, entry.type, entry.data)]
            size = len(entry.data)
        else:
            entries = [
                make_entry(term, last + position, entry.type, entry.data)
                for position, entry in enumerate(entries, 1)
            ]
            size = sum(len(entry.data) for entry in entries)
        if (
            self._uncommitted_bytes > 0
            and size > 0
            and self._uncommitted_bytes + size > self.config.uncommitted_bytes_max
        ):
            raise ProposalDropped(
                self._group_id,
                f"{self._uncommitted_bytes} bytes are already uncommitted "
                f"(uncommitted_bytes_max is {self.config.uncommitted_bytes_max})",
            )
        self._uncommitted_bytes += size
        last = raft_log.append(entries)
        own = self.tracker.progress[self._id]
        own.match = last
        own.next = last + 1
        self._broadcast_pending = True
        if self.tracker.is_single_voter(self._id):
            self._maybe_commit()
        return entries

    def _maybe_commit(self) -> bool:
        """Advance the commit index to what a quorum has, if that entry is of our term."""
        if not self.raft_log.maybe_commit(self.tracker.committed(), self._term):
            return False
        self._broadcast_pending = True
        if self._pending_read_index:
            self._release_pending_read_index()
        return True

    def _handle_append_response(self, message: Message, progress: Progress) -> None:
        progress.recent_active = True
        if message.reject:
            self._handle_append_rejection(message, progress)
            return
        was_paused = progress.is_paused()
        index = message.index
        if not (
            progress.maybe_update(index)
            or (progress.match == index and progress.state == STATE_PROBE)
        ):
            return
        if progress.state == STATE_PROBE:
            progress.become_replicate()
        elif progress.state == STATE_SNAPSHOT:
            if (
                progress.match >= progress.pending_snapshot
                or progress.match + 1 >= self.raft_log.first_index()
            ):
                progress.become_probe()
                progress.become_replicate()
        else:
            progress.inflights.free_to(index)
        if (
            not self._maybe_commit()
            and was_paused
            and progress.commit_sent < self.raft_log.committed
        ):
            # It was paused, so it may not know the commit index yet.
            self._send_append(message.source, progress, send_if_empty=True)
        while self._send_append(message.source, progress, send_if_empty=False):
            pass
        if message.source == self._lead_transferee and progress.match == self.raft_log.last_index():
            self._send_timeout_now(message.source)

    def _handle_append_rejection(self, message: Message, progress: Progress) -> None:
        """Fast back-off (thesis §5.3 optimisation, etcd's findConflictByTerm): jump `next`
        to the last entry whose term is at most the follower's term at its hint."""
        next_probe = message.reject_hint
        if message.log_term > 0:
            next_probe, _ = self.raft_log.find_conflict_by_term(
                message.reject_hint, message.log_term
            )
        if progress.maybe_decrease_to(message.index, next_probe):
            if progress.state == STATE_REPLICATE:
                progress.become_probe()
            self._send_append(message.source, progress, send_if_empty=True)

    def _handle_heartbeat_response(self, message: Message, progress: Progress) -> None:
        progress.recent_active = True
        progress.probe_sent = False
        if message.index > progress.lease_tick:
            progress.lease_tick = message.index
        if progress.state == STATE_REPLICATE and progress.inflights.full():
            progress.inflights.free_first()
        if (
            progress.match < self.raft_log.last_index()
            or progress.commit_sent < self.raft_log.committed
        ):
            # Even an empty append helps: it carries the commit index, and if appends in
            # flight were lost, the follower's rejection of it restarts probing from `match`.
            self._send_append(message.source, progress, send_if_empty=True)
        if message.context:
            self._confirm_reads(message.source, message.context)

    def _handle_snapshot_status(self, message: Message) -> None:
        progress = self.tracker.progress.get(message.source)
        if progress is None or progress.state != STATE_SNAPSHOT:
            return
        if message.reject:
            progress.pending_snapshot = 0
        progress.become_probe()
        # Wait for a heartbeat answer before probing again, rather than at once.
        progress.probe_sent = True

    # ---- leader: sending appends ------------------------------------------------------------

    def _flush(self) -> None:
        """Send what proposals, commit advances and read requests left pending: one append per
        follower with every new entry (up to the batch bounds), one heartbeat round for reads."""
        if self._broadcast_pending:
            self._broadcast_pending = False
            if self._role == LEADER:
                committed = self.raft_log.committed
                for replica, progress in self.tracker.peers(self._id):
                    send_if_empty = progress.commit_sent < committed
                    while self._send_append(replica, progress, send_if_empty):
                        send_if_empty = False
        if self._read_heartbeat_pending:
            self._read_heartbeat_pending = False
            if self._role == LEADER and len(self._read_only):
                self._broadcast_heartbeat(self._read_only.last_pending_context())

    def _send_append(self, replica: int, progress: Progress, send_if_empty: bool) -> bool:
        """Send `replica` the entries from its next index (or a snapshot if they were
        compacted). False if nothing was sent (paused, nothing to send, snapshot refused)."""
        if progress.is_paused():
            return False
        raft_log = self.raft_log
        config = self.config
        previous = progress.next - 1
        try:
            previous_term = raft_log.term(previous)
            entries = raft_log.entries_from(
                progress.next, config.append_entries_max, config.append_bytes_max
            )
        except LogCompacted:
            return self._send_snapshot(replica, progress)
        if not entries and not send_if_empty:
            return False
        committed = raft_log.committed
        self.messages.append(
            Message(
                APPEND,
                self._group_id,
                self._id,
                replica,
                self._term,
                previous_term,
                previous,
                entries,
                committed,
            )
        )
        progress.commit_sent = committed
        if entries:
            size = 0
            if config.inflight_bytes_max:
                size = sum(entry.size_bytes() for entry in entries)
            progress.sent_entries(entries[-1].index, size)
        return True

    def _send_snapshot(self, replica: int, progress: Progress) -> bool:
        """The entries `replica` needs are compacted: ask the host to send it a snapshot."""
        if not progress.recent_active:
            # Do not start a costly transfer to a replica that may be down.
            return False
        meta = self._log_reader.snapshot_meta()
        invariant(
            meta.index >= self.raft_log.first_index() - 1,
            f"the host's snapshot point {meta.index} is older than the compaction point "
            f"{self.raft_log.first_index() - 1}",
        )
        progress.become_snapshot(meta.index)
        self._send(
            Message(SNAPSHOT, self._group_id, target=replica, snapshot=meta)
        )
        return True

    def _broadcast_heartbeat(self, context: bytes) -> None:
        stamp = self._ticks if self.config.read_only == READ_ONLY_LEASE else 0
        committed = self.raft_log.committed
        for replica, progress in self.tracker.peers(self._id):
            self._send(
                Message(
                    HEARTBEAT,
                    self._group_id,
                    target=replica,
                    commit=min(progress.match, committed),
                    index=stamp,
                    context=context,
                )
            )

    # ---- leader: reads ----------------------------------------------------------------------

    def _handle_read_index(self, message: Message) -> None:
        """ReadIndex (thesis §6.4): record the commit index, confirm leadership with a
        heartbeat round (or a valid lease), then answer with that index."""
        if self.tracker.is_single_voter(self._id):
            self._answer_read(message, self.raft_log.committed)
            return
        if not self._committed_entry_in_current_term():
            # Until an entry of our term is committed, our commit index may lag what an
            # earlier leader committed: wait for the no-op.
            if len(self._pending_read_index) >= limits.read_index_pending_max:
                if message.target == 0:
                    raise ProposalDropped(
                        self._group_id,
                        f"{limits.read_index_pending_max} reads already wait for this new "
                        "leader's first commit",
                    )
                return
            self._pending_read_index.append(message)
            return
        if self._lease_valid():
            self._answer_read(message, self.raft_log.committed)
            return
        self._read_only.add_request(self.raft_log.committed, message)
        self._read_only.receive_ack(self._id, message.context)
        self._read_heartbeat_pending = True

    def _committed_entry_in_current_term(self) -> bool:
        return self.raft_log.term_or_zero(self.raft_log.committed) == self._term

    def _release_pending_read_index(self) -> None:
        if not self._committed_entry_in_current_term():
            return
        pending, self._pending_read_index = self._pending_read_index, []
        for message in pending:
            self._handle_read_index(message)

    def _confirm_reads(self, replica: int, context: bytes) -> None:
        acks = self._read_only.receive_ack(replica, context)
        if acks is None or self.tracker.quorum.vote_result(acks) != VoteResult.WON:
            return
        for status in self._read_only.advance(context):
            self._answer_read(status.message, status.index)

    def _answer_read(self, message: Message, index: int) -> None:
        if message.target == 0:
            self.read_states.append(ReadState(index, message.context))
        else:
            self._send(
                Message(
                    READ_INDEX_RESPONSE,
                    self._group_id,
                    target=message.source,
                    index=index,
                    context=message.context,
                )
            )

    def _lease_valid(self) -> bool:
        """Lease reads (thesis §6.4.1): a quorum answered a heartbeat sent at tick s, so none
        of them will vote for another leader before s + election timeout on its own clock;
        with clock drift bounded by limits.lease_drift_ticks over that span, no other leader
        exists before s + election timeout - drift on ours. Forfeited once a leader transfer
        sent TimeoutNow (the transferee's campaign bypasses stickiness). Our clock counts
        ticks the host missed while paused too (missed_ticks), so a pause cannot stretch it."""
        if self.config.read_only != READ_ONLY_LEASE or self._lease_forfeited:
            return False
        if self._lead_transferee:
            return False
        start = self.tracker.lease_start(self._id, self._ticks)
        if start < 0:
            return False
        expiry = start + self.config.election_timeout_ticks - limits.lease_drift_ticks
        return self._ticks < expiry

    # ---- leader: transfer and membership ----------------------------------------------------

    def _handle_transfer_leader(self, message: Message) -> None:
        self._start_transfer(message.source)

    def _start_transfer(self, transferee: int) -> None:
        progress = self.tracker.progress.get(transferee)
        if progress is None or progress.is_learner:
            return
        if self._lead_transferee:
            if self._lead_transferee == transferee:
                return
            self._lead_transferee = 0
        if transferee == self._id:
            return
        # The transfer must finish within an election timeout (checked in _tick_heartbeat).
        self._election_elapsed = 0
        self._lead_transferee = transferee
        if progress.match == self.raft_log.last_index():
            self._send_timeout_now(transferee)
        else:
            self._send_append(transferee, progress, send_if_empty=True)

    def _send_timeout_now(self, replica: int) -> None:
        self._lease_forfeited = True
        self._send(Message(TIMEOUT_NOW, self._group_id, target=replica))

    def _switch_to_config(self, conf_state: ConfState) -> None:
        self.tracker.switch_to(conf_state, self.raft_log.last_index() + 1)
        if self._role in (PRE_CANDIDATE, CANDIDATE) and self._removed():
            # Removed while campaigning: a non-voter must not become leader.
            self._become_follower(self._term, 0)
            return
        if self._role != LEADER:
            return
        if not self.tracker.voter_ids():
            return
        # The quorum changed: the commit index may move, and new members need appends.
        self._maybe_commit()
        self._broadcast_pending = True
        if self._lead_transferee and not self.tracker.is_voter(self._lead_transferee):
            self._lead_transferee = 0
        if self._removed():
            self._hand_over()

    def _removed(self) -> bool:
        """True if this replica is no longer a voter (removed, or demoted to learner)."""
        return not self.tracker.is_voter(self._id)

    def _hand_over(self) -> None:
        """A leader that was removed or demoted keeps leading only to hand over: it refuses
        proposals and transfers leadership to the most up-to-date voter. Stepping down at
        once could strand the group: the remaining voters may not know that the change is
        committed (so they still count us) while our longer log denies them our vote."""
        if self._lead_transferee:
            return
        target = max(
            self.tracker.voter_progress(), key=lambda item: (item[1].match, -item[0])
        )[0]
        self._start_transfer(target)

    def _maybe_auto_leave(self) -> None:
        """Leave a joint configuration on our own once the entry entering it is applied."""
        if (
            self._role == LEADER
            and self.tracker.conf_state.auto_leave
            and self.raft_log.applied >= self._pending_conf_index
        ):
            # Refused while e.g. a leader transfer is under way: retried at the next advance.
            with contextlib.suppress(ProposalError):
                self.propose_conf_change(ConfChange.leave_joint())

    # ---- output -----------------------------------------------------------------------------

    def has_ready(self) -> bool:
        """True if `ready()` would hand out anything."""
        self._flush()
        raft_log = self.raft_log
        unstable = raft_log.unstable
        return bool(
            self.messages
            or self.read_states
            or unstable.offset_in_progress < unstable.offset + len(unstable.entries)
            or unstable.next_snapshot() is not None
            or raft_log.has_next_committed_entries()
            or self._hard_state_changed()
            or self._previous_soft_state.leader_id != self._leader_id
            or self._previous_soft_state.role != self._role
        )

    def _hard_state_changed(self) -> bool:
        previous = self._previous_hard_state
        return (
            previous.term != self._term
            or previous.vote != self._vote
            or previous.commit != self.raft_log.committed
        )

    def ready(self) -> Ready:
        """What the host must do next: persist, then send, then apply, then `advance`."""
        self._flush()
        raft_log = self.raft_log
        unstable = raft_log.unstable
        ready = Ready(
            entries=unstable.next_entries(),
            snapshot=unstable.next_snapshot(),
            messages=self.messages,
            committed_entries=raft_log.next_committed_entries(),
            read_states=self.read_states,
        )
        self.messages = []
        self.read_states = []
        if (
            self._previous_soft_state.leader_id != self._leader_id
            or self._previous_soft_state.role != self._role
        ):
            ready.soft_state = SoftState(self._leader_id, self._role)
            self._previous_soft_state = ready.soft_state
        previous = self._previous_hard_state
        if self._hard_state_changed():
            ready.hard_state = HardState(self._term, self._vote, raft_log.committed)
            self._previous_hard_state = ready.hard_state
        ready.must_sync = bool(
            ready.entries
            or ready.snapshot is not None
            or previous.term != self._term
            or previous.vote != self._vote
        )
        unstable.accept_in_progress()
        if ready.committed_entries:
            raft_log.applying = ready.committed_entries[-1].index
        return ready

    def advance(self, ready: Ready) -> None:
        """The host persisted `ready`'s entries, hard state and snapshot, sent its messages and
        applied its committed entries."""
        raft_log = self.raft_log
        if ready.snapshot is not None:
            raft_log.unstable.stable_snapshot_to(ready.snapshot.index)
            raft_log.applied_to(ready.snapshot.index)
        if ready.entries:
            last = ready.entries[-1]
            raft_log.unstable.stable_to(last.index, last.term)
        if ready.committed_entries:
            raft_log.applied_to(ready.committed_entries[-1].index)
            if self._role == LEADER and self._uncommitted_bytes:
                size = sum(len(entry.data) for entry in ready.committed_entries)
                self._uncommitted_bytes = max(0, self._uncommitted_bytes - size)
            self._maybe_auto_leave()
