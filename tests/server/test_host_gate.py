"""The host gate: one thread at a time in the host, inputs and outputs kept in order."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from quorumkv.host.host import Host
from quorumkv.server.host_gate import BufferedTransport, HostGate
from quorumkv.storage.memory import MemoryStore
from quorumkv.storage.protocols import WriteBatch


class FakeNode:
    def __init__(self, host: FakeHost) -> None:
        self.host = host

    def has_ready(self) -> bool:
        return self.host.work > 0


class FakeReplica:
    def __init__(self, host: FakeHost) -> None:
        self.node = FakeNode(host)


class FakeHost:
    """Records which thread ran each call; process() sends, completes and blocks on a gate."""

    def __init__(self) -> None:
        self.node_id = 1
        self.calls: list[tuple[str, bool]] = []
        self.loop_thread = threading.get_ident()
        self.work = 0
        self.transport: Any = None
        self.pending: list[Callable[[object], None]] = []
        self.release = threading.Event()

    def _record(self, what: str) -> None:
        self.calls.append((what, threading.get_ident() == self.loop_thread))

    def shard_ids(self) -> list[int]:
        return [1]

    def replica(self, shard_id: int) -> FakeReplica:
        return FakeReplica(self)

    def submit(self, shard_id: int, name: bytes, args: tuple[bytes, ...],
               done: Callable[[object], None]) -> None:
        self._record(f"submit {name.decode()}")
        self.pending.append(done)
        self.work += 1

    def receive(self, message: Any) -> None:
        self._record(f"receive {message}")

    def tick(self) -> None:
        self._record("tick")

    def process(self) -> bool:
        if self.work == 0:
            return False
        self._record("process")
        self.release.wait(10)
        self.transport.send(2, "append")
        for done in self.pending:
            done("OK")
        self.pending.clear()
        self.work = 0
        return True


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[int, object, bool]] = []

    def send(self, target: int, message: object) -> None:
        self.sent.append((target, message, threading.get_ident() == loop_thread))


loop_thread = threading.get_ident()


async def test_inputs_wait_while_a_cycle_runs_and_outputs_come_back_on_the_loop() -> None:
    """While the worker runs a cycle, inputs queue in order; sends and completions are handed
    to the loop thread when the cycle ends; the next inputs reach the host afterwards."""
    host, sink = FakeHost(), Sink()
    buffered = BufferedTransport(sink)
    host.transport = buffered
    finished = asyncio.Event()
    gate = HostGate(host, buffered, threaded=True,  # type: ignore[arg-type]
                    on_cycles_done=finished.set)
    replies: list[tuple[object, bool]] = []

    def record(result: object) -> None:
        replies.append((result, threading.get_ident() == loop_thread))

    gate.submit(1, b"SET", (b"k", b"v"), record)
    assert gate.run_cycles() is True and gate.busy
    gate.receive("vote")
    gate.tick()
    gate.submit(1, b"GET", (b"k",), record)
    assert [c for c, _ in host.calls if c != "process"] == ["submit SET"]  # the rest waits
    host.release.set()
    await asyncio.wait_for(finished.wait(), 10)
    assert not gate.busy
    assert replies == [("OK", True)]
    assert sink.sent == [(2, "append", True)]
    assert ("process", False) in host.calls  # the cycle ran on the worker
    assert gate.has_deferred()
    finished.clear()
    gate.run_cycles()
    await asyncio.wait_for(finished.wait(), 10)
    names = [c for c, _ in host.calls]
    assert names == ["submit SET", "process", "receive vote", "tick", "submit GET", "process"]
    assert all(on_loop for name, on_loop in host.calls if name != "process")
    assert replies == [("OK", True), ("OK", True)]
    gate.close()


async def test_close_hands_over_the_running_cycle_and_starts_no_other() -> None:
    """Closing the gate while a cycle runs on the worker (a SIGTERM shortly after start)
    hands that cycle's sends and replies over inside close(), and no later cycle is ever
    scheduled on the shut-down executor (once: "cannot schedule new futures after
    shutdown", reported as a bug)."""
    host, sink = FakeHost(), Sink()
    buffered = BufferedTransport(sink)
    host.transport = buffered
    failures: list[BaseException] = []
    cycles_done: list[bool] = []

    def drive_again() -> None:  # what the node's driver does when the cycles end
        cycles_done.append(True)
        try:
            gate.run_cycles()
        except Exception as error:
            failures.append(error)

    gate = HostGate(host, buffered, threaded=True,  # type: ignore[arg-type]
                    on_cycles_done=drive_again, on_failure=failures.append)
    replies: list[object] = []
    gate.submit(1, b"SET", (b"k", b"v"), replies.append)
    assert gate.run_cycles() is True
    gate.submit(1, b"GET", (b"k",), replies.append)  # deferred: more work after this cycle
    host.release.set()
    gate.close()
    assert replies == ["OK"] and sink.sent == [(2, "append", True)]  # handed over in close()
    assert not gate.busy
    for _ in range(5):  # let the worker's queued hand-over run: it must find nothing to do
        await asyncio.sleep(0)
    assert gate.run_cycles() is False
    assert failures == [] and cycles_done == []
    assert [c for c, _ in host.calls].count("process") == 1


class StallingStore:
    """A memory store whose synced writes, once `stalling`, wait for `release` (a disk that
    stops answering) and move the test's clock on by `stall_s` (how long it stalled)."""

    def __init__(self, clock: list[float], stall_s: float) -> None:
        self.inner = MemoryStore()
        self.clock = clock
        self.stall_s = stall_s
        self.stalling = False
        self.stalled = threading.Event()
        self.release = threading.Event()

    def write(self, batch: WriteBatch, sync: bool) -> None:
        if sync and self.stalling:
            self.stalled.set()
            self.release.wait(30)
            self.clock[0] += self.stall_s
        self.inner.write(batch, sync)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def leading_host(store: StallingStore) -> Host:
    """A one-replica shard on a real Host, led by it (so a SET is one synced cycle)."""
    host = Host(1, store, Sink(), random.Random(1), clock_ms=lambda: 0)  # type: ignore[arg-type]
    host.bootstrap_shard(1, [1])
    host.start()
    host.campaign(1)
    while host.process():
        pass
    assert host.is_leader(1)
    return host


def stall_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records
            if r.name == "quorumkv.node" and "disk stall" in r.getMessage()]


