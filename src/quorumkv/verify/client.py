"""Clients of a verify run: threads that perform a workload's operations and record them.

Theory of operation. Each client is one thread with one connection (redis-py, no retries,
bounded timeouts) to one node, as a Jepsen process is bound to a node; the server forwards to
the leader. A client connects *before* it invokes anything, so a node that cannot be reached
costs no operation; once the command may have left, only the reply decides:

    the command's reply                      ok (decoded for the checker)
    -UNKNOWN ...                             info: the outcome is unknown
    any other error (-TRYAGAIN, -ERR ...)    fail: the server says it did not happen
    timeout, connection lost, odd reply      info: it may have happened

so an operation whose fate is unknown is never a failure. Clients pace themselves to the run's
rate (an evenly spaced schedule per client, never bursting to catch up) and stop at the run's
stop event; an operation in flight then still completes or times out, and is recorded.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import redis

from quorumkv import limits
from quorumkv.history import OpType
from quorumkv.verify import interruption
from quorumkv.verify.connection import NodeConnection
from quorumkv.verify.hosts import NodeHost
from quorumkv.verify.recorder import Recorder
from quorumkv.verify.workloads import Request, UnexpectedReply, Workload

RECONNECT_PAUSE_S = 0.1
"""Seconds a client waits after failing to connect before it tries again."""


class Outcomes:
    """Counts of how operations ended, by kind ("ok", "fail: TRYAGAIN", "info: timeout"...)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts.most_common())


def connection_to(host: NodeHost) -> NodeConnection:
    return NodeConnection(host.client_host, host.client_port,
                          limits.verify_client_timeout_ms / 1000,
                          limits.verify_connect_timeout_ms / 1000)


def connected(connection: NodeConnection) -> bool:
    """Connect if not yet connected; False if the node cannot be reached now."""
    try:
        connection.connect()
    except (redis.RedisError, OSError):
        connection.close()
        return False
    return True


def perform(connection: NodeConnection, recorder: Recorder, outcomes: Outcomes, process: int,
            request: Request) -> tuple[OpType, object]:
    """Invoke `request` on a connected connection and record how it ended."""
    recorder.record(OpType.INVOKE, process, request.function, request.key, request.value)
    kind, output, outcome = _execute(connection, request)
    outcomes.count(outcome)
    recorder.record(kind, process, request.function, request.key, output)
    return kind, output


def _execute(connection: NodeConnection, request: Request) -> tuple[OpType, object, str]:
    try:
        reply = connection.command(*request.command)
    except redis.ResponseError as error:
        # redis-py strips the codes it knows (ERR, TRYAGAIN...) into the exception's class;
        # -UNKNOWN is not one of them, so its text still starts with the code.
        if str(error).startswith("UNKNOWN "):
            return OpType.INFO, None, "info: -UNKNOWN"
        return OpType.FAIL, None, f"fail: {_error_code(error)}"
    except redis.TimeoutError:
        connection.close()
        return OpType.INFO, None, "info: timeout"
    except (redis.ConnectionError, OSError):
        connection.close()
        return OpType.INFO, None, "info: connection lost"
    try:
        return OpType.OK, request.decode(reply), "ok"
    except UnexpectedReply:
        return OpType.INFO, None, "info: unexpected reply"


_ERROR_CODES: tuple[tuple[type[redis.ResponseError], str], ...] = (
    (redis.exceptions.TryAgainError, "-TRYAGAIN"),
    (redis.exceptions.ClusterDownError, "-CLUSTERDOWN"),
    (redis.exceptions.MovedError, "-MOVED"),
    (redis.exceptions.AskError, "-ASK"),
)


def _error_code(error: redis.ResponseError) -> str:
    """The Redis error code of a reply redis-py turned into an exception (its best guess)."""
    for kind, code in _ERROR_CODES:
        if isinstance(error, kind):
            return code
    return "-ERR or other: " + " ".join(str(error).split()[:2])


class Client(threading.Thread):
    """One process of the workload, bound to one node; see the module docstring."""

    def __init__(self, process: int, host: NodeHost, workload: Workload, recorder: Recorder,
                 outcomes: Outcomes, seed: int, interval_s: float,
                 stop: threading.Event) -> None:
        super().__init__(name=f"verify-client-{process}", daemon=True)
        self.process = process
        self.host = host
        self.workload = workload
        self.recorder = recorder
        self.outcomes = outcomes
        self.rng = random.Random(seed)
        self.interval_s = interval_s
        self.stop = stop
        self.connection = connection_to(host)

    def run(self) -> None:
        next_at = time.monotonic() + self.rng.uniform(0, self.interval_s)
        try:
            while not self.stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self.stop.wait(delay):
                    break
                next_at = max(next_at + self.interval_s, time.monotonic())
                if not connected(self.connection):
                    self.stop.wait(RECONNECT_PAUSE_S)
                    continue
                request = self.workload.next_request(self.process, self.rng)
                kind, output = perform(self.connection, self.recorder, self.outcomes,
                                       self.process, request)
                if kind is OpType.OK:
                    self.workload.observe(request, output)
        finally:
            self.connection.close()


def final_reads(hosts: list[NodeHost], workload: Workload, recorder: Recorder,
                outcomes: Outcomes, process: int) -> bool:
    """Perform the workload's final reads, each retried over the nodes until it completes;
    False if one never did within `limits.verify_final_read_attempts_max` attempts."""
    connections = [connection_to(host) for host in hosts]
    try:
        for request in workload.final_requests():
            if not _read_until_ok(connections, recorder, outcomes, process, request):
                return False
        return True
    finally:
        for connection in connections:
            connection.close()


def _read_until_ok(connections: list[NodeConnection], recorder: Recorder, outcomes: Outcomes,
                   process: int, request: Request) -> bool:
    for attempt in range(limits.verify_final_read_attempts_max):
        connection = connections[attempt % len(connections)]
        if not connected(connection):
            interruption.wait(RECONNECT_PAUSE_S)
            continue
        kind, _ = perform(connection, recorder, outcomes, process, request)
        if kind is OpType.OK:
            return True
        interruption.wait(RECONNECT_PAUSE_S)
    return False
