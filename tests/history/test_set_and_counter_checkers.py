"""The set checker catches lost and invented elements; the counter checker catches reads out of
the bounds the increments allow; both accept valid runs with indeterminate operations."""

from __future__ import annotations

import pytest
from history_builders import Spec, add, history, incr, read
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumkv.errors import MalformedHistory
from quorumkv.history import check_counter_history, check_set_history


def set_read(process: int, elements: list[int] | None, call: int, ret: int) -> Spec:
    return read(process, elements, call, ret, key="s")


def counter_read(process: int, value: int | None, call: int, ret: int) -> Spec:
    return read(process, value, call, ret, key="c")


# ---- Sets -----------------------------------------------------------------------------------


def test_lost_acknowledged_add_is_caught() -> None:
    """An add acknowledged before the final read began, missing from it, is reported."""
    verdict = check_set_history(history(
        add(1, 1, 0, 1), add(2, 2, 0, 1), set_read(3, [1], 5, 6),
    ))
    assert verdict.valid is False and verdict.key == "s"
    assert "lacks 1 acknowledged elements [2]" in verdict.message
    assert {op.function for op in verdict.counterexample} == {"add", "read"}


def test_invented_element_is_caught() -> None:
    """An element nobody added, present in a read, is reported."""
    verdict = check_set_history(history(add(1, 1, 0, 1), set_read(2, [1, 7], 2, 3)))
    assert verdict.valid is False
    assert "[7]" in verdict.message and "nobody added them" in verdict.message


def test_element_of_failed_add_is_invented() -> None:
    """An element whose only add failed (definitely did not happen) must not appear."""
    verdict = check_set_history(history(add(1, 1, 0, 1, status="fail"), set_read(2, [1], 2, 3)))
    assert verdict.valid is False and "failed or started after" in verdict.message


def test_element_added_after_the_read_returned_is_invented() -> None:
    """A read cannot hold an element whose add was invoked after the read returned."""
    verdict = check_set_history(history(set_read(2, [1], 0, 1), add(1, 1, 5, 6)))
    assert verdict.valid is False


def test_element_seen_then_gone_is_lost() -> None:
    """An element an earlier completed read saw (here from an info add) must stay."""
    verdict = check_set_history(history(
        add(1, 1, 0, 1, status="info"), set_read(2, [1], 2, 3), set_read(3, [], 4, 5),
    ))
    assert verdict.valid is False and "earlier reads had seen" in verdict.message


@pytest.mark.parametrize(
    "specs",
    [
        [add(1, 1, 0, 1), add(2, 2, 0, 10), set_read(3, [1], 2, 3), set_read(3, [1, 2], 11, 12)],
        [add(1, 1, 0, 5), set_read(2, [1], 1, 2)],
        [add(1, 1, 0, 5), set_read(2, [], 1, 2), set_read(2, [1], 6, 7)],
        [add(1, 1, 0, 1, status="info"), set_read(2, [], 5, 6)],
        [add(1, 1, 0, None, status="info"), set_read(2, [1], 5, 6)],
        [add(1, 1, 0, 1, status="fail"), set_read(2, None, 5, 6)],
        [add(1, 1, 0, 5), set_read(2, [1], 5, 6)],
    ],
    ids=["concurrent-add-later-seen", "read-sees-running-add", "running-add-unseen",
         "info-add-absent", "info-add-present", "failed-add-absent", "touching-add-seen"],
)
def test_valid_set_histories_pass(specs: list[Spec]) -> None:
    """Concurrent, indeterminate and failed adds, seen or not as allowed, pass."""
    verdict = check_set_history(history(*specs))
    assert verdict.valid is True, verdict.message


def test_set_without_read_is_unknown() -> None:
    """Adds with no completed read cannot be judged: valid is None."""
    assert check_set_history(history(add(1, 1, 0, 1))).valid is None


# ---- Counters -------------------------------------------------------------------------------


def test_counter_read_above_possible_maximum_is_caught() -> None:
    """A read above every increment invoked before it returned is reported."""
    verdict = check_counter_history(history(
        incr(1, 1, 0, 1), incr(2, 1, 2, None, status="info"), counter_read(3, 3, 4, 5),
    ))
    assert verdict.valid is False and verdict.key == "c"
    assert "above the most, 2," in verdict.message


def test_counter_read_below_acknowledged_minimum_is_caught() -> None:
    """A read below the increments acknowledged before it began is reported."""
    verdict = check_counter_history(history(
        incr(1, 2, 0, 1), incr(2, 3, 0, 1), incr(1, 5, 2, 9), counter_read(3, 4, 4, 5),
    ))
    assert verdict.valid is False and "below the least, 5," in verdict.message
    assert any(op.function == "incr" and op.input == 5 for op in verdict.counterexample)


def test_failed_increment_never_counts() -> None:
    """A failed increment may not explain a higher read."""
    verdict = check_counter_history(history(
        incr(1, 1, 0, 1), incr(1, 1, 2, 3, status="fail"), counter_read(2, 2, 4, 5),
    ))
    assert verdict.valid is False


