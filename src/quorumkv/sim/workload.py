"""The client workload: processes reading, writing and compare-and-setting a few keys.

Each client is one process of the history: it has at most one operation outstanding. It sends
each operation to the node it believes leads the key's shard: learned from a NotLeader hint,
otherwise the next node in round-robin order. Every operation is recorded in the history
(quorumkv.history) as an invocation and one completion:

- `ok`: the state machine answered (GET's value, SET's OK, CAS's 1 or 0);
- `fail`: a definite error (errors.* with `definite = True`, e.g. NotLeader before proposing),
  or the node was down when the request was sent (nothing reached it);
- `info`: errors.OutcomeUnknown (or any error with `definite = False`), no answer within the
  client timeout, or the node crashed while the operation was pending on it.

Values written are unique (`c<client>.<n>`), so a read names the write it saw. A CAS expects a
value the client has seen or written for the key, so that some succeed and some fail.

The workload only decides and records; the simulator submits commands to hosts and schedules
the clients' next moves.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from quorumkv.errors import NotLeader, QuorumKVError
from quorumkv.history.operation import Event, History, OpType
from quorumkv.kv.reply import ErrorReply
from quorumkv.sim.trace import Trace

FUNCTIONS = ("read", "write", "cas")


@dataclass(slots=True)
class Operation:
    """An operation a client has invoked and not yet seen complete."""

    number: int
    client: int
    function: str
    key: str
    shard_id: int
    value: object  # the history's invocation value
    invoked_us: int = 0
    node_id: int = 0  # the node it was sent to
    command: tuple[bytes, tuple[bytes, ...]] = (b"", ())


@dataclass(slots=True)
class Client:
    """One process: its outstanding operation and what it has learned."""

    client_id: int
    pending: Operation | None = None
    leader_guess: dict[int, int] = field(default_factory=dict)  # shard -> node
    written: int = 0
    seen: dict[str, str] = field(default_factory=dict)  # key -> last value seen or written


class Workload:
    """Clients, their choices, and the history they produce."""

    def __init__(
        self,
        rng: random.Random,
        trace: Trace,
        clients: int,
        keys: int,
        shard_ids: list[int],
        weights: tuple[int, int, int],
        nodes: Callable[[], list[int]],
    ) -> None:
        self._rng = rng
        self._trace = trace
        self.clients = [Client(client_id) for client_id in range(1, clients + 1)]
        self.keys = [f"k{number}" for number in range(keys)]
        self._shard_ids = shard_ids
        self._weights = list(weights) if sum(weights) else [1, 1, 0]
        self._nodes = nodes  # the nodes clients may contact, ascending
        self._written_values: dict[str, list[str]] = {key: [] for key in self.keys}
        self._numbers = 0
        self.history = History()
        self.counts = {"ok": 0, "fail": 0, "info": 0}
        self.anomalies: list[str] = []
        self.writes_ok: list[tuple[int, int, int]] = []  # (shard, invoked_us, completed_us)

    def shard_of(self, key: str) -> int:
        return self._shard_ids[self.keys.index(key) % len(self._shard_ids)]

    # ---- invoking ---------------------------------------------------------------------------

    def invoke(self, client: Client, now_us: int) -> Operation:
        """Choose and record the client's next operation; says which node to send it to."""
        function = self._rng.choices(FUNCTIONS, weights=self._weights)[0]
        key = self._rng.choice(self.keys)
        shard_id = self.shard_of(key)
        self._numbers += 1
        operation = Operation(self._numbers, client.client_id, function, key, shard_id, None,
                              invoked_us=now_us)
        self._fill(client, operation)
        operation.node_id = self._target(client, shard_id)
        client.pending = operation
        self.history.append(Event(OpType.INVOKE, client.client_id, function, key,
                                  operation.value, now_us))
        self._trace.record(now_us, f"client {client.client_id} invoke #{operation.number} "
                           f"{function} {key} {operation.value!r} -> node {operation.node_id}")
        return operation

    def _fill(self, client: Client, operation: Operation) -> None:
        key_bytes = operation.key.encode()
        if operation.function == "read":
            operation.command = (b"GET", (key_bytes,))
            return
        client.written += 1
        new = f"c{client.client_id}.{client.written}"
        self._written_values[operation.key].append(new)
        if operation.function == "write":
            operation.value = new
            operation.command = (b"SET", (key_bytes, new.encode()))
            return
        expected = self._expected_value(client, operation.key)
        operation.value = [expected, new]
        operation.command = (b"CAS", (key_bytes, expected.encode(), new.encode()))

    def _expected_value(self, client: Client, key: str) -> str:
        if key in client.seen and self._rng.random() < 0.8:
            return client.seen[key]
        candidates = self._written_values[key]
        return self._rng.choice(candidates[-4:]) if len(candidates) > 1 else "none"

    def _target(self, client: Client, shard_id: int) -> int:
        guess = client.leader_guess.get(shard_id, 0)
        nodes = self._nodes()
        if guess in nodes:
            return guess
        choice = self._rng.choice(nodes)
        client.leader_guess[shard_id] = choice
        return choice

    def _next_node(self, client: Client, shard_id: int, after: int) -> None:
        nodes = self._nodes()
        later = [node for node in nodes if node > after]
        client.leader_guess[shard_id] = later[0] if later else nodes[0]

    # ---- completing -------------------------------------------------------------------------

    def complete(self, client: Client, operation: Operation, result: object, now_us: int) -> str:
        """Record the outcome of an answered operation; returns "ok", "fail" or "info"."""
        if isinstance(result, BaseException):
            return self._error(client, operation, result, now_us)
        if isinstance(result, ErrorReply):
            self.anomalies.append(f"operation #{operation.number} {operation.command[0]!r} "
                                  f"answered an error reply {result!r}")
            return self._finish(client, operation, OpType.FAIL, None, now_us, repr(result))
        output = self._output(operation, result)
        if output is _UNEXPECTED:
            self.anomalies.append(f"operation #{operation.number} {operation.command[0]!r} "
                                  f"answered {result!r}, which it cannot answer")
            return self._finish(client, operation, OpType.INFO, None, now_us, repr(result))
        self._learn(client, operation, output)
        if operation.function != "read":
            self.writes_ok.append((operation.shard_id, operation.invoked_us, now_us))
        return self._finish(client, operation, OpType.OK, output, now_us, repr(output))

    def _output(self, operation: Operation, result: object) -> object:
        if operation.function == "read":
            if result is None:
                return None
            return result.decode() if isinstance(result, bytes) else _UNEXPECTED
        if operation.function == "write":
            return operation.value if result is not None else _UNEXPECTED
        if isinstance(result, bool) or result not in (0, 1):
            return _UNEXPECTED
        return result == 1

    def _learn(self, client: Client, operation: Operation, output: object) -> None:
        if operation.function == "read" and isinstance(output, str):
            client.seen[operation.key] = output
        elif operation.function == "write":
            client.seen[operation.key] = str(operation.value)
        elif operation.function == "cas" and output is True:
            client.seen[operation.key] = str(operation.value[1])  # type: ignore[index]

    def _error(self, client: Client, operation: Operation, error: BaseException,
               now_us: int) -> str:
        if isinstance(error, NotLeader) and error.leader_id:
            client.leader_guess[operation.shard_id] = error.leader_id
        else:
            self._next_node(client, operation.shard_id, operation.node_id)
        definite = isinstance(error, QuorumKVError) and error.definite
        kind = OpType.FAIL if definite else OpType.INFO
        return self._finish(client, operation, kind, None, now_us, type(error).__name__)

    def timeout(self, client: Client, operation: Operation, now_us: int) -> None:
        """No answer in time: the outcome is unknown; try another node next."""
        self._next_node(client, operation.shard_id, operation.node_id)
        self._finish(client, operation, OpType.INFO, None, now_us, "timeout")

    def node_down(self, client: Client, operation: Operation, now_us: int,
                  crashed: bool) -> None:
        """The node was down when sent to (fail: nothing reached it), or crashed with the
        operation pending (info: it may have been proposed)."""
        self._next_node(client, operation.shard_id, operation.node_id)
        kind = OpType.INFO if crashed else OpType.FAIL
        self._finish(client, operation, kind, None, now_us,
                     "node crashed" if crashed else "node down")

    def _finish(self, client: Client, operation: Operation, kind: OpType, output: object,
                now_us: int, why: str) -> str:
        client.pending = None
        value = output if kind is OpType.OK else None
        self.history.append(Event(kind, client.client_id, operation.function, operation.key,
                                  value, now_us))
        self.counts[kind.value] += 1
        self._trace.record(now_us, f"client {client.client_id} {kind.value} "
                           f"#{operation.number} {why}")
        return kind.value


_UNEXPECTED = object()
