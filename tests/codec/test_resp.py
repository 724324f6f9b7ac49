"""The RESP codec: requests parse as Redis parses them, replies read back through hiredis."""

from __future__ import annotations

import math

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quorumkv.codec.resp import (
    RespParser,
    RespProtocolError,
    encode_replies,
    encode_reply,
    split_inline_arguments,
)
from quorumkv.kv.reply import (
    NULL_ARRAY,
    OK,
    ErrorReply,
    Map,
    Reply,
    SetReply,
    SimpleString,
    VerbatimString,
)


def multibulk(*words: bytes) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%b\r\n" % (len(w), w) for w in words)


def parse_all(data: bytes, parser: RespParser | None = None) -> list[list[bytes]]:
    parser = parser or RespParser()
    parser.feed(data)
    return parser.commands()


def protocol_error(data: bytes, parser: RespParser | None = None) -> str:
    parser = parser or RespParser()
    parser.feed(data)
    with pytest.raises(RespProtocolError) as raised:
        while parser.get_command() is not None:
            pass
    return str(raised.value)


# ---- requests --------------------------------------------------------------------------------

WORDS = st.lists(st.binary(max_size=40), min_size=1, max_size=8)


@given(st.lists(WORDS, min_size=1, max_size=6))
def test_multibulk_commands_round_trip(commands: list[list[bytes]]) -> None:
    """Any pipeline of multibulk commands parses back to the same argument lists."""
    data = b"".join(multibulk(*command) for command in commands)
    assert parse_all(data) == commands


@settings(max_examples=60, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=4))
def test_split_at_every_byte_boundary(commands: list[list[bytes]]) -> None:
    """Feeding a pipeline in two parts, split anywhere, gives the same commands."""
    data = b"".join(multibulk(*command) for command in commands) + b"PING  x\r\n"
    expected = [*commands, [b"PING", b"x"]]
    for cut in range(len(data) + 1):
        parser = RespParser()
        parser.feed(data[:cut])
        got = parser.commands()
        parser.feed(data[cut:])
        got += parser.commands()
        assert got == expected, cut


def test_byte_by_byte_feeding() -> None:
    """One byte at a time also yields every command, in order."""
    data = multibulk(b"SET", b"key", b"x" * 300) + b"GET key\n" + multibulk(b"PING")
    parser = RespParser()
    got: list[list[bytes]] = []
    for byte in data:
        parser.feed(bytes([byte]))
        got += parser.commands()
    assert got == [[b"SET", b"key", b"x" * 300], [b"GET", b"key"], [b"PING"]]


def test_get_command_one_at_a_time() -> None:
    """get_command answers commands in order, then None until more bytes arrive."""
    parser = RespParser()
    parser.feed(multibulk(b"A") + multibulk(b"B") + b"*1\r\n$1\r")
    assert parser.get_command() == [b"A"]
    assert parser.get_command() == [b"B"]
    assert parser.get_command() is None
    parser.feed(b"\nC\r\n")
    assert parser.get_command() == [b"C"]
    assert parser.get_command() is None


def test_empty_multibulks_are_skipped() -> None:
    """*0 and *-1 are empty requests: no command, no error (as in Redis)."""
    assert parse_all(b"*0\r\n*-1\r\n" + multibulk(b"PING")) == [[b"PING"]]


def test_large_bulk_in_chunks() -> None:
    """A large value arriving in many chunks is assembled once complete."""
    value = bytes(range(256)) * 4096
    data = multibulk(b"SET", b"k", value)
    parser = RespParser()
    for start in range(0, len(data), 4096):
        parser.feed(data[start:start + 4096])
        commands = parser.commands()
        if start + 4096 < len(data):
            assert commands == []
    assert commands == [[b"SET", b"k", value]]


@pytest.mark.parametrize(("data", "message"), [
    (b"*abc\r\n", "invalid multibulk length"),
    (b"*01\r\n", "invalid multibulk length"),
    (b"*2\r\n+OK\r\n", "expected '$', got '+'"),
    (b"*1\r\n:1\r\n", "expected '$', got ':'"),
    (b"*1\r\n$-1\r\n", "invalid bulk length"),
    (b"*1\r\n$x\r\n", "invalid bulk length"),
    (b"*1\r\n$536870913\r\n", "invalid bulk length"),
    (b"*1048577\r\n", "invalid multibulk length"),
    (b"SET k \"unterminated\r\n", "unbalanced quotes in request"),
    (b"SET k \"a\"b\r\n", "unbalanced quotes in request"),
    (b"SET k 'a\r\n", "unbalanced quotes in request"),
])
def test_malformed_requests(data: bytes, message: str) -> None:
    """Malformed requests raise RespProtocolError with Redis's text."""
    assert protocol_error(data) == message


def test_protocol_error_reply_is_redis_text() -> None:
    """The error's reply is what Redis sends before closing the connection."""
    error = RespProtocolError("invalid multibulk length")
    assert encode_reply(error.reply) == b"-ERR Protocol error: invalid multibulk length\r\n"


