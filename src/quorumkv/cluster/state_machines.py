"""Which state machine applies a shard's entries: the metadata one for shard 0, kv's for data.

Theory of operation. The host applies every shard's committed entries the same way (decode the
command record, apply it to the shard's key-value view) and answers reads the same way (after
ReadIndex, read from the shard's view); only the state machine differs. `state_machine_for(
shard_id)` gives it, with the four operations the host and the dispatcher call:

    validate(name, args) -> ErrorReply | None   before proposing or reading (definite refusal)
    is_write(name) -> bool                      through the log, or a read
    apply(store, command) -> Reply              a committed entry, deterministic
    read(store, name, args, now_ms, choice) -> Reply
                                                a read after ReadIndex; `choice` seeds the
                                                randomness of HRANDFIELD, SRANDMEMBER...

`DATA` is kv's state machine plus the two internal reads behind CLUSTER COUNTKEYSINSLOT and
GETKEYSINSLOT; `METADATA` is metadata_state_machine's. Both are stateless singletons.
"""

from __future__ import annotations

from typing import Protocol

from quorumkv.cluster import metadata_state_machine
from quorumkv.cluster.metadata import METADATA_SHARD_ID
from quorumkv.cluster.redis_cluster import (
    COUNT_KEYS_IN_SLOT,
    GET_KEYS_IN_SLOT,
    count_keys_in_slot,
    keys_in_slot,
)
from quorumkv.cluster.slots import SLOT_COUNT
from quorumkv.kv import commands as kv_commands
from quorumkv.kv import state_machine as kv_state_machine
from quorumkv.kv.command import Command
from quorumkv.kv.numbers import parse_integer
from quorumkv.kv.reply import ErrorReply, Reply, arity_error
from quorumkv.kv.store import KeyValueStore


class StateMachine(Protocol):
    def validate(self, name: bytes, args: tuple[bytes, ...]) -> ErrorReply | None: ...

    def is_write(self, name: bytes) -> bool: ...

    def apply(self, store: KeyValueStore, command: Command) -> Reply: ...

    def read(self, store: KeyValueStore, name: bytes, args: tuple[bytes, ...],
             now_ms: int, choice: int | None = None) -> Reply: ...


_SLOT_READ_ARITY = {COUNT_KEYS_IN_SLOT: 1, GET_KEYS_IN_SLOT: 2}


def _slot_read_arguments(name: bytes, args: tuple[bytes, ...]) -> list[int] | ErrorReply:
    if len(args) != _SLOT_READ_ARITY[name]:
        return arity_error(name)
    numbers = [number for text in args if (number := parse_integer(text)) is not None]
    if len(numbers) != len(args) or not 0 <= numbers[0] < SLOT_COUNT or numbers[-1] < 0:
        return ErrorReply(b"ERR Invalid slot or number of keys")
    return numbers


class DataStateMachine:
    """A data shard: kv's commands, and the slot reads of the CLUSTER command."""

    def validate(self, name: bytes, args: tuple[bytes, ...]) -> ErrorReply | None:
        if name in _SLOT_READ_ARITY:
            checked = _slot_read_arguments(name, args)
            return checked if isinstance(checked, ErrorReply) else None
        return kv_commands.validate(name, args)

    def is_write(self, name: bytes) -> bool:
        return kv_commands.is_write(name)

    def apply(self, store: KeyValueStore, command: Command) -> Reply:
        return kv_state_machine.apply(store, command)

    def read(self, store: KeyValueStore, name: bytes, args: tuple[bytes, ...],
             now_ms: int, choice: int | None = None) -> Reply:
        if name not in _SLOT_READ_ARITY:
            return kv_state_machine.read(store, name, args, now_ms, choice)
        numbers = _slot_read_arguments(name, args)
        if isinstance(numbers, ErrorReply):
            return numbers
        if name == COUNT_KEYS_IN_SLOT:
            return count_keys_in_slot(store, numbers[0])
        return list(keys_in_slot(store, numbers[0], numbers[1]))


class MetadataStateMachine:
    """Shard 0: the cluster metadata."""

    def validate(self, name: bytes, args: tuple[bytes, ...]) -> ErrorReply | None:
        return metadata_state_machine.validate(name, args)

    def is_write(self, name: bytes) -> bool:
        return metadata_state_machine.is_write(name)

    def apply(self, store: KeyValueStore, command: Command) -> Reply:
        return metadata_state_machine.apply(store, command)

    def read(self, store: KeyValueStore, name: bytes, args: tuple[bytes, ...],
             now_ms: int, choice: int | None = None) -> Reply:
        return metadata_state_machine.read(store, name, args, now_ms)


DATA = DataStateMachine()
METADATA = MetadataStateMachine()


def state_machine_for(shard_id: int) -> StateMachine:
    """The state machine applying shard `shard_id`'s entries."""
    return METADATA if shard_id == METADATA_SHARD_ID else DATA
