"""Checking a run's history with the shared checkers, each under a time limit.

Theory of operation. The checkers are `quorumkv.history`'s, the same the simulator uses. Each
runs in a child process (spawned, so it inherits no threads) that reads `history.jsonl`, checks
it and sends back its verdict; if no verdict arrives within the time limit, the child is
killed and the verdict is *unknown*, saying so. The linearizability search also has its own
step bound (`limits.linearizability_search_steps_max`) and answers unknown when it is hit:
unknown is never turned into a pass or a failure.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from quorumkv.history import (
    History,
    Verdict,
    check_counter_history,
    check_register_history,
    check_set_history,
    from_json_lines,
)
from quorumkv.verify import interruption

POLL_INTERVAL_S = 0.5
"""Seconds between two looks for an interruption while a checker runs."""

CHECKERS: dict[str, Callable[[History], Verdict]] = {
    "linearizability": check_register_history,
    "set": check_set_history,
    "counter": check_counter_history,
}
"""Checkers by the name a workload gives."""


def verdict_record(checker: str, verdict: Verdict, seconds: float) -> dict[str, Any]:
    """A verdict as results.json holds it."""
    return {"checker": checker, "valid": verdict.valid, "key": verdict.key,
            "message": verdict.message,
            "counterexample": [operation.describe() for operation in verdict.counterexample],
            "seconds": round(seconds, 3)}


def _check_in_child(checker: str, history_path: str, sender: Connection) -> None:
    started = time.monotonic()
    try:
        history = from_json_lines(Path(history_path).read_text())
        verdict = CHECKERS[checker](history)
        sender.send(verdict_record(checker, verdict, time.monotonic() - started))
    except Exception as error:  # noqa: BLE001 - a malformed history is a verdict too
        sender.send({"checker": checker, "valid": None, "key": None,
                     "message": f"the checker could not run: {error!r}", "counterexample": [],
                     "seconds": round(time.monotonic() - started, 3)})
    finally:
        sender.close()


def _poll(receiver: Connection, deadline: float) -> bool:
    """Wait for the child's verdict until `deadline`, waking to notice an interruption."""
    while not receiver.poll(min(POLL_INTERVAL_S, max(0.0, deadline - time.monotonic()))):
        interruption.check()
        if time.monotonic() >= deadline:
            return False
    return True


def check_history(checker: str, history_path: Path, seconds_max: float) -> dict[str, Any]:
    """The verdict of `checker` on the history at `history_path`, or unknown after
    `seconds_max` seconds."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_check_in_child, args=(checker, str(history_path), sender),
                            name=f"verify-check-{checker}", daemon=True)
    started = time.monotonic()
    child.start()
    sender.close()
    try:
        if _poll(receiver, started + seconds_max):
            return dict(receiver.recv())
        return {"checker": checker, "valid": None, "key": None,
                "message": f"unknown: the {checker} checker did not finish within "
                           f"{seconds_max:g} s (the time limit); the history is kept for an "
                           "offline check", "counterexample": [],
                "seconds": round(time.monotonic() - started, 3)}
    except EOFError:
        return {"checker": checker, "valid": None, "key": None,
                "message": f"unknown: the {checker} checker's process died "
                           f"(exit code {child.exitcode})", "counterexample": [],
                "seconds": round(time.monotonic() - started, 3)}
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
