"""The command table reports what Redis's COMMAND INFO reports, and routes by key."""

from __future__ import annotations

import pytest

from quorumkv.kv.commands import all_specs, command_spec, is_write, keys_of, validate


@pytest.mark.parametrize(("name", "arity", "flags", "keys"), [
    (b"GET", 2, (b"readonly", b"fast"), (1, 1, 1)),
    (b"SET", -3, (b"write", b"denyoom"), (1, 1, 1)),
    (b"MSET", -3, (b"write", b"denyoom"), (1, -1, 2)),
    (b"MGET", -2, (b"readonly", b"fast"), (1, -1, 1)),
    (b"DEL", -2, (b"write",), (1, -1, 1)),
    (b"RENAME", 3, (b"write",), (1, 2, 1)),
    (b"SCAN", -2, (b"readonly",), (0, 0, 0)),
    (b"EXPIRE", -3, (b"write", b"fast"), (1, 1, 1)),
    (b"FLUSHALL", -1, (b"write",), (0, 0, 0)),
])
def test_specs_match_command_info(name: bytes, arity: int, flags: tuple[bytes, ...],
                                  keys: tuple[int, int, int]) -> None:
    """Arity, flags and key positions are Redis 7's."""
    spec = command_spec(name)
    assert spec is not None
    assert (spec.arity, spec.flags, (spec.first_key, spec.last_key, spec.key_step)) == (
        arity, flags, keys)


def test_lookup_ignores_case_and_hides_internal_commands() -> None:
    """Names match in any case; QKV.* commands are not visible to clients."""
    assert command_spec(b"get") is command_spec(b"GET")
    assert command_spec(b"QKV.EXPIRE-DELETE") is None
    assert command_spec(b"NOPE") is None
    names = {spec.name for spec in all_specs()}
    assert {b"GET", b"SET", b"CAS", b"CAD", b"SCAN", b"RANDOMKEY"} <= names
    assert not any(name.startswith(b"QKV.") for name in names)


def test_is_write() -> None:
    """Writes go through the log, reads do not; unknown commands are not writes."""
    assert is_write(b"SET") and is_write(b"getex") and is_write(b"CAS")
    assert not is_write(b"GET") and not is_write(b"SCAN") and not is_write(b"NOPE")


def test_keys_of() -> None:
    """The keys a command touches, from its key positions."""
    assert keys_of(b"GET", (b"a",)) == [b"a"]
    assert keys_of(b"SET", (b"a", b"v", b"EX", b"10")) == [b"a"]
    assert keys_of(b"MSET", (b"a", b"1", b"b", b"2")) == [b"a", b"b"]
    assert keys_of(b"MGET", (b"a", b"b", b"c")) == [b"a", b"b", b"c"]
    assert keys_of(b"RENAME", (b"a", b"b")) == [b"a", b"b"]
    assert keys_of(b"KEYS", (b"*",)) == []
    assert keys_of(b"NOPE", (b"a",)) == []
    assert keys_of(b"QKV.EXPIRE-DELETE", (b"a", b"1", b"b", b"2")) == [b"a", b"b"]


def test_validate_accepts_good_commands() -> None:
    """Well-formed commands pass validation whatever the data holds."""
    assert validate(b"SET", (b"k", b"v", b"EX", b"10", b"NX", b"GET")) is None
    assert validate(b"get", (b"k",)) is None
    assert validate(b"SCAN", (b"0", b"MATCH", b"a*", b"COUNT", b"5", b"TYPE", b"string")) is None
