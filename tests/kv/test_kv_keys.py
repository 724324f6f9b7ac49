"""The generic key commands and expiry answer as Redis 7 does, with expiry stamped by the
command's timestamp (so the results are deterministic)."""

from __future__ import annotations

import pytest

from quorumkv.kv import state_machine
from quorumkv.kv.command import Command
from quorumkv.kv.commands import validate
from quorumkv.kv.reply import (
    NO_SUCH_KEY,
    NOT_AN_INTEGER,
    OK,
    SYNTAX_ERROR,
    ErrorReply,
    SimpleString,
)

from .kv_harness import START_MS, Shard, check_layout, run_script


def invalid_expire(command: str) -> ErrorReply:
    return ErrorReply(b"ERR invalid expire time in '%b' command" % command.encode())


def test_del_unlink_exists() -> None:
    """DEL/UNLINK count the keys removed (a repeated key once); EXISTS counts repetitions."""
    run_script([
        ("MSET a 1 b 2 c 3", OK),
        ("EXISTS a b x a", 3),
        ("DEL a x a", 1),
        ("UNLINK b c", 2),
        ("EXISTS a b c", 0),
        ("DBSIZE", 0),
        ("DEL", ErrorReply(b"ERR wrong number of arguments for 'del' command")),
    ])


def test_type() -> None:
    """TYPE answers a status reply: string, or none for a missing or expired key."""
    run_script([
        ("TYPE k", SimpleString(b"none")),
        ("SET k v PX 5", OK),
        ("TYPE k", SimpleString(b"string")),
        ("advance", 6),
        ("TYPE k", SimpleString(b"none")),
    ])


def test_rename_and_renamenx() -> None:
    """RENAME moves the value and its expiry, replacing the target; RENAMENX refuses to."""
    run_script([
        ("RENAME a b", NO_SUCH_KEY),
        ("RENAMENX a b", NO_SUCH_KEY),
        ("SET a 1 EX 100", OK),
        ("SET b 2 EX 50", OK),
        ("RENAMENX a b", 0),
        ("RENAME a b", OK),
        ("GET b", b"1"),
        ("TTL b", 100),
        ("EXISTS a", 0),
        ("RENAME b b", OK),
        ("RENAMENX b b", 0),
        ("RENAMENX b c", 1),
        ("MGET b c", [None, b"1"]),
        ("DBSIZE", 1),
        ("SET plain v", OK),
        ("RENAME plain c", OK),
        ("TTL c", -1),
    ])


def test_dbsize_and_flush() -> None:
    """DBSIZE counts keys; FLUSHDB and FLUSHALL (SYNC or ASYNC) remove every record."""
    shard = run_script([
        ("MSET a 1 b 2 {t}x 3 {t}y 4", OK),
        ("SET e v EX 100", OK),
        ("DBSIZE", 5),
        ("FLUSHDB", OK),
        ("DBSIZE", 0),
        ("MSET a 1 b 2", OK),
        ("FLUSHALL ASYNC", OK),
        ("FLUSHDB sync", OK),
        ("FLUSHDB FOO", SYNTAX_ERROR),
        ("FLUSHDB SYNC ASYNC", SYNTAX_ERROR),
        ("DBSIZE", 0),
    ])
    assert shard.store.items() == []


def test_flush_walks_more_than_one_page() -> None:
    """FLUSHALL deletes shards larger than one store page."""
    shard = Shard()
    for batch in range(3):
        shard(("MSET", *[f"k{batch}-{i}" if j == 0 else "v"
                          for i in range(500) for j in range(2)]))
    shard(("EXPIRE", "k0-1", "100"))
    assert shard("DBSIZE") == 1500
    assert shard("FLUSHALL") == OK
    assert shard.store.items() == []


def test_expire_family() -> None:
    """EXPIRE/PEXPIRE are relative to the command's time, EXPIREAT/PEXPIREAT absolute."""
    now_seconds = START_MS // 1000
    run_script([
        ("EXPIRE k 10", 0),
        ("SET k v", OK),
        ("EXPIRE k 10", 1),
        ("TTL k", 10),
        ("PEXPIRE k 1234", 1),
        ("PTTL k", 1234),
        (f"EXPIREAT k {now_seconds + 100}", 1),
        ("EXPIRETIME k", now_seconds + 100),
        (f"PEXPIREAT k {START_MS + 5000}", 1),
        ("PEXPIRETIME k", START_MS + 5000),
        ("EXPIRETIME missing", -2),
        ("PERSIST k", 1),
        ("PERSIST k", 0),
        ("PERSIST missing", 0),
        ("EXPIRETIME k", -1),
        ("PEXPIRETIME k", -1),
        ("TTL k", -1),
        ("TTL missing", -2),
        ("PTTL missing", -2),
    ])


