"""RESP, sans I/O: client commands in, replies out, for RESP2 and RESP3.

Parsing follows Redis's own request reader (networking.c) rather than a generic RESP reader,
because a server must accept and refuse exactly what Redis does:

- A request starting with `*` is a multibulk: `*<n>\\r\\n` then n bulk strings
  `$<len>\\r\\n<bytes>\\r\\n`. Lengths are read as Redis reads them (no sign, no leading zero,
  no spaces); a count above limits.command_arguments_max or a bulk longer than
  limits.bulk_bytes_max is refused as soon as its header arrives, before its bytes do. `*0`
  and negative counts are empty requests and are skipped.
- Anything else is an inline command: one line, split into words as Redis's sdssplitargs
  does (quotes, escapes), e.g. `PING` or `SET k "a b"` typed into telnet.

hiredis's reader is not used for requests: it cannot tell where one request ends (it reports
neither its position nor inline commands), it accepts any reply type inside a request, and it
reads a header like `*4000000000` or `$4000000000` and waits instead of refusing it, so it
could not enforce these rules without a second pass over the same bytes. Instead, the common
case, a pipeline of complete multibulk requests whose values hold no CRLF, is read with one
`split` of the buffer and header lookups in a table of canonical texts, so Python does no
per-byte work; every other request is read one at a time with every check Redis makes. A
test holds the two paths to the same answers. The parser keeps the state of a partly received
command, so a large value arriving in many chunks is neither re-parsed nor copied more than
once.

A malformed request raises `RespProtocolError`, whose `reply` is the error Redis sends before
closing the connection (`-ERR Protocol error: invalid multibulk length`). Requests complete
before the malformed one are still returned first: the error is raised when they are used up.

`encode_reply` serialises a kv.reply value for the client's protocol version: nulls, maps,
sets, doubles and booleans differ between RESP2 and RESP3 (kv/reply.py lists the mapping).
The common replies (OK, a bulk string, an integer, a null) take a fast path.
"""

from __future__ import annotations

from collections import deque

from quorumkv import limits
from quorumkv.invariant import InvariantViolation
from quorumkv.kv.numbers import format_double, parse_integer
from quorumkv.kv.reply import (
    NULL_ARRAY,
    OK,
    ErrorReply,
    Map,
    Pairs,
    Reply,
    SetReply,
    SimpleString,
    VerbatimString,
)


class RespProtocolError(Exception):
    """The client sent bytes that are not a valid request; the connection must be closed
    after sending `reply`. str(error) is Redis's text after "Protocol error: "."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def reply(self) -> ErrorReply:
        """The error Redis answers before closing the connection."""
        return ErrorReply(b"ERR Protocol error: " + self.message.encode("utf-8", "replace"))


_ASTERISK, _DOLLAR, _CARRIAGE_RETURN = 42, 36, 13
_FAST_NUMBERS_MAX = 16_384
_CANONICAL_LENGTHS = {b"%d" % number: number for number in range(_FAST_NUMBERS_MAX)}
"""Header numbers as clients write them, read with one dict lookup; anything else goes
through parse_integer, which accepts and refuses exactly what Redis's string2ll does."""
_MULTIBULK_HEADERS = {b"*%d" % number: number for number in range(1, 1025)}
_BULK_HEADERS = {b"$%d" % number: number for number in range(_FAST_NUMBERS_MAX)}


def _header_number(text: bytes) -> int | None:
    number = _CANONICAL_LENGTHS.get(text)
    return number if number is not None else parse_integer(text)


