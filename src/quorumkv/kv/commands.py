"""The command table and the checks made before a command is proposed.

Every command the state machine knows is declared by its family module (strings, keys,
expiry, scan, extensions) as a `spec.CommandDefinition`; this module gathers them into one
table keyed by upper-case name and answers the questions the server asks before anything is
proposed: does this command exist (`command_spec`), are its arguments acceptable (`validate`,
with Redis's own error texts), does it write (`is_write`), and which keys does it touch
(`keys_of`, for routing by hash slot).

An error `validate` returns is definite: nothing was proposed. `state_machine.apply` runs the
same checks again on every replica, so a bad entry can never be half-applied.
"""

from __future__ import annotations

from typing import Any

from quorumkv import limits
from quorumkv.kv import expiry, extensions, hashes, keys, scan, sets, strings
from quorumkv.kv.numbers import parse_integer
from quorumkv.kv.reply import ErrorReply, arity_error, unknown_command_error
from quorumkv.kv.spec import Arguments, CommandDefinition, CommandSpec

TABLE: dict[bytes, CommandDefinition] = {
    definition.spec.name: definition
    for family in (strings, keys, expiry, scan, extensions, hashes, sets)
    for definition in family.DEFINITIONS
}


def definition_of(name: bytes) -> CommandDefinition | None:
    """The definition of command `name` (any case), or None if there is no such command."""
    definition = TABLE.get(name)
    return definition if definition is not None else TABLE.get(name.upper())


def command_spec(name: bytes) -> CommandSpec | None:
    """What COMMAND INFO says of `name` (any case); None for unknown and internal commands."""
    definition = definition_of(name)
    if definition is None or definition.spec.internal:
        return None
    return definition.spec


def all_specs() -> list[CommandSpec]:
    """Every command clients may send, for COMMAND, COMMAND COUNT and COMMAND LIST."""
    return [d.spec for d in TABLE.values() if not d.spec.internal]


def is_write(name: bytes) -> bool:
    """Whether `name` changes data (so it goes through the Raft log)."""
    definition = definition_of(name)
    return definition is not None and definition.spec.is_write


def is_random_read(name: bytes) -> bool:
    """Whether `name` is a read answering a random draw (served by the leader only)."""
    definition = definition_of(name)
    return definition is not None and definition.spec.random


def keys_of(name: bytes, args: Arguments) -> list[bytes]:
    """The keys command `name` touches, by its spec's key positions (for routing by slot)."""
    definition = definition_of(name)
    if definition is not None and definition.spec.numkeys_index:
        return _counted_keys(definition.spec.numkeys_index, args)
    if definition is None or definition.spec.first_key == 0:
        return []
    spec = definition.spec
    last = spec.last_key if spec.last_key >= 0 else len(args) + 1 + spec.last_key
    return list(args[spec.first_key - 1 : min(last, len(args)) : spec.key_step])


def _counted_keys(numkeys_index: int, args: Arguments) -> list[bytes]:
    """The keys after a count argument; with a count that is not a positive number, the word
    after it, so that the command is routed and its own parse answers the error."""
    if len(args) < numkeys_index:
        return []
    count = parse_integer(args[numkeys_index - 1])
    if count is None or count < 1:
        count = 1
    return list(args[numkeys_index : numkeys_index + count])


def validate(name: bytes, args: Arguments) -> ErrorReply | None:
    """The error Redis would answer before running this client command, or None if it may be
    proposed (or read). Internal commands (QKV.*) are unknown to clients."""
    definition = definition_of(name)
    if definition is None or definition.spec.internal:
        return unknown_command_error(name, args)
    checked = check(definition, args)
    return checked if isinstance(checked, ErrorReply) else None


def check(definition: CommandDefinition, args: Arguments) -> Any:
    """The parsed request for `args`, or the ErrorReply that refuses them: arity, key size,
    then the command's own parse."""
    spec = definition.spec
    if not spec.arity_ok(len(args)):
        return arity_error(spec.name)
    if (spec.first_key or spec.numkeys_index) and args and max(map(len, args)) > limits.key_bytes_max:
        for key in keys_of(spec.name, args):
            if len(key) > limits.key_bytes_max:
                return ErrorReply(b"ERR key is too long (%d bytes; the limit is %d bytes)"
                                  % (len(key), limits.key_bytes_max))
    return definition.parse(args)
