"""Semantic mutants: does the simulator catch each broken rule? (`make mutants`)

Theory of operation. Each `mutants/NNN-name.patch` is a unified diff against `src/` that
breaks exactly one rule of Raft or of the host's persist/send/apply order; its header (the
text before the diff, which `git apply` skips) names the rule, the section of the Raft paper
or thesis it comes from, and how the patch breaks it. `mutants/manifest.toml` gives each
mutant its seed budget: the simulator must report a violation within that many seeds.

For each mutant this script copies the checkout's `src/` into a scratch directory (the
working tree is never touched), applies the patch there with `git apply` (a patch that no
longer applies is a loud failure: mutants are kept up to date with the code), checks that a
Python pointed at the copy imports the copy, and runs the simulator alone on it
(`python -m quorumkv.sim --seeds START:START+BUDGET --jobs 1`, never the unit tests), stopping
at the first failing seed, which it replays once to name every check that fired. It prints a
table: mutant, rule, seeds to the first catch (or "not caught in N"), the checks that fired
(the sweep's first one first), wall and CPU time. Exit status 0 only if every patch applied and
every mutant was caught within its budget.

    python mutants/run.py                    every mutant, budgets from the manifest
    python mutants/run.py --only 002 014     mutants whose name starts with these prefixes
    python mutants/run.py --budget 50        cap every budget (a quick look, not the verdict)
    python mutants/run.py --parallel 2       two mutants at a time (each simulator --jobs 1)
    python mutants/run.py --tree ../sim      mutate another checkout's src/ (its own branch)
    python mutants/run.py --check            only: every patch applies to the tree, and the
                                             patches and the manifest list the same mutants
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MANIFEST = HERE / "manifest.toml"
FAILED_LINE = re.compile(r"^seed=(\d+) FAILED (.*?)(?: \(replay: .*\))?$")
HEADER_FIELDS = ("Mutant", "Rule", "Source")


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    patch: Path
    rule: str
    source: str
    budget: int


@dataclasses.dataclass
class Outcome:
    mutant: Mutant
    seeds_run: int = 0
    caught_seed: int | None = None  # the failing seed
    verdict: str = ""  # the check that fired, or why the mutant could not run
    error: bool = False  # the patch did not apply, or the simulator itself broke
    seconds: float = 0.0  # wall time
    cpu_seconds: float = 0.0  # of the processes this mutant ran

    @property
    def caught(self) -> bool:
        return self.caught_seed is not None


class MutantError(Exception):
    """The mutant set is inconsistent (patch header, manifest)."""


def parse_header(patch: Path) -> dict[str, str]:
    """The `Field: value` lines before the diff; raises MutantError if a field is missing."""
    fields: dict[str, str] = {}
    for line in patch.read_text().splitlines():
        if line.startswith("diff --git"):
            break
        key, _, value = line.partition(":")
        if key in HEADER_FIELDS:
            fields[key] = value.strip()
    missing = [key for key in HEADER_FIELDS if key not in fields]
    if missing:
        raise MutantError(f"{patch.name}: header lacks {', '.join(missing)}: start the file "
                          "with 'Mutant:', 'Rule:' and 'Source:' lines before the diff")
    if fields["Mutant"] != patch.stem:
        raise MutantError(f"{patch.name}: header names mutant {fields['Mutant']!r}; the "
                          "'Mutant:' line must equal the file name without .patch")
    return fields


def load_mutants(manifest: Path = MANIFEST, directory: Path = HERE) -> list[Mutant]:
    """Every patch with its manifest entry; raises MutantError when they do not match."""
    entries = tomllib.loads(manifest.read_text()).get("mutant", [])
    budgets = {entry["name"]: int(entry["budget"]) for entry in entries}
    patches = {patch.stem: patch for patch in sorted(directory.glob("*.patch"))}
    unlisted = sorted(set(patches) - set(budgets))
    orphans = sorted(set(budgets) - set(patches))
    if unlisted or orphans:
        raise MutantError(f"{manifest.name} and the patches differ: patches without an entry "
                          f"{unlisted}, entries without a patch {orphans}; give every "
                          "mutants/NAME.patch a [[mutant]] entry with name and budget")
    mutants = []
    for name, patch in patches.items():
        header = parse_header(patch)
        if budgets[name] <= 0:
            raise MutantError(f"{manifest.name}: {name} has budget {budgets[name]}; a budget "
                              "is a number of seeds, at least 1")
        mutants.append(Mutant(name, patch, header["Rule"], header["Source"], budgets[name]))
    return mutants


class Processes:
    """Runs the child processes of one mutant and adds up their CPU time (each child reaped
    with os.wait4, so mutants running side by side are not charged for each other)."""

    def __init__(self, cwd: Path, environment: dict[str, str]) -> None:
        self.cwd = cwd
        self.environment = environment
        self.cpu_seconds = 0.0

    def start(self, command: list[str],
              environment: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """A child whose stdout and stderr come merged through one pipe."""
        return subprocess.Popen(command, cwd=self.cwd, env=environment or self.environment,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def finish(self, process: subprocess.Popen[str]) -> int:
        """Reap `process` (after its output was read); returns its exit status."""
        if process.stdout is not None:
            process.stdout.close()
        _, status, usage = os.wait4(process.pid, 0)
        self.cpu_seconds += usage.ru_utime + usage.ru_stime
        process.returncode = os.waitstatus_to_exitcode(status)
        return process.returncode

    def run(self, command: list[str],
            environment: dict[str, str] | None = None) -> tuple[int, str]:
        """Run to the end; (exit status, output)."""
        process = self.start(command, environment)
        assert process.stdout is not None
        output = process.stdout.read()
        return self.finish(process), output


def git_apply(patch: Path, processes: Processes, check_only: bool) -> tuple[int, str]:
    """`git apply` of `patch` in the copy `processes` runs in (outside any repository, so
    on plain files)."""
    arguments = ["git", "apply", "--whitespace=nowarn"]
    if check_only:
        arguments.append("--check")
    environment = dict(os.environ, GIT_CEILING_DIRECTORIES=str(processes.cwd.parent))
    return processes.run([*arguments, str(patch)], environment)


def check_applies(mutants: list[Mutant]) -> list[str]:
    """Patches that do not apply to the working tree's src/ (checked in a scratch copy)."""
    stale = []
    with tempfile.TemporaryDirectory(prefix="quorumkv-mutants-") as scratch:
        processes = Processes(copy_source(Path(scratch)), dict(os.environ))
        for mutant in mutants:
            status, output = git_apply(mutant.patch, processes, check_only=True)
            if status != 0:
                stale.append(f"{mutant.name}: {output.strip()}")
    return stale


