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
