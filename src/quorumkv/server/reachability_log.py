"""Which peers this node can reach, told to the operator once per change, at a bounded rate.

Theory of operation. The peer transport reports every change of its Raft connection to a peer:
up after a handshake, down when a dial or the connection fails. An operator wants one line when
a peer becomes unreachable and one when it is back, not one per redial, and not hundreds from a
peer whose link flaps. `ReachabilityLog` logs a change at once unless
`peer_reachability_log_lines_max` lines about that peer were logged in the last
`peer_reachability_log_interval_ms`; then it holds the change and tells the caller when to
`settle`, which logs the peer's state at that moment, with how many changes it went through
since the last line (also when it ended where it started: a flap). So an outage or two are
told as they happen, a flapping peer costs a bounded number of lines, and the last line about
a peer is never more than one interval out of date.

Lines: `node 1: node 2 unreachable: <why>` (WARNING once it had been reachable, INFO before its
first connection: peers start at different times), `node 1: node 2 reachable` (its first
connection), `node 1: node 2 reachable again after 3.2 s unreachable`.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from quorumkv import limits

log = logging.getLogger("quorumkv.peer")


@dataclass(slots=True)
class _Peer:
    reachable: bool | None = None  # None: nothing known yet
    detail: str = ""
    unreachable_since_ms: float = 0.0
    logged: bool | None = None  # the state the last line said
    logged_ms: deque[float] = field(default_factory=deque)  # when the recent lines were
    changes: int = 0  # changes since the last line
    ever_reachable: bool = False
    settle_pending: bool = False


class ReachabilityLog:
    """The reachability lines of one node about its peers (see the module docstring).
    Times are milliseconds on any monotonic clock."""

    def __init__(self, node_id: int,
                 interval_ms: float = limits.peer_reachability_log_interval_ms,
                 lines_max: int = limits.peer_reachability_log_lines_max) -> None:
        self.node_id = node_id
        self.interval_ms = interval_ms
        self.lines_max = lines_max
        self._peers: dict[int, _Peer] = {}

    def changed(self, peer: int, reachable: bool, now_ms: float, detail: str = "") -> float | None:
        """Record the state of the connection to `peer` (a repeat of the current state is
        ignored). Returns the time, in ms, at which to call `settle(peer, ...)` when the line
        is held back; None otherwise."""
        state = self._peers.setdefault(peer, _Peer())
        if state.reachable == reachable:
            return None
        if not reachable:
            state.unreachable_since_ms = now_ms
            state.detail = detail
        state.reachable = reachable
        state.changes += 1
        recent = state.logged_ms
        if len(recent) < self.lines_max or now_ms - recent[0] >= self.interval_ms:
            self._line(peer, state, now_ms)
            return None
        if state.settle_pending:
            return None
        state.settle_pending = True
        return recent[0] + self.interval_ms

    def settle(self, peer: int, now_ms: float) -> None:
        """Log the held-back state of `peer`, if anything changed since its last line."""
        state = self._peers.get(peer)
        if state is None or not state.settle_pending:
            return
        state.settle_pending = False
        if state.changes:
            self._line(peer, state, now_ms)

    def _line(self, peer: int, state: _Peer, now_ms: float) -> None:
        prefix = f"node {self.node_id}: node {peer}"
        changes = state.changes
        since = now_ms - state.logged_ms[-1] if state.logged_ms else 0.0
        flaps = (f" ({changes} changes of its connection in the last {since / 1000:.1f} s)"
                 if changes > 1 and state.logged is not None else "")
        if state.reachable:
            if not state.ever_reachable:
                log.info("%s reachable%s", prefix, flaps)
            else:
                down_s = (now_ms - state.unreachable_since_ms) / 1000
                again = "again" if state.logged is False else "(connection re-established)"
                log.info("%s reachable %s after %.1f s unreachable%s", prefix, again, down_s,
                         flaps)
            state.ever_reachable = True
        else:
            level = logging.WARNING if state.ever_reachable else logging.INFO
            log.log(level, "%s unreachable: %s%s", prefix, state.detail, flaps)
        state.logged = state.reachable
        state.logged_ms.append(now_ms)
        if len(state.logged_ms) > self.lines_max:
            state.logged_ms.popleft()
        state.changes = 0
