"""Randomized runs of a 5-replica group under a hostile network, checking Raft's safety rules.

Each run, driven by one seed, mixes ticks, proposals, reads, membership changes, leader
transfers, log compaction, crashes and restarts, with messages delivered out of order, dropped,
duplicated and partitioned. After every step it checks (Raft paper, figure 3):

- election safety: at most one leader per term;
- state machine safety: every replica applies the same entry at a given index;
- read safety (ReadIndex): a read index is at least the highest index any replica had
  applied when the read was requested;
- membership: every replica that applied a given index agrees on the configuration.

At the end the network heals and the group must elect a leader and commit a new entry (liveness
in a calm period). A failing seed prints itself; keep it as a regression case.
"""

from __future__ import annotations

import random

import pytest

from quorumkv.errors import QuorumKVError
from quorumkv.raft.confchange import ConfChange, ConfChangeSingle, ConfChangeType
from quorumkv.raft.types import Entry, EntryType, ReadState, Role

from .harness import Cluster

REPLICAS = (1, 2, 3, 4, 5)


class Checker:
    """Collects what every replica did and checks it against Raft's safety rules."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.committed: dict[int, tuple[int, int, bytes]] = {}  # index -> (term, type, data)
        self.leaders: dict[int, int] = {}  # term -> leader
        self.reads: dict[bytes, int] = {}  # context -> commit index known when asked
        self.read_answers = 0
        cluster.on_committed = self.check_committed
        cluster.on_read_state = self.check_read

    def check_committed(self, replica: int, entry: Entry) -> None:
        record = (entry.term, int(entry.type), entry.data)
        known = self.committed.setdefault(entry.index, record)
        assert known == record, (
            f"replica {replica} applies {record} at {entry.index}, another applied {known}"
        )

    def check_read(self, replica: int, state: ReadState) -> None:
        asked_at = self.reads.get(state.context)
        assert asked_at is not None, f"read state for an unknown context {state.context!r}"
        assert state.index >= asked_at, (
            f"read {state.context!r} answered at {state.index} but {asked_at} was committed "
            "when it was asked"
        )
        self.read_answers += 1

    def check_leaders(self) -> None:
        for replica_id, replica in self.cluster.replicas.items():
            node = replica.node
            if node.role == Role.LEADER:
                leader = self.leaders.setdefault(node.term, replica_id)
                assert leader == replica_id, f"two leaders in term {node.term}: {leader}, {replica_id}"

    def max_applied(self) -> int:
        """The highest index any replica applied: a client may have seen its effect. (A
        core's in-memory commit index is not enough: a single voter commits entries before
        they are persisted, and loses them if it crashes first.)"""
        return max(self.committed, default=0)


def random_conf_change(rng: random.Random, cluster: Cluster, leader: int) -> ConfChange:
    conf_state = cluster.node(leader).conf_state
    if conf_state.voters_outgoing:
        return ConfChange.leave_joint()
    replica = rng.choice(REPLICAS)
    if replica in conf_state.learners:
        kind = rng.choice([ConfChangeType.PROMOTE_LEARNER, ConfChangeType.REMOVE])
    elif replica in conf_state.voters:
        kind = rng.choice([ConfChangeType.REMOVE, ConfChangeType.ADD_LEARNER])
    else:
        kind = rng.choice([ConfChangeType.ADD_LEARNER, ConfChangeType.ADD_VOTER])
    changes = [ConfChangeSingle(kind, replica)]
    if rng.random() < 0.3:
        other = rng.choice(REPLICAS)
        if other != replica:
            other_kind = (
                ConfChangeType.ADD_VOTER if other not in conf_state.voters else ConfChangeType.REMOVE
            )
            changes.append(ConfChangeSingle(other_kind, other))
    return ConfChange(tuple(changes))


def run_seed(seed: int, steps: int, lease: bool = False) -> Checker:
    """One randomized run. With `lease`, reads use leader leases and every replica ticks in
    lockstep (no clock drift: the lease's safety assumption holds)."""
    rng = random.Random(seed)
    cluster = Cluster()
    cluster.add_nodes(
        5,
        voters=(1, 2, 3),
        read_only="lease" if lease else "safe",
        pre_vote=rng.random() < 0.7,
        append_entries_max=rng.choice([1, 3, 64]),
        inflight_messages_max=rng.choice([1, 4, 256]),
    )
    cluster.report_snapshots = True
    checker = Checker(cluster)
    proposals = 0
    for step in range(steps):
        action = rng.random()
        replica = rng.choice(REPLICAS)
        node = cluster.node(replica)
        try:
            if action < 0.30:
                for ticked in REPLICAS if lease else (replica,):
                    cluster.tick(ticked)
            elif action < 0.55:
                deliver_some(rng, cluster)
            elif action < 0.70:
                cluster.process_ready(replica)
            elif action < 0.78:
                proposals += 1
                node.propose(f"{seed}-{proposals}".encode())
            elif action < 0.82:
                context = f"read-{step}".encode()
                checker.reads[context] = checker.max_applied()
                node.read_index(context)
            elif action < 0.84:
                node.propose_conf_change(random_conf_change(rng, cluster, replica))
            elif action < 0.85:
                node.transfer_leader(rng.choice(REPLICAS))
            elif action < 0.86:
                applied = node.applied_index
                if applied > cluster.replicas[replica].log.first_index():
                    cluster.compact(replica, rng.randint(cluster.replicas[replica].log.first_index(), applied))
            elif action < 0.87:
                cluster.restart(replica)
            elif action < 0.89:
                shuffled = list(REPLICAS)
                rng.shuffle(shuffled)
                cut = rng.randint(1, 4)
                cluster.partition(tuple(shuffled[:cut]), tuple(shuffled[cut:]))
            elif action < 0.92:
                cluster.heal()
            else:
                cluster.process_ready(replica)
                deliver_some(rng, cluster)
        except QuorumKVError:
            pass
        checker.check_leaders()
    check_liveness(cluster, checker)
    return checker


def deliver_some(rng: random.Random, cluster: Cluster) -> None:
    """Deliver, drop or duplicate a few random messages (reordering the network)."""
    for _ in range(rng.randint(1, 6)):
        if not cluster.network:
            return
        message = cluster.network.pop(rng.randrange(len(cluster.network)))
        fate = rng.random()
        if fate < 0.1:
            cluster.report_lost(message)
            continue
        if fate < 0.15:
            cluster.network.append(message)  # duplicated (delivered now and later)
        if (message.source, message.target) in cluster.blocked:
            cluster.report_lost(message)
            continue
        cluster._step(message)


def check_liveness(cluster: Cluster, checker: Checker) -> None:
    """With the network healed and everything delivered, the group elects a leader and
    commits a new entry within a bounded number of rounds."""
    cluster.heal()
    for _ in range(400):
        for replica in REPLICAS:
            cluster.tick(replica)
        cluster.stabilize()
        checker.check_leaders()
        leader = cluster.leader()
        if leader and cluster.node(leader).role == Role.LEADER:
            try:
                _, index = cluster.node(leader).propose(b"final")
            except QuorumKVError:
                continue
            cluster.stabilize()
            if cluster.node(leader).commit_index >= index:
                return
    raise AssertionError("no leader committed an entry within 400 calm ticks")


@pytest.mark.parametrize("seed", range(60))
def test_random_run_is_safe(seed: int) -> None:
    """Under random faults, no two leaders share a term, replicas apply identical entries at
    each index, reads are never stale, and a healed group commits again."""
    checker = run_seed(seed, steps=3000)
    assert checker.committed, f"seed {seed}: nothing was ever committed"


@pytest.mark.parametrize("seed", range(20))
def test_random_run_with_lease_reads_is_safe(seed: int) -> None:
    """The same checks with lease reads, replicas ticking in lockstep: reads are never stale."""
    checker = run_seed(seed, steps=3000, lease=True)
    assert checker.committed, f"seed {seed}: nothing was ever committed"


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1060, 1560))
def test_random_run_with_lease_reads_is_safe_long(seed: int) -> None:
    """Lease reads over many more seeds and steps (make verify)."""
    run_seed(seed, steps=6000, lease=True)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(60, 1060))
def test_random_run_is_safe_long(seed: int) -> None:
    """The same checks over many more seeds and steps (make verify)."""
    run_seed(seed, steps=6000)


def test_conf_entries_are_conf_changes() -> None:
    """The checker's record of a conf change entry carries its type, so a replica applying a
    normal entry where another applied a conf change is caught."""
    cluster = Cluster()
    cluster.add_nodes(1, voters=(1,))
    checker = Checker(cluster)
    checker.check_committed(1, Entry(1, 5, EntryType.CONF_CHANGE, b"x"))
    with pytest.raises(AssertionError):
        checker.check_committed(2, Entry(1, 5, EntryType.NORMAL, b"x"))
