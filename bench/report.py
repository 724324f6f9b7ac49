"""The published report of `make bench`: markdown, plots and the README table from a results JSON.

Theory of operation. The suite measures and saves one results dict (`bench/results/<date>.json`);
this module only reads that dict, so a report can be re-rendered from a saved file at any time
(`python bench/report.py bench/results/<date>.json [--readme README.md]`) and never depends on
the code it describes: it does not import quorumkv.

Three outputs, each skipping what the results lack (a --quick run has fewer sections):
- `compute_ratios`: the project's aims against the other systems, each a ratio that always
  reads "how many times better quorumkv is", so `ratio >= target` means met;
- `render_markdown` and `write_plots`: the full report with its conditions, every table and
  the PNG plots it links to;
- `render_readme_table` and `update_readme`: the compact table between the README's markers.

Figures, never pass/fail: the aims say where we stand, they fail nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

Results = dict[str, Any]
Run = dict[str, Any]

OURS = ("quorumkv-1", "quorumkv-12")
"""Our two configurations; each aim takes the better of them."""

WORKLOADS = ("write", "read", "mix")
CLIENT_COUNTS = (1, 16, 64, 256)
CDF_CLIENT_COUNTS = (16, 64)
"""Client counts whose write-latency distributions the CDF plot shows."""

README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"

MISSING = "n/a"


# ---- looking figures up ------------------------------------------------------------------------


def find_run(results: Results, system: str, workload: str, clients: int,
             pipeline: int = 1) -> Run | None:
    """The run of `system` for that workload, client count and pipeline depth, or None."""
    for run in results.get("runs", []):
        if (run.get("system") == system and run.get("workload") == workload
                and run.get("clients") == clients and run.get("pipeline", 1) == pipeline):
            return run
    return None


def run_figure(workload: str, clients: int, field: str) -> Callable[[Results, str], float | None]:
    """A figure getter: `field` of the pipeline-1 run of a system at that workload and clients."""
    def figure(results: Results, system: str) -> float | None:
        run = find_run(results, system, workload, clients)
        return None if run is None else run.get(field)
    return figure


def failover_median(results: Results, system: str) -> float | None:
    """The median failover time of `system` in seconds, or None if it was not measured."""
    for entry in results.get("failover", []):
        if entry.get("system") == system:
            return entry.get("median_s")
    return None


def system_names(results: Results) -> list[str]:
    """Every system in the results, in the order the suite listed them."""
    listed = [system["name"] for system in results.get("systems", [])]
    extra = {run["system"] for run in results.get("runs", [])} - set(listed)
    return listed + sorted(extra)


# ---- aims --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Aim:
    """One aim: our figure against `theirs`, better by at least `target` times."""

    what: str
    theirs: str
    figure: Callable[[Results, str], float | None]
    higher_is_better: bool
    target: float


AIMS = (
    Aim("write ops/s, 64 clients, pipeline 1", "etcd",
        run_figure("write", 64, "ops_per_second"), True, 2.0),
    Aim("server CPU s per 1k writes, 64 clients", "etcd",
        run_figure("write", 64, "server_cpu_s_per_1k_ops"), False, 1.0),
    Aim("linearizable read ops/s, 64 clients, pipeline 1", "etcd",
        run_figure("read", 64, "ops_per_second"), True, 2.0),
    Aim("p99 write latency ms, 16 clients", "etcd",
        run_figure("write", 16, "p99_ms"), False, 1.0),
    Aim("failover median s", "etcd", failover_median, False, 1.0),
    Aim("write ops/s, 64 clients, pipeline 1", "pysyncobj",
        run_figure("write", 64, "ops_per_second"), True, 10.0),
    Aim("SET ops/s, 16 clients, pipeline 1", "redis-always",
        run_figure("write", 16, "ops_per_second"), True, 0.35),
)


def times_better(ours: float, theirs: float, higher_is_better: bool) -> float:
    """How many times better `ours` is than `theirs` (inf when the denominator is zero)."""
    numerator, denominator = (ours, theirs) if higher_is_better else (theirs, ours)
    return math.inf if denominator == 0 else numerator / denominator


def compute_ratios(results: Results) -> list[dict[str, Any]]:
    """The aims whose figures were all measured, each with ours, theirs, ratio, target and met.

    "ratio" always means how many times better we are (ours/theirs for throughput,
    theirs/ours for latency, CPU and failover time), so the aim is met when ratio >= target.
    "ours" is the better of quorumkv-1 and quorumkv-12, named in "aim" and in "ours_system".
    """
    ratios = []
    for aim in AIMS:
        theirs = aim.figure(results, aim.theirs)
        candidates = [(aim.figure(results, system), system) for system in OURS]
        candidates = [(value, system) for value, system in candidates if value is not None]
        if theirs is None or not candidates:
            continue
        pick = max if aim.higher_is_better else min
        ours, ours_system = pick(candidates, key=lambda candidate: candidate[0])
        ratio = times_better(ours, theirs, aim.higher_is_better)
        comparison = "≥" if aim.higher_is_better else "≤"
        factor = f"{aim.target:g}× " if aim.target != 1 else ""
        ratios.append({
            "aim": f"{aim.what}: {comparison} {factor}{aim.theirs} (ours: {ours_system})",
            "ours": ours, "theirs": theirs, "ratio": ratio, "target": aim.target,
            "met": ratio >= aim.target, "ours_system": ours_system,
        })
    return ratios


# ---- formatting --------------------------------------------------------------------------------


def format_figure(value: float | None) -> str:
    """A figure with as many digits as it deserves: 12,346 / 345 / 12.3 / 1.23 / 0.123."""
    if value is None:
        return MISSING
    if math.isinf(value):
        return "∞"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:#.3g}"


def format_share(value: float | None) -> str:
    return MISSING if value is None else f"{value:.0%}"


def format_integer(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def markdown_table(header: list[str], rows: Iterable[list[str]], align: str = "") -> str:
    """A markdown table padded to line up in a terminal.

    `align` holds "l" or "r" per column; by default the first column is text (left) and the
    others are figures (right).
    """
    rows = [header, *rows]
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header):
        raise ValueError(f"align {align!r} has {len(align)} columns, the header {len(header)}")
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [cell.rjust(width) if side == "r" else cell.ljust(width)
                  for cell, width, side in zip(cells, widths, align, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (width - 1) + ":" if side == "r" else "-" * width
            for width, side in zip(widths, align, strict=True)]
    return "\n".join([line(rows[0]), line(rule), *(line(row) for row in rows[1:])])


# ---- markdown sections -------------------------------------------------------------------------


def present(template: str, *values: Any) -> str:
    """`template` filled with `values`, or "" if any of them was not recorded."""
    return "" if any(value is None for value in values) else template.format(*values)


def conditions_paragraph(results: Results) -> str:
    """Where, with what and how the figures were measured; parts not recorded are left out."""
    machine = results.get("machine", {})
    versions = results.get("versions", {})
    loadgen = results.get("loadgen", {})
    load = machine.get("load_average_start")
    cores = present("{} ", machine.get("cpus"))
    run = ", ".join(part for part in [
        present("started {}", results.get("started_utc")),
        present("{:.0f} min", None if results.get("duration_s") is None
                else results["duration_s"] / 60),
        present("mode {}", results.get("mode"))] if part)
    host = ", ".join(part for part in [
        present("{} CPUs", machine.get("cpus")), present("{} GiB", machine.get("memory_gib")),
        present("kernel {}", machine.get("kernel")), present("Python {}", machine.get("python")),
        present("load average {} at the start",
                None if not load else "/".join(f"{value:.2f}" for value in load))] if part)
    sentences = [
        f"Measured on {results.get('date', MISSING)}" + (f" ({run})" if run else "")
        + " on one machine" + (f": {host}." if host else "."),
        present("Versions: {}.", ", ".join(f"{name} {version}"
                                           for name, version in versions.items()) or None),
        present("Load generator: {} processes, {} s of warm-up then {} s measured per run, "
                "{}-byte values over {:,} keys, pipeline 1 unless stated.",
                loadgen.get("processes"), loadgen.get("warmup_s"), loadgen.get("duration_s"),
                loadgen.get("value_bytes"), loadgen.get("keys")),
        f"The load generator and every server share the same {cores}cores, "
        "so CPU one process spends is CPU the others lack; server CPU per 1,000 operations is "
        "summed over all of a system's server processes from /proc/<pid>/stat, and the load "
        "generator's own share of the CPU is shown next to each figure. Latencies are measured "
        "by the load generator, from sending a request to reading its reply.",
        *(f"Re-measured later ({entry.get('started_utc', MISSING)}, "
          f"{entry.get('duration_s', 0) / 60:.0f} min, load average "
          f"{'/'.join(f'{v:.2f}' for v in entry.get('load_average_start', []))} at its start), "
          f"replacing the first run's figures: {', '.join(entry.get('what', []))}."
          for entry in results.get("remeasured", [])),
    ]
    return " ".join(sentence for sentence in sentences if sentence)


def systems_table(results: Results) -> str:
    rows = [[system.get("name", ""), system.get("label", ""), system.get("durability", ""),
             system.get("routing", "")] for system in results.get("systems", [])]
    return markdown_table(["system", "label", "durability", "routing"], rows, align="llll")


def run_cells(run: Run) -> list[str]:
    """The measured cells of one run: ops/s, p50, p99, server CPU, loadgen share, errors."""
    return [format_figure(run.get("ops_per_second")), format_figure(run.get("p50_ms")),
            format_figure(run.get("p99_ms")), format_figure(run.get("server_cpu_s_per_1k_ops")),
            format_share(run.get("loadgen_cpu_share")), format_integer(run.get("errors"))]


RUN_HEADER = ["ops/s", "p50 ms", "p99 ms", "server CPU s/1k ops", "loadgen CPU share", "errors"]


def workload_table(results: Results, workload: str) -> str | None:
    """One row per system and client count of the pipeline-1 runs of `workload`, or None."""
    rows = []
    for system in system_names(results):
        for clients in CLIENT_COUNTS:
            run = find_run(results, system, workload, clients)
            if run is not None:
                rows.append([system, str(clients), *run_cells(run)])
    if not rows:
        return None
    return markdown_table(["system", "clients", *RUN_HEADER], rows)


def pipelined_table(results: Results) -> str | None:
    runs = [run for run in results.get("runs", []) if run.get("pipeline", 1) != 1]
    rows = [[run["system"], run.get("workload", MISSING), str(run.get("clients", MISSING)),
             str(run["pipeline"]), *run_cells(run)] for run in runs]
    if not rows:
        return None
    return markdown_table(["system", "workload", "clients", "pipeline", *RUN_HEADER], rows,
                          align="llrrrrrrrr")


def failures_table(results: Results) -> str | None:
    rows = [[entry.get("system", ""), entry.get("phase", ""), entry.get("error", "")[:300],
             entry.get("logs") or ""] for entry in results.get("failures", [])]
    if not rows:
        return None
    return markdown_table(["system", "phase", "error", "logs kept in"], rows)


def growth_table(results: Results) -> str | None:
    rows = [[run["system"], run.get("workload", "write"), str(run.get("clients", MISSING)),
             format_integer(run.get("keys_loaded")), format_figure(run.get("load_seconds")),
             format_figure(run.get("settle_seconds")),
             *run_cells(run)] for run in results.get("growth", [])]
    if not rows:
        return None
    return markdown_table(["system", "workload", "clients", "keys loaded", "load s",
                           "quiet after s", *RUN_HEADER], rows, align="llrrrrrrrrrr")


def failover_table(results: Results) -> str | None:
    rows = [[entry["system"], str(len(entry.get("trials_s", []))),
             format_figure(entry.get("median_s")), format_figure(entry.get("max_s"))]
            for entry in results.get("failover", [])]
    if not rows:
        return None
    return markdown_table(["system", "trials", "median s", "max s"], rows)


def restart_table(results: Results) -> str | None:
    rows = [[entry["system"], format_integer(entry.get("keys")),
             format_figure(entry.get("seconds"))] for entry in results.get("restart", [])]
    if not rows:
        return None
    return markdown_table(["system", "keys", "seconds"], rows)


def snapshot_table(results: Results) -> str | None:
    rows = [[entry["system"],
             format_figure(entry["bytes"] / 1e6) if entry.get("bytes") is not None else MISSING,
             format_figure(entry.get("seconds")), format_figure(entry.get("mb_per_second"))]
            for entry in results.get("snapshot", [])]
    if not rows:
        return None
    return markdown_table(["system", "MB", "seconds", "MB/s"], rows)


CROSS_CHECK_WORKLOADS = {"SET": "write", "GET": "read"}
"""redis-benchmark tests and the workload of ours they check."""


def cross_check_table(results: Results) -> str | None:
    """redis-benchmark's figures next to the load generator's for the same system and clients."""
    rows = []
    for entry in results.get("cross_check", []):
        workload = CROSS_CHECK_WORKLOADS.get(str(entry.get("test", "")).upper())
        ours = None if workload is None else find_run(
            results, entry["system"], workload, entry.get("clients", 0), entry.get("pipeline", 1))
        rows.append([entry["system"], entry.get("tool", MISSING), entry.get("test", MISSING),
                     str(entry.get("clients", MISSING)), str(entry.get("pipeline", MISSING)),
                     format_figure(entry.get("ops_per_second")), format_figure(entry.get("p50_ms")),
                     format_figure(entry.get("p99_ms")),
                     format_figure(None if ours is None else ours.get("ops_per_second"))])
    if not rows:
        return None
    return markdown_table(["system", "tool", "test", "clients", "pipeline", "ops/s", "p50 ms",
                           "p99 ms", "loadgen ops/s"], rows, align="lllrrrrrr")


def ratios_table(ratios: list[dict[str, Any]]) -> str | None:
    rows = [[ratio["aim"], format_figure(ratio["ours"]), format_figure(ratio["theirs"]),
             format_figure(ratio["ratio"]), f"{ratio['target']:g}", "✓" if ratio["met"] else "✗"]
            for ratio in ratios]
    if not rows:
        return None
    return markdown_table(["aim", "ours", "theirs", "ratio", "target", "met"], rows,
                          align="lrrrrl")


PLOT_CAPTIONS = {
    "throughput": "Throughput against clients, pipeline 1",
    "latency-cdf": "Write latency distribution at 16 and 64 clients",
    "growth": "Write throughput and server CPU as the data set grows",
}


def plot_caption(name: str) -> str:
    for suffix, caption in PLOT_CAPTIONS.items():
        if name.endswith(f"-{suffix}.png"):
            return caption
    return name


def render_markdown(results: Results, ratios: list[dict[str, Any]], plot_names: list[str]) -> str:
    """The full report: conditions, systems, every measured section, aims and plots.

    Sections whose data the results lack are left out; plots are linked relative to the
    report, which `write_report` writes into the same directory.
    """
    sections: list[tuple[str, str | None]] = [
        ("Conditions", conditions_paragraph(results)),
        ("Systems", systems_table(results) if results.get("systems") else None),
        ("Aims", ratios_table(ratios)),
    ]
    sections += [(f"Workload: {workload}, pipeline 1", workload_table(results, workload))
                 for workload in WORKLOADS]
    sections += [
        ("Pipelined runs (p50 and p99 are of the whole batch: sent to last reply)",
         pipelined_table(results)),
        ("Growth: the same load as the data set grows", growth_table(results)),
        ("Failover: SIGKILL of the leader until a write is acknowledged again",
         failover_table(results)),
        ("Restart: from process start to serving", restart_table(results)),
        ("Snapshot", snapshot_table(results)),
        ("Cross-check with redis-benchmark", cross_check_table(results)),
        ("Phases that failed (their figures are missing above)", failures_table(results)),
        ("Plots", "\n\n".join(f"![{plot_caption(name)}]({name})" for name in plot_names)
         if plot_names else None),
    ]
    parts = [f"# quorumkv comparative benchmark, {results.get('date', MISSING)}"]
    parts += [f"## {title}\n\n{body}" for title, body in sections if body]
    return "\n\n".join(parts) + "\n"


# ---- README ------------------------------------------------------------------------------------


def render_readme_table(results: Results, report_link: str) -> str:
    """The README's compact table: one row per system, one line of conditions, the link."""
    labels = {system["name"]: system for system in results.get("systems", [])}
    rows = []
    for name in system_names(results):
        write_64 = find_run(results, name, "write", 64) or {}
        read_64 = find_run(results, name, "read", 64) or {}
        write_16 = find_run(results, name, "write", 16) or {}
        rows.append([labels.get(name, {}).get("label", name),
                     format_figure(write_64.get("ops_per_second")),
                     format_figure(read_64.get("ops_per_second")),
                     format_figure(write_16.get("p99_ms")),
                     format_figure(write_64.get("server_cpu_s_per_1k_ops")),
                     labels.get(name, {}).get("durability", MISSING)])
    table = markdown_table(["system", "write ops/s, 64 clients", "read ops/s, 64 clients",
                            "p99 write ms, 16 clients", "server CPU s/1k writes, 64 clients",
                            "durability"], rows, align="lrrrrl")
    machine = results.get("machine", {})
    loadgen = results.get("loadgen", {})
    conditions = (
        f"{results.get('date', MISSING)}, one machine, {machine.get('cpus', MISSING)} cores shared "
        f"by the load generator and the servers, Python {machine.get('python', MISSING)}, "
        f"{loadgen.get('value_bytes', MISSING)}-byte values, pipeline 1; "
        f"full results: [{report_link}]({report_link})."
    )
    return f"{table}\n\n{conditions}"


