"""Seeds draw varied options (swarm testing), and a printed options line replays exactly."""

from __future__ import annotations

import pytest

from quorumkv.sim.options import SimOptions
from quorumkv.sim.simulator import options_of_seed


def test_options_line_round_trips() -> None:
    """from_description(describe()) gives back the very same options, floats included."""
    for seed in range(50):
        options = options_of_seed(seed)
        assert SimOptions.from_description(options.describe()) == options


def test_missing_fields_keep_defaults_and_unknown_ones_are_refused() -> None:
    """An old options line (fewer fields) parses with defaults; an unknown name is an error."""
    assert SimOptions.from_description("seed=4 voters=5") == SimOptions(seed=4, voters=5)
    with pytest.raises(ValueError, match="bogus"):
        SimOptions.from_description("seed=4 bogus=1")


def test_swarm_turns_each_fault_on_in_some_seeds_and_off_in_others() -> None:
    """Across 200 seeds every fault kind is both enabled and disabled somewhere."""
    enabled = [set(options_of_seed(seed).enabled_faults()) for seed in range(200)]
    every_kind = set().union(*enabled)
    assert every_kind >= {"loss", "duplicate", "reorder", "partition", "crash", "torn-write",
                          "membership", "transfer", "disk-full", "clock"}
    assert all(any(kind not in kinds for kinds in enabled) for kind in every_kind)


def test_options_are_a_function_of_the_seed() -> None:
    """The same seed draws the same options; another seed draws others."""
    assert options_of_seed(9) == options_of_seed(9)
    assert options_of_seed(9) != options_of_seed(10)


DIRECTED_KINDS = {"joint", "figure8", "rejoin", "ready-crash", "clock-skew", "pause-cut",
                  "transfer-cut", "short-appends", "stale-leader"}


def test_every_window_of_fifty_seeds_turns_on_every_directed_fault() -> None:
    """In each window of 50 consecutive seeds (0-999), each fault kind added for issue 12 is on
    in some seed and off in another, and some seed runs leases with pauses and transfers."""
    for start in range(0, 1000, 50):
        drawn = [options_of_seed(seed) for seed in range(start, start + 50)]
        enabled = [set(options.enabled_faults()) for options in drawn]
        for kind in DIRECTED_KINDS:
            assert any(kind in kinds for kinds in enabled), (start, kind)
            assert any(kind not in kinds for kinds in enabled), (start, kind)
        assert any(o.read_only == "lease" and o.pause_interval_us and o.transfer_interval_us
                   for o in drawn), start


def test_lease_runs_keep_clock_drift_inside_the_lease_assumption() -> None:
    """With leases on, tick rates differ by at most 3% between two nodes and the per-tick jitter
    stays within 2% of a tick (docs/raft.md: drift under lease_drift_ticks per election
    timeout); joint-consensus runs have at least two spare nodes."""
    for seed in range(300):
        options = options_of_seed(seed)
        if options.read_only == "lease":
            assert options.check_quorum
            assert options.clock_skew_ppm <= 15_000
            assert options.clock_jitter_us <= options.tick_us // 50
        if options.joint_interval_us:
            assert options.spare_nodes >= 2
