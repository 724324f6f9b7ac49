"""The string commands answer as Redis 7 does: replies, error texts and effects on expiry."""

from __future__ import annotations

import pytest

from quorumkv.kv.reply import (
    DECREMENT_OVERFLOW,
    INCREMENT_NOT_FINITE,
    INCREMENT_OVERFLOW,
    NOT_A_FLOAT,
    NOT_AN_INTEGER,
    OFFSET_OUT_OF_RANGE,
    OK,
    STRING_TOO_LONG,
    SYNTAX_ERROR,
    WRONGTYPE,
    ErrorReply,
    SetReply,
)

from .kv_harness import START_MS, Shard, run_script


def invalid_expire(command: str) -> ErrorReply:
    return ErrorReply(b"ERR invalid expire time in '%b' command" % command.encode())


def test_get_and_set_basics() -> None:
    """GET answers nil for a missing key and the value SET stored, also for binary data."""
    run_script([
        ("GET k", None),
        ("SET k v", OK),
        ("GET k", b"v"),
        (("SET", b"bin\0\xff", b"\r\n\0"), OK),
        (("GET", b"bin\0\xff"), b"\r\n\0"),
        (("SET", b"", b""), OK),
        (("GET", b""), b""),
    ])


def test_set_conditions_nx_xx_get() -> None:
    """SET NX/XX only act on an absent/present key; GET returns the old value either way."""
    run_script([
        ("SET k v NX", OK),
        ("SET k w NX", None),
        ("GET k", b"v"),
        ("SET other v XX", None),
        ("EXISTS other", 0),
        ("SET k w XX", OK),
        ("SET k x GET", b"w"),
        ("SET fresh x GET", None),
        ("GET fresh", b"x"),
        ("SET k y NX GET", b"x"),
        ("GET k", b"x"),
        ("SET k y xx get", b"x"),
        ("GET k", b"y"),
    ])


@pytest.mark.parametrize("command", [
    "SET k v NX XX", "SET k v XX NX", "SET k v EX 10 PX 100", "SET k v PX 100 EXAT 10",
    "SET k v EX", "SET k v KEEPTTL EX 10", "SET k v EX 10 KEEPTTL", "SET k v PERSIST",
    "SET k v FOO", "SET k v NX BAR",
])
def test_set_syntax_errors(command: str) -> None:
    """Conflicting, unknown or incomplete SET options are a syntax error, before any effect."""
    shard = Shard()
    assert shard(command) == SYNTAX_ERROR
    assert shard("EXISTS k") == 0


def test_set_expiry_options() -> None:
    """EX/PX are relative to the command's time, EXAT/PXAT absolute; a repeated option wins."""
    now_seconds = START_MS // 1000
    run_script([
        ("SET k v EX 10", OK),
        ("TTL k", 10),
        ("PTTL k", 10_000),
        ("SET k v PX 1500", OK),
        ("PTTL k", 1500),
        (f"SET k v EXAT {now_seconds + 100}", OK),
        ("EXPIRETIME k", now_seconds + 100),
        (f"SET k v PXAT {START_MS + 2500}", OK),
        ("PEXPIRETIME k", START_MS + 2500),
        ("SET k v EX 10 EX 20", OK),
        ("TTL k", 20),
        ("set k v ex 30", OK),
        ("TTL k", 30),
    ])


def test_set_expiry_errors() -> None:
    """Non-positive, non-integer or overflowing expiries get Redis's errors, nothing is set."""
    run_script([
        ("SET k v EX 0", invalid_expire("set")),
        ("SET k v EX -1", invalid_expire("set")),
        ("SET k v PX 0", invalid_expire("set")),
        ("SET k v EX abc", NOT_AN_INTEGER),
        ("SET k v EX 1.5", NOT_AN_INTEGER),
        ("SET k v EX 9223372036854776", invalid_expire("set")),
        ("SET k v PX 9223372036854775807", invalid_expire("set")),
        ("SET k v EXAT 0", invalid_expire("set")),
        ("EXISTS k", 0),
    ])


