"""Where a client's data command runs: here, at the shard's leader, or after a leader is known.

Theory of operation. Any node accepts any command. For each data command the dispatcher
creates a `Request` and routes it:

- this node leads the shard: `host.submit` runs it (writes through Raft, reads after
  ReadIndex);
- another node leads it: the command is forwarded to that node (`ForwardRequest`); the leader
  runs it through its own host and answers (`ForwardResponse`), and the reply is relayed;
- no leader is known: the request is parked until one is elected, at most
  `leader_wait_election_timeouts` election timeouts, then answered -TRYAGAIN.

The failure semantics a client relies on live here (docs/server.md):
- a definite error (the command was refused before it was proposed, or the entry at its index
  is known to be another one) is either retried by routing again, when it only says "not the
  leader", or returned as is;
- once a write may have been proposed (submitted to a leader's host, or forwarded over a live
  connection), only its outcome or `-UNKNOWN` can answer it: a timeout
  (`request_timeout_ms`) or the loss of the connection to the leader gives
  `errors.OutcomeUnknown`, never a false OK and never a definite error. Reads change nothing,
  so a read in doubt is answered -TRYAGAIN.

Requests expire in the order they were created (one timeout for all), so `tick()` finds the
expired ones at the front of an insertion-ordered dict. Everything runs on the event loop
thread, called by the node's driver; nothing here awaits.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Protocol

from quorumkv import errors, limits
from quorumkv.codec.peer import ForwardOutcome, ForwardRequest, ForwardResponse, PeerRecord
from quorumkv.kv.reply import ErrorReply, Reply, reply_from_wire, reply_to_wire

ReplyTo = Callable[[Reply], None]

_RETRYABLE = (errors.NotLeader, errors.LeaderTransferInProgress, errors.ProposalSuperseded,
              errors.ReadTimeout)
"""Definite errors that only say "not here, not now": the dispatcher routes the command again."""


class HostLike(Protocol):
    def is_leader(self, shard_id: int) -> bool: ...

    def leader_of(self, shard_id: int) -> int: ...

    def submit(self, shard_id: int, name: bytes, args: tuple[bytes, ...],
               done: Callable[[object], None]) -> None: ...


class SenderLike(Protocol):
    def send_record(self, target_node: int, record: PeerRecord) -> bool: ...


def command_bytes(name: bytes, args: tuple[bytes, ...]) -> int:
    """An upper bound of a command's size as a log entry (its msgpack record and timestamp)."""
    return len(name) + sum(len(argument) + 5 for argument in args) + 32


def error_reply(error: BaseException) -> ErrorReply:
    """The client's reply for an exception a command ended with."""
    if isinstance(error, errors.QuorumKVError):
        return ErrorReply(f"{error.reply_prefix} {error}".encode())
    return ErrorReply(f"ERR internal error: {error.__class__.__name__}: {error}".encode())


class _State(enum.Enum):
    PARKED = 0
    LOCAL = 1
    FORWARDED = 2
    DONE = 3


