"""The one way into the host, so that its Ready cycles can run on a worker thread.

Theory of operation. A Ready cycle ends in a synced RocksDB write. Run on the event loop, that
fsync stops the node from reading its sockets; run on a worker thread, the loop reads and
parses the next batch between the cycle's Python steps, and commands gather into larger
batches meanwhile. (rocksdict holds the GIL during the synced write itself, so the fsync is
not overlapped yet: docs/performance.md.) The host is
not thread-safe, and need not be: the gate makes sure only one thread touches it at a time.

- While no cycle runs, the loop thread calls the host directly (`submit`, `receive`, `tick`).
- `start_cycles()` hands the host to the worker, which runs `host.process()` until there is no
  work (bounded). Meanwhile, inputs arriving on the loop thread are queued in arrival order
  and delivered when the worker is done, before the next cycle starts: the host sees exactly
  the inputs it would have seen, only later.
- What the host produces on the worker (messages to send, completions of client commands) is
  buffered and handed to the loop thread when the cycles end, in the order produced; so the
  Ready order (persist, then send, then apply, then answer) is kept, and nothing outside the
  host is touched from the worker.

The hand-over is through the executor's future, whose completion the loop observes with
`call_soon_threadsafe`: everything the worker wrote happens-before the loop reads it.

Closing. `close()` is the end of the driver: from then on `run_cycles()` runs nothing (the node
stops its driver first, and an input that still slips in, such as a peer's frame read while the
sockets close, must not start a cycle on an executor that is shut down). A cycle still running
on the worker is waited for, and its outputs and completions are handed over inside `close()`,
on the loop thread, while the node's connections are still open; the hand-over the worker had
queued with `call_soon_threadsafe` then finds nothing left to do and does not call
`on_cycles_done` (which would schedule the driver again). Without this order a SIGTERM shortly
after start, with elections still producing Readies, sometimes scheduled a cycle after the
executor's shutdown: "cannot schedule new futures after shutdown", reported as a bug.

Disk stalls. A Ready cycle normally takes about one fsync. One still running after
`ready_cycle_stall_ms` means the disk is stalling (every shard's writes and acknowledgements on
this node wait for it): the loop thread notices it on its tick (`check_stall`) while the cycle
runs on the worker, and logs one WARNING line; the end of the cycle logs one INFO line with its
duration. A cycle run on the loop thread (no worker, or nothing to persist) can only be
measured when it ends: one WARNING line then.

Reads of the host's state for routing and INFO (`is_leader`, `leader_of`, `status`) may run
while a cycle is in progress; they see a value that is at most one cycle old, which is all a
routing hint needs (the host checks leadership again when the command is submitted).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from quorumkv import limits
from quorumkv.codec.peer import PeerRecord
from quorumkv.host.host import Host, Transport

Done = Callable[[object], None]

log = logging.getLogger("quorumkv.node")


class BufferedTransport:
    """The host's transport: passes sends through on the loop thread, buffers them on the
    worker thread until the cycles end."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.loop_thread = threading.get_ident()
        self.buffered: list[tuple[int, PeerRecord]] = []

    def send(self, target_node: int, message: PeerRecord) -> None:
        if threading.get_ident() == self.loop_thread:
            self.transport.send(target_node, message)  # type: ignore[arg-type]
        else:
            self.buffered.append((target_node, message))

    def release(self) -> None:
        buffered, self.buffered = self.buffered, []
        for target, message in buffered:
            self.transport.send(target, message)  # type: ignore[arg-type]


