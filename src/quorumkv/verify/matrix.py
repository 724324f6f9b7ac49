"""The full matrix of `make verify`: every fault kind with the register and the set workloads.

Theory of operation. The matrix is a list of (workload, nemeses) pairs, each run for at least
`MATRIX_SECONDS_MIN` seconds with the other options as given, one after the other (the runs
share the machine's cores, never each other's cluster). Each run gets its own directory under
one matrix directory; at the end the summary table (report.py) is printed and written to
`summary.txt`, the runs' results to `summary.json`. In loopback mode the network nemeses are
left out and listed as skipped. The exit status is the worst of the runs'.

Run it with `quorumkv verify --matrix` or `python -m quorumkv.verify.matrix`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sys
from collections.abc import Callable
from typing import Any

from quorumkv.errors import VerifyError
from quorumkv.verify.nemesis import NEMESES
from quorumkv.verify.report import describe_run, summary_table
from quorumkv.verify.run import EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID, RunOptions, run_verify

MATRIX_SECONDS_MIN = 60.0
"""Seconds of workload under faults of each run of the matrix, at least."""

MATRIX: tuple[tuple[str, tuple[str, ...]], ...] = (
    *((workload, (nemesis,)) for nemesis in ("partition", "kill", "pause", "link", "handover")
      for workload in ("register", "set")),
    ("counter", ("partition", "kill", "pause")),
)
"""(workload, nemeses) of every run: each fault kind with register and set, and the counter
under a mix."""


def run_matrix(base: RunOptions, say: Callable[[str], None] = print) -> int:
    """Run the matrix; return the exit status (0 only if every run was valid)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    output = base.output / f"matrix-{stamp}"
    rows: list[dict[str, Any]] = []
    skipped = []
    for workload, nemeses in MATRIX:
        if base.loopback and any(NEMESES[n].needs_network for n in nemeses):
            skipped.append(f"{workload}/{','.join(nemeses)}")
            continue
        options = dataclasses.replace(
            base, workload=workload, nemeses=nemeses, output=output,
            name=f"{workload}-{'-'.join(nemeses)}",
            duration_s=max(base.duration_s, MATRIX_SECONDS_MIN))
        try:
            result = run_verify(options, say=say)
        except VerifyError as error:
            say(f"verify: {workload}/{','.join(nemeses)} could not run: {error}")
            rows.append({"options": {"workload": workload, "nemeses": list(nemeses)},
                         "valid": None, "verdicts": {}, "error": str(error)})
            continue
        say(describe_run(result.results))
        rows.append(result.results)
    table = summary_table(rows)
    if skipped:
        table += "\nskipped (need namespaces): " + ", ".join(skipped)
    output.mkdir(parents=True, exist_ok=True)
    (output / "summary.txt").write_text(table + "\n")
    (output / "summary.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
    say(f"\nverify matrix ({output}):\n{table}")
    values = [row.get("valid") for row in rows]
    if False in values:
        return EXIT_INVALID
    return EXIT_VALID if values and all(v is True for v in values) else EXIT_UNKNOWN


if __name__ == "__main__":
    from quorumkv.verify.command import verify

    verify.main(["--matrix", *sys.argv[1:]], prog_name="quorumkv verify")
