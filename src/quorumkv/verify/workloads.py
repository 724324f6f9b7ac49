"""Workloads: what clients ask the cluster, and which checker judges the answers.

Theory of operation. A workload turns "the next operation of process P" into a `Request`: the
history's words for it (function, key, invocation value) and the Redis command that performs
it, with a decoder from the reply to the completion value the checker expects. Values written
are unique (`<process>.<n>`), which keeps the checkers decisive: a value read names the one
write it came from. After the run (faults healed) the workload's `final_requests` read
everything back; the set and counter checkers judge a key only once it has a completed read.

- register: GET / SET / CAS on a few keys at a time, checked for linearizability. Each key gets
  at most `limits.verify_register_operations_per_key_max` operations, then clients move to a
  fresh key (Jepsen's independent keys): the search for a linearization, exponential in the
  operations left pending, stays small however long the run.
- set: each add is `SET {verify-set}:<element> <element>`, a distinct key per element; a read
  is `KEYS {verify-set}:*`. Distinct keys rather than APPEND to one key: every add is an
  ordinary, constant-size, idempotent write (the path most clients use), whereas APPEND would
  rewrite an ever-growing value (quadratic bytes over a run, one huge value in every Raft
  snapshot) and test APPEND more than replication. The hash tag keeps every element in one
  slot, so with many shards the final read is still one linearizable read of one shard.
- counter: INCR on a few keys, GET to read; the checker bounds every read between the
  acknowledged increments and those plus the ones of unknown outcome.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from quorumkv import limits


class UnexpectedReply(Exception):
    """A reply of a shape the command never gives (the harness records the operation as info)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One operation: its words in the history, its command, and how to read its reply."""

    function: str
    key: str | None
    value: object
    command: tuple[str, ...]
    decode: Callable[[object], object]


class Workload(Protocol):
    name: str
    checker: str

    def next_request(self, process: int, rng: random.Random) -> Request: ...

    def observe(self, request: Request, output: object) -> None: ...

    def final_requests(self) -> list[Request]: ...


def _text(reply: object) -> str | None:
    if reply is None:
        return None
    if isinstance(reply, bytes):
        return reply.decode()
    if isinstance(reply, str):
        return reply
    raise UnexpectedReply(f"expected a bulk string or nil, got {reply!r}")


def _ok(reply: object) -> None:
    if reply not in (b"OK", "OK", True):
        raise UnexpectedReply(f"expected +OK, got {reply!r}")


def _integer(reply: object) -> int:
    if isinstance(reply, int) and not isinstance(reply, bool):
        return reply
    raise UnexpectedReply(f"expected an integer, got {reply!r}")


def _integer_or_nil(reply: object) -> int | None:
    text = _text(reply)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise UnexpectedReply(f"expected an integer value, got {text!r}") from None


class _UniqueValues:
    """`<process>.<n>` values, n counting per process."""

    def __init__(self) -> None:
        self._counters: dict[int, itertools.count[int]] = {}
        self._lock = threading.Lock()

    def next(self, process: int) -> str:
        with self._lock:
            counter = self._counters.setdefault(process, itertools.count())
            return f"{process}.{next(counter)}"


# ---- register ----------------------------------------------------------------------------------


class RegisterWorkload:
    """Reads, writes and compare-and-sets on a rotating set of keys; see the module docstring."""

    name = "register"
    checker = "linearizability"

    def __init__(self, keys_active: int = 3,
                 operations_per_key: int = limits.verify_register_operations_per_key_max) -> None:
        self.operations_per_key = operations_per_key
        self._values = _UniqueValues()
        self._lock = threading.Lock()
        self._next_key = itertools.count()
        self._active = [self._fresh_key() for _ in range(keys_active)]
        self._counts = dict.fromkeys(self._active, 0)
        self._used: list[str] = list(self._active)
        self._last_known: dict[str, str] = {}

    def _fresh_key(self) -> str:
        return f"register:{next(self._next_key)}"

    def _take_key(self, rng: random.Random) -> str:
        with self._lock:
            slot = rng.randrange(len(self._active))
            key = self._active[slot]
            self._counts[key] += 1
            if self._counts[key] >= self.operations_per_key:
                fresh = self._fresh_key()
                self._active[slot] = fresh
                self._counts[fresh] = 0
                self._used.append(fresh)
            return key

    def next_request(self, process: int, rng: random.Random) -> Request:
        key = self._take_key(rng)
        choice = rng.randrange(3)
        expected = self._last_known.get(key)
        if choice == 0:
            return read_request(key)
        if choice == 1 or expected is None:
            value = self._values.next(process)
            return Request("write", key, value, ("SET", key, value), _written(value))
        new = self._values.next(process)
        return Request("cas", key, [expected, new], ("CAS", key, expected, new), _swapped)

    def observe(self, request: Request, output: object) -> None:
        """Remember a value the key held, so that later CAS operations can expect it."""
        if request.key is None:
            return
        if request.function == "read" and isinstance(output, str):
            self._last_known[request.key] = output
        elif request.function == "write":
            self._last_known[request.key] = str(request.value)
        elif request.function == "cas" and output is True and isinstance(request.value, list):
            self._last_known[request.key] = str(request.value[1])

    def final_requests(self) -> list[Request]:
        with self._lock:
            return [read_request(key) for key in self._used if self._counts.get(key, 0) > 0]


def read_request(key: str) -> Request:
    return Request("read", key, None, ("GET", key), _text)


def _written(value: str) -> Callable[[object], object]:
    def decode(reply: object) -> object:
        _ok(reply)
        return value
    return decode


def _swapped(reply: object) -> bool:
    answer = _integer(reply)
    if answer not in (0, 1):
        raise UnexpectedReply(f"CAS answers 1 or 0, got {answer}")
    return answer == 1


# ---- set ---------------------------------------------------------------------------------------


SET_KEY = "set"
"""The set's name in the history."""

