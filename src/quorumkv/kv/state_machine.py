"""The replicated state machine: apply a committed write, answer a read.

`apply(store, command)` is what every replica runs for every committed command entry, in log
order. It is deterministic: the same store contents and the same command give the same
effects and the same reply on every replica, because nothing here reads a clock or draws a
random number: time comes from `command.timestamp_ms`, stamped by the leader. Bad input never
raises: it becomes the error reply Redis would give, and the entry changes nothing.

`read(store, name, args, now_ms)` answers a read-only command locally, after ReadIndex has
shown that this replica has applied everything committed before the read arrived. `now_ms` is
the reading node's clock, used only to hide keys that have expired.

`expired_keys` lists due keys for the leader to delete with QKV.EXPIRE-DELETE entries
(kv/expiry.py); `expire_delete_command` builds such an entry. Likewise `sweep_needed` says
whether released collections' members remain, and `sweep_command` builds the QKV.SWEEP entry
that deletes a bounded number of them (kv/members.py). `key_count` is DBSIZE's answer
(for INFO's keyspace section).
"""

from __future__ import annotations

from quorumkv.kv import commands, members
from quorumkv.kv.collection import SplitMix64
from quorumkv.kv.command import Command
from quorumkv.kv.expiry import EXPIRE_DELETE, expired_keys
from quorumkv.kv.keys import SWEEP, key_count
from quorumkv.kv.keyspace import Keyspace
from quorumkv.kv.reply import ErrorReply, Reply, unknown_command_error
from quorumkv.kv.scan import random_key
from quorumkv.kv.store import KeyValueStore

__all__ = ["apply", "read", "read_seed", "expired_keys", "expire_delete_command", "key_count",
           "sweep_needed", "sweep_command"]


def apply(store: KeyValueStore, command: Command) -> Reply:
    """Execute a committed command against `store`; returns its reply."""
    definition = commands.definition_of(command.name)
    if definition is None:
        return unknown_command_error(command.name, command.args)
    request = commands.check(definition, command.args)
    if isinstance(request, ErrorReply):
        return request
    return definition.execute(Keyspace(store, command.timestamp_ms, writable=True), request)


def read(store: KeyValueStore, name: bytes, args: tuple[bytes, ...], now_ms: int,
         choice: int | None = None) -> Reply:
    """Answer the read-only command `name` from `store` as of `now_ms`. RANDOMKEY, HRANDFIELD
    and SRANDMEMBER draw their randomness from `choice` (an integer unique to this read: the
    host passes the read's ReadIndex context) when one is given, else from `now_ms`."""
    definition = commands.definition_of(name)
    if definition is None or definition.spec.internal:
        return unknown_command_error(name, args)
    if definition.spec.is_write:
        return ErrorReply(b"ERR '%b' changes data and cannot be answered as a read"
                          % definition.spec.name.lower())
    request = commands.check(definition, args)
    if isinstance(request, ErrorReply):
        return request
    if choice is not None and definition.spec.name == b"RANDOMKEY":
        return random_key(store, now_ms, choice)
    return definition.execute(Keyspace(store, now_ms, writable=False, seed=choice or 0), request)


def read_seed(context: bytes) -> int:
    """A well-mixed 64-bit seed from a read's unique context (sequential numbers in, unrelated
    seeds out), for `read(..., choice=...)`."""
    return SplitMix64(int.from_bytes(context, "big")).next()


def sweep_needed(store: KeyValueStore) -> bool:
    """Whether released collections' members wait for a QKV.SWEEP entry (the leader asks)."""
    return members.has_garbage(store)


def sweep_command(timestamp_ms: int) -> Command:
    """The internal command deleting a bounded number of released collections' members."""
    return Command(SWEEP, (), timestamp_ms)


def expire_delete_command(due: list[tuple[bytes, int]], timestamp_ms: int) -> Command:
    """The internal command deleting the keys `expired_keys` listed, if still due then."""
    args = tuple(part for key, expiry_ms in due for part in (key, b"%d" % expiry_ms))
    return Command(EXPIRE_DELETE, args, timestamp_ms)
