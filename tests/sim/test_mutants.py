"""The semantic mutants of `make mutants` stay applicable, and their runner judges honestly.

`make mutants` (mutants/run.py) applies each mutants/*.patch to a scratch copy of src/ and
runs the simulator on it. A patch that no longer applies means a mechanism changed under its
mutant: these tests fail in `make test` then, long before anyone runs the full table.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "mutants" / "run.py"


STALE_PATCH = (
    "Mutant: 999-stale\nRule: none\nSource: none\n\n"
    "diff --git a/src/quorumkv/raft/log.py b/src/quorumkv/raft/log.py\n"
    "--- a/src/quorumkv/raft/log.py\n+++ b/src/quorumkv/raft/log.py\n"
    "@@ -1,3 +1,3 @@\n-this line is not in log.py\n+nor is this one\n context\n context\n")


def load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutants_run", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def run_script(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNNER), *arguments], cwd=ROOT,
                          capture_output=True, text=True, check=False)


def test_every_mutant_patch_applies_to_the_current_tree() -> None:
    """`git apply --check` accepts every mutants/*.patch against this checkout's src/, and the
    manifest lists exactly the patches, each header naming its rule and source."""
    completed = run_script("--check")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    runner = load_runner()
    count = len(runner.load_mutants())
    assert count >= 18
    assert completed.stdout.strip() == f"mutants={count} stale=0"


def test_a_patch_that_no_longer_applies_is_reported(tmp_path: Path) -> None:
    """A mutant whose context lines are gone from src/ is reported stale, by name."""
    runner = load_runner()
    patch = tmp_path / "999-stale.patch"
    patch.write_text(STALE_PATCH)
    stale = runner.check_applies([runner.Mutant("999-stale", patch, "none", "none", 1)])
    assert len(stale) == 1 and stale[0].startswith("999-stale: ")


def test_a_stale_patch_fails_its_run_loudly(tmp_path: Path) -> None:
    """In a full run a patch that does not apply is an error row naming git's reason, never
    "not caught", and no simulator runs for it."""
    runner = load_runner()
    patch = tmp_path / "999-stale.patch"
    patch.write_text(STALE_PATCH)
    outcome = runner.run_mutant(runner.Mutant("999-stale", patch, "none", "none", 5), 0, 5)
    assert outcome.error and not outcome.caught and outcome.seeds_run == 0
    assert outcome.verdict.startswith("PATCH DOES NOT APPLY: ")
    assert runner.seeds_column(outcome) == "ERROR"


def test_patches_and_manifest_must_list_the_same_mutants(tmp_path: Path) -> None:
    """A patch without a manifest entry (or the reverse) is refused with both lists named."""
    runner = load_runner()
    (tmp_path / "001-a.patch").write_text("Mutant: 001-a\nRule: r\nSource: s\n\n")
    manifest = tmp_path / "manifest.toml"
    manifest.write_text('[[mutant]]\nname = "002-b"\nbudget = 10\n')
    with pytest.raises(runner.MutantError, match=r"\['001-a'\].*\['002-b'\]"):
        runner.load_mutants(manifest, tmp_path)


def test_a_header_must_name_its_rule(tmp_path: Path) -> None:
    """A patch whose header lacks the Rule line is refused."""
    runner = load_runner()
    (tmp_path / "001-a.patch").write_text("Mutant: 001-a\nSource: s\n\ndiff --git a/x b/x\n")
    manifest = tmp_path / "manifest.toml"
    manifest.write_text('[[mutant]]\nname = "001-a"\nbudget = 10\n')
    with pytest.raises(runner.MutantError, match="lacks Rule"):
        runner.load_mutants(manifest, tmp_path)


def test_a_mutant_the_simulator_catches_at_once_is_reported_caught() -> None:
    """End to end on one mutant (the follower that skips the previous entry's term check,
    caught at the first seed): the scratch copy is what the simulator runs, the sweep stops at
    the first failing seed, and the table names the seed and the check that fired."""
    completed = run_script("--only", "005-append-without-prev-check", "--budget", "20")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    row = next(line for line in completed.stdout.splitlines()
               if line.startswith("005-append-without-prev-check "))
    assert "(seed " in row and "not caught" not in row
    assert completed.stdout.rstrip().endswith("mutants=1 caught=1 not_caught_or_error=0")
