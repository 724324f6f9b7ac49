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
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from collections.abc import Iterator

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
    if result.ok:
        print("ok")
        return 0
    for violation in result.violations:
        print(f"violation {violation}")
    return 1


def _run_quietly(task: tuple[int, str]) -> tuple[int, list[str], bool]:
    seed, disk = task
    result: RunResult = run_seed(seed, disk)
    decided = result.summary.get("linearizability") != "unknown"
    return seed, [str(violation) for violation in result.violations], decided


def _results(seeds: range, disk: str, jobs: int) -> Iterator[tuple[int, list[str], bool]]:
    tasks = [(seed, disk) for seed in seeds]
    if jobs <= 1:
        yield from map(_run_quietly, tasks)
        return
    with multiprocessing.Pool(jobs) as pool:
        yield from pool.imap(_run_quietly, tasks, chunksize=4)


def run_many(seeds: range, disk: str, jobs: int) -> int:
    failures = 0
    undecided = []
    for seed, violations, decided in _results(seeds, disk, jobs):
        if not decided:
            undecided.append(seed)
        if violations:
            failures += 1
            first = violations[0].splitlines()[0]
            print(f"seed={seed} FAILED {first} (replay: python -m quorumkv.sim --seed {seed}"
                  f"{'' if disk == 'memory' else f' --disk {disk}'})", flush=True)
    if undecided:
        print(f"linearizability search bound hit (unknown, not a failure) on seeds "
              f"{' '.join(map(str, undecided))}")
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
