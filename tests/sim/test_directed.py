"""The directed faults reach the states they aim at, and crashes inside a Ready make the
persist-before-send rule observable."""

from __future__ import annotations

from dataclasses import replace

import pytest

from quorumkv import limits
from quorumkv.host.host import Host, _Stall
from quorumkv.sim import simulator
from quorumkv.sim.options import SimOptions
from quorumkv.sim.simulator import Simulation, run_seed

MS = 1_000

class SendFirstHost(Host):
    """A broken host: it sends a Ready's messages before persisting its entries and hard
    state (votes and acknowledgements leave before what they promise is on disk)."""

    def _cycle(self, work: _Stall) -> None:
        if work.step == "persist":
            self._send(work.readies)
        super()._cycle(work)

    def _send(self, readies: list) -> None:  # type: ignore[type-arg]
        if getattr(self, "_sent_early", None) is readies:
            return  # already sent, before persisting
        self._sent_early = readies
        super()._send(readies)


def quiet(**changes: object) -> SimOptions:
    """Three nodes (and spares), clients busy, no fault but those asked for."""
    base = SimOptions(seed=3, voters=3, spare_nodes=3, clients=3, keys=2, think_max_us=5 * MS,
                      delay_min_us=500, delay_max_us=3_000, fault_ticks=400)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_host_that_sends_before_persisting_is_caught_by_crashes_inside_a_ready(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With crashes inside a Ready (every 15 ticks), each of three quiet runs catches a host
    that sends before it persists; without them (the simulator before) none does."""
    monkeypatch.setattr(simulator, "Host", SendFirstHost)
    for seed in (1, 2, 3):
        options = quiet(seed=seed, ready_crash_interval_us=150 * MS)
        caught = Simulation(options).run()
        assert not caught.ok and "crash-mid-ready" in caught.features, seed
        assert Simulation(replace(options, ready_crash_interval_us=0)).run().ok, seed


def test_a_correct_host_survives_the_same_crashes_inside_a_ready() -> None:
    """The production host, on the same runs, passes every check."""
    for seed in (1, 2, 3):
        result = Simulation(quiet(seed=seed, ready_crash_interval_us=150 * MS)).run()
        assert result.ok, [str(v) for v in result.violations]
        assert "crash-mid-ready" in result.features


def test_an_armed_crash_point_kills_the_node_after_its_nth_send() -> None:
    """A node armed to die after its first send of a Ready cycle dies there (a new life
    follows), and the run still passes every check."""
    simulation = Simulation(quiet(), keep_trace=True)
    simulation.start()
    simulation.run_until(500 * MS)
    leader = simulation.leader(1)
    assert leader
    node = simulation.nodes[leader]
    node.crash_point, node.crash_sends_left = "send", 1
    simulation.run_until(600 * MS)
    assert node.incarnation == 1 and not node.crash_point
    assert any("mid-Ready after sending" in line for line in simulation.trace.lines)
    result = simulation.finish()
    assert result.ok, [str(v) for v in result.violations]


@pytest.mark.parametrize(("option", "feature"), [
    ("figure8_interval_us", "figure8"),
    ("joint_interval_us", "joint-consensus"),
    ("rejoin_interval_us", "disruptive-rejoin"),
])
def test_each_directed_fault_reaches_its_state(option: str, feature: str) -> None:
    """A run with only this directed fault on (every 60 ticks) reaches its feature and passes."""
    result = Simulation(quiet(**{option: 600 * MS})).run()
    assert feature in result.features
    assert result.ok, [str(v) for v in result.violations]


def test_a_run_past_its_event_bound_is_reported_as_a_livelock(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that handles more events than limits.sim_events_max stops and fails as a
    livelock naming its seed (a sweep goes on to the next seed)."""
    monkeypatch.setattr(limits, "sim_events_max", 5_000)
    result = run_seed(4)
    assert [v.check for v in result.violations] == ["livelock"]
    assert "seed 4" in result.violations[0].message
