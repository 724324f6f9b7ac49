"""One shard replica on this node: its Raft core and the client work waiting on it.

The host keeps one `Replica` per shard it hosts. A replica tracks
- proposals in flight, by log index, with the term they were proposed in: when the entry at
  that index is applied, a matching term means the proposal took effect (its reply is the
  state machine's result); another term means a new leader replaced it (a definite failure);
- reads waiting for their read index (keyed by a request context), then waiting for the applied
  index to reach it;
- the applied point (index, term, membership) it last applied;
- on a leader, the commands it proposed, by log index with their term: the entry applied at
  that index with that term is that command (Log Matching, Raft paper §5.3), so apply takes
  it as it is instead of decoding the entry again.

It applies committed entries through the shard's state machine (kv's for data shards, the
cluster metadata's for shard 0: `cluster.state_machines`) and the Raft core's configuration
changes, and decides when to compact its log. All of it is synchronous; the host
calls it from its Ready driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from quorumkv import errors
from quorumkv.cluster.state_machines import StateMachine
from quorumkv.host.shard_view import ApplyCache, ApplyView, ReadView
from quorumkv.invariant import invariant
from quorumkv.kv.command import Command, decode_command
from quorumkv.kv.state_machine import read_seed
from quorumkv.raft.confchange import ConfChange
from quorumkv.raft.node import Node
from quorumkv.raft.types import Entry, EntryType, ReadState, Role, SnapshotMeta
from quorumkv.storage.protocols import NodeStore, WriteBatch

Done = Callable[[object], None]
"""A completion: called once with the reply value, or with an exception from errors.py."""


@dataclass(slots=True)
class PendingRead:
    name: bytes
    args: tuple[bytes, ...]
    done: Done
    age_ticks: int = 0
    index: int = -1  # the read index, once the core has answered
    # The leader's last log index when the read arrived: the read is answered only once that is
    # applied too, so it sees every write proposed before it, such as the SET just ahead of it
    # in a client's pipeline (cluster/pipeline_order.py lets such a GET start at once).
    floor: int = 0


@dataclass(slots=True)
class Replica:
    shard_id: int
    node: Node
    applied: SnapshotMeta
    state_machine: StateMachine
    proposals: dict[int, tuple[int, Done | None]] = field(default_factory=dict)
    reads: dict[bytes, PendingRead] = field(default_factory=dict)
    role: Role = Role.FOLLOWER
    leader_id: int = 0
    known_leader: int = 0  # the last leader this replica knew of (for the log)
    term: int = 0
    apply_cache: ApplyCache = field(default_factory=ApplyCache)
    proposed_commands: dict[int, tuple[int, Command]] = field(default_factory=dict)

    # ---- applying ----------------------------------------------------------------------------

    def apply_entries(self, store: NodeStore, batch: WriteBatch, entries: list[Entry],
                      completions: list[tuple[Done, object]],
                      on_applied: Callable[[Entry], None] | None) -> None:
        """Apply committed entries into `batch`, collecting the proposals they complete."""
        view = ApplyView(self.shard_id, store.shard(self.shard_id), batch, self.apply_cache)
        for entry in entries:
            if entry.index <= self.applied.index:
                self.proposed_commands.pop(entry.index, None)
                continue  # covered by an installed snapshot
            invariant(entry.index == self.applied.index + 1,
                      f"shard {self.shard_id}: applying {entry.index} after {self.applied.index}")
            result = self._apply_one(view, entry)
            self._complete_proposal(entry, result, completions)
            if on_applied is not None:
                on_applied(entry)
        batch.set_applied(self.shard_id, self.applied)

    def _apply_one(self, view: ApplyView, entry: Entry) -> object:
        conf_state = self.applied.conf_state
        result: object = None
        proposed = self.proposed_commands.pop(entry.index, None)
        if entry.type == EntryType.CONF_CHANGE:
            conf_state = self.node.apply_conf_change(ConfChange.decode(entry.data))
            result = conf_state
        elif entry.data:
            result = self.state_machine.apply(view, self._command_of(entry, proposed))
        self.applied = SnapshotMeta(entry.index, entry.term, conf_state)
        return result

    @staticmethod
    def _command_of(entry: Entry, proposed: tuple[int, Command] | None) -> Command:
        if proposed is not None and proposed[0] == entry.term:
            return proposed[1]
        return decode_command(entry.data)

    def _complete_proposal(self, entry: Entry, result: object,
                           completions: list[tuple[Done, object]]) -> None:
        pending = self.proposals.pop(entry.index, None)
        if pending is None:
            return
        term, done = pending
        if done is None:
            return
        if term == entry.term:
            completions.append((done, result))
        else:
            completions.append((done, errors.ProposalSuperseded(self.shard_id, entry.index)))

    def installed_snapshot(self, meta: SnapshotMeta,
                           completions: list[tuple[Done, object]]) -> None:
        """The shard's state was replaced by a snapshot: proposals it covers have an unknown
        fate (the image does not say which entries it contains)."""
        self.applied = meta
        self.apply_cache.clear()
        for index in [i for i in self.proposed_commands if i <= meta.index]:
            del self.proposed_commands[index]
        for index in [i for i in self.proposals if i <= meta.index]:
            _, done = self.proposals.pop(index)
            if done is not None:
                completions.append(
                    (done, errors.OutcomeUnknown(self.shard_id, "replaced by a snapshot")))

    # ---- reads -------------------------------------------------------------------------------

    def read_states(self, states: list[ReadState]) -> None:
        for state in states:
            read = self.reads.get(state.context)
            if read is not None:
                read.index = max(state.index, read.floor)

    def answer_reads(self, store: NodeStore, now_ms: int,
                     completions: list[tuple[Done, object]]) -> None:
        """Answer every read whose read index the applied index has reached."""
        if not self.reads:
            return
        ready = [c for c, r in self.reads.items() if 0 <= r.index <= self.applied.index]
        if not ready:
            return
        view = ReadView(store.shard(self.shard_id))
        for context in ready:
            read = self.reads.pop(context)
            # The context is unique to this read across the group and restarts: it seeds the
            # randomness of HRANDFIELD/SRANDMEMBER/RANDOMKEY, so no replica-local RNG is read.
            reply = self.state_machine.read(view, read.name, read.args, now_ms,
                                            read_seed(context))
            completions.append((read.done, reply))

    def age_reads(self, timeout_ticks: int, completions: list[tuple[Done, object]]) -> None:
        for context in [c for c, r in self.reads.items() if r.index < 0]:
            read = self.reads[context]
            read.age_ticks += 1
            if read.age_ticks > timeout_ticks:
                del self.reads[context]
                completions.append((read.done, errors.ReadTimeout(self.shard_id)))

    def lost_leadership(self, completions: list[tuple[Done, object]]) -> None:
        """Reads not yet granted a read index fail (they had no effect), and so do reads
        waiting for entries not committed (their floor may be truncated away); proposals stay:
        they may still commit under the next leader, and are settled when their index is
        applied."""
        commit = self.node.commit_index
        for context in [c for c, r in self.reads.items() if r.index < 0 or r.index > commit]:
            read = self.reads.pop(context)
            completions.append((read.done, errors.NotLeader(self.shard_id, self.leader_id)))

    def fail_all(self, error: Exception, completions: list[tuple[Done, object]]) -> None:
        for _, done in self.proposals.values():
            if done is not None:
                completions.append((done, error))
        for read in self.reads.values():
            completions.append((read.done, error))
        self.proposals.clear()
        self.proposed_commands.clear()
        self.reads.clear()

    def should_compact(self, store: NodeStore, entries_min: int) -> bool:
        first = store.log(self.shard_id).first_index()
        return self.applied.index - (first - 1) >= entries_min
