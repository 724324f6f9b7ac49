"""The multi-Raft host of one node and its Ready driver, shared by the server and the simulator.

Theory of operation. The host owns every shard replica of one node (`Replica`: a Raft core plus
the client work waiting on it) and one `NodeStore`. The shell around it (server/ or sim/)
calls `tick()` on its timer, `receive()` for each peer message, `submit()` for client commands,
and `process()` whenever there may be work; `process()` is THE Ready driver. One cycle:

1. collect the Ready of every shard that has one;
2. persist: one WriteBatch with every shard's installed snapshot, new entries and hard state,
   written once, synced if any Ready needs it (group commit across shards);
3. send every message (SNAPSHOT messages become chunk streams, see snapshot_transfer.py);
4. apply every shard's committed entries into a second batch, written without sync: it is
   visible at once and becomes durable with the next synced batch; it carries each shard's
   applied point with the effects it covers, so a crash re-applies exactly what it lost;
5. complete proposals and reads, then advance each core.

Persisting before sending is the Raft contract: no vote or acknowledgement leaves before what
it promises is on disk. A step with nothing to write (a Ready of messages or read states only)
writes nothing, so a node whose disk is full keeps confirming reads until something must be
persisted. A full disk stalls the driver at the failed step, which is retried on the next call.
Meanwhile, for a shard whose only voter is this node, client writes are refused with
errors.DiskFull and reads are answered from its applied state (`_read_while_stalled`); for a
shard with other voters, this replica stops counting as its leader and refuses client work with
NotLeader, naming the leader its peers' (dropped) messages reveal, so commands are routed there.
`disk_full_since_ms` tells the shell when the stall began (None: not stalled).

Replica ids are node ids for now; shards, epochs and placement come from the metadata shard
(a later issue), through `bootstrap_shard` and `create_replica`.

Operators follow leadership in the log: the soft state of each Ready (role, leader) is
compared with the replica's previous one, and each change is one INFO line naming node,
shard and term (`_log_role`): an election won, a leader stepping down, a new leader
learned, a leader lost to an election timeout. The Raft core itself stays free of logging.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from quorumkv import errors, limits
from quorumkv.cluster.state_machines import DATA, state_machine_for
from quorumkv.codec.peer import PeerMessage, SnapshotChunk, SnapshotChunkAck
from quorumkv.host.replica import Done, PendingRead, Replica
from quorumkv.host.shard_view import ReadView
from quorumkv.host.snapshot_transfer import SnapshotReceiver, SnapshotSender
from quorumkv.invariant import invariant
from quorumkv.kv import state_machine as kv_state_machine
from quorumkv.kv.command import Command, encode_command
from quorumkv.raft.confchange import ConfChange
from quorumkv.raft.config import Config
from quorumkv.raft.node import Node
from quorumkv.raft.types import (
    ConfState,
    Entry,
    HardState,
    MessageType,
    Ready,
    Role,
    SnapshotMeta,
)
from quorumkv.storage.protocols import NodeStore, StagedSnapshot, WriteBatch

log = logging.getLogger("quorumkv.host")

BOOTSTRAP_INDEX = 5
"""A new shard's log starts after this index (its first configuration is a snapshot there).

Starting above zero means a replica created empty on a new node can never mistake its empty
log for the group's beginning: the leader must send it a snapshot, which carries the
membership. (TiKV does the same.)"""

BOOTSTRAP_TERM = 5

_LEADER_MESSAGES = frozenset({MessageType.APPEND, MessageType.HEARTBEAT, MessageType.SNAPSHOT})
"""Messages only a leader sends: while stalled, they name the shard's current leader."""

STALLED_STORE = "this node's data directory"
"""What DiskFull names while a cycle is stalled (the host does not know the store's path)."""


class Transport(Protocol):
    """How the host sends to other nodes: never blocks; may drop (Raft tolerates loss)."""

    def send(self, target_node: int, message: PeerMessage) -> None:
        ...


