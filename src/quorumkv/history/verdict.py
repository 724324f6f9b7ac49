"""Verdicts: what a checker concludes about a history, and why.

Every checker answers with one `Verdict` per key and folds them into one for the history: the
first key (in key order) found invalid decides; otherwise any key left undecided makes the whole
answer unknown; otherwise the history is valid. `valid` is three-valued on purpose: a checker
that ran out of search budget says `None`, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from quorumkv import limits
from quorumkv.history.operation import Operation


@dataclass(frozen=True, slots=True)
class Verdict:
    """A checker's conclusion.

    `valid`: True (the history satisfies the property), False (it does not: `counterexample`
    holds operations that show it, in order of invocation) or None (unknown: a search bound was
    hit, or the history holds too little to decide). `key` names the key concerned, if one.
    """

    valid: bool | None
    key: str | None
    message: str
    counterexample: list[Operation] = field(default_factory=list)


def combined(verdicts: Iterable[Verdict], summary: str) -> Verdict:
    """One verdict for many keys: the first invalid one, else the first unknown, else valid."""
    unknown: Verdict | None = None
    for verdict in verdicts:
        if verdict.valid is False:
            return verdict
        if verdict.valid is None and unknown is None:
            unknown = verdict
    return unknown if unknown is not None else Verdict(True, None, summary)


def quoted(operations: Sequence[Operation], first: Sequence[Operation] = ()) -> list[Operation]:
    """A counterexample of at most `limits.counterexample_operations_max` operations.

    The operations in `first` are kept before any of `operations`; duplicates are dropped; the
    result is sorted by invocation time.
    """
    chosen: dict[int, Operation] = {}
    for operation in [*first, *operations]:
        if len(chosen) >= limits.counterexample_operations_max:
            break
        chosen.setdefault(id(operation), operation)
    return sorted(chosen.values(), key=lambda operation: (operation.call, operation.index))
