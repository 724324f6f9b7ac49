"""Many seeds run with every safety and liveness check passing (the simulator's sweep)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from quorumkv.sim.__main__ import COVERAGE

SWEEP_SEEDS = "0:60"
"""The default suite's sweep: 60 seeds, about 20 CPU-seconds (0.35 s a seed). The 300-seed
sweep (about 105 CPU-seconds, the largest single item of `make test`) runs in `make verify`."""


def sweep(seeds: str, jobs: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quorumkv.sim", "--seeds", seeds, "--jobs", str(jobs)],
        capture_output=True, text=True, check=False)


def test_sweep_of_60_seeds_passes_and_prints_its_coverage() -> None:
    """Seeds 0..59 all pass; the command prints the coverage table of the directed faults
    and ends with `seeds=60 failures=0`."""
    completed = sweep(SWEEP_SEEDS, jobs=2)
    lines = completed.stdout.strip().splitlines()
    assert lines[-1] == "seeds=60 failures=0", completed.stdout + completed.stderr
    assert completed.returncode == 0
    table = lines[lines.index("coverage: runs (of 60) that reached each feature") + 1:-1]
    assert len(table) == len(COVERAGE) and all(int(line.split()[0]) > 0 for line in table), table


@pytest.mark.slow
def test_sweep_of_300_seeds_passes() -> None:
    """Seeds 0..299 all pass; the command ends with `seeds=300 failures=0`."""
    completed = sweep("0:300", jobs=2)
    assert completed.stdout.strip().splitlines()[-1] == "seeds=300 failures=0", \
        completed.stdout + completed.stderr
    assert completed.returncode == 0