SET_PREFIX = "{verify-set}:"
"""The Redis key of element E is SET_PREFIX + E (the hash tag keeps all in one slot)."""


class SetWorkload:
    """Unique adds as distinct keys, occasional whole-set reads; see the module docstring."""

    name = "set"
    checker = "set"

    def __init__(self, read_probability: float = 0.02) -> None:
        self.read_probability = read_probability
        self._values = _UniqueValues()

    def next_request(self, process: int, rng: random.Random) -> Request:
        if rng.random() < self.read_probability:
            return set_read_request()
        element = self._values.next(process)
        return Request("add", SET_KEY, element, ("SET", SET_PREFIX + element, element),
                       _written(element))

    def observe(self, request: Request, output: object) -> None:
        return None

    def final_requests(self) -> list[Request]:
        return [set_read_request()]


def set_read_request() -> Request:
    return Request("read", SET_KEY, None, ("KEYS", SET_PREFIX + "*"), _elements)


def _elements(reply: object) -> list[str]:
    if not isinstance(reply, list):
        raise UnexpectedReply(f"KEYS answers an array, got {reply!r}")
    elements = []
    for item in reply:
        key = _text(item) or ""
        if not key.startswith(SET_PREFIX):
            raise UnexpectedReply(f"KEYS {SET_PREFIX}* answered {key!r}")
        elements.append(key[len(SET_PREFIX):])
    return sorted(elements)


# ---- counter -----------------------------------------------------------------------------------


class CounterWorkload:
    """INCR on a few keys, GET to read; see the module docstring."""

    name = "counter"
    checker = "counter"

    def __init__(self, keys: int = 2, read_probability: float = 0.1) -> None:
        self.keys = [f"counter:{n}" for n in range(keys)]
        self.read_probability = read_probability

    def next_request(self, process: int, rng: random.Random) -> Request:
        key = rng.choice(self.keys)
        if rng.random() < self.read_probability:
            return counter_read_request(key)
        return Request("incr", key, None, ("INCR", key), _integer)

    def observe(self, request: Request, output: object) -> None:
        return None

    def final_requests(self) -> list[Request]:
        return [counter_read_request(key) for key in self.keys]


def counter_read_request(key: str) -> Request:
    return Request("read", key, None, ("GET", key), _integer_or_nil)


WORKLOADS: dict[str, Callable[[], Workload]] = {
    "register": RegisterWorkload,
    "set": SetWorkload,
    "counter": CounterWorkload,
}
"""Every workload by name, as `--workload` takes them."""
