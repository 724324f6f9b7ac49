"""Placement at bootstrap: how many shards, which slots each owns, which nodes host and lead it.

Theory of operation. `place_shards(members, shard_count, replication_factor)` is a pure,
deterministic function of its inputs (members are taken in node-id order), so every node that
runs it on the same inputs gets the same plan, and tests can check it exhaustively:

- slots: data shard k of S owns the contiguous range [k * 16384 // S, (k + 1) * 16384 // S - 1],
  so the shards cover 0..16383 exactly once and differ in size by at most one slot;
- preferred leaders: data shard k is led by the k-th node in a round robin, so every node
  leads S // N or S // N + 1 data shards;
- replicas: each node hosts R * S // N or one more data replicas. The replica count each node
  must reach is fixed first (the extra ones go to nodes leading one more shard, which is what
  keeps a replication factor of 1 feasible); then shard after shard picks its R - 1 followers
  among the nodes that still need replicas, most constrained first (fewest shards left where
  it may still follow, relative to what it needs), then in a zone its shard does not use yet
  (the `zone` label, so that copies survive the loss of a zone when zones allow), then the
  neediest, then the nearest after the leader in node order;
- the metadata shard 0 takes the R nodes hosting the fewest replicas, led by the one among them
  leading the fewest data shards.

No node hosts two replicas of a shard. Replica ids equal node ids at bootstrap (the host runs
replica id = node id today); later replicas take fresh ids.

Raft elects whichever replica times out first, so the preferred leaders are reached by
leadership transfer: `leader_transfers(view)` lists, for one node, the shards it leads that
should be led elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from quorumkv import limits
from quorumkv.cluster.metadata import (
    METADATA_SHARD_ID,
    Member,
    Replica,
    ReplicaRole,
    Shard,
    make_shard,
)
from quorumkv.cluster.slot_ranges import SlotRange
from quorumkv.cluster.slots import SLOT_COUNT
from quorumkv.cluster.view import ClusterView
from quorumkv.errors import InvalidPlacement
from quorumkv.invariant import invariant

ZONE_LABEL = "zone"
"""The member label naming a failure domain; replicas of a shard prefer distinct zones."""


def place_shards(members: Sequence[Member], shard_count: int | None = None,
                 replication_factor: int | None = None) -> list[Shard]:
    """Shard 0 (metadata, no slots) then data shards 1..shard_count, each at epoch 1.

    `shard_count` defaults to limits.shards_per_node_default per member and
    `replication_factor` to limits.replication_factor_default, capped at the member count.
    Raises errors.InvalidPlacement for no members, duplicate node ids, a shard count outside
    1..16384 or a replication factor outside 1..members."""
    nodes = sorted(member.node_id for member in members)
    count, factor = _checked_sizes(nodes, shard_count, replication_factor)
    zones = {m.node_id: m.label(ZONE_LABEL) or f"node {m.node_id}" for m in members}
    leaders = [nodes[k % len(nodes)] for k in range(count)]
    followers = _Followers(nodes, leaders, factor, zones).place()
    shards = [
        make_shard(k + 1, [slot_range(k, count)],
                   [Replica(node, node) for node in (leaders[k], *followers[k])],
                   preferred_leader=leaders[k])
        for k in range(count)
    ]
    return [_metadata_shard(nodes, shards, factor), *shards]


def slot_range(index: int, count: int) -> SlotRange:
    """The contiguous slots of the `index`-th of `count` equal shards."""
    return SlotRange(index * SLOT_COUNT // count, (index + 1) * SLOT_COUNT // count - 1)


def _checked_sizes(nodes: list[int], shard_count: int | None,
                   replication_factor: int | None) -> tuple[int, int]:
    if not nodes:
        raise InvalidPlacement("there are no members to place shards on")
    if len(set(nodes)) != len(nodes):
        raise InvalidPlacement(f"node ids {nodes} repeat")
    count = limits.shards_per_node_default * len(nodes) if shard_count is None else shard_count
    if not 1 <= count <= min(SLOT_COUNT, limits.shard_id_max):
        raise InvalidPlacement(f"{count} shards: give between 1 and {SLOT_COUNT}")
    factor = (min(limits.replication_factor_default, len(nodes))
              if replication_factor is None else replication_factor)
    if not 1 <= factor <= len(nodes):
        raise InvalidPlacement(
            f"replication factor {factor} with {len(nodes)} nodes: a shard has at most one "
            "replica per node, so give between 1 and the number of nodes")
    return count, factor


class _Followers:
    """Chooses the followers of every data shard, reaching each node's replica target."""

    def __init__(self, nodes: list[int], leaders: list[int], factor: int,
                 zones: dict[int, str]) -> None:
        self.nodes = nodes
        self.leaders = leaders
        self.factor = factor
        self.zones = zones
        self.need = _follower_targets(nodes, leaders, factor)
        self.index = {node: i for i, node in enumerate(nodes)}
        # Shards from the current one on, and how many of them each node leads: a node may
        # follow in (remaining - remaining_led[node]) of them.
        self.remaining = len(leaders)
        self.remaining_led = {node: leaders.count(node) for node in nodes}

    def place(self) -> list[list[int]]:
        placed = []
        for leader in self.leaders:
            placed.append(self._followers_of(leader))
            self.remaining -= 1
            self.remaining_led[leader] -= 1
        invariant(not any(self.need.values()), "placement left replica targets unmet")
        return placed

    def _followers_of(self, leader: int) -> list[int]:
        chosen: list[int] = []
        used_zones = {self.zones[leader]}
        first = self.index[leader]
        for _ in range(self.factor - 1):
            candidates = [n for n in self.nodes
                          if n != leader and n not in chosen and self.need[n] > 0]
            invariant(candidates, "placement ran out of nodes needing replicas")
            best = min(candidates, key=lambda n: (
                self.remaining - self.remaining_led[n] - self.need[n],
                self.zones[n] in used_zones, -self.need[n],
                (self.index[n] - first) % len(self.nodes)))
            chosen.append(best)
            used_zones.add(self.zones[best])
            self.need[best] -= 1
        return chosen


