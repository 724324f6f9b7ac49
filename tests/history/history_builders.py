"""Test helpers: build histories from operation specs, and generate histories from real models.

`history(*specs)` turns specs made by `write`, `read`, `cas`, `add`, `incr` into a History whose
events are sorted by time (ties keep the order given, so an operation's invocation precedes its
completion). A spec with status "info" and `ret=None` records no completion at all.

`simulated_*` run a real sequential object: each operation takes effect at a chosen point inside
its [call, ret] window, so the resulting history is linearizable by construction.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

from quorumkv.history import Event, History, Operation, OpType

_COMPLETION = {"ok": OpType.OK, "fail": OpType.FAIL, "info": OpType.INFO}


@dataclass(frozen=True)
class Spec:
    process: int
    function: str
    input: object
    output: object
    call: int
    ret: int | None
    status: str = "ok"
    key: str | None = "x"


def write(process: int, value: object, call: int, ret: int | None, status: str = "ok",
          key: str | None = "x") -> Spec:
    return Spec(process, "write", value, None, call, ret, status, key)


def read(process: int, value: object, call: int, ret: int | None, status: str = "ok",
         key: str | None = "x") -> Spec:
    return Spec(process, "read", None, value if status == "ok" else None, call, ret, status, key)


def cas(process: int, expected: object, new: object, result: bool | None, call: int,
        ret: int | None, status: str = "ok", key: str | None = "x") -> Spec:
    return Spec(process, "cas", [expected, new], result, call, ret, status, key)


def add(process: int, element: object, call: int, ret: int | None, status: str = "ok",
        key: str | None = "s") -> Spec:
    return Spec(process, "add", element, None, call, ret, status, key)


def incr(process: int, amount: int, call: int, ret: int | None, status: str = "ok",
         key: str | None = "c") -> Spec:
    return Spec(process, "incr", amount, None, call, ret, status, key)


def events_of(spec: Spec) -> list[Event]:
    invoke = Event(OpType.INVOKE, spec.process, spec.function, spec.key, spec.input, spec.call)
    if spec.ret is None:
        assert spec.status == "info", "only an info operation may lack a completion"
        return [invoke]
    completion = Event(_COMPLETION[spec.status], spec.process, spec.function, spec.key,
                       spec.output, spec.ret)
    return [invoke, completion]


def spec_of(operation: Operation, process: int, key: str | None) -> Spec:
    """The spec of `operation`, moved to another process and key (an info one completes at
    once: when it completed never matters, only that it did before the next invocation)."""
    ret = operation.call if operation.ret is None else operation.ret
    return Spec(process, operation.function, operation.input, operation.output, operation.call,
                ret, operation.status, key)


def history(*specs: Spec) -> History:
    events = [event for spec in specs for event in events_of(spec)]
    order = sorted(range(len(events)), key=lambda position: (events[position].time, position))
    return History(events[position] for position in order)


# ---- Generated histories ------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One operation to generate: who, what, timing, and its fate."""

    process: int
    function: str
    value: int
    expected: int
    gap: int
    duration: int
    point: float  # where in [call, ret] it takes effect, as a fraction
    fate: str  # "ok", "fail", "info-applied", "info-lost", "info-silent" (no completion)


def timed(plans: Sequence[Plan]) -> list[tuple[Plan, int, int]]:
    """Each plan with its call and return times: a process runs its operations one by one."""
    clock: dict[int, int] = {}
    timed_plans = []
    for plan in plans:
        call = clock.get(plan.process, 0) + 1 + plan.gap
        ret = call + plan.duration
        clock[plan.process] = ret
        timed_plans.append((plan, call, ret))
    return timed_plans


def applied_order(timed_plans: Sequence[tuple[Plan, int, int]]) -> list[int]:
    """Positions of the plans that take effect, in the order of their linearization points."""
    points = [
        (call + plan.point * (ret - call), position)
        for position, (plan, call, ret) in enumerate(timed_plans)
        if plan.fate in ("ok", "info-applied", "info-silent")
    ]
    return [position for _, position in sorted(points)]


def silent_allowed(timed_plans: Sequence[tuple[Plan, int, int]], position: int) -> bool:
    """An operation may go without completion only if it is its process's last one."""
    process = timed_plans[position][0].process
    return all(plan.process != process for plan, _, _ in timed_plans[position + 1:])


def simulated_register(plans: Sequence[Plan]) -> History:
    """A linearizable register history: values applied at each operation's point."""
    timed_plans = timed(plans)
    outputs: dict[int, object] = {}
    state: object = None
    for position in applied_order(timed_plans):
        plan = timed_plans[position][0]
        if plan.function == "read":
            outputs[position] = state
        elif plan.function == "write":
            state = plan.value
        else:
            expected = plan.expected or None
            outputs[position] = state == expected
            if state == expected:
                state = plan.value
    return history(*_register_specs(timed_plans, outputs))


def _register_specs(timed_plans: Sequence[tuple[Plan, int, int]],
                    outputs: dict[int, object]) -> list[Spec]:
    specs = []
    for position, (plan, call, ret) in enumerate(timed_plans):
        status, end = _status(timed_plans, position, ret)
        if plan.function == "read":
            specs.append(read(plan.process, outputs.get(position), call, end, status))
        elif plan.function == "write":
            specs.append(write(plan.process, plan.value, call, end, status))
        else:
            result = outputs.get(position) if status == "ok" else None
            specs.append(cas(plan.process, plan.expected or None, plan.value, result, call, end,
                             status))
    return specs


def _status(timed_plans: Sequence[tuple[Plan, int, int]], position: int,
            ret: int) -> tuple[str, int | None]:
    fate = timed_plans[position][0].fate
    if fate == "ok" or fate == "fail":
        return fate, ret
    if fate == "info-silent" and silent_allowed(timed_plans, position):
        return "info", None
    return "info", ret


def with_read_output(original: History, target: Operation, value: object) -> History:
    """`original` with the completion of read `target` answering `value` instead."""
    events = list(original.events)
    position = next(
        position for position in range(target.index + 1, len(events))
        if events[position].process == target.process
    )
    assert events[position].type is OpType.OK and events[position].function == "read"
    events[position] = replace(events[position], value=value)
    return History(events)


# ---- A brute-force oracle ------------------------------------------------------------------


def brute_force_linearizable(operations: Sequence[Operation]) -> bool:
    """Whether some order of the operations (info ones optional) explains every answer.

    Tries every subset of info operations and every order consistent with real time: use on
    a handful of operations only.
    """
    definite = [op for op in operations if op.status == "ok"]
    unknown = [op for op in operations if op.status == "info" and op.function != "read"]
    for size in range(len(unknown) + 1):
        for chosen in itertools.combinations(unknown, size):
            candidates = definite + list(chosen)
            for order in itertools.permutations(candidates):
                if _respects_real_time(order) and _register_accepts(order):
                    return True
    return False


def _respects_real_time(order: Sequence[Operation]) -> bool:
    """No operation is placed after one that was invoked after it returned."""
    for position, placed_first in enumerate(order):
        for placed_later in order[position + 1:]:
            if placed_later.ret is not None and placed_later.ret < placed_first.call:
                return False
    return True


def _register_accepts(order: Sequence[Operation]) -> bool:
    state: object = None
    for op in order:
        if op.function == "read":
            if op.output != state:
                return False
        elif op.function == "write":
            state = op.input
        else:
            expected, new = op.input  # type: ignore[misc]
            if op.status == "info":
                state = new if state == expected else state
            elif op.output is True:
                if state != expected:
                    return False
                state = new
            elif state == expected:
                return False
    return True