TREE = [ROOT]
"""The checkout whose src/ is mutated: this one, unless --tree names another."""


def copy_source(scratch: Path) -> Path:
    """A copy of the checkout's src/ under `scratch`; returns the directory holding src/."""
    copy = scratch / "checkout"
    shutil.copytree(TREE[0] / "src", copy / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return copy


def run_mutant(mutant: Mutant, start: int, budget: int) -> Outcome:
    outcome = Outcome(mutant)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"quorumkv-{mutant.name}-") as scratch:
        copy = copy_source(Path(scratch))
        # The simulator imports quorumkv from the copy: PYTHONPATH precedes the editable
        # install of the checkout (checked by imported_from).
        environment = dict(os.environ, PYTHONPATH=str(copy / "src"))
        environment.pop("PYTHONHOME", None)
        processes = Processes(copy, environment)
        status, output = git_apply(mutant.patch, processes, check_only=False)
        if status != 0:
            outcome.error = True
            outcome.verdict = "PATCH DOES NOT APPLY: " + output.strip().replace("\n", "; ")
        else:
            imported = imported_from(copy, processes)
            if imported is not None:
                outcome.error = True
                outcome.verdict = imported
            else:
                simulate(outcome, processes, start, budget)
        outcome.cpu_seconds = processes.cpu_seconds
    outcome.seconds = time.monotonic() - began
    return outcome


def imported_from(copy: Path, processes: Processes) -> str | None:
    """None if a Python run as the simulator will be imports quorumkv from the copy."""
    status, output = processes.run(
        [sys.executable, "-c", "import quorumkv; print(quorumkv.__file__)"])
    location = output.strip()
    if status != 0 or not Path(location).is_relative_to(copy):
        return f"the simulator would import quorumkv from {location}, not from the copy {copy}"
    return None


def simulate(outcome: Outcome, processes: Processes, start: int, budget: int) -> None:
    """Run seeds start.. until the first failing one (then stop the sweep) or the budget."""
    process = processes.start([sys.executable, "-m", "quorumkv.sim", "--seeds",
                               f"{start}:{start + budget}", "--jobs", "1"])
    assert process.stdout is not None
    last = ""
    finished = False  # the sweep's closing line was seen (other lines may follow it)
    for line in process.stdout:
        line = line.rstrip("\n")
        last = line or last
        finished = finished or line == f"seeds={budget} failures=0"
        failed = FAILED_LINE.match(line)
        if failed:
            outcome.caught_seed = int(failed.group(1))
            outcome.seeds_run = outcome.caught_seed - start + 1
            outcome.verdict = verdict_of(failed.group(2))
            process.terminate()
            break
    status = processes.finish(process)
    if outcome.caught_seed is not None:
        outcome.verdict = all_checks(processes, outcome.caught_seed, outcome.verdict)
        return
    if status == 0 and finished:
        outcome.seeds_run = budget
        return
    outcome.error = True
    outcome.verdict = f"the simulator exited with status {status} without a failing seed: {last}"


