"""Command line of the simulator (other tools depend on this exact shape):

    python -m quorumkv.sim --seed N                 one seed: options, summary, `ok` or the
                                                    violation (exit 1 on violation)
    python -m quorumkv.sim --seeds A:B [--jobs J]   seeds A..B-1: a line per failing seed, then
                                                    `seeds=<count> failures=<count>`
    python -m quorumkv.sim --seed N --trace-hash    only the sha256 of the event trace
    --disk memory|rocksdb                           the node stores (memory = FaultyDiskStore)
    --trace                                         with --seed: print every trace line too
    --options "seed=N disk=... ..."                 replay exactly the options line a run
                                                    printed (even after option drawing changed)

A sweep prints, before its last line, the coverage table: for each feature the directed faults
aim at (joint consensus, lease reads with pauses, transfers, disk faults, crashes in the middle
of a Ready, Figure-8 partitions, disruptive rejoins), how many of its runs reached it. A run
past its bound on events or wall time fails as `livelock` (limits.sim_events_max,
limits.sim_run_seconds_max).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from quorumkv.sim.options import DISKS, SimOptions
from quorumkv.sim.simulator import RunResult, Simulation, options_of_seed, run_seed


def parse_seed_range(text: str) -> range:
    """'A:B' -> range(A, B). Raises argparse.ArgumentTypeError on anything else."""
    try:
        start_text, end_text = text.split(":")
        start, end = int(start_text), int(end_text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--seeds takes A:B (two integers), got {text!r}") \
            from error
    if end < start:
        raise argparse.ArgumentTypeError(f"--seeds {text}: B must not be below A")
    return range(start, end)


def parse_options(text: str) -> SimOptions:
    """An options line as printed by a run (the `seed=...` words)."""
    try:
        return SimOptions.from_description(text.removeprefix("options:").strip())
    except (ValueError, TypeError) as error:
        raise argparse.ArgumentTypeError(f"--options: {error}") from error


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m quorumkv.sim",
                                     description="Run the deterministic cluster simulator.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--seed", type=int, help="run one seed")
    which.add_argument("--seeds", type=parse_seed_range, help="run seeds A to B-1 (A:B)")
    which.add_argument("--options", type=parse_options, metavar="LINE",
                       help="run exactly these options (the line a run printed)")
    parser.add_argument("--jobs", type=int, default=1, help="processes for --seeds (default 1)")
    parser.add_argument("--trace-hash", action="store_true",
                        help="print only the sha256 of the complete event trace")
    parser.add_argument("--trace", action="store_true", help="print the event trace (--seed)")
    parser.add_argument("--disk", choices=DISKS, default="memory",
                        help="node stores: memory (FaultyDiskStore, default) or rocksdb")
    return parser.parse_args(argv)


def run_one(options: SimOptions, trace_hash: bool, trace: bool) -> int:
    result = Simulation(options, keep_trace=trace).run()
    seed = options.seed
    if trace_hash:
        print(result.trace_hash)
        return 0 if result.ok else 1
    if trace:
        for line in result.trace_lines:
            print(line)
    print(f"seed={seed} options: {result.options.describe()}")
    print(f"faults enabled: {' '.join(result.options.enabled_faults()) or 'none'}")
    print("summary: " + " ".join(f"{key}={value}" for key, value in result.summary.items()))
    print(f"features: {' '.join(result.features) or 'none'}")
    if result.ok:
        print("ok")
        return 0
    for violation in result.violations:
        print(f"violation {violation}")
    return 1


COVERAGE = (
    ("joint-consensus", "joint consensus entered (a multi-replica change applied)"),
    ("joint-left-explicitly", "joint configuration left by an explicit leave-joint"),
    ("lease-pause", "lease reads with the leader paused"),
    ("transfer", "leader transfers"),
    ("lease-transfer-deaf", "lease reads with a transfer from a deafened leader"),
    ("disk-fault", "disk faults (full disk, torn record dropped)"),
    ("crash-mid-ready", "crashes in the middle of a Ready"),
    ("figure8", "Figure-8-shaped partitions (three leaders, each cut off)"),
    ("disruptive-rejoin", "disruptive rejoins (a cut-off follower returns)"),
    ("pipelined", "pipelining connections checked for per-connection order"),
)
"""The features the sweep counts: (name in RunResult.features, what the table says)."""


@dataclass(frozen=True, slots=True)
class SeedOutcome:
    seed: int
    violations: list[str]
    decided: bool
    features: tuple[str, ...]


def _run_quietly(task: tuple[int, str]) -> SeedOutcome:
    seed, disk = task
    result: RunResult = run_seed(seed, disk)
    decided = result.summary.get("linearizability") != "unknown"
    return SeedOutcome(seed, [str(violation) for violation in result.violations], decided,
                       result.features)


def _results(seeds: range, disk: str, jobs: int) -> Iterator[SeedOutcome]:
    tasks = [(seed, disk) for seed in seeds]
    if jobs <= 1:
        yield from map(_run_quietly, tasks)
        return
    with multiprocessing.Pool(jobs) as pool:
        yield from pool.imap(_run_quietly, tasks, chunksize=4)


def run_many(seeds: range, disk: str, jobs: int) -> int:
    failures = 0
    undecided = []
    reached = {name: 0 for name, _ in COVERAGE}
    for outcome in _results(seeds, disk, jobs):
        seed = outcome.seed
        for name in outcome.features:
            if name in reached:
                reached[name] += 1
        if not outcome.decided:
            undecided.append(seed)
        if outcome.violations:
            failures += 1
            first = outcome.violations[0].splitlines()[0]
            print(f"seed={seed} FAILED {first} (replay: python -m quorumkv.sim --seed {seed}"
                  f"{'' if disk == 'memory' else f' --disk {disk}'})", flush=True)
    if undecided:
        print(f"linearizability search bound hit (unknown, not a failure) on seeds "
              f"{' '.join(map(str, undecided))}")
    print(f"coverage: runs (of {len(seeds)}) that reached each feature")
    for name, words in COVERAGE:
        print(f"  {reached[name]:6d}  {words}")
    print(f"seeds={len(seeds)} failures={failures}")
    return 0 if failures == 0 else 1


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if args.options is not None:
        return run_one(args.options, args.trace_hash, args.trace)
    if args.seed is not None:
        return run_one(options_of_seed(args.seed, args.disk), args.trace_hash, args.trace)
    return run_many(args.seeds, args.disk, max(1, args.jobs))


if __name__ == "__main__":
    sys.exit(main())
