"""Ctrl-C, SIGTERM and SIGHUP during a verify run: noted first, then raised where it is safe.

Theory of operation. A signal handler that only raises KeyboardInterrupt can lose it: if the
main thread happens to be running a finalizer (`__del__` of a socket being collected), Python
prints "Exception ignored" and carries on, and the run would go on for its whole duration. So
the handler first sets `requested`, an event, and then raises `Interrupted`. Every wait of the
harness goes through `wait()`, which wakes on that event and raises: whichever way the first
raise went, the run stops at its next wait, and its `finally` removes what it created.

During cleanup (`signals_deferred`) a further signal is only noted, so a second Ctrl-C cannot
cut the cleanup short; it is raised once the cleanup is done.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

requested = threading.Event()
"""Set once an interrupting signal arrived during the current run."""


class Interrupted(KeyboardInterrupt):
    """An interrupting signal arrived during a run (handled as Ctrl-C: clean up, then stop)."""


def check() -> None:
    """Raise Interrupted if a signal asked the run to stop."""
    if requested.is_set():
        raise Interrupted("interrupted by a signal")


def wait(seconds: float) -> None:
    """Sleep `seconds`, or less if interrupted; raise Interrupted if so."""
    requested.wait(seconds)
    check()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _handling(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """`handler` for SIGNALS while inside; the previous handlers again after."""
    previous = {number: signal.signal(number, handler) for number in SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """While inside, the signals set `requested` and raise Interrupted in the main thread."""
    requested.clear()
    if not _in_main_thread():
        yield
        return

    def handler(number: int, frame: object) -> None:
        requested.set()
        raise Interrupted(f"signal {signal.Signals(number).name}")

    with _handling(handler):
        yield


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """While inside, the signals only set `requested`; one that arrived (now or before) raises
    Interrupted when the block ends."""
    if not _in_main_thread():
        yield
        return

    def note(number: int, frame: object) -> None:
        requested.set()

    try:
        with _handling(note):
            yield
    finally:
        check()
