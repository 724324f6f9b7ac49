"""Properties: histories of a real register are accepted; impossible reads are caught; the
search agrees with brute force on small histories."""

from __future__ import annotations

import random

from history_builders import (
    Plan,
    brute_force_linearizable,
    read,
    simulated_register,
    spec_of,
    with_read_output,
    write,
)
from history_builders import history as history_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quorumkv.history import History, check_register_history, check_register_keys
from quorumkv.history.operation import by_key

FATES = ["ok", "ok", "ok", "ok", "fail", "info-applied", "info-lost", "info-silent"]
NEVER_WRITTEN = 99


def plans(processes_max: int, values_max: int) -> st.SearchStrategy[Plan]:
    return st.builds(
        Plan,
        process=st.integers(1, processes_max),
        function=st.sampled_from(["read", "read", "write", "write", "cas", "cas"]),
        value=st.integers(1, values_max),
        expected=st.integers(0, values_max),
        gap=st.integers(0, 3),
        duration=st.integers(0, 6),
        point=st.floats(0, 1),
        fate=st.sampled_from(FATES),
    )


def register_histories(size_max: int, processes_max: int = 5,
                       values_max: int = 4) -> st.SearchStrategy[History]:
    final_read = Plan(1, "read", 0, 0, gap=10, duration=1, point=0.5, fate="ok")
    return st.lists(plans(processes_max, values_max), max_size=size_max).map(
        lambda drawn: simulated_register([*drawn, final_read])
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(register_histories(size_max=60))
def test_history_of_a_real_register_is_linearizable(history: History) -> None:
    """Operations applied at points inside their windows (info ones applied or not) pass."""
    verdict = check_register_history(history)
    assert verdict.valid is True, verdict.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(register_histories(size_max=60), st.data())
def test_read_of_a_value_never_written_is_caught(history: History, data: st.DataObject) -> None:
    """Changing one completed read to a value nobody wrote makes the history invalid."""
    reads = [op for op in history.operations() if op.function == "read" and op.status == "ok"]
    target = data.draw(st.sampled_from(reads))
    verdict = check_register_history(with_read_output(history, target, NEVER_WRITTEN))
    assert verdict.valid is False
    assert target.index in [op.index for op in verdict.counterexample]


@settings(max_examples=500, deadline=None)
@given(st.lists(plans(processes_max=3, values_max=3), min_size=1, max_size=8), st.data())
def test_search_agrees_with_brute_force(drawn: list[Plan], data: st.DataObject) -> None:
    """On small histories, with one read's answer perhaps changed, the checker's verdict is
    the one exhaustive enumeration of orders gives (this guards the search's pruning)."""
    history = simulated_register(drawn)
    reads = [op for op in history.operations() if op.function == "read" and op.status == "ok"]
    if reads and data.draw(st.booleans()):
        target = data.draw(st.sampled_from(reads))
        history = with_read_output(history, target, data.draw(st.sampled_from([None, 1, 2, 3])))
    expected = brute_force_linearizable(history.operations())
    assert check_register_history(history).valid is expected


def test_many_keys_of_concurrent_operations_are_checked() -> None:
    """Twenty keys of three hundred operations each, five processes per key, all accepted."""
    rng = random.Random(7)
    specs = []
    for key_number in range(20):
        drawn = [
            Plan(rng.randint(1, 5), rng.choice(["read", "write", "write", "cas"]),
                 rng.randint(1, 1000), rng.randint(0, 1000), rng.randint(0, 3),
                 rng.randint(0, 8), rng.random(), rng.choice(FATES))
            for _ in range(300)
        ]
        specs += [
            spec_of(operation, process=key_number * 10 + operation.process, key=f"k{key_number}")
            for operation in simulated_register(drawn).operations()
        ]
    verdicts = check_register_keys(history_of(*specs))
    assert len(verdicts) == 20
    assert all(verdict.valid for verdict in verdicts.values()), [
        verdict.message for verdict in verdicts.values() if not verdict.valid
    ]


def test_by_key_keeps_keys_apart() -> None:
    """Grouping by key keeps each key's operations in order and nothing else."""
    history = history_of(write(1, 1, 0, 1, key="a"), write(2, 2, 0, 1, key="b"),
                         read(1, 1, 2, 3, key="a"))
    groups = by_key(history.operations())
    assert {key: [op.function for op in ops] for key, ops in groups.items()} == {
        "a": ["write", "read"], "b": ["write"]}