def test_a_key_is_still_there_during_its_last_millisecond() -> None:
    """As in Redis, a key expires once the time is past its expiry: at the expiry itself it
    is visible with a PTTL of 0, and QKV.EXPIRE-DELETE does not list it yet."""
    shard = run_script([
        ("SET k v PX 10", OK),
        ("advance", 10),
        ("PTTL k", 0),
        ("GET k", b"v"),
    ])
    assert state_machine.expired_keys(shard.store, shard.now_ms, 10) == []
    run_script([("advance", 1), ("GET k", None), ("PTTL k", -2)], shard)
    assert state_machine.expired_keys(shard.store, shard.now_ms, 10) == [(b"k", shard.now_ms - 1)]


def test_ttl_rounds_to_nearest_second() -> None:
    """TTL rounds the remaining milliseconds to the nearest second, as (ms + 500) / 1000."""
    run_script([
        ("SET k v PX 1499", OK),
        ("TTL k", 1),
        ("SET k v PX 1500", OK),
        ("TTL k", 2),
        ("SET k v PX 400", OK),
        ("TTL k", 0),
        ("advance", 399),
        ("PTTL k", 1),
    ])


def test_expire_in_the_past_deletes() -> None:
    """A non-positive EXPIRE or a past EXPIREAT deletes the key and answers 1."""
    run_script([
        ("SET a v", OK),
        ("EXPIRE a -1", 1),
        ("EXISTS a", 0),
        ("SET b v", OK),
        ("EXPIRE b 0", 1),
        ("EXISTS b", 0),
        ("SET c v", OK),
        (f"PEXPIREAT c {START_MS}", 1),
        ("EXISTS c", 0),
        ("DBSIZE", 0),
    ])


def test_expire_conditions() -> None:
    """NX, XX, GT and LT compare with the current expiry, no expiry counting as infinite."""
    run_script([
        ("SET k v", OK),
        ("EXPIRE k 100 XX", 0),
        ("EXPIRE k 100 GT", 0),
        ("EXPIRE k 100 LT", 1),
        ("EXPIRE k 50 NX", 0),
        ("EXPIRE k 200 XX", 1),
        ("EXPIRE k 100 GT", 0),
        ("EXPIRE k 300 GT", 1),
        ("EXPIRE k 400 LT", 0),
        ("EXPIRE k 50 lt", 1),
        ("TTL k", 50),
        ("EXPIRE k 60 XX GT", 1),
        ("TTL k", 60),
        ("PERSIST k", 1),
        ("EXPIRE k 10 NX", 1),
    ])


def test_expire_errors() -> None:
    """Bad EXPIRE options and numbers get Redis's texts; options are checked first."""
    run_script([
        ("SET k v", OK),
        ("EXPIRE k 10 NX XX", ErrorReply(
            b"ERR NX and XX, GT or LT options at the same time are not compatible")),
        ("EXPIRE k 10 NX GT", ErrorReply(
            b"ERR NX and XX, GT or LT options at the same time are not compatible")),
        ("EXPIRE k 10 GT LT", ErrorReply(
            b"ERR GT and LT options at the same time are not compatible")),
        ("EXPIRE k 10 FOO", ErrorReply(b"ERR Unsupported option FOO")),
        ("EXPIRE k abc foo", ErrorReply(b"ERR Unsupported option foo")),
        ("EXPIRE k abc", NOT_AN_INTEGER),
        ("EXPIRE k 9223372036854776", invalid_expire("expire")),
        ("EXPIRE k -9223372036854776", invalid_expire("expire")),
        ("PEXPIRE k 9223372036854775807", invalid_expire("pexpire")),
        ("EXPIREAT k 9223372036854776", invalid_expire("expireat")),
        ("TTL k", -1),
        ("EXPIRE k", ErrorReply(b"ERR wrong number of arguments for 'expire' command")),
    ])


def test_expired_keys_are_listed_and_deleted_by_the_leader_command() -> None:
    """Due keys are invisible at once, listed earliest first, and removed only by
    QKV.EXPIRE-DELETE while they still have that expiry."""
    shard = run_script([
        ("SET a v PX 100", OK),
        ("SET b v PX 50", OK),
        ("SET c v PX 500", OK),
        ("advance", 101),
        ("EXISTS a b c", 1),
        ("DBSIZE", 3),
    ])
    due = state_machine.expired_keys(shard.store, shard.now_ms, 10)
    assert due == [(b"b", START_MS + 50), (b"a", START_MS + 100)]
    assert state_machine.expired_keys(shard.store, shard.now_ms, 1) == [(b"b", START_MS + 50)]
    command = state_machine.expire_delete_command(due, shard.now_ms)
    assert command.name == b"QKV.EXPIRE-DELETE"
    assert state_machine.apply(shard.store, command) == 2
    check_layout(shard.store)
    assert shard("DBSIZE") == 1
    assert state_machine.expired_keys(shard.store, shard.now_ms, 10) == []


