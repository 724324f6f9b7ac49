"""Where a client's data command runs: here, at the shard's leader, or after a leader is known.

Theory of operation. Any node accepts any command. For each data command the dispatcher
creates a `Request`, queues it in its connection's order (`cluster.pipeline_order`: a command
takes effect after those sent before it on the connection; docs/server.md, "Order on a
connection") and, when the order lets it start, routes it:

- this node leads the shard: `host.submit` runs it (writes through Raft, reads after
  ReadIndex);
- another node leads it: the command is forwarded to that node (`ForwardRequest`); the leader
  runs it through its own host and answers (`ForwardResponse`), and the reply is relayed;
- no leader is known: the request is parked until one is elected, at most
  `leader_wait_election_timeouts` election timeouts, then answered -TRYAGAIN.

The failure semantics a client relies on live here (docs/server.md):
- a definite error (the command was refused before it was proposed, or the entry at its index
  is known to be another one) is returned as is, or, when it only says "not the leader",
  handed back to the connection's order, which has it sent again on the next tick or leader
  change, or answered -TRYAGAIN if a later command of the connection took effect meanwhile;
- once a write may have been proposed (submitted to a leader's host, or forwarded over a live
  connection), only its outcome or `-UNKNOWN` can answer it: a timeout
  (`request_timeout_ms`), the loss of the connection to the leader, or this node's replica
  knowing another leader give `errors.OutcomeUnknown` at once, never a false
  OK and never a definite error. Reads change nothing: a read forwarded to a leader that went
  away is sent again, a read in doubt is answered -TRYAGAIN.

`request_timeout_ms` counts from the moment a request is first sent (a command waiting for its
turn is not charged for it), so requests expire in the order first sent, and `tick()` finds the
expired ones at the front of an insertion-ordered dict. Everything runs on the event loop
thread, called by the node's driver; nothing here awaits.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from quorumkv import errors, limits
from quorumkv.cluster.pipeline_order import PipelineOrder, Unit
from quorumkv.codec.peer import ForwardOutcome, ForwardRequest, ForwardResponse, PeerRecord
from quorumkv.kv.reply import ErrorReply, Reply, reply_from_wire, reply_to_wire

ReplyTo = Callable[[Reply], None]

_RETRYABLE = (errors.NotLeader, errors.LeaderTransferInProgress, errors.ProposalSuperseded,
              errors.ReadTimeout)
"""Definite errors that only say "not here, not now": the dispatcher routes the command again."""


class HostLike(Protocol):
    def is_leader(self, shard_id: int) -> bool: ...

    def leader_of(self, shard_id: int) -> int: ...

    def hosts(self, shard_id: int) -> bool: ...

    def submit(self, shard_id: int, name: bytes, args: tuple[bytes, ...],
               done: Callable[[object], None]) -> None: ...


class SenderLike(Protocol):
    def send_record(self, target_node: int, record: PeerRecord) -> bool: ...

    def is_connected(self, node_id: int) -> bool: ...


def command_bytes(name: bytes, args: tuple[bytes, ...]) -> int:
    """An upper bound of a command's size as a log entry (its msgpack record and timestamp)."""
    return len(name) + sum(len(argument) + 5 for argument in args) + 32


def error_reply(error: BaseException) -> ErrorReply:
    """The client's reply for an exception a command ended with."""
    if isinstance(error, errors.QuorumKVError):
        return ErrorReply(f"{error.reply_prefix} {error}".encode())
    return ErrorReply(f"ERR internal error: {error.__class__.__name__}: {error}".encode())


class _State(enum.Enum):
    WAITING = 0  # not sent anywhere: behind earlier commands of its connection, or no leader
    LOCAL = 1
    FORWARDED = 2
    DONE = 3


LOCAL = ("local",)
"""The route of a unit this node's own replica runs (it leads the shard); a forwarded unit's
route is the node id it is forwarded to."""