class Observer:
    """Hooks for the simulator's checkers; every method is optional (no-op by default)."""

    def on_leader(self, node_id: int, shard_id: int, term: int,
                  log_terms: list[tuple[int, int]]) -> None:
        """`node_id` became leader of `shard_id` in `term`; log_terms lists (index, term) of
        its log at that moment, starting with its snapshot point."""

    def on_applied(self, node_id: int, shard_id: int, entry: Entry) -> None:
        """`entry` was applied by the replica of `shard_id` on `node_id`."""

    def on_persisted(self, node_id: int, shard_id: int, entries: list[Entry],
                     hard_state: HardState | None) -> None:
        """Entries and hard state were written (synced) for the replica."""


@dataclass(frozen=True)
class HostConfig:
    election_timeout_ticks: int = limits.election_timeout_ticks
    heartbeat_interval_ticks: int = limits.heartbeat_interval_ticks
    pre_vote: bool = True
    check_quorum: bool = True
    read_only: str = "safe"
    log_compaction_entries_min: int = limits.log_compaction_entries_min
    append_entries_max: int = limits.append_entries_max
    snapshot_chunk_bytes_max: int = limits.snapshot_chunk_bytes_max
    snapshot_transfer_timeout_ticks: int = limits.snapshot_transfer_timeout_ticks
    read_timeout_ticks: int = limits.read_timeout_ticks
    expire_interval_ticks: int = limits.expire_interval_ticks


@dataclass(slots=True)
class _Stall:
    """A cycle stopped by a full disk, resumed at `step` by the next process() call.

    Until it resumes, the cores take no input at all (peer messages are dropped, ticks held
    back, client work refused): a Ready is only valid for the core state that produced it,
    and advancing a core past entries it has since replaced would mark as durable entries
    that were never written. (Simulator seed 7711: a leader of term 9 stalled, stepped into
    term 10, then resumed its term-9 Ready.)"""

    step: str  # "persist" or "apply"
    readies: list[tuple[Replica, Ready]]
    declined: list[tuple[int, StagedSnapshot]] = field(default_factory=list)
    apply_batch: WriteBatch | None = None
    completions: list[tuple[Done, object]] = field(default_factory=list)