def update_readme(readme: Path, table_markdown: str) -> None:
    """Replace the text between README_BEGIN and README_END in `readme`, keeping the markers.

    Raises ValueError if either marker is missing or they are out of order; nothing is written
    then.
    """
    text = Path(readme).read_text(encoding="utf-8")
    begin = text.find(README_BEGIN)
    end = text.find(README_END, begin + len(README_BEGIN)) if begin >= 0 else -1
    if begin < 0 or end < 0:
        raise ValueError(
            f"{readme} has no {README_BEGIN} ... {README_END} pair (in that order): add both "
            "markers on their own lines where the benchmark table belongs, then run again")
    head = text[:begin + len(README_BEGIN)]
    Path(readme).write_text(f"{head}\n{table_markdown.strip()}\n{text[end:]}", encoding="utf-8")


# ---- plots -------------------------------------------------------------------------------------


def system_colors(results: Results) -> dict[str, Any]:
    """One colour per system, the same in every plot."""
    palette = itertools.cycle(f"C{index}" for index in range(10))
    return dict(zip(system_names(results), palette, strict=False))


def save_figure(figure: Figure, out_dir: Path, name: str) -> str:
    FigureCanvasAgg(figure)
    figure.savefig(out_dir / name, dpi=110)
    return name


def label_clients_axis(axes: Axes) -> None:
    axes.set_xscale("log")
    axes.set_xticks(list(CLIENT_COUNTS), [str(clients) for clients in CLIENT_COUNTS])
    axes.set_xticks([], minor=True)
    axes.set_xlabel("clients")
    axes.grid(True, which="both", alpha=0.3)


