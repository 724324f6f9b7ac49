"""Workloads: the commands they send, how replies become history values, keys they rotate."""

from __future__ import annotations

import random

import pytest

from quorumkv.verify.workloads import (
    SET_PREFIX,
    CounterWorkload,
    RegisterWorkload,
    SetWorkload,
    UnexpectedReply,
)


def test_register_values_are_unique_per_process_and_operation() -> None:
    """Every value the register workload writes is new: `<process>.<n>`."""
    workload = RegisterWorkload()
    rng = random.Random(1)
    written = [request.value for process in range(3) for request in
               (workload.next_request(process, rng) for _ in range(200))
               if request.function == "write"]
    assert len(written) == len(set(written)) > 50


def test_register_moves_to_a_fresh_key_after_its_budget() -> None:
    """No key gets more operations than the per-key budget; retired keys are read at the end."""
    workload = RegisterWorkload(keys_active=2, operations_per_key=10)
    rng = random.Random(2)
    keys = [workload.next_request(0, rng).key for _ in range(100)]
    assert max(keys.count(key) for key in set(keys)) <= 10
    assert len(set(keys)) >= 10
    finals = workload.final_requests()
    assert {request.key for request in finals} >= set(keys)
    assert all(request.command[0] == "GET" for request in finals)


def test_register_cas_expects_the_last_value_seen() -> None:
    """A CAS expects the value the key was last seen holding, and swaps in a fresh one."""
    workload = RegisterWorkload(keys_active=1)
    rng = random.Random(3)
    write = next(r for r in iter(lambda: workload.next_request(0, rng), None)
                 if r.function == "write")
    workload.observe(write, write.decode(b"OK"))
    cas = next(r for r in iter(lambda: workload.next_request(1, rng), None)
               if r.function == "cas")
    assert cas.value == [write.value, cas.command[3]]
    assert cas.command[:3] == ("CAS", write.key, write.value)
    assert cas.decode(1) is True and cas.decode(0) is False
    with pytest.raises(UnexpectedReply):
        cas.decode(b"OK")


def test_set_adds_distinct_keys_and_reads_them_back_as_elements() -> None:
    """An add is SET of its own key in one hash slot; a read turns KEYS into sorted elements."""
    workload = SetWorkload(read_probability=0.0)
    add = workload.next_request(4, random.Random(0))
    assert add.function == "add" and add.command == ("SET", SET_PREFIX + "4.0", "4.0")
    assert SET_PREFIX.startswith("{") and "}" in SET_PREFIX
    read = workload.final_requests()[0]
    assert read.command == ("KEYS", SET_PREFIX + "*")
    assert read.decode([(SET_PREFIX + "b").encode(), (SET_PREFIX + "a").encode()]) == ["a", "b"]
    with pytest.raises(UnexpectedReply):
        read.decode([b"other"])


def test_counter_reads_absent_as_none_and_values_as_integers() -> None:
    """Counter reads decode nil to None and a number to an int; INCR answers an integer."""
    workload = CounterWorkload(keys=1, read_probability=0.0)
    incr = workload.next_request(0, random.Random(0))
    assert incr.command == ("INCR", "counter:0") and incr.decode(5) == 5
    read = workload.final_requests()[0]
    assert read.decode(None) is None and read.decode(b"12") == 12
    with pytest.raises(UnexpectedReply):
        read.decode(b"twelve")
