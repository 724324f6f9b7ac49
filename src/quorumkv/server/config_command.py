"""CONFIG GET, SET, RESETSTAT: the Redis parameters a node reports are the ones it enforces.

Theory of operation. `PARAMETERS` lists every parameter CONFIG GET reports, each with how its
current value is read (from the node's settings, its limits, or the client server's runtime
settings) and what CONFIG SET may do with it:

- `RUNTIME`: the node applies a new value at once (maxclients, timeout, tcp-keepalive); like
  Redis, a value set this way lasts until the node restarts (there is no CONFIG REWRITE).
- `FIXED`: Redis can change it at runtime, quorumkv cannot (durability is decided at start-up by
  `--sync`, values are bounded by the Raft log's entry size, there is no RDB, no eviction, no
  keyspace notifications). CONFIG SET to the value it already has is accepted and changes
  nothing, so that scripts and libraries that set what they need (`save ""`, `appendonly yes`,
  `maxmemory-policy noeviction`) keep working; any other value is refused with the reason.
- `IMMUTABLE`: Redis cannot change it at runtime either; refused with Redis's error.

Unknown parameters: CONFIG GET matches nothing (an empty answer, as Redis), CONFIG SET answers
Redis's "Unknown option" error. CONFIG SET checks every pair before it applies any (Redis 7
sets several parameters atomically). CONFIG RESETSTAT zeroes the node's statistics
(server/stats.py).
"""

from __future__ import annotations

import fnmatch
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quorumkv import limits
from quorumkv.kv.reply import OK, ErrorReply, Map, Reply, arity_error

if TYPE_CHECKING:
    from quorumkv.server.resp_server import ClientServer

RUNTIME, FIXED, IMMUTABLE = "runtime", "fixed", "immutable"

INT_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Parameter:
    name: bytes
    kind: str  # RUNTIME, FIXED or IMMUTABLE
    read: Callable[[ClientServer], bytes]
    # RUNTIME: checks and applies a value, or answers why not (the message after "- ")
    apply: Callable[[ClientServer, bytes, bool], str | None] | None = None
    # FIXED: the value as Redis would normalise it, to compare with the current one
    normalise: Callable[[bytes], bytes | None] = lambda value: value
    why_fixed: str = ""


def _integer(value: bytes, low: int, high: int) -> int | str:
    try:
        number = int(value)
    except ValueError:
        return "argument couldn't be parsed into an integer"
    if not low <= number <= high:
        return f"argument must be between {low} and {high} inclusive"
    return number


def _memory(value: bytes) -> bytes | None:
    """A Redis memory value (1mb, 1gb, 512k...) in bytes, as digits; None if malformed."""
    text = value.strip().lower()
    for suffix, factor in ((b"gb", 1 << 30), (b"mb", 1 << 20), (b"kb", 1 << 10),
                           (b"g", 10**9), (b"m", 10**6), (b"k", 10**3), (b"b", 1)):
        if text.endswith(suffix):
            text, scale = text[:-len(suffix)], factor
            break
    else:
        scale = 1
    return b"%d" % (int(text) * scale) if text.isdigit() else None


def _words(value: bytes) -> bytes:
    return value.strip().lower()


