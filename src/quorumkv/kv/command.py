"""The command record: what a Raft log entry carries for the state machine to apply.

A command is the client's command name and arguments plus `timestamp_ms`, the leader's wall
clock when it proposed the command. Expiry is computed from that timestamp, never from a
replica's own clock, so every replica applying the entry reaches the same result (STYLE.md,
Determinism; TigerBeetle stamps its prepares the same way).

The encoding is a msgpack array whose first element is `COMMAND_FORMAT_VERSION`:
[version, name, [arg, ...], timestamp_ms]. `decode_command` checks every field and raises
errors.InvalidCommand on anything else.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack  # type: ignore[import-untyped,unused-ignore]

from quorumkv.errors import InvalidCommand

COMMAND_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Command:
    """One command to apply: upper-case `name`, its `args`, and the leader's `timestamp_ms`."""

    name: bytes
    args: tuple[bytes, ...]
    timestamp_ms: int


def encode_command(command: Command) -> bytes:
    """The versioned msgpack record of `command`."""
    return msgpack.packb(  # type: ignore[no-any-return,unused-ignore]
        [COMMAND_FORMAT_VERSION, command.name, list(command.args), command.timestamp_ms],
        use_bin_type=True,
    )


def decode_command(data: bytes) -> Command:
    """The command `encode_command` produced `data` from; raises InvalidCommand otherwise."""
    try:
        record = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise InvalidCommand(f"not msgpack ({error.__class__.__name__}: {error})") from error
    if not isinstance(record, list) or len(record) != 4:
        raise InvalidCommand(f"expected a list of 4 fields, got {type(record).__name__}")
    version, name, args, timestamp_ms = record
    if version != COMMAND_FORMAT_VERSION or isinstance(version, bool):
        raise InvalidCommand(
            f"format version {version!r} (this build reads {COMMAND_FORMAT_VERSION})")
    if not isinstance(name, bytes) or not isinstance(args, list):
        raise InvalidCommand("the name must be bytes and the arguments a list")
    if not all(isinstance(argument, bytes) for argument in args):
        raise InvalidCommand("every argument must be bytes")
    if not isinstance(timestamp_ms, int) or isinstance(timestamp_ms, bool):
        raise InvalidCommand(f"timestamp {timestamp_ms!r} is not an integer")
    return Command(name, tuple(args), timestamp_ms)
