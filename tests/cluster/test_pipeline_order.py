"""cluster.pipeline_order: which units of a connection may start, and refusals settled in order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from quorumkv.cluster.pipeline_order import PipelineOrder, Unit, UnitState

LOCAL = "local"


def add(order: PipelineOrder, shard_id: int, write: bool) -> Unit:
    return order.add(order.new_command(), shard_id, write, None)


def test_writes_to_one_shard_on_one_route_pipeline() -> None:
    """Writes to the same shard on the same route start together (the log orders them)."""
    order = PipelineOrder()
    units = [add(order, 1, True) for _ in range(3)]
    started, unrouted = order.start_ready(lambda shard: LOCAL)
    assert started == units and unrouted is None


def test_reads_follow_writes_on_a_route_but_a_write_waits_for_an_earlier_read() -> None:
    """A read joins the writes before it on the same shard and route (the host's read floor
    makes it see them); a write never starts while an earlier read is unfinished."""
    order = PipelineOrder()
    write, read, write2 = add(order, 1, True), add(order, 1, False), add(order, 1, True)
    assert order.start_ready(lambda shard: LOCAL)[0] == [write, read]
    order.complete(write, effect=True)
    assert order.start_ready(lambda shard: LOCAL)[0] == []
    order.complete(read, effect=True)
    assert order.start_ready(lambda shard: LOCAL)[0] == [write2]


def test_a_read_on_another_route_waits_for_the_write_before_it() -> None:
    """A read does not join a write on another route (it could overtake it)."""
    order = PipelineOrder()
    write = add(order, 1, True)
    assert order.start_ready(lambda shard: LOCAL)[0] == [write]
    read = add(order, 1, False)
    assert order.start_ready(lambda shard: ("forward", 2))[0] == []
    order.complete(write, effect=True)
    assert order.start_ready(lambda shard: ("forward", 2))[0] == [read]


def test_another_shard_or_route_waits_until_earlier_commands_finish() -> None:
    """Commands to another shard, or to the same shard by another route, run one at a time."""
    order = PipelineOrder()
    first, other_shard = add(order, 1, True), add(order, 2, True)
    assert order.start_ready(lambda shard: LOCAL)[0] == [first]
    order.complete(first, effect=True)
    third = add(order, 2, True)
    assert order.start_ready(lambda shard: ("forward", 3))[0] == [other_shard, third]
    fourth = add(order, 2, True)
    assert order.start_ready(lambda shard: LOCAL)[0] == []  # route changed: wait
    order.complete(other_shard, effect=True)
    order.complete(third, effect=True)
    assert order.start_ready(lambda shard: LOCAL)[0] == [fourth]


def test_split_command_starts_alone_and_together() -> None:
    """A split command's units start together once earlier commands finish; later wait."""
    order = PipelineOrder()
    before = add(order, 1, True)
    command = order.new_command()
    parts = [order.add(command, shard, False, None, split=True) for shard in (1, 2, 3)]
    after = add(order, 1, False)
    assert order.start_ready(lambda shard: LOCAL)[0] == [before]
    order.complete(before, effect=True)
    assert order.start_ready(lambda shard: LOCAL)[0] == parts
    for part in parts[:2]:
        order.complete(part, effect=True)
    assert order.start_ready(lambda shard: LOCAL)[0] == []
    order.complete(parts[2], effect=True)
    assert order.start_ready(lambda shard: LOCAL)[0] == [after]


def test_no_route_is_reported_only_for_the_unit_next_in_order() -> None:
    """The unit next in order with no leader is returned to wait for one; later ones not."""
    order = PipelineOrder()
    first, second = add(order, 1, True), add(order, 2, True)
    started, unrouted = order.start_ready(lambda shard: None)
    assert started == [] and unrouted is first
    order.complete(first, effect=False)  # no leader in time: never sent
    started, unrouted = order.start_ready(lambda shard: None)
    assert unrouted is second


