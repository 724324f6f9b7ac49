"""The set commands against the state machine: Redis 7.0's replies, errors and their order."""

from __future__ import annotations

from quorumkv.kv.command import Command
from quorumkv.kv.reply import (
    NOT_AN_INTEGER,
    OK,
    SYNTAX_ERROR,
    WRONGTYPE,
    ErrorReply,
    Reply,
    SetReply,
)
from quorumkv.kv.state_machine import apply
from quorumkv.kv.store import MemoryKeyValueStore

from .kv_harness import START_MS, Shard, run_script


def members(reply: Reply) -> list[bytes]:
    assert isinstance(reply, (SetReply, list)), reply
    items = reply.items if isinstance(reply, SetReply) else reply
    return sorted(items)  # type: ignore[type-var]


def test_sadd_srem_scard_sismember_smismember() -> None:
    """SADD counts new members (a repeat within one call counts once), SREM removed ones; a
    set left empty is deleted."""
    run_script([
        ("SADD s a b c a", 3),
        ("SADD s c d", 1),
        ("SCARD s", 4),
        ("SISMEMBER s a", 1),
        ("SISMEMBER s z", 0),
        ("SISMEMBER noset a", 0),
        ("SMISMEMBER s a z d", [1, 0, 1]),
        ("SMISMEMBER noset a b", [0, 0]),
        ("SREM s a z", 1),
        ("SREM s b c d", 3),
        ("EXISTS s", 0),
        ("SCARD s", 0),
        ("SMEMBERS s", SetReply([])),
        ("SMISMEMBER s", ErrorReply(b"ERR wrong number of arguments for 'smismember' command")),
    ])


def test_smembers_answers_a_set() -> None:
    """SMEMBERS answers every member as a set reply (RESP3 `~`)."""
    shard = Shard()
    shard("SADD s x y z")
    reply = shard("SMEMBERS s")
    assert isinstance(reply, SetReply) and members(reply) == [b"x", b"y", b"z"]


def test_srandmember_and_its_counts() -> None:
    """SRANDMEMBER: one member; distinct ones up to the size; repeats for a negative count;
    errors as Redis words them."""
    shard = Shard()
    shard("SADD s a b c")
    assert shard("SRANDMEMBER s") in (b"a", b"b", b"c")
    assert shard("SRANDMEMBER nokey") is None
    two = shard("SRANDMEMBER s 2")
    assert isinstance(two, list) and len(set(two)) == 2
    assert members(shard("SRANDMEMBER s 9")) == [b"a", b"b", b"c"]
    many = shard("SRANDMEMBER s -9")
    assert isinstance(many, list) and len(many) == 9 and set(many) <= {b"a", b"b", b"c"}
    assert shard("SRANDMEMBER s 0") == []
    assert shard("SRANDMEMBER nokey 3") == []
    assert shard("SRANDMEMBER s 1 2") == SYNTAX_ERROR
    assert shard("SRANDMEMBER s x") == NOT_AN_INTEGER
    assert shard("SCARD s") == 3


def test_spop_pops_distinct_members_and_deletes_the_emptied_set() -> None:
    """SPOP removes what it answers; with a count it answers a set; the last pop deletes the
    key; a negative or non-numeric count is refused."""
    shard = Shard()
    shard("SADD s a b c d e")
    one = shard("SPOP s")
    assert isinstance(one, bytes) and shard(("SISMEMBER", "s", one)) == 0
    two = shard("SPOP s 2")
    assert isinstance(two, SetReply) and len(set(two.items)) == 2
    assert shard("SCARD s") == 2
    rest = shard("SPOP s 10")
    assert isinstance(rest, SetReply) and len(rest.items) == 2
    assert set(rest.items) | set(two.items) | {one} == {b"a", b"b", b"c", b"d", b"e"}
    assert shard("EXISTS s") == 0
    assert shard("SPOP s") is None
    assert shard("SPOP s 3") == SetReply([])
    shard("SADD s a")
    assert shard("SPOP s 0") == SetReply([])
    positive = ErrorReply(b"ERR value is out of range, must be positive")
    assert shard("SPOP s -1") == positive
    assert shard("SPOP s x") == positive
    assert shard("SPOP s 1 2") == SYNTAX_ERROR


def test_spop_is_the_same_on_every_replica() -> None:
    """Two replicas applying the same SPOP entries to the same state pop the same members:
    the choice comes from the entry (its timestamp) and the replicated state only."""
    replies = []
    for _ in range(2):
        store = MemoryKeyValueStore()
        apply(store, Command(b"SADD", (b"s",) + tuple(b"m%d" % n for n in range(100)), START_MS))
        replies.append([apply(store, Command(b"SPOP", (b"s", b"3"), START_MS + step))
                        for step in range(10)])
        replies.append(store.items())
    assert replies[0] == replies[2] and replies[1] == replies[3]
    popped = {member for reply in replies[0] for member in reply.items}  # type: ignore[union-attr]
    assert len(popped) == 30