def throughput_plot(results: Results, out_dir: Path, name: str) -> str | None:
    """ops/s against clients, log-x and log-y, one subplot per workload, one line per system."""
    colors = system_colors(results)
    workloads = [workload for workload in WORKLOADS
                 if any(find_run(results, system, workload, clients)
                        for system in colors for clients in CLIENT_COUNTS)]
    if not workloads:
        return None
    figure = Figure(figsize=(5 * len(workloads), 4.5), layout="constrained")
    for axes, workload in zip(figure.subplots(1, len(workloads), squeeze=False)[0], workloads,
                              strict=True):
        for system, color in colors.items():
            points = [(clients, run["ops_per_second"]) for clients in CLIENT_COUNTS
                      if (run := find_run(results, system, workload, clients))
                      and run.get("ops_per_second")]
            if points:
                axes.plot(*zip(*points, strict=True), marker="o", color=color, label=system)
        axes.set_yscale("log")
        axes.set_title(f"{workload}, pipeline 1")
        axes.set_ylabel("ops/s (log)")
        label_clients_axis(axes)
    handles = {}
    for axes in figure.axes:
        handles.update(zip(*reversed(axes.get_legend_handles_labels()), strict=True))
    figure.legend(list(handles.values()), list(handles), loc="outside lower center",
                  ncols=len(handles))
    return save_figure(figure, out_dir, name)


