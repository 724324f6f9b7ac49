"""Reply values: what a command answers, independent of the RESP version that will carry it.

The state machine answers with plain Python values wherever one type means one RESP type, and
with small wrapper classes where it does not:

    bytes                 bulk string                   None       null ($-1 in RESP2, _ in RESP3)
    int                   integer                       bool       boolean (RESP2: integer 1/0)
    float                 double (RESP2: bulk string)   list       array
    SimpleString          status reply (+OK)            ErrorReply error reply (-ERR ...)
    Map                   map (RESP2: flat array)       SetReply   set (RESP2: array)
    VerbatimString        verbatim string (RESP2: bulk) NULL_ARRAY null array (*-1 in RESP2)
    Pairs                 array of 2-element arrays (RESP2: one flat array; HRANDFIELD WITHVALUES)

`codec.resp.encode_reply` turns these into bytes for either protocol. `reply_to_wire` and
`reply_from_wire` carry them inside msgpack frames (a node forwarding a command to the leader
relays the leader's reply), since a reply must not depend on the RESP version of the client
that will finally read it.

Error replies carry the whole message including its code (`ERR`, `WRONGTYPE`...), as bytes,
because some quote the client's own bytes (an unknown command's name, an unsupported option).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias


@dataclass(frozen=True, slots=True)
class SimpleString:
    """A status reply such as +OK or +PONG; `value` must not contain CR or LF."""

    value: bytes


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error reply; `message` starts with the error code, e.g. b"ERR syntax error"."""

    message: bytes

    @property
    def code(self) -> bytes:
        """The error code: the first word of the message (ERR, WRONGTYPE, MOVED...)."""
        return self.message.split(b" ", 1)[0]


@dataclass(frozen=True, slots=True)
class Map:
    """A map reply as ordered (key, value) pairs; RESP2 flattens it to an array."""

    pairs: list[tuple[Reply, Reply]]


@dataclass(frozen=True, slots=True)
class SetReply:
    """A set reply (RESP3 `~`); RESP2 sends it as an array."""

    items: list[Reply]


@dataclass(frozen=True, slots=True)
class Pairs:
    """(member, value) pairs: an array of 2-element arrays in RESP3, one flat array in RESP2
    (HRANDFIELD WITHVALUES; ZRANGE WITHSCORES next)."""

    pairs: list[tuple[Reply, Reply]]


@dataclass(frozen=True, slots=True)
class VerbatimString:
    """A verbatim string (RESP3 `=`) with its three-letter format (b"txt", b"mkd")."""

    format: bytes
    text: bytes


class NullArray:
    """The null array: *-1 in RESP2 (what a few commands answer instead of a null bulk)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = NullArray()

Reply: TypeAlias = (
    bytes | int | float | bool | None | SimpleString | ErrorReply | Map | SetReply | Pairs
    | VerbatimString | NullArray | list["Reply"]
)

# ---- Common replies, shared so that the encoder's fast path can test identity --------------

OK = SimpleString(b"OK")
PONG = SimpleString(b"PONG")

WRONGTYPE = ErrorReply(b"WRONGTYPE Operation against a key holding the wrong kind of value")
SYNTAX_ERROR = ErrorReply(b"ERR syntax error")
NOT_AN_INTEGER = ErrorReply(b"ERR value is not an integer or out of range")
NOT_A_FLOAT = ErrorReply(b"ERR value is not a valid float")
OUT_OF_RANGE = ErrorReply(b"ERR value is out of range")
NO_SUCH_KEY = ErrorReply(b"ERR no such key")
INCREMENT_OVERFLOW = ErrorReply(b"ERR increment or decrement would overflow")
DECREMENT_OVERFLOW = ErrorReply(b"ERR decrement would overflow")
INCREMENT_NOT_FINITE = ErrorReply(b"ERR increment would produce NaN or Infinity")
STRING_TOO_LONG = ErrorReply(b"ERR string exceeds maximum allowed size (proto-max-bulk-len)")
OFFSET_OUT_OF_RANGE = ErrorReply(b"ERR offset is out of range")
INVALID_CURSOR = ErrorReply(b"ERR invalid cursor")


def arity_error(command_name: bytes) -> ErrorReply:
    """Redis's reply to a wrong argument count; the name is the command's lower-case name."""
    return ErrorReply(b"ERR wrong number of arguments for '%b' command" % command_name.lower())


def c_string(text: bytes) -> bytes:
    """`text` as C's printf %s shows it: up to its first NUL byte."""
    return text.split(b"\0", 1)[0]