def test_oversized_headers_and_lines() -> None:
    """Headers and inline lines without a newline beyond 64 KiB are refused at once."""
    assert protocol_error(b"*" + b"1" * 70_000) == "too big mbulk count string"
    assert protocol_error(b"*1\r\n$" + b"1" * 70_000) == "too big bulk count string"
    assert protocol_error(b"GET " + b"k" * 70_000) == "too big inline request"


def test_limits_are_configurable() -> None:
    """A parser with smaller bounds refuses what exceeds them."""
    parser = RespParser(bulk_bytes_max=10, arguments_max=2)
    assert protocol_error(b"*1\r\n$11\r\n", parser) == "invalid bulk length"
    assert protocol_error(b"*3\r\n", RespParser(arguments_max=2)) == "invalid multibulk length"
    small = RespParser(buffer_bytes_max=100)
    small.feed(b"*1\r\n$500\r\n" + b"x" * 200)
    with pytest.raises(RespProtocolError):
        small.commands()


def test_error_comes_after_the_commands_before_it() -> None:
    """Commands complete before a malformed request are answered first."""
    parser = RespParser()
    parser.feed(multibulk(b"SET", b"k", b"v") + b"PING\r\n*x\r\n" + multibulk(b"GET", b"k"))
    assert parser.commands() == [[b"SET", b"k", b"v"], [b"PING"]]
    with pytest.raises(RespProtocolError):
        parser.commands()
    with pytest.raises(RespProtocolError):  # the connection stays failed
        parser.get_command()


@pytest.mark.parametrize(("line", "words"), [
    (b"PING", [b"PING"]),
    (b"  SET   k  v ", [b"SET", b"k", b"v"]),
    (b"SET k \"a b\"", [b"SET", b"k", b"a b"]),
    (b"SET k 'a b'", [b"SET", b"k", b"a b"]),
    (b"SET k \"\\x41\\n\\t\\\\\\\"\"", [b"SET", b"k", b"A\n\t\\\""]),
    (b"SET k 'it\\'s'", [b"SET", b"k", b"it's"]),
    (b"SET k \"\"", [b"SET", b"k", b""]),
    (b"a\"b c\"d", None),
    (b"a\"b c\" d", [b"ab c", b"d"]),
    (b"x\vy z", [b"x\vy", b"z"]),
    (b"\t", []),
    (b"", []),
    (b"GET k\0ignored", [b"GET", b"k"]),
    (b"\"\\xZZ\"", [b"xZZ"]),
])
def test_inline_splitting_follows_sdssplitargs(line: bytes, words: list[bytes] | None) -> None:
    """Inline commands split like Redis's sdssplitargs: quotes, escapes, NUL ends the line."""
    assert split_inline_arguments(line) == words


def test_inline_commands_in_a_pipeline() -> None:
    """Inline lines end at LF with or without CR; empty lines are no command."""
    data = b"PING\r\n\r\nECHO \"hi there\"\nSET a b\r\n" + multibulk(b"GET", b"a")
    assert parse_all(data) == [[b"PING"], [b"ECHO", b"hi there"], [b"SET", b"a", b"b"],
                               [b"GET", b"a"]]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(
    st.binary(max_size=30),
    st.sampled_from([b"*", b"$", b"\r\n", b"*2\r\n", b"$3\r\n", b"-1", b"\"", b"'", b"\\x",
                     b"*1048577\r\n", b"$999999999999\r\n", b"\0"]),
), max_size=12))
def test_fuzz_never_raises_anything_but_protocol_errors(chunks: list[bytes]) -> None:
    """Random and malformed bytes give commands or RespProtocolError, never another error,
    and parsing always returns."""
    parser = RespParser()
    for chunk in chunks:
        parser.feed(chunk)
        try:
            for command in parser.commands():
                assert command and all(isinstance(word, bytes) for word in command)
        except RespProtocolError as error:
            assert error.reply.message.startswith(b"ERR Protocol error: ")
            return


# ---- replies ---------------------------------------------------------------------------------

def expected_from_hiredis(reply: Reply, protocol: int) -> object:
    """What hiredis makes of our encoding of `reply`."""
    if isinstance(reply, bool):
        return reply if protocol == 3 else int(reply)
    if isinstance(reply, float):
        if protocol == 3:
            return reply
        negative_zero = reply == 0 and math.copysign(1.0, reply) < 0  # Redis's %.17g: "-0"
        text = repr(reply) if not reply.is_integer() else "-0" if negative_zero else str(int(reply))
        return {"inf": b"inf", "-inf": b"-inf"}.get(str(reply), text.encode())
    if isinstance(reply, SimpleString):
        return reply.value
    if isinstance(reply, ErrorReply):
        return ("error", reply.message)
    if isinstance(reply, list):
        return [expected_from_hiredis(item, protocol) for item in reply]
    if isinstance(reply, SetReply):
        return [expected_from_hiredis(item, protocol) for item in reply.items]
    if isinstance(reply, Map):
        if protocol == 3:
            return {expected_from_hiredis(k, protocol): expected_from_hiredis(v, protocol)
                    for k, v in reply.pairs}
        return [expected_from_hiredis(x, protocol) for pair in reply.pairs for x in pair]
    if isinstance(reply, VerbatimString):
        return reply.text
    if reply is NULL_ARRAY:
        return None
    return reply


