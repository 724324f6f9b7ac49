"""Pipelining clients in the simulator: per-connection order under faults (issue 11, item 1).

Theory of operation. Each pipelined client is one connection that sends a burst of SET and GET
commands at once on its own keys (spread over the shards), waits for every answer, thinks, and
sends the next burst. What the server's dispatcher does for a connection is done here with the
same pure rule, `cluster.pipeline_order.PipelineOrder`: a unit starts only when the rule lets it;
its route is the node leading its shard (the simulator's direct submit to that node's host stands
for a forward over one in-order link); a retryable refusal ("not the leader", a superseded
proposal, a read that could not confirm leadership) goes back to the order, which sends it
again or answers it with a definite error; a unit not answered within the client timeout is in
doubt (a write) or failed (a read). Results are handled in their own events, never inside the
host's completion callback.

The check. The keys are the client's own, so what a read on its connection may return is
exactly known: the value of the last write to the key acknowledged earlier on the connection,
or of a write sent between that one and the read whose outcome is in doubt (nil if no write
was acknowledged before). A read returning anything else (a write sent after it, one that
failed definitely, or an older value than an acknowledged write) is a violation: a command
overtook another of its connection.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quorumkv import errors
from quorumkv.cluster.pipeline_order import PipelineOrder, Unit, UnitState
from quorumkv.kv.reply import ErrorReply

if TYPE_CHECKING:
    from quorumkv.sim.simulator import Simulation

EVENT = "pipelined"
"""The simulator event kind this module handles (payloads are tuples, first item the verb)."""

BURST_MAX = 12
KEYS_PER_CLIENT = 3

_RETRYABLE = (errors.NotLeader, errors.LeaderTransferInProgress, errors.ProposalSuperseded,
              errors.ReadTimeout)


@dataclass(slots=True)
class Sent:
    """One command of a connection, in the order sent, and how it ended."""

    index: int
    key: str
    shard_id: int
    write: bool
    value: str  # written (SET), or read (GET, once answered; "" for nil)
    outcome: str = ""  # "ok", "fail" (definitely not applied), "info" (in doubt)
    unit: Unit | None = None
    node_id: int = 0


@dataclass(slots=True)
class Connection:
    client_id: int
    order: PipelineOrder
    sent: list[Sent] = field(default_factory=list)
    open: int = 0  # commands of the current burst not yet answered
    attempt: dict[int, int] = field(default_factory=dict)  # sent index -> start number
    held_until_us: int = 0  # after a refusal nothing starts before (as the dispatcher's tick)


class PipelinedClients:
    """The pipelined connections of one run, their events and their check."""

    def __init__(self, simulation: Simulation, rng: random.Random, clients: int,
                 new_order: Callable[[], PipelineOrder] = PipelineOrder) -> None:
        """`new_order`: the rule each connection obeys (tests give a broken one, to see the
        check catch it)."""
        self.sim = simulation
        self.rng = rng
        self.connections = [Connection(client_id, new_order())
                            for client_id in range(1, clients + 1)]
        self.counts = {"ok": 0, "fail": 0, "info": 0}
        self._starts = 0

    def start(self) -> None:
        think = self.sim.options.think_max_us
        for connection in self.connections:
            self.sim.queue.push(self.rng.randint(0, think), EVENT,
                                ("burst", connection.client_id))

    def on_event(self, payload: Any) -> None:
        verb, client_id, *rest = payload
        connection = self.connections[client_id - 1]
        if verb == "burst":
            self._burst(connection)
        elif verb == "done":
            self._done(connection, *rest)
        elif verb == "timeout":
            self._timeout(connection, *rest)

    # ---- sending ---------------------------------------------------------------------------

    def _burst(self, connection: Connection) -> None:
        if self.sim.phase == "end":
            return
        shard_ids = self.sim.shard_ids
        for _ in range(self.rng.randint(1, BURST_MAX)):
            number = self.rng.randrange(KEYS_PER_CLIENT)
            key = f"p{connection.client_id}.{number}"
            write = self.rng.random() < 0.5
            index = len(connection.sent)
            sent = Sent(index, key, shard_ids[number % len(shard_ids)], write,
                        f"p{connection.client_id}.{index}" if write else "")
            sent.unit = connection.order.add(connection.order.new_command(), sent.shard_id,
                                             write, sent)
            connection.sent.append(sent)
            connection.open += 1
        self._pump(connection)

    def _route_of(self, shard_id: int) -> Hashable | None:
        return self.sim.leader(shard_id) or None

    def _pump(self, connection: Connection) -> None:
        order = connection.order
        for unit in order.resolve():
            self._answer(connection, unit.payload, "fail", "", effect=False)
        now = self.sim.queue.now_us
        if now < connection.held_until_us:
            return  # a retry event is due then
        started, _ = order.start_ready(self._route_of)  # no leader: the next pump retries
        for unit in started:
            self._send(connection, unit.payload, int(unit.route))  # type: ignore[call-overload]
        if order.waiting() and not started and not order.unfinished() - order.waiting():
            self._retry_later(connection)

    def _retry_later(self, connection: Connection) -> None:
        """Pump again a tick from now (no leader known, or a leader refused a unit: the
        dispatcher, too, sends again on its next tick, not at network speed)."""
        connection.held_until_us = self.sim.queue.now_us + self.sim.options.tick_us
        self.sim.queue.push(connection.held_until_us, EVENT,
                            ("done", connection.client_id, -1, -1, None))

    def _send(self, connection: Connection, sent: Sent, node_id: int) -> None:
        self._starts += 1
        attempt = self._starts
        connection.attempt[sent.index] = attempt
        sent.node_id = node_id
        name, args = ((b"SET", (sent.key.encode(), sent.value.encode())) if sent.write
                      else (b"GET", (sent.key.encode(),)))
        sim = self.sim
        queue = sim.queue

        def done(result: object) -> None:  # inside the host's cycle: handle it as an event
            queue.push(queue.now_us, EVENT, ("done", connection.client_id, sent.index,
                                             attempt, result))

        sim.submit_to(node_id, sent.shard_id, name, args, done)
        timeout = queue.now_us + sim.options.operation_timeout_ticks * sim.options.tick_us
        queue.push(timeout, EVENT, ("timeout", connection.client_id, sent.index, attempt))

    # ---- answers ---------------------------------------------------------------------------

    def _current(self, connection: Connection, index: int, attempt: int) -> Sent | None:
        """The command if this answer is for its current start (not a stale one)."""
        if index < 0 or connection.attempt.get(index) != attempt:
            return None
        sent = connection.sent[index]
        unit = sent.unit
        if sent.outcome or unit is None or unit.state is not UnitState.STARTED:
            return None
        return sent

    def _done(self, connection: Connection, index: int, attempt: int, result: object) -> None:
        sent = self._current(connection, index, attempt)
        if sent is not None:
            if isinstance(result, _RETRYABLE):
                del connection.attempt[sent.index]
                connection.order.refuse(sent.unit)  # type: ignore[arg-type]
                self._retry_later(connection)
            elif isinstance(result, errors.OutcomeUnknown):
                self._answer(connection, sent, "info", "", effect=True)
            elif isinstance(result, BaseException | ErrorReply):
                definite = getattr(result, "definite", True)
                self._answer(connection, sent, "fail" if definite else "info", "",
                             effect=not definite)
            else:
                value = result.decode() if isinstance(result, bytes) else ""
                self._answer(connection, sent, "ok", value, effect=True)
        self._pump(connection)

    def _timeout(self, connection: Connection, index: int, attempt: int) -> None:
        sent = self._current(connection, index, attempt)
        if sent is None:
            return
        # A write may still be applied: in doubt. A read changed nothing: failed.
        self._answer(connection, sent, "info" if sent.write else "fail", "",
                     effect=sent.write)
        self._pump(connection)

    def _answer(self, connection: Connection, sent: Sent, outcome: str, value: str,
                effect: bool) -> None:
        sent.outcome = outcome
        if not sent.write:
            sent.value = value
        self.counts[outcome] += 1
        connection.attempt.pop(sent.index, None)
        connection.order.complete(sent.unit, effect)  # type: ignore[arg-type]
        connection.open -= 1
        if connection.open == 0:
            delay = self.rng.randint(0, self.sim.options.think_max_us)
            self.sim.queue.push(self.sim.queue.now_us + delay, EVENT,
                                ("burst", connection.client_id))

    # ---- checking --------------------------------------------------------------------------

    def violations(self) -> list[str]:
        """Reads that missed a write acknowledged earlier on their connection, or saw one
        sent after them (module docstring)."""
        found = []
        for connection in self.connections:
            found += check_connection(connection.client_id, connection.sent)
        return found


def check_connection(client_id: int, sent: list[Sent]) -> list[str]:
    """The violations of one connection's history (each command in the order sent)."""
    found = []
    allowed: dict[str, set[str]] = {}  # key -> values a read may return now ("": nil)
    for command in sent:
        possible = allowed.setdefault(command.key, {""})
        if command.write:
            if command.outcome == "ok":
                allowed[command.key] = {command.value}
            elif command.outcome == "info":
                possible.add(command.value)
        elif command.outcome == "ok" and command.value not in possible:
            found.append(f"connection {client_id}: command {command.index} GET {command.key} "
                         f"returned {command.value or 'nil'!r}, but the writes sent before it "
                         f"allow only {sorted(possible)}")
    return found
