"""The hash commands against the state machine: Redis 7.0's replies, errors and their order."""

from __future__ import annotations

from quorumkv.kv.reply import (
    NOT_A_FLOAT,
    NOT_AN_INTEGER,
    OK,
    SYNTAX_ERROR,
    WRONGTYPE,
    ErrorReply,
    Map,
    Pairs,
    SimpleString,
)

from .kv_harness import Shard, run_script


def arity(name: str) -> ErrorReply:
    return ErrorReply(b"ERR wrong number of arguments for '%b' command" % name.encode())


def test_hset_hget_hmget_hlen_hexists_hstrlen() -> None:
    """HSET counts new fields, overwrites existing ones; the readers see every field."""
    run_script([
        ("HSET h a 1 b 2", 2),
        ("HSET h a 10 c 3", 1),
        ("HGET h a", b"10"),
        ("HGET h z", None),
        ("HGET nohash a", None),
        ("HMGET h a z c", [b"10", None, b"3"]),
        ("HMGET nohash a b", [None, None]),
        ("HLEN h", 3),
        ("HLEN nohash", 0),
        ("HEXISTS h b", 1),
        ("HEXISTS h z", 0),
        ("HSTRLEN h a", 2),
        ("HSTRLEN h z", 0),
        ("HMSET h d 4 e 5", OK),
        ("HLEN h", 5),
        ("HSETNX h a 99", 0),
        ("HSETNX h f 6", 1),
        ("HGET h a", b"10"),
        ("HSETNX fresh x y", 1),
        ("TYPE h", SimpleString(b"hash")),
    ])


def test_arity_and_syntax_errors_are_redis_texts() -> None:
    """Odd field/value lists and missing arguments give Redis's own error texts."""
    run_script([
        ("HSET h a", arity("hset")),
        ("HSET h a 1 b", arity("hset")),
        ("HMSET h a", arity("hmset")),
        ("HGET h", arity("hget")),
        ("HDEL h", arity("hdel")),
        ("HINCRBY h a x", NOT_AN_INTEGER),
        ("HINCRBYFLOAT h a x", NOT_A_FLOAT),
        ("HINCRBYFLOAT h a inf", ErrorReply(b"ERR value is NaN or Infinity")),
        ("HRANDFIELD h 1 x", SYNTAX_ERROR),
        ("HRANDFIELD h x", NOT_AN_INTEGER),
        ("HRANDFIELD h -9223372036854775808", ErrorReply(
            b"ERR value is out of range, value must between -9223372036854775807 and "
            b"9223372036854775807")),
        ("HRANDFIELD h -9223372036854770000 WITHVALUES", ErrorReply(b"ERR value is out of range")),
        ("HSCAN h x", ErrorReply(b"ERR invalid cursor")),
        ("EXISTS h", 0),
    ])


def test_hdel_removes_fields_and_the_key_with_the_last_one() -> None:
    """HDEL counts removed fields; a hash left empty is deleted, as in Redis."""
    run_script([
        ("HSET h a 1 b 2 c 3", 3),
        ("HDEL h a z a", 1),
        ("HLEN h", 2),
        ("HDEL h b c", 2),
        ("EXISTS h", 0),
        ("DBSIZE", 0),
        ("HDEL h a", 0),
    ])


def test_hincrby_and_hincrbyfloat() -> None:
    """Counters in fields: created at 0, overflow refused, non-numbers refused, values kept."""
    run_script([
        ("HINCRBY h n 5", 5),
        ("HINCRBY h n -7", -2),
        ("HSET h big 9223372036854775807 s abc", 2),
        ("HINCRBY h big 1", ErrorReply(b"ERR increment or decrement would overflow")),
        ("HINCRBY h s 1", ErrorReply(b"ERR hash value is not an integer")),
        ("HINCRBYFLOAT h f 1.5", b"1.5"),
        ("HINCRBYFLOAT h f 0.25", b"1.75"),
        ("HINCRBYFLOAT h n 1e2", b"98"),
        ("HINCRBYFLOAT h s 1", ErrorReply(b"ERR hash value is not a float")),
        ("HSET h top 1e4932", 1),
        ("HINCRBYFLOAT h top 1e4932",
         ErrorReply(b"ERR increment would produce NaN or Infinity")),
        ("HGET h f", b"1.75"),
        ("HLEN h", 5),
    ])


def test_hgetall_hkeys_hvals_agree_and_answer_a_map() -> None:
    """HGETALL is a map of every field; HKEYS and HVALS list the same fields in one order."""
    shard = Shard()
    shard("HSET h a 1 b 2 c 3")
    everything = shard("HGETALL h")
    assert isinstance(everything, Map)
    assert sorted(everything.pairs) == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
    assert shard("HKEYS h") == [field for field, _ in everything.pairs]
    assert shard("HVALS h") == [value for _, value in everything.pairs]
    assert shard("HGETALL nohash") == Map([])
    assert shard("HKEYS nohash") == []


