"""The register linearizability checker catches known anomalies and accepts tricky valid runs."""

from __future__ import annotations

import pytest
from history_builders import Spec, cas, history, read, write

from quorumkv import limits
from quorumkv.errors import MalformedHistory
from quorumkv.history import check_register_history, check_register_keys

# ---- Histories that must be refused -------------------------------------------------------

BAD = {
    "stale-read-after-completed-write": [
        write(1, 1, call=0, ret=1), write(1, 2, call=2, ret=3), read(2, 1, call=4, ret=5),
    ],
    "stale-read-of-absent-key": [write(1, 1, call=0, ret=1), read(2, None, call=2, ret=3)],
    "read-of-value-never-written": [write(1, 1, call=0, ret=1), read(2, 7, call=2, ret=3)],
    "read-of-failed-write": [
        write(1, 1, call=0, ret=1), write(1, 2, call=2, ret=3, status="fail"),
        read(2, 2, call=4, ret=5),
    ],
    "lost-write-newer-then-older": [
        write(1, 1, call=0, ret=1), write(1, 2, call=2, ret=3),
        read(2, 2, call=4, ret=5), read(3, 1, call=6, ret=7),
    ],
    "cas-true-but-register-differed": [
        write(1, 1, call=0, ret=1), cas(2, 2, 3, True, call=2, ret=3),
    ],
    "cas-true-then-reads-contradict": [
        write(1, 1, call=0, ret=1), cas(2, 1, 3, True, call=2, ret=3), read(3, 1, call=4, ret=5),
    ],
    "cas-false-but-register-matched": [
        write(1, 1, call=0, ret=1), cas(2, 1, 3, False, call=2, ret=3),
    ],
    "concurrent-writes-both-orders-contradicted": [
        write(1, 1, call=0, ret=10), write(2, 2, call=0, ret=10),
        read(3, 1, call=11, ret=12), read(3, 2, call=13, ret=14), read(3, 1, call=15, ret=16),
    ],
    "info-write-cannot-unhappen": [
        write(1, 1, call=0, ret=1), write(2, 2, call=2, ret=None, status="info"),
        read(3, 2, call=3, ret=4), read(3, 1, call=5, ret=6),
    ],
    "reads-disagree-on-order-of-two-writes": [
        write(1, 1, call=0, ret=10), write(2, 2, call=0, ret=10),
        read(3, 1, call=1, ret=11), read(3, 2, call=12, ret=13),
        read(4, 2, call=1, ret=11), read(4, 1, call=12, ret=13),
    ],
}


@pytest.mark.parametrize("specs", BAD.values(), ids=BAD.keys())
def test_known_bad_history_is_not_linearizable(specs: list[Spec]) -> None:
    """Each classic anomaly gives valid=False on key 'x' with a non-empty counterexample."""
    verdict = check_register_history(history(*specs))
    assert verdict.valid is False, verdict.message
    assert verdict.key == "x"
    assert "'x'" in verdict.message
    assert 0 < len(verdict.counterexample) <= limits.counterexample_operations_max


def test_stale_read_counterexample_names_the_read_and_the_write_it_missed() -> None:
    """The verdict for a stale read quotes that read and the newer write it ignored."""
    verdict = check_register_history(history(*BAD["stale-read-after-completed-write"]))
    quoted = {(op.function, op.input, op.output) for op in verdict.counterexample}
    assert ("read", None, 1) in quoted
    assert ("write", 2, None) in quoted
    assert "read -> 1" in verdict.message and "holds 2" in verdict.message


def test_culprit_is_the_first_operation_whose_return_breaks_the_history() -> None:
    """With a stale read at the end of a long valid run, the message names that read and the
    counterexample holds it, the last writes and the write of the value it read."""
    specs = [write(1, value, call=4 * value, ret=4 * value + 1) for value in range(1, 30)]
    specs += [read(2, value, call=4 * value + 2, ret=4 * value + 3) for value in range(1, 30)]
    specs.append(read(3, 5, call=200, ret=201))
    verdict = check_register_history(history(*specs))
    assert verdict.valid is False
    assert "read -> 5" in verdict.message and "called at 200" in verdict.message
    quoted = [(op.function, op.input, op.output) for op in verdict.counterexample]
    assert ("write", 5, None) in quoted and ("read", None, 5) in quoted
    assert len(quoted) <= 6


def test_only_the_bad_key_is_blamed() -> None:
    """Keys are checked independently; the verdict names the key with the anomaly."""
    specs = [
        write(1, 1, call=0, ret=1, key="a"), read(2, 1, call=2, ret=3, key="a"),
        write(1, 1, call=4, ret=5, key="b"), read(2, None, call=6, ret=7, key="b"),
    ]
    verdict = check_register_history(history(*specs))
    assert (verdict.valid, verdict.key) == (False, "b")
    per_key = check_register_keys(history(*specs))
    assert [(key, v.valid) for key, v in per_key.items()] == [("a", True), ("b", False)]


# ---- Histories that must be accepted ------------------------------------------------------

