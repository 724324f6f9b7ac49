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

# Seed 27 as drawn when crash points came in: no crashes but those inside a Ready, leader
# transfers that deafen the old leader, reordering.
SEED_27 = (
    "seed=27 disk=memory voters=3 spare_nodes=1 shards=1 tick_us=10000 fault_ticks=373 "
    "liveness_ticks_max=2000 election_timeout_ticks=12 heartbeat_interval_ticks=3 pre_vote=False "
    "check_quorum=True read_only=safe log_compaction_entries_min=64 clock_jitter_us=1787 "
    "clock_offset_max_us=17576 process_delay_us=2000 delay_min_us=1205 delay_max_us=6205 "
    "reorder=True loss_rate=0.0 duplicate_rate=0.0 partition_interval_us=0 "
    "partition_duration_max_us=610000 crash_interval_us=0 downtime_max_us=50000 "
    "torn_write_rate=0.8309221781073834 membership_interval_us=0 transfer_interval_us=1020000 "
    "disk_full_interval_us=0 clients=2 keys=1 read_weight=2 write_weight=3 cas_weight=1 "
    "think_max_us=40000 operation_timeout_ticks=120 pause_interval_us=0 "
    "pause_duration_max_us=900000 joint_interval_us=0 figure8_interval_us=0 "
    "rejoin_interval_us=0 ready_crash_interval_us=1150000 clock_skew_ppm=0 pause_cut_rate=0.0 "
    "transfer_cut_rate=0.8656626361092521 append_entries_max=64")


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
    """With crashes inside a Ready on, seed 27 catches a host that sends before it persists;
    without them (the simulator before issue 12) the same run does not."""
    monkeypatch.setattr(simulator, "Host", SendFirstHost)
    options = SimOptions.from_description(SEED_27)
    caught = Simulation(options).run()
    assert not caught.ok and "crash-mid-ready" in caught.features
    assert not Simulation(replace(options, ready_crash_interval_us=0)).run().violations


def test_a_correct_host_survives_the_same_crashes_inside_a_ready() -> None:
    """The production host, on the same run, passes every check."""
    result = Simulation(SimOptions.from_description(SEED_27)).run()
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