def test_hrandfield_counts_and_values() -> None:
    """HRANDFIELD: one field, distinct fields for a positive count (all of them at most), any
    number with repeats for a negative count, pairs WITHVALUES, empty for a missing key."""
    shard = Shard()
    shard("HSET h a 1 b 2 c 3")
    assert shard("HRANDFIELD h") in (b"a", b"b", b"c")
    assert shard("HRANDFIELD nohash") is None
    two = shard("HRANDFIELD h 2")
    assert isinstance(two, list) and len(set(two)) == 2 and set(two) <= {b"a", b"b", b"c"}
    assert sorted(shard("HRANDFIELD h 10")) == [b"a", b"b", b"c"]  # type: ignore[type-var]
    many = shard("HRANDFIELD h -20")
    assert isinstance(many, list) and len(many) == 20 and set(many) <= {b"a", b"b", b"c"}
    pairs = shard("HRANDFIELD h -5 WITHVALUES")
    assert isinstance(pairs, Pairs) and len(pairs.pairs) == 5
    assert all(dict(a=b"1", b=b"2", c=b"3")[field.decode()] == value  # type: ignore[union-attr]
               for field, value in pairs.pairs)
    assert shard("HRANDFIELD h 0") == []
    assert shard("HRANDFIELD nohash 3") == []


def test_hrandfield_draws_differ_between_reads_and_repeat_for_one_seed() -> None:
    """A read's randomness is its seed: the same seed answers the same, different seeds
    (different reads) spread over the fields."""
    from quorumkv.kv.state_machine import read

    shard = Shard()
    shard(("HSET", "h") + tuple(f"f{index}" for index in range(50) for _ in (0, 1)))
    args = (b"h", b"3")
    first = read(shard.store, b"HRANDFIELD", args, shard.now_ms, choice=1)
    assert read(shard.store, b"HRANDFIELD", args, shard.now_ms, choice=1) == first
    seen = {field for seed in range(40)  # type: ignore[union-attr]
            for field in read(shard.store, b"HRANDFIELD", args, shard.now_ms, choice=seed)}
    assert len(seen) > 30


def test_hscan_walks_every_field_once_through_cursors() -> None:
    """HSCAN returns each field with its value exactly once over a whole iteration, with MATCH
    filtering fields; options are checked after the key's type, as Redis does."""
    shard = Shard()
    shard(("HSET", "h") + tuple(word for index in range(300) for word in (f"f{index}", f"{index}")))
    cursor, found = b"0", {}
    for _ in range(1000):
        reply = shard(("HSCAN", "h", cursor, "COUNT", "7"))
        assert isinstance(reply, list)
        cursor, items = reply
        for position in range(0, len(items), 2):
            assert items[position] not in found
            found[items[position]] = items[position + 1]
        if cursor == b"0":
            break
    assert found == {b"f%d" % index: b"%d" % index for index in range(300)}
    matched = shard("HSCAN h 0 COUNT 1000 MATCH f1?")
    assert sorted(matched[1][0::2]) == [b"f%d" % n for n in range(10, 20)]  # type: ignore[index]
    assert shard("HSCAN nohash 0") == [b"0", []]
    assert shard("HSCAN nohash 0 COUNT 0") == [b"0", []]
    assert shard("HSCAN h 0 COUNT 0") == SYNTAX_ERROR
    assert shard("HSCAN h 0 TYPE string") == SYNTAX_ERROR
    shard("SET str v")
    assert shard("HSCAN str 0 COUNT 0") == WRONGTYPE


def test_every_hash_command_refuses_other_types() -> None:
    """Each hash command on a string or a set answers WRONGTYPE, and changes nothing."""
    shard = Shard()
    shard("SET str v")
    shard("SADD set m")
    for key in ("str", "set"):
        for command in ["HSET {} a 1", "HMSET {} a 1", "HSETNX {} a 1", "HGET {} a",
                        "HMGET {} a", "HDEL {} a", "HLEN {}", "HEXISTS {} a", "HGETALL {}",
                        "HKEYS {}", "HVALS {}", "HINCRBY {} a 1", "HINCRBYFLOAT {} a 1",
                        "HSTRLEN {} a", "HRANDFIELD {}", "HRANDFIELD {} 2", "HSCAN {} 0"]:
            assert shard(command.format(key)) == WRONGTYPE, command.format(key)
    assert shard("GET str") == b"v"
    assert shard("SCARD set") == 1
