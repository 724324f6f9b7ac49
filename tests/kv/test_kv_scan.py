"""SCAN, KEYS and RANDOMKEY: Redis's replies, and SCAN's guarantee under concurrent writes."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from quorumkv.cluster.slots import key_slot
from quorumkv.kv import layout, state_machine
from quorumkv.kv.reply import INVALID_CURSOR, NOT_AN_INTEGER, OK, SYNTAX_ERROR
from quorumkv.kv.scan import pattern_slot, scan_positions
from quorumkv.kv.store import MemoryKeyValueStore

from .kv_harness import START_MS, Shard, check_layout


def full_scan(shard: Shard, *options: str) -> list[bytes]:
    """Every key one whole SCAN iteration returns, in order, with repetitions."""
    found: list[bytes] = []
    cursor = b"0"
    while True:
        reply = shard(("SCAN", cursor, *options))
        assert isinstance(reply, list)
        cursor, keys = reply
        found.extend(keys)
        if cursor == b"0":
            return found


def fill(shard: Shard, count: int, prefix: str = "key:") -> set[bytes]:
    keys = [f"{prefix}{i}" for i in range(count)]
    shard(("MSET", *[part for key in keys for part in (key, "v")]))
    return {key.encode() for key in keys}


def test_scan_returns_every_key_once_on_a_quiet_keyspace() -> None:
    """A full SCAN iteration returns each key exactly once when nothing changes."""
    shard = Shard()
    keys = fill(shard, 250)
    for count in ("1", "7", "10", "1000"):
        found = full_scan(shard, "COUNT", count)
        assert sorted(found) == sorted(keys)


def test_scan_cursor_is_an_unsigned_64_bit_number() -> None:
    """The cursor SCAN answers is a decimal integer below 2**64, as clients parse it."""
    shard = Shard()
    fill(shard, 50)
    cursor, _ = shard("SCAN 0 COUNT 5")  # type: ignore[misc]
    assert cursor.isdigit() and 0 < int(cursor) < 2**46


def test_scan_match_and_type() -> None:
    """MATCH filters with a glob and TYPE by type name, after the keys are read."""
    shard = Shard()
    keys = fill(shard, 30, "user:") | fill(shard, 30, "item:")
    assert sorted(full_scan(shard, "MATCH", "user:*")) == sorted(k for k in keys
                                                                 if k.startswith(b"user:"))
    assert sorted(full_scan(shard, "MATCH", "*", "COUNT", "3")) == sorted(keys)
    assert sorted(full_scan(shard, "TYPE", "string")) == sorted(keys)
    assert sorted(full_scan(shard, "type", "STRING")) == sorted(keys)
    assert full_scan(shard, "TYPE", "hash") == []
    assert full_scan(shard, "TYPE", "nosuchtype") == []  # Redis 7 filters, no error


def test_scan_errors() -> None:
    """SCAN refuses bad cursors, non-positive or non-integer COUNT and unknown options."""
    shard = Shard()
    assert shard("SCAN abc") == INVALID_CURSOR
    assert shard("SCAN -1") == INVALID_CURSOR
    assert shard(("SCAN", "")) == INVALID_CURSOR
    assert shard("SCAN 18446744073709551616") == INVALID_CURSOR
    assert shard("SCAN 0 COUNT 0") == SYNTAX_ERROR
    assert shard("SCAN 0 COUNT abc") == NOT_AN_INTEGER
    assert shard("SCAN 0 COUNT") == SYNTAX_ERROR
    assert shard("SCAN 0 FOO bar") == SYNTAX_ERROR
    assert shard("SCAN 18446744073709551615") == [b"0", []]
    assert shard("SCAN +5") == [b"0", []]


def test_scan_skips_expired_keys() -> None:
    """SCAN does not return keys whose expiry has passed."""
    shard = Shard()
    fill(shard, 10)
    shard("SET gone v PX 5")
    shard.advance(6)
    assert b"gone" not in full_scan(shard)


def test_scan_with_a_hash_tag_pattern_reads_one_slot() -> None:
    """MATCH with a literal {tag} reads only that slot, and still finds its keys."""
    shard = Shard()
    fill(shard, 20, "{user1}:")
    fill(shard, 20, "other:")
    found = full_scan(shard, "MATCH", "{user1}:*", "COUNT", "5")
    assert sorted(found) == sorted(f"{{user1}}:{i}".encode() for i in range(20))
    cursor, _ = shard("SCAN 0 MATCH {user1}:* COUNT 3")  # type: ignore[misc]
    assert int(cursor) >> 32 == key_slot(b"{user1}")


def test_pattern_slot() -> None:
    """A pattern fixes the slot only with a literal non-empty tag or no wildcard at all."""
    assert pattern_slot(b"{user1}:*") == key_slot(b"{user1}")
    assert pattern_slot(b"exact") == key_slot(b"exact")
    assert pattern_slot(b"user:*") is None
    assert pattern_slot(b"{us*}:x") is None
    assert pattern_slot(b"{}{a}*") is None
    assert pattern_slot(b"a\\*") is None


def test_scan_finishes_a_position_shared_by_several_keys() -> None:
    """Rows sharing a position (CRC32 collisions in a slot) are all returned in one call."""
    store = MemoryKeyValueStore()
    record = layout.encode_record(layout.ValueType.STRING, 0, b"v")
    same = layout.position_key(5 << 32 | 77)
    for suffix in (b"a", b"b", b"c", b"d"):
        store.put(same + suffix, record)
    store.put(layout.position_key(5 << 32 | 78) + b"e", record)
    cursor, rows = scan_positions(store, 0, 2, None)
    assert [key[-1:] for key, _ in rows] == [b"a", b"b", b"c", b"d"]
    assert cursor == (5 << 32 | 77) + 1
    cursor, rows = scan_positions(store, cursor, 2, None)
    assert cursor == 0 and [key[-1:] for key, _ in rows] == [b"e"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), count=st.integers(1, 20))
def test_scan_returns_keys_present_throughout_despite_writes(seed: int, count: int) -> None:
    """Keys present for a whole iteration are returned, whatever is added or deleted between
    calls (SCAN's guarantee)."""
    chooser = random.Random(seed)
    shard = Shard(check_every_command=False)
    stable = fill(shard, 60, "stable:")
    churn = [f"churn:{i}".encode() for i in range(200)]
    found: set[bytes] = set()
    cursor = b"0"
    while True:
        cursor, keys = shard(("SCAN", cursor, "COUNT", str(count)))  # type: ignore[misc]
        found.update(keys)
        if cursor == b"0":
            break
        for _ in range(5):
            key = chooser.choice(churn)
            shard(("SET", key, "v") if chooser.random() < 0.6 else ("DEL", key))
    assert stable <= found
    assert found <= stable | set(churn)
    check_layout(shard.store)


def test_keys_patterns() -> None:
    """KEYS answers the live keys matching a glob; `*` answers them all."""
    shard = Shard()
    shard("MSET hello 1 hallo 2 hxllo 3 hllo 4 heeeello 5 {t}a 6 {t}b 7")
    shard("SET gone v PX 1")
    shard.advance(2)
    assert sorted(shard("KEYS h?llo")) == [b"hallo", b"hello", b"hxllo"]  # type: ignore[type-var]
    assert sorted(shard("KEYS h*llo")) == [b"hallo", b"heeeello", b"hello", b"hllo", b"hxllo"]  # type: ignore[type-var]
    assert sorted(shard("KEYS h[ae]llo")) == [b"hallo", b"hello"]  # type: ignore[type-var]
    assert sorted(shard("KEYS h[^e]llo")) == [b"hallo", b"hxllo"]  # type: ignore[type-var]
    assert sorted(shard("KEYS h[a-b]llo")) == [b"hallo"]  # type: ignore[type-var]
    assert sorted(shard("KEYS {t}*")) == [b"{t}a", b"{t}b"]  # type: ignore[type-var]
    assert len(shard("KEYS *")) == 7  # type: ignore[arg-type]
    assert shard("KEYS hello") == [b"hello"]
    assert shard("KEYS nothing*") == []


def test_keys_walks_more_than_one_page() -> None:
    """KEYS finds every key of a shard larger than one store page."""
    shard = Shard()
    keys = fill(shard, 2500)
    assert sorted(shard("KEYS key:*")) == sorted(keys)  # type: ignore[type-var]


def test_randomkey() -> None:
    """RANDOMKEY answers nil on an empty shard, else a live key chosen by the caller's number."""
    shard = Shard()
    assert shard("RANDOMKEY") is None
    keys = fill(shard, 50)
    assert shard("RANDOMKEY") in keys
    chosen = {state_machine.read(shard.store, b"RANDOMKEY", (), START_MS, choice=c)
              for c in range(0, 2**46, 2**40)}
    assert chosen <= keys and len(chosen) > 10
    shard("FLUSHALL")
    assert shard("SET only v PX 5") == OK
    assert shard("RANDOMKEY") == b"only"
    shard.advance(6)
    assert shard("RANDOMKEY") is None