async def test_a_disk_stall_is_logged_once_while_it_lasts_and_once_when_it_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    """A synced write that does not return: the loop's tick logs one warning once the cycle
    has run longer than stall_ms (however often it checks), and the cycle's end one line
    with its duration."""
    caplog.set_level(logging.INFO, logger="quorumkv.node")
    clock = [100.0]
    store = StallingStore(clock, stall_s=0.5)
    host = leading_host(store)
    finished = asyncio.Event()
    gate = HostGate(host, BufferedTransport(Sink()), threaded=True, on_cycles_done=finished.set,
                    stall_ms=1_000, clock=lambda: clock[0])
    replies: list[object] = []
    store.stalling = True
    gate.submit(1, b"SET", (b"k", b"v"), replies.append)
    assert gate.run_cycles() is True
    await asyncio.get_running_loop().run_in_executor(None, store.stalled.wait, 30)
    gate.check_stall()
    assert stall_lines(caplog) == []  # not yet longer than stall_ms
    clock[0] += 2.0
    for _ in range(5):
        gate.check_stall()
    assert stall_lines(caplog) == [(logging.WARNING, "node 1: disk stall: a Ready cycle has "
                                    "been running for 2000 ms (its synced write has not "
                                    "returned, usually); every shard's writes and "
                                    "acknowledgements on this node wait for it")]
    store.release.set()
    await asyncio.wait_for(finished.wait(), 30)
    assert stall_lines(caplog)[1:] == [(logging.INFO, "node 1: disk stall over: the Ready "
                                        "cycle took 2500 ms")]
    assert gate.stalls == 1
    gate.close()


def test_a_stalled_cycle_on_the_loop_thread_is_logged_when_it_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    """Without a worker the loop cannot look during the cycle: a cycle that took longer than
    stall_ms is one warning when it ends; a quick one is nothing."""
    caplog.set_level(logging.INFO, logger="quorumkv.node")
    clock = [100.0]
    store = StallingStore(clock, stall_s=3.0)
    host = leading_host(store)
    gate = HostGate(host, BufferedTransport(Sink()), threaded=False, on_cycles_done=lambda: None,
                    stall_ms=1_000, clock=lambda: clock[0])
    replies: list[object] = []
    gate.submit(1, b"SET", (b"quick", b"v"), replies.append)
    gate.run_cycles()
    assert stall_lines(caplog) == [] and len(replies) == 1
    store.stalling = True
    store.release.set()
    gate.submit(1, b"SET", (b"slow", b"v"), replies.append)
    gate.run_cycles()
    assert len(replies) == 2
    assert stall_lines(caplog) == [(logging.WARNING, "node 1: disk stall: a Ready cycle took "
                                    "3000 ms (its synced write, usually); every shard's "
                                    "writes on this node waited for it")]
