"""The picture of a verify run: throughput and latency over time, with the faults shaded.

Theory of operation. Operations are the history's invocations paired with their completions
(per process, in order). The upper panel counts completions per second by outcome (ok, fail,
info); the lower one plots each operation's latency at its completion time, on a log scale,
coloured by outcome. Each fault window is shaded in both panels, one colour per nemesis, so a
reader sees at once what each fault did to the clients. matplotlib draws off-screen (Agg).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from quorumkv.history import Event, OpType
from quorumkv.verify.schedule import FaultWindow

OUTCOME_COLOURS = {"ok": "#2b8a3e", "fail": "#e03131", "info": "#f08c00"}
NEMESIS_COLOURS = {"partition": "#4dabf7", "kill": "#ff8787", "pause": "#b197fc",
                   "link": "#ffd43b", "handover": "#63e6be"}


def completed_operations(events: Iterable[Event]) -> list[tuple[float, float, str]]:
    """(completion time s, latency ms, outcome) for every completed operation."""
    invoked: dict[int, int] = {}
    operations = []
    for event in events:
        if event.type is OpType.INVOKE:
            invoked[event.process] = event.time
        elif event.process in invoked:
            start = invoked.pop(event.process)
            operations.append((event.time / 1e9, (event.time - start) / 1e6, event.type.value))
    return operations


def plot_run(events: Sequence[Event], windows: Sequence[FaultWindow], end_s: float,
             title: str, path: Path) -> None:
    """Write the PNG of a run to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    operations = completed_operations(events)
    figure, (throughput, latency) = pyplot.subplots(2, 1, sharex=True, figsize=(12, 7))
    seconds = int(end_s) + 1
    bottom = [0] * seconds
    for outcome, colour in OUTCOME_COLOURS.items():
        counts = [0] * seconds
        for time_s, _, kind in operations:
            if kind == outcome and 0 <= int(time_s) < seconds:
                counts[int(time_s)] += 1
        throughput.bar(range(seconds), counts, width=1.0, bottom=bottom, align="edge",
                       color=colour, label=outcome, zorder=2)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    for outcome, colour in OUTCOME_COLOURS.items():
        points = [(t, max(ms, 0.01)) for t, ms, kind in operations if kind == outcome]
        if points:
            latency.scatter([t for t, _ in points], [ms for _, ms in points], s=4,
                            color=colour, label=outcome, alpha=0.6, linewidths=0, zorder=2)
    _shade(throughput, windows, end_s, label=True)
    _shade(latency, windows, end_s, label=False)
    throughput.set_ylabel("operations completed / s")
    throughput.set_title(title)
    throughput.legend(loc="upper right", fontsize="small", ncol=2)
    latency.set_yscale("log")
    latency.set_ylabel("latency (ms)")
    latency.set_xlabel("time since the run began (s)")
    latency.legend(loc="upper right", fontsize="small")
    latency.set_xlim(0, max(end_s, 1))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _shade(axes: object, windows: Sequence[FaultWindow], end_s: float, label: bool) -> None:
    labelled = set()
    for window in windows:
        colour = NEMESIS_COLOURS.get(window.nemesis, "#ced4da")
        name = window.nemesis if label and window.nemesis not in labelled else None
        labelled.add(window.nemesis)
        end = window.end_s if window.end_s is not None else end_s
        axes.axvspan(window.start_s, end, color=colour, alpha=0.3, label=name,  # type: ignore[attr-defined]
                     linewidth=0, zorder=0)
