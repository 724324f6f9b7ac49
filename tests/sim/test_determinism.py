"""A seed replays exactly: the same seed gives the same trace hash, different seeds differ."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import quorumkv.sim
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


CHECKOUT_SRC = Path(__file__).resolve().parents[2] / "src"
"""The source tree of the checkout under test: the subprocesses import quorumkv from here."""


def bare_environment(hash_seed: str) -> dict[str, str]:
    """An emptied environment that still imports this checkout's quorumkv (not whatever
    installed copy the interpreter's default path would find)."""
    return {"PYTHONHASHSEED": hash_seed, "PATH": "", "PYTHONPATH": str(CHECKOUT_SRC)}


def test_trace_hash_is_stable_across_processes_and_hash_seeds() -> None:
    """The command line prints the same hash in fresh interpreters with different PYTHONHASHSEED."""
    imported = subprocess.run(
        [sys.executable, "-c", "import quorumkv.sim; print(quorumkv.sim.__file__)"],
        capture_output=True, text=True, check=True, env=bare_environment("1"), cwd=CHECKOUT_SRC)
    assert Path(imported.stdout.strip()).resolve().is_relative_to(CHECKOUT_SRC), \
        f"the subprocess imported {imported.stdout.strip()}, not this checkout's {CHECKOUT_SRC}"
    assert Path(quorumkv.sim.__file__).resolve().is_relative_to(CHECKOUT_SRC), \
        f"this test process imported {quorumkv.sim.__file__}, not {CHECKOUT_SRC}"
    outputs = []
    for hash_seed in ("1", "2"):
        completed = subprocess.run(
            [sys.executable, "-m", "quorumkv.sim", "--seed", "5", "--trace-hash"],
            capture_output=True, text=True, check=False, env=bare_environment(hash_seed),
            cwd=CHECKOUT_SRC)
        assert completed.stderr == ""
        outputs.append(completed.stdout.strip())
    assert outputs[0] == outputs[1] == run_seed(5).trace_hash
    assert len(outputs[0]) == 64