class RespParser:
    """Incremental request parser for one client connection: feed bytes, take commands."""

    def __init__(self, bulk_bytes_max: int = limits.bulk_bytes_max,
                 arguments_max: int = limits.command_arguments_max,
                 inline_bytes_max: int = limits.inline_bytes_max,
                 buffer_bytes_max: int = limits.query_buffer_bytes_max) -> None:
        self._bulk_bytes_max = bulk_bytes_max
        self._arguments_max = arguments_max
        self._inline_bytes_max = inline_bytes_max
        self._buffer_bytes_max = buffer_bytes_max
        self._fast_path = bulk_bytes_max >= _FAST_NUMBERS_MAX and arguments_max >= 1024
        # Received bytes not parsed yet, as the chunks they arrived in (joined only when
        # parsing can make progress, so a long value is copied once, not once per chunk).
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._needed = 1  # parsing cannot progress before this many bytes are buffered
        self._ready: deque[list[bytes]] = deque()
        self._error: RespProtocolError | None = None
        # A multibulk being received: its arguments so far, how many remain, and the length
        # of the bulk string whose bytes are awaited (-1: its header is not read yet).
        self._arguments: list[bytes] | None = None
        self._remaining = 0
        self._bulk_length = -1

    def feed(self, data: bytes) -> None:
        """Add received bytes."""
        if data:
            self._chunks.append(data)
            self._buffered += len(data)

    def get_command(self) -> list[bytes] | None:
        """The next complete command, or None until more bytes arrive. Raises
        RespProtocolError once the commands before a malformed request are taken."""
        if not self._ready:
            self._parse()
            if not self._ready:
                if self._error is not None:
                    raise self._error
                return None
        return self._ready.popleft()

    def commands(self) -> list[list[bytes]]:
        """Every complete command received so far (possibly none). Raises RespProtocolError
        when the next request is malformed and no command precedes it."""
        self._parse()
        if not self._ready and self._error is not None:
            raise self._error
        commands = list(self._ready)
        self._ready.clear()
        return commands

    # ---- parsing ------------------------------------------------------------------------------

    def _parse(self) -> None:
        if self._error is not None or self._buffered < self._needed:
            if self._buffered > self._buffer_bytes_max:
                self._fail(RespProtocolError("query buffer limit reached"))
            return
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            position = 0
            if self._fast_path and self._arguments is None and data[0] == _ASTERISK:
                position = self._parse_pipeline(data)
            position = self._parse_requests(data, position)
        except RespProtocolError as error:
            self._fail(error)
            return
        rest = data[position:] if position < len(data) else b""
        self._chunks = [rest] if rest else []
        self._buffered = len(rest)
        self._needed = self._bulk_length + 2 if self._bulk_length >= 0 else len(rest) + 1
        if self._buffered > self._buffer_bytes_max:
            self._fail(RespProtocolError("query buffer limit reached"))

    def _fail(self, error: RespProtocolError) -> None:
        self._error = error
        self._chunks = []
        self._buffered = 0

    def _parse_pipeline(self, data: bytes) -> int:
        """The fast path: read the leading run of complete multibulk requests whose values
        hold no CRLF, with one split of the whole buffer and no per-byte work in Python.
        Every header must be exactly the canonical text for the value that follows it, so
        what is accepted here is what _parse_requests would accept; anything else (inline
        commands, long or CRLF-holding values, incomplete requests) is left to it. Returns
        the bytes used."""
        tokens = data.split(b"\r\n")
        complete = len(tokens) - 1  # the last token is not followed by CRLF (yet)
        index, ready = 0, self._ready
        while index < complete:
            count = _MULTIBULK_HEADERS.get(tokens[index])
            if count is None:
                break
            stop = index + 1 + 2 * count
            if stop > complete:
                break
            arguments = tokens[index + 2 : stop : 2]
            if list(map(_BULK_HEADERS.get, tokens[index + 1 : stop : 2])) != list(
                    map(len, arguments)):
                break
            ready.append(arguments)
            index = stop
        return sum(map(len, tokens[:index])) + 2 * index

    def _parse_requests(self, data: bytes, position: int) -> int:
        """Parse complete requests from `data` into the ready queue, one by one, checking
        everything as Redis does; returns the bytes used."""
        end = len(data)
        while True:
            arguments = self._arguments
            if arguments is not None:
                position = self._parse_arguments(data, position, arguments)
                if self._arguments is not None:
                    return position  # the command's remaining bytes have not arrived
                continue
            if position >= end:
                return position
            if data[position] == _ASTERISK:
                following = self._parse_multibulk(data, position)
            else:
                following = self._parse_inline(data, position)
            if following is None:
                return position
            position = following

    def _parse_multibulk(self, data: bytes, position: int) -> int | None:
        """Read a multibulk request from its `*`. A request received whole is read here in
        one loop (the common case); a partial one is left in progress for _parse_arguments.
        Returns the position after what was read, or None if even the header is incomplete."""
        find, end, lengths = data.find, len(data), _CANONICAL_LENGTHS
        newline = find(b"\r", position)
        if newline < 0 or newline + 1 >= end:
            if end - position > self._inline_bytes_max:
                raise RespProtocolError("too big mbulk count string")
            return None
        count = _header_number(data[position + 1 : newline])
        if count is None or count > self._arguments_max:
            raise RespProtocolError("invalid multibulk length")
        position = newline + 2
        if count <= 0:
            return position  # an empty request: skipped
        arguments: list[bytes] = []
        append = arguments.append
        for _ in range(count):
            newline = find(b"\r", position)
            if newline < 0 or data[position] != _DOLLAR:
                break  # incomplete or malformed: the careful path decides which
            length = lengths.get(data[position + 1 : newline])
            if length is None or length > self._bulk_bytes_max:
                break
            start = newline + 2
            stop = start + length
            if stop + 2 > end:
                break
            append(data[start:stop])
            position = stop + 2  # Redis does not check the CRLF after the bytes
        else:
            self._ready.append(arguments)
            return position
        self._arguments, self._remaining, self._bulk_length = arguments, count - len(arguments), -1
        return position

    def _parse_arguments(self, data: bytes, position: int, arguments: list[bytes]) -> int:
        """Read bulk strings of the command in progress, checking each header as Redis does;
        returns where reading stopped. The command moves to the ready queue when its last
        argument is read."""
        end = len(data)
        remaining, bulk_length = self._remaining, self._bulk_length
        while remaining:
            if bulk_length < 0:
                newline = data.find(b"\r", position)
                if newline < 0 or newline + 1 >= end:
                    if end - position > self._inline_bytes_max:
                        raise RespProtocolError("too big bulk count string")
                    break
                if data[position] != _DOLLAR:
                    raise RespProtocolError(f"expected '$', got '{chr(data[position])}'")
                length = _header_number(data[position + 1 : newline])
                if length is None or length < 0 or length > self._bulk_bytes_max:
                    raise RespProtocolError("invalid bulk length")
                position, bulk_length = newline + 2, length
            if end - position < bulk_length + 2:
                break
            arguments.append(data[position : position + bulk_length])
            position += bulk_length + 2
            bulk_length = -1
            remaining -= 1
        self._remaining, self._bulk_length = remaining, bulk_length
        if not remaining:
            self._ready.append(arguments)
            self._arguments = None
        return position

    def _parse_inline(self, data: bytes, position: int) -> int | None:
        """Read one inline command line; returns the position after it, or None if the line
        is not complete yet."""
        newline = data.find(b"\n", position)
        if newline < 0:
            if len(data) - position > self._inline_bytes_max:
                raise RespProtocolError("too big inline request")
            return None
        line_end = newline
        if newline > position and data[newline - 1] == _CARRIAGE_RETURN:
            line_end -= 1
        words = split_inline_arguments(data[position:line_end])
        if words is None:
            raise RespProtocolError("unbalanced quotes in request")
        if words:
            self._ready.append(words)
        return newline + 1


