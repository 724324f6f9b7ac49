"""Nemeses: the faults a verify run injects, each one a begin and an end.

Theory of operation. A nemesis `begin`s a fault and later `end`s it (heals what it broke),
returning a small description of what it did for the fault log. Targets are drawn from the
run's seeded random generator; "the leader" is the leader of one data shard, found by asking
the nodes (with many shards, the nemesis picks one shard's leader; nothing else changes).

- partition: each window one of four shapes, in turn: random halves (a minority and a
  majority), the leader isolated, a majorities ring (every node sees a majority, no two the
  same one), and one-way (the leader, or a random node, hears nothing from the others while
  they still hear it). Needs namespaces.
- kill: kill -9 one node, the leader, a majority or all nodes; restart them at the end.
- pause: SIGSTOP one node, the leader or a majority; SIGCONT at the end.
- link: slow links (netem delay, or a low-rate token bucket) or lossy links (a share of the
  packets between nodes dropped), alternately. Needs namespaces.
- handover: stop the leader gracefully (SIGTERM: it transfers its leadership before it exits)
  and restart it at the end. The server has no client command to move leadership, so this is
  the leadership transfer the harness can cause.

The grudge builders at the top are pure functions of the node list and the generator.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from quorumkv.errors import VerifySetupFailed
from quorumkv.verify.network_faults import Grudge, NetworkFaults
from quorumkv.verify.processes import NodeProcesses

METADATA_SHARD = 0
"""Shard 0 holds cluster metadata; nemeses aim at the leaders of the data shards."""


# ---- grudges -----------------------------------------------------------------------------------


def complete_grudge(components: Sequence[Sequence[int]]) -> dict[int, set[int]]:
    """Every node hears nothing from the nodes outside its own component."""
    everyone = {node for component in components for node in component}
    return {node: everyone - set(component) for component in components for node in component}


def random_halves(nodes: Sequence[int], rng: random.Random) -> dict[int, set[int]]:
    """A random minority cut off from the majority (both ways)."""
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    cut = len(shuffled) // 2
    return complete_grudge([shuffled[:cut], shuffled[cut:]])


def isolated(node: int, nodes: Sequence[int]) -> dict[int, set[int]]:
    """One node cut off from all the others (both ways)."""
    return complete_grudge([[node], [n for n in nodes if n != node]])


def majorities_ring(nodes: Sequence[int], rng: random.Random) -> dict[int, set[int]]:
    """Nodes on a random ring, each hearing only the majority of nodes nearest to it: every
    node sees a majority, and no two nodes see the same one (for 5 nodes: its two neighbors)."""
    ring = list(nodes)
    rng.shuffle(ring)
    count = len(ring)
    majority = count // 2 + 1
    before = (majority - 1) // 2
    after = majority - 1 - before
    grudge = {}
    for position, node in enumerate(ring):
        visible = {ring[(position + offset) % count] for offset in range(-before, after + 1)}
        grudge[node] = set(ring) - visible
    return grudge


def one_way(node: int, nodes: Sequence[int]) -> dict[int, set[int]]:
    """`node` hears nothing from the others, while they still hear it."""
    return {node: {n for n in nodes if n != node}}


# ---- nemeses -----------------------------------------------------------------------------------


@dataclass
class Context:
    """What a nemesis acts on."""

    processes: NodeProcesses
    network: NetworkFaults | None
    rng: random.Random
    state: dict[str, object] = field(default_factory=dict)

    def nodes(self) -> list[int]:
        return self.processes.node_ids

    def leader(self) -> int:
        """The leader of one data shard (a random node when none is known now)."""
        leaders = self.processes.leaders()
        data = sorted(node for shard, node in leaders.items() if shard != METADATA_SHARD and node)
        if data:
            return self.rng.choice(data)
        return self.rng.choice(self.nodes())

    def targets(self, mode: str) -> list[int]:
        nodes = self.nodes()
        if mode == "one":
            return [self.rng.choice(nodes)]
        if mode == "leader":
            return [self.leader()]
        if mode == "majority":
            return sorted(self.rng.sample(nodes, len(nodes) // 2 + 1))
        return list(nodes)  # "all"


class Nemesis(Protocol):
    name: str
    needs_network: bool

    def begin(self, context: Context) -> dict[str, object]: ...

    def end(self, context: Context) -> dict[str, object]: ...


def _require_network(context: Context) -> NetworkFaults:
    if context.network is None or not context.network.enabled:
        raise RuntimeError("a network nemesis ran without namespaces (a bug in scheduling)")
    return context.network


class PartitionNemesis:
    name = "partition"
    needs_network = True
    shapes = ("halves", "leader-isolated", "majorities-ring", "one-way")

    def __init__(self) -> None:
        self._turn = 0

    def begin(self, context: Context) -> dict[str, object]:
        network = _require_network(context)
        shape = self.shapes[self._turn % len(self.shapes)]
        self._turn += 1
        nodes = context.nodes()
        grudge: Grudge
        if shape == "halves":
            grudge = random_halves(nodes, context.rng)
        elif shape == "leader-isolated":
            grudge = isolated(context.leader(), nodes)
        elif shape == "majorities-ring":
            grudge = majorities_ring(nodes, context.rng)
        else:
            target = context.leader() if context.rng.random() < 0.5 else context.rng.choice(nodes)
            grudge = one_way(target, nodes)
        method = network.partition(grudge)
        return {"shape": shape, "method": method,
                "hears_nothing_from": {str(n): sorted(e) for n, e in sorted(grudge.items()) if e}}

    def end(self, context: Context) -> dict[str, object]:
        _require_network(context).heal()
        return {}


class KillNemesis:
    name = "kill"
    needs_network = False
    modes = ("one", "leader", "majority", "all")

    def begin(self, context: Context) -> dict[str, object]:
        mode = context.rng.choice(self.modes)
        targets = context.targets(mode)
        for node_id in targets:
            context.processes.kill(node_id)
        context.state["killed"] = targets
        return {"mode": mode, "signal": "SIGKILL", "targets": targets}

    def end(self, context: Context) -> dict[str, object]:
        targets = list(context.state.pop("killed", []))  # type: ignore[call-overload]
        restart(context.processes, targets)
        return {"restarted": targets}


class PauseNemesis:
    name = "pause"
    needs_network = False
    modes = ("one", "leader", "majority")

    def begin(self, context: Context) -> dict[str, object]:
        mode = context.rng.choice(self.modes)
        targets = context.targets(mode)
        for node_id in targets:
            context.processes.pause(node_id)
        return {"mode": mode, "signal": "SIGSTOP", "targets": targets}

    def end(self, context: Context) -> dict[str, object]:
        resumed = context.processes.paused()
        for node_id in resumed:
            context.processes.resume(node_id)
        return {"signal": "SIGCONT", "resumed": resumed}


class LinkNemesis:
    name = "link"
    needs_network = True

    def __init__(self) -> None:
        self._turn = 0

    def begin(self, context: Context) -> dict[str, object]:
        network = _require_network(context)
        kind = ("slow", "lossy")[self._turn % 2]
        self._turn += 1
        method = network.slow() if kind == "slow" else network.lossy()
        return {"kind": kind, "method": method or "unavailable on this kernel"}

    def end(self, context: Context) -> dict[str, object]:
        _require_network(context).restore_links()
        return {}


class HandoverNemesis:
    name = "handover"
    needs_network = False

    def begin(self, context: Context) -> dict[str, object]:
        leader = context.leader()
        code = context.processes.stop(leader)
        context.state["stopped"] = [leader]
        return {"signal": "SIGTERM", "targets": [leader], "exit_code": code}

    def end(self, context: Context) -> dict[str, object]:
        targets = list(context.state.pop("stopped", []))  # type: ignore[call-overload]
        restart(context.processes, targets)
        return {"restarted": targets}


def restart(processes: NodeProcesses, node_ids: Sequence[int]) -> None:
    """Start nodes again and wait (bounded) for them to answer; a node that does not come back
    is left for the run's final recovery to report."""
    for node_id in node_ids:
        processes.start(node_id)
    for node_id in node_ids:
        try:
            processes.wait_listening(node_id)
        except VerifySetupFailed:
            continue  # reported by the run's final recovery and its crash check


NEMESES: dict[str, type[Nemesis]] = {
    "partition": PartitionNemesis,
    "kill": KillNemesis,
    "pause": PauseNemesis,
    "link": LinkNemesis,
    "handover": HandoverNemesis,
}
"""Every nemesis by name, as `--nemesis` takes them."""


def heal_everything(context: Context) -> list[int]:
    """Undo every fault: network rules, links, pauses, and start every node that is down.
    Returns the nodes that had to be started."""
    if context.network is not None and context.network.enabled:
        context.network.heal()
        context.network.restore_links()
    for node_id in context.processes.paused():
        context.processes.resume(node_id)
    down = [n for n in context.nodes() if n not in context.processes.running()]
    restart(context.processes, down)
    return down