class Host:
    """Every shard replica of one node, and the one Ready driver."""

    def __init__(self, node_id: int, store: NodeStore, transport: Transport, rng: Any,
                 clock_ms: Callable[[], int], config: HostConfig | None = None,
                 observer: Observer | None = None) -> None:
        self.node_id = node_id
        self.store = store
        self.config = config or HostConfig()
        self._transport = transport
        self._rng = rng
        self._clock_ms = clock_ms
        self._observer = observer
        self._replicas: dict[int, Replica] = {}
        self._sender = SnapshotSender(store, node_id, self.config.snapshot_chunk_bytes_max,
                                      clock_ms)
        self._receiver = SnapshotReceiver(store, node_id, clock_ms)
        self._next_read_context = 1
        # Read contexts must differ across this node's lives: a leader tells forwarded reads
        # apart by context alone, and an answer meant for a request of a previous life must
        # not complete one of this life. A random incarnation (from the node's Random, so the
        # simulator replays it) does not depend on the wall clock, which may step back.
        self._read_context_prefix = (node_id.to_bytes(8, "big")
                                     + rng.getrandbits(64).to_bytes(8, "big"))
        self._ticks = 0
        self._stall: _Stall | None = None
        self.disk_full_since_ms: int | None = None  # when the current stall began
        self._stalled_leaders: dict[int, tuple[int, int]] = {}  # shard: (term, leader) seen
        self._completions: list[tuple[Done, object]] = []
        self.dropped_messages = 0
        self.expired_keys = 0  # keys deleted by this node's leaders as their time came (INFO)

    # ---- replicas ------------------------------------------------------------------------------

    def bootstrap_shard(self, shard_id: int, voters: Sequence[int]) -> None:
        """Write a new shard's first membership to this node's store (synced)."""
        invariant(shard_id not in self.store.shard_ids(), f"shard {shard_id} already exists here")
        meta = SnapshotMeta(BOOTSTRAP_INDEX, BOOTSTRAP_TERM, ConfState(voters=tuple(sorted(voters))))
        self._write_initial(shard_id, meta, HardState(BOOTSTRAP_TERM, 0, BOOTSTRAP_INDEX))

    def create_replica(self, shard_id: int) -> None:
        """An empty replica that waits for the leader's snapshot (after a conf change adds it)."""
        invariant(shard_id not in self.store.shard_ids(), f"shard {shard_id} already exists here")
        self._write_initial(shard_id, SnapshotMeta(0, 0, ConfState()), HardState())
        self._load(shard_id)

    def _write_initial(self, shard_id: int, meta: SnapshotMeta, hard_state: HardState) -> None:
        batch = self.store.batch()
        batch.compact_log(shard_id, meta)
        batch.set_applied(shard_id, meta)
        batch.set_hard_state(shard_id, hard_state)
        self.store.write(batch, sync=True)

    def start(self) -> None:
        """Load every shard replica found in the store."""
        for shard_id in self.store.shard_ids():
            if shard_id not in self._replicas:
                self._load(shard_id)

    def _load(self, shard_id: int) -> None:
        applied = self.store.shard(shard_id).applied()
        config = Config(
            id=self.node_id, group_id=shard_id,
            election_timeout_ticks=self.config.election_timeout_ticks,
            heartbeat_interval_ticks=self.config.heartbeat_interval_ticks,
            applied=applied.index, pre_vote=self.config.pre_vote,
            check_quorum=self.config.check_quorum, read_only=self.config.read_only,
            append_entries_max=self.config.append_entries_max)
        node = Node(config, self.store.log(shard_id), self._rng)
        self._replicas[shard_id] = Replica(shard_id, node, applied, state_machine_for(shard_id))

    def shard_ids(self) -> list[int]:
        return sorted(self._replicas)

    def replica(self, shard_id: int) -> Replica:
        return self._replicas[shard_id]

    # ---- inputs --------------------------------------------------------------------------------

    def tick(self) -> None:
        if self._stall is not None:
            return  # the cores stay exactly as the stalled Ready left them (see _Stall)
        self._ticks += 1
        for replica in self._replicas.values():
            replica.node.tick()
            replica.age_reads(self.config.read_timeout_ticks, self._completions)
        timeout = self.config.snapshot_transfer_timeout_ticks
        resent, expired = self._sender.tick(timeout)
        for chunk in resent:
            self._transport.send(chunk.target, chunk)
        for group_id, target in expired:
            if group_id in self._replicas:
                self._replicas[group_id].node.report_snapshot(target, False)
        self._receiver.tick(timeout)
        if self._ticks % self.config.expire_interval_ticks == 0:
            self._propose_expirations()
        self._fire_completions()

    def missed_ticks(self, count: int) -> None:
        """The shell could not tick for `count` ticks (the process was paused): every core's
        lease clock moves on, without firing timers (raft.Node.missed_ticks)."""
        if self._stall is not None:
            return
        for replica in self._replicas.values():
            replica.node.missed_ticks(count)

    def receive(self, message: PeerMessage) -> None:
        """One message from a peer. Messages for shards not hosted here, and every message
        while a cycle is stalled (see _Stall), are dropped: Raft tolerates lost messages."""
        replica = self._replicas.get(message.group_id)
        if replica is None or self._stall is not None:
            if replica is not None:
                self._note_leader_while_stalled(replica, message)
            self.dropped_messages += 1
            return
        if isinstance(message, SnapshotChunk):
            ack, snapshot_message = self._receiver.on_chunk(message)
            if ack is not None:
                self._transport.send(ack.target, ack)
            if snapshot_message is not None:
                replica.node.step(snapshot_message)
        elif isinstance(message, SnapshotChunkAck):
            chunks, outcome = self._sender.on_ack(message)
            for chunk in chunks:
                self._transport.send(chunk.target, chunk)
            if outcome is not None:
                replica.node.report_snapshot(message.source, outcome)
        elif message.type == MessageType.SNAPSHOT:
            self.dropped_messages += 1  # snapshots arrive only as chunk streams
        else:
            replica.node.step(message)

    def _note_leader_while_stalled(self, replica: Replica, message: PeerMessage) -> None:
        """Remember who leads the shard now, from a dropped message only a leader sends
        (append, heartbeat, snapshot chunk) in a term above the frozen core's. The core
        learns nothing (see _Stall); `leader_of` tells routing, so that this node's clients
        are served by the new leader meanwhile."""
        if isinstance(message, SnapshotChunk):
            term, source = message.message.term, message.source
        elif isinstance(message, SnapshotChunkAck) or message.type not in _LEADER_MESSAGES:
            return
        else:
            term, source = message.term, message.source
        known = self._stalled_leaders.get(replica.shard_id, (replica.node.term, 0))
        if term > known[0]:
            self._stalled_leaders[replica.shard_id] = (term, source)

    def submit(self, shard_id: int, name: bytes, args: tuple[bytes, ...], done: Done) -> None:
        """Run a client command on a shard: writes through Raft, reads after ReadIndex.

        `done` is called exactly once, from a later tick/process call or at once for errors
        known before anything happens: the state machine's reply, or an exception from
        errors.py (NotLeader, DiskFull, ... definite; OutcomeUnknown when it may have applied).
        """
        replica = self._replicas.get(shard_id)
        if replica is None:
            done(errors.UnknownShard(shard_id, self.node_id))
            return
        invalid = replica.state_machine.validate(name, args)
        if invalid is not None:
            done(invalid)
            return
        if replica.state_machine.is_write(name):
            self._propose_command(replica, Command(name, args, self._clock_ms()), done)
        else:
            self._read(replica, name, args, done)

    def _propose_command(self, replica: Replica, command: Command, done: Done | None) -> None:
        if self._stall is not None:
            if done is not None:
                done(self._stalled_refusal(replica))
            return
        try:
            term, index = replica.node.propose(encode_command(command))
        except errors.ProposalError as error:
            if done is not None:
                done(error)
            return
        replica.proposals[index] = (term, done)
        replica.proposed_commands[index] = (term, command)

    def _read(self, replica: Replica, name: bytes, args: tuple[bytes, ...], done: Done) -> None:
        if self._stall is not None:
            self._read_while_stalled(replica, name, args, done)
            return
        # Unique across the group and across restarts: a follower's read index request is
        # forwarded to the leader, which tells requests apart by context alone.
        context = self._read_context_prefix + self._next_read_context.to_bytes(8, "big")
        self._next_read_context += 1
        try:
            replica.node.read_index(context)
        except errors.ProposalError as error:
            done(error)
            return
        floor = replica.node.raft_log.last_index() if replica.node.role == Role.LEADER else 0
        replica.reads[context] = PendingRead(name, args, done, floor=floor)

    def _read_while_stalled(self, replica: Replica, name: bytes, args: tuple[bytes, ...],
                            done: Done) -> None:
        """A read while a full disk stalls the cores. If this node is the shard's only voter,
        no other replica can commit anything, and every write acknowledged so far was
        acknowledged only after its effects were written (the apply step): the applied state
        holds every acknowledged write and only grows, so a read of it now is linearizable.
        Otherwise another leader may be committing writes this frozen core cannot see: the
        read is refused (definite; `_stalled_refusal`), and routed to that leader."""
        if not self._sole_voter(replica):
            done(self._stalled_refusal(replica))
            return
        try:
            view = ReadView(self.store.shard(replica.shard_id))
            reply = replica.state_machine.read(view, name, args, self._clock_ms())
        except errors.StorageError as error:
            done(error)
            return
        done(reply)

    def _stalled_refusal(self, replica: Replica) -> errors.QuorumKVError:
        """Why a stalled host refuses client work for a shard: DiskFull when it is the only
        voter (nobody else can take the work); otherwise NotLeader naming the leader seen
        since (or none yet), so the dispatcher routes the command there (definite either
        way: nothing entered the core)."""
        if self._sole_voter(replica):
            return errors.DiskFull(STALLED_STORE)
        return errors.NotLeader(replica.shard_id, self.leader_of(replica.shard_id))

    def propose_conf_change(self, shard_id: int, change: ConfChange, done: Done | None) -> None:
        replica = self._replicas[shard_id]
        if self._stall is not None:
            if done is not None:
                done(self._stalled_refusal(replica))
            return
        try:
            term, index = replica.node.propose_conf_change(change)
        except errors.ProposalError as error:
            if done is not None:
                done(error)
            return
        replica.proposals[index] = (term, done)

    def transfer_leader(self, shard_id: int, target: int) -> None:
        """Ask the shard's leader to hand over to `target`; advisory. A replica that knows no
        leader (it lost leadership since the request was made) drops it: callers retry."""
        if self._stall is None:
            with contextlib.suppress(errors.NotLeader):
                self._replicas[shard_id].node.transfer_leader(target)

    def campaign(self, shard_id: int) -> None:
        if self._stall is None:
            self._replicas[shard_id].node.campaign()

    def _count_expired(self, outcome: object) -> None:
        """An expiry deletion applied: its reply is the number of keys it deleted."""
        if isinstance(outcome, int) and not isinstance(outcome, bool):
            self.expired_keys += outcome

    def fail_pending(self, error: Exception) -> None:
        """Complete every waiting proposal and read with `error` (shutdown, crash)."""
        for replica in self._replicas.values():
            replica.fail_all(error, self._completions)
        self._fire_completions()

    def _propose_expirations(self) -> None:
        now = self._clock_ms()
        for replica in self._replicas.values():
            if replica.role != Role.LEADER or replica.state_machine is not DATA:
                continue  # only leaders of data shards delete expired keys
            view = ReadView(self.store.shard(replica.shard_id))
            due = kv_state_machine.expired_keys(view, now, limits.expire_deletions_per_round_max)
            if due:
                command = kv_state_machine.expire_delete_command(due, now)
                self._propose_command(replica, command, self._count_expired)
            if kv_state_machine.sweep_needed(view):  # released collections' members
                self._propose_command(replica, kv_state_machine.sweep_command(now), None)

    # ---- the Ready driver ----------------------------------------------------------------------

    def process(self) -> bool:
        """Run one Ready cycle over every shard; returns whether there was anything to do."""
        if self._stall is not None:
            if not self._resume():
                return False
            self.disk_full_since_ms = None
            self._stalled_leaders.clear()
        readies = [(r, r.node.ready()) for r in self._replicas.values() if r.node.has_ready()]
        if not readies:
            self._fire_completions()
            return False
        self._cycle(_Stall("persist", readies, self._declined_images(readies)))
        return True

    def _declined_images(self, readies: list[tuple[Replica, Ready]]) -> list[tuple[int, StagedSnapshot]]:
        """Images staged before these Readies were computed that the Readies do not install:
        the core declined them (its log or commit was already newer)."""
        declined = []
        for replica, ready in readies:
            image = self._receiver.staged(replica.shard_id)
            if image is not None and ready.snapshot is None:
                declined.append((replica.shard_id, image))
        return declined

    def _resume(self) -> bool:
        stall, self._stall = self._stall, None
        invariant(stall is not None, "resume without a stall")
        assert stall is not None
        self._cycle(stall)
        return self._stall is None

    def _cycle(self, work: _Stall) -> None:
        if work.step == "persist":
            if not self._try(work, self._persist, work.readies):
                return
            self._send(work.readies)
            for shard_id, image in work.declined:
                self._receiver.discard_staged(shard_id, image)
            work.apply_batch = self.store.batch()
            self._apply(work.readies, work.apply_batch, work.completions)
            work.step = "apply"
        invariant(work.apply_batch is not None, "apply step without its batch")
        assert work.apply_batch is not None
        applied_any = any(ready.committed_entries for _, ready in work.readies)
        if applied_any and not self._try(
                work, lambda _: self.store.write(work.apply_batch, sync=False), None):
            return
        self._completions.extend(work.completions)
        now = self._clock_ms()
        for replica, ready in work.readies:
            replica.answer_reads(self.store, now, self._completions)
            replica.node.advance(ready)
        self._fire_completions()

    def _try(self, work: _Stall, step: Callable[[Any], None], argument: Any) -> bool:
        try:
            step(argument)
        except errors.DiskFull:
            self._stall = work
            if self.disk_full_since_ms is None:
                self.disk_full_since_ms = self._clock_ms()
            return False
        return True

    def _persist(self, readies: list[tuple[Replica, Ready]]) -> None:
        batch = self.store.batch()
        sync = False
        for replica, ready in readies:
            if ready.snapshot is not None:
                # Peek: the image leaves the receiver only once the write succeeded, so a full
                # disk that stalls this cycle leaves it there for the retry.
                image = self._receiver.staged(replica.shard_id)
                invariant(image is not None and image.meta == ready.snapshot,
                          f"shard {replica.shard_id}: the core installs a snapshot "
                          f"{ready.snapshot} that was not staged")
                assert image is not None
                batch.install_snapshot(replica.shard_id, image)
            if ready.entries:
                batch.append_entries(replica.shard_id, ready.entries)
            if ready.hard_state is not None:
                batch.set_hard_state(replica.shard_id, ready.hard_state)
            sync = sync or ready.must_sync
        if sync or any(r.snapshot is not None or r.entries or r.hard_state is not None
                       for _, r in readies):
            self.store.write(batch, sync=sync)  # else nothing to persist: no write at all
        for replica, ready in readies:
            if ready.snapshot is not None:
                self._receiver.take_staged(replica.shard_id)
                replica.installed_snapshot(ready.snapshot, self._completions)

            if self._observer is not None and (ready.entries or ready.hard_state):
                self._observer.on_persisted(self.node_id, replica.shard_id, ready.entries,
                                            ready.hard_state)

    def _send(self, readies: list[tuple[Replica, Ready]]) -> None:
        for replica, ready in readies:
            self._observe_role(replica, ready)
            for message in ready.messages:
                if message.type == MessageType.SNAPSHOT:
                    for chunk in self._sender.start(message):
                        self._transport.send(chunk.target, chunk)
                else:
                    self._transport.send(message.target, message)

    def _observe_role(self, replica: Replica, ready: Ready) -> None:
        if ready.soft_state is None:
            return
        was_leader = replica.role == Role.LEADER
        previous_leader = replica.leader_id
        replica.role = ready.soft_state.role
        replica.leader_id = ready.soft_state.leader_id
        replica.term = replica.node.term
        self._log_role(replica, was_leader, previous_leader)
        if was_leader and replica.role != Role.LEADER:
            replica.lost_leadership(self._completions)
            self._sender.abort_group(replica.shard_id)
        if not was_leader and replica.role == Role.LEADER and self._observer is not None:
            self._observer.on_leader(self.node_id, replica.shard_id, replica.node.term,
                                     self._log_terms(replica))

    def _log_role(self, replica: Replica, was_leader: bool, previous_leader: int) -> None:
        """One line per leadership event of a replica (its soft state changed): an election
        won, a leader stepping down, a new leader learned, a leader lost to an election
        timeout. A follower that only hears of a new term (leader unknown until the election
        ends) logs nothing until it learns the new leader."""
        prefix = f"node {self.node_id}: shard {replica.shard_id} term {replica.term}:"
        leader, role = replica.leader_id, replica.role
        known, replica.known_leader = replica.known_leader, leader or replica.known_leader
        previous = f"node {known}" if known else "none known"
        if role == Role.LEADER and not was_leader:
            log.info("%s elected leader (previous leader: %s)", prefix, previous)
        elif was_leader and role != Role.LEADER:
            now = f"leader is node {leader}" if leader else "no leader known"
            log.info("%s stepped down as leader, now %s (%s)", prefix, role.name.lower(), now)
        elif leader and leader != previous_leader:
            log.info("%s leader is node %d (previous leader: %s)", prefix, leader, previous)
        elif previous_leader and not leader and role == Role.PRE_CANDIDATE:
            log.info("%s lost its leader node %d (election timeout), campaigning", prefix,
                     previous_leader)

    def _log_terms(self, replica: Replica) -> list[tuple[int, int]]:
        """(index, term) of every entry in the replica's durable log, from its snapshot point
        (the Ready that made it leader has been persisted by now)."""
        log = self.store.log(replica.shard_id)
        first, last = log.first_index(), log.last_index()
        pairs = [(first - 1, log.term(first - 1))]
        if last >= first:
            pairs.extend((e.index, e.term) for e in log.entries(first, last + 1, 1 << 62))
        return pairs

    def _apply(self, readies: list[tuple[Replica, Ready]], batch: WriteBatch,
               completions: list[tuple[Done, object]]) -> None:
        for replica, ready in readies:
            replica.read_states(ready.read_states)
            if not ready.committed_entries:
                continue
            on_applied = None
            if self._observer is not None:
                on_applied = partial(self._observer.on_applied, self.node_id, replica.shard_id)
            replica.apply_entries(self.store, batch, ready.committed_entries, completions,
                                  on_applied)
            if replica.should_compact(self.store, self.config.log_compaction_entries_min):
                batch.compact_log(replica.shard_id, replica.applied)

    def _fire_completions(self) -> None:
        while self._completions:
            completions, self._completions = self._completions, []
            for done, result in completions:
                done(result)

    # ---- observation -----------------------------------------------------------------------

    def leader_of(self, shard_id: int) -> int:
        """The shard's leader as this replica knows it (0: unknown). While a full disk stalls
        the cores, a leader of a newer term seen in a dropped message, if any; a stalled
        leader of a shard with other voters is not counted as one (it can send nothing)."""
        replica = self._replicas.get(shard_id)
        if replica is None:
            return 0
        if self._stall is not None and not self._sole_voter(replica):
            seen = self._stalled_leaders.get(shard_id)
            if seen is not None:
                return seen[1]
            return 0 if replica.node.leader_id == self.node_id else replica.node.leader_id
        return replica.node.leader_id

    def hosts(self, shard_id: int) -> bool:
        """Whether a replica of the shard lives on this node."""
        return shard_id in self._replicas

    def is_leader(self, shard_id: int) -> bool:
        """Whether this replica leads the shard and can act as its leader: not while a full
        disk stalls it, unless it is the shard's only voter (it answers reads meanwhile)."""
        replica = self._replicas.get(shard_id)
        if replica is None or replica.node.role != Role.LEADER:
            return False
        return self._stall is None or self._sole_voter(replica)

    def _sole_voter(self, replica: Replica) -> bool:
        conf = replica.applied.conf_state
        return conf.voters == (self.node_id,) and not conf.voters_outgoing

    def snapshot_figures(self) -> dict[str, int]:
        """Snapshot images this node received (verified, whole) and the chunk bytes staged."""
        return {"snapshots_received": self._receiver.images_received,
                "snapshot_bytes_received": self._receiver.bytes_received}

    def status(self) -> dict[int, dict[str, object]]:
        return {
            shard_id: {
                "role": replica.node.role.name.lower(),
                "term": replica.node.term,
                "leader": replica.node.leader_id,
                "commit": replica.node.commit_index,
                "applied": replica.applied.index,
                "pending_proposals": len(replica.proposals),
                "pending_reads": len(replica.reads),
            }
            for shard_id, replica in sorted(self._replicas.items())
        }
