"""Many seeds run with every safety and liveness check passing (the simulator's sweep)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SWEEP_SEEDS = "0:300"


def sweep(seeds: str, jobs: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quorumkv.sim", "--seeds", seeds, "--jobs", str(jobs)],
        capture_output=True, text=True, check=False)


def test_sweep_of_300_seeds_passes() -> None:
    """Seeds 0..299 all pass; the command ends with `seeds=300 failures=0`."""
    completed = sweep(SWEEP_SEEDS, jobs=2)
    assert completed.stdout.strip().splitlines()[-1] == "seeds=300 failures=0", \
        completed.stdout + completed.stderr
    assert completed.returncode == 0


@pytest.mark.slow
def test_sweep_of_10000_seeds_passes() -> None:
    """Seeds 0..9999 all pass (make verify)."""
    completed = sweep("0:10000", jobs=2)
    assert completed.stdout.strip().splitlines()[-1] == "seeds=10000 failures=0", \
        completed.stdout[-5000:] + completed.stderr[-5000:]
