"""One node's view of the cluster: the replicated metadata plus what this node observes.

Theory of operation. Routing and the CLUSTER replies need, besides the metadata of shard 0,
things that are observed rather than replicated: who leads each shard (as this node's replicas
or its peers report it), which nodes are unreachable, how far each replica has applied its log.
A `ClusterView` joins the two for one node (`node_id`), and precomputes the slot table (slot ->
shard) that every keyed command looks up. The server builds a new view when the metadata
changes and updates `leaders` as elections end; a view is cheap to rebuild with `observe`
(the slot table is shared).

A leader the view does not know (0) means an election is in progress or the node has not heard
from the shard yet; routing then waits for one (routing.NoLeader).

Slot health (CLUSTER INFO's cluster_state and cluster_slots_*), from this node's view only:
a shard is `OK` when this node knows a leader it can reach (itself included, and then only
while it reaches a majority of the voters: a leader cut off from its quorum commits nothing);
`FAIL` when it has no quorum from here: fewer than a majority of its voters are reachable
(this node counted when it is one) and no reachable leader is known; `PFAIL` otherwise, when
no reachable leader is known but a majority is reachable, so an election can end or this
node has not learned the leader of a shard it does not host. Every data shard's slots are
counted once, in exactly one of the three.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from quorumkv.cluster.metadata import ClusterMetadata, Member, ReplicaRole, Shard
from quorumkv.cluster.slots import SLOT_COUNT


def slot_table(metadata: ClusterMetadata) -> tuple[int, ...]:
    """For each slot, the id of the shard owning it, or -1 when no shard does."""
    table = [-1] * SLOT_COUNT
    for shard in metadata.shards.values():
        for start, end in shard.slot_ranges:
            table[start : end + 1] = [shard.shard_id] * (end - start + 1)
    return tuple(table)


class SlotHealth(enum.Enum):
    """A shard's slots as this node sees them (see the module docstring)."""

    OK = "ok"
    PFAIL = "pfail"
    FAIL = "fail"


@dataclass(frozen=True)
class ClusterView:
    """The metadata as node `node_id` sees it, with the leaders it observes."""

    metadata: ClusterMetadata
    node_id: int
    leaders: Mapping[int, int] = field(default_factory=dict)
    """Shard id -> node id of its current leader (absent or 0: unknown)."""
    down_nodes: frozenset[int] = frozenset()
    """Members this node cannot reach now."""
    applied_indexes: Mapping[tuple[int, int], int] = field(default_factory=dict)
    """(shard id, node id) -> the replica's applied index, where known (CLUSTER SHARDS)."""
    slots: tuple[int, ...] = ()
    """The slot table; computed from the metadata when not given."""

    def __post_init__(self) -> None:
        if not self.slots:
            object.__setattr__(self, "slots", slot_table(self.metadata))

    def observe(self, leaders: Mapping[int, int] | None = None,
                down_nodes: frozenset[int] | None = None,
                applied_indexes: Mapping[tuple[int, int], int] | None = None) -> ClusterView:
        """This view with new observations, sharing the metadata and slot table."""
        return ClusterView(
            self.metadata, self.node_id,
            self.leaders if leaders is None else leaders,
            self.down_nodes if down_nodes is None else down_nodes,
            self.applied_indexes if applied_indexes is None else applied_indexes,
            self.slots)

    # ---- lookups ---------------------------------------------------------------------------

    def shard_of_slot(self, slot: int) -> Shard | None:
        """The shard owning `slot`, or None if no shard does."""
        shard_id = self.slots[slot]
        return None if shard_id < 0 else self.metadata.shards[shard_id]

    def leader_of(self, shard_id: int) -> int:
        """Node id of the shard's leader as observed, 0 if unknown."""
        return self.leaders.get(shard_id, 0)

    def member(self, node_id: int) -> Member | None:
        return self.metadata.members.get(node_id)

    def hosts(self, shard: Shard, node_id: int | None = None) -> bool:
        """Whether node `node_id` (default: this node) has a replica of `shard`."""
        return shard.replica_on(self.node_id if node_id is None else node_id) is not None

    def serving_shards(self) -> list[Shard]:
        """Data shards owning slots, by shard id: where the keys are."""
        return [shard for shard in self.metadata.data_shards() if shard.slot_ranges]

    def led_here(self) -> list[Shard]:
        """The serving shards this node leads now, by shard id."""
        return [s for s in self.serving_shards() if self.leader_of(s.shard_id) == self.node_id]

    def acting_leader(self, shard: Shard) -> int:
        """The node to show as the shard's master: its observed leader, else (during an
        election) its preferred leader, else its first voter. Clients sent there are forwarded
        or redirected once the election ends."""
        leader = self.leader_of(shard.shard_id)
        if leader and shard.replica_on(leader) is not None:
            return leader
        preferred = shard.replica_on(shard.preferred_leader)
        if preferred is not None and preferred.role is ReplicaRole.VOTER:
            return preferred.node_id
        voters = shard.voters()
        return voters[0].node_id if voters else 0

    def reaches_quorum(self, shard: Shard) -> bool:
        """Whether this node reaches a majority of the shard's voters (itself included)."""
        voters = shard.voters()
        reachable = sum(1 for r in voters
                        if r.node_id == self.node_id or r.node_id not in self.down_nodes)
        return 2 * reachable > len(voters)

    def slot_health(self, shard: Shard) -> SlotHealth:
        """Whether the shard's slots are served, as far as this node can tell (module
        docstring): OK, PFAIL (no reachable leader known, quorum reachable) or FAIL."""
        leader = self.leader_of(shard.shard_id)
        quorum = self.reaches_quorum(shard)
        if leader == self.node_id:
            return SlotHealth.OK if quorum else SlotHealth.FAIL
        if leader and leader not in self.down_nodes:
            return SlotHealth.OK
        return SlotHealth.PFAIL if quorum else SlotHealth.FAIL