def cumulative_fractions(histogram: list[list[float]]) -> tuple[list[float], list[float]]:
    """Upper bounds (ms) and the fraction of requests at or below each, from a histogram."""
    buckets = sorted((bound, count) for bound, count in histogram)
    total = sum(count for _, count in buckets)
    bounds, fractions, seen = [], [], 0.0
    for bound, count in buckets:
        seen += count
        bounds.append(bound)
        fractions.append(seen / total if total else 0.0)
    return bounds, fractions


def latency_cdf_plot(results: Results, out_dir: Path, name: str) -> str | None:
    """Write-latency CDFs at 16 and 64 clients, log-x latency, one line per system."""
    colors = system_colors(results)
    panels = [(clients, [(system, run) for system in colors
                         if (run := find_run(results, system, "write", clients))
                         and run.get("histogram")])
              for clients in CDF_CLIENT_COUNTS]
    panels = [(clients, runs) for clients, runs in panels if runs]
    if not panels:
        return None
    figure = Figure(figsize=(6 * len(panels), 4.5), layout="constrained")
    for axes, (clients, runs) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels,
                                     strict=True):
        for system, run in runs:
            bounds, fractions = cumulative_fractions(run["histogram"])
            axes.plot(bounds, fractions, drawstyle="steps-post", color=colors[system],
                      label=system)
        axes.set_xscale("log")
        axes.set_ylim(0, 1.01)
        axes.set_title(f"write, {clients} clients, pipeline 1")
        axes.set_xlabel("latency ms (log)")
        axes.set_ylabel("fraction of requests ≤ latency")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(loc="lower right", fontsize="small")
    return save_figure(figure, out_dir, name)


