"""Seeds that once failed (and were fixed) keep passing; each one's story is in its comment."""

from __future__ import annotations

import pytest

from quorumkv.sim.simulator import run_seed

REGRESSION_SEEDS: list[int] = [
]


@pytest.mark.parametrize("seed", REGRESSION_SEEDS)
def test_seed_that_once_failed_passes(seed: int) -> None:
    """The seed runs with every check passing."""
    result = run_seed(seed)
    assert result.ok, "\n".join(str(violation) for violation in result.violations)