class HostGate:
    """Serialises every use of a Host between the event loop and one worker thread."""

    def __init__(self, host: Host, buffered_transport: BufferedTransport, threaded: bool,
                 on_cycles_done: Callable[[], None],
                 after_each_cycle: Callable[[], None] = lambda: None,
                 on_failure: Callable[[BaseException], None] = lambda error: None,
                 stall_ms: float = limits.ready_cycle_stall_ms,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.stall_ms = stall_ms
        self._clock = clock  # seconds
        self._stall_lock = threading.Lock()
        self._cycle_started: float | None = None  # the running cycle's start (either thread)
        self._stall_reported: float | None = None  # the start of the cycle reported stalled
        self.stalls = 0
        self.threaded = threaded
        self._transport = buffered_transport
        self._on_cycles_done = on_cycles_done
        self._after_each_cycle = after_each_cycle  # on the loop thread only
        self._on_failure = on_failure  # an exception of the worker's cycles
        self.more_work = False  # the last run stopped at driver_cycles_per_iteration_max
        self._busy = False
        self._deferred: list[Callable[[], None]] = []
        self._completions: list[tuple[Done, object]] = []
        self._loop_thread = threading.get_ident()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ready") if threaded else None
        self._in_flight: Future[int] | None = None  # the worker's cycles, until handed over
        self._closed = False
        self.cycles = 0

    # ---- inputs ----------------------------------------------------------------------------

    def submit(self, shard_id: int, name: bytes, args: tuple[bytes, ...], done: Done) -> None:
        safe_done = self._loop_side(done)
        self._call(lambda: self.host.submit(shard_id, name, args, safe_done))

    def receive(self, message: Any) -> None:
        self._call(lambda: self.host.receive(message))

    def tick(self) -> None:
        self._call(self.host.tick)

    def missed_ticks(self, count: int) -> None:
        self._call(lambda: self.host.missed_ticks(count))

    def transfer_leader(self, shard_id: int, target: int) -> None:
        self._call(lambda: self.host.transfer_leader(shard_id, target))

    def call(self, action: Callable[[], None]) -> None:
        """Run `action` (which may use the host or its store) on the loop thread while no
        cycle runs: now, or before the next cycle starts."""
        self._call(action)

    def _call(self, action: Callable[[], None]) -> None:
        if self._busy:
            self._deferred.append(action)
        else:
            action()

    def _loop_side(self, done: Done) -> Done:
        """A completion that, fired on the worker, waits to be run on the loop thread."""
        def complete(result: object) -> None:
            if threading.get_ident() == self._loop_thread:
                done(result)
            else:
                self._completions.append((done, result))
        return complete

    # ---- observation (any time) ------------------------------------------------------------

    def is_leader(self, shard_id: int) -> bool:
        return self.host.is_leader(shard_id)

    def leader_of(self, shard_id: int) -> int:
        return self.host.leader_of(shard_id)

    def hosts(self, shard_id: int) -> bool:
        return self.host.hosts(shard_id)

    @property
    def busy(self) -> bool:
        return self._busy

    # ---- cycles ----------------------------------------------------------------------------

    def run_cycles(self) -> bool:
        """Deliver queued inputs and run Ready cycles until there is no work: on the loop
        thread, or started on the worker (returns True if it still runs there). After
        `close()` it runs nothing and returns False."""
        if self._busy:
            return True
        if self._closed:
            return False
        self._deliver_deferred()
        if self._executor is None or not self._has_ready():
            # Nothing to persist (or no worker): run here. With no Ready, process() only
            # fires completions or resumes a cycle stalled by a full disk.
            self._record(self._process_until_idle(self._after_each_cycle))
            return False
        self._busy = True
        loop = asyncio.get_running_loop()
        future = self._in_flight = self._executor.submit(self._process_until_idle)
        future.add_done_callback(
            lambda finished: loop.call_soon_threadsafe(self._finish, finished))
        return True

    def _has_ready(self) -> bool:
        host = self.host
        return any(host.replica(s).node.has_ready() for s in host.shard_ids())

    def _process_until_idle(self, after_each: Callable[[], None] | None = None) -> int:
        cycles = 0
        while cycles < limits.driver_cycles_per_iteration_max and self._process_one():
            cycles += 1
            if after_each is not None:
                after_each()
        return cycles

    def _process_one(self) -> bool:
        """One Ready cycle, timed for `check_stall`."""
        started = self._cycle_started = self._clock()
        try:
            return self.host.process()
        finally:
            self._cycle_ended(started)

    def _cycle_ended(self, started: float) -> None:
        elapsed_ms = (self._clock() - started) * 1000
        with self._stall_lock:
            self._cycle_started = None
            reported = self._stall_reported == started
            self._stall_reported = None
        if reported:
            log.info("node %d: disk stall over: the Ready cycle took %.0f ms",
                     self.host.node_id, elapsed_ms)
        elif elapsed_ms >= self.stall_ms:
            self.stalls += 1
            log.warning("node %d: disk stall: a Ready cycle took %.0f ms (its synced write, "
                        "usually); every shard's writes on this node waited for it",
                        self.host.node_id, elapsed_ms)

    def check_stall(self) -> None:
        """On the loop thread (every tick): log a cycle running on the worker for longer than
        `stall_ms`, once."""
        with self._stall_lock:
            started = self._cycle_started
            if started is None or self._stall_reported == started:
                return
            elapsed_ms = (self._clock() - started) * 1000
            if elapsed_ms < self.stall_ms:
                return
            self._stall_reported = started
        self.stalls += 1
        log.warning("node %d: disk stall: a Ready cycle has been running for %.0f ms (its "
                    "synced write has not returned, usually); every shard's writes and "
                    "acknowledgements on this node wait for it", self.host.node_id,
                    elapsed_ms)

    def _record(self, cycles: int) -> None:
        self.cycles += cycles
        self.more_work = cycles >= limits.driver_cycles_per_iteration_max

    def _finish(self, finished: Future[int]) -> None:
        if finished is not self._in_flight:
            return  # already handed over by close()
        self._in_flight = None
        self._busy = False
        self._transport.release()
        completions, self._completions = self._completions, []
        for done, result in completions:
            done(result)
        try:
            self._record(finished.result())
        except Exception as error:  # the worker's cycle raised: a bug, or a storage failure
            self._on_failure(error)
            return
        if not self._closed:
            self._on_cycles_done()

    def _deliver_deferred(self) -> None:
        while self._deferred:
            deferred, self._deferred = self._deferred, []
            for action in deferred:
                action()

    def has_deferred(self) -> bool:
        return bool(self._deferred)

    def close(self) -> None:
        """Stop driving the host: wait for a cycle running on the worker, hand its outputs
        and completions over here (on the loop thread), shut the worker down. Call on the
        loop thread; afterwards `run_cycles()` runs nothing."""
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self._in_flight is not None:
            self._finish(self._in_flight)