def growth_plot(results: Results, out_dir: Path, name: str) -> str | None:
    """Write ops/s and server CPU per 1k ops against keys loaded, log-x, one line per system."""
    colors = system_colors(results)
    growth = [run for run in results.get("growth", [])
              if run.get("workload", "write") == "write" and run.get("keys_loaded")]
    if not growth:
        return None
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    throughput_axes, cpu_axes = figure.subplots(1, 2)
    for system in sorted({run["system"] for run in growth}, key=list(colors).index):
        runs = sorted((run for run in growth if run["system"] == system),
                      key=lambda run: run["keys_loaded"])
        keys = [run["keys_loaded"] for run in runs]
        style = {"marker": "o", "color": colors[system], "label": system}
        throughput_axes.plot(keys, [run.get("ops_per_second") for run in runs], **style)
        cpu_axes.plot(keys, [run.get("server_cpu_s_per_1k_ops") for run in runs], **style)
    for axes, ylabel in ((throughput_axes, "write ops/s"),
                         (cpu_axes, "server CPU s per 1k ops")):
        axes.set_xscale("log")
        axes.set_xlabel("keys loaded (log)")
        axes.set_ylabel(ylabel)
        axes.set_ylim(bottom=0)
        axes.grid(True, which="both", alpha=0.3)
    throughput_axes.legend(fontsize="small")
    figure.suptitle("write load as the data set grows")
    return save_figure(figure, out_dir, name)


