"""A visible simulator run: what `make demo` shows (and `make run` did before the server).

Five nodes of the production host, Raft core and KV state machine on the simulated network and
disks, under partitions, crashes, pauses, membership changes and leader transfers, with clients
writing and reading. Elections, faults and periodic progress are printed as they happen (paced
with a short real-time pause per line so a person can follow; the simulation itself never
waits), then the checks that passed with what they examined. The whole takes well under a
minute of wall time.

    python -m quorumkv.sim.demo [--seed N] [--fast]
"""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console

from quorumkv.sim.options import SimOptions
from quorumkv.sim.simulator import Simulation

DEMO_SEED = 2
PAUSE_SECONDS = {"leader": 0.25, "fault": 0.35, "progress": 0.4, "liveness": 0.5}
STYLES = {"leader": "bold green", "fault": "bold red", "progress": "cyan", "liveness": "bold"}


def demo_options(seed: int) -> SimOptions:
    """A 5-node cluster with every kind of fault on, at rates a person can follow."""
    tick_us = 10_000
    return SimOptions(
        seed=seed, voters=5, spare_nodes=1, shards=1, tick_us=tick_us, fault_ticks=1_200,
        election_timeout_ticks=10, heartbeat_interval_ticks=2, pre_vote=True,
        check_quorum=True, read_only="safe", log_compaction_entries_min=64,
        clock_jitter_us=500, clock_offset_max_us=50_000, process_delay_us=200,
        delay_min_us=500, delay_max_us=6_000, reorder=True, loss_rate=0.02,
        duplicate_rate=0.02, partition_interval_us=160 * tick_us,
        partition_duration_max_us=60 * tick_us, crash_interval_us=180 * tick_us,
        downtime_max_us=50 * tick_us, torn_write_rate=0.5,
        membership_interval_us=300 * tick_us, transfer_interval_us=250 * tick_us,
        clients=4, keys=3, read_weight=3, write_weight=3, cas_weight=2, think_max_us=20_000,
        operation_timeout_ticks=60, pause_interval_us=350 * tick_us,
        pause_duration_max_us=40 * tick_us)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quorumkv.sim.demo")
    parser.add_argument("--seed", type=int, default=DEMO_SEED)
    parser.add_argument("--fast", action="store_true", help="no pauses between lines")
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    options = demo_options(args.seed)

    def show(kind: str, text: str) -> None:
        if kind in ("commit", "client"):
            return  # too many to print one by one: the progress line counts them
        now_ticks = simulation.queue.now_us // options.tick_us
        console.print(f"[dim]{now_ticks:>6}[/dim] [{STYLES.get(kind, '')}]{kind:<8}[/] {text}")
        if not args.fast:
            time.sleep(PAUSE_SECONDS.get(kind, 0.1))

    console.rule("[bold]quorumkv simulator demo")
    console.print(f"5 nodes of the production Raft host on a simulated network and disk, "
                  f"seed {options.seed}.\nFaults on: {', '.join(options.enabled_faults())}. "
                  f"Time is in ticks of {options.tick_us // 1000} ms.\n")
    simulation = Simulation(options, listener=show)
    simulation.progress_interval_ticks = 100
    started = time.monotonic()
    result = simulation.run()
    elapsed = time.monotonic() - started
    console.rule("[bold]result")
    console.print("summary: " + ", ".join(f"{k} {v}" for k, v in result.summary.items()))
    if result.ok:
        for name, examined in simulation.checked.items():
            console.print(f"[green]passed[/green] {name:<22} ({examined})")
        console.print(f"[bold green]ok[/bold green] (replay: python -m quorumkv.sim.demo "
                      f"--seed {options.seed}; {elapsed:.1f} s)")
        return 0
    for violation in result.violations:
        console.print(f"[bold red]violation[/bold red] {violation}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
