"""The member-by-member layout of collections (kv/layout.py, kv/members.py): cost independent of
size, O(1) deletion with a bounded sweep, versions that never resurrect old members."""

from __future__ import annotations

import pytest

from quorumkv import limits
from quorumkv.kv import layout, state_machine
from quorumkv.kv.command import Command
from quorumkv.kv.reply import OK, Map, SetReply
from quorumkv.kv.store import MemoryKeyValueStore

from .kv_harness import Shard, check_layout

BIG = 5_000  # members: well above limits.collection_inline_release_members_max


class CountingStore(MemoryKeyValueStore):
    """A memory store that counts the operations made on it."""

    def __init__(self) -> None:
        super().__init__()
        self.operations = 0

    def get(self, key: bytes) -> bytes | None:
        self.operations += 1
        return super().get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.operations += 1
        super().put(key, value)

    def delete(self, key: bytes) -> None:
        self.operations += 1
        super().delete(key)

    def scan(self, start: bytes, end: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        self.operations += 1
        return super().scan(start, end, limit)


def fill(shard: Shard, command: str, key: str, count: int, with_values: bool) -> None:
    words = tuple(word for index in range(count)
                  for word in ((f"f{index}", f"v{index}") if with_values else (f"f{index}",)))
    shard((command, key) + words)


def operations_of(shard: Shard, command: str) -> int:
    store = shard.store
    assert isinstance(store, CountingStore)
    before = store.operations
    shard(command)
    return store.operations - before


def counting_shard() -> Shard:
    shard = Shard(check_every_command=False)
    shard.store = CountingStore()
    return shard


def test_writes_cost_the_same_on_a_big_collection_as_on_a_small_one() -> None:
    """HSET, HGET, HDEL, SADD, SISMEMBER, SREM make as many store operations on a collection of
    5,000 members as on one of 10."""
    costs = []
    for size in (10, BIG):
        shard = counting_shard()
        fill(shard, "HSET", "h", size, with_values=True)
        fill(shard, "SADD", "s", size, with_values=False)
        costs.append([operations_of(shard, command) for command in
                      ("HSET h new 1", "HGET h f3", "HDEL h f3", "HLEN h", "SADD s new",
                       "SISMEMBER s f3", "SREM s f3", "SCARD s", "EXPIRE h 100", "TTL s")])
    assert costs[0] == costs[1]


def test_deleting_a_big_collection_is_constant_work_and_the_sweep_finishes_it() -> None:
    """DEL of a big hash touches a handful of records and leaves a garbage record; QKV.SWEEP
    entries then delete its members in bounded steps until nothing is left."""
    shard = counting_shard()
    fill(shard, "HSET", "h", BIG, with_values=True)
    assert operations_of(shard, "DEL h") < 12
    store = shard.store
    assert state_machine.sweep_needed(store)
    entries = 0
    while state_machine.sweep_needed(store):
        deleted = state_machine.apply(store, state_machine.sweep_command(shard.now_ms))
        assert isinstance(deleted, int) and deleted <= limits.sweep_records_per_entry_max
        entries += 1
        assert entries < 10
    assert entries == -(-BIG // limits.sweep_records_per_entry_max)
    assert not [key for key, _ in store.items()  # type: ignore[attr-defined]
                if key[:1] in (layout.MEMBER_PREFIX, layout.GARBAGE_PREFIX)]
    check_layout(store)  # type: ignore[arg-type]


def test_a_key_recreated_before_the_sweep_never_sees_the_old_members() -> None:
    """DEL, overwrite by SET, expiry and FLUSHALL each release the members; a collection created
    again at the same key starts empty although the old members are still stored."""
    shard = Shard()
    for release in ("DEL h", "SET h x", "FLUSHALL", "PEXPIRE h 1"):
        fill(shard, "HSET", "h", 200, with_values=True)
        shard(release)
        shard.advance(5)
        assert shard("HSET h only 1") == 1 or release == "SET h x"
        if release == "SET h x":
            assert shard("DEL h") == 1
            assert shard("HSET h only 1") == 1
        assert shard("HGETALL h") == Map([(b"only", b"1")])
        assert shard("HLEN h") == 1
        shard("DEL h")
    while state_machine.sweep_needed(shard.store):
        state_machine.apply(shard.store, state_machine.sweep_command(shard.now_ms))
    check_layout(shard.store)
    assert not [key for key, _ in shard.store.items() if key[:1] == layout.MEMBER_PREFIX]


def test_small_collections_are_deleted_in_the_same_entry() -> None:
    """A collection of a few members leaves no garbage behind: DEL deletes its members."""
    shard = Shard()
    shard("SADD s a b c")
    shard("DEL s")
    assert not state_machine.sweep_needed(shard.store)
    assert [key[:1] for key, _ in shard.store.items()] == [layout.VERSION_PREFIX]


def test_expired_collections_vanish_and_their_members_are_released() -> None:
    """A hash with an expiry disappears for every command once past it, and the leader's
    QKV.EXPIRE-DELETE entry deletes it with its members."""
    shard = Shard()
    shard("SADD s a b")
    assert shard("PEXPIRE s 100") == 1
    shard.advance(101)
    assert shard("SCARD s") == 0
    assert shard("TYPE s").value == b"none"  # type: ignore[union-attr]
    due = state_machine.expired_keys(shard.store, shard.now_ms, 10)
    assert [key for key, _ in due] == [b"s"]
    assert state_machine.apply(shard.store, state_machine.expire_delete_command(
        due, shard.now_ms)) == 1
    assert [key[:1] for key, _ in shard.store.items()] == [layout.VERSION_PREFIX]


def test_persist_and_writes_keep_a_collections_expiry() -> None:
    """Adding members keeps the TTL (as Redis); PERSIST removes it."""
    shard = Shard()
    shard("HSET h a 1")
    shard("EXPIRE h 100")
    shard("HSET h b 2")
    assert shard("TTL h") == 100
    assert shard("PERSIST h") == 1
    assert shard("TTL h") == -1
    assert shard("HLEN h") == 2


def test_rename_within_a_slot_moves_only_the_metadata() -> None:
    """RENAME of a big set within one hash slot makes as many store operations as RENAME of a
    small one; the destination's old collection is released; RENAMENX leaves an existing
    destination alone."""
    costs = []
    for size in (10, BIG):
        shard = counting_shard()
        fill(shard, "SADD", "{t}s", size, with_values=False)
        costs.append(operations_of(shard, "RENAME {t}s {t}d"))
        assert shard("SCARD {t}d") == size
        assert shard("EXISTS {t}s") == 0
        check_layout(shard.store)  # type: ignore[arg-type]
    assert costs[0] == costs[1]
    shard = Shard()
    shard("SADD {t}a 1 2")
    shard("HSET {t}b f v")
    assert shard("RENAMENX {t}a {t}b") == 0
    assert shard("RENAME {t}a {t}b") == OK
    assert sorted(shard("SMEMBERS {t}b").items) == [b"1", b"2"]  # type: ignore[union-attr]
    assert shard("TYPE {t}b").value == b"set"  # type: ignore[union-attr]


def test_rename_across_slots_copies_the_members() -> None:
    """RENAME to a key of another slot (same shard, a plain client) moves the members under the
    new slot, keeping the layout consistent."""
    shard = Shard()
    fill(shard, "HSET", "a", 100, with_values=True)
    shard("EXPIRE a 50")
    assert shard("RENAME a zz") == OK
    assert layout.slot_bytes(layout.data_key(b"a")) != layout.slot_bytes(layout.data_key(b"zz"))
    assert shard("HLEN zz") == 100
    assert shard("HGET zz f7") == b"v7"
    assert shard("TTL zz") == 50
    assert shard("EXISTS a") == 0


def test_scan_type_keys_and_dbsize_count_collections_as_keys() -> None:
    """SCAN TYPE filters hashes and sets; KEYS and DBSIZE see one key per collection."""
    shard = Shard()
    fill(shard, "HSET", "h", 50, with_values=True)
    shard("SADD s a")
    shard("SET k v")
    assert shard("DBSIZE") == 3
    assert sorted(shard("KEYS *")) == [b"h", b"k", b"s"]  # type: ignore[type-var]
    assert shard("SCAN 0 TYPE hash COUNT 100")[1] == [b"h"]  # type: ignore[index]
    assert shard("SCAN 0 TYPE set COUNT 100")[1] == [b"s"]  # type: ignore[index]
    assert shard("MEMORY USAGE h") > shard("MEMORY USAGE s")  # type: ignore[operator]


def test_flushall_keeps_version_counters() -> None:
    """FLUSHALL deletes every key but not the slots' version counters, which must keep growing
    while released members wait for the sweep."""
    shard = Shard()
    fill(shard, "SADD", "s", 300, with_values=False)
    counter = layout.version_key(layout.slot_bytes(layout.data_key(b"s")))
    before = shard.store.get(counter)
    assert shard("FLUSHALL") == OK
    assert shard.store.get(counter) == before
    assert shard("DBSIZE") == 0
    assert shard("SADD s new") == 1
    assert shard("SMEMBERS s") == SetReply([b"new"])


def test_too_big_a_read_is_refused_with_the_scan_command_to_use(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """HGETALL and SMEMBERS of a collection beyond limits.collection_read_members_max answer an
    error naming HSCAN/SSCAN instead of building an unbounded reply."""
    monkeypatch.setattr(limits, "collection_read_members_max", 20)
    shard = Shard()
    fill(shard, "HSET", "h", 30, with_values=True)
    fill(shard, "SADD", "s", 30, with_values=False)
    for command, scan in (("HGETALL h", b"HSCAN"), ("SMEMBERS s", b"SSCAN"),
                          ("SUNION s", b"SSCAN")):
        reply = shard(command)
        assert getattr(reply, "message", b"").startswith(b"ERR") and scan in reply.message
    assert len(shard("HRANDFIELD h 5")) == 5  # type: ignore[arg-type]
    assert len(shard("SRANDMEMBER s -7")) == 7  # type: ignore[arg-type]
    assert shard("SPOP s") is not None


def test_commands_from_the_log_replay_to_identical_stores() -> None:
    """The same entries applied on two stores leave identical records (SPOP, SRANDMEMBER-free
    writes, sweeps included): replicas stay equal record for record."""
    commands = [Command(b"SADD", (b"s",) + tuple(b"%d" % n for n in range(300)), 1),
                Command(b"SPOP", (b"s", b"7"), 2), Command(b"HSET", (b"h", b"a", b"1"), 3),
                Command(b"DEL", (b"s",), 4), state_machine.sweep_command(5),
                Command(b"SADD", (b"s", b"x"), 6), Command(b"SPOP", (b"s",), 7)]
    stores = [MemoryKeyValueStore(), MemoryKeyValueStore()]
    replies = [[state_machine.apply(store, command) for command in commands] for store in stores]
    assert replies[0] == replies[1]
    assert stores[0].items() == stores[1].items()


def test_a_collection_is_bounded_in_members(monkeypatch: pytest.MonkeyPatch) -> None:
    """HSET and SADD that would take a collection past limits.collection_members_max are
    refused whole; below it they proceed."""
    monkeypatch.setattr(limits, "collection_members_max", 3)
    shard = Shard()
    assert shard("HSET h a 1 b 2") == 2
    refused = shard("HSET h c 3 d 4")
    assert getattr(refused, "message", b"").startswith(b"ERR a collection holds at most 3")
    assert shard("HLEN h") == 2
    assert shard("SADD s a b c") == 3
    assert getattr(shard("SADD s d"), "message", b"").startswith(b"ERR a collection")


def test_a_collection_with_a_ttl_overwritten_leaves_no_expiry_entry() -> None:
    """A hash with a TTL replaced by a string without one (SET) drops its expiry index entry
    and its expiry count, as a string overwritten the same way does."""
    shard = Shard()
    shard(("HSET", "h", "f", "v"))
    shard(("PEXPIRE", "h", "100000"))
    shard(("SET", "h", "x"))
    assert shard(("PTTL", "h")) == -1
    check_layout(shard.store)
