"""A cluster in a test: metadata from placement, a view per node, and one kv store per shard.

`Cluster(nodes=3)` places shards over nodes 1..N (client addresses 127.0.0.1:7001..., peer
addresses 127.0.0.1:17001...), takes every shard's preferred leader as its leader, and keeps a
MemoryKeyValueStore per data shard. `run(node, mode, *words)` routes a command as that node
would and carries out the decision the way the server is meant to: a shard's command runs on
that shard's store (writes through kv's apply, reads through kv's read), split commands are
gathered, SCAN steps are finished, MOVED / CROSSSLOT / refusals come back as error replies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quorumkv.cluster import fan_out, routing
from quorumkv.cluster.metadata import ClusterMetadata, Member, Shard, make_member
from quorumkv.cluster.placement import place_shards
from quorumkv.cluster.scan_cursor import ScanStep, finish_scan
from quorumkv.cluster.state_machines import DATA
from quorumkv.cluster.view import ClusterView
from quorumkv.kv.command import Command
from quorumkv.kv.reply import Reply
from quorumkv.kv.store import MemoryKeyValueStore

NOW_MS = 1_700_000_000_000


def members(count: int, zones: int = 0) -> list[Member]:
    return [make_member(node, f"127.0.0.1:{7000 + node}", f"127.0.0.1:{17000 + node}",
                        {"zone": f"z{node % zones}"} if zones else {})
            for node in range(1, count + 1)]


def metadata_for(nodes: int, shards: int | None = None, factor: int | None = None,
                 cluster_id: str = "test-cluster") -> ClusterMetadata:
    placed = place_shards(members(nodes), shards, factor)
    return ClusterMetadata(cluster_id, 1, {m.node_id: m for m in members(nodes)},
                           {shard.shard_id: shard for shard in placed})


def preferred_leaders(metadata: ClusterMetadata) -> dict[int, int]:
    return {shard_id: shard.preferred_leader for shard_id, shard in metadata.shards.items()}


def words(*parts: str | bytes) -> tuple[bytes, ...]:
    return tuple(p.encode() if isinstance(p, str) else p for p in parts)


@dataclass
class Cluster:
    nodes: int = 3
    shards: int | None = None
    factor: int | None = None
    client_routing: routing.ClientRouting = routing.ClientRouting.AUTO
    metadata: ClusterMetadata = field(init=False)
    leaders: dict[int, int] = field(init=False)
    stores: dict[int, MemoryKeyValueStore] = field(init=False)

    def __post_init__(self) -> None:
        self.metadata = metadata_for(self.nodes, self.shards, self.factor)
        self.leaders = preferred_leaders(self.metadata)
        self.stores = {s.shard_id: MemoryKeyValueStore() for s in self.metadata.data_shards()}

    def view(self, node_id: int) -> ClusterView:
        return ClusterView(self.metadata, node_id, dict(self.leaders))

    def shard(self, shard_id: int) -> Shard:
        return self.metadata.shards[shard_id]

    def execute(self, shard_id: int, name: bytes, args: tuple[bytes, ...]) -> Reply:
        """Run a command on a shard the way its leader's host would."""
        invalid = DATA.validate(name, args)
        if invalid is not None:
            return invalid
        store = self.stores[shard_id]
        if DATA.is_write(name):
            return DATA.apply(store, Command(name, args, NOW_MS))
        return DATA.read(store, name, args, NOW_MS)

    def decide(self, node_id: int, mode: routing.ConnectionMode, *parts: str | bytes
               ) -> routing.Decision:
        argv = words(*parts)
        return routing.route(self.view(node_id), mode, self.client_routing, argv[0].upper(),
                             argv[1:])

    def run(self, node_id: int, mode: routing.ConnectionMode, *parts: str | bytes) -> Reply:
        argv = words(*parts)
        return self.carry_out(self.decide(node_id, mode, *parts), argv[0].upper(), argv[1:])

    def carry_out(self, decision: routing.Decision, name: bytes, args: tuple[bytes, ...]
                  ) -> Reply:
        if isinstance(decision, (routing.Local, routing.Forward, routing.NoLeader)):
            return self.execute(decision.shard_id, name, args)
        if isinstance(decision, routing.SplitAcrossShards):
            replies = [self.execute(p.shard_id, p.name, p.args) for p in decision.parts]
            return fan_out.gather(decision.gather, decision.parts, replies)
        if isinstance(decision, ScanStep):
            return finish_scan(decision, self.execute(decision.shard_id, name, decision.args))
        return decision.reply

    def plain(self, *parts: str | bytes, node_id: int = 1) -> Reply:
        return self.run(node_id, routing.PLAIN, *parts)
