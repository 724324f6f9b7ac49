"""The order of one client connection's commands: which may start now, which must wait.

Theory of operation. Redis runs a connection's commands one after another, so a pipelining
client relies on each command taking effect after the ones sent before it. We run commands at
their shard's leader, possibly on another node, so running them one at a time would cost a
round trip each; `PipelineOrder` lets through exactly the overlap that cannot reorder, and
the server (server/dispatcher.py) and the simulator (sim/pipelined.py) both obey it.

A command becomes one *unit* per shard it touches (a command split across shards has several
units, which are independent: not atomic across shards). Each unit is, in turn, WAITING (not
handed to any leader), STARTED on a *route*, REFUSED (a leader answered "not me": definitely
not applied), or DONE. A route names the way a unit reaches its shard's leader: this node's
replica, or the connection to one other node. What is sent on one route to one shard is
executed in the order sent: one leader's log orders its proposals, and one TCP connection
keeps the order of what is forwarded on it.

The rule. A unit may start only if every unfinished unit of earlier commands is STARTED, and
all of them and it form one *group*: the same shard and the same route, with no write after a
read (writes, then reads). A split command's units start only once every earlier command is
finished. Hence, in a group, writes are proposed in the order sent (the log orders their
effects); reads are confirmed in the order sent at one leader, and each waits until the
leader's log as it was when the read arrived is applied (host.Host's read floor), so it sees
the writes sent before it on the same route; a write never starts while an earlier read is
unfinished (the read could see it). Anything else waits until the commands before it are
finished.

Refusals. A refused unit may be sent again (to the new leader) only if that cannot reorder it:
no unit of a later command of the connection may have taken effect. So:
- if a unit of a later command finished with an effect (a reply, or an outcome in doubt), the
  refused unit is answered with a definite error (`resolve()` returns it as failed): it had no
  effect, so order is kept;
- else, while a later unit is still STARTED, the refused unit is held (and nothing new starts)
  until that unit finishes or is refused too;
- else the refused units go back to WAITING, in order, and start again by the rule above.

Completions of units that were never sent (no leader in time, overload) have no effect and do
not stop earlier refused units from being sent again.

Everything here is pure and synchronous; the caller supplies `route_of(shard_id)`, the route a
unit of that shard would take now (None when no leader is known).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from quorumkv.invariant import invariant


class UnitState(enum.Enum):
    WAITING = 0
    STARTED = 1
    REFUSED = 2
    DONE = 3


class Unit:
    """One command's work on one shard, as the order sees it; `payload` is the caller's."""

    __slots__ = ("command", "shard_id", "write", "split", "state", "route", "effect",
                 "payload")

    def __init__(self, command: int, shard_id: int, write: bool, split: bool,
                 payload: Any) -> None:
        self.command = command
        self.shard_id = shard_id
        self.write = write
        self.split = split  # one of several units of a command split across shards
        self.state = UnitState.WAITING
        self.route: Hashable | None = None
        self.effect = False  # finished in a way that may have taken effect (or observed)
        self.payload = payload

    def group(self, route: Hashable) -> tuple[int, Hashable]:
        return (self.shard_id, route)

    def __repr__(self) -> str:
        return (f"Unit(command={self.command}, shard={self.shard_id}, "
                f"{'write' if self.write else 'read'}, {self.state.name}, route={self.route})")


_MIXED = ("mixed",)
"""The group of started units when they are the several shards of one split command."""


class PipelineOrder:
    """The units of one connection, in the order their commands were sent."""

    def __init__(self) -> None:
        self._waiting: deque[Unit] = deque()  # not started, in command order
        self._active: deque[Unit] = deque()  # started (or refused), in command order
        self._unfinished = 0  # units of _active not DONE
        self._refused = 0
        self._group: tuple[Any, ...] | None = None  # of the unfinished started units
        self._group_reads = False  # the group has a read: no write may join it
        self._next_command = 1

    # ---- inputs ------------------------------------------------------------------------------

    def new_command(self) -> int:
        """A number for the next command of the connection (its units share it)."""
        number = self._next_command
        self._next_command += 1
        return number

    def add(self, command: int, shard_id: int, write: bool, payload: Any,
            split: bool = False) -> Unit:
        """Queue a unit of `command` (numbers from new_command, added in increasing order)."""
        invariant(not self._waiting or self._waiting[-1].command <= command,
                  "units are added in the order of their commands")
        unit = Unit(command, shard_id, write, split, payload)
        self._waiting.append(unit)
        return unit

    def start_ready(self, route_of: Callable[[int], Hashable | None]
                    ) -> tuple[list[Unit], Unit | None]:
        """Mark STARTED, and return, every unit that may start now, in order; the caller sends
        each on its `route`. Also returns the first waiting unit that the rule lets start but
        that has no route (no leader known): it waits for one (the caller bounds how long)."""
        started: list[Unit] = []
        while self._waiting and self._refused == 0:
            unit = self._waiting[0]
            if unit.split:
                if self._active and self._active[0].command != unit.command:
                    break  # an earlier command is unfinished
            elif self._unfinished and self._group is _MIXED:
                break
            route = route_of(unit.shard_id)
            if route is None:
                return started, unit if not self._unfinished_before(unit) else None
            group = unit.group(route)
            if self._unfinished and not unit.split and (
                    group != self._group or (unit.write and self._group_reads)):
                break
            self._waiting.popleft()
            unit.state = UnitState.STARTED
            unit.route = route
            # Several shards of one split command in flight form no group: nothing joins them.
            self._group = _MIXED if unit.split and self._unfinished else group
            self._group_reads = (self._group_reads and bool(self._unfinished)) or not unit.write
            self._unfinished += 1
            self._active.append(unit)
            started.append(unit)
        return started, None

    def _unfinished_before(self, unit: Unit) -> bool:
        """Whether a started unit of an earlier command is unfinished (then `unit` waits for
        it, not for a leader)."""
        return bool(self._active) and self._active[0].command != unit.command

    def complete(self, unit: Unit, effect: bool) -> None:
        """`unit` is answered: `effect` if it may have taken effect or observed the data (a
        reply, an outcome in doubt); not for a unit answered without being executed."""
        if unit.state is UnitState.DONE:
            return
        if unit.state is UnitState.WAITING:
            self._waiting.remove(unit)  # answered before it started (no leader in time)
            unit.state = UnitState.DONE
            return
        if unit.state is UnitState.REFUSED:
            self._refused -= 1
        unit.state = UnitState.DONE
        unit.effect = effect
        self._unfinished -= 1
        self._trim()

    def refuse(self, unit: Unit) -> None:
        """A leader refused `unit` ("not the leader"): it did not take effect. Call resolve()
        after the refusals known at this moment."""
        invariant(unit.state is UnitState.STARTED, "only a started unit can be refused")
        unit.state = UnitState.REFUSED
        self._refused += 1

    def resolve(self) -> list[Unit]:
        """Settle refused units (module docstring): return those that must be answered with a
        definite error now (the caller answers them and calls complete(unit, False)); put
        back to WAITING, in order, those that may be sent again; hold the others."""
        if self._refused == 0:
            return []
        failed: list[Unit] = []
        restart: list[Unit] = []
        later_effect = 0  # the highest command, after the unit examined, with an effect
        later_started = False
        for unit in reversed(self._active):
            if unit.state is UnitState.DONE:
                if unit.effect:
                    later_effect = max(later_effect, unit.command)
            elif unit.state is UnitState.STARTED:
                later_started = True
            elif later_effect > unit.command:
                failed.append(unit)
            elif not later_started:
                restart.append(unit)
        if restart:
            moved = set(map(id, restart))
            self._active = deque(u for u in self._active if id(u) not in moved)
            for unit in restart:  # from the last to the first: appendleft keeps the order
                unit.state = UnitState.WAITING
                unit.route = None
                self._waiting.appendleft(unit)
            self._refused -= len(restart)
            self._unfinished -= len(restart)
            self._trim()
        return failed

    def _trim(self) -> None:
        active = self._active
        while active and active[0].state is UnitState.DONE:
            active.popleft()
        if self._unfinished == 0:
            self._group = None
            self._group_reads = False

    # ---- observation -------------------------------------------------------------------------

    def shard_ids(self) -> set[int]:
        """The shards of the units waiting to start."""
        return {unit.shard_id for unit in self._waiting}

    def waiting(self) -> int:
        return len(self._waiting)

    def unfinished(self) -> int:
        return self._unfinished + len(self._waiting)