def test_set_with_past_absolute_expiry_deletes() -> None:
    """SET with EXAT/PXAT in the past answers OK and leaves no key."""
    run_script([
        ("SET k old", OK),
        (f"SET k v PXAT {START_MS - 1}", OK),
        ("GET k", None),
        ("DBSIZE", 0),
        (f"SET k v PXAT {START_MS}", OK),
        ("EXISTS k", 1),  # its last millisecond, as in Redis
        ("advance", 1),
        ("EXISTS k", 0),
    ])


def test_set_clears_ttl_unless_keepttl() -> None:
    """A plain SET drops the previous expiry; KEEPTTL keeps it; GETSET drops it."""
    run_script([
        ("SET k v EX 100", OK),
        ("SET k w", OK),
        ("TTL k", -1),
        ("SET k v EX 100", OK),
        ("SET k w KEEPTTL", OK),
        ("TTL k", 100),
        ("GET k", b"w"),
        ("GETSET k x", b"w"),
        ("TTL k", -1),
        ("SET new v KEEPTTL", OK),
        ("TTL new", -1),
    ])


def test_setnx_setex_psetex() -> None:
    """SETNX answers 1/0; SETEX and PSETEX set with a relative expiry or refuse a bad one."""
    run_script([
        ("SETNX k v", 1),
        ("SETNX k w", 0),
        ("GET k", b"v"),
        ("SETEX k 10 w", OK),
        ("GET k", b"w"),
        ("TTL k", 10),
        ("PSETEX k 1500 x", OK),
        ("PTTL k", 1500),
        ("SETEX k 0 v", invalid_expire("setex")),
        ("SETEX k -5 v", invalid_expire("setex")),
        ("PSETEX k 0 v", invalid_expire("psetex")),
        ("SETEX k abc v", NOT_AN_INTEGER),
        ("PSETEX k 9223372036854775807 v", invalid_expire("psetex")),
        ("GET k", b"x"),
    ])


def test_getset_and_getdel() -> None:
    """GETSET swaps and answers the old value; GETDEL answers the value and deletes the key."""
    run_script([
        ("GETSET k v", None),
        ("GETSET k w", b"v"),
        ("GET k", b"w"),
        ("GETDEL k", b"w"),
        ("EXISTS k", 0),
        ("GETDEL k", None),
    ])


def test_getex() -> None:
    """GETEX reads and changes the expiry: EX/PX/EXAT/PXAT set it, PERSIST removes it."""
    now_seconds = START_MS // 1000
    run_script([
        ("GETEX k", None),
        ("GETEX k EX abc", None),  # Redis looks the key up before it reads the number
        ("SET k v", OK),
        ("GETEX k", b"v"),
        ("TTL k", -1),
        ("GETEX k EX 10", b"v"),
        ("TTL k", 10),
        ("GETEX k PX 500", b"v"),
        ("PTTL k", 500),
        (f"GETEX k EXAT {now_seconds + 50}", b"v"),
        ("EXPIRETIME k", now_seconds + 50),
        ("GETEX k PERSIST", b"v"),
        ("TTL k", -1),
        ("GETEX k PERSIST", b"v"),
        ("GETEX k EX abc", NOT_AN_INTEGER),
        ("GETEX k EX 0", invalid_expire("getex")),
        ("GETEX k EX 10 PERSIST", SYNTAX_ERROR),
        ("GETEX k PERSIST EX 10", SYNTAX_ERROR),
        ("GETEX k NX", SYNTAX_ERROR),
        ("GETEX k KEEPTTL", SYNTAX_ERROR),
        ("GETEX k EX", SYNTAX_ERROR),
        (f"GETEX k PXAT {START_MS}", b"v"),  # not in the future: deleted
        ("EXISTS k", 0),
    ])


def test_mget_mset_msetnx() -> None:
    """MSET sets every pair; MSETNX sets all or none; MGET answers nil for missing keys."""
    run_script([
        ("MSET a 1 b 2", OK),
        ("MGET a b c", [b"1", b"2", None]),
        ("MSET a 3 a 4", OK),
        ("GET a", b"4"),
        ("MSETNX c 1 a 9", 0),
        ("EXISTS c", 0),
        ("MSETNX c 1 d 2", 1),
        ("MGET c d", [b"1", b"2"]),
        ("MSET a", ErrorReply(b"ERR wrong number of arguments for 'mset' command")),
        ("MSET a 1 b", ErrorReply(b"ERR wrong number of arguments for 'mset' command")),
        ("MSETNX a 1 b", ErrorReply(b"ERR wrong number of arguments for 'msetnx' command")),
        ("MGET", ErrorReply(b"ERR wrong number of arguments for 'mget' command")),
    ])