# ---- inline commands ------------------------------------------------------------------------

_QUOTE, _APOSTROPHE, _BACKSLASH = 34, 39, 92
_BLANKS = frozenset(b" \t\n\v\f\r")  # C isspace()
_WORD_ENDS = frozenset(b" \n\r\t")  # sdssplitargs also stops an unquoted word at NUL
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def split_inline_arguments(line: bytes) -> list[bytes] | None:
    """The words of an inline command line as Redis's sdssplitargs splits them, or None for
    unbalanced quotes. Like the C code, the line ends at its first NUL byte (Redis itself
    would not even see the newline after a NUL and wait for more input; we answer)."""
    line = line.split(b"\0", 1)[0]
    if not any(byte in line for byte in b"\"'\v\f"):
        return line.split()  # no quotes and no exotic blanks: plain whitespace splitting
    words: list[bytes] = []
    position, end = 0, len(line)
    while True:
        while position < end and line[position] in _BLANKS:
            position += 1
        if position >= end:
            return words
        word = _read_word(line, position)
        if word is None:
            return None
        position, text = word
        words.append(text)


def _read_word(line: bytes, position: int) -> tuple[int, bytes] | None:
    """One word starting at `position`: (position after it, its bytes), None if unbalanced."""
    end, out = len(line), bytearray()
    quote = 0  # the quote character we are inside, or 0
    while True:
        byte = line[position] if position < end else 0
        if quote == _QUOTE:
            if byte == _BACKSLASH and position + 3 < end and line[position + 1] == ord("x") \
                    and line[position + 2] in _HEX_DIGITS and line[position + 3] in _HEX_DIGITS:
                out.append(int(line[position + 2 : position + 4], 16))
                position += 3
            elif byte == _BACKSLASH and position + 1 < end:
                position += 1
                out.append(_ESCAPES.get(line[position], line[position]))
            elif byte == _QUOTE:
                if position + 1 < end and line[position + 1] not in _BLANKS:
                    return None  # a closing quote must be followed by a blank or the end
                return position + 1, bytes(out)
            elif position >= end:
                return None
            else:
                out.append(byte)
        elif quote == _APOSTROPHE:
            if byte == _BACKSLASH and position + 1 < end and line[position + 1] == _APOSTROPHE:
                position += 1
                out.append(_APOSTROPHE)
            elif byte == _APOSTROPHE:
                if position + 1 < end and line[position + 1] not in _BLANKS:
                    return None
                return position + 1, bytes(out)
            elif position >= end:
                return None
            else:
                out.append(byte)
        elif position >= end or byte in _WORD_ENDS:
            return position, bytes(out)
        elif byte in (_QUOTE, _APOSTROPHE):
            quote = byte
        else:
            out.append(byte)
        position += 1


