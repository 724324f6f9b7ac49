"""Figures of the history checkers: time to judge valid and invalid register histories.

    python bench/history_checker.py [--keys N] [--operations N] [--seeds N]

For each mix of outcomes (all ok; a quarter info; half info; a mix with fails and lost info
operations) and each concurrency (5 and 10 processes per key), generates `--seeds` histories of
`--operations` operations on one key from a real register (tests/history/history_builders.py:
each operation takes effect at a random point of its window), with unique written values as
the simulator writes them, and reports the mean and worst time of check_register_history on
it (valid) and on it with one read in the middle changed to a value never written (invalid),
and how many answers were unknown. Then times `--keys` such keys (all ok, 5 processes) checked
together, the simulator's typical load.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "history"))

from history_builders import Plan, simulated_register, spec_of, with_read_output  # noqa: E402
from history_builders import history as history_of  # noqa: E402

from quorumkv.history import History, check_register_history  # noqa: E402

MIXES = {
    "all ok": ["ok"],
    "1/4 info": ["ok", "ok", "ok", "info-applied"],
    "1/2 info": ["ok", "info-applied"],
    "mixed": ["ok"] * 4 + ["fail", "info-applied", "info-lost", "info-silent"],
}


def generated(seed: int, operations: int, processes: int, fates: list[str]) -> History:
    rng = random.Random(seed)
    plans = [
        Plan(rng.randint(1, processes), rng.choice(["read", "read", "write", "cas"]),
             rng.randint(1, 10**9), rng.randint(0, 10**9), rng.randint(0, 3), rng.randint(0, 8),
             rng.random(), rng.choice(fates))
        for _ in range(operations)
    ]
    return simulated_register(plans)


def timed(history: History) -> tuple[float, bool | None]:
    start = time.perf_counter()
    verdict = check_register_history(history)
    return time.perf_counter() - start, verdict.valid


def one_key(arguments: argparse.Namespace) -> None:
    print(f"one key, {arguments.operations} operations, {arguments.seeds} seeds each")
    for label, fates in MIXES.items():
        for processes in (5, 10):
            valid_times, invalid_times, unknown = [], [], 0
            for seed in range(arguments.seeds):
                history = generated(seed, arguments.operations, processes, fates)
                elapsed, valid = timed(history)
                valid_times.append(elapsed)
                unknown += valid is None
                reads = [op for op in history.operations()
                         if op.function == "read" and op.status == "ok"]
                elapsed, valid = timed(with_read_output(history, reads[len(reads) // 2], -1))
                invalid_times.append(elapsed)
                unknown += valid is None
            print(f"  {label:9} {processes:2} processes: valid mean "
                  f"{1000 * sum(valid_times) / len(valid_times):7.1f} ms "
                  f"worst {1000 * max(valid_times):7.1f} ms; invalid mean "
                  f"{1000 * sum(invalid_times) / len(invalid_times):7.1f} ms "
                  f"worst {1000 * max(invalid_times):7.1f} ms; unknown {unknown}")


def many_keys(arguments: argparse.Namespace) -> None:
    specs = []
    for key_number in range(arguments.keys):
        history = generated(key_number, arguments.operations, 5, MIXES["mixed"])
        specs += [spec_of(op, key_number * 10 + op.process, f"k{key_number}")
                  for op in history.operations()]
    elapsed, valid = timed(history_of(*specs))
    print(f"{arguments.keys} keys x {arguments.operations} operations (mixed, 5 processes): "
          f"{1000 * elapsed:.0f} ms, valid={valid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--operations", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=10)
    arguments = parser.parse_args()
    one_key(arguments)
    many_keys(arguments)


if __name__ == "__main__":
    main()
