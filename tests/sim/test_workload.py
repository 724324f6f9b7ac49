"""Clients record each outcome as the history demands and follow leader hints."""

from __future__ import annotations

import random

from quorumkv.errors import NotLeader, OutcomeUnknown
from quorumkv.history.operation import OpType
from quorumkv.kv.reply import SimpleString
from quorumkv.sim.trace import Trace
from quorumkv.sim.workload import Workload


def make_workload(weights: tuple[int, int, int]) -> Workload:
    return Workload(random.Random(4), Trace(), clients=1, keys=2, shard_ids=[1], weights=weights,
                    nodes=lambda: [1, 2, 3])


def test_not_leader_is_a_fail_and_the_hint_is_followed() -> None:
    """A NotLeader error records `fail` and the next operation goes to the hinted leader."""
    workload = make_workload((1, 0, 0))
    client = workload.clients[0]
    operation = workload.invoke(client, 10)
    assert workload.complete(client, operation, NotLeader(0, 3), 20) == "fail"
    assert workload.invoke(client, 30).node_id == 3
    assert [e.type for e in workload.history] == [OpType.INVOKE, OpType.FAIL, OpType.INVOKE]


def test_unknown_outcome_and_timeouts_are_info() -> None:
    """OutcomeUnknown and a client timeout both record `info`."""
    workload = make_workload((0, 1, 0))
    client = workload.clients[0]
    first = workload.invoke(client, 10)
    assert workload.complete(client, first, OutcomeUnknown(0, "leader lost"), 20) == "info"
    second = workload.invoke(client, 30)
    workload.timeout(client, second, 40)
    assert [e.type for e in workload.history][1::2] == [OpType.INFO, OpType.INFO]
    assert second.node_id != first.node_id  # gave up on that node


def test_replies_become_history_values() -> None:
    """GET's bytes become the read value, SET's OK the written value, CAS's 1/0 True/False."""
    workload = make_workload((1, 1, 1))
    client = workload.clients[0]
    outcomes = []
    for step in range(30):
        operation = workload.invoke(client, step * 10)
        reply: object = {"read": b"c1.1", "write": SimpleString(b"OK"), "cas": 1}[
            operation.function]
        outcomes.append((operation.function, workload.complete(client, operation, reply,
                                                               step * 10 + 5)))
    values = {(e.function, repr(e.value)) for e in workload.history if e.type is OpType.OK}
    assert ("read", "'c1.1'") in values and ("cas", "True") in values
    assert all(outcome == "ok" for _, outcome in outcomes)
    assert not workload.anomalies


def test_impossible_reply_is_an_anomaly() -> None:
    """A CAS answered with a string is reported as an anomaly, not silently recorded."""
    workload = make_workload((0, 0, 1))
    client = workload.clients[0]
    operation = workload.invoke(client, 0)
    workload.complete(client, operation, b"surprise", 5)
    assert workload.anomalies
