"""A small in-process cluster of Hosts on a perfect network, for host tests.

Not the simulator: no faults unless a test makes them (drop a node's traffic, crash it). Each
`step()` delivers every queued message, ticks nothing, and runs every host's Ready driver;
`run_until` repeats steps and ticks until a condition holds, within a bound.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from quorumkv.codec.peer import PeerMessage
from quorumkv.host.host import Host, HostConfig
from quorumkv.raft.confchange import ConfChange
from quorumkv.storage.memory import MemoryStore


class Network:
    def __init__(self) -> None:
        self.queue: list[tuple[int, PeerMessage]] = []
        self.isolated: set[int] = set()

    def transport(self, source: int) -> Any:
        network = self

        class _Transport:
            def send(self, target_node: int, message: PeerMessage) -> None:
                if source in network.isolated or target_node in network.isolated:
                    return
                network.queue.append((target_node, message))

        return _Transport()


class Cluster:
    def __init__(self, size: int, shard_id: int = 1, config: HostConfig | None = None,
                 store_factory: Callable[[int], Any] = lambda node_id: MemoryStore()) -> None:
        self.network = Network()
        self.clock = [1_000_000]
        self.config = config or HostConfig()
        self.stores = {n: store_factory(n) for n in range(1, size + 1)}
        self.hosts: dict[int, Host] = {}
        for node_id, store in self.stores.items():
            host = self._host(node_id, store)
            host.bootstrap_shard(shard_id, list(self.stores))
            host.start()
            self.hosts[node_id] = host

    def _host(self, node_id: int, store: Any) -> Host:
        return Host(node_id, store, self.network.transport(node_id), random.Random(node_id),
                    lambda: self.clock[0], self.config)

    def add_node(self, node_id: int, shard_id: int) -> Host:
        self.stores[node_id] = MemoryStore()
        host = self._host(node_id, self.stores[node_id])
        host.create_replica(shard_id)
        self.hosts[node_id] = host
        return host

    def step(self) -> None:
        for host in self.hosts.values():
            host.process()
        queue, self.network.queue = self.network.queue, []
        for target, message in queue:
            if target in self.hosts:
                self.hosts[target].receive(message)
        for host in self.hosts.values():
            host.process()

    def tick(self) -> None:
        self.clock[0] += 10
        for host in self.hosts.values():
            host.tick()
        self.step()

    def run_until(self, condition: Callable[[], bool], ticks_max: int = 500) -> None:
        for _ in range(ticks_max):
            self.step()
            if condition():
                return
            self.tick()
        raise AssertionError(f"condition not reached within {ticks_max} ticks")

    def leader(self, shard_id: int = 1) -> int:
        leaders = [n for n, h in self.hosts.items() if h.is_leader(shard_id)]
        return leaders[0] if len(leaders) == 1 else 0

    def add_learner(self, leader: int, node_id: int, shard_id: int = 1) -> None:
        """Add an empty replica on a new node as a learner through `leader`, and run until it
        has applied what the leader has (by snapshot when the leader compacted its log)."""
        self.add_node(node_id, shard_id)
        results: list[object] = []
        self.hosts[leader].propose_conf_change(shard_id, ConfChange.add_learner(node_id),
                                               results.append)
        self.run_until(lambda: bool(results))
        self.run_until(lambda: self.hosts[node_id].replica(shard_id).applied.index
                       >= self.hosts[leader].replica(shard_id).applied.index)

    def call(self, node_id: int, name: bytes, *args: bytes, shard_id: int = 1,
             ticks_max: int = 200) -> object:
        """Submit a command and run the cluster until it completes; returns its result."""
        results: list[object] = []
        self.hosts[node_id].submit(shard_id, name, tuple(args), results.append)
        self.run_until(lambda: bool(results), ticks_max)
        return results[0]