def test_expire_delete_spares_a_rewritten_key() -> None:
    """QKV.EXPIRE-DELETE leaves a key whose expiry changed or is not yet due at its time."""
    shard = run_script([("SET a v PX 100", OK), ("advance", 101)])
    due = state_machine.expired_keys(shard.store, shard.now_ms, 10)
    shard("SET a w PX 1000")  # rewritten after the leader looked
    assert state_machine.apply(shard.store,
                               state_machine.expire_delete_command(due, shard.now_ms)) == 0
    assert shard("GET a") == b"w"
    late = Command(b"QKV.EXPIRE-DELETE", (b"a", b"%d" % (shard.now_ms + 999)), shard.now_ms)
    assert state_machine.apply(shard.store, late) == 0
    assert shard("GET a") == b"w"
    check_layout(shard.store)


def test_expire_delete_is_internal() -> None:
    """Clients cannot send QKV.EXPIRE-DELETE; malformed internal entries change nothing."""
    assert validate(b"QKV.EXPIRE-DELETE", (b"a", b"1")) == ErrorReply(
        b"ERR unknown command 'QKV.EXPIRE-DELETE', with args beginning with: 'a' '1' ")
    shard = Shard()
    bad = Command(b"QKV.EXPIRE-DELETE", (b"a", b"1", b"b"), shard.now_ms)
    assert isinstance(state_machine.apply(shard.store, bad), ErrorReply)
    bad_number = Command(b"QKV.EXPIRE-DELETE", (b"a", b"x"), shard.now_ms)
    assert state_machine.apply(shard.store, bad_number) == NOT_AN_INTEGER


def test_a_write_deletes_the_expired_key_it_touches() -> None:
    """A write that finds its key expired removes it and its index entry at once."""
    shard = run_script([("SET a v PX 10", OK), ("advance", 11), ("DEL a", 0), ("DBSIZE", 0)])
    assert shard.store.items() == []


@pytest.mark.parametrize(("words", "expected"), [
    ((b"GET",), b"ERR wrong number of arguments for 'get' command"),
    ((b"get", b"a", b"b"), b"ERR wrong number of arguments for 'get' command"),
    ((b"FOO",), b"ERR unknown command 'FOO', with args beginning with: "),
    ((b"foo", b"a", b"b"), b"ERR unknown command 'foo', with args beginning with: 'a' 'b' "),
    ((b"DBSIZE", b"x"), b"ERR wrong number of arguments for 'dbsize' command"),
])
def test_unknown_command_and_arity_errors(words: tuple[bytes, ...], expected: bytes) -> None:
    """Unknown commands and wrong argument counts get Redis 7's texts."""
    assert validate(words[0], words[1:]) == ErrorReply(expected)
    command = Command(words[0], words[1:], START_MS)
    assert state_machine.apply(Shard().store, command) == ErrorReply(expected)


def test_unknown_command_error_quotes_at_most_128_bytes_of_arguments() -> None:
    """The unknown-command error stops quoting arguments after about 128 bytes, like Redis."""
    error = validate(b"NOPE", (b"x" * 100, b"y" * 100, b"z"))
    assert error == ErrorReply(b"ERR unknown command 'NOPE', with args beginning with: '"
                               + b"x" * 100 + b"' '" + b"y" * 25 + b"' ")


def test_key_size_limit() -> None:
    """A key longer than limits.key_bytes_max is refused before anything is proposed."""
    from quorumkv import limits
    long_key = b"k" * (limits.key_bytes_max + 1)
    error = validate(b"SET", (long_key, b"v"))
    assert isinstance(error, ErrorReply) and error.message.startswith(b"ERR key is too long")
    assert validate(b"SET", (b"k" * limits.key_bytes_max, b"v")) is None
    assert isinstance(validate(b"MSET", (b"a", b"1", long_key, b"2")), ErrorReply)


def test_read_refuses_write_commands() -> None:
    """read() answers an error instead of running a write (a host bug, never silent)."""
    reply = state_machine.read(Shard().store, b"SET", (b"k", b"v"), START_MS)
    assert isinstance(reply, ErrorReply)


def test_apply_runs_read_commands_at_the_entry_time() -> None:
    """apply() also answers read-only commands (for reads sent through the log)."""
    shard = run_script([("SET k v PX 10", OK)])
    assert state_machine.apply(shard.store, Command(b"GET", (b"k",), START_MS + 10)) == b"v"
    assert state_machine.apply(shard.store, Command(b"GET", (b"k",), START_MS + 11)) is None