def test_mset_clears_ttl() -> None:
    """MSET replaces values like SET: the keys lose their expiry."""
    run_script([("SET a 1 EX 100", OK), ("MSET a 2", OK), ("TTL a", -1)])


def test_append_and_strlen() -> None:
    """APPEND creates or extends and answers the new length, keeping the expiry."""
    run_script([
        ("STRLEN k", 0),
        ("APPEND k Hello", 5),
        ("APPEND k World", 10),
        (("APPEND", "k", " !"), 12),
        ("GET k", b"HelloWorld !"),
        ("STRLEN k", 12),
        ("EXPIRE k 100", 1),
        ("APPEND k x", 13),
        ("TTL k", 100),
    ])


def test_getrange_examples() -> None:
    """GETRANGE's inclusive, negative and out-of-range indexes, from Redis's documentation."""
    run_script([
        (("SET", "mykey", "This is a string"), OK),
        ("GETRANGE mykey 0 3", b"This"),
        ("GETRANGE mykey -3 -1", b"ing"),
        ("GETRANGE mykey 0 -1", b"This is a string"),
        ("GETRANGE mykey 10 100", b"string"),
        ("GETRANGE mykey 5 3", b""),
        ("GETRANGE mykey -1 -5", b""),
        ("GETRANGE mykey -100 2", b"Thi"),
        ("GETRANGE mykey 100 200", b""),
        ("GETRANGE missing 0 -1", b""),
        ("GETRANGE mykey a 1", NOT_AN_INTEGER),
        (("SET", "empty", ""), OK),
        ("GETRANGE empty 0 -1", b""),
        ("GETRANGE mykey 0 9223372036854775807", b"This is a string"),
    ])


def test_setrange() -> None:
    """SETRANGE overwrites at an offset, pads with zero bytes, and refuses bad offsets."""
    run_script([
        (("SET", "key1", "Hello World"), OK),
        ("SETRANGE key1 6 Redis", 11),
        ("GET key1", b"Hello Redis"),
        ("SETRANGE key2 6 Redis", 11),
        ("GET key2", b"\0\0\0\0\0\0Redis"),
        ("SETRANGE key1 0 J", 11),
        ("GET key1", b"Jello Redis"),
        (("SETRANGE", "key3", "5", ""), 0),
        ("EXISTS key3", 0),
        (("SETRANGE", "key1", "100", ""), 11),
        ("SETRANGE key1 -1 x", OFFSET_OUT_OF_RANGE),
        ("SETRANGE key1 x x", NOT_AN_INTEGER),
        ("SETRANGE key1 536870912 x", STRING_TOO_LONG),
        ("SETRANGE key4 536870912 x", STRING_TOO_LONG),
        ("EXISTS key4", 0),
        ("EXPIRE key1 50", 1),
        ("SETRANGE key1 1 a", 11),
        ("TTL key1", 50),
    ])


def test_integer_counters() -> None:
    """INCR/DECR/INCRBY/DECRBY parse strictly, refuse overflow, and keep the expiry."""
    run_script([
        ("INCR n", 1),
        ("INCRBY n 10", 11),
        ("DECR n", 10),
        ("DECRBY n 20", -10),
        ("GET n", b"-10"),
        ("SET n 9223372036854775806", OK),
        ("INCR n", 9223372036854775807),
        ("INCR n", INCREMENT_OVERFLOW),
        ("SET n -9223372036854775808", OK),
        ("DECR n", INCREMENT_OVERFLOW),
        ("DECRBY n -9223372036854775808", DECREMENT_OVERFLOW),
        ("INCRBY n abc", NOT_AN_INTEGER),
        ("INCRBY n 1.0", NOT_AN_INTEGER),
        ("SET s abc", OK),
        ("INCR s", NOT_AN_INTEGER),
        (("SET", "s", " 1"), OK),
        ("INCR s", NOT_AN_INTEGER),
        ("SET s 01", OK),
        ("INCR s", NOT_AN_INTEGER),
        ("SET s +1", OK),
        ("INCR s", NOT_AN_INTEGER),
        ("SET s 9223372036854775808", OK),
        ("INCR s", NOT_AN_INTEGER),
        ("SET t 5 EX 100", OK),
        ("INCR t", 6),
        ("TTL t", 100),
    ])


