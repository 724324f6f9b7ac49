"""Words and tables for verify results: one run's account, the matrix's summary table.

Theory of operation. Both read only `results.json` records (dicts), so a summary can be
rebuilt from run directories long after the runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

VERDICT_WORDS = {True: "valid", False: "INVALID", None: "unknown"}

LINE_CHARACTERS_MAX = 400
"""Characters of a message or operation printed on the terminal (results.json has them all)."""


def shortened(text: str, characters: int = LINE_CHARACTERS_MAX) -> str:
    """`text`, cut in the middle if longer than `characters` (a set read lists every element)."""
    if len(text) <= characters:
        return text
    half = characters // 2
    return f"{text[:half]} ...({len(text) - 2 * half} characters)... {text[-half:]}"


def verdict_word(value: object) -> str:
    return VERDICT_WORDS.get(value if isinstance(value, bool) else None, "unknown")


def fault_summary(results: dict[str, Any]) -> str:
    """"partition x3 (halves, leader-isolated, ...), kill x2" from a run's fault windows."""
    counts: dict[str, list[str]] = {}
    for window in results.get("faults", []):
        detail = window.get("detail", {})
        shape = detail.get("shape") or detail.get("mode") or detail.get("kind") or ""
        counts.setdefault(window["nemesis"], []).append(str(shape))
    parts = []
    for nemesis, shapes in counts.items():
        kinds = ", ".join(s for s in shapes if s)
        parts.append(f"{nemesis} x{len(shapes)}" + (f" ({kinds})" if kinds else ""))
    return "; ".join(parts) or "none"


def describe_run(results: dict[str, Any]) -> str:
    """A few lines: where the run is, what happened, each verdict."""
    operations = results.get("operations", {})
    lines = [
        f"run {results.get('directory')}: {verdict_word(results.get('valid'))}",
        f"  operations: {operations.get('total', 0)} "
        f"(ok {operations.get('ok', 0)}, fail {operations.get('fail', 0)}, "
        f"info {operations.get('info', 0)})",
        f"  faults: {fault_summary(results)}",
    ]
    for name, verdict in results.get("verdicts", {}).items():
        message = shortened(str(verdict.get("message")))
        lines.append(f"  {name}: {verdict_word(verdict.get('valid'))} - {message}")
        for operation in verdict.get("counterexample", [])[:8]:
            lines.append(f"      {shortened(str(operation))}")
    return "\n".join(lines)


def summary_table(rows: Sequence[dict[str, Any]]) -> str:
    """The matrix's table: one line per run (workload, nemesis, operations, verdicts)."""
    header = ("workload", "nemesis", "seconds", "ops", "ok", "fail", "info", "faults",
              "checker", "recovery", "crashes", "verdict")
    table = [header]
    for results in rows:
        options = results.get("options", {})
        operations = results.get("operations", {})
        verdicts = results.get("verdicts", {})
        checker: dict[str, Any] = next((v for k, v in verdicts.items()
                        if k in ("linearizability", "set", "counter")), {})
        table.append((
            str(options.get("workload", "?")),
            ",".join(options.get("nemeses", [])) or "none",
            f"{results.get('workload_seconds', 0):.0f}",
            str(operations.get("total", 0)), str(operations.get("ok", 0)),
            str(operations.get("fail", 0)), str(operations.get("info", 0)),
            str(len(results.get("faults", []))),
            verdict_word(checker.get("valid")),
            verdict_word(verdicts.get("recovery", {}).get("valid")),
            verdict_word(verdicts.get("crashes", {}).get("valid")),
            verdict_word(results.get("valid")),
        ))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