@pytest.mark.parametrize(
    "specs",
    [
        [incr(1, 1, 0, 1), incr(2, 1, 0, 1), counter_read(3, 2, 2, 3)],
        [incr(1, 1, 0, 10), counter_read(2, 0, 1, 2), counter_read(2, 1, 3, 4)],
        [incr(1, 1, 0, 1), incr(2, 1, 2, 3, status="info"), counter_read(3, 1, 4, 5)],
        [incr(1, 1, 0, 1), incr(2, 1, 2, None, status="info"), counter_read(3, 2, 4, 5)],
        [incr(1, -3, 0, 10), incr(2, 5, 0, 1), counter_read(3, 2, 2, 3)],
        [counter_read(1, None, 0, 1)],
        [incr(1, 1, 0, 5), counter_read(2, 1, 5, 6)],
    ],
    ids=["acknowledged", "concurrent", "info-not-applied", "info-applied", "negative-running",
         "absent-is-zero", "touching-counts"],
)
def test_valid_counter_histories_pass(specs: list[Spec]) -> None:
    """Reads between the certain and the possible sums pass."""
    verdict = check_counter_history(history(*specs))
    assert verdict.valid is True, verdict.message


def test_counter_without_read_is_unknown() -> None:
    """Increments with no completed read cannot be judged: valid is None."""
    assert check_counter_history(history(incr(1, 1, 0, 1))).valid is None


@pytest.mark.parametrize(
    ("checker", "spec"),
    [
        (check_set_history, Spec(1, "remove", 1, None, 0, 1, key="s")),
        (check_set_history, Spec(1, "read", None, 5, 0, 1, key="s")),
        (check_counter_history, Spec(1, "incr", "one", None, 0, 1, key="c")),
        (check_counter_history, Spec(1, "read", None, "7", 0, 1, key="c")),
    ],
    ids=["set-remove", "set-read-scalar", "counter-amount-text", "counter-read-text"],
)
def test_checkers_refuse_operations_they_cannot_judge(checker: object, spec: Spec) -> None:
    """Unknown functions and ill-typed values raise MalformedHistory."""
    with pytest.raises(MalformedHistory):
        checker(history(spec))  # type: ignore[operator]


# ---- Properties -----------------------------------------------------------------------------

Timing = tuple[int, int, int, str]  # process, gap, duration, fate


def run_timed(drawn: list[Timing]) -> list[tuple[int, int, int, str, float]]:
    """Call and return times per operation, each process running one at a time; with the
    point in the window where it takes effect (its position order among the operations)."""
    clock: dict[int, int] = {}
    timed = []
    for position, (process, gap, duration, fate) in enumerate(drawn):
        call = clock.get(process, 0) + 1 + gap
        clock[process] = call + duration
        timed.append((process, call, call + duration, fate, call + duration * ((position * 7919) % 10) / 10))
    return timed


timings = st.lists(
    st.tuples(st.integers(1, 4), st.integers(0, 3), st.integers(0, 5),
              st.sampled_from(["ok", "ok", "ok", "fail", "info-applied", "info-lost"])),
    max_size=40,
)


def simulated_set(drawn: list[Timing]) -> tuple[list[Spec], set[int]]:
    """Unique adds taking effect at their points (info ones maybe), a final read after all."""
    specs, present = [], set()
    for element, (process, call, ret, fate, _) in enumerate(run_timed(drawn)):
        status = "info" if fate.startswith("info") else fate
        specs.append(add(process, element, call, ret, status))
        if fate in ("ok", "info-applied"):
            present.add(element)
    return specs, present


@settings(max_examples=200, deadline=None)
@given(timings)
def test_set_of_a_real_set_passes_and_a_dropped_element_fails(drawn: list[Timing]) -> None:
    """A real set's final read passes; dropping an acknowledged element from it fails."""
    specs, present = simulated_set(drawn)
    final = 1000
    assert check_set_history(history(*specs, set_read(99, sorted(present), final, final + 1))).valid
    acknowledged = [spec.input for spec in specs if spec.status == "ok"]
    if acknowledged:
        dropped = sorted(present - {acknowledged[0]})
        verdict = check_set_history(history(*specs, set_read(99, dropped, final, final + 1)))
        assert verdict.valid is False
    invented = sorted(present | {len(specs) + 5})
    assert check_set_history(history(*specs, set_read(99, invented, final, final + 1))).valid is False


@settings(max_examples=200, deadline=None)
@given(timings, st.data())
def test_counter_reads_of_a_real_counter_pass(drawn: list[Timing], data: st.DataObject) -> None:
    """Reads taken at points of a real counter pass; a final read off by one beyond the
    possible range fails."""
    timed = run_timed(drawn)
    specs = []
    effects = []
    for process, call, ret, fate, point in timed:
        status = "info" if fate.startswith("info") else fate
        amount = data.draw(st.integers(1, 3))
        specs.append(incr(process, amount, call, ret, status))
        if fate in ("ok", "info-applied"):
            effects.append((point, amount))
    probes = data.draw(st.lists(st.integers(0, 40), max_size=5))
    reads = [
        counter_read(100 + number, sum(a for p, a in effects if p < probe + 0.5), probe, probe + 1)
        for number, probe in enumerate(probes)
    ]
    total = sum(amount for _, amount in effects)
    assert check_counter_history(history(*specs, *reads, counter_read(99, total, 1000, 1001))).valid
    possible = sum(spec.input for spec in specs if spec.status != "fail")  # type: ignore[misc]
    too_high = counter_read(99, possible + 1, 1000, 1001)
    assert check_counter_history(history(*specs, *reads, too_high)).valid is False