def write_plots(results: Results, out_dir: Path, stem: str) -> list[str]:
    """Write `<stem>-throughput.png`, `<stem>-latency-cdf.png` and `<stem>-growth.png`.

    Returns the file names written (relative to `out_dir`); a plot whose data the results lack
    is skipped.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = [(throughput_plot, "throughput"), (latency_cdf_plot, "latency-cdf"),
             (growth_plot, "growth")]
    names = [plot(results, out_dir, f"{stem}-{suffix}.png") for plot, suffix in plots]
    return [name for name in names if name is not None]


# ---- the whole report --------------------------------------------------------------------------


def write_report(results: Results, results_dir: Path, readme: Path | None) -> Path:
    """Write `<date>.json`, `<date>.md` and the plots into `results_dir`; update `readme` if given.

    Returns the markdown file's path. Raises ValueError (from `update_readme`) if the README
    lacks its markers; the results directory is written first, so nothing measured is lost.
    """
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = str(results.get("date", "results"))
    (results_dir / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n",
                                              encoding="utf-8")
    ratios = compute_ratios(results)
    plot_names = write_plots(results, results_dir, stem)
    markdown_path = results_dir / f"{stem}.md"
    markdown_path.write_text(render_markdown(results, ratios, plot_names), encoding="utf-8")
    if readme is not None:
        link = Path(os.path.relpath(markdown_path.resolve(), Path(readme).resolve().parent))
        update_readme(readme, render_readme_table(results, link.as_posix()))
    return markdown_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-render the benchmark report from a results "
                                                 "JSON saved by the suite.")
    parser.add_argument("results", type=Path, help="bench/results/<date>.json")
    parser.add_argument("--readme", type=Path, default=None,
                        help="README.md whose table between the bench markers to replace")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where to write the report (default: beside the results JSON)")
    arguments = parser.parse_args(argv)
    results = json.loads(arguments.results.read_text(encoding="utf-8"))
    out_dir = arguments.out_dir or arguments.results.resolve().parent
    markdown_path = write_report(results, out_dir, arguments.readme)
    print(markdown_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
