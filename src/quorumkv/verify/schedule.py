"""When faults happen during a verify run, and the log of what happened.

Theory of operation. One scheduler thread alternates quiet windows and fault windows: it waits
`quiet_s`, begins a fault (the run's nemeses take turns, in an order drawn from the seed),
waits `fault_s`, ends it, and so on while a whole fault window still fits before the run's
deadline. A fault that began is always ended, even when the run is stopped early or the
nemesis failed half-way. Every begin and end goes to the fault log (`faults.jsonl`, stamped
with the history's clock, so the plot and a reader can line them up with operations).
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from quorumkv.verify import interruption
from quorumkv.verify.nemesis import Context, Nemesis
from quorumkv.verify.recorder import Recorder


@dataclass
class FaultWindow:
    """One fault, from its begin to its end (None while it lasts), in seconds of the run."""

    nemesis: str
    start_s: float
    end_s: float | None = None
    detail: dict[str, object] = field(default_factory=dict)
    healed: dict[str, object] = field(default_factory=dict)


class FaultLog:
    """The faults of a run, kept in memory and appended to `faults.jsonl`."""

    def __init__(self, path: Path, recorder: Recorder) -> None:
        self.recorder = recorder
        self.windows: list[FaultWindow] = []
        self._file: IO[str] | None = path.open("w")
        self._lock = threading.Lock()

    def _write(self, nemesis: str, action: str, detail: dict[str, object],
               time_ns: int | None = None) -> float:
        time_ns = self.recorder.now() if time_ns is None else time_ns
        if self._file is not None:
            self._file.write(json.dumps({"time": time_ns, "nemesis": nemesis, "action": action,
                                         "detail": detail}, default=str) + "\n")
            self._file.flush()
        return time_ns / 1e9

    def begin(self, nemesis: str, detail: dict[str, object], time_ns: int) -> FaultWindow:
        """A fault that began at `time_ns` (before its first action) and did `detail`."""
        with self._lock:
            window = FaultWindow(nemesis, self._write(nemesis, "begin", detail, time_ns),
                                 detail=detail)
            self.windows.append(window)
            return window

    def end(self, window: FaultWindow, healed: dict[str, object]) -> None:
        with self._lock:
            window.end_s = self._write(window.nemesis, "end", healed)
            window.healed = healed

    def note(self, nemesis: str, action: str, detail: dict[str, object]) -> None:
        """A record outside any window (the final heal, a nemesis that failed)."""
        with self._lock:
            self._write(nemesis, action, detail)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class Scheduler(threading.Thread):
    """Runs the nemeses in turn over the run; see the module docstring."""

    def __init__(self, nemeses: Sequence[Nemesis], context: Context, log: FaultLog,
                 fault_s: float, quiet_s: float, deadline: float,
                 stop: threading.Event) -> None:
        super().__init__(name="verify-nemesis", daemon=True)
        self.nemeses = list(nemeses)
        context.rng.shuffle(self.nemeses)
        self.context = context
        self.log = log
        self.fault_s = fault_s
        self.quiet_s = quiet_s
        self.deadline = deadline
        self.stop = stop
        self.error: str | None = None

    def run(self) -> None:
        turn = 0
        try:
            if not self.nemeses or self.stop.wait(self.quiet_s):
                return
            while time.monotonic() + self.fault_s <= self.deadline:
                self._window(self.nemeses[turn % len(self.nemeses)])
                turn += 1
                if self.stop.wait(self.quiet_s):
                    return
        except interruption.Interrupted:
            return  # the main thread stops the run and removes everything
        except Exception:  # noqa: BLE001 - reported in results.json, the run goes on healing
            self.error = traceback.format_exc()
            self.log.note("scheduler", "error", {"traceback": self.error})

    def _window(self, nemesis: Nemesis) -> None:
        started = self.log.recorder.now()
        try:
            detail = nemesis.begin(self.context)
        except Exception as error:
            window = self.log.begin(nemesis.name, {"error": repr(error)}, started)
            self.log.end(window, nemesis.end(self.context))
            raise
        window = self.log.begin(nemesis.name, detail, started)
        try:
            self.stop.wait(self.fault_s)
        finally:
            self.log.end(window, nemesis.end(self.context))