def unknown_command_error(name: bytes, args: tuple[bytes, ...]) -> ErrorReply:
    """Redis's reply to an unknown command, quoting the name and the first arguments as typed
    (as printf %s does, each up to its first NUL byte)."""
    quoted = b""
    for argument in args:
        if len(quoted) >= 128:
            break
        quoted += b"'%b' " % c_string(argument)[: 128 - len(quoted)]
    return ErrorReply(
        b"ERR unknown command '%b', with args beginning with: %b" % (c_string(name)[:128], quoted)
    )


def invalid_expire_time_error(command_name: bytes) -> ErrorReply:
    """Redis's reply to an expiry that is not positive or overflows, naming the command."""
    return ErrorReply(b"ERR invalid expire time in '%b' command" % command_name.lower())


# ---- Carrying replies in msgpack frames -----------------------------------------------------

_SIMPLE, _ERROR, _MAP, _SET, _VERBATIM, _NULL_ARRAY, _ARRAY, _PAIRS = range(8)


def reply_to_wire(reply: Reply) -> Any:
    """A msgpack-serialisable form of `reply` (bytes, int, float, bool and None stand for
    themselves; every other kind becomes a tagged list)."""
    if reply is None or isinstance(reply, (bytes, int, float)):
        return reply
    if isinstance(reply, SimpleString):
        return [_SIMPLE, reply.value]
    if isinstance(reply, ErrorReply):
        return [_ERROR, reply.message]
    if isinstance(reply, list):
        return [_ARRAY, [reply_to_wire(item) for item in reply]]
    if isinstance(reply, Map):
        return [_MAP, [[reply_to_wire(k), reply_to_wire(v)] for k, v in reply.pairs]]
    if isinstance(reply, SetReply):
        return [_SET, [reply_to_wire(item) for item in reply.items]]
    if isinstance(reply, Pairs):
        return [_PAIRS, [[reply_to_wire(k), reply_to_wire(v)] for k, v in reply.pairs]]
    if isinstance(reply, VerbatimString):
        return [_VERBATIM, reply.format, reply.text]
    return [_NULL_ARRAY]


def reply_from_wire(value: Any) -> Reply:
    """The reply `reply_to_wire` produced `value` from. Raises ValueError on a malformed form."""
    if value is None or isinstance(value, (bytes, int, float)):
        return value  # type: ignore[no-any-return,unused-ignore]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"not a reply: {value!r}")
    tag = value[0]
    if tag == _SIMPLE:
        return SimpleString(bytes(value[1]))
    if tag == _ERROR:
        return ErrorReply(bytes(value[1]))
    if tag == _ARRAY:
        return [reply_from_wire(item) for item in value[1]]
    if tag == _MAP:
        return Map([(reply_from_wire(k), reply_from_wire(v)) for k, v in value[1]])
    if tag == _SET:
        return SetReply([reply_from_wire(item) for item in value[1]])
    if tag == _PAIRS:
        return Pairs([(reply_from_wire(k), reply_from_wire(v)) for k, v in value[1]])
    if tag == _VERBATIM:
        return VerbatimString(bytes(value[1]), bytes(value[2]))
    if tag == _NULL_ARRAY:
        return NULL_ARRAY
    raise ValueError(f"unknown reply tag {tag!r}")