def _follower_targets(nodes: list[int], leaders: list[int], factor: int) -> dict[int, int]:
    """Followers each node must host so that its replicas total R * S // N or one more; the
    extra replicas go to the nodes leading more shards first."""
    total = len(leaders) * factor
    base, extra = divmod(total, len(nodes))
    led = {node: leaders.count(node) for node in nodes}
    by_leadership = sorted(nodes, key=lambda node: (-led[node], node))
    targets = {node: base + (1 if i < extra else 0) for i, node in enumerate(by_leadership)}
    need = {node: targets[node] - led[node] for node in nodes}
    invariant(all(count >= 0 for count in need.values()), "a node leads more than it hosts")
    return need


def _metadata_shard(nodes: list[int], shards: list[Shard], factor: int) -> Shard:
    hosted = {node: 0 for node in nodes}
    led = {node: 0 for node in nodes}
    for shard in shards:
        led[shard.preferred_leader] += 1
        for node in shard.node_ids():
            hosted[node] += 1
    chosen = sorted(nodes, key=lambda node: (hosted[node], led[node], node))[:factor]
    leader = min(chosen, key=lambda node: (led[node], node))
    return make_shard(METADATA_SHARD_ID, (), [Replica(node, node) for node in chosen],
                      preferred_leader=leader)


def leader_transfers(view: ClusterView) -> list[tuple[int, int]]:
    """(shard id, node id) for each shard this node leads whose preferred leader is another
    voter not known to be down: the host hands leadership over (Raft's leadership transfer),
    which is how bootstrap's even spread of leaders is reached and restored after failures."""
    transfers = []
    for shard in view.metadata.data_shards():
        if view.leader_of(shard.shard_id) != view.node_id:
            continue
        preferred = shard.replica_on(shard.preferred_leader)
        if (preferred is not None and preferred.node_id != view.node_id
                and preferred.role is ReplicaRole.VOTER
                and preferred.node_id not in view.down_nodes):
            transfers.append((shard.shard_id, preferred.node_id))
    return transfers