class Request:
    """One client data command (or one shard's part of a split command) on this node."""

    __slots__ = ("number", "shard_id", "name", "args", "write", "reply_to", "deadline_ms",
                 "state", "maybe_applied", "parked_deadline_ms", "forwarded_to", "order",
                 "unit")

    def __init__(self, number: int, shard_id: int, name: bytes, args: tuple[bytes, ...],
                 write: bool, reply_to: ReplyTo, order: PipelineOrder) -> None:
        self.number = number
        self.shard_id = shard_id
        self.name = name
        self.args = args
        self.write = write
        self.reply_to = reply_to
        self.deadline_ms = 0.0  # set when first sent: request_timeout_ms counts from there
        self.state = _State.WAITING
        self.maybe_applied = False  # a write that a leader may have proposed
        self.parked_deadline_ms = 0.0
        self.forwarded_to = 0
        self.order = order
        self.unit: Unit


class Dispatcher:
    """Routes data commands of one node; serves commands forwarded to it by other nodes."""

    def __init__(self, node_id: int, host: HostLike, sender: SenderLike,
                 now_ms: Callable[[], float], is_write: Callable[[bytes], bool],
                 election_timeout_ms: float,
                 request_timeout_ms: float = limits.request_timeout_ms,
                 validate: Callable[[bytes, tuple[bytes, ...]], Reply] = lambda n, a: None,
                 remote_leader: Callable[[int], int] = lambda shard_id: 0
                 ) -> None:
        self.node_id = node_id
        self.remote_leader = remote_leader  # where to send a shard not hosted here (0: wait)
        self.learned_leaders: dict[int, int] = {}  # shard -> leader named by a forward answer
        self.served: dict[int, list[int]] = {}  # shard -> [reads, writes] run here as leader
        self.validate = validate
        self.host = host
        self.sender = sender
        self.now_ms = now_ms
        self.is_write = is_write
        self.leader_wait_ms = election_timeout_ms * limits.leader_wait_election_timeouts
        self.request_timeout_ms = request_timeout_ms
        self._requests: dict[int, Request] = {}  # every request not yet answered
        self._closing = False
        self._sends = 0
        self._sent: dict[int, Request] = {}  # by number, in the order first sent = deadline
        self._parked: dict[int, Request] = {}  # next in their connection's order, no leader
        self._forwarded: dict[int, Request] = {}  # by number, which is the forward request id
        # shard -> node forwarded to -> requests by number (to find forwards gone stale)
        self._forwarded_shards: dict[int, dict[int, dict[int, Request]]] = {}
        self._held: dict[int, PipelineOrder] = {}  # orders with refused units: wait a tick
        self._to_pump: list[PipelineOrder] = []
        self._pumping = False
        self._next_number = 1
        self._leaders_seen: dict[int, int] = {}
        self.forwarded_total = 0
        self.served_forwards = 0
        self.timeouts = 0
        self.abandoned_forwards = 0  # forwards settled because their leader went away

    # ---- client side -------------------------------------------------------------------------

    def submit(self, shard_id: int, name: bytes, args: tuple[bytes, ...],
               reply_to: ReplyTo, order: PipelineOrder | None = None, command: int = 0,
               split: bool = False) -> None:
        """Run a data command wherever its shard's leader is; `reply_to` is called once.

        With `order` (a client connection's), the command takes effect after the commands
        its connection sent before it (`command`, from order.new_command(); the units of a
        `split` command share it): it is sent only when cluster.pipeline_order allows.

        Arguments are checked here unless this node leads the shard (its host checks them as
        it submits): a bad command is refused definitely, without a round trip."""
        if not self.host.is_leader(shard_id):
            invalid = self.validate(name, args)
            if invalid is not None:
                reply_to(invalid)
                return
        write = self.is_write(name)
        if write and command_bytes(name, args) > limits.proposal_bytes_max:
            reply_to(ErrorReply(
                b"ERR the command is %d bytes, over the largest command the log accepts "
                b"(proposal_bytes_max, %d bytes)" % (command_bytes(name, args),
                                                      limits.proposal_bytes_max)))
            return
        if order is None:
            order = PipelineOrder()
            command = order.new_command()
        number = self._next_number
        self._next_number += 1
        request = Request(number, shard_id, name, args, write, reply_to, order)
        request.unit = order.add(command, shard_id, write, request, split)
        self._requests[number] = request
        self._pump(order)

    def _route_of(self, shard_id: int) -> Hashable | None:
        """The way a unit of `shard_id` would go now (cluster.pipeline_order's route)."""
        if self.host.is_leader(shard_id):
            return LOCAL
        leader = self._leader(shard_id)
        if leader and leader != self.node_id and self.sender.is_connected(leader):
            return leader
        return None

    def _pump(self, order: PipelineOrder) -> None:
        """Settle the order's refusals and send what it lets start. Reentrant calls (a unit
        answered while sending another) queue the order instead of recursing."""
        self._to_pump.append(order)
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._to_pump:
                self._pump_once(self._to_pump.pop())
        finally:
            self._pumping = False

    def _pump_once(self, order: PipelineOrder) -> None:
        for unit in order.resolve():
            request: Request = unit.payload
            self._finish(request, ErrorReply(
                b"TRYAGAIN shard %d: the leader changed while later commands of this "
                b"connection were already running; this command was not applied, retry"
                % request.shard_id), effect=False)
        if id(order) in self._held or self._closing:
            return  # a refused unit goes again on the next tick or leader change
        started, unrouted = order.start_ready(self._route_of)
        for unit in started:
            self._start(unit.payload, unit.route)
        if unrouted is not None:
            self._park(unrouted.payload)

    def _start(self, request: Request, route: Hashable) -> None:
        self._sends += 1
        self._parked.pop(request.number, None)
        if request.number not in self._sent:
            request.deadline_ms = self.now_ms() + self.request_timeout_ms
            self._sent[request.number] = request
        if route == LOCAL:
            self._run_locally(request)
        else:
            self._forward(request, int(route))  # type: ignore[call-overload]

    def _count_served(self, shard_id: int, write: bool) -> None:
        """Commands this node ran as the shard's leader (shard statistics)."""
        totals = self.served.setdefault(shard_id, [0, 0])
        totals[1 if write else 0] += 1

    def _run_locally(self, request: Request) -> None:
        self._count_served(request.shard_id, request.write)
        request.state = _State.LOCAL
        request.maybe_applied = request.write
        self.host.submit(request.shard_id, request.name, request.args,
                         lambda result: self._local_done(request, result))

    def _local_done(self, request: Request, result: object) -> None:
        if request.state is not _State.LOCAL:
            return  # answered already (timeout) or rerouted
        if isinstance(result, _RETRYABLE):
            self._refused(request)
        elif isinstance(result, BaseException):
            self._finish(request, error_reply(result))
        else:
            self._finish(request, result)  # type: ignore[arg-type]

    def _refused(self, request: Request) -> None:
        """A leader said "not me" (definitely not applied): send it again if its connection's
        order allows, on the next tick or leader change (so that a stale leader hint does not
        bounce it back and forth at network speed)."""
        self._unforward(request)
        request.state = _State.WAITING
        request.maybe_applied = False
        request.order.refuse(request.unit)
        self._held[id(request.order)] = request.order
        self._pump(request.order)

    def _forward(self, request: Request, leader: int) -> None:
        if len(self._forwarded) >= limits.forward_requests_pending_max:
            self._finish(request, ErrorReply(
                b"TRYAGAIN too many commands waiting for the leader's answer; retry later"),
                effect=False)
            return
        record = ForwardRequest(self.node_id, request.number, request.shard_id, request.name,
                                request.args)
        if not self.sender.send_record(leader, record):
            self._finish(request, ErrorReply(
                b"TRYAGAIN shard %d: the connection to leader node %d cannot take more; "
                b"the command was not sent, retry" % (request.shard_id, leader)), effect=False)
            return
        request.state = _State.FORWARDED
        request.forwarded_to = leader
        request.maybe_applied = request.write
        self._forwarded[request.number] = request
        targets = self._forwarded_shards.setdefault(request.shard_id, {})
        targets.setdefault(leader, {})[request.number] = request
        self.forwarded_total += 1

    def _unforward(self, request: Request) -> None:
        if self._forwarded.pop(request.number, None) is None:
            return
        targets = self._forwarded_shards[request.shard_id]
        requests = targets[request.forwarded_to]
        del requests[request.number]
        if not requests:
            del targets[request.forwarded_to]
            if not targets:
                del self._forwarded_shards[request.shard_id]

    def on_forward_response(self, response: ForwardResponse) -> None:
        request = self._forwarded.get(response.request_id)
        if request is not None and response.leader_id:
            self.learned_leaders[request.shard_id] = response.leader_id
        if request is None or request.state is not _State.FORWARDED:
            return  # answered already (timeout, lost connection, leader gone)
        if response.outcome is ForwardOutcome.RETRY:
            self._refused(request)
            return
        try:
            reply = reply_from_wire(response.reply)
        except (ValueError, TypeError, IndexError) as error:
            reply = error_reply(errors.OutcomeUnknown(
                request.shard_id, f"the leader's reply was unreadable: {error}"))
        self._finish(request, reply)

    def on_peer_down(self, node_id: int) -> None:
        """The connection to `node_id` was lost: what was forwarded there may never be answered."""
        self._abandon([r for r in self._forwarded.values() if r.forwarded_to == node_id],
                      f"the connection to leader node {node_id} was lost")

    def _abandon(self, lost: list[Request], reason: str) -> None:
        """Settle forwards whose answer may never come: a write may have been applied
        (-UNKNOWN); a read changed nothing and goes to the new leader (its connection's order
        permitting). Refusals first, last to first, so that a run of reads restarts whole."""
        orders = {}
        for request in reversed(lost):
            self.abandoned_forwards += 1
            if not request.write:
                self._unforward(request)
                request.state = _State.WAITING
                request.order.refuse(request.unit)
                self._held[id(request.order)] = request.order
                orders[id(request.order)] = request.order
        for request in lost:
            if request.write:
                self._finish(request, error_reply(errors.OutcomeUnknown(request.shard_id,
                                                                        reason)))
        for order in orders.values():
            self._pump(order)

    def _abandon_stale_forwards(self) -> None:
        """Forwards to a node that is no longer the shard's leader, as this node's replica
        sees it once a new leader is known, are settled at once, not at their timeout: their
        old leader may be paused or cut off (issue 11). During the election they wait: if the
        old leader wins again it answers them (its proposals commit in its new term)."""
        for shard_id, targets in list(self._forwarded_shards.items()):
            if not self.host.hosts(shard_id):
                continue  # no replica here: only the leader's answers tell
            leader = self.host.leader_of(shard_id)
            for target in [t for t in targets if leader not in (0, t)]:
                self._abandon(list(targets.get(target, {}).values()),
                              f"node {target} is no longer the leader (node {leader} is)")

    def _park(self, request: Request) -> None:
        if request.number not in self._parked:
            request.parked_deadline_ms = self.now_ms() + self.leader_wait_ms
            self._parked[request.number] = request

    def retry_parked(self, every_tick: bool = False) -> bool:
        """Settle forwards to a leader that went away; send again what waits for a leader or
        was refused by one: on every tick, and after each drive when the leader of its shard
        changed. Returns whether anything was sent."""
        self._abandon_stale_forwards()
        if not self._parked and not self._held:
            return False
        changed = set()
        shards = {r.shard_id for r in self._parked.values()}
        for order in self._held.values():
            shards.update(order.shard_ids())
        for shard_id in shards:
            leader = self._leader(shard_id)
            if self._leaders_seen.get(shard_id) != leader:
                self._leaders_seen[shard_id] = leader
                changed.add(shard_id)
        if not every_tick and not changed:
            return False
        sends_before = self._sends
        held, self._held = self._held, {}
        for order in held.values():
            self._pump(order)
        for request in list(self._parked.values()):
            if request.number in self._parked and (every_tick or request.shard_id in changed):
                self._pump(request.order)
        return self._sends != sends_before

    def _leader(self, shard_id: int) -> int:
        """The shard's leader as this node's replica knows it (0 during an election); for a
        shard not hosted here, the node the cluster view points at (remote_leader)."""
        if self.host.hosts(shard_id):
            return self.host.leader_of(shard_id)
        return self.remote_leader(shard_id)

    def _finish(self, request: Request, reply: Reply, effect: bool = True) -> None:
        """Answer a request. `effect`: it may have taken effect or observed the data (so a
        refused earlier command of its connection may no longer be sent again)."""
        if request.state is _State.DONE:
            return
        request.state = _State.DONE
        del self._requests[request.number]
        self._sent.pop(request.number, None)
        self._parked.pop(request.number, None)
        self._unforward(request)
        request.order.complete(request.unit, effect)
        request.reply_to(reply)
        self._pump(request.order)

    # ---- time --------------------------------------------------------------------------------

    def tick(self) -> None:
        """Answer requests past their deadline, and parked ones that waited too long."""
        now = self.now_ms()
        expired = []
        for request in self._sent.values():
            if request.deadline_ms > now:
                break
            expired.append(request)
        for request in expired:
            self._time_out(request, f"no answer within request_timeout_ms "
                                    f"({self.request_timeout_ms:.0f} ms)")
        stale = [r for r in self._parked.values() if r.parked_deadline_ms <= now]
        for request in stale:
            self._time_out(request, "no leader was elected in time")
        self.retry_parked(every_tick=True)

    def _time_out(self, request: Request, reason: str) -> None:
        self.timeouts += 1
        if request.maybe_applied:
            self._finish(request, error_reply(errors.OutcomeUnknown(request.shard_id, reason)))
        else:  # never proposed, or a read (which changed nothing and answered nothing)
            self._finish(request, ErrorReply(
                f"TRYAGAIN shard {request.shard_id}: {reason}; the command was not "
                "applied, retry".encode()), effect=False)

    def fail_all(self, reason: str) -> None:
        """Answer every request still in flight (shutdown): definite if never proposed."""
        self._closing = True
        for request in list(self._requests.values()):
            self._time_out(request, reason)

    def in_flight(self) -> int:
        return len(self._requests)

    # ---- leader side: commands forwarded to this node -----------------------------------------

    def serve_forward(self, request: ForwardRequest) -> None:
        """Run a command another node forwarded here, and send its answer back."""
        self.served_forwards += 1
        if not self.host.is_leader(request.shard_id):
            self._answer(request, ForwardOutcome.RETRY, None)
            return
        self._count_served(request.shard_id, self.is_write(request.name))
        self.host.submit(request.shard_id, request.name, request.args,
                         lambda result: self._served(request, result))

    def _served(self, request: ForwardRequest, result: object) -> None:
        if isinstance(result, _RETRYABLE):
            self._answer(request, ForwardOutcome.RETRY, None)
        elif isinstance(result, BaseException):
            self._answer(request, ForwardOutcome.ANSWERED, error_reply(result))
        else:
            self._answer(request, ForwardOutcome.ANSWERED, result)  # type: ignore[arg-type]

    def _answer(self, request: ForwardRequest, outcome: ForwardOutcome, reply: Reply) -> None:
        wire: Any = reply_to_wire(reply) if outcome is ForwardOutcome.ANSWERED else None
        self.sender.send_record(request.source, ForwardResponse(
            request.request_id, outcome, wire, self.host.leader_of(request.shard_id)))
