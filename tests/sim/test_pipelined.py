"""Pipelined connections in the simulator keep their order (issue 11, item 1)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable

from quorumkv.cluster.pipeline_order import PipelineOrder, Unit, UnitState
from quorumkv.sim import pipelined
from quorumkv.sim.pipelined import PipelinedClients, Sent, check_connection
from quorumkv.sim.simulator import RunResult, Simulation, options_of_seed


def sent(index: int, key: str, write: bool, value: str, outcome: str) -> Sent:
    return Sent(index, key, 1, write, value, outcome)


def test_the_check_accepts_reads_of_acknowledged_and_in_doubt_writes() -> None:
    """A read may return the last acknowledged write or a later write in doubt, nil before."""
    history = [sent(0, "k", False, "", "ok"), sent(1, "k", True, "a", "ok"),
               sent(2, "k", True, "b", "info"), sent(3, "k", False, "b", "ok"),
               sent(4, "k", False, "a", "ok"), sent(5, "k", True, "c", "fail"),
               sent(6, "k", False, "a", "ok")]
    assert check_connection(1, history) == []


def test_the_check_catches_a_read_that_missed_or_overtook_a_write() -> None:
    """A read of nil after an acknowledged SET, or of a value written after it, is reported."""
    missed = [sent(0, "k", True, "a", "ok"), sent(1, "k", False, "", "ok")]
    overtaken = [sent(0, "k", False, "a", "ok"), sent(1, "k", True, "a", "ok")]
    failed = [sent(0, "k", True, "a", "fail"), sent(1, "k", False, "a", "ok")]
    for history in (missed, overtaken, failed):
        assert len(check_connection(1, history)) == 1


def run(seed: int, new_order: Callable[[], PipelineOrder] = PipelineOrder) -> RunResult:
    options = dataclasses.replace(options_of_seed(seed), pipelined_clients=3)
    simulation = Simulation(options)
    if new_order is not PipelineOrder:
        assert simulation.pipelined is not None
        simulation.pipelined = PipelinedClients(simulation, simulation.pipelined.rng, 3,
                                                new_order)
        simulation._handlers[pipelined.EVENT] = simulation.pipelined.on_event
    return simulation.run()


def test_pipelined_connections_keep_their_order_under_faults() -> None:
    """Seeds with faults and pipelined clients: every run passes every check, order included."""
    completed = 0
    for seed in range(1, 13):
        result = run(seed)
        assert result.ok, f"seed {seed}: {result.violations[:3]}"
        completed += int(str(result.summary["pipelined"]).split()[0].split("=")[1])
    assert completed > 0


class StartEverything(PipelineOrder):
    """A broken rule: every unit starts at once wherever its leader is (what main did)."""

    def start_ready(self, route_of: Callable[[int], Hashable | None]
                    ) -> tuple[list[Unit], Unit | None]:
        started: list[Unit] = []
        while self._waiting and (route := route_of(self._waiting[0].shard_id)) is not None:
            unit = self._waiting.popleft()
            unit.state = UnitState.STARTED
            unit.route = route
            self._unfinished += 1
            self._active.append(unit)
            started.append(unit)
        return started, None


def test_the_simulator_catches_a_connection_that_does_not_keep_order() -> None:
    """With a rule that lets a GET start beside its SET, some seed reports the violation."""
    for seed in range(1, 21):
        if any(v.check == "pipeline order" for v in run(seed, StartEverything).violations):
            return
    raise AssertionError("no seed of 1-20 caught a connection starting everything at once")
