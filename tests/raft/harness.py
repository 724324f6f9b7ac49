"""A cluster of Raft cores on a perfect, controllable in-memory network, for tests.

Each replica is a `Node` over a `MemoryLog`, driven the way a host drives it: `process_ready`
persists the Ready into the MemoryLog, puts its messages on the network, applies committed
entries to a toy state machine (the list of applied commands) and calls `advance`. Messages
wait in the network until `deliver` steps them into their target, so a test decides exactly
what happens when. Partitions drop messages at delivery. Snapshots carry the sender's state
machine image "out of band", as a real host would stream it.

Every action can return trace lines; the golden runner prints them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quorumkv.errors import QuorumKVError
from quorumkv.raft.confchange import ConfChange
from quorumkv.raft.config import Config
from quorumkv.raft.memory_log import MemoryLog
from quorumkv.raft.node import Node
from quorumkv.raft.types import (
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    ReadState,
    Ready,
    SnapshotMeta,
)

# ---- formatting -------------------------------------------------------------------------------


def ids(values: tuple[int, ...]) -> str:
    return "(" + " ".join(str(value) for value in values) + ")"


def format_conf_state(conf_state: ConfState) -> str:
    text = f"voters={ids(conf_state.voters)}"
    if conf_state.voters_outgoing:
        text += f"&&{ids(conf_state.voters_outgoing)}"
    if conf_state.learners:
        text += f" learners={ids(conf_state.learners)}"
    if conf_state.learners_next:
        text += f" learners_next={ids(conf_state.learners_next)}"
    if conf_state.auto_leave:
        text += " autoleave"
    return text


def format_entry(entry: Entry) -> str:
    if entry.type == EntryType.CONF_CHANGE:
        return f"{entry.term}/{entry.index} conf[{ConfChange.decode(entry.data)}]"
    return f"{entry.term}/{entry.index} {entry.data.decode(errors='replace')!r}"


def format_entries(entries: list[Entry]) -> str:
    return "[" + ", ".join(format_entry(entry) for entry in entries) + "]"


def format_message(message: Message) -> str:
    kind = message.type
    text = f"{message.source}->{message.target} {kind.name} term={message.term}"
    if kind == MessageType.APPEND:
        text += f" log={message.log_term}/{message.index} commit={message.commit}"
        if message.entries:
            text += f" entries={format_entries(message.entries)}"
    elif kind == MessageType.APPEND_RESPONSE:
        text += f" index={message.index}"
        if message.reject:
            text += f" reject hint={message.reject_hint} hint_term={message.log_term}"
    elif kind in (MessageType.VOTE, MessageType.PRE_VOTE):
        text += f" last={message.log_term}/{message.index}"
    elif kind in (MessageType.VOTE_RESPONSE, MessageType.PRE_VOTE_RESPONSE):
        text += " rejected" if message.reject else " granted"
    elif kind == MessageType.HEARTBEAT:
        text += f" commit={message.commit}"
        if message.index:
            text += f" sent_tick={message.index}"
    elif kind == MessageType.HEARTBEAT_RESPONSE:
        if message.index:
            text += f" sent_tick={message.index}"
    elif kind in (MessageType.READ_INDEX_RESPONSE,):
        text += f" index={message.index}"
    elif kind == MessageType.SNAPSHOT and message.snapshot is not None:
        text += f" snapshot={format_snapshot(message.snapshot)}"
    if message.context:
        text += f" context={message.context.decode(errors='replace')}"
    return text


def format_snapshot(meta: SnapshotMeta) -> str:
    return f"{meta.term}/{meta.index} {format_conf_state(meta.conf_state)}"


def format_ready(replica_id: int, ready: Ready) -> list[str]:
    lines = [f"> {replica_id} handling Ready"]
    if ready.soft_state is not None:
        soft = ready.soft_state
        lines.append(f"  soft: role={soft.role.name} leader={soft.leader_id}")
    if ready.hard_state is not None:
        hard = ready.hard_state
        lines.append(f"  hard: term={hard.term} vote={hard.vote} commit={hard.commit}")
    if ready.snapshot is not None:
        lines.append(f"  snapshot: {format_snapshot(ready.snapshot)}")
    if ready.entries:
        lines.append(f"  entries: {format_entries(ready.entries)}")
    if ready.committed_entries:
        lines.append(f"  committed: {format_entries(ready.committed_entries)}")
    for state in ready.read_states:
        lines.append(f"  read state: index={state.index} context={state.context.decode()}")
    for message in ready.messages:
        lines.append(f"  send: {format_message(message)}")
    if ready.must_sync:
        lines.append("  must_sync")
    return lines


# ---- the cluster ------------------------------------------------------------------------------


@dataclass
class Replica:
    """One replica and the host-side state a real host would keep for it."""

    node: Node
    log: MemoryLog
    config: Config
    applied: list[tuple[int, bytes]] = field(default_factory=list)  # the state machine
    conf_history: list[tuple[int, ConfState]] = field(default_factory=list)
    staged_images: dict[int, list[tuple[int, bytes]]] = field(default_factory=dict)
    read_states: list[tuple[int, bytes]] = field(default_factory=list)
    crashed: bool = False

    def conf_state_at(self, index: int) -> ConfState:
        """The membership as of `index` (for snapshots taken there)."""
        current = self.log.snapshot_meta().conf_state
        for changed_at, conf_state in self.conf_history:
            if changed_at <= index:
                current = conf_state
        return current

    def image_at(self, index: int) -> list[tuple[int, bytes]]:
        return [(at, data) for at, data in self.applied if at <= index]


class Cluster:
    """Replicas of one group (group id 1) and the network between them."""

    group_id = 1

    def __init__(self) -> None:
        self.replicas: dict[int, Replica] = {}
        self.network: list[Message] = []  # in send order
        self.blocked: set[tuple[int, int]] = set()
        # Observers for randomized tests: every committed entry handed out, every read state.
        self.on_committed: Callable[[int, Entry], None] | None = None
        self.on_read_state: Callable[[int, ReadState], None] | None = None
        # Whether the sender's host reports the end of every snapshot transfer to its core
        # (as a real host must); golden scripts report by hand to show the steps.
        self.report_snapshots = False

    # ---- membership of the harness --------------------------------------------------------

    def add_nodes(
        self,
        count: int,
        voters: tuple[int, ...] = (),
        learners: tuple[int, ...] = (),
        **overrides: Any,
    ) -> list[str]:
        lines = []
        for _ in range(count):
            replica_id = len(self.replicas) + 1
            founding = replica_id in voters or replica_id in learners
            if founding:
                conf_state = ConfState(voters=tuple(sorted(voters)), learners=tuple(sorted(learners)))
                log = MemoryLog.bootstrap(self.group_id, conf_state)
                applied = log.first_index() - 1
            else:
                log = MemoryLog(self.group_id)
                applied = 0
            config = Config(id=replica_id, group_id=self.group_id, applied=applied, **overrides)
            self.replicas[replica_id] = Replica(Node(config, log, random.Random(replica_id)), log, config)
            conf = format_conf_state(log.initial_state()[1])
            lines.append(f"INFO {replica_id} created: term={log.hard_state().term} {conf}")
        return lines

    def node(self, replica_id: int) -> Node:
        return self.replicas[replica_id].node

    def restart(self, replica_id: int) -> list[str]:
        """Crash and restart a replica: it keeps what its MemoryLog and state machine hold
        (the host persists the applied index with the state machine)."""
        replica = self.replicas[replica_id]
        config = Config(**{**replica.config.__dict__, "applied": replica.node.applied_index})
        replica.config = config
        replica.node = Node(config, replica.log, random.Random(replica_id * 1000 + 1))
        for message in self.network:
            if message.target == replica_id:
                self.report_lost(message)
        self.network = [m for m in self.network if m.target != replica_id]
        return [f"INFO {replica_id} restarted: applied={config.applied}"]

    # ---- driving --------------------------------------------------------------------------

    def process_ready(self, replica_id: int) -> list[str]:
        replica = self.replicas[replica_id]
        node = replica.node
        if not node.has_ready():
            return []
        ready = node.ready()
        lines = format_ready(replica_id, ready)
        # 1. persist (snapshot first, then entries, then hard state)
        if ready.snapshot is not None:
            replica.log.apply_snapshot(ready.snapshot)
            replica.applied = replica.staged_images.pop(ready.snapshot.index, [])
            replica.conf_history.append((ready.snapshot.index, ready.snapshot.conf_state))
        replica.log.append(ready.entries)
        if ready.hard_state is not None:
            replica.log.set_hard_state(ready.hard_state)
        # 2. send
        self.network.extend(ready.messages)
        # 3. apply
        for entry in ready.committed_entries:
            if self.on_committed is not None:
                self.on_committed(replica_id, entry)
            lines.extend(self._apply(replica, entry))
        for state in ready.read_states:
            if self.on_read_state is not None:
                self.on_read_state(replica_id, state)
            replica.read_states.append((state.index, state.context))
        node.advance(ready)
        return lines

    def _apply(self, replica: Replica, entry: Entry) -> list[str]:
        if entry.type == EntryType.NORMAL:
            if entry.data:
                replica.applied.append((entry.index, entry.data))
            return []
        change = ConfChange.decode(entry.data)
        try:
            conf_state = replica.node.apply_conf_change(change)
        except QuorumKVError as error:
            return [f"  INFO {replica.node.id} skipped conf change {change}: {error}"]
        replica.log.set_conf_state(conf_state)
        replica.conf_history.append((entry.index, conf_state))
        return [f"  INFO {replica.node.id} applied {change}: {format_conf_state(conf_state)}"]

    def deliver(self, replica_id: int | None = None, drop: bool = False) -> list[str]:
        """Step every queued message to `replica_id` (or to everyone) into its target."""
        selected = [m for m in self.network if replica_id is None or m.target == replica_id]
        self.network = [m for m in self.network if not (replica_id is None or m.target == replica_id)]
        lines = []
        for message in selected:
            if drop or (message.source, message.target) in self.blocked:
                lines.append(f"{format_message(message)} DROPPED")
                self.report_lost(message)
                continue
            lines.append(format_message(message))
            lines.extend(self._step(message))
        return lines

    def report_lost(self, message: Message) -> None:
        """A lost snapshot transfer is reported to the sender's core by its host."""
        if self.report_snapshots and message.type == MessageType.SNAPSHOT:
            sender = self.replicas.get(message.source)
            if sender is not None:
                sender.node.report_snapshot(message.target, False)

    def _step(self, message: Message) -> list[str]:
        target = self.replicas.get(message.target)
        if target is None:
            return ["  (no such replica)"]
        if message.type == MessageType.SNAPSHOT and message.snapshot is not None:
            # The sender's host snapshots its applied state when it starts sending (possibly
            # newer than the point the core named) and streams the image; it is staged on the
            # receiver before the core sees the message.
            sender = self.replicas[message.source]
            applied = sender.node.applied_index
            message.snapshot = SnapshotMeta(
                applied, sender.log.term(applied), sender.conf_state_at(applied)
            )
            target.staged_images[applied] = sender.image_at(applied)
        try:
            target.node.step(message)
        except QuorumKVError as error:
            return [f"  error: {type(error).__name__}: {error}"]
        if self.report_snapshots and message.type == MessageType.SNAPSHOT:
            self.replicas[message.source].node.report_snapshot(message.target, True)
        return []

    def stabilize(self, replica_ids: list[int] | None = None) -> list[str]:
        """Process Readies and deliver messages until nothing moves."""
        chosen = sorted(replica_ids or self.replicas)
        lines: list[str] = []
        for _ in range(10_000):
            moved = False
            for replica_id in chosen:
                ready_lines = self.process_ready(replica_id)
                if ready_lines:
                    moved = True
                    lines.extend(ready_lines)
            for replica_id in chosen:
                delivered = self.deliver(replica_id)
                if delivered:
                    moved = True
                    lines.extend(delivered)
            if not moved:
                return lines
        raise AssertionError("the cluster did not stabilize within 10,000 rounds")

    def tick(self, replica_id: int, count: int = 1) -> list[str]:
        for _ in range(count):
            self.replicas[replica_id].node.tick()
        return []

    def partition(self, *groups: tuple[int, ...]) -> None:
        """Block messages between replicas of different groups."""
        self.blocked.clear()
        for group in groups:
            for other in groups:
                if group is other:
                    continue
                for source in group:
                    for target in other:
                        self.blocked.add((source, target))

    def heal(self) -> None:
        self.blocked.clear()

    def compact(self, replica_id: int, index: int) -> list[str]:
        """Snapshot the state at `index` (applied) and drop the log up to it."""
        replica = self.replicas[replica_id]
        invariant_applied = replica.node.applied_index
        if index > invariant_applied:
            return [f"error: cannot compact {replica_id} to {index}: applied is {invariant_applied}"]
        meta = SnapshotMeta(index, replica.log.term(index), replica.conf_state_at(index))
        replica.log.compact(meta)
        return [f"INFO {replica_id} compacted to {format_snapshot(meta)}"]

    # ---- observation ----------------------------------------------------------------------

    def status_lines(self, replica_id: int) -> list[str]:
        status = self.node(replica_id).status()
        lines = [
            f"{replica_id}: {status['role']} term={status['term']} leader={status['leader_id']} "
            f"commit={status['commit_index']} applied={status['applied_index']} "
            f"log=[{status['first_index']}, {status['last_index']}] "
            f"{format_conf_state(status['conf_state'])}"
        ]
        if status["lead_transferee"]:
            lines.append(f"  transferring leadership to {status['lead_transferee']}")
        for peer, progress in status.get("progress", {}).items():
            flags = []
            if progress["learner"]:
                flags.append("learner")
            if progress["paused"]:
                flags.append("paused")
            if progress["inflight"]:
                flags.append(f"inflight={progress['inflight']}")
            if progress["pending_snapshot"]:
                flags.append(f"pending_snapshot={progress['pending_snapshot']}")
            lines.append(
                f"  {peer}: {progress['state']} match={progress['match']} next={progress['next']}"
                + ("" if not flags else " " + " ".join(flags))
            )
        if "lease_valid" in status and self.replicas[replica_id].config.read_only == "lease":
            lines.append(f"  lease_valid={status['lease_valid']}")
        return lines

    def log_lines(self, replica_id: int) -> list[str]:
        log = self.replicas[replica_id].log
        first, last = log.first_index(), log.last_index()
        if first > last:
            return [f"log is empty: first index={first}, last index={last}"]
        return [format_entry(entry) for entry in log.entries(first, last + 1, 1 << 60)]

    def applied_data(self, replica_id: int) -> list[bytes]:
        return [data for _, data in self.replicas[replica_id].applied]

    def leader(self) -> int:
        """The id of the replica that leads in the highest term, or 0."""
        best, best_term = 0, -1
        for replica_id, replica in self.replicas.items():
            if replica.node.role.name == "LEADER" and replica.node.term > best_term:
                best, best_term = replica_id, replica.node.term
        return best