def test_refused_last_units_start_again_in_order() -> None:
    """Refused units with nothing started after them go back to waiting, in order."""
    order = PipelineOrder()
    units = [add(order, 1, False) for _ in range(3)]
    order.start_ready(lambda shard: ("forward", 2))
    order.refuse(units[0])
    assert order.resolve() == []  # held: later units still started
    assert order.start_ready(lambda shard: ("forward", 3))[0] == []
    order.refuse(units[2])
    order.refuse(units[1])
    assert order.resolve() == []
    assert all(unit.state is UnitState.WAITING for unit in units)
    assert order.start_ready(lambda shard: ("forward", 3))[0] == units


def test_refused_unit_fails_definitely_once_a_later_one_took_effect() -> None:
    """A refused unit is not sent again after a later command took effect: definite error."""
    order = PipelineOrder()
    first, second, third = add(order, 1, True), add(order, 1, True), add(order, 2, True)
    order.start_ready(lambda shard: ("forward", 2))
    order.refuse(first)
    assert order.resolve() == []
    order.complete(second, effect=True)
    assert order.resolve() == [first]
    order.complete(first, effect=False)
    assert order.start_ready(lambda shard: LOCAL)[0] == [third]


def test_later_completion_without_effect_lets_a_refused_unit_retry() -> None:
    """A later unit answered without being executed does not block a retry."""
    order = PipelineOrder()
    first, second = add(order, 1, True), add(order, 1, True)
    order.start_ready(lambda shard: LOCAL)
    order.refuse(first)
    order.complete(second, effect=False)
    assert order.resolve() == []
    assert first.state is UnitState.WAITING


# ---- the rule, checked on arbitrary schedules ---------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 2), st.integers(0, 2),
                          st.booleans()), min_size=1, max_size=60))
def test_started_units_never_break_the_rule(steps: list[tuple[int, int, int, bool]]) -> None:
    """On any schedule: unfinished started units of different commands form one group; a
    refused unit is restarted only with no later effect; every unit can be finished."""
    order = PipelineOrder()
    units: list[Unit] = []
    route_table = {0: LOCAL, 1: ("forward", 2), 2: None}
    for action, shard, route, flag in steps:
        if action <= 1:
            units.append(add(order, shard, flag))
        elif action == 2:
            order.start_ready(lambda s, r=route: route_table[(s + r) % 3])
        elif action == 3:
            started = [u for u in units if u.state is UnitState.STARTED]
            if started:
                order.complete(started[shard % len(started)], effect=flag)
        elif action == 4:
            started = [u for u in units if u.state is UnitState.STARTED]
            if started:
                order.refuse(started[shard % len(started)])
        for failed in order.resolve():
            check_no_later_effect_was_missed(units, failed)
            order.complete(failed, effect=False)
        check_rule(units)
    for _ in range(len(units) + 1):  # drain: everything finishes
        for failed in order.resolve():
            order.complete(failed, effect=False)
        order.start_ready(lambda s: LOCAL)
        for unit in [u for u in units if u.state is UnitState.STARTED]:
            order.complete(unit, effect=True)
        check_rule(units)
    assert all(u.state is UnitState.DONE for u in units)


def check_rule(units: list[Unit]) -> None:
    live = [u for u in units if u.state in (UnitState.STARTED, UnitState.REFUSED)]
    commands = {u.command for u in live}
    if len(commands) > 1:
        assert len({u.group(u.route) for u in live}) == 1, live
        kinds = [u.write for u in sorted(live, key=lambda u: u.command)]
        assert kinds == sorted(kinds, reverse=True), live  # writes, then reads
    waiting = [u.command for u in units if u.state is UnitState.WAITING]
    assert waiting == sorted(waiting)
    if waiting:
        assert all(u.command < waiting[0] for u in live), (live, waiting)


def check_no_later_effect_was_missed(units: list[Unit], failed: Unit) -> None:
    assert any(u.command > failed.command and u.state is UnitState.DONE and u.effect
               for u in units)
