"""A seed replays exactly: the same seed gives the same trace hash, different seeds differ."""

from __future__ import annotations

import subprocess
import sys

from quorumkv.sim.simulator import run_seed


def test_same_seed_gives_the_same_trace_hash() -> None:
    """Two runs of one seed in this process produce identical traces."""
    first, second = run_seed(11), run_seed(11)
    assert first.trace_hash == second.trace_hash
    assert first.summary == second.summary


def test_different_seeds_give_different_traces() -> None:
    """Seeds 11, 12 and 13 produce three different trace hashes."""
    hashes = {run_seed(seed).trace_hash for seed in (11, 12, 13)}
    assert len(hashes) == 3


def test_trace_hash_is_stable_across_processes_and_hash_seeds() -> None:
    """The command line prints the same hash in fresh interpreters with different PYTHONHASHSEED."""
    outputs = []
    for hash_seed in ("1", "2"):
        completed = subprocess.run(
            [sys.executable, "-m", "quorumkv.sim", "--seed", "5", "--trace-hash"],
            capture_output=True, text=True, check=False,
            env={"PYTHONHASHSEED": hash_seed, "PATH": ""})
        assert completed.stderr == ""
        outputs.append(completed.stdout.strip())
    assert outputs[0] == outputs[1] == run_seed(5).trace_hash
    assert len(outputs[0]) == 64