class Request:
    """One client data command in flight on this node."""

    __slots__ = ("number", "shard_id", "name", "args", "write", "reply_to", "deadline_ms",
                 "state", "maybe_applied", "parked_deadline_ms", "forwarded_to")

    def __init__(self, number: int, shard_id: int, name: bytes, args: tuple[bytes, ...],
                 write: bool, reply_to: ReplyTo, deadline_ms: float) -> None:
        self.number = number
        self.shard_id = shard_id
        self.name = name
        self.args = args
        self.write = write
        self.reply_to = reply_to
        self.deadline_ms = deadline_ms
        self.state = _State.PARKED
        self.maybe_applied = False  # a write that a leader may have proposed
        self.parked_deadline_ms = 0.0
        self.forwarded_to = 0


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
        self._requests: dict[int, Request] = {}  # by number = creation order = deadline order
        self._parked: dict[int, Request] = {}
        self._forwarded: dict[int, Request] = {}  # by number, which is the forward request id
        self._next_number = 1
        self._leaders_seen: dict[int, int] = {}
        self.forwarded_total = 0
        self.served_forwards = 0
        self.timeouts = 0

    # ---- client side -------------------------------------------------------------------------

    def submit(self, shard_id: int, name: bytes, args: tuple[bytes, ...],
               reply_to: ReplyTo) -> None:
        """Run a data command wherever its shard's leader is; `reply_to` is called once.

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
        number = self._next_number
        self._next_number += 1
        request = Request(number, shard_id, name, args, write, reply_to,
                          self.now_ms() + self.request_timeout_ms)
        self._requests[number] = request
        self._route(request)

    def _route(self, request: Request) -> None:
        if self.host.is_leader(request.shard_id):
            self._run_locally(request)
            return
        leader = self._leader(request.shard_id)
        if leader and leader != self.node_id:
            self._forward(request, leader)
        else:
            self._park(request)

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
            request.maybe_applied = False
            self._park(request)
        elif isinstance(result, BaseException):
            self._finish(request, error_reply(result))
        else:
            self._finish(request, result)  # type: ignore[arg-type]

    def _forward(self, request: Request, leader: int) -> None:
        if len(self._forwarded) >= limits.forward_requests_pending_max:
            self._finish(request, ErrorReply(
                b"TRYAGAIN too many commands waiting for the leader's answer; retry later"))
            return
        record = ForwardRequest(self.node_id, request.number, request.shard_id, request.name,
                                request.args)
        if not self.sender.send_record(leader, record):
            self._park(request)  # not sent: nothing happened; wait for a reachable leader
            return
        request.state = _State.FORWARDED
        request.forwarded_to = leader
        request.maybe_applied = request.write
        self._forwarded[request.number] = request
        self.forwarded_total += 1

    def on_forward_response(self, response: ForwardResponse) -> None:
        request = self._forwarded.pop(response.request_id, None)
        if request is not None and response.leader_id:
            self.learned_leaders[request.shard_id] = response.leader_id
        if request is None or request.state is not _State.FORWARDED:
            return  # answered already (timeout, lost connection)
        if response.outcome is ForwardOutcome.RETRY:
            request.maybe_applied = False
            hint = response.leader_id
            if hint not in (0, self.node_id, request.forwarded_to):
                self._forward(request, hint)
            else:
                self._park(request)  # retried on the next tick or leader change
            return
        try:
            reply = reply_from_wire(response.reply)
        except (ValueError, TypeError, IndexError) as error:
            reply = error_reply(errors.OutcomeUnknown(
                request.shard_id, f"the leader's reply was unreadable: {error}"))
        self._finish(request, reply)

    def on_peer_down(self, node_id: int) -> None:
        """The connection to `node_id` was lost: what was forwarded there may never be answered."""
        lost = [r for r in self._forwarded.values() if r.forwarded_to == node_id]
        for request in lost:
            del self._forwarded[request.number]
            if request.write:
                self._finish(request, error_reply(errors.OutcomeUnknown(
                    request.shard_id, f"the connection to leader node {node_id} was lost")))
            else:
                self._park(request)

    def _park(self, request: Request) -> None:
        if request.state is not _State.PARKED or request.number not in self._parked:
            request.parked_deadline_ms = self.now_ms() + self.leader_wait_ms
        request.state = _State.PARKED
        self._parked[request.number] = request

    def retry_parked(self, every_tick: bool = False) -> bool:
        """Route parked requests again if their shard has a leader: on every tick, and after
        each drive when the leader of their shard changed (so that a stale leader hint does
        not bounce a request back and forth at network speed). Returns whether any was."""
        if not self._parked:
            return False
        changed = set()
        for shard_id in {r.shard_id for r in self._parked.values()}:
            leader = self._leader(shard_id)
            if self._leaders_seen.get(shard_id) != leader:
                self._leaders_seen[shard_id] = leader
                changed.add(shard_id)
        ready = [r for r in self._parked.values()
                 if (every_tick or r.shard_id in changed)
                 and self._has_reachable_leader(r.shard_id)]
        for request in ready:
            del self._parked[request.number]
            self._route(request)
        return bool(ready)

    def _has_reachable_leader(self, shard_id: int) -> bool:
        return self.host.is_leader(shard_id) or self._leader(shard_id) not in (0, self.node_id)

    def _leader(self, shard_id: int) -> int:
        """The shard's leader as this node's replica knows it; for a shard not hosted here,
        the node the cluster view points at (remote_leader)."""
        return self.host.leader_of(shard_id) or self.remote_leader(shard_id)

    def _finish(self, request: Request, reply: Reply) -> None:
        if request.state is _State.DONE:
            return
        request.state = _State.DONE
        self._requests.pop(request.number, None)
        self._parked.pop(request.number, None)
        self._forwarded.pop(request.number, None)
        request.reply_to(reply)

    # ---- time --------------------------------------------------------------------------------

    def tick(self) -> None:
        """Answer requests past their deadline, and parked ones that waited too long."""
        now = self.now_ms()
        expired = []
        for request in self._requests.values():
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
        else:
            self._finish(request, ErrorReply(
                f"TRYAGAIN shard {request.shard_id}: {reason}; the command was not "
                "applied, retry".encode()))

    def fail_all(self, reason: str) -> None:
        """Answer every request still in flight (shutdown): definite if never proposed."""
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
