"""Invariants: checks that stay on under `python -O`.

A broken invariant is a bug in quorumkv, never an operating condition: it raises
`InvariantViolation` (an AssertionError subclass, so test runners report it as a failure) with a
sentence saying what should have held. Operating conditions use the typed errors of errors.py.
"""

from __future__ import annotations


class InvariantViolation(AssertionError):
    """An internal rule of quorumkv did not hold: this is a bug, report it with the message."""


def invariant(condition: object, why: str) -> None:
    """Raise InvariantViolation(why) unless `condition` is true; unaffected by `python -O`."""
    if not condition:
        raise InvariantViolation(why)