def normalised(value: object) -> object:
    if isinstance(value, hiredis.ReplyError):
        return ("error", str(value).encode())
    if isinstance(value, list):
        return [normalised(item) for item in value]
    if isinstance(value, dict):
        return {normalised(k): normalised(v) for k, v in value.items()}
    return value


LEAVES = st.one_of(
    st.binary(max_size=20), st.integers(-2**63, 2**63 - 1), st.none(), st.booleans(),
    st.floats(allow_nan=False, width=64).filter(lambda x: not x.is_integer() or abs(x) < 1e15),
    st.builds(SimpleString, st.binary(max_size=10).filter(lambda b: b"\r" not in b
                                                          and b"\n" not in b)),
    st.builds(ErrorReply, st.text(alphabet="ABCDEFGH xyz", min_size=1, max_size=10).map(
        lambda t: ("ERR " + t).encode())),
    st.builds(VerbatimString, st.just(b"txt"), st.binary(max_size=10)),
    st.just(NULL_ARRAY),
)
REPLIES = st.recursive(LEAVES, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.builds(SetReply, st.lists(children, max_size=4)),
    st.builds(Map, st.lists(st.tuples(st.binary(max_size=5), children), max_size=4,
                            unique_by=lambda pair: pair[0])),
), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(reply=REPLIES, protocol=st.sampled_from([2, 3]))
def test_replies_read_back_through_hiredis(reply: Reply, protocol: int) -> None:
    """hiredis parses every encoded reply, in both protocols, to the value it stands for."""
    reader = hiredis.Reader()
    reader.feed(encode_reply(reply, protocol))
    parsed = normalised(reader.gets())
    expected = expected_from_hiredis(reply, protocol)
    if isinstance(reply, float) and protocol == 3:
        assert math.isclose(parsed, reply)  # type: ignore[arg-type]
    else:
        assert parsed == expected
    assert reader.gets() is False


@pytest.mark.parametrize(("reply", "resp2", "resp3"), [
    (OK, b"+OK\r\n", b"+OK\r\n"),
    (b"hi", b"$2\r\nhi\r\n", b"$2\r\nhi\r\n"),
    (7, b":7\r\n", b":7\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
    (True, b":1\r\n", b"#t\r\n"),
    (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (Map([(b"a", 1)]), b"*2\r\n$1\r\na\r\n:1\r\n", b"%1\r\n$1\r\na\r\n:1\r\n"),
    (SetReply([b"a"]), b"*1\r\n$1\r\na\r\n", b"~1\r\n$1\r\na\r\n"),
    (VerbatimString(b"txt", b"x"), b"$1\r\nx\r\n", b"=5\r\ntxt:x\r\n"),
    (ErrorReply(b"ERR a\r\nb"), b"-ERR a  b\r\n", b"-ERR a  b\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
])
def test_reply_bytes(reply: Reply, resp2: bytes, resp3: bytes) -> None:
    """Each reply kind's exact bytes in RESP2 and RESP3 (errors are kept on one line)."""
    assert encode_reply(reply, 2) == resp2
    assert encode_reply(reply, 3) == resp3


def test_encode_replies_concatenates() -> None:
    """A pipeline's replies are written back to back."""
    assert encode_replies([OK, 1, None], 2) == b"+OK\r\n:1\r\n$-1\r\n"


def careful_parser() -> RespParser:
    parser = RespParser()
    parser._fast_path = False  # the one-request-at-a-time path only
    return parser


def outcome(parser: RespParser, data: bytes, cut: int) -> tuple[list[list[bytes]], str | None]:
    got: list[list[bytes]] = []
    try:
        for part in (data[:cut], data[cut:]):
            parser.feed(part)
            while (command := parser.get_command()) is not None:
                got.append(command)
    except RespProtocolError as error:
        return got, str(error)
    return got, None


PIECES = st.one_of(
    WORDS.map(lambda words: multibulk(*words)),
    st.lists(st.sampled_from([b"a\r\nb", b"\r\n", b"x" * 20_000, b"", b"$3"]), min_size=1,
             max_size=3).map(lambda words: multibulk(*words)),
    st.sampled_from([b"PING\r\n", b"*1\r\n$03\r\nGET\r\n", b"*01\r\n", b"*0\r\n",
                     b"*2\r\n$1\r\na\r\n", b"*1\r\n$1\r\nabc\r\n", b"*1\r\n+OK\r\n",
                     b"*1\r\n$-1\r\n", b"SET a \"b\r\n", b"*-1\r\n", b"\r\n"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=6), st.integers(0, 10**6))
def test_fast_path_accepts_and_refuses_what_the_careful_path_does(pieces: list[bytes],
                                                                  cut_seed: int) -> None:
    """The split-based fast path gives the same commands and errors as the checks made one
    request at a time, however the input is cut."""
    data = b"".join(pieces)
    cut = cut_seed % (len(data) + 1)
    assert outcome(RespParser(), data, cut) == outcome(careful_parser(), data, cut)
