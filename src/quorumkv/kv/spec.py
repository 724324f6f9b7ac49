"""What the command table says about each command, and how a family module declares one.

A `CommandSpec` carries what Redis's COMMAND INFO reports: arity (N: exactly N words with the
name; -N: at least N), flags (write, readonly, denyoom, fast...), the positions of the keys
(first, last, step; last -1 means the last argument) and ACL categories. The server routes by
the keys, proposes writes, and answers COMMAND from it.

A `CommandDefinition` joins the spec to two functions. `parse(args)` checks everything that
does not depend on the data (syntax, numbers, option conflicts) and returns either an
`ErrorReply`, exactly the one Redis would give, or the parsed request. It runs before a write
is proposed, so these errors are definite and cost no log entry, and it runs again when the
entry is applied, so a replica never trusts what it did not check. `execute(keyspace, parsed)`
does the work against a Keyspace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quorumkv.kv.keyspace import Keyspace
from quorumkv.kv.reply import Reply

Arguments = tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command as COMMAND INFO describes it."""

    name: bytes
    arity: int
    flags: tuple[bytes, ...]
    first_key: int
    last_key: int
    key_step: int
    categories: tuple[bytes, ...]
    internal: bool = False
    """Proposed by quorumkv itself (QKV.*), never accepted from a client."""
    random: bool = False
    """Its answer is a random draw (HRANDFIELD, SRANDMEMBER): served by the shard's leader only,
    which seeds it from the read's ReadIndex context (never a follower's stale read)."""
    numkeys_index: int = 0
    """For commands whose keys follow a count (SINTERCARD numkeys key...): the position of
    that count (1: the first argument); first/last/step are then 0, as Redis reports them."""

    @property
    def is_write(self) -> bool:
        return b"write" in self.flags

    def arity_ok(self, argument_count: int) -> bool:
        """Whether `argument_count` arguments (the name excluded) fit the arity."""
        words = argument_count + 1
        return words == self.arity if self.arity >= 0 else words >= -self.arity


@dataclass(frozen=True, slots=True)
class CommandDefinition:
    """A command's spec with its parse and execute functions."""

    spec: CommandSpec
    parse: Callable[[Arguments], Any]
    execute: Callable[[Keyspace, Any], Reply]


def same_arguments(args: Arguments) -> Arguments:
    """The parse function of commands whose arguments need no checking before they run."""
    return args


def define(name: bytes, arity: int, flags: str, keys: tuple[int, int, int], categories: str,
           execute: Callable[[Keyspace, Any], Reply],
           parse: Callable[[Arguments], Any] = same_arguments,
           internal: bool = False, numkeys_index: int = 0,
           random: bool = False) -> CommandDefinition:
    """A definition from the terse form the family modules use: flags and categories as
    space-separated words, keys as (first, last, step)."""
    spec = CommandSpec(
        name=name, arity=arity, flags=tuple(flag.encode() for flag in flags.split()),
        first_key=keys[0], last_key=keys[1], key_step=keys[2],
        categories=tuple(category.encode() for category in categories.split()),
        internal=internal, numkeys_index=numkeys_index, random=random,
    )
    return CommandDefinition(spec, parse, execute)