# ---- replies --------------------------------------------------------------------------------

_OK_BYTES = b"+OK\r\n"
_NULL_BULK = b"$-1\r\n"
_NULL_ARRAY_BYTES = b"*-1\r\n"
_NULL_RESP3 = b"_\r\n"


def encode_reply(reply: Reply, protocol: int = 2) -> bytes:
    """The bytes of `reply` in RESP`protocol` (2 or 3)."""
    if type(reply) is bytes:
        return b"$%d\r\n%b\r\n" % (len(reply), reply)
    if reply is OK:
        return _OK_BYTES
    if type(reply) is int:
        return b":%d\r\n" % reply
    if reply is None:
        return _NULL_BULK if protocol < 3 else _NULL_RESP3
    out = bytearray()
    _encode_into(out, reply, protocol)
    return bytes(out)


def encode_replies(replies: list[Reply], protocol: int = 2) -> bytes:
    """The bytes of several replies back to back (a pipeline's answers)."""
    return b"".join(encode_reply(reply, protocol) for reply in replies)


def _encode_into(out: bytearray, reply: Reply, protocol: int) -> None:
    if isinstance(reply, bytes):
        out += b"$%d\r\n%b\r\n" % (len(reply), reply)
    elif isinstance(reply, bool):
        if protocol >= 3:
            out += b"#t\r\n" if reply else b"#f\r\n"
        else:
            out += b":1\r\n" if reply else b":0\r\n"
    elif isinstance(reply, int):
        out += b":%d\r\n" % reply
    elif reply is None:
        out += _NULL_BULK if protocol < 3 else _NULL_RESP3
    elif isinstance(reply, SimpleString):
        out += b"+%b\r\n" % _one_line(reply.value)
    elif isinstance(reply, ErrorReply):
        out += b"-%b\r\n" % _one_line(reply.message)
    elif isinstance(reply, list):
        out += b"*%d\r\n" % len(reply)
        for item in reply:
            _encode_into(out, item, protocol)
    else:
        _encode_rare_into(out, reply, protocol)


def _encode_rare_into(out: bytearray, reply: Reply, protocol: int) -> None:
    if isinstance(reply, float):
        text = format_double(reply)
        out += b",%b\r\n" % text if protocol >= 3 else b"$%d\r\n%b\r\n" % (len(text), text)
    elif isinstance(reply, Map):
        out += (b"%%%d\r\n" if protocol >= 3 else b"*%d\r\n") % (
            len(reply.pairs) if protocol >= 3 else 2 * len(reply.pairs))
        for key, value in reply.pairs:
            _encode_into(out, key, protocol)
            _encode_into(out, value, protocol)
    elif isinstance(reply, SetReply):
        out += (b"~%d\r\n" if protocol >= 3 else b"*%d\r\n") % len(reply.items)
        for item in reply.items:
            _encode_into(out, item, protocol)
    elif isinstance(reply, Pairs):
        out += b"*%d\r\n" % (len(reply.pairs) if protocol >= 3 else 2 * len(reply.pairs))
        for key, value in reply.pairs:
            if protocol >= 3:
                out += b"*2\r\n"
            _encode_into(out, key, protocol)
            _encode_into(out, value, protocol)
    elif isinstance(reply, VerbatimString):
        if protocol >= 3:
            out += b"=%d\r\n%b:%b\r\n" % (len(reply.text) + 4, reply.format[:3], reply.text)
        else:
            out += b"$%d\r\n%b\r\n" % (len(reply.text), reply.text)
    elif reply is NULL_ARRAY:
        out += _NULL_ARRAY_BYTES if protocol < 3 else _NULL_RESP3
    else:
        raise InvariantViolation(f"not a reply value: {reply!r}")


def _one_line(text: bytes) -> bytes:
    """Status and error lines cannot hold CR or LF: Redis turns them into spaces."""
    if b"\r" in text or b"\n" in text:
        return text.replace(b"\r", b" ").replace(b"\n", b" ")
    return text