def _set_maxclients(server: ClientServer, value: bytes, apply: bool) -> str | None:
    number = _integer(value, 1, limits.client_connections_settable_max)
    if isinstance(number, str):
        return number
    files = number + limits.reserved_file_descriptors
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < files:
        target = files if hard == resource.RLIM_INFINITY else min(files, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            target = soft
        if target < files:
            return ("The operating system is not able to handle the specified number of "
                    f"clients, try with {max(1, target - limits.reserved_file_descriptors)}")
    if apply:
        server.maxclients = number
    return None


def _set_seconds(attribute: str,
                 most: int) -> Callable[[ClientServer, bytes, bool], str | None]:
    """The setter of a number of seconds (0 to `most`) kept as `attribute` of the server."""
    def apply(server: ClientServer, value: bytes, really: bool) -> str | None:
        number = _integer(value, 0, most)
        if isinstance(number, str):
            return number
        if really:
            setattr(server, attribute, number)
        return None
    return apply


def _appendfsync(server: ClientServer) -> bytes:
    return b"always" if server.node.config.sync else b"no"


_NOT_WITHOUT_RESTART = "quorumkv sets it at start-up only"

PARAMETERS: dict[bytes, Parameter] = {p.name: p for p in (
    Parameter(b"maxclients", RUNTIME, lambda s: b"%d" % s.maxclients, _set_maxclients),
    Parameter(b"timeout", RUNTIME, lambda s: b"%d" % s.idle_timeout_s,
              _set_seconds("idle_timeout_s", INT_MAX)),
    Parameter(b"tcp-keepalive", RUNTIME, lambda s: b"%d" % s.tcp_keepalive_s,
              _set_seconds("tcp_keepalive_s", limits.client_tcp_keepalive_s_max)),
    Parameter(b"port", IMMUTABLE, lambda s: b"%d" % s.node.config.client_address().port),
    Parameter(b"bind", IMMUTABLE, lambda s: s.node.config.client_address().host.encode()),
    Parameter(b"databases", IMMUTABLE, lambda s: b"1"),
    Parameter(b"cluster-enabled", IMMUTABLE, lambda s: b"yes"),
    Parameter(b"dir", FIXED, lambda s: str(s.node.config.data_dir.resolve()).encode(),
              why_fixed="the data directory is chosen at start-up (--data-dir)"),
    Parameter(b"save", FIXED, lambda s: b"", normalise=_words,
              why_fixed="quorumkv takes no RDB snapshots: every write is in the Raft log"),
    Parameter(b"appendonly", FIXED, lambda s: b"yes", normalise=_words,
              why_fixed="every write is appended to the Raft log before it is answered"),
    Parameter(b"appendfsync", FIXED, _appendfsync, normalise=_words,
              why_fixed="the log is fsynced before every reply with --sync (always), never "
                        "with --no-sync (no); " + _NOT_WITHOUT_RESTART),
    Parameter(b"proto-max-bulk-len", FIXED, lambda s: b"%d" % limits.string_bytes_max,
              normalise=_memory,
              why_fixed="a value must fit in one Raft log entry (limits.string_bytes_max)"),
    Parameter(b"client-query-buffer-limit", FIXED,
              lambda s: b"%d" % limits.query_buffer_bytes_max, normalise=_memory,
              why_fixed="limits.query_buffer_bytes_max is fixed"),
    Parameter(b"maxmemory", FIXED, lambda s: b"0", normalise=_memory,
              why_fixed="quorumkv keeps data on disk and has no memory limit or eviction"),
    Parameter(b"maxmemory-policy", FIXED, lambda s: b"noeviction", normalise=_words,
              why_fixed="quorumkv never evicts keys"),
    Parameter(b"notify-keyspace-events", FIXED, lambda s: b"", normalise=_words,
              why_fixed="keyspace notifications are not supported (no pub/sub)"),
)}


def _failed(name: bytes, reason: str) -> ErrorReply:
    return ErrorReply(b"ERR CONFIG SET failed (possibly related to argument '%b') - %b"
                      % (name[:128], reason.encode()))


def config_get(server: ClientServer, patterns: tuple[bytes, ...]) -> Reply:
    found: dict[bytes, bytes] = {}
    for pattern in patterns:
        text = pattern.lower().decode(errors="replace")
        for name, parameter in PARAMETERS.items():
            if name not in found and fnmatch.fnmatchcase(name.decode(), text):
                found[name] = parameter.read(server)
    return Map(list(found.items()))


def config_set(server: ClientServer, args: tuple[bytes, ...]) -> Reply:
    if not args or len(args) % 2:
        return arity_error(b"config|set")
    pairs: list[tuple[Parameter, bytes]] = []
    for index in range(0, len(args), 2):
        name, value = args[index].lower(), args[index + 1]
        parameter = PARAMETERS.get(name)
        if parameter is None:
            return ErrorReply(b"ERR Unknown option or number of arguments for CONFIG SET - "
                              b"'%b'" % args[index][:128])
        if any(p is parameter for p, _ in pairs):
            return _failed(name, "duplicate parameter")
        if parameter.kind == IMMUTABLE:
            return _failed(name, "can't set immutable config")
        if parameter.kind == FIXED:
            current = parameter.read(server)
            if parameter.normalise(value) != parameter.normalise(current):
                return _failed(name, f"quorumkv keeps it at '{current.decode()}': "
                                     f"{parameter.why_fixed}")
        elif parameter.apply is not None:
            problem = parameter.apply(server, value, False)
            if problem is not None:
                return _failed(name, problem)
        pairs.append((parameter, value))
    for parameter, value in pairs:
        if parameter.apply is not None:
            parameter.apply(server, value, True)
    return OK