def test_smove() -> None:
    """SMOVE moves one member, creating the destination, deleting an emptied source; a missing
    source answers 0 before the destination's type is looked at, as in Redis."""
    run_script([
        ("SADD {t}a x y", 2),
        ("SMOVE {t}a {t}b x", 1),
        ("SMEMBERS {t}b", SetReply([b"x"])),
        ("SMOVE {t}a {t}b nothere", 0),
        ("SMOVE {t}a {t}a y", 1),
        ("SMOVE {t}a {t}a nothere", 0),
        ("SMOVE {t}a {t}b y", 1),
        ("EXISTS {t}a", 0),
        ("SCARD {t}b", 2),
        ("SET {t}s v", OK),
        ("SMOVE {t}none {t}s x", 0),
        ("SMOVE {t}b {t}s x", WRONGTYPE),
        ("SMOVE {t}s {t}b x", WRONGTYPE),
        ("SCARD {t}b", 2),
    ])


def test_set_algebra_and_store_variants() -> None:
    """SINTER/SUNION/SDIFF and STORE: results as sets, missing keys as empty sets, an empty
    result deletes the destination, the destination may be a source, SINTERCARD's LIMIT."""
    shard = Shard()
    shard("SADD {t}a 1 2 3 4")
    shard("SADD {t}b 3 4 5")
    shard("SADD {t}c 4 5 6")
    assert members(shard("SINTER {t}a {t}b {t}c")) == [b"4"]
    assert members(shard("SINTER {t}a {t}missing")) == []
    assert members(shard("SUNION {t}a {t}b {t}missing")) == [b"1", b"2", b"3", b"4", b"5"]
    assert members(shard("SDIFF {t}a {t}b")) == [b"1", b"2"]
    assert members(shard("SDIFF {t}missing {t}a")) == []
    assert shard("SINTERSTORE {t}d {t}a {t}b") == 2
    assert members(shard("SMEMBERS {t}d")) == [b"3", b"4"]
    assert shard("SUNIONSTORE {t}a {t}a {t}c") == 6  # the destination is a source
    assert members(shard("SMEMBERS {t}a")) == [b"1", b"2", b"3", b"4", b"5", b"6"]
    shard("SET {t}str v")
    assert shard("SDIFFSTORE {t}str {t}b {t}b") == 0  # empty: the destination is deleted
    assert shard("EXISTS {t}str") == 0
    assert shard("SINTERCARD 2 {t}a {t}b") == 3
    assert shard("SINTERCARD 2 {t}a {t}b LIMIT 2") == 2
    assert shard("SINTERCARD 2 {t}a {t}b LIMIT 0") == 3
    assert shard("SINTERCARD 0 {t}a") == ErrorReply(b"ERR numkeys should be greater than 0")
    assert shard("SINTERCARD x {t}a") == ErrorReply(b"ERR numkeys should be greater than 0")
    assert shard("SINTERCARD 3 {t}a {t}b") == ErrorReply(
        b"ERR Number of keys can't be greater than number of args")
    assert shard("SINTERCARD 1 {t}a LIMIT -1") == ErrorReply(b"ERR LIMIT can't be negative")
    assert shard("SINTERCARD 1 {t}a FOO") == SYNTAX_ERROR


def test_set_operations_type_check_every_key_first() -> None:
    """A string among the keys answers WRONGTYPE even where an empty set would short-cut the
    result (Redis checks every key before computing)."""
    shard = Shard()
    shard("SET {t}str v")
    shard("SADD {t}s a")
    for command in ["SINTER {t}missing {t}str", "SINTER {t}str {t}missing", "SUNION {t}s {t}str",
                    "SDIFF {t}missing {t}str", "SINTERSTORE {t}d {t}missing {t}str",
                    "SDIFFSTORE {t}d {t}s {t}str", "SINTERCARD 2 {t}missing {t}str"]:
        assert shard(command) == WRONGTYPE, command
    assert shard("EXISTS {t}d") == 0


def test_sscan_walks_every_member_once() -> None:
    """SSCAN returns each member exactly once over an iteration, MATCH filters members."""
    shard = Shard()
    shard(("SADD", "s") + tuple(f"m{index}" for index in range(250)))
    cursor, seen = b"0", []
    for _ in range(1000):
        reply = shard(("SSCAN", "s", cursor, "COUNT", "9"))
        assert isinstance(reply, list)
        cursor, items = reply
        seen.extend(items)
        if cursor == b"0":
            break
    assert sorted(seen) == sorted(b"m%d" % index for index in range(250))
    matched = shard("SSCAN s 0 COUNT 1000 MATCH m2?")
    assert members(matched[1]) == sorted(b"m2%d" % n for n in range(10))  # type: ignore[index]


def test_every_set_command_refuses_other_types() -> None:
    """Each set command on a string or a hash answers WRONGTYPE, and the string commands
    refuse sets."""
    shard = Shard()
    shard("SET str v")
    shard("HSET hash f v")
    for key in ("str", "hash"):
        for command in ["SADD {} a", "SREM {} a", "SCARD {}", "SISMEMBER {} a",
                        "SMISMEMBER {} a", "SMEMBERS {}", "SRANDMEMBER {}", "SRANDMEMBER {} 2",
                        "SPOP {}", "SPOP {} 2", "SSCAN {} 0", "SINTER {}", "SUNION {}",
                        "SDIFF {}", "SINTERCARD 1 {}"]:
            assert shard(command.format(key)) == WRONGTYPE, command.format(key)
    shard("SADD set m")
    for command in ["GET set", "INCR set", "APPEND set x", "GETRANGE set 0 1", "STRLEN set"]:
        assert shard(command) == WRONGTYPE, command