GOOD = {
    "empty": [],
    "read-absent-key": [read(1, None, call=0, ret=1)],
    "sequential": [
        write(1, 1, call=0, ret=1), read(1, 1, call=2, ret=3), write(1, 2, call=4, ret=5),
        read(2, 2, call=6, ret=7),
    ],
    "read-sees-write-before-it-returns": [
        write(1, 1, call=0, ret=10), read(2, 1, call=1, ret=2), read(2, 1, call=3, ret=4),
    ],
    "read-concurrent-with-write-sees-old": [
        write(1, 1, call=0, ret=1), write(1, 2, call=2, ret=10), read(2, 1, call=3, ret=4),
        read(2, 2, call=11, ret=12),
    ],
    "concurrent-writes-either-order": [
        write(1, 1, call=0, ret=10), write(2, 2, call=0, ret=10),
        read(3, 2, call=11, ret=12), read(3, 2, call=13, ret=14),
    ],
    "touching-operations-are-concurrent": [
        write(1, 1, call=0, ret=5), read(2, None, call=5, ret=6),
    ],
    "reads-order-concurrent-writes-consistently": [
        write(1, 1, call=0, ret=10), write(2, 2, call=0, ret=10),
        read(3, 1, call=1, ret=3), read(4, 2, call=4, ret=6), read(3, 2, call=7, ret=9),
    ],
    "cas-both-outcomes": [
        write(1, 0, call=0, ret=1), cas(2, 0, 1, True, call=2, ret=3),
        cas(3, 0, 2, False, call=4, ret=5), read(1, 1, call=6, ret=7),
    ],
    "concurrent-cas-one-wins": [
        write(1, 0, call=0, ret=1), cas(2, 0, 1, True, call=2, ret=8),
        cas(3, 0, 2, False, call=2, ret=8), read(1, 1, call=9, ret=10),
    ],
    "info-write-took-effect": [
        write(1, 1, call=0, ret=None, status="info"), read(2, 1, call=5, ret=6),
    ],
    "info-write-never-took-effect": [
        write(1, 1, call=0, ret=2, status="info"), read(2, None, call=5, ret=6),
        read(2, None, call=7, ret=8),
    ],
    "info-write-took-effect-late": [
        write(1, 1, call=0, ret=1), write(2, 2, call=2, ret=3, status="info"),
        read(3, 1, call=4, ret=5), read(3, 2, call=50, ret=51),
    ],
    "info-cas-took-effect": [
        write(1, 0, call=0, ret=1), cas(2, 0, 5, None, call=2, ret=3, status="info"),
        read(3, 5, call=4, ret=5),
    ],
    "info-cas-never-took-effect": [
        write(1, 0, call=0, ret=1), cas(2, 0, 5, None, call=2, ret=3, status="info"),
        read(3, 0, call=4, ret=5),
    ],
    "failed-write-and-info-read-ignored": [
        write(1, 1, call=0, ret=1), write(1, 2, call=2, ret=3, status="fail"),
        read(2, None, call=4, ret=5, status="info"), read(2, 1, call=6, ret=7),
    ],
    "many-unobserved-info-writes": [
        *[write(p, 100 + p, call=p, ret=None, status="info") for p in range(10, 40)],
        write(1, 1, call=50, ret=51), read(2, 1, call=52, ret=53),
    ],
}


@pytest.mark.parametrize("specs", GOOD.values(), ids=GOOD.keys())
def test_known_good_history_is_linearizable(specs: list[Spec]) -> None:
    """Valid runs, including concurrency and indeterminate operations, give valid=True."""
    verdict = check_register_history(history(*specs))
    assert verdict.valid is True, verdict.message


def test_tiny_search_budget_gives_unknown_never_a_verdict() -> None:
    """A hard history checked with steps_max=20 answers valid=None with a clear message."""
    writers = [write(p, p, call=0, ret=100) for p in range(1, 9)]
    verdict = check_register_history(history(*writers, read(9, 1, call=101, ret=102)), steps_max=20)
    assert verdict.valid is None
    assert "unknown" in verdict.message and "steps_max" in verdict.message
    assert check_register_history(history(*writers, read(9, 1, call=101, ret=102))).valid is True


def test_unknown_key_does_not_hide_an_invalid_one() -> None:
    """When one key is undecided and another invalid, the verdict is invalid."""
    hard = [write(p, p, call=0, ret=100, key="a") for p in range(1, 9)]
    hard.append(read(9, 3, call=101, ret=102, key="a"))
    bad = [write(11, 1, call=0, ret=1, key="b"), read(12, 2, call=2, ret=3, key="b")]
    verdict = check_register_history(history(*hard, *bad), steps_max=20)
    assert (verdict.valid, verdict.key) == (False, "b")


@pytest.mark.parametrize(
    "spec",
    [
        Spec(1, "incr", 1, None, 0, 1),
        Spec(1, "cas", 1, True, 0, 1),
        Spec(1, "cas", [1, 2], "yes", 0, 1),
    ],
    ids=["unknown-function", "cas-input-not-pair", "cas-output-not-boolean"],
)
def test_register_model_refuses_what_it_cannot_judge(spec: Spec) -> None:
    """Functions other than read/write/cas and malformed cas raise MalformedHistory."""
    with pytest.raises(MalformedHistory):
        check_register_history(history(spec))
