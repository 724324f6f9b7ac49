"""The host gate: one thread at a time in the host, inputs and outputs kept in order."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from quorumkv.server.host_gate import BufferedTransport, HostGate


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