def all_checks(processes: Processes, seed: int, first: str) -> str:
    """Replay the failing seed to name every check that fired, the sweep's first one first."""
    _, output = processes.run([sys.executable, "-m", "quorumkv.sim", "--seed", str(seed)])
    checks = [first]
    for line in output.splitlines():
        if line.startswith("violation "):
            check = verdict_of(line.removeprefix("violation "))
            if check not in checks:
                checks.append(check)
    return ", ".join(checks)


def verdict_of(violation: str) -> str:
    """'check: message' -> the check, with the exception's type for 'exception'."""
    check, _, message = violation.partition(": ")
    if check == "exception":
        return f"exception ({message.split(':', 1)[0]})"
    return check


def seeds_column(outcome: Outcome) -> str:
    if outcome.error:
        return "ERROR"
    if outcome.caught:
        return f"{outcome.seeds_run} (seed {outcome.caught_seed})"
    return f"not caught in {outcome.seeds_run}"


def table(outcomes: list[Outcome]) -> str:
    rows = [("mutant", "rule broken", "seeds to first catch", "check that fired", "budget",
             "wall s", "cpu s")]
    for outcome in outcomes:
        mutant = outcome.mutant
        rule = mutant.rule if len(mutant.rule) <= 50 else mutant.rule[:47] + "..."
        rows.append((mutant.name, rule, seeds_column(outcome), outcome.verdict or "-",
                     str(mutant.budget), f"{outcome.seconds:.1f}", f"{outcome.cpu_seconds:.1f}"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def run_all(mutants: list[Mutant], start: int, parallel: int) -> list[Outcome]:
    """Every mutant, `parallel` at a time; a line each as it ends; outcomes in mutant order."""
    def run_and_report(mutant: Mutant) -> Outcome:
        outcome = run_mutant(mutant, start, mutant.budget)
        print(f"{mutant.name}: {seeds_column(outcome)} {outcome.verdict} "
              f"({outcome.seconds:.1f} s wall, {outcome.cpu_seconds:.1f} s cpu)", flush=True)
        return outcome

    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(run_and_report, mutants))


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python mutants/run.py",
                                     description="Run each semantic mutant against the simulator.")
    parser.add_argument("--only", nargs="+", metavar="PREFIX", default=[],
                        help="run the mutants whose names start with these prefixes")
    parser.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--budget", type=int, default=0,
                        help="cap every mutant's budget at this many seeds (a quick look; the "
                             "exit status then judges against the cap)")
    parser.add_argument("--parallel", type=int, default=1,
                        help="mutants run at the same time (default 1)")
    parser.add_argument("--tree", type=Path, default=ROOT,
                        help="mutate the src/ of this checkout instead (e.g. another worktree)")
    parser.add_argument("--check", action="store_true",
                        help="only check that every patch applies and matches the manifest")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    TREE[0] = args.tree.resolve()
    try:
        mutants = load_mutants()
    except MutantError as error:
        print(f"mutants: {error}", file=sys.stderr)
        return 2
    if args.only:
        mutants = [m for m in mutants if any(m.name.startswith(p) for p in args.only)]
        if not mutants:
            print(f"mutants: no mutant name starts with {' or '.join(args.only)}",
                  file=sys.stderr)
            return 2
    if args.check:
        stale = check_applies(mutants)
        for line in stale:
            print(f"STALE MUTANT {line}", file=sys.stderr)
        print(f"mutants={len(mutants)} stale={len(stale)}")
        return 1 if stale else 0
    if args.budget > 0:
        mutants = [dataclasses.replace(m, budget=min(m.budget, args.budget)) for m in mutants]
    outcomes = run_all(mutants, args.start, max(1, args.parallel))
    print()
    print(table(outcomes))
    failed = [o.mutant.name for o in outcomes if o.error or not o.caught]
    caught = sum(1 for o in outcomes if o.caught)
    print(f"\nmutants={len(outcomes)} caught={caught} not_caught_or_error={len(failed)}")
    if failed:
        print("not caught within budget (or could not run): " + " ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
