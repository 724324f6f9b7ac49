"""What every benchmark here reads the same way: process CPU and memory from /proc, and
redis-benchmark's CSV output."""

from __future__ import annotations

import csv
import io
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

REDIS_BENCHMARK_TIMEOUT_S = 600.0


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime of the processes and of their reaped children (Redis's AOF rewrite), from
    /proc; a process that is gone raises: its figure would be wrong."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            raise RuntimeError(f"process {pid} exited during a measurement") from None
        total += sum(int(f) for f in fields[11:15])
    return total / CLOCK_TICKS


def resident_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES


def redis_benchmark(arguments: list[str]) -> dict[str, float]:
    """Run `redis-benchmark <arguments> --csv`; ops/s, p50 and p99 of its last test."""
    output = subprocess.run(["redis-benchmark", *arguments, "--csv"], capture_output=True,
                            text=True, check=True, timeout=REDIS_BENCHMARK_TIMEOUT_S).stdout
    row = list(csv.DictReader(io.StringIO(output[output.find('"test"'):])))[-1]
    return {"ops_per_second": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"]),
            "p99_ms": float(row["p99_latency_ms"])}