def test_incrbyfloat() -> None:
    """INCRBYFLOAT adds in decimal and prints like Redis (%.17Lf without trailing zeros)."""
    run_script([
        ("SET mykey 10.50", OK),
        ("INCRBYFLOAT mykey 0.1", b"10.6"),
        ("INCRBYFLOAT mykey -5", b"5.6"),
        ("SET mykey 5.0e3", OK),
        ("INCRBYFLOAT mykey 2.0e2", b"5200"),
        ("INCRBYFLOAT f 0.1", b"0.1"),
        ("INCRBYFLOAT f 0.2", b"0.3"),
        ("INCRBYFLOAT f -0.3", b"0"),
        ("INCRBYFLOAT f 1.5", b"1.5"),
        ("INCRBYFLOAT f 1.5", b"3"),
        ("GET f", b"3"),
        ("INCRBYFLOAT f abc", NOT_A_FLOAT),
        (("INCRBYFLOAT", "f", " 1"), NOT_A_FLOAT),
        ("INCRBYFLOAT f nan", NOT_A_FLOAT),
        ("INCRBYFLOAT f inf", INCREMENT_NOT_FINITE),
        ("INCRBYFLOAT f 1e5000", NOT_A_FLOAT),
        ("SET s abc", OK),
        ("INCRBYFLOAT s 1", NOT_A_FLOAT),
        ("SET g 1 EX 100", OK),
        ("INCRBYFLOAT g 1", b"2"),
        ("TTL g", 100),
    ])


def test_wrong_type_answers() -> None:
    """Commands on a hash or a set answer WRONGTYPE, except those that ignore types."""
    shard = Shard()
    assert shard("HSET h f v") == 1
    assert shard("SADD s m") == 1
    for command in ["GET s", "APPEND s x", "INCR s", "SETRANGE s 0 x", "GETDEL s"]:
        assert shard(command) == WRONGTYPE, command
    for command in ["GET h", "SET h v GET", "GETSET h v", "GETDEL h", "GETEX h", "APPEND h x",
                    "STRLEN h", "GETRANGE h 0 1", "SETRANGE h 0 x", "INCR h", "DECRBY h 2",
                    "INCRBYFLOAT h 1", "CAS h a b", "CAD h a"]:
        assert shard(command) == WRONGTYPE, command
    assert shard("MGET h") == [None]
    assert shard("SETNX h v") == 0
    assert shard("SET h v NX GET") == WRONGTYPE
    assert shard("TYPE h").value == b"hash"  # type: ignore[union-attr]
    assert shard("SET h v") == OK
    assert shard("TYPE h").value == b"string"  # type: ignore[union-attr]
    assert shard("HGET h f") == WRONGTYPE
    assert shard("SMEMBERS s") == SetReply([b"m"])


def test_compare_and_set_and_delete() -> None:
    """CAS swaps only on an exact match and keeps the expiry; CAD deletes only on a match."""
    run_script([
        ("CAS k a b", 0),
        ("EXISTS k", 0),
        ("SET k a EX 100", OK),
        ("CAS k x b", 0),
        ("CAS k a b", 1),
        ("GET k", b"b"),
        ("TTL k", 100),
        ("CAD k a", 0),
        ("CAD k b", 1),
        ("EXISTS k", 0),
        ("CAD k b", 0),
        ("CAS k", ErrorReply(b"ERR wrong number of arguments for 'cas' command")),
    ])


def test_expired_key_is_invisible_to_every_string_command() -> None:
    """Once its expiry passes, a key reads as absent and writes treat it as new."""
    run_script([
        ("SET k v PX 100", OK),
        ("advance", 101),
        ("GET k", None),
        ("STRLEN k", 0),
        ("MGET k", [None]),
        ("SETNX k w", 1),
        ("TTL k", -1),
        ("SET j 5 PX 10", OK),
        ("advance", 11),
        ("INCR j", 1),
        ("APPEND j x", 2),
    ])
